//! The loop's I/O: the poll phase, sources registered by our objects,
//! descriptors watched for `system.awaitfd`, jobs on the worker pool and
//! the remote completers of `External` operations.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use mio::Interest;
use mio::unix::SourceFd;

use super::io::{Inbox, Reactor};
use super::{Handler, Loop, OpId, Outcome, State, Token, pool};

impl<W> Loop<W> {
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
                let mut remote = Vec::new();
                let polled = r.poll(timeout, &mut completed, &mut done, &mut remote);
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

    pub(super) fn submit(
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
