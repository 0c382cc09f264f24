//! The execution side of thread pools (spec threads.md §5, "Task
//! execution"): the shared [`Pool`], its system threads and the tasks
//! they run.
//!
//! A [`Task`] owns its independent state; it is always in exactly one
//! place: a pool's pending queue, the hands of the worker running it, or
//! the wake closure of a channel waiter (suspended). So each task state is
//! used by one thread at a time. Lock order: the matcher's lock, then a
//! pool's; a worker never holds its pool's lock while it runs Lua code or
//! calls the matcher.

use std::collections::VecDeque;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::channel;
use super::matcher::{self, Pending};
use super::origin::{Code, Origin};
use super::state::{IndState, TaskLink};
use super::transfer::{self, Value};
use crate::lua::{Lua, ffi};

/// A chunk to run in a pool, with the values for its next resume.
pub struct Task {
    pub body: Body,
    pub args: Vec<Value>,
    /// Keeps the pool alive for `threads.create()` in the task, which finds
    /// it through a raw pointer in the task state's registry.
    pub pool: Arc<Pool>,
    /// Same for `system.run` and `system.awaitch` in the task.
    pub park: Arc<Park>,
}

/// The state of a task: made by the worker that first runs it.
pub enum Body {
    New(Arc<Code>, Origin),
    Started(IndState),
}

/// Parking of a task whose `system.run` waits only for `awaitch` calls
/// (spec loop-time.md, `system.run` in pool tasks): the task yields its
/// system thread, and the first match of one of its state's `awaitch`
/// calls queues it again.
#[derive(Default)]
pub struct Park {
    slot: Mutex<Parking>,
    /// Armed `awaitch` operations of the task state; only changed by the
    /// thread running the task.
    pub awaiting: AtomicUsize,
    /// Set by `system.run` right before it yields to park the task.
    pub requested: AtomicBool,
}

#[derive(Default)]
enum Parking {
    #[default]
    Running,
    /// Matched while not parked: the next park returns at once.
    Woken,
    /// Parked: queues the task again.
    Parked(Box<dyn FnOnce() + Send>),
}

impl Park {
    fn lock(&self) -> MutexGuard<'_, Parking> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An `awaitch` of the task state was matched (called under the
    /// matcher's lock; the requeue takes the pool's lock after it).
    pub fn notify(&self) {
        let mut slot = self.lock();
        match std::mem::replace(&mut *slot, Parking::Running) {
            Parking::Parked(requeue) => {
                drop(slot);
                requeue();
            }
            _ => *slot = Parking::Woken,
        }
    }

    /// Parks with `requeue`, or gives it back if a match came meanwhile.
    fn park(&self, requeue: Box<dyn FnOnce() + Send>) -> Option<Box<dyn FnOnce() + Send>> {
        let mut slot = self.lock();
        match *slot {
            Parking::Woken => {
                *slot = Parking::Running;
                Some(requeue)
            }
            _ => {
                *slot = Parking::Parked(requeue);
                None
            }
        }
    }

    /// Takes the requeue of a parked task (to discard the task).
    fn discard(&self) -> Option<Box<dyn FnOnce() + Send>> {
        match std::mem::take(&mut *self.lock()) {
            Parking::Parked(requeue) => Some(requeue),
            _ => None,
        }
    }
}

#[derive(Default)]
pub struct Queue {
    pub pending: VecDeque<Task>,
    pub running: usize,
    pub suspended: usize,
    pub expected: usize,
    pub actual: usize,
    /// Parking slots of parked tasks (counted as suspended).
    parked: Vec<Arc<Park>>,
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
    /// Group of its suspended tasks in the matcher.
    pub id: u64,
    queue: Mutex<Queue>,
    /// Signalled for threads: a task was queued, or the thread count
    /// changed.
    work: Condvar,
    /// Signalled for closers when the pool has no tasks or no threads.
    changed: Condvar,
    /// Tasks ever queued: a thread out of work watches it for a while
    /// before it sleeps.
    pushes: AtomicU64,
    /// Whether a thread is watching `pushes`: only one at a time, so that
    /// watching threads do not take the processors from the ones queuing
    /// tasks.
    watching: AtomicBool,
}

/// How long a thread out of work waits for a new task before it sleeps:
/// a task queued meanwhile then costs its caller no system call, and the
/// thread no wake-up.
const SPIN: Duration = Duration::from_micros(20);

static POOL_IDS: AtomicU64 = AtomicU64::new(1);

