//! The I/O state shared by a socket object and the loop: one [`Core`] per
//! socket, registered as the source handler of its descriptor.
//!
//! Every await suspends, even when its result is known during the call
//! (R1 of spec/behaviour-rules.md); the system call still happens in the
//! call where it can, and only the delivery waits:
//! * *Readiness waits* (`read`, `accept`, a stream `connect`): the
//!   coroutine waits with `Wait::External`; the handler only wakes it
//!   (no outcome) and the continuation tries the call. Data is thus read
//!   in the coroutine itself: a read cancelled by an explicit resume takes
//!   nothing from the socket and leaves the buffer untouched. mio is
//!   edge-triggered, so a wait that may be satisfied already (`may_read`,
//!   a connection the OS completed at once) asks the loop for a *recheck*:
//!   the handler runs after the next poll as if the source were ready.
//! * *Requests* (`write`, `shutdown`): a write the OS took at once is
//!   completed for the loop's pending phase; what the OS did not take is
//!   copied into the socket's queue with the op of its coroutine, and the
//!   handler sends the queue in order on writable readiness and completes
//!   each op with a [`Reply`]. A `shutdown` always waits for the loop
//!   (queued; run by the handler in the pending phase when nothing is
//!   queued before it), so that closing the socket first cancels it. A
//!   cancelled request loses its op but stays in the queue, so data keeps
//!   flowing in call order.
//!
//! A listener accepts in its handler (libuv's accept loop): one connection
//! accepted while nobody waits is `held` and returned by the next `accept`
//! at once; a waiting `accept` is woken to take it.
//!
//! The coroutine side of both is in `awaits`. Each arming of an op is
//! completed at most once (`Waiting::woken`): a second completion would
//! queue it twice for delivery. That is also why closing a socket completes
//! only the waits not woken yet; a woken reader finds the socket closed
//! when its continuation runs.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use socket2::{SockAddr, Socket};

use super::sys;
use crate::lua::fail;
use crate::runtime::{Completions, OpId, Outcome, Readiness, SourceHandler, Token};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Domain {
    Ipv4,
    Ipv6,
    Local,
    Share,
    /// One end of a `"pair"` (a pipe): see [`PipeEnd`].
    Pair,
}

impl Domain {
    pub fn name(self) -> &'static str {
        match self {
            Domain::Ipv4 => "ipv4",
            Domain::Ipv6 => "ipv6",
            Domain::Local => "local",
            Domain::Share => "share",
            Domain::Pair => "pair",
        }
    }

    pub fn is_ip(self) -> bool {
        matches!(self, Domain::Ipv4 | Domain::Ipv6)
    }
}

/// Which end of a `"pair"` stream a socket is: a pipe is one-way, so the
/// read end refuses `write` and `shutdown`, the write end `read`
/// (`bad file descriptor`, what the OS says of such calls).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PipeEnd {
    Read,
    Write,
}

/// A coroutine waiting for readiness.
#[derive(Clone, Copy)]
pub struct Waiting {
    pub op: OpId,
    /// Completed by the handler, not delivered yet.
    pub woken: bool,
}

/// Which readiness wait of a socket.
#[derive(Clone, Copy)]
pub enum Slot {
    /// `read` or `accept`: one at a time.
    Reader,
    /// A stream `connect` in progress.
    Connector,
}

/// What a queued request sends.
pub enum Payload {
    Data {
        bytes: Vec<u8>,
        sent: usize,
        /// A descriptor to pass with the first bytes (share streams).
        fd: Option<OwnedFd>,
        /// Destination of a datagram.
        to: Option<SockAddr>,
    },
    Shutdown,
}

pub struct Request {
    /// The waiting coroutine's op; `None` once it was cancelled.
    pub op: Option<OpId>,
    pub what: Payload,
}

/// The outcome of a completed operation.
pub enum Reply {
    True,
    Fail(i32),
    /// A read or accept woken by `close`: `false, "closed"`.
    Closed,
}

