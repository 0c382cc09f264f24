//! `coutil:terminal` objects (spec/stdio-info.md §1): a terminal device
//! read and written through the loop, plus `setmode` and `winsize`.
//!
//! The descriptor is non-blocking and registered with the loop's poll;
//! its [`TermIo`] is the source handler, as for sockets (`net::netio`):
//! * `read` tries `read(2)` and, on `EAGAIN`, waits for readiness with an
//!   `External` operation that the handler completes without outcome; the
//!   continuation then reads again. A cancelled read takes nothing.
//! * `write` writes what it can at once; the rest is copied to the
//!   object's queue, which the handler sends in order on writable
//!   readiness, completing each writer. Several writers may wait.
//! * `shutdown` waits for the queue to drain; afterwards writes fail with
//!   `broken pipe` (a terminal has no half-close of its own).
//!
//! `close` (also `__gc`/`__close`) wakes the reader with `false, "closed"`
//! and fails the queued writes with `operation canceled`; a terminal whose
//! mode was changed is set back to the attributes it had when the object
//! was created.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::c_int;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

use mio::unix::SourceFd;

use crate::lua::awaiting::{self, Await, Resumed, state_loop};
use crate::lua::class::{self, Class, Object};
use crate::lua::{Error, Lua, Reg, Ret, fail, ffi};
use crate::memory::{self, range};
use crate::runtime::{Completions, OpId, Outcome, Readiness, SourceHandler, Token, Wait};
use crate::system::errno::errno;
use crate::system::net::{Reply, deliver_reply, push_reply};
use crate::{afn, cfn, kfn};

const METHODS: &[Reg] = &[
    (c"close", cfn!(close)),
    (c"read", afn!(read)),
    (c"write", afn!(write)),
    (c"shutdown", afn!(shutdown)),
    (c"setmode", cfn!(setmode)),
    (c"winsize", cfn!(winsize)),
];

struct Queued {
    /// The waiting coroutine's op; `None` once it was cancelled.
    op: Option<OpId>,
    bytes: Vec<u8>,
    sent: usize,
    /// A shutdown request: completes when everything before it was sent.
    shutdown: bool,
}

/// The I/O state of a terminal, shared with the loop.
struct TermIo {
    fd: Option<OwnedFd>,
    token: Option<Token>,
    /// The waiting reader and whether it was woken already.
    reader: Option<(OpId, bool)>,
    queue: VecDeque<Queued>,
    /// Writes are refused after a shutdown.
    shut: bool,
    /// Attributes to restore once the mode was changed.
    saved: Option<libc::termios>,
}

type Shared = Rc<RefCell<TermIo>>;

impl TermIo {
    fn raw(&self) -> c_int {
        self.fd.as_ref().map_or(-1, |f| f.as_raw_fd())
    }

    /// One `write(2)` of `bytes`: bytes taken, or the errno.
    fn send(&self, bytes: &[u8]) -> Result<usize, c_int> {
        loop {
            // SAFETY: writes from a live slice to our descriptor.
            let n = unsafe { libc::write(self.raw(), bytes.as_ptr().cast(), bytes.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            match errno() {
                libc::EINTR => continue,
                e => return Err(e),
            }
        }
    }

    /// Sends the queue in order until the terminal blocks.
    fn flush(&mut self, done: &mut Completions) {
        while let Some(mut q) = self.queue.pop_front() {
            let reply = loop {
                if q.shutdown {
                    break Reply::True;
                }
                if q.sent >= q.bytes.len() {
                    break Reply::True;
                }
                match self.send(&q.bytes[q.sent..]) {
                    Ok(n) => q.sent += n,
                    Err(libc::EAGAIN) => {
                        self.queue.push_front(q);
                        return;
                    }
                    Err(e) => break Reply::Fail(e),
                }
            };
            if let Some(op) = q.op {
                done.push((op, Some(Box::new(reply) as Outcome)));
            }
        }
    }
}

impl SourceHandler for TermIo {
    fn ready(&mut self, r: Readiness, done: &mut Completions) {
        if self.fd.is_none() {
            return;
        }
        let failed = r.error || r.read_closed || r.write_closed;
        if (r.readable || failed)
            && let Some((op, woken)) = self.reader.as_mut()
            && !*woken
        {
            *woken = true;
            done.push((*op, None));
        }
        if r.writable || failed {
            self.flush(done);
        }
    }
}

pub struct Terminal {
    io: Shared,
}

impl Object for Terminal {
    const CLASS: &'static Class = &Class {
        name: c"coutil:terminal",
        methods: METHODS,
        meta: &[(c"__gc", cfn!(gc)), (c"__close", cfn!(gc))],
    };
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // `__gc` of a terminal never closed: the descriptor closes with the
        // object (which also removes it from the poll); the loop is not
        // touched, as it may be gone already when the state closes.
        let mut t = self.io.borrow_mut();
        restore(&mut t);
        t.fd = None;
    }
}

