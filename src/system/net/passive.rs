//! Listening sockets (`coutil:tcppassive`, `coutil:pipepassive`):
//! `listen` and the await method `accept`.
//!
//! The loop accepts (see `netio`): as libuv, it holds one connection that
//! arrived while nobody waited in `accept`, which the next `accept` returns
//! without suspending; otherwise `accept` suspends, even when the kernel
//! has connections queued. A failing accept (e.g. `too many open files`)
//! returns the failure and leaves the connection queued, so later calls
//! can still take it.

use std::ffi::c_int;

use socket2::Socket;

use super::awaits::{self, Then};
use super::class::{self, PIPEACTIVE, PIPESHARE, TCPACTIVE, this};
use super::netio::{Domain, Shared, Slot};
use crate::kfn;
use crate::lua::awaiting::{self, Await};
use crate::lua::{Error, KContext, Lua, Ret, fail};
use crate::system::sys_loop;

/// true | false, msg, code = sock:listen(backlog)
pub fn listen<const K: u8>(lua: Lua) -> Ret {
    let core = this::<K>(lua)?;
    let backlog = lua.arg_integer(2)?;
    if core.borrow().listening {
        return Err(Error::arg(1, "already listening"));
    }
    if !(0..=i32::MAX as i64).contains(&backlog) {
        return Err(Error::arg(2, "out of range"));
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
        return Err(Error::arg(1, "not listening"));
    }
    let sl = sys_loop(&lua);
    awaits::check_reader(sl, &core)?;
    if let Some(n) = take_held(lua, &core)? {
        // Noticed by the loop while nobody waited: at once, even outside
        // a coroutine (R1); the loop then looks for the next one.
        return Ok(Await::Done(n));
    }
    awaiting::require_coroutine(lua)?;
    let then = Then::Recheck(awaits::READABLE);
    awaits::park(lua, sl, &core, 1, (Slot::Reader, kfn!(accept_k)), then)
}

fn accept_k(lua: Lua, ctx: KContext) -> Result<Await, Error> {
    awaits::retry(lua, ctx, 1, Slot::Reader, take_held, kfn!(accept_k))
}

/// Pushes the connection the loop holds as a new socket object, if any,
/// and has the loop accept the next one.
fn take_held(lua: Lua, core: &Shared) -> Result<Option<c_int>, Error> {
    let (held, domain) = {
        let mut c = core.borrow_mut();
        (c.held.take(), c.domain)
    };
    let Some(fd) = held else { return Ok(None) };
    let then = Then::Recheck(awaits::READABLE);
    awaits::schedule(sys_loop(&lua), core, then);
    let kind = match domain {
        Domain::Local => PIPEACTIVE,
        Domain::Share => PIPESHARE,
        _ => TCPACTIVE,
    };
    Ok(Some(
        match class::push(lua, Socket::from(fd), kind, domain, true, true) {
            Ok(()) => 1,
            Err(e) => fail::push_io(lua, &e),
        },
    ))
}
