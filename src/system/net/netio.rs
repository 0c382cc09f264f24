//! The I/O state shared by a socket object and the loop: one [`Core`] per
//! socket, registered as the source handler of its descriptor.
//!
//! mio is edge-triggered, so every operation tries its system call first
//! and only waits after `WouldBlock`:
//! * *Readiness waits* (`read`, `accept`, a stream `connect`): the
//!   coroutine waits with `Wait::External`; the handler only wakes it
//!   (no outcome) and the continuation retries the call. Data is thus read
//!   in the coroutine itself: a read cancelled by an explicit resume takes
//!   nothing from the socket and leaves the buffer untouched.
//! * *Requests* (`write`, `shutdown`): what the OS did not take at once is
//!   copied into the socket's queue with the op of its coroutine; the
//!   handler sends the queue in order on writable readiness and completes
//!   each op with a [`Reply`]. A cancelled request loses its op but stays in
//!   the queue, so data keeps flowing in call order.
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

use super::{socket, sys};
use crate::lua::fail;
use crate::runtime::{Completions, OpId, Outcome, Readiness, SourceHandler, Token};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Domain {
    Ipv4,
    Ipv6,
    Local,
    Share,
}

impl Domain {
    pub fn name(self) -> &'static str {
        match self {
            Domain::Ipv4 => "ipv4",
            Domain::Ipv6 => "ipv6",
            Domain::Local => "local",
            Domain::Share => "share",
        }
    }

    pub fn is_ip(self) -> bool {
        matches!(self, Domain::Ipv4 | Domain::Ipv6)
    }
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
    pub token: Option<Token>,
    /// Class index (`socket::UDP`, …).
    pub kind: u8,
    pub domain: Domain,
    /// A socket (`recv`/`send`) rather than another descriptor (`read`/`write`).
    pub socket: bool,
    pub reader: Option<Waiting>,
    pub connector: Option<Waiting>,
    pub queue: VecDeque<Request>,
    /// Descriptors received on a share stream, not returned yet.
    pub received: VecDeque<OwnedFd>,
    pub listening: bool,
    /// A datagram socket with a default peer.
    pub connected: bool,
    /// The path this socket bound, removed when it is closed (as libuv).
    pub path: Option<Vec<u8>>,
    /// A terminal's attributes to restore when it is closed, once its mode
    /// was changed.
    pub saved_mode: Option<libc::termios>,
    /// A terminal after `shutdown`: writes fail.
    pub write_shut: bool,
}

pub type Shared = Rc<RefCell<Core>>;

impl Core {
    pub fn new(fd: Socket, kind: u8, domain: Domain, socket: bool) -> Core {
        Core {
            fd: Some(fd),
            token: None,
            kind,
            domain,
            socket,
            reader: None,
            connector: None,
            queue: VecDeque::new(),
            received: VecDeque::new(),
            listening: false,
            connected: false,
            path: None,
            saved_mode: None,
            write_shut: false,
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

    /// One send of `bytes` (with `fd` attached, or to `to`).
    pub fn send(
        &self,
        bytes: &[u8],
        fd: Option<RawFd>,
        to: Option<&SockAddr>,
    ) -> io::Result<usize> {
        let raw = self.raw();
        match (fd, to) {
            (Some(fd), _) => sys::send_with_fd(raw, bytes, fd),
            (None, Some(to)) => sys::send_to(raw, bytes, to),
            (None, None) => sys::send(raw, bytes, self.socket),
        }
    }

    /// Ends the writing direction: `shutdown(2)`, or nothing for a
    /// terminal (which has no half-close; its object refuses writes).
    pub fn shut_write(&self) -> io::Result<()> {
        if self.kind == socket::TERMINAL {
            return Ok(());
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
            } => loop {
                let passed = fd.as_ref().map(|f| f.as_raw_fd());
                match self.send(&bytes[*sent..], passed, to.as_ref()) {
                    Ok(n) => {
                        if n > 0 {
                            *fd = None;
                        }
                        *sent += n;
                        if *sent >= bytes.len() {
                            return Some(Reply::True);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                    Err(e) => return Some(Reply::Fail(fail::code_of(&e))),
                }
            },
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
                        done.push((op, Some(Box::new(reply) as Outcome)));
                    }
                }
            }
        }
    }

    /// Marks the core closed; returns what the caller must release:
    /// the descriptor and the ops to complete.
    pub fn close(&mut self) -> (Option<Socket>, Option<Token>, Completions) {
        let mut done: Completions = Vec::new();
        let canceled = || Some(Box::new(Reply::Fail(libc::ECANCELED)) as Outcome);
        if let Some(w) = self.reader.take().filter(|w| !w.woken) {
            done.push((w.op, Some(Box::new(Reply::Closed) as Outcome)));
        }
        if let Some(w) = self.connector.take().filter(|w| !w.woken) {
            done.push((w.op, canceled()));
        }
        for req in self.queue.drain(..) {
            if let Some(op) = req.op {
                done.push((op, canceled()));
            }
        }
        self.received.clear();
        if let (Some(saved), Some(fd)) = (self.saved_mode.take(), &self.fd) {
            // SAFETY: sets attributes saved from this terminal.
            unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSADRAIN, &saved) };
        }
        (self.fd.take(), self.token.take(), done)
    }
}

fn wake(w: &mut Option<Waiting>, done: &mut Completions) {
    if let Some(w) = w.as_mut().filter(|w| !w.woken) {
        w.woken = true;
        done.push((w.op, None));
    }
}

impl SourceHandler for Core {
    fn ready(&mut self, r: Readiness, done: &mut Completions) {
        if self.fd.is_none() {
            return;
        }
        // Errors and hang-ups wake everyone: the retried calls report them.
        let failed = r.error || r.read_closed || r.write_closed;
        if r.readable || failed {
            wake(&mut self.reader, done);
        }
        if r.writable || failed {
            wake(&mut self.connector, done);
            self.flush(done);
        }
    }
}
