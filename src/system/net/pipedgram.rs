//! Local datagram sockets (`coutil:pipedgram`, extension E5): Unix-domain
//! `SOCK_DGRAM` sockets named by paths. `connect` (not an await) sets or
//! clears the default peer, `write` sends one datagram, `read` receives
//! one with its sender's path.
//!
//! They follow `coutil:udp` (`udp.rs`) wherever they can: the same
//! `connect` failures (`socket is already connected` on a connected
//! socket, `socket is not connected` when clearing an unconnected one),
//! the same order of checks (the object, then `unable to yield`, then the
//! path of an unconnected socket's `write`, then the data), the same
//! readiness waits and request queue (`netio`, `awaits`), so the same R1
//! and R2 behaviour. Paths are checked as those of local streams: a NUL
//! byte gives `invalid argument`, a path too long `name too long`.
//!
//! NOTE: a datagram for a receiver whose queue is full waits in our
//! queue for the socket to become writable again. Linux only wakes an
//! unconnected sender when datagrams it sent itself are consumed, so a
//! datagram to a receiver kept full by others waits until the socket is
//! closed (or the write is resumed explicitly).

use std::ffi::c_int;
use std::io;

use socket2::SockAddr;

use super::address::{path_of, target};
use super::awaits;
use super::class::{PIPEDGRAM, this};
use super::netio::{Domain, Shared, Slot};
use super::sys;
use crate::kfn;
use crate::lua::awaiting::{self, Await};
use crate::lua::{Error, KContext, Lua, Ret, fail};
use crate::memory::{self, range};
use crate::system::sys_loop;

/// Kept by a pending read: the socket, buffer, i, j.
const READ_KEEP: c_int = 4;

/// true | false, msg, code = dgram:connect([path])
pub fn connect(lua: Lua) -> Ret {
    let core = this::<PIPEDGRAM>(lua)?;
    let peer = if lua.is_none_or_nil(2) {
        None
    } else {
        Some(target(lua, 2, Domain::Local)?)
    };
    super::udp::connect_to(lua, &core, peer)
}

/// true | false, msg, code = dgram:write(data [, i [, j [, path]]])
pub fn write(lua: Lua) -> Result<Await, Error> {
    let core = this::<PIPEDGRAM>(lua)?;
    awaiting::require_coroutine(lua)?;
    let to = if core.borrow().connected {
        None
    } else {
        Some(target(lua, 5, Domain::Local)?)
    };
    let len = memory::with_arg_bytes(lua, 2, <[u8]>::len)?;
    let r = range::arg_span(lua, len, 3, 4)?;
    let sl = sys_loop(&lua);
    let to = match to {
        None => None,
        Some(Ok(addr)) => Some(addr),
        Some(Err(e)) => return awaits::fail_later(lua, sl, fail::code_of(&e)),
    };
    awaits::write(lua, sl, &core, (2, r), None, to)
}

/// bytes, truncated, path | false, msg, code = dgram:read(buffer [, i [, j]])
pub fn read(lua: Lua) -> Result<Await, Error> {
    let core = this::<PIPEDGRAM>(lua)?;
    awaits::read_args(lua)?;
    let sl = awaits::start_read(&lua, &core)?;
    awaits::park_reader(lua, sl, &core, READ_KEEP, kfn!(read_k))
}

fn read_k(lua: Lua, ctx: KContext) -> Result<Await, Error> {
    awaits::retry(lua, ctx, READ_KEEP, Slot::Reader, read_now, kfn!(read_k))
}

fn read_now(lua: Lua, core: &Shared) -> Result<Option<c_int>, Error> {
    // `read` checked its kept argument 2, a memory.
    let raw = core.borrow().raw();
    // SAFETY: `read` checked its kept argument 2, a memory.
    let (size, received) = unsafe {
        memory::with_kept_span(lua, 2, (3, 4), |b| (b.len(), sys::recv_from_local(raw, b)))
    }?;
    match received {
        Ok((n, from)) => {
            lua.push_integer(n.min(size) as i64);
            lua.push_bool(n > size);
            push_sender(lua, &from);
            Ok(Some(3))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            core.borrow_mut().may_read = false;
            Ok(None)
        }
        Err(e) => Ok(Some(fail::push_io(lua, &e))),
    }
}

/// The sender's path, or nil for an unnamed sender.
fn push_sender(lua: Lua, from: &SockAddr) {
    let path = path_of(from);
    if path.is_empty() {
        lua.push_nil();
    } else {
        lua.push_bytes(&path);
    }
}