pub struct Core {
    /// `None` once closed.
    pub fd: Option<Socket>,
    /// Counts the object as open while `fd` is there (`await.stats`).
    pub tally: Option<crate::lua::tally::Tally>,
    pub token: Option<Token>,
    /// Class index (`class::UDP`, …).
    pub kind: u8,
    /// A terminal, which has no half-close (see `shut_write`).
    pub terminal: bool,
    pub domain: Domain,
    /// A socket (`recv`/`send`) rather than another descriptor (`read`/`write`).
    pub socket: bool,
    pub reader: Option<Waiting>,
    pub connector: Option<Waiting>,
    pub queue: VecDeque<Request>,
    /// Descriptors received on a share stream, not returned yet.
    pub received: VecDeque<OwnedFd>,
    /// A connection the listener accepted while nobody waited in `accept`.
    pub held: Option<OwnedFd>,
    pub listening: bool,
    /// A datagram socket with a default peer.
    pub connected: bool,
    /// A stream that is connected (also accepted ones and descriptors
    /// opened as streams): it can be read and written (libuv's
    /// `READABLE`/`WRITABLE` flags).
    pub open: bool,
    /// A stream `connect` in progress, until a continuation saw its end.
    pub connecting: bool,
    /// A `connect` failure met during the call, delivered by the handler
    /// in the loop's pending phase (libuv's delayed error).
    pub delayed_error: Option<i32>,
    /// `shutdown` was called: writes and another `shutdown` fail.
    pub shut: bool,
    /// A read may find something without waiting for readiness: false only
    /// after a read drained the socket and no readiness came since.
    pub may_read: bool,
    /// The kernel reported a hang-up or error: reading never blocks again.
    pub hung_up: bool,
    /// The path this socket bound (a local socket with a name).
    pub path: Option<Vec<u8>>,
    /// The file of that path, removed when the socket is closed.
    pub bound_file: Option<sys::BoundFile>,
    /// A terminal's attributes to restore when it is closed, once its mode
    /// was changed.
    pub saved_mode: Option<libc::termios>,
    /// The end of a `"pair"`, `None` for every other socket.
    pub pipe_end: Option<PipeEnd>,
}

pub type Shared = Rc<RefCell<Core>>;

/// What a send needs of a socket, as plain `Send` data: a memory's bytes
/// are sent from inside its scoped borrow (`memory::with_bytes`), which
/// cannot reach the `Core` (an `Rc`).
#[derive(Clone, Copy)]
pub struct Sender {
    raw: RawFd,
    socket: bool,
}

impl Sender {
    /// One send of `bytes` (with `fd` attached, or to `to`).
    pub fn send(self, bytes: &[u8], fd: Option<RawFd>, to: Option<&SockAddr>) -> io::Result<usize> {
        match (fd, to) {
            (Some(fd), _) => sys::send_with_fd(self.raw, bytes, fd),
            (None, Some(to)) => sys::send_to(self.raw, bytes, to),
            (None, None) => sys::send(self.raw, bytes, self.socket),
        }
    }

