//! `system.openfile` and the `coutil:file` methods.
//!
//! A file holds its descriptor in an `Arc`: every job clones it, so the
//! descriptor stays open (and its number unused by others) until the file
//! is closed *and* no job uses it. `close` takes the file's `Arc` (the
//! object is closed at once) and closes the descriptor in a job; `__gc`
//! and `__close` just drop it.
//!
//! `read` reads on the worker into a scratch buffer (aligned, not zeroed:
//! the kernel fills it; reused from a small pool, see `memory::Scratch`),
//! which the delivery hands to the continuation in a private userdata (so
//! the GC frees it if the continuation never runs). The continuation puts
//! the bytes into the memory kept on the coroutine's stack, recomputing the
//! range in case the memory was resized meanwhile: one copy, or none when
//! the read fills the whole memory (`memory::put` then exchanges the
//! allocations). A cancelled read leaves the memory unchanged. `write`
//! copies the data range into a scratch buffer before submitting (once, no
//! zero fill): the memory may change, be resized or collected while the job
//! runs, so the job cannot read it in place.
//!
//! Offsets use `pread`/`pwrite`, which keep the file position; a negative
//! offset means the file position, as in libuv. `file:write(file, i, j)`
//! copies with `copy_file_range` where the kernel can, else with a
//! read/write loop.

use std::ffi::c_int;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use super::path::{arg_id, arg_times, start};
use super::sys::{self, At};
use super::{
    Count, Reply, arg_mode, arg_open, arg_path, arg_prefixed, done, outcome, perform, perm, submit,
};
use crate::lua::awaiting::{self, Await, Resumed};
use crate::lua::class::{self, Class, Object};
use crate::lua::tally::Tally;
use crate::lua::{Error, KContext, Lua, Reg, Ret, fail};
use crate::memory::{self, Scratch, range};
use crate::runtime::Outcome;
use crate::{afn, cfn};

const METHODS: &[Reg] = &[
    (c"close", afn!(close)),
    (c"read", afn!(read)),
    (c"write", afn!(write)),
    (c"resize", afn!(resize)),
    (c"flush", afn!(flush)),
    (c"touch", afn!(touch)),
    (c"own", afn!(own)),
    (c"grant", afn!(grant)),
    (c"info", afn!(super::info::info)),
];

pub struct File {
    pub(super) fd: Arc<OwnedFd>,
    /// Counts the file as open (`await.stats`).
    _tally: Tally,
}

impl Object for File {
    const CLASS: &'static Class = &Class {
        name: c"coutil:file",
        methods: METHODS,
        meta: &[(c"__close", cfn!(close_now))],
    };
}

/// Pushes a new file object owning `fd`.
pub fn push(lua: Lua, fd: OwnedFd) {
    class::push(
        lua,
        File {
            fd: Arc::new(fd),
            _tally: Tally::new(lua, File::CLASS.name),
        },
    );
}

struct Opened(OwnedFd);

impl Reply for Opened {
    fn push(self: Box<Self>, lua: Lua) -> Result<c_int, Error> {
        push(lua, self.0);
        Ok(1)
    }
}

/// file | false, msg, code = system.openfile(path [, mode [, perm]])
pub fn openfile(lua: Lua) -> Result<Await, Error> {
    let (blocking, mode) = arg_mode(&lua, 2, b"rwaftnNx")?;
    start(lua, blocking)?;
    let path = arg_path(lua, 1)?;
    let mode = if lua.is_none_or_nil(2) { b"r" } else { mode };
    let has = |c| mode.contains(&c);
    let writes = has(b'w') || has(b'a') || has(b'f') || has(b't');
    let mut flags = match (has(b'r'), writes) {
        (true, true) => libc::O_RDWR,
        (false, true) => libc::O_WRONLY,
        _ => libc::O_RDONLY,
    };
    // Every descriptor of the library is close-on-exec, so `x` (kept for
    // compatibility) changes nothing.
    flags |= libc::O_CLOEXEC;
    for (c, flag) in [
        (b'a', libc::O_APPEND),
        (b'f', libc::O_SYNC),
        (b't', libc::O_TRUNC),
        (b'n', libc::O_CREAT),
        (b'N', libc::O_CREAT | libc::O_EXCL),
    ] {
        if has(c) {
            flags |= flag;
        }
    }
    let perm = match has(b'n') || has(b'N') {
        true => perm::arg_perm(lua, 3)?,
        false => 0,
    };
    perform(lua, blocking, move || {
        let fd = sys::open(&sys::cpath(&path)?, flags, perm)?;
        Ok(Box::new(Opened(fd)) as Box<dyn Reply>)
    })
}

