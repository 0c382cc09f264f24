//! Readiness and completions: the mio `Poll` of a loop, created on first
//! use (a loop that only uses timers never opens an epoll descriptor).
//!
//! Sources are registered edge-triggered for both directions; an operation
//! waits for one direction of one source. The protocol of the callers is:
//! try the system call, and only on `WouldBlock` wait for readiness, then
//! try again — so an edge that arrives while nobody waits is never needed.
//!
//! Worker jobs post their outcome to the loop's [`Inbox`] and wake the poll
//! with a `mio::Waker`; that is the only cross-thread path into a loop.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::{Events, Poll, Waker};

use super::{OpId, Outcome};

const WAKER: mio::Token = mio::Token(usize::MAX);

/// A registered source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token(usize);

/// What the poll saw for a source.
#[derive(Clone, Copy, Debug, Default)]
pub struct Readiness {
    pub readable: bool,
    pub writable: bool,
    pub error: bool,
    pub read_closed: bool,
    pub write_closed: bool,
}

/// Operations completed by source handlers, with optional outcomes, in
/// the order they are to be delivered: `first` before `last`. A stream's
/// `connect` completes in `last`, so that in one poll an `accept` resumes
/// before the `connect` to it, whatever order the kernel reported them in
/// (libuv registers a new socket at the poll, after the listener).
#[derive(Default)]
pub struct Completions {
    pub first: Vec<(OpId, Option<Outcome>)>,
    pub last: Vec<(OpId, Option<Outcome>)>,
}

impl Completions {
    pub fn push(&mut self, op: OpId, outcome: Option<Outcome>) {
        self.first.push((op, outcome));
    }

    pub fn push_last(&mut self, op: OpId, outcome: Option<Outcome>) {
        self.last.push((op, outcome));
    }

    /// All of them, in delivery order.
    pub fn drain(&mut self) -> impl Iterator<Item = (OpId, Option<Outcome>)> + '_ {
        self.first.drain(..).chain(self.last.drain(..))
    }
}

/// Code of an I/O object that runs in the poll phase when its source is
/// ready (e.g. flushing a socket's write queue without any coroutine),
/// reporting the operations it completed. It must not call into Lua. The
/// loop also calls it with a readiness it did not see from the kernel
/// (`Loop::recheck`, `Loop::pend_source`): it must tolerate readiness
/// that is not there (a retried call then meets `WouldBlock`).
pub trait SourceHandler {
    fn ready(&mut self, readiness: Readiness, done: &mut Completions);
}

/// A registered source handler, shared with the object it serves.
pub type Handler = Rc<RefCell<dyn SourceHandler>>;

/// Completed jobs of one loop, filled by worker threads.
pub struct Inbox {
    done: Mutex<Vec<(u64, u32, Outcome)>>,
    /// Completions posted by [`super::Remote`]s: op bits, remote key.
    remote: Mutex<Vec<(u64, u32, Outcome)>>,
    waker: Waker,
}

impl Inbox {
    pub fn post(&self, op: u64, stamp: u32, outcome: Outcome) {
        self.done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((op, stamp, outcome));
        // A failed wake leaves the job for the next poll that wakes anyway.
        let _ = self.waker.wake();
    }

    /// Posts the completion of a [`super::Remote`] and wakes the poll.
    pub fn post_remote(&self, op: u64, key: u32, outcome: Outcome) {
        self.remote
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((op, key, outcome));
        let _ = self.waker.wake();
    }
}

pub struct Reactor {
    poll: Poll,
    events: Events,
    inbox: Arc<Inbox>,
    sources: Vec<Option<Handler>>,
    free: Vec<usize>,
    count: usize,
}

impl Reactor {
    pub fn new() -> std::io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        Ok(Reactor {
            poll,
            events: Events::with_capacity(256),
            inbox: Arc::new(Inbox {
                done: Mutex::new(Vec::new()),
                remote: Mutex::new(Vec::new()),
                waker,
            }),
            sources: Vec::new(),
            free: Vec::new(),
            count: 0,
        })
    }

    pub fn inbox(&self) -> Arc<Inbox> {
        self.inbox.clone()
    }

    /// The completions posted by remotes since the last call.
    pub fn take_remote(&self) -> Vec<(u64, u32, Outcome)> {
        std::mem::take(&mut *self.inbox.remote.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Number of registered sources.
    pub fn sources(&self) -> usize {
        self.count
    }

    pub fn register(
        &mut self,
        source: &mut impl mio::event::Source,
        handler: Handler,
    ) -> std::io::Result<Token> {
        let index = self.free.pop().unwrap_or_else(|| {
            self.sources.push(None);
            self.sources.len() - 1
        });
        let both = mio::Interest::READABLE | mio::Interest::WRITABLE;
        if let Err(e) = self
            .poll
            .registry()
            .register(source, mio::Token(index), both)
        {
            self.free.push(index);
            return Err(e);
        }
        self.sources[index] = Some(handler);
        self.count += 1;
        Ok(Token(index))
    }

    pub fn deregister(
        &mut self,
        source: &mut impl mio::event::Source,
        token: Token,
    ) -> std::io::Result<()> {
        if self
            .sources
            .get_mut(token.0)
            .and_then(Option::take)
            .is_some()
        {
            self.count -= 1;
            self.free.push(token.0);
        }
        self.poll.registry().deregister(source)
    }

    /// Polls once; operations completed by handlers go to `completed`,
    /// job outcomes to `done`.
    pub fn poll(
        &mut self,
        timeout: Option<Duration>,
        completed: &mut Completions,
        done: &mut Vec<(u64, u32, Outcome)>,
    ) -> std::io::Result<()> {
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        for event in self.events.iter() {
            if event.token() == WAKER {
                continue;
            }
            let readiness = Readiness {
                readable: event.is_readable(),
                writable: event.is_writable(),
                error: event.is_error(),
                read_closed: event.is_read_closed(),
                write_closed: event.is_write_closed(),
            };
            if let Some(Some(h)) = self.sources.get_mut(event.token().0) {
                h.borrow_mut().ready(readiness, completed);
            }
        }
        // Always drained: wake-ups may coalesce.
        done.append(&mut self.inbox.done.lock().unwrap_or_else(|e| e.into_inner()));
        Ok(())
    }
}