fn restore(t: &mut TermIo) {
    if let Some(saved) = t.saved.take() {
        // SAFETY: sets attributes saved from this terminal.
        unsafe { libc::tcsetattr(t.raw(), libc::TCSADRAIN, &saved) };
    }
}

/// Pushes a terminal object owning `fd` (made non-blocking and registered
/// with the state's loop).
pub fn push(lua: Lua, fd: OwnedFd) -> std::io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl on our descriptor.
    unsafe {
        let flags = libc::fcntl(raw, libc::F_GETFL);
        if flags < 0 || libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    let io: Shared = Rc::new(RefCell::new(TermIo {
        fd: Some(fd),
        token: None,
        reader: None,
        queue: VecDeque::new(),
        shut: false,
        saved: None,
    }));
    let token = state_loop(lua)
        .ops
        .borrow_mut()
        .register_handler(&mut SourceFd(&raw), io.clone())?;
    io.borrow_mut().token = Some(token);
    class::push(lua, Terminal { io });
    Ok(())
}

/// The open terminal at argument 1.
fn this(lua: Lua) -> Result<Shared, Error> {
    match class::check::<Terminal>(lua, 1)? {
        Some(t) => Ok(t.io.clone()),
        None => Err(Error::arg(1, "closed object")),
    }
}

/// The open terminal kept at 1 by a continuation.
fn kept(lua: Lua) -> Option<Shared> {
    class::test::<Terminal>(lua, 1).and_then(|s| s.as_ref().map(|t| t.io.clone()))
}

/// Closes the terminal: leaves the loop, wakes its waiters, restores its
/// mode and closes the descriptor.
fn shut(lua: Lua, io: &Shared) {
    let (fd, token, done) = {
        let mut t = io.borrow_mut();
        let mut done: Completions = Vec::new();
        if let Some((op, false)) = t.reader.take() {
            done.push((op, Some(Box::new(Reply::Closed) as Outcome)));
        }
        for q in t.queue.drain(..) {
            if let Some(op) = q.op {
                done.push((op, Some(Box::new(Reply::Fail(libc::ECANCELED)) as Outcome)));
            }
        }
        restore(&mut t);
        (t.fd.take(), t.token.take(), done)
    };
    if let Ok(mut ops) = state_loop(lua).ops.try_borrow_mut() {
        if let (Some(fd), Some(token)) = (&fd, token) {
            let _ = ops.deregister(&mut SourceFd(&fd.as_raw_fd()), token);
        }
        for (op, outcome) in done {
            ops.complete(op, outcome);
        }
    }
    drop(fd);
}

/// true = term:close()
fn close(lua: Lua) -> Ret {
    this(lua)?;
    if let Some(t) = class::check::<Terminal>(lua, 1)?.take() {
        shut(lua, &t.io);
    }
    lua.push_bool(true);
    Ok(1)
}

