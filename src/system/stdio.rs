//! `system.stdin`, `system.stdout`, `system.stderr` (spec/stdio-info.md
//! §1): objects for the process's standard streams.
//!
//! Each is made on first access (an `__index` metamethod of the module
//! table), not when the module is loaded, so a script that never uses them
//! leaves descriptors 0–2 untouched. The object class follows what the
//! descriptor is:
//! * a terminal: `coutil:terminal`;
//! * a TCP or UDP socket: `coutil:tcpactive` / `coutil:udp`;
//! * a Unix socket: `coutil:pipeshare` (it can carry sockets);
//! * a pipe: `coutil:pipeactive`;
//! * a regular file: `coutil:file`;
//! * anything else (e.g. `/dev/null`): `nil`, with the warning
//!   `[coutil] <name>: unsupported file type`.
//!
//! The objects own close-on-exec descriptors of their own: closing them
//! leaves descriptors 0–2 open. Non-blocking I/O needs `O_NONBLOCK`, a flag
//! of the *open file description*, which a `dup` shares with descriptor N
//! (and with C stdio, `io.read`, other processes on the same pipe). So
//! terminals and pipes are reopened through `/proc/self/fd/N`, which gives
//! a new description of the same device or pipe, and the flag stays
//! private. Only when that fails (no `/proc`, or a pipe without a reader),
//! and always for sockets (which cannot be reopened), the object uses a
//! duplicate and descriptor N becomes non-blocking too. Regular files are
//! duplicated (they share the file position, as intended) and never made
//! non-blocking: file I/O runs on the worker pool.

use std::ffi::{CString, c_int};
use std::os::fd::{FromRawFd, OwnedFd};

use super::fs;
use super::net::terminal;
use crate::cfn;
use crate::lua::{LUA_TBOOLEAN, LUA_TNIL, LUA_TSTRING, Lua, Ret};

use super::net::share;
use crate::system::errno::errno;

const NAMES: [&str; 3] = ["stdin", "stdout", "stderr"];

/// Sets the metatable of the module table (on top of the stack) whose
/// `__index` makes the three fields on first access.
pub fn set_lazy(lua: Lua) {
    lua.new_table(0, 1);
    lua.new_table(0, 3); // made: name → object or false
    lua.push_cclosure(cfn!(index), 1);
    lua.set_field(-2, c"__index");
    lua.set_metatable(-2);
}

/// value = system[key] for a key the table does not have.
fn index(lua: Lua) -> Ret {
    let Some(k) = lua
        .to_bytes(2)
        .filter(|_| lua.type_of(2) == LUA_TSTRING)
        .and_then(|key| NAMES.iter().position(|n| n.as_bytes() == key))
    else {
        lua.push_nil();
        return Ok(1);
    };
    let made = Lua::upvalue(1);
    lua.check_stack(6)?;
    lua.set_top(2);
    let cname = [c"stdin", c"stdout", c"stderr"][k];
    lua.get_field(made, cname); // the cache: a plain table of ours
    match lua.type_of(-1) {
        LUA_TBOOLEAN => {
            lua.push_nil();
            return Ok(1);
        }
        LUA_TNIL => lua.set_top(2),
        _ => return Ok(1),
    }
    if push_stream(lua, k as c_int) {
        // Cached and stored in the module table: later reads are plain.
        lua.push_value(-1);
        // cache[name] and t[name] (the module table is 1)
        lua.set_field(made, cname);
        lua.push_value(-1);
        lua.set_field(1, cname);
    } else {
        lua.push_bool(false);
        lua.set_field(made, cname);
        lua.push_nil();
    }
    Ok(1)
}

/// A new description of what `fd` designates, through `/proc/self/fd`,
/// with the access mode of `fd` and `O_NONBLOCK`.
fn reopen(fd: c_int) -> Option<OwnedFd> {
    // SAFETY: fcntl/open with our own arguments.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return None;
        }
        let path = CString::new(format!("/proc/self/fd/{fd}")).ok()?;
        let new = libc::open(
            path.as_ptr(),
            (flags & libc::O_ACCMODE) | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        (new >= 0).then(|| OwnedFd::from_raw_fd(new))
    }
}

fn duplicate(fd: c_int) -> Result<OwnedFd, c_int> {
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor we own.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        Err(errno())
    } else {
        // SAFETY: just created, ours.
        Ok(unsafe { OwnedFd::from_raw_fd(new) })
    }
}

/// Pushes the object of descriptor `fd`; on failure warns and returns
/// false (nothing pushed).
fn push_stream(lua: Lua, fd: c_int) -> bool {
    let name = NAMES[fd as usize];
    let warn = |why: &str| {
        lua.warn(format!("[coutil] {name}: {why}").as_bytes());
        false
    };
    // SAFETY: fstat fills a local structure.
    let mode = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return warn(crate::lua::fail::text(errno()));
        }
        st.st_mode & libc::S_IFMT
    };
    // SAFETY: isatty only inspects the descriptor.
    let tty = unsafe { libc::isatty(fd) } == 1;
    let owned = |reopened: bool| match reopened.then(|| reopen(fd)).flatten() {
        Some(f) => Ok(f),
        None => duplicate(fd),
    };
    let result =
        if tty {
            owned(true).map(|f| terminal::push(lua, f).map_err(|e| e.raw_os_error()))
        } else {
            match mode {
                libc::S_IFSOCK => owned(false)
                    .map(|f| share::push_fd_as(lua, f, true).map_err(|e| e.raw_os_error())),
                libc::S_IFIFO => owned(true)
                    .map(|f| share::push_fd_as(lua, f, false).map_err(|e| e.raw_os_error())),
                libc::S_IFREG => owned(false).map(|f| {
                    fs::push_file(lua, f);
                    Ok(())
                }),
                _ => return warn("unsupported file type"),
            }
        };
    match result {
        Ok(Ok(())) => true,
        Ok(Err(e)) => warn(crate::lua::fail::text(
            e.unwrap_or(crate::lua::fail::UNKNOWN),
        )),
        Err(e) => warn(crate::lua::fail::text(e)),
    }
}