/// true | false, msg, code = file:close([mode])
fn close(lua: Lua) -> Result<Await, Error> {
    arg_open(lua, 1)?;
    let (blocking, _) = arg_mode(&lua, 2, b"")?;
    start(lua, blocking)?;
    let Some(File { fd, .. }) = class::with_checked::<File, _>(lua, 1, Option::take)? else {
        return Err(Error::msg("closed file"));
    };
    perform(lua, blocking, move || {
        // Another holder is a job still using the descriptor: the last
        // one closes it.
        done(Arc::try_unwrap(fd).map_or(Ok(()), sys::close))
    })
}

/// `__close`: closes the file if it is still open.
fn close_now(lua: Lua) -> Ret {
    let taken = class::with::<File, _>(lua, 1, Option::take);
    drop(taken);
    Ok(0)
}

/// An optional offset; negative ones mean the file position.
fn arg_offset(lua: Lua, arg: c_int) -> Result<Option<u64>, Error> {
    let offset = lua.opt_integer(arg, -1)?;
    Ok(u64::try_from(offset).ok())
}

fn no_memory() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOMEM)
}

fn push_count(lua: Lua, r: io::Result<usize>) -> c_int {
    match r {
        Ok(n) => {
            lua.push_integer(n as i64);
            1
        }
        Err(e) => fail::push_io(lua, &e),
    }
}

/// Bytes read on a worker, delivered to [`read_k`] in a userdata of this
/// private class, which the continuation empties.
struct Received(Scratch);

impl Object for Received {
    const CLASS: &'static Class = &Class {
        name: c"coutil:received",
        methods: &[],
        meta: &[],
    };
}

/// Delivers a read: the bytes in a `Received` userdata, or the failure.
fn deliver_read(co: Lua, o: Option<Outcome>) -> c_int {
    match outcome::<Scratch>(o) {
        Ok(data) => {
            class::push(co, Received(data));
            1
        }
        Err(e) => fail::push_io(co, &e),
    }
}

/// count | false, msg, code = file:read(buffer [, i [, j [, offset [, mode]]]])
fn read(lua: Lua) -> Result<Await, Error> {
    let fd = arg_open(lua, 1)?;
    let (blocking, _) = arg_mode(&lua, 6, b"")?;
    start(lua, blocking)?;
    let len = memory::with_arg_buffer(lua, 2, |b| b.len())?;
    let span = range::arg_span(lua, len, 3, 4)?;
    let offset = arg_offset(lua, 5)?;
    if blocking {
        let read = memory::with_arg_buffer(lua, 2, |b| {
            sys::read(fd.as_fd(), range::part_mut(b, span), offset)
        })?;
        return Ok(Await::Done(push_count(lua, read)));
    }
    let size = span.len();
    let id = submit(
        lua,
        move || {
            let mut data = Scratch::with_capacity(size).map_err(|_| no_memory())?;
            let n = sys::read_uninit(fd.as_fd(), &mut data.spare_capacity_mut()[..size], offset)?;
            // SAFETY: the kernel wrote the first `n` bytes (n <= size).
            unsafe { data.set_len(n) };
            Ok(data)
        },
        deliver_read,
    )?;
    Ok(Await::Keep(id, 4, crate::kfn!(read_k)))
}

/// Continuation of `read`: the stack holds the file, the buffer, `i`, `j`,
/// then the token and the delivered results (a `Received` userdata, or
/// the failure).
fn read_k(lua: Lua, ctx: KContext) -> Result<Await, Error> {
    match awaiting::resumed(lua, 4, ctx) {
        Resumed::User(n) => Ok(Await::Done(n)),
        Resumed::Loop => {
            let taken = class::with::<Received, _>(lua, 6, Option::take);
            let Some(Received(mut data)) = taken.flatten() else {
                return Ok(Await::Done(lua.top() - 5));
            };
            let len = memory::with_buffer(lua, 2, |b| b.len()).unwrap_or(0);
            let span = range::arg_span(lua, len, 3, 4)?;
            let n = data.len().min(span.len());
            data.truncate(n);
            // A read filling the whole memory swaps buffers: no copy.
            memory::put(lua, 2, span.start, &mut data);
            lua.push_integer(n as i64);
            Ok(Await::Done(1))
        }
    }
}