/// `__close`: closes the terminal if it is still open.
fn gc(lua: Lua) -> Ret {
    if let Some(Some(t)) = class::test::<Terminal>(lua, 1).map(Option::take) {
        shut(lua, &t.io);
    }
    Ok(0)
}

/// Kept by a pending read: the terminal, buffer, i, j.
const READ_KEEP: c_int = 4;

/// bytes | false, msg, code = term:read(buffer [, i [, j]])
fn read(lua: Lua) -> Result<Await, Error> {
    let io = this(lua)?;
    memory::arg_buffer(lua, 2)?;
    lua.opt_integer(3, 1)?;
    lua.opt_integer(4, -1)?;
    awaiting::require_coroutine(lua)?;
    let reader = io.borrow().reader;
    if let Some((op, _)) = reader {
        if state_loop(lua).ops.borrow().waiter(op).is_some() {
            return Err(Error::msg("already in use"));
        }
        io.borrow_mut().reader = None;
    }
    read_or_wait(lua, &io)
}

fn read_or_wait(lua: Lua, io: &Shared) -> Result<Await, Error> {
    let buf = memory::arg_buffer(lua, 2)?;
    let r = range::arg_span(lua, buf.len(), 3, 4)?;
    if r.is_empty() {
        return Ok(Await::Done(fail::push(lua, libc::ENOBUFS)));
    }
    let buf = &mut buf[r];
    let n = loop {
        // SAFETY: reads into the memory's bytes, alive on the stack.
        let n = unsafe { libc::read(io.borrow().raw(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        break n;
    };
    if n > 0 {
        lua.push_integer(n as i64);
        return Ok(Await::Done(1));
    }
    if n == 0 {
        return Ok(Await::Done(fail::push(lua, fail::EOF)));
    }
    match errno() {
        libc::EAGAIN => {
            let id = awaiting::wait(lua, state_loop(lua), Wait::External, deliver_reply)?;
            io.borrow_mut().reader = Some((id, false));
            Ok(Await::Keep(id, READ_KEEP, kfn!(read_k)))
        }
        e => Ok(Await::Done(fail::push(lua, e))),
    }
}

fn read_k(lua: Lua, ctx: ffi::lua_KContext) -> Result<Await, Error> {
    let id = OpId::from_bits(ctx as u64);
    let resumed = awaiting::resumed(lua, READ_KEEP, ctx);
    let io = kept(lua);
    if let Some(io) = &io {
        let mut t = io.borrow_mut();
        if t.reader.is_some_and(|(op, _)| op == id) {
            t.reader = None;
        }
    }
    match resumed {
        Resumed::User(n) => Ok(Await::Done(n)),
        Resumed::Loop => {
            let n = lua.top() - READ_KEEP - 1;
            if n > 0 {
                return Ok(Await::Done(n));
            }
            match io {
                Some(io) => read_or_wait(lua, &io),
                None => Ok(Await::Done(push_reply(lua, Reply::Closed))),
            }
        }
    }
}

/// true | false, msg, code = term:write(data [, i [, j]])
fn write(lua: Lua) -> Result<Await, Error> {
    let io = this(lua)?;
    let data = memory::arg_bytes(lua, 2)?;
    let r = range::arg_span(lua, data.len(), 3, 4)?;
    awaiting::require_coroutine(lua)?;
    let data = &data[r];
    if io.borrow().shut {
        return Ok(Await::Done(fail::push(lua, libc::EPIPE)));
    }
    let mut sent = 0;
    if io.borrow().queue.is_empty() {
        while sent < data.len() {
            match io.borrow().send(&data[sent..]) {
                Ok(n) => sent += n,
                Err(libc::EAGAIN) => break,
                Err(e) => return Ok(Await::Done(fail::push(lua, e))),
            }
        }
        if sent >= data.len() {
            return Ok(Await::Done(push_reply(lua, Reply::True)));
        }
    }
    let bytes = data[sent..].to_vec();
    enqueue(lua, &io, bytes, false)
}

/// true | false, msg, code = term:shutdown()
fn shutdown(lua: Lua) -> Result<Await, Error> {
    let io = this(lua)?;
    awaiting::require_coroutine(lua)?;
    let first = !io.borrow().shut;
    io.borrow_mut().shut = true;
    if !first {
        return Ok(Await::Done(fail::push(lua, libc::ENOTCONN)));
    }
    if io.borrow().queue.is_empty() {
        return Ok(Await::Done(push_reply(lua, Reply::True)));
    }
    enqueue(lua, &io, Vec::new(), true)
}

fn enqueue(lua: Lua, io: &Shared, bytes: Vec<u8>, shutdown: bool) -> Result<Await, Error> {
    let id = awaiting::wait(lua, state_loop(lua), Wait::External, deliver_reply)?;
    io.borrow_mut().queue.push_back(Queued {
        op: Some(id),
        bytes,
        sent: 0,
        shutdown,
    });
    Ok(Await::Keep(id, 1, kfn!(request_k)))
}

/// Continuation of a queued write or shutdown: its reply, or the values
/// of an explicit resume (the data stays queued without its op).
fn request_k(lua: Lua, ctx: ffi::lua_KContext) -> Result<Await, Error> {
    let id = OpId::from_bits(ctx as u64);
    match awaiting::resumed(lua, 1, ctx) {
        Resumed::Loop => Ok(Await::Done(lua.top() - 2)),
        Resumed::User(n) => {
            if let Some(io) = kept(lua) {
                let mut t = io.borrow_mut();
                if let Some(q) = t.queue.iter_mut().find(|q| q.op == Some(id)) {
                    q.op = None;
                }
            }
            Ok(Await::Done(n))
        }
    }
}

/// true | false, msg, code = term:setmode(mode)
fn setmode(lua: Lua) -> Ret {
    let io = this(lua)?;
    let mode = lua.arg_option(2, &["normal", "raw", "binary"], None)?;
    let mut t = io.borrow_mut();
    let fd = t.raw();
    // SAFETY: termios calls on our descriptor with local structures.
    unsafe {
        let mut current: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut current) != 0 {
            return Ok(fail::push(lua, errno()));
        }
        let original = t.saved.unwrap_or(current);
        let mut attrs = original;
        match mode {
            0 => {}
            1 => {
                attrs.c_iflag &=
                    !(libc::BRKINT | libc::ICRNL | libc::INPCK | libc::ISTRIP | libc::IXON);
                attrs.c_oflag |= libc::ONLCR;
                attrs.c_cflag |= libc::CS8;
                attrs.c_lflag &= !(libc::ECHO | libc::ICANON | libc::IEXTEN | libc::ISIG);
                attrs.c_cc[libc::VMIN] = 1;
                attrs.c_cc[libc::VTIME] = 0;
            }
            _ => {
                libc::cfmakeraw(&mut attrs);
                attrs.c_cc[libc::VMIN] = 1;
                attrs.c_cc[libc::VTIME] = 0;
            }
        }
        if libc::tcsetattr(fd, libc::TCSADRAIN, &attrs) != 0 {
            return Ok(fail::push(lua, errno()));
        }
        t.saved = if mode == 0 { None } else { Some(original) };
    }
    lua.push_bool(true);
    Ok(1)
}

/// width, height | false, msg, code = term:winsize()
fn winsize(lua: Lua) -> Ret {
    let io = this(lua)?;
    // SAFETY: TIOCGWINSZ fills a local winsize.
    let ws = unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(io.borrow().raw(), libc::TIOCGWINSZ, &mut ws) != 0 {
            return Ok(fail::push(lua, errno()));
        }
        ws
    };
    lua.push_integer(ws.ws_col as i64);
    lua.push_integer(ws.ws_row as i64);
    Ok(2)
}
