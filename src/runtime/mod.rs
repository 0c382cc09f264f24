//! The event loop. It knows operations, not Lua: an *operation* is a
//! waiter (whatever the caller stores, for `coutil.system` a suspended
//! coroutine) and what it waits for: a timer, the next iteration (*idle*),
//! I/O readiness of a registered source, or the completion of a job on the
//! worker pool. The driver (`system.run`) takes ready operations one at a
//! time with `pop_*` and delivers them; no borrow of the loop is held while
//! it does, because delivering re-enters the loop to arm or cancel.
//!
//! One iteration, in libuv's order (the ordering contracts of
//! spec/loop-time.md and rule R1 of spec/behaviour-rules.md depend on it):
//! 1. update the cached time;
//! 2. due timers, by due time, ties in arming order;
//! 3. the pending queue (libuv's "pending" phase): operations completed
//!    during a call since the last pass (a write the OS took at once) and
//!    source handlers to run (a `shutdown`, a failed `connect`), in the
//!    order they were queued; what is queued meanwhile waits for the next
//!    iteration;
//! 4. the idle queue: a pass over the entries present when it starts,
//!    newest first (LIFO); an operation re-armed as idle while it is being
//!    delivered keeps its place, new ones wait for the next pass;
//! 5. poll (mio) for readiness and worker completions, blocking only when
//!    nothing above is ready; skipped when no source or job exists; then
//!    the *rechecks*: source handlers called as if their source were ready
//!    (a `read` of a socket that may hold data already; edge-triggered
//!    readiness would not report it again);
//! 6. the closing phase: cancelled operations are released, and those
//!    re-armed while closing are armed now.
//!
//! Timers and idle entries are deleted lazily: each arming gets a new
//! `stamp`, and entries whose stamp is stale are skipped when met.

mod arming;
mod clock;
pub mod driver;
pub mod idle;
mod io;
mod phases;
pub mod pool;
mod sources;
mod timer;

use std::any::Any;
use std::collections::VecDeque;

pub use mio::Interest;

pub use clock::{epoch_secs, monotonic_ns};
use io::Reactor;
pub use io::{Completions, Handler, Readiness, SourceHandler, Token};
pub use sources::{ArmFailed, Remote};
use timer::Timers;

/// The result a worker job sends back to its loop.
pub type Outcome = Box<dyn Any + Send>;

/// Identifies an operation: slot index and generation, packed so that it
/// fits the continuation context of `lua_yieldk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpId {
    index: u32,
    generation: u32,
}

impl OpId {
    pub fn to_bits(self) -> u64 {
        (self.generation as u64) << 32 | self.index as u64
    }
    pub fn from_bits(bits: u64) -> OpId {
        OpId {
            index: bits as u32,
            generation: (bits >> 32) as u32,
        }
    }
}

/// What an operation waits for.
pub enum Wait {
    /// A timer of this many milliseconds from the cached time.
    Timer(u64),
    /// The next iteration.
    Idle,
    /// Completion of a job on the worker pool.
    Work(Box<dyn FnOnce() -> Outcome + Send>),
    /// Nothing the loop watches: completed by [`Loop::complete`] or by a
    /// source handler.
    External,
}

/// An entry of the pending queue.
enum Pending {
    /// A completed operation (slot index, stamp of the completion).
    Op(u32, u32),
    /// A source handler to run; what it completes is delivered at once.
    Source(Handler, Readiness),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Free,
    /// Allocated, not armed yet.
    New,
    /// Waiting for its condition.
    Armed,
    /// Taken by the driver; it is being delivered.
    Delivering,
    /// Cancelled; released in the closing phase.
    Closing,
}

struct Op<W> {
    generation: u32,
    state: State,
    stamp: u32,
    /// The op has an idle entry with the current stamp in the idle list.
    in_idle: bool,
    /// Not counted in `active` (see [`Loop::set_weak`]).
    weak: bool,
    /// While closing: what to arm in the closing phase.
    rearm: Option<Wait>,
    outcome: Option<Outcome>,
    /// Key of the current [`Remote`]; changed by `remote` and `cancel`, so
    /// completions of older remotes are ignored.
    remote: u32,
    /// A worker job of it has not reported yet.
    job: bool,
    /// Cancelled with an arming deferred until its job reports (the same
    /// coroutine waits again: its new work must not run beside the old).
    after_job: bool,
    waiter: Option<W>,
}

/// The loop of one Lua state; `W` is the waiter type of the driver.
pub struct Loop<W> {
    now_ns: u64,
    ops: Vec<Op<W>>,
    free: Vec<u32>,
    /// Operations not `Free` and not weak: the loop is alive while this
    /// is not 0.
    active: usize,
    /// Weak operations (not `Free`).
    weak: usize,
    timers: Timers,
    idle: VecDeque<(u32, u32)>,
    idle_pass: VecDeque<(u32, u32)>,
    idle_armed: usize,
    ready: VecDeque<OpId>,
    pending: VecDeque<Pending>,
    pending_pass: VecDeque<Pending>,
    rechecks: Vec<(Handler, Readiness)>,
    /// Closing operations waiting for their job before being armed again.
    after_job: Vec<OpId>,
    /// Reused buffers of what handlers and workers completed (kept empty).
    handled: Completions,
    jobs_done: Vec<(u64, u32, Outcome)>,
    closing: Vec<OpId>,
    reactor: Option<Reactor>,
    jobs_in_flight: usize,
    pub halted: bool,
    pub running: bool,
}