/// count | false, msg, code = file:write(data [, i [, j [, offset [, mode]]]])
fn write(lua: Lua) -> Result<Await, Error> {
    let fd = arg_open(lua, 1)?;
    let (blocking, _) = arg_mode(&lua, 6, b"")?;
    start(lua, blocking)?;
    if class::is::<File>(lua, 2) {
        let src = arg_open(lua, 2)?;
        let (i, j) = (lua.arg_integer(3)?, lua.arg_integer(4)?);
        if i < 1 || j < i {
            return Err(Error::arg(3, "invalid range"));
        }
        let (from, len) = ((i - 1) as u64, (j - i + 1) as u64);
        return perform(lua, blocking, move || {
            let n = sys::copy(src.as_fd(), Some(from), fd.as_fd(), len)?;
            Ok(Box::new(Count(n)) as Box<dyn Reply>)
        });
    }
    let len = memory::with_arg_bytes(lua, 2, <[u8]>::len)?;
    let span = range::arg_span(lua, len, 3, 4)?;
    let offset = arg_offset(lua, 5)?;
    if blocking {
        let written = memory::with_arg_bytes(lua, 2, |b| {
            sys::write(fd.as_fd(), range::part(b, span), offset)
        })?;
        return Ok(Await::Done(push_count(lua, written)));
    }
    // No zero fill: the buffer (usually a pooled one) is written once, by
    // the copy.
    let data = memory::with_arg_bytes(lua, 2, |b| Scratch::copy_from(range::part(b, span)))?
        .map_err(|_| Error::msg("not enough memory"))?;
    perform(lua, false, move || {
        let n = sys::write(fd.as_fd(), &data, offset)?;
        Ok(Box::new(Count(n as u64)) as Box<dyn Reply>)
    })
}

/// true | false, msg, code = file:resize(size [, mode])
fn resize(lua: Lua) -> Result<Await, Error> {
    let fd = arg_open(lua, 1)?;
    let (blocking, _) = arg_mode(&lua, 3, b"")?;
    start(lua, blocking)?;
    let size = lua.arg_integer(2)?;
    perform(lua, blocking, move || {
        done(sys::ftruncate(fd.as_fd(), size))
    })
}

/// true | false, msg, code = file:flush([mode])
fn flush(lua: Lua) -> Result<Await, Error> {
    let fd = arg_open(lua, 1)?;
    let mode = lua.opt_bytes(2)?.unwrap_or_default();
    // NOTE: reported as argument #3, as the spec says.
    if let Some(&c) = mode.iter().find(|c| !b"~d".contains(c)) {
        return Err(Error::mode_char(3, c));
    }
    let blocking = mode.contains(&b'~');
    start(lua, blocking)?;
    let data_only = mode.contains(&b'd');
    perform(lua, blocking, move || {
        done(sys::fsync(fd.as_fd(), data_only))
    })
}

/// true | false, msg, code = file:touch([mode, times...])
fn touch(lua: Lua) -> Result<Await, Error> {
    let fd = arg_open(lua, 1)?;
    let (prefix, body) = arg_prefixed(&lua, 2, b"~", b"amb")?;
    let blocking = !prefix.is_empty();
    start(lua, blocking)?;
    let times = arg_times(lua, 2, body)?;
    perform(lua, blocking, move || {
        done(sys::utimens(At::Fd(fd.as_fd()), &times))
    })
}

/// true | false, msg, code = file:own(uid, gid [, mode])
fn own(lua: Lua) -> Result<Await, Error> {
    let fd = arg_open(lua, 1)?;
    let (blocking, _) = arg_mode(&lua, 4, b"")?;
    start(lua, blocking)?;
    let (uid, gid) = (arg_id(lua, 2)?, arg_id(lua, 3)?);
    perform(lua, blocking, move || {
        done(sys::chown(At::Fd(fd.as_fd()), uid, gid))
    })
}

/// true | false, msg, code = file:grant(perm [, mode])
fn grant(lua: Lua) -> Result<Await, Error> {
    // The file is checked last (spec R3), unlike the other methods.
    let (perm, blocking) = perm::arg_grant(lua, 2)?;
    start(lua, blocking)?;
    let fd = arg_open(lua, 1)?;
    perform(lua, blocking, move || {
        done(sys::chmod(At::Fd(fd.as_fd()), perm))
    })
}
