//! How the threads of the `coutil.threads` pools wait for work, so that
//! queuing a task rarely costs a system call or a context switch:
//!
//! * a thread out of work first *watches* the queue for [`WATCH`] (one
//!   thread at a time, so that watching threads do not take the processors
//!   from the ones queuing work): a job queued meanwhile is taken without
//!   any wake-up;
//! * then it sleeps on the pool's condition variable, counted as idle; a
//!   job queued while a thread watches wakes nobody, otherwise one idle
//!   thread per job, not counting those already signalled;
//! * it sleeps under the `SCHED_BATCH` policy ([`batch_while`]), so that
//!   waking it does not preempt the thread that queued the job.
//!
//! Measured on the thread pools (100 000 tiny tasks): without these, runs
//! were bimodal, with up to 12 000 context switches in the slow ones.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a thread out of work watches the queue before it sleeps.
pub const WATCH: Duration = Duration::from_micros(20);

/// The watch of a pool's queue.
#[derive(Default)]
pub struct Watch {
    /// Jobs ever queued.
    pushes: AtomicU64,
    /// Whether a thread is watching.
    watching: AtomicBool,
}

impl Watch {
    /// A job was queued (called with the queue's lock held).
    pub fn pushed(&self) {
        self.pushes.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a thread watches the queue (read with the queue's lock
    /// held: a watcher that stops looks at the queue under that lock
    /// before it sleeps, so a job queued meanwhile is never missed).
    pub fn watching(&self) -> bool {
        self.watching.load(Ordering::Relaxed)
    }

    /// The count to give [`Watch::watch`], read before releasing the
    /// queue's lock.
    pub fn seen(&self) -> u64 {
        self.pushes.load(Ordering::Relaxed)
    }

    /// Returns when a job was queued since the count was `seen`, after
    /// [`WATCH`], or at once if another thread is watching.
    pub fn watch(&self, seen: u64) {
        if self.watching.swap(true, Ordering::Relaxed) {
            return;
        }
        let start = Instant::now();
        'watch: loop {
            for _ in 0..64 {
                if self.pushes.load(Ordering::Relaxed) != seen {
                    break 'watch;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() > WATCH {
                break;
            }
        }
        self.watching.store(false, Ordering::Relaxed);
    }
}

/// Whether this thread has the normal policy (and so may use
/// [`batch_while`]); a thread of a process run under another policy
/// keeps it.
pub fn normal_policy() -> bool {
    // SAFETY: reads this thread's scheduling policy.
    unsafe { libc::sched_getscheduler(0) == libc::SCHED_OTHER }
}

/// Runs `wait` (a pool thread waiting for work) under the SCHED_BATCH
/// policy if the thread has the normal one (`normal`): a batch thread
/// woken up does not preempt the one that woke it, so the thread queuing
/// work keeps its processor while the woken thread takes an idle one (or
/// runs at the next scheduler tick). The work itself runs under the normal
/// policy, so processes it starts do not inherit the batch one.
pub fn batch_while<T>(normal: bool, wait: impl FnOnce() -> T) -> T {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: changes this thread's policy between the two normal ones
    // (priority 0 is the only one they accept).
    unsafe {
        if normal {
            libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
        }
        let woken = wait();
        if normal {
            libc::sched_setscheduler(0, libc::SCHED_OTHER, &param);
        }
        woken
    }
}
