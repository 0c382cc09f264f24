//! Parking of pool tasks (spec loop-time.md, `system.run` in pool tasks):
//! a task whose `system.run` waits only for `awaitch` calls yields its
//! system thread, and the first match of one of those calls queues it
//! again.

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard};

use super::matcher::Discard;
use crate::lua::Lua;

std::thread_local! {
    /// Set in the threads of pools, the only ones that run pool tasks.
    static POOL_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the calling thread as a pool's (at its start).
pub(super) fn mark_pool_thread() {
    POOL_THREAD.with(|p| p.set(true));
}

/// Can the running code be a pool task? Only in a pool's thread: tasks
/// are run by `Pool::run`, called by those threads alone.
pub(super) fn in_pool_thread() -> bool {
    POOL_THREAD.with(|p| p.get())
}

/// Queues a parked task again; gives it back to be dropped (without the
/// matcher's lock) if its pool was freed.
pub(super) type Requeue = Box<dyn FnOnce() -> Option<Discard> + Send>;

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
    Parked(Requeue),
}

impl Park {
    fn lock(&self) -> MutexGuard<'_, Parking> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An `awaitch` of the task state was matched (called under the
    /// matcher's lock; the requeue takes the pool's lock after it).
    /// Returns the task if its pool was freed, to be dropped after the
    /// matcher's lock is released.
    pub fn notify(&self) -> Option<Discard> {
        let mut slot = self.lock();
        match std::mem::replace(&mut *slot, Parking::Running) {
            Parking::Parked(requeue) => {
                drop(slot);
                requeue()
            }
            _ => {
                *slot = Parking::Woken;
                None
            }
        }
    }

    /// Parks with `requeue`, or gives it back if a match came meanwhile.
    pub(super) fn park(&self, requeue: Requeue) -> Option<Requeue> {
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
}

/// The parking slot of the task running in `lua`'s state, if any; the
/// reference borrows the `Lua` handle, so it cannot outlive the caller
/// (a job or thread that keeps the slot takes [`park_arc`]).
pub fn park_ref(lua: &Lua) -> Option<&Park> {
    let p = super::state::task_park(*lua) as *const Park;
    // SAFETY: stored by `Pool::start` (task.rs) for the task running in the state
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
