//! The threads of a pool (spec threads.md §5): the shared [`Pool`], its
//! queue of tasks and the loop its system threads run.
//!
//! A task is always in exactly one place: a pool's pending queue, the
//! hands of the worker running it, or the wake closure of a channel waiter
//! or parking slot (suspended); so each task state is used by one thread
//! at a time. A suspended task outlives the freeing of its pool there; the
//! wake that finds the pool freed gives it back to be dropped. Lock
//! order: the matcher's lock, then a pool's; a worker never holds its
//! pool's lock while it runs Lua code or calls the matcher.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::matcher::{self, Discard, Pending};
use super::park::Requeue;
use super::state::IndState;
use super::task::{After, Body, Task};
use super::transfer::{self, Value};
use crate::runtime::idle::{self, Watch};

#[derive(Default)]
pub struct Queue {
    pub pending: VecDeque<Task>,
    pub running: usize,
    pub suspended: usize,
    pub expected: usize,
    pub actual: usize,
    /// Freed: every thread exits.
    closed: bool,
    /// Threads waiting for work, and how many of them were signalled.
    idle: usize,
    signalled: usize,
    /// Threads waiting in `free`.
    closers: usize,
}

impl Queue {
    pub fn tasks(&self) -> usize {
        self.running + self.pending.len() + self.suspended
    }

    /// Has a thread waiting in `free` something to see?
    fn closers_due(&self) -> bool {
        self.closers > 0 && (self.tasks() == 0 || self.actual == 0)
    }
}

pub struct Pool {
    queue: Mutex<Queue>,
    /// Signalled for threads: a task was queued, or the thread count
    /// changed.
    work: Condvar,
    /// Signalled for closers when the pool has no tasks or no threads.
    changed: Condvar,
    /// How threads out of work wait (see `runtime::idle`).
    watch: Watch,
}

/// The most threads all pools of the process may have at once; more fail
/// with `EAGAIN`, as `pthread_create` does at a system limit. Without a
/// limit a huge `threads.create(n)` would go on until memory mappings run
/// out, and a Rust thread that cannot map its signal stack aborts the
/// process instead of failing.
const MAX_THREADS: usize = 4096;
static THREADS: AtomicUsize = AtomicUsize::new(0);

