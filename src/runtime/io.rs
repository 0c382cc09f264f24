//! Readiness and completions: the mio `Poll` of a loop, created on first
//! use (a loop that only uses timers never opens an epoll descriptor).
//!
//! Sources are registered edge-triggered for both directions; an operation
//! waits for one direction of one source. The protocol of the callers is:
//! try the system call, and only on `WouldBlock` wait for readiness, then
//! try again — so an edge that arrives while nobody waits is never needed.
//!
//! *Watched* descriptors (`system.awaitfd`) are not ours: they are
//! registered with the interests of each wait, edge-triggered too, and
//! stay registered between waits, so that the next wait only needs an
//! `EPOLL_CTL_MOD` (which also makes the kernel report the readiness the
//! descriptor has now: no edge is lost, and `epoll_wait` checks again what
//! it reports, so no stale readiness comes out). Their owner may close
//! them at any time, and the number may then name another file: a
//! registration is only ever changed or removed by its number while the
//! number is still watched, and registering any of our own sources under
//! that number forgets the watch first (it was closed: see [`Reactor::register`]).
//! Tokens carry a generation, so that the events of an entry we could not
//! remove (its file lives on elsewhere) never reach the next user of the
//! slot.
//!
//! Worker jobs post their outcome to the loop's [`Inbox`] and wake the poll
//! with a `mio::Waker`; that is the only cross-thread path into a loop.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Waker};

use super::{OpId, Outcome};

const WAKER: mio::Token = mio::Token(usize::MAX);

/// A registered source: its slot (low half of the bits) and the slot's
/// generation when it was registered (high half, truncated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token(usize);

const SLOT_BITS: u32 = usize::BITS / 2;
const SLOT_MASK: usize = (1 << SLOT_BITS) - 1;

impl Token {
    fn new(slot: usize, generation: u32) -> Token {
        Token(slot & SLOT_MASK | (generation as usize) << SLOT_BITS)
    }

    fn slot(self) -> usize {
        self.0 & SLOT_MASK
    }
}

/// What the poll saw for a source (mio's view of the epoll flags:
/// `readable` is also set by priority data).
#[derive(Clone, Copy, Debug, Default)]
pub struct Readiness {
    pub readable: bool,
    pub writable: bool,
    pub error: bool,
    pub read_closed: bool,
    pub write_closed: bool,
    pub priority: bool,
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

    /// A watched descriptor's number was registered by another source: the
    /// watched file was closed by its owner and its registration is
    /// forgotten (see the module's doc).
    fn forgotten(&mut self, _done: &mut Completions) {}

    /// The handler as `Any`, for the owners of watches, who find theirs
    /// by descriptor number ([`Reactor::watcher`]).
    fn as_any(&mut self) -> Option<&mut dyn std::any::Any> {
        None
    }
}

/// A registered source handler, shared with the object it serves.
pub type Handler = Rc<RefCell<dyn SourceHandler>>;

/// Completed jobs of one loop, filled by worker threads.
pub struct Inbox {
    done: Mutex<Vec<(u64, u32, Outcome)>>,
    /// Completions posted by [`super::Remote`]s: op bits, remote key.
    remote: Mutex<Vec<(u64, u32, Outcome)>>,
    /// Set after every post, cleared by the poll before it takes the
    /// lists: a poll that finds it clear has nothing to take and locks
    /// nothing (a post racing with the taking is taken now or by the next
    /// poll, which its wake-up starts).
    posted: AtomicBool,
    waker: Waker,
}

impl Inbox {
    pub fn post(&self, op: u64, stamp: u32, outcome: Outcome) {
        self.done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((op, stamp, outcome));
        self.posted.store(true, Ordering::Release);
        // A failed wake leaves the job for the next poll that wakes anyway.
        let _ = self.waker.wake();
    }

    /// Posts the completion of a [`super::Remote`] and wakes the poll.
    pub fn post_remote(&self, op: u64, key: u32, outcome: Outcome) {
        self.remote
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((op, key, outcome));
        self.posted.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }

    /// Whether anything was posted since the last call.
    fn take_posted(&self) -> bool {
        // Read first: a store costs more than a load when nothing came.
        self.posted.load(Ordering::Relaxed) && self.posted.swap(false, Ordering::Acquire)
    }
}

/// A slot of the source table: its handler while registered, and a
/// generation that changes whenever it is freed.
#[derive(Default)]
struct Slot {
    generation: u32,
    handler: Option<Handler>,
}

impl Slot {
    /// Whether `token` names this slot's current registration.
    fn is(&self, token: Token) -> bool {
        Token::new(token.slot(), self.generation) == token
    }
}

pub struct Reactor {
    poll: Poll,
    events: Events,
    inbox: Arc<Inbox>,
    sources: Vec<Slot>,
    free: Vec<usize>,
    count: usize,
    /// Watched descriptors by number (see the module's doc).
    watched: HashMap<RawFd, Token, BuildHasherDefault<FdHasher>>,
}

/// The hash of descriptor numbers: small integers, spread by one
/// multiplication (SipHash took 5% of the instructions of an `awaitfd`
/// round trip).
#[derive(Default)]
struct FdHasher(u64);

