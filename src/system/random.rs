//! `system.random` (spec/stdio-info.md §4): fills a memory range with
//! bytes of the OS's cryptographically secure generator (`getrandom(2)`,
//! else `/dev/urandom`), on the worker pool or, with `~`, at once.
//!
//! The worker fills a buffer of its own; the continuation copies it into
//! the memory's range as it is then (the memory stays on the stack while
//! the coroutine waits, but it may be resized meanwhile).

use std::ffi::c_int;
use std::io::Read;

use crate::lua::awaiting::{self, Await, Resumed};
use crate::lua::{Error, KContext, LUA_TSTRING, Lua, Reg, fail};
use crate::memory::{self, range};
use crate::runtime::{Outcome, Wait};
use crate::system::sys_loop;
use crate::{afn, kfn};

pub const FUNCTIONS: &[Reg] = &[(c"random", afn!(random))];

/// Fills `buf` with secure random bytes.
fn fill(buf: &mut [u8]) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: writes at most `rest.len()` bytes into `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n >= 0 {
            done += n as usize;
            continue;
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ENOSYS) => return std::fs::File::open("/dev/urandom")?.read_exact(rest),
            _ => return Err(e),
        }
    }
    Ok(())
}

/// Parses a mode string that may only contain `~`; true when it does.
fn arg_blocking(lua: Lua, arg: c_int) -> Result<bool, Error> {
    let mode = lua.opt_bytes(arg)?.unwrap_or(b"");
    match mode.iter().find(|&&c| c != b'~') {
        Some(&c) => Err(Error::mode_char(arg, c)),
        None => Ok(!mode.is_empty()),
    }
}

/// buffer | false, msg, code = system.random(buffer [, i [, j [, mode]]])
fn random(lua: Lua) -> Result<Await, Error> {
    let blocking = arg_blocking(lua, 4)?;
    if !blocking {
        awaiting::require_coroutine(lua)?;
    }
    let len = memory::with_arg_buffer(lua, 1, |b| b.len())?;
    let span = range::arg_span(lua, len, 2, 3)?;
    if blocking {
        let filled = memory::with_arg_buffer(lua, 1, |b| fill(range::part_mut(b, span)))?;
        return Ok(Await::Done(match filled {
            Ok(()) => {
                lua.push_value(1);
                1
            }
            Err(e) => fail::push_io(lua, &e),
        }));
    }
    let size = span.len();
    let job = Box::new(move || {
        let mut data = Vec::new();
        let result = match data.try_reserve_exact(size) {
            Ok(()) => {
                data.resize(size, 0);
                fill(&mut data).map(|()| data)
            }
            Err(_) => Err(std::io::Error::from_raw_os_error(libc::ENOMEM)),
        };
        Box::new(result) as Outcome
    });
    lua.set_top(3);
    let id = awaiting::wait(
        lua,
        sys_loop(&lua),
        awaiting::Kind::Other,
        Wait::Work(job),
        deliver,
    )?;
    Ok(Await::Keep(id, 3, kfn!(random_k)))
}

fn deliver(co: Lua, outcome: Option<Outcome>) -> c_int {
    let result = outcome.and_then(|o| o.downcast::<std::io::Result<Vec<u8>>>().ok());
    match result.map(|r| *r) {
        Some(Ok(bytes)) => {
            co.push_bytes(&bytes);
            1
        }
        Some(Err(e)) => fail::push_io(co, &e),
        None => fail::push(co, fail::UNKNOWN),
    }
}

/// Continuation of `random`: the stack holds the buffer, `i`, `j`, then
/// the token and the delivered results.
fn random_k(lua: Lua, ctx: KContext) -> Result<Await, Error> {
    match awaiting::resumed(lua, 3, ctx) {
        Resumed::User(n) => Ok(Await::Done(n)),
        Resumed::Loop if lua.type_of(5) != LUA_TSTRING => Ok(Await::Done(lua.top() - 4)),
        Resumed::Loop => {
            let data = lua.to_bytes(5).unwrap_or_default();
            let len = memory::with_buffer(lua, 1, |b| b.len()).unwrap_or(0);
            let span = range::arg_span(lua, len, 2, 3)?;
            let n = data.len().min(span.len());
            memory::with_buffer(lua, 1, |buf| {
                buf[span.start..span.start + n].copy_from_slice(&data[..n]);
            });
            lua.push_value(1);
            Ok(Await::Done(1))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fills_with_varied_bytes() {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        super::fill(&mut a).unwrap();
        super::fill(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
