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

mod clock;
pub mod driver;
pub mod idle;
mod io;
pub mod pool;
mod timer;

use std::any::Any;
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

pub use mio::Interest;
use mio::unix::SourceFd;

pub use clock::{epoch_secs, monotonic_ns};
pub use io::{Completions, Handler, Readiness, SourceHandler, Token};
use io::{Inbox, Reactor};
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

    /// The closing operation whose waiter satisfies `pred`, if any.
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

    pub fn find_closing(&self, pred: impl Fn(&W) -> bool) -> Option<OpId> {
        self.closing
            .iter()
            .chain(&self.after_job)
            .copied()
            .find(|&id| self.is_closing(id) && self.waiter(id).is_some_and(&pred))
    }

    /// Arms a new or delivering operation. An idle operation re-armed as
    /// idle during its own delivery keeps its place in the idle list.
    /// Failure-atomic: when a job cannot be submitted (no descriptor for the
    /// poll), the operation is left as it was.
    pub fn arm(&mut self, id: OpId, wait: Wait) -> std::io::Result<()> {
        let now = self.now_ns;
        let Some(op) = self.op(id) else {
            return Ok(());
        };
        debug_assert!(matches!(
            op.state,
            State::New | State::Delivering | State::Closing
        ));
        let keep_place = matches!(wait, Wait::Idle) && op.in_idle && op.state == State::Delivering;
        let stamp = if keep_place {
            op.stamp
        } else {
            op.stamp.wrapping_add(1)
        };
        if let Wait::Work(job) = wait {
            self.submit(id, stamp, job)?;
            let op = &mut self.ops[id.index as usize];
            op.state = State::Armed;
            op.stamp = stamp;
            op.in_idle = false;
            return Ok(());
        }
        let op = &mut self.ops[id.index as usize];
        op.state = State::Armed;
        op.stamp = stamp;
        if !keep_place {
            op.in_idle = false;
        }
        match wait {
            Wait::Idle => {
                self.idle_armed += 1;
                if !keep_place {
                    self.idle.push_front((id.index, stamp));
                    self.ops[id.index as usize].in_idle = true;
                }
            }
            Wait::Timer(ms) => {
                let due = now.saturating_add(ms.saturating_mul(1_000_000));
                self.timers.push(due, id.index, stamp);
            }
            Wait::Work(_) | Wait::External => {}
        }
        Ok(())
    }

    /// Arms `id` again during its own delivery if its waiter passes
    /// `same` (`wait` is given back otherwise): `update` changes the
    /// waiter first, and the operation stops being weak; then as
    /// [`arm`](Self::arm). One look-up for what an await of the coroutine
    /// being resumed does.
    #[inline]
    pub fn rearm_delivering(
        &mut self,
        id: OpId,
        same: impl FnOnce(&W) -> bool,
        update: impl FnOnce(&mut W),
        wait: Wait,
    ) -> Result<std::io::Result<()>, Wait> {
        let Some(op) = self.op_mut(id).filter(|op| op.state == State::Delivering) else {
            return Err(wait);
        };
        let Some(waiter) = op.waiter.as_mut().filter(|w| same(w)) else {
            return Err(wait);
        };
        update(waiter);
        let was_weak = std::mem::take(&mut op.weak);
        // `arm`'s case of an idle op re-armed as idle (a coroutine calling
        // `suspend()` in a loop), without its look-up.
        let keep_place = matches!(wait, Wait::Idle) && op.in_idle;
        if keep_place {
            op.state = State::Armed;
            self.idle_armed += 1;
        }
        if was_weak {
            self.weak -= 1;
            self.active += 1;
        }
        if keep_place {
            return Ok(Ok(()));
        }
        Ok(self.arm(id, wait))
    }

    /// Releases a new operation that could not be armed; returns its waiter.
    pub fn discard(&mut self, id: OpId) -> Option<W> {
        if self.op(id).is_some_and(|op| op.state == State::New) {
            self.release(id)
        } else {
            None
        }
    }

    /// Records what to arm once the closing operation `id` is released.
    pub fn defer(&mut self, id: OpId, wait: Wait) {
        if let Some(op) = self.op_mut(id) {
            op.rearm = Some(wait);
        }
    }

    /// Cancels an armed operation (or the deferred arming of a closing
    /// one); it is released in the closing phase. Returns false if `id` was
    /// neither.
    pub fn cancel(&mut self, id: OpId) -> bool {
        let Some(op) = self.op_mut(id) else {
            return false;
        };
        match op.state {
            State::Armed => {
                op.state = State::Closing;
                op.stamp = op.stamp.wrapping_add(1); // stale timer/idle entries
                op.remote = op.remote.wrapping_add(1); // stale remote
                op.outcome = None;
                if op.in_idle {
                    op.in_idle = false;
                    self.idle_armed -= 1;
                }
                self.closing.push(id);
                true
            }
            State::Closing => {
                op.remote = op.remote.wrapping_add(1);
                op.outcome = None;
                op.rearm.take().is_some()
            }
            _ => false,
        }
    }

    fn take_for_delivery(&mut self, index: u32, stamp: u32) -> Option<OpId> {
        let op = self.ops.get_mut(index as usize)?;
        if op.state != State::Armed || op.stamp != stamp {
            return None;
        }
        op.state = State::Delivering;
        Some(OpId {
            index,
            generation: op.generation,
        })
    }

    /// The next timer due at the cached time, taken for delivery.
    #[inline]
    pub fn pop_timer(&mut self) -> Option<OpId> {
        // NOTE: the checks before the loops of the phases cost a few
        // instructions each when the phase has nothing to do, which is
        // most iterations (see "The loop" in doc/devnotes.md).
        if !self.timers.due(self.now_ns) {
            return None;
        }
        self.pop_due_timer()
    }

    fn pop_due_timer(&mut self) -> Option<OpId> {
        while let Some((index, stamp)) = self.timers.pop_due(self.now_ns) {
            if let Some(id) = self.take_for_delivery(index, stamp) {
                return Some(id);
            }
        }
        None
    }

    /// Starts a pass over the idle list.
    #[inline]
    pub fn begin_idle(&mut self) {
        debug_assert!(self.idle_pass.is_empty());
        std::mem::swap(&mut self.idle, &mut self.idle_pass);
    }

    /// The next operation of the idle pass, taken for delivery; it stays in
    /// the idle list (at its end) so that re-arming keeps its place.
    #[inline]
    pub fn pop_idle(&mut self) -> Option<OpId> {
        while let Some((index, stamp)) = self.idle_pass.pop_front() {
            if let Some(id) = self.take_for_delivery(index, stamp) {
                self.idle_armed -= 1;
                self.idle.push_back((index, stamp));
                return Some(id);
            }
        }
        None
    }

    /// Waits for readiness and completions, at most `timeout` (`None`:
    /// without limit), and queues the ready operations. With no source and
    /// no job in flight there is nothing to poll: it only sleeps.
    #[inline]
    pub fn poll(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        if timeout == Some(Duration::ZERO) && !self.has_pollables() {
            return Ok(());
        }
        self.poll_or_sleep(timeout)
    }

    /// Whether the poll has anything to watch: a source or a job.
    #[inline]
    fn has_pollables(&self) -> bool {
        self.jobs_in_flight > 0 || self.reactor.as_ref().is_some_and(|r| r.sources() > 0)
    }

    fn poll_or_sleep(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        match self.reactor.as_mut() {
            Some(r) if r.sources() > 0 || self.jobs_in_flight > 0 => {
                let mut done = std::mem::take(&mut self.jobs_done);
                let mut completed = std::mem::take(&mut self.handled);
                let polled = r.poll(timeout, &mut completed, &mut done);
                let remote = r.take_remote();
                for (id, outcome) in completed.drain() {
                    self.complete(id, outcome);
                }
                self.handled = completed;
                for (bits, key, outcome) in remote {
                    self.jobs_in_flight -= 1;
                    self.remote_done(OpId::from_bits(bits), key, outcome);
                }
                for (bits, stamp, outcome) in done.drain(..) {
                    self.jobs_in_flight -= 1;
                    let id = OpId::from_bits(bits);
                    let Some(op) = self.op_mut(id) else { continue };
                    op.job = false;
                    if op.stamp == stamp && op.state == State::Armed {
                        op.outcome = Some(outcome);
                        self.ready.push_back(id);
                    } else if std::mem::take(&mut op.after_job) {
                        self.after_job.retain(|&other| other != id);
                        self.closing.push(id);
                    }
                }
                self.jobs_done = done;
                polled?;
            }
            _ => {
                if let Some(t) = timeout.filter(|t| !t.is_zero()) {
                    std::thread::sleep(t);
                }
            }
        }
        Ok(())
    }

    /// Makes the armed operation `id` ready, with `outcome` for its
    /// delivery; ignored if `id` is not armed (e.g. it was cancelled).
    /// An operation closing with an arming deferred to the closing phase
    /// keeps the completion for that arming (`Some(())` if `outcome` is
    /// `None`), as for remotes: a source handler may complete a wait that
    /// a coroutine registered again right after cancelling its previous one.
    pub fn complete(&mut self, id: OpId, outcome: Option<Outcome>) {
        if self.mark_complete(id, outcome).is_some() {
            self.ready.push_back(id);
        }
    }

    /// Like [`complete`](Self::complete), but the operation is delivered in
    /// the pending phase of the next iteration (of this one, if called
    /// before it): how an await whose result is known during the call
    /// still suspends (R1), at the cost of a queue entry.
    pub fn complete_later(&mut self, id: OpId, outcome: Option<Outcome>) {
        if let Some(stamp) = self.mark_complete(id, outcome) {
            self.pending.push_back(Pending::Op(id.index, stamp));
        }
    }

    /// Records the completion of an armed operation; returns its new stamp
    /// (`None` if it is not armed: the caller queues nothing).
    fn mark_complete(&mut self, id: OpId, outcome: Option<Outcome>) -> Option<u32> {
        let op = self.op_mut(id)?;
        match op.state {
            State::Armed => {
                op.stamp = op.stamp.wrapping_add(1); // a timer entry of it is stale now
                op.outcome = outcome;
                let stamp = op.stamp;
                if std::mem::replace(&mut op.in_idle, false) {
                    self.idle_armed -= 1;
                }
                Some(stamp)
            }
            State::Closing if op.rearm.is_some() => {
                op.outcome = Some(outcome.unwrap_or_else(|| Box::new(())));
                None
            }
            _ => None,
        }
    }

    /// Runs `handler` with `readiness` in the pending phase of the next
    /// iteration; what it completes is delivered there.
    pub fn pend_source(&mut self, handler: Handler, readiness: Readiness) {
        self.pending.push_back(Pending::Source(handler, readiness));
    }

    /// Runs `handler` with `readiness` in the poll phase, after the
    /// kernel's events; what it completes is delivered there.
    pub fn recheck(&mut self, handler: Handler, readiness: Readiness) {
        self.rechecks.push((handler, readiness));
    }

    /// Starts the pending phase: what is queued from now on waits for the
    /// next one.
    #[inline]
    pub fn begin_pending(&mut self) {
        debug_assert!(self.pending_pass.is_empty());
        if !self.pending.is_empty() {
            std::mem::swap(&mut self.pending, &mut self.pending_pass);
        }
    }

    /// The next operation of the pending phase, taken for delivery.
    #[inline]
    pub fn pop_pending(&mut self) -> Option<OpId> {
        if self.pending_pass.is_empty() {
            return None;
        }
        self.pop_pending_pass()
    }

    fn pop_pending_pass(&mut self) -> Option<OpId> {
        while let Some(entry) = self.pending_pass.pop_front() {
            match entry {
                Pending::Op(index, stamp) => {
                    if let Some(id) = self.take_for_delivery(index, stamp) {
                        return Some(id);
                    }
                }
                Pending::Source(handler, readiness) => {
                    let mut done = std::mem::take(&mut self.handled);
                    handler.borrow_mut().ready(readiness, &mut done);
                    // Delivered next, in order, before the rest of the pass.
                    let mut at = 0;
                    for (id, outcome) in done.drain() {
                        if let Some(stamp) = self.mark_complete(id, outcome) {
                            self.pending_pass.insert(at, Pending::Op(id.index, stamp));
                            at += 1;
                        }
                    }
                    self.handled = done;
                }
            }
        }
        None
    }

    /// Runs the rechecks queued so far; what they complete is ready for
    /// delivery. False if there were none.
    #[inline]
    pub fn run_rechecks(&mut self) -> bool {
        if self.rechecks.is_empty() {
            return false;
        }
        self.run_queued_rechecks();
        true
    }

    fn run_queued_rechecks(&mut self) {
        let mut done = std::mem::take(&mut self.handled);
        let mut rechecks = std::mem::take(&mut self.rechecks);
        for (handler, readiness) in rechecks.drain(..) {
            handler.borrow_mut().ready(readiness, &mut done);
        }
        for (id, outcome) in done.drain() {
            self.complete(id, outcome);
        }
        self.handled = done;
        if self.rechecks.is_empty() {
            self.rechecks = rechecks; // keeps its capacity
        }
    }

    /// The next operation made ready by the poll, taken for delivery.
    #[inline]
    pub fn pop_ready(&mut self) -> Option<OpId> {
        while let Some(id) = self.ready.pop_front() {
            if let Some(op) = self.op_mut(id).filter(|op| op.state == State::Armed) {
                op.state = State::Delivering;
                return Some(id);
            }
        }
        None
    }

    /// Takes the operation `id`, completed and waiting in the ready queue,
    /// for delivery out of turn. False if it is not waiting there.
    pub fn take_completed(&mut self, id: OpId) -> bool {
        if self.op(id).is_none_or(|op| op.state != State::Armed) {
            return false;
        }
        let before = self.ready.len();
        self.ready.retain(|&r| r != id);
        if self.ready.len() == before {
            return false;
        }
        self.ops[id.index as usize].state = State::Delivering;
        true
    }

    /// Ends the delivery of `id`: unless it was armed again meanwhile, the
    /// operation is released and its waiter returned.
    pub fn finish(&mut self, id: OpId) -> Option<W> {
        if self.is_delivering(id) {
            self.release(id)
        } else {
            None
        }
    }

    fn release(&mut self, id: OpId) -> Option<W> {
        let op = &mut self.ops[id.index as usize];
        op.state = State::Free;
        op.job = false;
        op.after_job = false;
        op.generation = op.generation.wrapping_add(1);
        op.stamp = op.stamp.wrapping_add(1);
        op.in_idle = false;
        op.outcome = None;
        if op.weak {
            op.weak = false;
            self.weak -= 1;
        } else {
            self.active -= 1;
        }
        self.free.push(id.index);
        op.waiter.take()
    }

    /// The closing phase: releases cancelled operations (returning their
    /// waiters) and arms those re-armed while closing.
    #[inline]
    pub fn close_pending(&mut self) -> Vec<W> {
        if self.closing.is_empty() {
            return Vec::new();
        }
        self.close_cancelled()
    }

    fn close_cancelled(&mut self) -> Vec<W> {
        let mut released = Vec::new();
        for id in std::mem::take(&mut self.closing) {
            if let Some(op) = self.op_mut(id).filter(|op| op.job && op.rearm.is_some()) {
                // Armed again once its job reported (see `poll`).
                op.after_job = true;
                self.after_job.push(id);
                continue;
            }
            let rearm = self.op_mut(id).and_then(|op| op.rearm.take());
            match rearm {
                Some(wait) => {
                    if let Err(e) = self.arm(id, wait) {
                        // Its coroutine waits: it gets the failure.
                        let op = &mut self.ops[id.index as usize];
                        op.state = State::Armed;
                        op.stamp = op.stamp.wrapping_add(1);
                        op.outcome = Some(Box::new(ArmFailed(e)));
                        self.ready.push_back(id);
                    } else if self.ops[id.index as usize].outcome.is_some() {
                        // Completed by its remote before it was armed.
                        self.ready.push_back(id);
                    }
                }
                None => released.extend(self.release(id)),
            }
        }
        // Cancelled timers leave stale entries: drop them when they
        // outnumber the live operations.
        if self.timers.len() > 2 * self.active + 64 {
            let ops = &self.ops;
            self.timers.retain(|index, stamp| {
                let op = &ops[index as usize];
                op.state == State::Armed && op.stamp == stamp
            });
        }
        released
    }

    /// How long the poll of this iteration may block: not at all when
    /// something is ready already or the loop was halted; until the next
    /// timer; without limit when only I/O or jobs are pending.
    #[inline]
    pub fn poll_timeout(&mut self) -> Option<Duration> {
        if self.halted
            || self.idle_armed > 0
            || !self.closing.is_empty()
            || !self.ready.is_empty()
            || !self.pending.is_empty()
            || !self.rechecks.is_empty()
        {
            return Some(Duration::ZERO);
        }
        self.timer_timeout()
    }

    fn timer_timeout(&mut self) -> Option<Duration> {
        // Stale entries at the top would wake the poll for nothing.
        let ops = &self.ops;
        self.timers.drop_stale_top(|index, stamp| {
            let op = &ops[index as usize];
            op.state == State::Armed && op.stamp == stamp
        });
        match self.timers.next_due() {
            // Only weak operations: the loop ends after this iteration.
            _ if self.active == 0 => Some(Duration::ZERO),
            Some(due) => Some(Duration::from_nanos(due.saturating_sub(monotonic_ns()))),
            None if self.active > 0 => None,
            None => Some(Duration::ZERO),
        }
    }

    /// Registers an I/O source whose readiness runs `handler` in the poll
    /// phase; operations wait for it with `Wait::External`. A watch of
    /// the same descriptor number is forgotten (its descriptor was closed):
    /// what its handler completes then is delivered in this iteration.
    pub fn register_handler(
        &mut self,
        source: &mut SourceFd<'_>,
        handler: Handler,
    ) -> std::io::Result<Token> {
        let mut done = std::mem::take(&mut self.handled);
        let token = self.reactor()?.register(source, handler, &mut done);
        for (id, outcome) in done.drain() {
            self.complete(id, outcome);
        }
        self.handled = done;
        token
    }

    /// Removes a registered source; operations waiting on it are not woken.
    pub fn deregister(&mut self, source: &mut SourceFd<'_>, token: Token) -> std::io::Result<()> {
        match self.reactor.as_mut() {
            Some(r) => r.deregister(source, token),
            None => Ok(()),
        }
    }

    /// Watches a descriptor that is not ours for `interest` (see
    /// `io::Reactor::watch`): `handler` runs in the poll phase when it is
    /// ready, including when it is ready already.
    pub fn watch_fd(
        &mut self,
        fd: RawFd,
        interest: Interest,
        handler: Handler,
    ) -> std::io::Result<Token> {
        self.reactor()?.watch(fd, interest, handler)
    }

    /// The handler of the watch of `fd`, if it is watched.
    pub fn watcher(&self, fd: RawFd) -> Option<Handler> {
        self.reactor.as_ref()?.watcher(fd)
    }

    /// Stops watching `fd` (nothing if `token` is not its watch any more).
    pub fn unwatch_fd(&mut self, fd: RawFd, token: Token) {
        if let Some(r) = self.reactor.as_mut() {
            r.unwatch(fd, token);
        }
    }

    fn reactor(&mut self) -> std::io::Result<&mut Reactor> {
        if self.reactor.is_none() {
            self.reactor = Some(Reactor::new()?);
        }
        Ok(self.reactor.as_mut().expect("just created"))
    }

    /// A completer of the `External` operation `id` usable from any thread:
    /// armed, or closing with an arming deferred to the closing phase (a
    /// completion arriving before that arming is kept for it). Cancelling
    /// the operation makes the remote stale: its completion is ignored.
    pub fn remote(&mut self, id: OpId) -> std::io::Result<Remote> {
        let inbox = self.reactor()?.inbox();
        let op = self
            .op_mut(id)
            .filter(|op| op.state == State::Armed || op.rearm.is_some())
            .ok_or_else(|| std::io::Error::other("remote of an unarmed operation"))?;
        op.remote = op.remote.wrapping_add(1);
        let key = op.remote;
        self.jobs_in_flight += 1;
        Ok(Remote {
            inbox,
            bits: id.to_bits(),
            key,
            posted: false,
        })
    }

    fn remote_done(&mut self, id: OpId, key: u32, outcome: Outcome) {
        let Some(op) = self.op_mut(id).filter(|op| op.remote == key) else {
            return;
        };
        match op.state {
            State::Armed => self.complete(id, Some(outcome)),
            State::Closing if op.rearm.is_some() => op.outcome = Some(outcome),
            _ => {}
        }
    }

    fn submit(
        &mut self,
        id: OpId,
        stamp: u32,
        job: Box<dyn FnOnce() -> Outcome + Send>,
    ) -> std::io::Result<()> {
        let inbox: Arc<Inbox> = self.reactor()?.inbox();
        let bits = id.to_bits();
        pool::execute(move || {
            let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
                Ok(outcome) => outcome,
                Err(_) => Box::new(std::io::Error::other("internal error (panic)")) as Outcome,
            };
            inbox.post(bits, stamp, outcome);
        })?;
        self.jobs_in_flight += 1;
        self.ops[id.index as usize].job = true;
        Ok(())
    }
}

/// Completes one `External` operation from any thread (see
/// [`Loop::remote`]): posts to the loop's inbox and wakes its poll. Dropped
/// without completing, it completes the operation with [`Abandoned`], so
/// that the loop never waits for a completer that no longer exists.
pub struct Remote {
    inbox: Arc<Inbox>,
    bits: u64,
    key: u32,
    posted: bool,
}

/// The outcome of an operation whose [`Remote`] was dropped.
pub struct Abandoned;

/// The outcome of an operation whose arming, deferred to the closing
/// phase, failed: the driver delivers the failure itself.
pub struct ArmFailed(pub std::io::Error);

impl Remote {
    pub fn complete(mut self, outcome: Outcome) {
        self.posted = true;
        self.inbox.post_remote(self.bits, self.key, outcome);
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if !self.posted {
            self.inbox
                .post_remote(self.bits, self.key, Box::new(Abandoned));
        }
    }
}

#[cfg(test)]
mod tests;
