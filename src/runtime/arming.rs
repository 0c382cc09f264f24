//! Arming, re-arming and cancelling operations.

use super::{Loop, OpId, State, Wait};

impl<W> Loop<W> {
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
}
