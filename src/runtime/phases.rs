//! The phases of an iteration (see the order in the module's doc): what
//! each takes for delivery, completions, the pending queue and the
//! rechecks, the closing phase, and how long the poll may block.

use std::time::Duration;

use super::{ArmFailed, Handler, Loop, OpId, Outcome, Pending, Readiness, State, monotonic_ns};

impl<W> Loop<W> {
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

    pub(super) fn release(&mut self, id: OpId) -> Option<W> {
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
}
