//! `system.linkfile`, `copyfile`, `movefile`, `removefile`, `makedir`,
//! `touchfile`, `ownfile`, `grantfile`: operations on paths.
//!
//! Each parses its mode first (so `~` is known), then requires a coroutine
//! unless blocking, then reads its other arguments, copying paths for the
//! job. `copyfile` never truncates the source when both paths name the
//! same file, and removes a destination it created if the copy fails.

use std::ffi::c_int;
use std::io;
use std::os::fd::AsFd;

use super::sys::{self, At};
use super::{arg_mode, arg_path, arg_prefixed, done, perform, perm};
use crate::lua::awaiting::{self, Await};
use crate::lua::{Error, Lua};

/// Raises `unable to yield` when a non-blocking call has no coroutine.
pub fn start(lua: Lua, blocking: bool) -> Result<(), Error> {
    if blocking {
        Ok(())
    } else {
        awaiting::require_coroutine(lua)
    }
}

/// true | false, msg, code = system.linkfile(path, destiny [, mode])
pub fn linkfile(lua: Lua) -> Result<Await, Error> {
    // `d` and `j` (directory links and junctions on Windows) imply `s`.
    let (blocking, mode) = arg_mode(&lua, 3, b"sdj")?;
    start(lua, blocking)?;
    let (path, destiny) = (arg_path(lua, 1)?, arg_path(lua, 2)?);
    let symbolic = mode.iter().any(|c| b"sdj".contains(c));
    perform(lua, blocking, move || {
        let (path, destiny) = (sys::cpath(&path)?, sys::cpath(&destiny)?);
        done(match symbolic {
            true => sys::symlink(&path, &destiny),
            false => sys::link(&path, &destiny),
        })
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Clone {
    No,
    Try,
    Force,
}

/// true | false, msg, code = system.copyfile(path, destiny [, mode])
pub fn copyfile(lua: Lua) -> Result<Await, Error> {
    let (blocking, mode) = arg_mode(&lua, 3, b"ncC")?;
    start(lua, blocking)?;
    let (path, destiny) = (arg_path(lua, 1)?, arg_path(lua, 2)?);
    let exclusive = mode.contains(&b'n');
    let clone = match () {
        _ if mode.contains(&b'C') => Clone::Force,
        _ if mode.contains(&b'c') => Clone::Try,
        _ => Clone::No,
    };
    perform(lua, blocking, move || {
        done(copy(&path, &destiny, exclusive, clone))
    })
}

fn copy(path: &[u8], destiny: &[u8], exclusive: bool, clone: Clone) -> io::Result<()> {
    let (path, destiny) = (sys::cpath(path)?, sys::cpath(destiny)?);
    let input = sys::open(&path, libc::O_RDONLY | libc::O_CLOEXEC, 0)?;
    let st = sys::stat_not_dir(input.as_fd())?;
    let perm = st.mode & 0o7777;
    let flags = libc::O_WRONLY | libc::O_CLOEXEC;
    let (output, created) = match sys::open(&destiny, flags | libc::O_CREAT | libc::O_EXCL, perm) {
        Ok(fd) => (fd, true),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) && !exclusive => {
            (sys::open(&destiny, flags, 0)?, false)
        }
        Err(e) => return Err(e),
    };
    if !created {
        let out = sys::stat(At::Fd(output.as_fd()))?;
        if out.dev == st.dev && out.ino == st.ino {
            return Ok(());
        }
    }
    let result = (|| {
        let (input, output) = (input.as_fd(), output.as_fd());
        // The copy gets the source's permissions, whatever the umask.
        sys::chmod(At::Fd(output), perm)?;
        if clone != Clone::No {
            match sys::clone(input, output) {
                Ok(()) => return sys::ftruncate(output, st.size as i64),
                Err(e) if clone == Clone::Force => return Err(e),
                Err(_) => {}
            }
        }
        sys::ftruncate(output, 0)?;
        sys::copy(input, None, output, u64::MAX).map(drop)
    })();
    if result.is_err() && created {
        let _ = sys::unlink(&destiny);
    }
    result
}

/// true | false, msg, code = system.movefile(path, destiny [, mode])
pub fn movefile(lua: Lua) -> Result<Await, Error> {
    let (blocking, _) = arg_mode(&lua, 3, b"")?;
    start(lua, blocking)?;
    let (path, destiny) = (arg_path(lua, 1)?, arg_path(lua, 2)?);
    perform(lua, blocking, move || {
        done(sys::rename(&sys::cpath(&path)?, &sys::cpath(&destiny)?))
    })
}

/// true | false, msg, code = system.removefile(path [, mode])
pub fn removefile(lua: Lua) -> Result<Await, Error> {
    let (blocking, mode) = arg_mode(&lua, 2, b"d")?;
    start(lua, blocking)?;
    let path = arg_path(lua, 1)?;
    let dir = mode.contains(&b'd');
    perform(lua, blocking, move || {
        let path = sys::cpath(&path)?;
        done(if dir {
            sys::rmdir(&path)
        } else {
            sys::unlink(&path)
        })
    })
}

/// true | false, msg, code = system.makedir(path, perm [, mode])
pub fn makedir(lua: Lua) -> Result<Await, Error> {
    let (blocking, _) = arg_mode(&lua, 3, b"")?;
    start(lua, blocking)?;
    let path = arg_path(lua, 1)?;
    let perm = perm::arg_perm(lua, 2)?;
    perform(lua, blocking, move || {
        done(sys::mkdir(&sys::cpath(&path)?, perm))
    })
}

/// The times of `touch` given by the characters `body` of its mode, from
/// the arguments after the mode at `arg`: access and modification, each
/// `UTIME_NOW` when not given.
pub fn arg_times(lua: Lua, arg: c_int, body: &[u8]) -> Result<[libc::timespec; 2], Error> {
    let now = libc::timespec {
        tv_sec: 0,
        tv_nsec: libc::UTIME_NOW,
    };
    let mut times = [now, now];
    for (k, &c) in body.iter().enumerate() {
        let a = arg + 1 + k as c_int;
        let t = lua.arg_number(a)?;
        if !(t >= 0.0 && t.is_finite()) {
            return Err(Error::arg(a, "invalid time"));
        }
        let ts = libc::timespec {
            tv_sec: t.floor() as i64,
            tv_nsec: ((t - t.floor()) * 1e9) as i64,
        };
        match c {
            b'a' => times[0] = ts,
            b'm' => times[1] = ts,
            _ => times = [ts, ts],
        }
    }
    Ok(times)
}

/// true | false, msg, code = system.touchfile(path [, mode, times...])
pub fn touchfile(lua: Lua) -> Result<Await, Error> {
    let (prefix, body) = arg_prefixed(&lua, 2, b"~l", b"amb")?;
    let blocking = prefix.contains(&b'~');
    start(lua, blocking)?;
    let path = arg_path(lua, 1)?;
    let times = arg_times(lua, 2, body)?;
    let nofollow = prefix.contains(&b'l');
    perform(lua, blocking, move || {
        done(sys::utimens(
            At::Path(&sys::cpath(&path)?, nofollow),
            &times,
        ))
    })
}

/// An owner argument: an id from 0 to 2^32 - 1 (the OS's range, whose
/// last value it takes as "unchanged" too), or `-1` to keep the current
/// value; `out of range` otherwise instead of the OS seeing a truncated id.
pub fn arg_id(lua: Lua, arg: c_int) -> Result<u32, Error> {
    match lua.arg_integer(arg)? {
        -1 => Ok(u32::MAX), // (uid_t)-1: unchanged
        id => u32::try_from(id).map_err(|_| Error::arg(arg, "out of range")),
    }
}

/// true | false, msg, code = system.ownfile(path, uid, gid [, mode])
pub fn ownfile(lua: Lua) -> Result<Await, Error> {
    let (prefix, _) = arg_prefixed(&lua, 4, b"~l", b"")?;
    let blocking = prefix.contains(&b'~');
    start(lua, blocking)?;
    let path = arg_path(lua, 1)?;
    let (uid, gid) = (arg_id(lua, 2)?, arg_id(lua, 3)?);
    let nofollow = prefix.contains(&b'l');
    perform(lua, blocking, move || {
        done(sys::chown(
            At::Path(&sys::cpath(&path)?, nofollow),
            uid,
            gid,
        ))
    })
}

/// true | false, msg, code = system.grantfile(path, perm [, mode])
pub fn grantfile(lua: Lua) -> Result<Await, Error> {
    let (perm, blocking) = perm::arg_grant(lua, 2)?;
    start(lua, blocking)?;
    let path = arg_path(lua, 1)?;
    perform(lua, blocking, move || {
        done(sys::chmod(At::Path(&sys::cpath(&path)?, false), perm))
    })
}