impl Pool {
    pub fn new() -> Arc<Pool> {
        Arc::new(Pool {
            id: POOL_IDS.fetch_add(1, Ordering::Relaxed),
            queue: Mutex::default(),
            work: Condvar::new(),
            changed: Condvar::new(),
            pushes: AtomicU64::new(0),
            watching: AtomicBool::new(false),
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
        let pool = self.clone();
        std::thread::Builder::new()
            .name("coutil-threads".into())
            .spawn(move || pool.work_loop())?;
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
        let mut q = self.lock();
        q.pending.push_back(task);
        self.pushes.fetch_add(1, Ordering::Relaxed);
        // A thread that cannot start leaves the task to an existing one.
        let _ = self.on_demand(&mut q);
        // One sleeping thread per pending task a watching thread will not
        // take, and no system call when every thread is busy or already
        // signalled.
        let watching = self.watching.load(Ordering::Relaxed) as usize;
        let wake = q.idle > q.signalled && q.pending.len() > watching;
        if wake {
            q.signalled += 1;
        }
        drop(q);
        if wake {
            self.work.notify_one();
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

    /// A suspended task was matched: queue it with the results of its yield.
    fn wake(self: &Arc<Pool>, mut task: Task, peer: Vec<Value>) {
        task.args = Vec::with_capacity(peer.len() + 1);
        task.args.push(Value::Bool(true));
        task.args.extend(peer);
        self.lock().suspended -= 1;
        self.push(task);
        self.tell_closers(self.lock());
    }

    /// Blocks until the pool has no tasks or no threads, then frees it:
    /// its threads exit and its remaining tasks are discarded.
    pub fn free(&self) {
        let mut q = self.lock();
        while q.tasks() > 0 && q.actual > 0 {
            q.closers += 1;
            q = self.changed.wait(q).unwrap_or_else(|e| e.into_inner());
            q.closers -= 1;
        }
        q.closed = true;
        drop(q);
        self.work.notify_all();
        // Suspended tasks leave the channels; woken ones become pending.
        drop(matcher::remove_group(self.id));
        let (pending, parked) = {
            let mut q = self.lock();
            q.suspended = 0;
            (
                std::mem::take(&mut q.pending),
                std::mem::take(&mut q.parked),
            )
        };
        drop(pending); // closes their states, outside the lock
        for park in parked {
            drop(park.discard());
        }
    }

    fn work_loop(self: Arc<Pool>) {
        // A state left pristine by its task, for the next task.
        let mut spare = None;
        let mut spin = false;
        // SAFETY: reads this thread's scheduling policy.
        let normal = unsafe { libc::sched_getscheduler(0) } == libc::SCHED_OTHER;
        let mut q = self.lock();
        loop {
            if q.closed || q.actual > q.expected {
                q.actual -= 1;
                self.tell_closers(q);
                return;
            }
            let Some(task) = q.pending.pop_front() else {
                if std::mem::take(&mut spin) {
                    let seen = self.pushes.load(Ordering::Relaxed);
                    drop(q);
                    self.watch_pushes(seen);
                    q = self.lock();
                    continue;
                }
                q.idle += 1;
                q = batch_while(normal, || {
                    self.work.wait(q).unwrap_or_else(|e| e.into_inner())
                });
                q.idle -= 1;
                q.signalled = q.signalled.saturating_sub(1);
                continue;
            };
            q.running += 1;
            spin = true;
            drop(q);
            let after = self.run(task, &mut spare);
            q = self.lock();
            q.running -= 1;
            match after {
                After::Ended(task, clean) => {
                    drop(q);
                    // Closes its state without the lock, or keeps it.
                    if let Body::Started(state) = task.body
                        && clean
                        && state.pristine()
                    {
                        spare = Some(state);
                    }
                    q = self.lock();
                }
                After::Requeue(task) => q.pending.push_back(task),
                After::Park(task) => {
                    q.suspended += 1;
                    q.parked.push(task.park.clone());
                    drop(q);
                    self.park(task);
                    q = self.lock();
                }
                After::Await(task, name, endpoint, values) => {
                    q.suspended += 1;
                    drop(q);
                    self.suspend(task, &name, endpoint, values);
                    q = self.lock();
                }
            }
            if q.closers_due() {
                self.changed.notify_all();
            }
        }
    }

    /// Returns when a task was queued since `pushes` was `seen`, or after
    /// [`SPIN`].
    fn watch_pushes(&self, seen: u64) {
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
            if start.elapsed() > SPIN {
                break;
            }
        }
        self.watching.store(false, Ordering::Relaxed);
    }

    /// Gives `task` its state: the spare one if it has the same origin,
    /// else a new one; false if it cannot be made (no memory).
    fn start(self: &Arc<Pool>, task: &mut Task, spare: &mut Option<IndState>) -> bool {
        let Body::New(code, origin) = &task.body else {
            return true;
        };
        let park = Arc::as_ptr(&task.park) as *const c_void;
        let mut state = match spare.take() {
            Some(state) if state.origin().same(origin) => {
                state.set_park(park);
                state
            }
            other => {
                drop(other);
                let link = TaskLink {
                    pool: Arc::as_ptr(self) as *const c_void,
                    park,
                };
                match IndState::new(origin, link) {
                    Ok(state) => state,
                    Err(_) => return false,
                }
            }
        };
        if state.load(code).is_err() {
            return false;
        }
        state.watch();
        task.body = Body::Started(state);
        true
    }

    fn park(self: &Arc<Pool>, task: Task) {
        let park = task.park.clone();
        let pool = self.clone();
        let requeue = Box::new(move || {
            let mut q = pool.lock();
            q.suspended -= 1;
            q.parked.retain(|p| !Arc::ptr_eq(p, &task.park));
            drop(q);
            pool.push(task);
            pool.tell_closers(pool.lock());
        });
        if let Some(requeue) = park.park(requeue) {
            requeue();
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
            group: self.id,
            counted: true,
            wake: Box::new(move |peer| pool.wake(task, peer)),
        };
        matcher::exchange(domain, name, ep, values, Some(pending));
    }
}

/// Runs `wait` (a pool thread waiting for work) under the SCHED_BATCH
/// policy if the thread has the normal one (`normal`): a batch thread
/// woken up does not preempt the one that woke it, so the thread queuing
/// tasks keeps its processor while the woken thread takes an idle one (or
/// runs at the next scheduler tick). Tasks run under the normal policy, so
/// processes they start do not inherit the batch one.
fn batch_while<T>(normal: bool, wait: impl FnOnce() -> T) -> T {
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

/// The parking slot of the task running in `lua`'s state, if any.
pub fn park_ref<'a>(lua: Lua) -> Option<&'a Park> {
    let p = super::state::task_park(lua) as *const Park;
    // SAFETY: stored by `Pool::start` for the task running in the state
    // (the one running this call), whose `park` Arc lives as long as it.
    unsafe { p.as_ref() }
}

/// Like [`park_ref`], as a new reference.
pub fn park_arc(lua: Lua) -> Option<Arc<Park>> {
    let p = super::state::task_park(lua) as *const Park;
    if p.is_null() {
        return None;
    }
    // SAFETY: as in `park_ref`; one more strong reference is made.
    unsafe {
        Arc::increment_strong_count(p);
        Some(Arc::from_raw(p))
    }
}

/// What a worker does with a task after resuming it.
enum After {
    /// The task ended; true if its chunk returned.
    Ended(Task, bool),
    Requeue(Task),
    /// `system.run` in the task waits only for `awaitch` calls.
    Park(Task),
    Await(Task, Vec<u8>, matcher::Endpoint, Vec<Value>),
}

impl Task {
    fn origin(&self) -> &Origin {
        match &self.body {
            Body::New(_, origin) => origin,
            Body::Started(state) => state.origin(),
        }
    }
}

impl Pool {
    /// Resumes `task` until it ends or yields something that releases the
    /// thread.
    fn run(self: &Arc<Pool>, mut task: Task, spare: &mut Option<IndState>) -> After {
        if !self.start(&mut task, spare) {
            return After::Ended(task, false);
        }
        let Body::Started(state) = &task.body else {
            return After::Ended(task, false);
        };
        let co = state.co();
        resume(task, co)
    }
}

/// Resumes `task`, whose chunk runs in `co`, until it ends or yields
/// something that releases the thread.
fn resume(mut task: Task, co: Lua) -> After {
    loop {
        let args = std::mem::take(&mut task.args);
        if transfer::push(co, &args).is_err() {
            return After::Ended(task, false);
        }
        let mut nres = 0;
        // SAFETY: this worker holds the task, so nothing else uses its
        // state; `co` holds the chunk (or its yield) and the arguments.
        let status = unsafe {
            ffi::lua_resume(
                co.raw(),
                std::ptr::null_mut(),
                args.len() as c_int,
                &mut nres,
            )
        };
        match status {
            ffi::LUA_OK => return After::Ended(task, true),
            ffi::LUA_YIELD => {
                let first = co.top() - nres + 1;
                if nres == 0 && task.park.requested.swap(false, Ordering::Relaxed) {
                    return After::Park(task);
                }
                if nres == 0 || co.type_of(first) != ffi::LUA_TSTRING {
                    co.set_top(first - 1);
                    return After::Requeue(task);
                }
                match channel_yield(co, first) {
                    Ok((name, ep, values)) => {
                        co.set_top(first - 1);
                        return After::Await(task, name, ep, values);
                    }
                    Err(msg) => {
                        co.set_top(first - 1);
                        task.args = vec![Value::Bool(false), Value::Str(msg.into())];
                    }
                }
            }
            _ => {
                let mut text = b"[coutil] threads: ".to_vec();
                match co.to_bytes(-1) {
                    Some(msg) => text.extend_from_slice(msg),
                    None => text.extend_from_slice(b"(error object is not a string)"),
                }
                co.warn(&text);
                return After::Ended(task, false);
            }
        }
    }
}

type ChannelYield = (Vec<u8>, matcher::Endpoint, Vec<Value>);

/// `coroutine.yield(name, endpoint, ...)` of a task: name at `first`.
fn channel_yield(co: Lua, first: c_int) -> Result<ChannelYield, Vec<u8>> {
    let name = co.to_bytes(first).unwrap_or_default().to_vec();
    let ep = channel::endpoint(co, first + 1, 2)?;
    let values = transfer::take_or_message(co, first + 2, "argument", 3)?;
    Ok((name, ep, values))
}
