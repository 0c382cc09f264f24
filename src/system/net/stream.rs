//! The await methods of stream sockets (`coutil:tcpactive`,
//! `coutil:pipeactive`, `coutil:pipeshare`): `connect`, `read`, `write`,
//! `shutdown`. The waiting itself is in `netio`.
//!
//! The order of checks is the original's (R3 of spec/behaviour-rules.md):
//! `connect`, `write` and `shutdown` check the object, then the coroutine
//! (`unable to yield`), then the other arguments; `read` checks its
//! arguments, then `already in use`, then the coroutine.

use std::ffi::c_int;
use std::io;

use super::address::target;
use super::awaits::{self, Then};
use super::class::{PIPESHARE, this};
use super::netio::{Domain, PipeEnd, Shared, Slot};
use super::share;
use crate::kfn;
use crate::lua::awaiting::{self, Await};
use crate::lua::{Error, KContext, Lua, fail};
use crate::memory::{self, range};
use crate::system::sys_loop;

/// Kept by a pending read: the socket, buffer, i, j.
const READ_KEEP: c_int = 4;
/// Kept by a pending connect: the socket and its address.
const CONNECT_KEEP: c_int = 2;

/// true | false, msg, code = sock:connect(address | path)
pub fn connect<const K: u8>(lua: Lua) -> Result<Await, Error> {
    let core = this::<K>(lua)?;
    awaiting::require_coroutine(lua)?;
    let domain = core.borrow().domain;
    let sl = sys_loop(&lua);
    let wait = (Slot::Connector, kfn!(connect_k));
    if domain == Domain::Pair {
        // Connected from the start, to its other end only: the loop
        // delivers the failure, as for the other local sockets.
        core.borrow_mut().delayed_error = Some(libc::ENOTSUP);
        let then = Then::Pend(awaits::WRITABLE);
        return awaits::park(lua, sl, &core, CONNECT_KEEP, wait, then);
    }
    let addr = target(lua, 2, domain)?;
    if core.borrow().connecting {
        // The connect of an earlier (cancelled) call is still in progress:
        // wait for its end, which the continuation reports.
        let then = Then::Recheck(awaits::WRITABLE);
        return awaits::park(lua, sl, &core, CONNECT_KEEP, wait, then);
    }
    let result = addr.and_then(|addr| core.borrow().sock().connect(&addr));
    let local = !domain.is_ip();
    let then = match result {
        // Connected at once: the loop still delivers it, after the
        // readiness of its poll (an `accept` of it comes first).
        Ok(()) => Then::Recheck(awaits::WRITABLE),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Then::Wait,
        // As libuv: a refused connection, and every failure of a local
        // one, is reported by the loop; other errors at once.
        Err(e) if local || e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            core.borrow_mut().delayed_error = Some(fail::code_of(&e));
            let then = Then::Pend(awaits::WRITABLE);
            return awaits::park(lua, sl, &core, CONNECT_KEEP, wait, then);
        }
        Err(e) => return Ok(Await::Done(fail::push_io(lua, &e))),
    };
    core.borrow_mut().connecting = true;
    awaits::park(lua, sl, &core, CONNECT_KEEP, wait, then)
}

fn connect_k(lua: Lua, ctx: KContext) -> Result<Await, Error> {
    awaits::retry(
        lua,
        ctx,
        CONNECT_KEEP,
        Slot::Connector,
        connected,
        kfn!(connect_k),
    )
}

/// After a wake-up: the connection's result, or `None` if still in
/// progress. Connecting again tells (and makes later calls fail with
/// `socket is already connected`, as for accepted sockets).
fn connected(lua: Lua, core: &Shared) -> Result<Option<c_int>, Error> {
    let domain = core.borrow().domain;
    let addr = target(lua, 2, domain)?;
    let result = {
        let c = core.borrow();
        match c.sock().take_error() {
            Ok(None) => match addr.and_then(|addr| c.sock().connect(&addr)) {
                Ok(()) => Ok(true),
                Err(e) if e.raw_os_error() == Some(libc::EISCONN) => Ok(true),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EALREADY | libc::EINPROGRESS)) => {
                    Ok(false)
                }
                Err(e) => Err(e),
            },
            Ok(Some(e)) | Err(e) => Err(e),
        }
    };
    let mut c = core.borrow_mut();
    Ok(match result {
        Ok(true) => {
            c.connecting = false;
            c.open = true;
            lua.push_bool(true);
            Some(1)
        }
        Ok(false) => None,
        Err(e) => {
            c.connecting = false;
            Some(fail::push_io(lua, &e))
        }
    })
}

