//! The file system (spec files.md): path functions, files, directory
//! listings and file information.
//!
//! Every operation is a plain Rust function over owned data (paths as
//! byte vectors, descriptors in an `Arc`) that returns an
//! `io::Result<Box<dyn Reply>>`. An await call runs it as a job on the
//! worker pool and the loop pushes its reply on the coroutine's stack
//! ([`deliver`]); with `~` it runs inline and the reply is pushed at once.
//! A job never touches Lua memory: data to write is copied into the job,
//! bytes read come back in an aligned buffer that `file:read`'s
//! continuation copies into the memory (kept on the coroutine's stack
//! meanwhile).
//!
//! Cancelling an await (explicit resume) does not stop its job: it
//! finishes in the background and the loop drops its reply, which closes
//! any descriptor it opened. Jobs hold their own `Arc` of a file's
//! descriptor, so closing or collecting the file meanwhile never lets a
//! job use a reused descriptor number: the descriptor is closed when its
//! last holder lets it go.
//!
//! Functions documented as raising (`listdir`, `fileinfo`, `file:info`)
//! deliver failures as a private marker and a message, which their
//! continuation [`raising_k`] raises.

mod file;
mod info;
mod listdir;
mod path;
mod perm;
mod sys;
mod temp;

use std::borrow::Cow;
use std::ffi::c_int;
use std::io;

use crate::lua::awaiting::{self, Await, Resumed, state_loop};
use crate::lua::{Error, KContext, LUA_TLIGHTUSERDATA, Lua, Reg, fail};
use crate::runtime::{Outcome, Wait};

pub use file::push as push_file;
pub use perm::set_filebits;

/// The `coutil.system` functions of the file system.
pub const FUNCTIONS: &[Reg] = &[
    (c"linkfile", crate::afn!(path::linkfile)),
    (c"copyfile", crate::afn!(path::copyfile)),
    (c"movefile", crate::afn!(path::movefile)),
    (c"removefile", crate::afn!(path::removefile)),
    (c"makedir", crate::afn!(path::makedir)),
    (c"touchfile", crate::afn!(path::touchfile)),
    (c"ownfile", crate::afn!(path::ownfile)),
    (c"grantfile", crate::afn!(path::grantfile)),
    (c"maketemp", crate::afn!(temp::maketemp)),
    (c"listdir", crate::afn!(listdir::listdir)),
    (c"fileinfo", crate::afn!(info::fileinfo)),
    (c"openfile", crate::afn!(file::openfile)),
];

/// The successful result of an operation, pushed by the thread that
/// receives it.
trait Reply: Send + 'static {
    /// Pushes the results; returns how many. More than 16 values need a
    /// `check_stack` first (its error is reported instead).
    fn push(self: Box<Self>, lua: Lua) -> Result<c_int, Error>;
}

type OpResult = io::Result<Box<dyn Reply>>;

/// `true`, the result of most operations.
struct True;

impl Reply for True {
    fn push(self: Box<Self>, lua: Lua) -> Result<c_int, Error> {
        lua.push_bool(true);
        Ok(1)
    }
}

/// A count of bytes.
struct Count(u64);

impl Reply for Count {
    fn push(self: Box<Self>, lua: Lua) -> Result<c_int, Error> {
        lua.push_integer(self.0 as i64);
        Ok(1)
    }
}

/// `Ok(True)` for operations returning `true`.
fn done(r: io::Result<()>) -> OpResult {
    r.map(|()| Box::new(True) as Box<dyn Reply>)
}

/// Runs `job` inline when `blocking`, else on the worker pool for the
/// running coroutine (`unable to yield` outside one). Failures become the
/// `false, msg, code` triple.
fn perform(
    lua: Lua,
    blocking: bool,
    job: impl FnOnce() -> OpResult + Send + 'static,
) -> Result<Await, Error> {
    if blocking {
        return Ok(Await::Done(push_result(lua, job())?));
    }
    Ok(Await::Yield(submit(lua, job, deliver)?))
}

/// Like [`perform`] for the functions that raise their failures.
fn perform_raising(
    lua: Lua,
    blocking: bool,
    job: impl FnOnce() -> OpResult + Send + 'static,
) -> Result<Await, Error> {
    if blocking {
        return match job() {
            Ok(reply) => Ok(Await::Done(reply.push(lua)?)),
            Err(e) => Err(Error::msg(fail::text(fail::code_of(&e)))),
        };
    }
    let id = submit(lua, job, deliver_raising)?;
    Ok(Await::Keep(id, 0, crate::kfn!(raising_k)))
}

