//! The await methods of stream sockets (`coutil:tcpactive`,
//! `coutil:pipeactive`, `coutil:pipeshare`): `connect`, `read`, `write`,
//! `shutdown`. The waiting itself is in `netio`.
//!
//! Arguments are checked before the coroutine (`unable to yield`), so
//! misuse reports the same error inside and outside coroutines.

use std::ffi::c_int;
use std::io;

use super::awaits;
use super::netio::{Domain, Shared, Slot};
use super::share;
use super::socket::{PIPESHARE, target, this};
use crate::kfn;
use crate::lua::awaiting::{self, Await};
use crate::lua::{Error, Lua, fail, ffi};
use crate::memory::{self, range};

/// Kept by a pending read: the socket, buffer, i, j.
const READ_KEEP: c_int = 4;
/// Kept by a pending connect: the socket and its address.
const CONNECT_KEEP: c_int = 2;

/// true | false, msg, code = sock:connect(address | path)
pub fn connect<const K: u8>(lua: Lua) -> Result<Await, Error> {
    let core = this::<K>(lua)?;
    let domain = core.borrow().domain;
    let addr = target(lua, 2, domain)?;
    awaiting::require_coroutine(lua)?;
    let addr = match addr {
        Ok(addr) => addr,
        Err(e) => return Ok(Await::Done(fail::push_io(lua, &e))),
    };
    let result = core.borrow().sock().connect(&addr);
    match result {
        Ok(()) => {
            lua.push_bool(true);
            Ok(Await::Done(1))
        }
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            awaits::park(lua, &core, CONNECT_KEEP, Slot::Connector, kfn!(connect_k))
        }
        Err(e) => Ok(Await::Done(fail::push_io(lua, &e))),
    }
}

fn connect_k(lua: Lua, ctx: ffi::lua_KContext) -> Result<Await, Error> {
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
    Ok(match result {
        Ok(true) => {
            lua.push_bool(true);
            Some(1)
        }
        Ok(false) => None,
        Err(e) => Some(fail::push_io(lua, &e)),
    })
}

/// bytes [, sock] | false, msg, code = sock:read(buffer [, i [, j]])
pub fn read<const K: u8>(lua: Lua) -> Result<Await, Error> {
    let core = this::<K>(lua)?;
    memory::arg_buffer(lua, 2)?;
    lua.opt_integer(3, 1)?;
    lua.opt_integer(4, -1)?;
    awaiting::require_coroutine(lua)?;
    awaits::check_reader(lua, &core)?;
    awaits::start(lua, &core, READ_KEEP, Slot::Reader, read_now, kfn!(read_k))
}

fn read_k(lua: Lua, ctx: ffi::lua_KContext) -> Result<Await, Error> {
    awaits::retry(lua, ctx, READ_KEEP, Slot::Reader, read_now, kfn!(read_k))
}

/// One read into `buffer[i..j]` (arguments 2 to 4).
fn read_now(lua: Lua, core: &Shared) -> Result<Option<c_int>, Error> {
    if share::push_received(lua, core) {
        lua.push_integer(0);
        lua.push_value(-2);
        return Ok(Some(2));
    }
    let buf = memory::arg_buffer(lua, 2)?;
    let r = range::arg_span(lua, buf.len(), 3, 4)?;
    if r.is_empty() {
        // As libuv, which cannot read into an empty buffer.
        return Ok(Some(fail::push(lua, libc::ENOBUFS)));
    }
    let result = share::recv(core, &mut buf[r]);
    Ok(match result {
        Ok(0) => Some(fail::push(lua, fail::EOF)),
        Ok(n) => {
            lua.push_integer(n as i64);
            if share::push_received(lua, core) {
                Some(2)
            } else {
                Some(1)
            }
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(e) => Some(fail::push_io(lua, &e)),
    })
}

/// true | false, msg, code = sock:write(data [, i [, j [, sock]]])
pub fn write<const K: u8>(lua: Lua) -> Result<Await, Error> {
    let core = this::<K>(lua)?;
    let data = memory::arg_bytes(lua, 2)?;
    let r = range::arg_span(lua, data.len(), 3, 4)?;
    let passed = if K == PIPESHARE && core.borrow().domain == Domain::Share {
        share::passed(lua, 5)?
    } else {
        None
    };
    awaiting::require_coroutine(lua)?;
    if passed.is_some() && r.is_empty() {
        // A socket travels with data: nothing would carry it.
        return Ok(Await::Done(fail::push(lua, libc::EINVAL)));
    }
    awaits::write(lua, &core, &data[r], passed, None)
}

/// true | false, msg, code = sock:shutdown()
pub fn shutdown<const K: u8>(lua: Lua) -> Result<Await, Error> {
    let core = this::<K>(lua)?;
    awaiting::require_coroutine(lua)?;
    awaits::shutdown(lua, &core)
}
