//! Listening sockets (`coutil:tcppassive`, `coutil:pipepassive`):
//! `listen` and the await method `accept`.
//!
//! Connections that arrive while nobody accepts wait in the kernel's
//! backlog; `accept` takes one without suspending when there is one. A
//! failing accept (e.g. `too many open files`) returns the failure and
//! leaves the connection queued, so later calls can still take it.

use std::ffi::c_int;
use std::io;

use socket2::Socket;

use super::awaits;
use super::netio::{Domain, Shared, Slot};
use super::socket::{self, PIPEACTIVE, PIPESHARE, TCPACTIVE, this};
use super::sys;
use crate::kfn;
use crate::lua::awaiting::{self, Await};
use crate::lua::{Error, Lua, Ret, fail, ffi};

/// true | false, msg, code = sock:listen(backlog)
pub fn listen<const K: u8>(lua: Lua) -> Ret {
    let core = this::<K>(lua)?;
    let backlog = lua.arg_integer(2)?;
    if !(0..=i32::MAX as i64).contains(&backlog) {
        return Err(Error::arg(2, "out of range"));
    }
    if core.borrow().listening {
        return Err(Error::msg("already listening"));
    }
    let result = core.borrow().sock().listen(backlog as i32);
    match result {
        Ok(()) => {
            core.borrow_mut().listening = true;
            lua.push_bool(true);
            Ok(1)
        }
        Err(e) => Ok(fail::push_io(lua, &e)),
    }
}

/// sock | false, msg, code = sock:accept()
pub fn accept<const K: u8>(lua: Lua) -> Result<Await, Error> {
    let core = this::<K>(lua)?;
    if !core.borrow().listening {
        return Err(Error::msg("not listening"));
    }
    awaiting::require_coroutine(lua)?;
    awaits::check_reader(lua, &core)?;
    awaits::start(lua, &core, 1, Slot::Reader, accept_now, kfn!(accept_k))
}

fn accept_k(lua: Lua, ctx: ffi::lua_KContext) -> Result<Await, Error> {
    awaits::retry(lua, ctx, 1, Slot::Reader, accept_now, kfn!(accept_k))
}

fn accept_now(lua: Lua, core: &Shared) -> Result<Option<c_int>, Error> {
    let (result, domain) = {
        let c = core.borrow();
        (sys::accept(c.raw()), c.domain)
    };
    let fd = match result {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) => return Ok(Some(fail::push_io(lua, &e))),
    };
    let kind = match domain {
        Domain::Local => PIPEACTIVE,
        Domain::Share => PIPESHARE,
        _ => TCPACTIVE,
    };
    Ok(Some(
        match socket::push_new(lua, Socket::from(fd), kind, domain, true) {
            Ok(()) => 1,
            Err(e) => fail::push_io(lua, &e),
        },
    ))
}