/// Runs `job` on the worker pool for the running coroutine; `deliver`
/// gets its `io::Result<T>` back through [`outcome`].
fn submit<T: Send + 'static>(
    lua: Lua,
    job: impl FnOnce() -> io::Result<T> + Send + 'static,
    deliver: awaiting::Deliver,
) -> Result<crate::runtime::OpId, Error> {
    awaiting::require_coroutine(lua)?;
    let work = Wait::Work(Box::new(move || Box::new(job()) as Outcome));
    awaiting::wait(lua, state_loop(&lua), awaiting::Kind::File, work, deliver)
}

/// The descriptor of the open file (a `coutil:file`) at `arg`, or the
/// error `closed file`.
fn arg_open(lua: Lua, arg: c_int) -> Result<std::sync::Arc<std::os::fd::OwnedFd>, Error> {
    let fd = crate::lua::class::with_checked::<file::File, _>(lua, arg, |slot| {
        Some(slot.as_ref()?.fd.clone())
    })?;
    fd.ok_or_else(|| Error::msg("closed file"))
}

fn push_result(lua: Lua, result: OpResult) -> Result<c_int, Error> {
    match result {
        Ok(reply) => reply.push(lua),
        Err(e) => Ok(fail::push_io(lua, &e)),
    }
}

/// The result of a job submitted by [`submit`] returning `io::Result<T>`.
fn outcome<T: 'static>(outcome: Option<Outcome>) -> io::Result<T> {
    match outcome.map(|o| o.downcast::<io::Result<T>>()) {
        Some(Ok(result)) => *result,
        // A job that panicked reports an `io::Error`.
        Some(Err(other)) => Err(match other.downcast::<io::Error>() {
            Ok(e) => *e,
            Err(_) => io::Error::from_raw_os_error(libc::ECANCELED),
        }),
        None => Err(io::Error::from_raw_os_error(libc::ECANCELED)),
    }
}

fn deliver(co: Lua, o: Option<Outcome>) -> c_int {
    push_result(co, outcome(o)).unwrap_or_else(|_| fail::push(co, libc::ENOMEM))
}

/// Marks a failure delivered to [`raising_k`].
static FAILED: u8 = 0;

fn deliver_raising(co: Lua, o: Option<Outcome>) -> c_int {
    let pushed = match outcome::<Box<dyn Reply>>(o) {
        Ok(reply) => reply.push(co).map_err(|_| Cow::Borrowed("stack overflow")),
        Err(e) => Err(Cow::Borrowed(fail::text(fail::code_of(&e)))),
    };
    pushed.unwrap_or_else(|text| {
        co.push_light(&FAILED as *const u8 as *mut _);
        co.push_bytes(text.as_bytes());
        2
    })
}

/// Continuation of the raising functions: returns the results, or raises
/// the message delivered after the marker.
fn raising_k(lua: Lua, ctx: KContext) -> Result<Await, Error> {
    match awaiting::resumed(lua, 0, ctx) {
        Resumed::User(n) => Ok(Await::Done(n)),
        Resumed::Loop if lua.type_of(2) == LUA_TLIGHTUSERDATA => Err(Error::Msg(Cow::Owned(
            lua.to_bytes(3).unwrap_or_default().to_vec(),
        ))),
        Resumed::Loop => Ok(Await::Done(lua.top() - 1)),
    }
}

/// The mode string at `arg` (default empty): whether it has `~`; every
/// other character must be in `allowed`.
fn arg_mode<'a>(lua: &'a Lua, arg: c_int, allowed: &[u8]) -> Result<(bool, &'a [u8]), Error> {
    let mode = lua.opt_bytes(arg)?.unwrap_or_default();
    match mode.iter().find(|&c| *c != b'~' && !allowed.contains(c)) {
        Some(&c) => Err(Error::mode_char(arg, c)),
        None => Ok((mode.contains(&b'~'), mode)),
    }
}

/// A mode string at `arg` whose `prefix` characters (any order) must come
/// before the others, which must be in `body`: the prefix and the rest.
fn arg_prefixed<'a>(
    lua: &'a Lua,
    arg: c_int,
    prefix: &[u8],
    body: &[u8],
) -> Result<(&'a [u8], &'a [u8]), Error> {
    let mode = lua.opt_bytes(arg)?.unwrap_or_default();
    let split = mode
        .iter()
        .position(|c| !prefix.contains(c))
        .unwrap_or(mode.len());
    let (head, rest) = mode.split_at(split);
    for &c in rest {
        if prefix.contains(&c) {
            let mut text = vec![b'\''];
            text.push(c);
            text.extend_from_slice(b"' must be in the begin of 'mode'");
            return Err(Error::Arg(arg, Cow::Owned(text)));
        }
        if !body.contains(&c) {
            return Err(Error::mode_char(arg, c));
        }
    }
    Ok((head, rest))
}

/// A path argument, copied for a job.
fn arg_path(lua: Lua, arg: c_int) -> Result<Vec<u8>, Error> {
    Ok(lua.arg_bytes(arg)?.to_vec())
}