impl<W> Default for Loop<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W> Loop<W> {
    pub fn new() -> Self {
        Loop {
            now_ns: monotonic_ns(),
            ops: Vec::new(),
            free: Vec::new(),
            active: 0,
            weak: 0,
            timers: Timers::default(),
            idle: VecDeque::new(),
            idle_pass: VecDeque::new(),
            idle_armed: 0,
            ready: VecDeque::new(),
            pending: VecDeque::new(),
            pending_pass: VecDeque::new(),
            rechecks: Vec::new(),
            after_job: Vec::new(),
            handled: Completions::default(),
            jobs_done: Vec::new(),
            closing: Vec::new(),
            reactor: None,
            jobs_in_flight: 0,
            halted: false,
            running: false,
        }
    }

    /// The cached monotonic time in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    pub fn update_time(&mut self) {
        self.now_ns = monotonic_ns();
    }

    /// Number of operations not yet released, weak ones excepted.
    pub fn active(&self) -> usize {
        self.active
    }

    /// Number of weak operations not yet released.
    pub fn weak(&self) -> usize {
        self.weak
    }

    /// Makes `id` weak or not: a weak operation does not keep the loop
    /// alive (libuv's unreferenced handles), so `system.run` may return
    /// while it is armed; it is delivered by a later run if still armed.
    pub fn set_weak(&mut self, id: OpId, weak: bool) {
        let Some(op) = self.op_mut(id) else { return };
        if op.weak == weak {
            return;
        }
        op.weak = weak;
        if weak {
            self.active -= 1;
            self.weak += 1;
        } else {
            self.active += 1;
            self.weak -= 1;
        }
    }

    fn op(&self, id: OpId) -> Option<&Op<W>> {
        self.ops
            .get(id.index as usize)
            .filter(|op| op.generation == id.generation && op.state != State::Free)
    }

    fn op_mut(&mut self, id: OpId) -> Option<&mut Op<W>> {
        self.ops
            .get_mut(id.index as usize)
            .filter(|op| op.generation == id.generation && op.state != State::Free)
    }

    /// A new operation for `waiter`, not armed yet.
    pub fn alloc(&mut self, waiter: W) -> OpId {
        self.active += 1;
        if let Some(index) = self.free.pop() {
            let op = &mut self.ops[index as usize];
            op.state = State::New;
            op.waiter = Some(waiter);
            return OpId {
                index,
                generation: op.generation,
            };
        }
        let index = self.ops.len() as u32;
        self.ops.push(Op {
            generation: 0,
            state: State::New,
            stamp: 0,
            in_idle: false,
            weak: false,
            rearm: None,
            outcome: None,
            remote: 0,
            job: false,
            after_job: false,
            waiter: Some(waiter),
        });
        OpId {
            index,
            generation: 0,
        }
    }

    pub fn waiter(&self, id: OpId) -> Option<&W> {
        self.op(id).and_then(|op| op.waiter.as_ref())
    }

    pub fn waiter_mut(&mut self, id: OpId) -> Option<&mut W> {
        self.op_mut(id).and_then(|op| op.waiter.as_mut())
    }

    /// The outcome of `id`, being delivered, for its continuation (once),
    /// with what the waiter says of it (`part`).
    #[inline]
    pub fn take_delivery<T>(
        &mut self,
        id: OpId,
        part: impl Fn(&W) -> T,
    ) -> Option<(T, Option<Outcome>)> {
        let op = self.op_mut(id).filter(|op| op.state == State::Delivering)?;
        let outcome = op.outcome.take();
        Some((part(op.waiter.as_ref()?), outcome))
    }

    /// Is `id` being delivered right now?
    pub fn is_delivering(&self, id: OpId) -> bool {
        self.op(id).is_some_and(|op| op.state == State::Delivering)
    }

    /// Is `id` cancelled and waiting for the closing phase?
    pub fn is_closing(&self, id: OpId) -> bool {
        self.op(id).is_some_and(|op| op.state == State::Closing)
    }

    /// The armed operations whose waiter matches `pred`.
    pub fn armed_where(&self, pred: impl Fn(&W) -> bool) -> Vec<OpId> {
        self.ops
            .iter()
            .enumerate()
            .filter(|(_, op)| op.state == State::Armed && op.waiter.as_ref().is_some_and(&pred))
            .map(|(index, op)| OpId {
                index: index as u32,
                generation: op.generation,
            })
            .collect()
    }

    /// The closing operation whose waiter satisfies `pred`, if any.
    pub fn find_closing(&self, pred: impl Fn(&W) -> bool) -> Option<OpId> {
        self.closing
            .iter()
            .chain(&self.after_job)
            .copied()
            .find(|&id| self.is_closing(id) && self.waiter(id).is_some_and(&pred))
    }
}

#[cfg(test)]
mod tests;