/// bytes [, sock] | false, msg, code = sock:read(buffer [, i [, j]])
pub fn read<const K: u8>(lua: Lua) -> Result<Await, Error> {
    let core = this::<K>(lua)?;
    awaits::read_args(lua)?;
    let sl = awaits::start_read(&lua, &core)?;
    if share::push_received(lua, &core) {
        // Sockets that came with earlier bytes: at once (R1's exception).
        lua.push_integer(0);
        lua.push_value(-2);
        return Ok(Await::Done(2));
    }
    let (open, end) = {
        let c = core.borrow();
        (c.open, c.pipe_end)
    };
    if end == Some(PipeEnd::Write) {
        return Ok(Await::Done(fail::push(lua, libc::EBADF)));
    }
    if !open {
        return Ok(Await::Done(fail::push(lua, libc::ENOTCONN)));
    }
    awaits::park_reader(lua, sl, &core, READ_KEEP, kfn!(read_k))
}

fn read_k(lua: Lua, ctx: KContext) -> Result<Await, Error> {
    awaits::retry(lua, ctx, READ_KEEP, Slot::Reader, read_now, kfn!(read_k))
}

/// One read into `buffer[i..j]` (arguments 2 to 4).
fn read_now(lua: Lua, core: &Shared) -> Result<Option<c_int>, Error> {
    if share::push_received(lua, core) {
        lua.push_integer(0);
        lua.push_value(-2);
        return Ok(Some(2));
    }
    // `read` checked its kept arguments 2 to 4.
    let (size, result) = share::recv(lua, core)?;
    let Some(result) = result else {
        // As libuv, which cannot read into an empty buffer.
        return Ok(Some(fail::push(lua, libc::ENOBUFS)));
    };
    Ok(match result {
        Ok(0) => Some(fail::push(lua, fail::EOF)),
        Ok(n) => {
            let mut c = core.borrow_mut();
            if n < size && !c.hung_up && !c.terminal && c.received.is_empty() {
                // A short read emptied the socket: more data will come
                // with a readiness edge. Not so for a terminal, which in
                // canonical mode gives one line per read, typed lines
                // waiting after it with no new edge to come.
                c.may_read = false;
            }
            drop(c);
            lua.push_integer(n as i64);
            if share::push_received(lua, core) {
                Some(2)
            } else {
                Some(1)
            }
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            core.borrow_mut().may_read = false;
            None
        }
        Err(e) => Some(fail::push_io(lua, &e)),
    })
}

/// true | false, msg, code = sock:write(data [, i [, j [, sock]]])
pub fn write<const K: u8>(lua: Lua) -> Result<Await, Error> {
    let core = this::<K>(lua)?;
    awaiting::require_coroutine(lua)?;
    let len = memory::with_arg_bytes(lua, 2, <[u8]>::len)?;
    let r = range::arg_span(lua, len, 3, 4)?;
    let passed = if K == PIPESHARE && core.borrow().domain == Domain::Share {
        share::passed(lua, 5)?
    } else {
        None
    };
    if let Some(code) = unwritable(&core) {
        return Ok(Await::Done(fail::push(lua, code)));
    }
    if passed.is_some() && r.is_empty() {
        // A socket travels with data: nothing would carry it.
        return Ok(Await::Done(fail::push(lua, libc::EINVAL)));
    }
    awaits::write(lua, sys_loop(&lua), &core, (2, r), passed, None)
}

/// Why a stream cannot be written, as libuv checks before writing: a
/// local socket with no connection nor address has no descriptor yet
/// (`bad file descriptor`); one never connected, or shut down, is not
/// writable (`broken pipe`).
fn unwritable(core: &Shared) -> Option<i32> {
    let c = core.borrow();
    if c.pipe_end == Some(PipeEnd::Read) {
        Some(libc::EBADF)
    } else if c.open && !c.shut {
        None
    } else if !c.open && !c.domain.is_ip() && c.path.is_none() {
        Some(libc::EBADF)
    } else {
        Some(libc::EPIPE)
    }
}

/// true | false, msg, code = sock:shutdown()
pub fn shutdown<const K: u8>(lua: Lua) -> Result<Await, Error> {
    let core = this::<K>(lua)?;
    awaiting::require_coroutine(lua)?;
    let refused = {
        let c = core.borrow();
        if c.pipe_end == Some(PipeEnd::Read) {
            Some(libc::EBADF)
        } else if !c.open || c.shut {
            Some(libc::ENOTCONN)
        } else {
            None
        }
    };
    if let Some(code) = refused {
        return Ok(Await::Done(fail::push(lua, code)));
    }
    awaits::shutdown(lua, sys_loop(&lua), &core)
}