impl Pool {
    pub fn new() -> Arc<Pool> {
        Arc::new(Pool {
            queue: Mutex::default(),
            work: Condvar::new(),
            changed: Condvar::new(),
            watch: Watch::default(),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the expected thread count; starts threads now if `create`,
    /// else as pending tasks need them. Surplus threads exit when free.
    pub fn resize(self: &Arc<Pool>, size: usize, create: bool) -> std::io::Result<()> {
        let mut q = self.lock();
        q.expected = size;
        let result = if create {
            (q.actual..size).try_for_each(|_| self.spawn(&mut q))
        } else {
            self.on_demand(&mut q)
        };
        drop(q);
        self.work.notify_all();
        result
    }

    fn spawn(self: &Arc<Pool>, q: &mut Queue) -> std::io::Result<()> {
        if THREADS.fetch_add(1, Ordering::Relaxed) >= MAX_THREADS {
            THREADS.fetch_sub(1, Ordering::Relaxed);
            return Err(std::io::Error::from_raw_os_error(libc::EAGAIN));
        }
        let pool = self.clone();
        let spawned = std::thread::Builder::new()
            .name("coutil-threads".into())
            .spawn(move || {
                crate::runtime::pool::block_sigpipe();
                super::park::mark_pool_thread();
                pool.work_loop()
            });
        if let Err(e) = spawned {
            THREADS.fetch_sub(1, Ordering::Relaxed);
            return Err(e);
        }
        q.actual += 1;
        Ok(())
    }

    /// Starts threads for pending tasks no idle thread will take.
    fn on_demand(self: &Arc<Pool>, q: &mut Queue) -> std::io::Result<()> {
        // Threads not running a task take pending ones (idle threads, and
        // those about to look at the queue).
        while !q.closed
            && q.pending.len() > q.actual.saturating_sub(q.running)
            && q.actual < q.expected
        {
            self.spawn(q)?;
        }
        Ok(())
    }

    /// Queues a task as pending.
    pub fn push(self: &Arc<Pool>, task: Task) {
        self.enqueue(self.lock(), task);
    }

    /// Queues a task as pending, in the same step as the changes already
    /// made under `q`, then releases the lock and wakes who must know.
    fn enqueue(self: &Arc<Pool>, mut q: MutexGuard<'_, Queue>, task: Task) {
        q.pending.push_back(task);
        self.watch.pushed();
        // A thread that cannot start leaves the task to an existing one.
        let _ = self.on_demand(&mut q);
        // One sleeping thread per pending task a watching thread will not
        // take, and no system call when every thread is busy or already
        // signalled.
        let watching = self.watch.watching() as usize;
        let wake = q.idle > q.signalled && q.pending.len() > watching;
        if wake {
            q.signalled += 1;
        }
        let closers = q.closers_due();
        drop(q);
        if wake {
            self.work.notify_one();
        }
        if closers {
            self.changed.notify_all();
        }
    }

    /// Releases the lock, then wakes the threads waiting in `free` if
    /// what they wait for happened.
    fn tell_closers(&self, q: MutexGuard<'_, Queue>) {
        let closers = q.closers_due();
        drop(q);
        if closers {
            self.changed.notify_all();
        }
    }

    /// A suspended task was matched: queue it with the results of its
    /// yield, or give it back to be discarded if the pool was freed (it
    /// stayed a match partner, spec behaviour-rules R6, but nothing can
    /// run it any more).
    fn wake(self: &Arc<Pool>, mut task: Task, peer: Vec<Value>) -> Option<Discard> {
        let mut q = self.lock();
        if q.closed {
            // The values may own moved states: dropped without the lock
            // too.
            return Some(Box::new((task, peer)));
        }
        task.args = transfer::prepend(Value::Bool(true), peer);
        q.suspended -= 1;
        self.enqueue(q, task);
        None
    }

    /// Blocks until every thread of a freed pool has left (so that they no
    /// longer count against [`MAX_THREADS`]).
    pub fn join(&self) {
        let mut q = self.lock();
        while q.actual > 0 {
            q.closers += 1;
            q = self.changed.wait(q).unwrap_or_else(|e| e.into_inner());
            q.closers -= 1;
        }
    }

    /// Blocks until the pool has no tasks or no threads, then frees it:
    /// its threads exit and its pending tasks are discarded. Suspended
    /// tasks stay where they are (in a channel's queue, or parked): each
    /// remains a match partner until a peer matches it, and only then is
    /// it discarded (see `wake`).
    pub fn free(&self) {
        let mut q = self.lock();
        while q.tasks() > 0 && q.actual > 0 {
            q.closers += 1;
            q = self.changed.wait(q).unwrap_or_else(|e| e.into_inner());
            q.closers -= 1;
        }
        q.closed = true;
        let pending = std::mem::take(&mut q.pending);
        drop(q);
        self.work.notify_all();
        drop(pending); // closes their states, outside the lock
    }

    fn work_loop(self: Arc<Pool>) {
        // A state left pristine by its task, for the next task.
        let mut spare = None;
        let mut spin = false;
        let normal = idle::normal_policy();
        let mut q = self.lock();
        loop {
            let Some(task) = self.take(&mut q) else {
                if q.closed || q.actual > q.expected {
                    q.actual -= 1;
                    THREADS.fetch_sub(1, Ordering::Relaxed);
                    self.tell_closers(q);
                    return;
                }
                if std::mem::take(&mut spin) {
                    let seen = self.watch.seen();
                    drop(q);
                    self.watch.watch(seen);
                    q = self.lock();
                    continue;
                }
                q.idle += 1;
                q = idle::batch_while(normal, || {
                    self.work.wait(q).unwrap_or_else(|e| e.into_inner())
                });
                q.idle -= 1;
                q.signalled = q.signalled.saturating_sub(1);
                continue;
            };
            spin = true;
            drop(q);
            // Each task, then the next one taken in the same step as the
            // end of the previous (see `after`).
            let mut next = Some(task);
            while let Some(task) = next {
                let after = self.run(task, &mut spare);
                next = self.after(after, &mut spare);
            }
            q = self.lock();
        }
    }

    /// Takes the first pending task to run it, unless this thread must
    /// exit.
    fn take(&self, q: &mut Queue) -> Option<Task> {
        if q.closed || q.actual > q.expected {
            return None;
        }
        let task = q.pending.pop_front()?;
        q.running += 1;
        Some(task)
    }

    /// Counts what became of a task this thread ran and, in the same step
    /// (one critical section), takes the next pending task: so the counts
    /// never show a pending task and a free thread between two tasks
    /// (spec behaviour-rules R6). Then, without the lock, closes the ended
    /// task's state (or keeps it as `spare`), or suspends the task.
    fn after(self: &Arc<Pool>, after: After, spare: &mut Option<IndState>) -> Option<Task> {
        let mut q = self.lock();
        q.running -= 1;
        let later = match after {
            After::Requeue(task) => {
                q.pending.push_back(task);
                None
            }
            After::Park(..) | After::Await(..) => {
                q.suspended += 1;
                Some(after)
            }
            After::Ended(..) => Some(after),
        };
        let next = self.take(&mut q);
        self.tell_closers(q);
        match later {
            Some(After::Ended(task, clean)) => {
                if let Body::Started(state) = task.body
                    && clean
                    && state.pristine()
                {
                    *spare = Some(state);
                }
            }
            Some(After::Park(task)) => self.park(task),
            Some(After::Await(task, name, endpoint, values)) => {
                self.suspend(task, &name, endpoint, values)
            }
            Some(After::Requeue(_)) | None => {}
        }
        next
    }

    fn park(self: &Arc<Pool>, task: Task) {
        let park = task.park.clone();
        let pool = self.clone();
        let requeue: Requeue = Box::new(move || {
            let mut q = pool.lock();
            if q.closed {
                return Some(Box::new(task) as Discard);
            }
            q.suspended -= 1;
            pool.enqueue(q, task);
            None
        });
        if let Some(requeue) = park.park(requeue) {
            drop(requeue()); // not under the matcher's lock here
        }
    }

    /// Queues a task that yielded a channel name as a waiter of that name.
    fn suspend(
        self: &Arc<Pool>,
        task: Task,
        name: &[u8],
        ep: matcher::Endpoint,
        values: Vec<Value>,
    ) {
        let domain = task.origin().domain;
        let pool = self.clone();
        let pending = Pending {
            key: matcher::next_key(),
            counted: true,
            wake: Box::new(move |peer| pool.wake(task, peer)),
        };
        matcher::exchange(domain, name, ep, values, Some(pending));
    }
}
