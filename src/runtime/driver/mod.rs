//! The driver: the only owner of a [`Loop`], and the one place that knows
//! the order of an iteration.
//!
//! Everything else reaches the loop through the driver's methods, each of
//! which borrows it only for its own duration and returns plain data (the
//! waiter type `W` is `Copy`): no borrow is ever lent, so none can be held
//! across the resume of a coroutine, which re-enters the loop to arm or
//! cancel. [`Driver::iterate`] calls its [`Host`] (the Lua layer) to deliver
//! operations, with no borrow held either.
//!
//! One iteration, in libuv's order (see `runtime` for what each phase
//! holds): timers, pending, idle, poll and its rechecks, closing. Each rule
//! has a unit test below.

use std::cell::RefCell;
use std::time::Duration;

use std::os::fd::RawFd;

use mio::unix::SourceFd;

use super::{Handler, Interest, Loop, OpId, Outcome, Readiness, Remote, Token, Wait};

/// How far `system.run` goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Until nothing is left or the loop is halted.
    Loop,
    /// One iteration, blocking in its poll only if nothing was delivered.
    Step,
    /// One iteration without blocking.
    Ready,
}

/// What the driver needs from the layer above during an iteration. It is
/// called with no borrow of the loop held, so it may use the driver.
pub trait Host<W> {
    /// Resumes the waiter of `id`, taken for delivery.
    fn deliver(&mut self, id: OpId);
    /// The poll is about to block without limit with `active` operations
    /// pending: true stops the iteration here (a pool task parks).
    fn park(&mut self, active: usize) -> bool;
    /// Before the poll blocks for up to `timeout` (not called when it
    /// does not block): may cancel operations and shorten the timeout.
    fn sweep(&mut self, timeout: &mut Option<Duration>);
    /// The closing phase, which released the operations of these waiters.
    fn closing(&mut self, released: Vec<W>);
}

/// At most this many rounds of rechecks in one poll phase (libuv's stream
/// reading loop stops after 32 reads too).
const RECHECK_ROUNDS: usize = 32;

/// The loop of one Lua state and its flags.
pub struct Driver<W> {
    lp: RefCell<Loop<W>>,
    /// Iterations begun so far.
    iterations: std::cell::Cell<u64>,
}

impl<W: Copy> Default for Driver<W> {
    fn default() -> Self {
        Driver {
            lp: RefCell::new(Loop::new()),
            iterations: std::cell::Cell::new(0),
        }
    }
}

impl<W: Copy> Driver<W> {
    /// One iteration; true if it stopped before the poll because the host
    /// parked.
    // NOTE: inlined into the host's loop, as the delivery loops are into
    // this: each frame between the loop and `lua_resume` costs a
    // mispredicted return per delivery, since a yield longjmps (see "The
    // loop" in doc/devnotes.md).
    #[inline(always)]
    pub fn iterate(&self, mode: Mode, host: &mut impl Host<W>) -> std::io::Result<bool> {
        self.iterations.set(self.iterations.get() + 1);
        // Each phase begins in the borrow that takes its first operation;
        // a phase with nothing to do costs a few inline checks.
        let mut resumed = self.deliver_all(host, Loop::update_time, Loop::pop_timer);
        resumed += self.deliver_all(host, Loop::begin_pending, Loop::pop_pending);
        resumed += self.deliver_all(host, Loop::begin_idle, Loop::pop_idle);
        let mut timeout = match mode {
            Mode::Ready => Some(Duration::ZERO),
            Mode::Step if resumed > 0 => Some(Duration::ZERO),
            _ => self.lp.borrow_mut().poll_timeout(),
        };
        if timeout.is_none() && mode == Mode::Loop {
            // Nothing is ready and nothing is closing: the rest of this
            // iteration has nothing to do if the host parks.
            // Weak operations count here: a parked task would miss them.
            let active = self.active() + self.lp.borrow().weak();
            if host.park(active) {
                return Ok(true);
            }
            timeout = self.lp.borrow_mut().poll_timeout();
        }
        if timeout != Some(Duration::ZERO) {
            host.sweep(&mut timeout);
        }
        // The kernel's events, then the rechecks, in rounds: a coroutine
        // resumed here may ask for another (e.g. `accept` in a loop takes
        // the connections queued by the kernel one per round, as libuv's
        // accept loop does); rounds are bounded so that a stream always
        // readable cannot keep the loop in this phase.
        let first = {
            let mut lp = self.lp.borrow_mut();
            lp.poll(timeout)?;
            lp.pop_ready()
        };
        resumed += self.deliver_from(host, first, Loop::pop_ready);
        for _ in 0..RECHECK_ROUNDS {
            let first = {
                let mut lp = self.lp.borrow_mut();
                if !lp.run_rechecks() {
                    break;
                }
                lp.pop_ready()
            };
            resumed += self.deliver_from(host, first, Loop::pop_ready);
        }
        if mode == Mode::Step && resumed == 0 {
            // The poll blocked until the next timer: it belongs to this step.
            self.deliver_all(host, Loop::update_time, Loop::pop_timer);
        }
        let released = self.lp.borrow_mut().close_pending();
        host.closing(released);
        Ok(false)
    }