    /// Sends `bytes[*sent..]`, advancing `*sent`, until the OS took the
    /// rest (`Ok(true)`; an empty rest is still sent once: an empty
    /// datagram) or would block (`Ok(false)`). `fd` goes with the first
    /// bytes the OS takes: it was passed if `*sent` moved.
    pub fn send_all(
        self,
        bytes: &[u8],
        sent: &mut usize,
        mut fd: Option<RawFd>,
        to: Option<&SockAddr>,
    ) -> io::Result<bool> {
        loop {
            match self.send(&bytes[*sent..], fd, to) {
                Ok(n) => {
                    if n > 0 {
                        fd = None;
                    }
                    *sent += n;
                    if *sent >= bytes.len() {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }
}

impl Core {
    pub fn new(fd: Socket, kind: u8, domain: Domain, socket: bool, open: bool) -> Core {
        Core {
            fd: Some(fd),
            tally: None,
            token: None,
            kind,
            terminal: false,
            domain,
            socket,
            reader: None,
            connector: None,
            queue: VecDeque::new(),
            received: VecDeque::new(),
            held: None,
            listening: false,
            connected: false,
            open,
            connecting: false,
            delayed_error: None,
            shut: false,
            may_read: true,
            hung_up: false,
            path: None,
            bound_file: None,
            saved_mode: None,
            pipe_end: None,
        }
    }

    /// The open descriptor (methods check for `closed object` first).
    pub fn sock(&self) -> &Socket {
        self.fd.as_ref().expect("socket is open")
    }

    pub fn raw(&self) -> RawFd {
        self.sock().as_raw_fd()
    }

    pub fn slot(&mut self, slot: Slot) -> &mut Option<Waiting> {
        match slot {
            Slot::Reader => &mut self.reader,
            Slot::Connector => &mut self.connector,
        }
    }

    /// What sending needs, copied out (see [`Sender`]).
    pub fn sender(&self) -> Sender {
        Sender {
            raw: self.raw(),
            socket: self.socket,
        }
    }

    /// Ends the writing direction: `shutdown(2)`, or nothing for a
    /// terminal (which has no half-close; its object refuses writes).
    /// The write end of a pair has no half-close either, but its reader
    /// must see end of file: the descriptor is replaced by `/dev/null`
    /// (see `sys::close_pipe_writer`).
    pub fn shut_write(&self) -> io::Result<()> {
        if self.terminal {
            return Ok(());
        }
        if self.pipe_end == Some(PipeEnd::Write) {
            return sys::close_pipe_writer(self.raw());
        }
        self.sock().shutdown(std::net::Shutdown::Write)
    }

    /// Sends the front request as far as the OS takes it.
    fn step(&self, req: &mut Request) -> Option<Reply> {
        match &mut req.what {
            Payload::Shutdown => Some(match self.shut_write() {
                Ok(()) => Reply::True,
                Err(e) => Reply::Fail(fail::code_of(&e)),
            }),
            Payload::Data {
                bytes,
                sent,
                fd,
                to,
            } => {
                let before = *sent;
                let passed = fd.as_ref().map(|f| f.as_raw_fd());
                let result = self.sender().send_all(bytes, sent, passed, to.as_ref());
                if *sent > before {
                    *fd = None;
                }
                match result {
                    Ok(true) => Some(Reply::True),
                    Ok(false) => None,
                    Err(e) => Some(Reply::Fail(fail::code_of(&e))),
                }
            }
        }
    }

    /// Sends the queue in order until the OS blocks.
    fn flush(&mut self, done: &mut Completions) {
        while let Some(mut req) = self.queue.pop_front() {
            match self.step(&mut req) {
                None => {
                    self.queue.push_front(req);
                    return;
                }
                Some(reply) => {
                    if let Some(op) = req.op {
                        done.push(op, Some(Box::new(reply) as Outcome));
                    }
                }
            }
        }
    }

    /// Marks the core closed; returns what the caller must release:
    /// the descriptor and the ops to complete. Writes the OS took are
    /// complete already; the rest is cancelled.
    pub fn close(&mut self) -> (Option<Socket>, Option<Token>, Completions) {
        let mut done = Completions::default();
        let canceled = || Some(Box::new(Reply::Fail(libc::ECANCELED)) as Outcome);
        if let Some(w) = self.reader.take().filter(|w| !w.woken) {
            done.push(w.op, Some(Box::new(Reply::Closed) as Outcome));
        }
        if let Some(w) = self.connector.take().filter(|w| !w.woken) {
            done.push(w.op, canceled());
        }
        for req in self.queue.drain(..) {
            if let Some(op) = req.op {
                done.push(op, canceled());
            }
        }
        self.received.clear();
        self.held = None;
        self.tally = None;
        if let (Some(saved), Some(fd)) = (self.saved_mode.take(), &self.fd) {
            // SAFETY: sets attributes saved from this terminal.
            unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSADRAIN, &saved) };
        }
        (self.fd.take(), self.token.take(), done)
    }

    /// A readable listener: accepts one connection to hold unless one is
    /// held already, and wakes a waiting `accept` to take it. A failure is
    /// the waiting `accept`'s result (the connection stays in the kernel's
    /// queue); with nobody waiting it is left for the next `accept`.
    fn accept_ready(&mut self, done: &mut Completions) {
        if self.held.is_none() {
            match sys::accept(self.raw()) {
                Ok(fd) => self.held = Some(fd),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    if let Some(w) = self.reader.as_mut().filter(|w| !w.woken) {
                        w.woken = true;
                        let reply = Reply::Fail(fail::code_of(&e));
                        done.push(w.op, Some(Box::new(reply) as Outcome));
                    }
                    return;
                }
            }
        }
        if self.held.is_some() {
            wake(&mut self.reader, done);
        }
    }
}

/// Completes the wait in `w` (no outcome: its continuation retries), once.
fn wake(w: &mut Option<Waiting>, done: &mut Completions) {
    if let Some(w) = w.as_mut().filter(|w| !w.woken) {
        w.woken = true;
        done.push(w.op, None);
    }
}

impl SourceHandler for Core {
    fn ready(&mut self, r: Readiness, done: &mut Completions) {
        if self.fd.is_none() {
            return;
        }
        // Errors and hang-ups wake everyone: the retried calls report them.
        let failed = r.error || r.read_closed || r.write_closed;
        if failed {
            self.hung_up = true;
        }
        if r.readable || failed {
            self.may_read = true;
            if self.listening {
                self.accept_ready(done);
            } else {
                wake(&mut self.reader, done);
            }
        }
        if r.writable || failed {
            match self.delayed_error.take() {
                Some(code) => {
                    if let Some(w) = self.connector.as_mut().filter(|w| !w.woken) {
                        w.woken = true;
                        done.push(w.op, Some(Box::new(Reply::Fail(code)) as Outcome));
                    }
                }
                None => {
                    if let Some(w) = self.connector.as_mut().filter(|w| !w.woken) {
                        w.woken = true;
                        done.push_last(w.op, None);
                    }
                }
            }
            self.flush(done);
        }
    }
}
