//! The worker pool: system threads that run blocking work (file
//! operations, name resolution, state coroutines) for every loop of the
//! process.
//!
//! One pool per process, created on first use, like libuv's: its size is
//! `UV_THREADPOOL_SIZE` (default 4, at most 1024). Threads are started on
//! demand, up to the size, and never end. A job is any `FnOnce`; the loop
//! wraps it so that its result is posted back to the owning loop (see
//! `Loop::submit`). Queuing a job wakes an idle thread only if one is
//! not already signalled (a notify is a system call even without waiters).
//! Unlike the thread pools (`idle`), threads here do not watch the queue
//! before sleeping: on the file workloads (smallops) it made no difference
//! measurable above the noise.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    size: usize,
    state: Mutex<Queue>,
    available: Condvar,
}

struct Queue {
    jobs: VecDeque<Job>,
    threads: usize,
    /// Threads sleeping, and how many of them were signalled.
    idle: usize,
    signalled: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let size = std::env::var("UV_THREADPOOL_SIZE")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(4)
            .clamp(1, 1024);
        Pool {
            size,
            state: Mutex::new(Queue {
                jobs: VecDeque::new(),
                threads: 0,
                idle: 0,
                signalled: 0,
            }),
            available: Condvar::new(),
        }
    })
}

/// Blocks `SIGPIPE` in the calling thread for good: called first by the
/// library's own threads, so that no write they make (to a pipe whose
/// reader left) kills the process, whatever the host's disposition; the
/// write fails with `EPIPE`, and the signal, directed at this thread, is
/// never delivered (writes consume it, see `fs::sys`).
pub fn block_sigpipe() {
    // SAFETY: the set is initialised by sigemptyset; only this thread's
    // mask changes.
    unsafe {
        let mut pipe: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, std::ptr::null_mut());
    }
}

/// Queues `job` to run on a worker thread. Fails (and drops the job) only
/// when no worker thread exists and none can be started.
pub fn execute(job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    let pool = pool();
    let mut q = pool.state.lock().unwrap_or_else(|e| e.into_inner());
    q.jobs.push_back(Box::new(job));
    if q.idle <= q.signalled && q.threads < pool.size {
        let spawned = std::thread::Builder::new()
            .name("coutil-worker".into())
            .spawn(move || {
                block_sigpipe();
                work(pool)
            });
        match spawned {
            Ok(_) => q.threads += 1,
            // With no thread at all the job would wait forever; otherwise
            // it waits for an existing one.
            Err(e) if q.threads == 0 => {
                q.jobs.pop_back();
                return Err(e);
            }
            Err(_) => {}
        }
    }
    let wake = q.idle > q.signalled;
    if wake {
        q.signalled += 1;
    }
    drop(q);
    if wake {
        pool.available.notify_one();
    }
    Ok(())
}

fn work(pool: &'static Pool) {
    loop {
        let job = {
            let mut q = pool.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(job) = q.jobs.pop_front() {
                    break job;
                }
                q.idle += 1;
                q = pool.available.wait(q).unwrap_or_else(|e| e.into_inner());
                q.idle -= 1;
                q.signalled = q.signalled.saturating_sub(1);
            }
        };
        // A panicking job must not take the worker down with it; the job
        // wrapper reports the failure to its loop.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_jobs_on_other_threads() {
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..16 {
            let tx = tx.clone();
            super::execute(move || tx.send((i, std::thread::current().id())).unwrap()).unwrap();
        }
        let mut got: Vec<_> = (0..16).map(|_| rx.recv().unwrap()).collect();
        got.sort_by_key(|g| g.0);
        assert!(got.iter().all(|g| g.1 != std::thread::current().id()));
    }
}