impl Hasher for FdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_i32(&mut self, n: i32) {
        self.0 = (n as u32 as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
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
                posted: AtomicBool::new(false),
                waker,
            }),
            sources: Vec::new(),
            free: Vec::new(),
            count: 0,
            watched: HashMap::default(),
        })
    }

    pub fn inbox(&self) -> Arc<Inbox> {
        self.inbox.clone()
    }

    /// Number of registered sources.
    #[inline]
    pub fn sources(&self) -> usize {
        self.count
    }

    /// A slot for `handler` and its token.
    fn take_slot(&mut self, handler: Handler) -> Token {
        let index = self.free.pop().unwrap_or_else(|| {
            self.sources.push(Slot::default());
            self.sources.len() - 1
        });
        let slot = &mut self.sources[index];
        slot.handler = Some(handler);
        self.count += 1;
        Token::new(index, slot.generation)
    }

    /// Frees the slot of `token` (if it still is that registration's) and
    /// returns its handler: later events of that token are ignored.
    fn free_slot(&mut self, token: Token) -> Option<Handler> {
        let slot = self.sources.get_mut(token.slot()).filter(|s| s.is(token))?;
        let handler = slot.handler.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.count -= 1;
        self.free.push(token.slot());
        Some(handler)
    }

    /// Registers a source of ours (for both directions). Its number was
    /// free, so a descriptor watched under that number was closed since:
    /// its watch is forgotten without touching the registration (it went
    /// with the file, or belongs to a file we no longer name), and its
    /// handler is told (what it completes goes to `done`).
    pub fn register(
        &mut self,
        source: &mut SourceFd<'_>,
        handler: Handler,
        done: &mut Completions,
    ) -> std::io::Result<Token> {
        if let Some(token) = self.watched.remove(source.0)
            && let Some(old) = self.free_slot(token)
        {
            old.borrow_mut().forgotten(done);
        }
        let token = self.take_slot(handler);
        let both = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self
            .poll
            .registry()
            .register(source, mio::Token(token.0), both)
        {
            self.free_slot(token);
            return Err(e);
        }
        Ok(token)
    }

    pub fn deregister(&mut self, source: &mut SourceFd<'_>, token: Token) -> std::io::Result<()> {
        self.free_slot(token);
        self.poll.registry().deregister(source)
    }

    /// Watches descriptor `fd`, not ours, for `interest`, with `handler`
    /// (see the module's doc): the registration kept from an earlier watch
    /// of that number is modified, which makes the kernel report what is
    /// ready now; a number whose file changed since (the modification
    /// fails with `ENOENT`) is registered anew. Fails as `epoll_ctl`:
    /// `EBADF` (not open), `EPERM` (a file that cannot be polled, such as
    /// a regular file), `EEXIST` (a descriptor of one of our sources).
    pub fn watch(
        &mut self,
        fd: RawFd,
        interest: Interest,
        handler: Handler,
    ) -> std::io::Result<Token> {
        if let Some(&token) = self.watched.get(&fd) {
            let id = mio::Token(token.0);
            match self
                .poll
                .registry()
                .reregister(&mut SourceFd(&fd), id, interest)
            {
                Ok(()) => {
                    if let Some(slot) = self.sources.get_mut(token.slot()) {
                        slot.handler = Some(handler);
                    }
                    return Ok(token);
                }
                Err(e) => {
                    self.watched.remove(&fd);
                    self.free_slot(token);
                    if e.raw_os_error() != Some(libc::ENOENT) {
                        return Err(e);
                    }
                }
            }
        }
        let token = self.take_slot(handler);
        match self
            .poll
            .registry()
            .register(&mut SourceFd(&fd), mio::Token(token.0), interest)
        {
            Ok(()) => {
                self.watched.insert(fd, token);
                Ok(token)
            }
            Err(e) => {
                self.free_slot(token);
                Err(e)
            }
        }
    }

    /// The handler of the watch of `fd`, if it is watched.
    pub fn watcher(&self, fd: RawFd) -> Option<Handler> {
        let token = self.watched.get(&fd)?;
        self.sources.get(token.slot())?.handler.clone()
    }

    /// Stops watching `fd` if `token` is still its watch: removes the
    /// registration (failures mean it went with its file already).
    pub fn unwatch(&mut self, fd: RawFd, token: Token) {
        if self.watched.get(&fd) == Some(&token) {
            self.watched.remove(&fd);
            self.free_slot(token);
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        }
    }

    /// Polls once; operations completed by handlers go to `completed`,
    /// job outcomes to `done`, the completions posted by remotes to
    /// `remote`.
    pub fn poll(
        &mut self,
        timeout: Option<Duration>,
        completed: &mut Completions,
        done: &mut Vec<(u64, u32, Outcome)>,
        remote: &mut Vec<(u64, u32, Outcome)>,
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
                priority: event.is_priority(),
            };
            let token = Token(event.token().0);
            if let Some(slot) = self.sources.get(token.slot())
                && slot.is(token)
                && let Some(h) = &slot.handler
            {
                h.borrow_mut().ready(readiness, completed);
            }
        }
        // Taken whenever something was posted: wake-ups may coalesce.
        if self.inbox.take_posted() {
            done.append(&mut self.inbox.done.lock().unwrap_or_else(|e| e.into_inner()));
            remote.append(&mut self.inbox.remote.lock().unwrap_or_else(|e| e.into_inner()));
        }
        Ok(())
    }
}
