//! `system.execute` (spec/process.md §3): starts a program and waits for
//! its end.
//!
//! The arguments (a path and its arguments, or a table of fields) are
//! checked and turned into a [`Plan`](spawn::Plan) and the specifications
//! of the child's streams first (`fields.rs`), so misuse raises before
//! anything is created; from then on OS failures are returned. The
//! streams' new descriptors are made (`stdio.rs`), the child is started
//! (`spawn.rs`), and the pipes' parent ends are set in the table.
//!
//! Waiting: the child is watched by the loop (see [`children`]), which
//! completes the waiting coroutine's `External` operation with the wait
//! status; an explicit resume only detaches the coroutine.

mod fields;
mod spawn;
mod stdio;

use std::ffi::c_int;
use std::os::fd::OwnedFd;

use super::children::{self, Ended};
use super::net::share;
use super::signal;
use crate::lua::awaiting::{self, Await, Resumed, state_loop};
use crate::lua::{Error, KContext, LUA_TTABLE, Lua, Reg, fail};
use crate::runtime::{OpId, Outcome, Wait};
use crate::{afn, kfn};
use fields::{STREAMS, Spec, parse_args, parse_table};
use spawn::spawn;
use stdio::{dup_high, null_device, socket_pair, unshare_nonblocking};

pub const FUNCTIONS: &[Reg] = &[(c"execute", afn!(execute))];

/// What/status | false, msg, code = system.execute(cmd, ...)
fn execute(lua: Lua) -> Result<Await, Error> {
    awaiting::require_coroutine(lua)?;
    let table = lua.type_of(1) == LUA_TTABLE;
    let (plan, specs) = if table {
        parse_table(lua)?
    } else {
        parse_args(lua)?
    };
    // From here on, failures are returned, not raised.
    let mut stdio: [Option<OwnedFd>; 3] = [None, None, None];
    let mut parents: [Option<(OwnedFd, bool)>; 3] = [None, None, None];
    for (i, spec) in specs.iter().enumerate() {
        let made = match spec {
            Spec::Inherit => continue,
            Spec::Discard => null_device(),
            Spec::Fd(fd) => dup_high(*fd),
            Spec::Pipe { share } => socket_pair().map(|(parent, child)| {
                parents[i] = Some((parent, *share));
                child
            }),
        };
        match made {
            Ok(fd) => stdio[i] = Some(fd),
            Err(e) => return Ok(Await::Done(fail::push(lua, e))),
        }
    }
    let restore = unshare_nonblocking(&mut stdio);
    let started = spawn(&plan, &stdio);
    for (fd, flags) in restore {
        // SAFETY: `fd` is ours or in `stdio`, still open; sets back the
        // status flags that the child cleared.
        unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
    }
    let pid = match started {
        Ok(pid) => pid,
        Err(e) => return Ok(Await::Done(fail::push(lua, e))),
    };
    drop(stdio);
    drop(plan);
    let child = match children::adopt(lua, pid) {
        Ok(child) => child,
        Err(e) => return Ok(Await::Done(fail::push_io(lua, &e))),
    };
    if table {
        lua.check_stack(4)?;
        for (i, parent) in parents.into_iter().enumerate() {
            if let Some((fd, share)) = parent {
                if let Err(e) = share::push_fd_as(lua, fd, share) {
                    drop(child);
                    return Ok(Await::Done(fail::push_io(lua, &e)));
                }
                rawset::set(lua, STREAMS[i]); // no metamethod
            }
        }
        lua.push_integer(pid as i64);
        rawset::set(lua, "pid");
    }
    let id = awaiting::wait(
        lua,
        state_loop(&lua),
        awaiting::Kind::Process,
        Wait::External,
        deliver,
    )?;
    child.borrow_mut().waiter = Some(id);
    Ok(Await::Keep(id, 0, kfn!(execute_k)))
}

mod rawset {
    use super::*;

    /// Sets `t[name]` of the table at 1 to the value on top, raw (two
    /// extra slots are checked by the caller).
    pub fn set(lua: Lua, name: &str) {
        lua.push_bytes(name.as_bytes());
        lua.insert(-2);
        lua.raw_set(1);
    }
}

/// Continuation: the child's end, or the values of an explicit resume
/// (the child keeps running and is still reaped by the loop).
fn execute_k(lua: Lua, ctx: KContext) -> Result<Await, Error> {
    let id = OpId::from_bits(ctx as u64);
    let resumed = awaiting::resumed(lua, 0, ctx);
    for child in children::children(lua).borrow().iter() {
        let mut c = child.borrow_mut();
        if c.waiter == Some(id) {
            c.waiter = None;
        }
    }
    children::sweep(lua);
    match resumed {
        Resumed::User(n) => Ok(Await::Done(n)),
        Resumed::Loop => Ok(Await::Done(lua.top() - 1)),
    }
}

fn deliver(co: Lua, outcome: Option<Outcome>) -> c_int {
    let ended = match outcome.map(|o| o.downcast::<Ended>()) {
        Some(Ok(ended)) => *ended,
        _ => return fail::push(co, libc::ECANCELED),
    };
    match ended {
        Ok(status) if libc::WIFEXITED(status) => {
            co.push_bytes(b"exit");
            co.push_integer(libc::WEXITSTATUS(status) as i64);
            2
        }
        Ok(status) if libc::WIFSIGNALED(status) => {
            let signo = libc::WTERMSIG(status);
            co.push_bytes(signal::name_of(signo).unwrap_or("signal").as_bytes());
            co.push_integer(signo as i64);
            2
        }
        Ok(_) => fail::push(co, fail::UNKNOWN),
        Err(e) => fail::push(co, e),
    }
}