    /// Begins a phase with `begin` and delivers the operations `pop`
    /// takes, one at a time; returns how many.
    #[inline(always)]
    fn deliver_all(
        &self,
        host: &mut impl Host<W>,
        begin: impl FnOnce(&mut Loop<W>),
        pop: impl Fn(&mut Loop<W>) -> Option<OpId>,
    ) -> usize {
        let first = {
            let mut lp = self.lp.borrow_mut();
            begin(&mut lp);
            pop(&mut lp)
        };
        self.deliver_from(host, first, pop)
    }

    /// Delivers `first`, then the operations `pop` takes, one at a time;
    /// returns how many.
    #[inline(always)]
    fn deliver_from(
        &self,
        host: &mut impl Host<W>,
        first: Option<OpId>,
        pop: impl Fn(&mut Loop<W>) -> Option<OpId>,
    ) -> usize {
        let mut next = first;
        let mut n = 0;
        while let Some(id) = next {
            host.deliver(id);
            n += 1;
            next = pop(&mut self.lp.borrow_mut());
        }
        n
    }

    /// Starts `system.run`: false if it runs already.
    pub fn start(&self) -> bool {
        let mut lp = self.lp.borrow_mut();
        if lp.running {
            return false;
        }
        lp.running = true;
        lp.halted = false;
        true
    }

    /// Ends `system.run`; returns whether operations are left.
    pub fn stop(&self) -> bool {
        let mut lp = self.lp.borrow_mut();
        lp.running = false;
        lp.active() > 0
    }

    pub fn is_running(&self) -> bool {
        self.lp.borrow().running
    }

    pub fn is_halted(&self) -> bool {
        self.lp.borrow().halted
    }

    /// `system.halt`: false if not running.
    pub fn halt(&self) -> bool {
        let mut lp = self.lp.borrow_mut();
        lp.halted = lp.running;
        lp.running
    }

    /// Iterations begun so far.
    pub fn iterations(&self) -> u64 {
        self.iterations.get()
    }

    /// Number of operations not released yet.
    pub fn active(&self) -> usize {
        self.lp.borrow().active()
    }

