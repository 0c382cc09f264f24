//! `coutil.console`: internal support of the `coutil` command, not part of
//! the API (its functions may change with the command).
//!
//! The command's behaviour is Lua: the console chunk ([`CHUNK`],
//! `src/lua/console.lua`) and the interactive loop it loads from here
//! (`console.repl`, `src/lua/repl.lua`). What Lua cannot do is here:
//! * reading standard input without stopping the loop ([`readstdin`]: a
//!   blocking `read(2)` of descriptor 0 on the worker pool, so other
//!   coroutines keep running while the REPL waits; descriptor 0 stays
//!   blocking, it is shared with the parent process);
//! * line editing and history when both ends are terminals (`line.rs`,
//!   the command's build only), the editor also running on the pool;
//! * Ctrl-C while a statement runs (`interrupt.rs`), as `lua.c` does it.
//!
//! `pool:dofile(arg[-1], ...)` (spec console.md §5) loads the console chunk
//! when the path names the running `coutil` executable ([`is_command`]).

#[cfg(feature = "command")]
pub mod host;
mod interrupt;
#[cfg(feature = "command")]
mod line;

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cfn;
use crate::lua::awaiting::{self, Await, state_loop};
use crate::lua::{Error, LUA_OK, Lua, Reg, Ret, fail};
use crate::runtime::{Outcome, Wait};

const FUNCTIONS: &[Reg] = &[
    (c"readstdin", crate::afn!(readstdin)),
    (c"isatty", cfn!(isatty)),
    (c"stdinclosed", cfn!(stdinclosed)),
    (c"catchint", cfn!(interrupt::catchint)),
    (c"awaitint", crate::afn!(interrupt::awaitint)),
    (c"releaseint", cfn!(interrupt::releaseint)),
    (c"repl", cfn!(repl)),
];

/// The console chunk (`src/lua/console.lua`).
#[cfg(feature = "command")]
pub const CHUNK: &str = include_str!("../lua/console.lua");

/// The interactive loop (`src/lua/repl.lua`), `console.repl`.
const REPL: &str = include_str!("../lua/repl.lua");

/// Was descriptor 0 closed when the process started (see
/// [`mark_stdin_closed`])?
static STDIN_CLOSED: AtomicBool = AtomicBool::new(false);

/// Records that the command started with descriptor 0 closed (the command
/// then opens `/dev/null` there, so that no other file takes number 0).
pub fn mark_stdin_closed() {
    STDIN_CLOSED.store(true, Ordering::Relaxed);
}

/// Does `path`, a file name given to `dofile`/`loadfile`, name the running
/// executable when that is the `coutil` command? A name without `/` that
/// is not a file of the current directory is looked up in `PATH`, as the
/// shell found the command.
#[cfg(feature = "command")]
fn is_command(path: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let Some(exe) = id(Path::new("/proc/self/exe")) else {
        return false;
    };
    let path = Path::new(std::ffi::OsStr::from_bytes(path));
    if path.as_os_str().is_empty() {
        return false;
    }
    if path.as_os_str().as_bytes().contains(&b'/') || path.exists() {
        return id(path) == Some(exe);
    }
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&dirs)
        .map(|dir| dir.join(path))
        .find(|p: &PathBuf| p.is_file())
        .is_some_and(|p| id(&p) == Some(exe))
}

/// The console chunk when `path` names the running `coutil` command (see
/// `threads::set_command_chunk`).
#[cfg(feature = "command")]
pub fn command_chunk(path: &[u8]) -> Option<&'static [u8]> {
    is_command(path).then_some(CHUNK.as_bytes())
}

/// `require "coutil.console"`: the module table, with, in the command,
/// `copyright` (the vendored Lua's version line) and the line editor's
/// functions.
pub fn open(lua: Lua) -> c_int {
    lua.push_functions(FUNCTIONS, false);
    #[cfg(feature = "command")]
    for (name, f) in line::FUNCTIONS {
        lua.push_cfunction(*f);
        lua.set_field(-2, name);
    }
    if let Some(text) = option_env!("COUTIL_LUA_COPYRIGHT") {
        lua.push_bytes(text.as_bytes());
        lua.set_field(-2, c"copyright");
    }
    1
}

/// chunk = console.repl(): the REPL chunk, compiled only now: most runs of
/// the command never start the REPL, and compiling it at `require` was a
/// sixth of the command's start-up. (The console calls it: it awaits, so
/// it cannot be called from here.)
fn repl(lua: Lua) -> Ret {
    let status = lua.load(REPL.as_bytes(), c"=coutil.repl", Some(c"t"));
    if status != LUA_OK {
        let text = String::from_utf8_lossy(lua.to_bytes(-1).unwrap_or_default()).into_owned();
        return Err(Error::msg(text));
    }
    Ok(1)
}

/// chunk | nil | false, msg, code = console.readstdin(size)
fn readstdin(lua: Lua) -> Result<Await, Error> {
    awaiting::require_coroutine(lua)?;
    let size = lua.arg_integer(1)?;
    if !(1..=1 << 20).contains(&size) {
        return Err(Error::arg(1, "invalid size"));
    }
    let job = Box::new(move || {
        let mut buf = vec![0u8; size as usize];
        // SAFETY: reads into a buffer of `size` bytes that we own.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        let result = if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            buf.truncate(n as usize);
            Ok(buf)
        };
        Box::new(result) as Outcome
    });
    let id = awaiting::wait(
        lua,
        state_loop(&lua),
        awaiting::Kind::Read,
        Wait::Work(job),
        deliver,
    )?;
    Ok(Await::Yield(id))
}

fn deliver(co: Lua, outcome: Option<Outcome>) -> c_int {
    let result = outcome.and_then(|o| o.downcast::<std::io::Result<Vec<u8>>>().ok());
    match result.map(|r| *r) {
        Some(Ok(bytes)) if bytes.is_empty() => {
            co.push_nil();
            1
        }
        Some(Ok(bytes)) => {
            co.push_bytes(&bytes);
            1
        }
        Some(Err(e)) => fail::push_io(co, &e),
        None => fail::push(co, fail::UNKNOWN),
    }
}

/// yes = console.isatty([fd]): is descriptor `fd` (default 0) a terminal?
fn isatty(lua: Lua) -> Ret {
    let fd = lua.opt_integer(1, 0)?;
    let fd = c_int::try_from(fd).map_err(|_| Error::arg(1, "invalid descriptor"))?;
    // SAFETY: isatty only inspects the descriptor.
    lua.push_bool(unsafe { libc::isatty(fd) } == 1);
    Ok(1)
}

/// yes = console.stdinclosed(): did the command start with descriptor 0
/// closed?
fn stdinclosed(lua: Lua) -> Ret {
    lua.push_bool(STDIN_CLOSED.load(Ordering::Relaxed));
    Ok(1)
}
