//! Datagram sockets (`coutil:udp`): `connect` (not an await: it sets or
//! clears the default peer), and the await methods `write` (one datagram)
//! and `read` (one datagram, with truncation and sender).
//!
//! As libuv, `connect` fails with `socket is already connected` on a
//! connected socket and clearing an unconnected one fails with `socket is
//! not connected`; a connected socket's `write` ignores its address.

use std::ffi::c_int;
use std::io;

use socket2::SockAddr;

use super::address::ip_arg;
use super::awaits;
use super::class::{UDP, this};
use super::netio::{Shared, Slot};
use super::{address, sys};
use crate::kfn;
use crate::lua::awaiting::{self, Await};
use crate::lua::{Error, KContext, Lua, Ret, fail};
use crate::memory::{self, range};
use crate::system::sys_loop;

/// Kept by a pending read: the socket, buffer, i, j, address.
const READ_KEEP: c_int = 5;

/// true | false, msg, code = udp:connect([address])
pub fn connect(lua: Lua) -> Ret {
    let core = this::<UDP>(lua)?;
    let domain = core.borrow().domain;
    let peer = if lua.is_none_or_nil(2) {
        None
    } else {
        Some(ip_arg(lua, 2, domain)?)
    };
    connect_to(lua, &core, peer.map(|addr| Ok(SockAddr::from(addr))))
}

/// `connect` of the datagram sockets (udp, local): connects `core` to
/// `peer` (an address, or the failure of making it) or, with `None`,
/// disconnects it; pushes the results.
pub(super) fn connect_to(lua: Lua, core: &Shared, peer: Option<io::Result<SockAddr>>) -> Ret {
    let mut c = core.borrow_mut();
    let result = match (peer, c.connected) {
        (Some(_), true) => Err(io::Error::from_raw_os_error(libc::EISCONN)),
        (None, false) => Err(io::Error::from_raw_os_error(libc::ENOTCONN)),
        (Some(addr), false) => addr.and_then(|addr| c.sock().connect(&addr)).map(|()| true),
        (None, true) => sys::disconnect(c.raw()).map(|()| false),
    };
    if let Ok(connected) = result {
        c.connected = connected;
    }
    drop(c);
    match result {
        Ok(_) => {
            lua.push_bool(true);
            Ok(1)
        }
        Err(e) => Ok(fail::push_io(lua, &e)),
    }
}

/// true | false, msg, code = udp:write(data [, i [, j [, address]]])
pub fn write(lua: Lua) -> Result<Await, Error> {
    let core = this::<UDP>(lua)?;
    awaiting::require_coroutine(lua)?;
    let (connected, domain) = {
        let c = core.borrow();
        (c.connected, c.domain)
    };
    let to = if connected {
        None
    } else {
        Some(SockAddr::from(ip_arg(lua, 5, domain)?))
    };
    let len = memory::with_arg_bytes(lua, 2, <[u8]>::len)?;
    let r = range::arg_span(lua, len, 3, 4)?;
    awaits::write(lua, sys_loop(&lua), &core, (2, r), None, to)
}

/// bytes, truncated | false, msg, code = udp:read(buffer [, i [, j [, address]]])
pub fn read(lua: Lua) -> Result<Await, Error> {
    let core = this::<UDP>(lua)?;
    awaits::read_args(lua)?;
    if !lua.is_none_or_nil(5) {
        ip_arg(lua, 5, core.borrow().domain)?;
    }
    let sl = awaits::start_read(&lua, &core)?;
    awaits::park_reader(lua, sl, &core, READ_KEEP, kfn!(read_k))
}

fn read_k(lua: Lua, ctx: KContext) -> Result<Await, Error> {
    awaits::retry(lua, ctx, READ_KEEP, Slot::Reader, read_now, kfn!(read_k))
}

fn read_now(lua: Lua, core: &Shared) -> Result<Option<c_int>, Error> {
    // `read` checked its kept arguments: a memory at 2, nil or an
    // address at 5.
    let raw = core.borrow().raw();
    // SAFETY: `read` checked its kept argument 2, a memory.
    let (size, received) =
        unsafe { memory::with_kept_span(lua, 2, (3, 4), |b| (b.len(), sys::recv_from(raw, b))) }?;
    match received {
        Ok((n, from)) => {
            if let Some(from) = from {
                // SAFETY: `read` checked its argument 5, kept since.
                unsafe { address::set_kept(lua, 5, from) };
            }
            lua.push_integer(n.min(size) as i64);
            lua.push_bool(n > size);
            Ok(Some(2))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            core.borrow_mut().may_read = false;
            Ok(None)
        }
        Err(e) => Ok(Some(fail::push_io(lua, &e))),
    }
}