    /// The cached monotonic time in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.lp.borrow().now_ns()
    }

    pub fn update_time(&self) {
        self.lp.borrow_mut().update_time();
    }

    /// Takes the completions already posted (without waiting); true if
    /// the loop would then still block without limit (nothing ready, no
    /// timer).
    pub fn would_block(&self) -> bool {
        let mut lp = self.lp.borrow_mut();
        lp.poll(Some(Duration::ZERO)).is_ok() && lp.poll_timeout().is_none()
    }

    // --- operations (the await protocol of the layer above) ---

    pub fn alloc(&self, waiter: W) -> OpId {
        self.lp.borrow_mut().alloc(waiter)
    }

    /// Arms `id` (failure-atomic, see `Loop::arm`).
    pub fn arm(&self, id: OpId, wait: Wait) -> std::io::Result<()> {
        self.lp.borrow_mut().arm(id, wait)
    }

    pub fn defer(&self, id: OpId, wait: Wait) {
        self.lp.borrow_mut().defer(id, wait);
    }

    /// See [`Loop::set_weak`].
    pub fn set_weak(&self, id: OpId, weak: bool) {
        self.lp.borrow_mut().set_weak(id, weak);
    }

    pub fn discard(&self, id: OpId) -> Option<W> {
        self.lp.borrow_mut().discard(id)
    }

    pub fn cancel(&self, id: OpId) -> bool {
        self.lp.borrow_mut().cancel(id)
    }

    /// The waiter of `id`, if it is not released.
    pub fn waiter(&self, id: OpId) -> Option<W> {
        self.lp.borrow().waiter(id).copied()
    }

    /// Replaces the waiter of `id` (not released).
    pub fn set_waiter(&self, id: OpId, waiter: W) {
        if let Some(w) = self.lp.borrow_mut().waiter_mut(id) {
            *w = waiter;
        }
    }

    /// See [`Loop::rearm_delivering`].
    #[inline]
    pub fn rearm_delivering(
        &self,
        id: OpId,
        same: impl FnOnce(&W) -> bool,
        update: impl FnOnce(&mut W),
        wait: Wait,
    ) -> Result<std::io::Result<()>, Wait> {
        self.lp
            .borrow_mut()
            .rearm_delivering(id, same, update, wait)
    }

    pub fn find_closing(&self, pred: impl Fn(&W) -> bool) -> Option<OpId> {
        self.lp.borrow().find_closing(pred)
    }

    pub fn armed_where(&self, pred: impl Fn(&W) -> bool) -> Vec<OpId> {
        self.lp.borrow().armed_where(pred)
    }

    /// The waiter and outcome of `id`, being delivered (the outcome once).
    #[inline]
    pub fn take_delivery(&self, id: OpId) -> Option<(W, Option<Outcome>)> {
        self.lp.borrow_mut().take_delivery(id, |w| *w)
    }

    /// Ends the delivery of `id`; its waiter if it was released.
    pub fn finish(&self, id: OpId) -> Option<W> {
        self.lp.borrow_mut().finish(id)
    }

    /// Takes `id`, completed and ready, for delivery out of turn. `None` if
    /// the loop is in use (a finalizer run in the middle of a loop call).
    pub fn take_completed(&self, id: OpId) -> bool {
        self.lp
            .try_borrow_mut()
            .is_ok_and(|mut lp| lp.take_completed(id))
    }

    /// Takes the next operation of the pending phase and then of the ready
    /// queue (for the last deliveries when the state closes).
    pub fn take_last(&self) -> Option<OpId> {
        let mut lp = self.lp.borrow_mut();
        lp.pop_pending().or_else(|| lp.pop_ready())
    }

    pub fn begin_pending(&self) {
        self.lp.borrow_mut().begin_pending();
    }

    // --- completions ---

    pub fn complete(&self, id: OpId, outcome: Option<Outcome>) {
        self.lp.borrow_mut().complete(id, outcome);
    }

    pub fn complete_later(&self, id: OpId, outcome: Option<Outcome>) {
        self.lp.borrow_mut().complete_later(id, outcome);
    }

    pub fn pend_source(&self, handler: Handler, readiness: Readiness) {
        self.lp.borrow_mut().pend_source(handler, readiness);
    }

    pub fn recheck(&self, handler: Handler, readiness: Readiness) {
        self.lp.borrow_mut().recheck(handler, readiness);
    }

    pub fn remote(&self, id: OpId) -> std::io::Result<Remote> {
        self.lp.borrow_mut().remote(id)
    }

    // --- sources ---

    pub fn register_handler(
        &self,
        source: &mut SourceFd<'_>,
        handler: Handler,
    ) -> std::io::Result<Token> {
        self.lp.borrow_mut().register_handler(source, handler)
    }

    /// Removes a registered source; operations waiting on it are not
    /// woken. Skipped when the loop is in use (a finalizer run in the
    /// middle of a loop call): the poll then reports the closed descriptor
    /// once, to a handler that ignores it.
    pub fn deregister(&self, source: &mut SourceFd<'_>, token: Token) {
        if let Ok(mut lp) = self.lp.try_borrow_mut() {
            let _ = lp.deregister(source, token);
        }
    }

    /// Watches a descriptor that is not ours (see `Loop::watch_fd`).
    pub fn watch_fd(
        &self,
        fd: RawFd,
        interest: Interest,
        handler: Handler,
    ) -> std::io::Result<Token> {
        self.lp.borrow_mut().watch_fd(fd, interest, handler)
    }

    /// The handler of the watch of `fd`, if it is watched.
    pub fn watcher(&self, fd: RawFd) -> Option<Handler> {
        self.lp.borrow().watcher(fd)
    }

    /// Stops watching `fd`, if `token` is still its watch.
    pub fn unwatch_fd(&self, fd: RawFd, token: Token) {
        if let Ok(mut lp) = self.lp.try_borrow_mut() {
            lp.unwatch_fd(fd, token);
        }
    }

    /// Completes what closing an object cancelled; returns the operations
    /// completed (none when the loop is in use, as for `deregister`).
    pub fn complete_closed(
        &self,
        done: impl IntoIterator<Item = (OpId, Option<Outcome>)>,
    ) -> Vec<OpId> {
        let mut completed = Vec::new();
        if let Ok(mut lp) = self.lp.try_borrow_mut() {
            for (op, outcome) in done {
                lp.complete(op, outcome);
                completed.push(op);
            }
        }
        completed
    }
}

#[cfg(test)]
mod tests;
