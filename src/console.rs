//! `coutil.console`: internal support of the `coutil` command's REPL.
//!
//! Until `system.stdin` exists (processes/stdio issue), the REPL reads
//! standard input through [`readstdin`], which does a blocking `read(2)`
//! of descriptor 0 on the worker pool, so other coroutines keep running
//! while the REPL waits for a line. Descriptor 0 is left in blocking mode
//! (it is shared with the parent process). A read cancelled by an explicit
//! resume still completes in the background and its bytes are lost; the
//! REPL never cancels its reads.
//!
//! The console chunk itself ([`CHUNK`]) lives here too: the command runs
//! it, and `pool:dofile(arg[-1], ...)` (spec console.md §5) loads it when
//! the path names the running `coutil` executable ([`is_command`]).

use std::ffi::c_int;

use crate::cfn;
use crate::lua::awaiting::{self, Await, state_loop};
use crate::lua::{Error, Lua, Reg, Ret, fail};
use crate::runtime::{Outcome, Wait};

const FUNCTIONS: &[Reg] = &[
    (c"readstdin", crate::afn!(readstdin)),
    (c"isatty", cfn!(isatty)),
];

/// The console chunk (`src/lua/console.lua`).
pub const CHUNK: &str = include_str!("lua/console.lua");

/// Does `path`, a file name given to `dofile`/`loadfile`, name the running
/// executable when that is the `coutil` command? A name without `/` that
/// is not a file of the current directory is looked up in `PATH`, as the
/// shell found the command.
#[cfg(feature = "vendored")]
pub fn is_command(path: &[u8]) -> bool {
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

/// In `coutil.so` the host is some other interpreter.
#[cfg(not(feature = "vendored"))]
pub fn is_command(_path: &[u8]) -> bool {
    false
}

/// `require "coutil.console"`: the module table.
pub fn open(lua: Lua) -> c_int {
    lua.push_functions(FUNCTIONS, false);
    1
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
    let id = awaiting::wait(lua, state_loop(lua), Wait::Work(job), deliver)?;
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

/// yes = console.isatty(): is standard input a terminal?
fn isatty(lua: Lua) -> Ret {
    // SAFETY: isatty only inspects descriptor 0.
    lua.push_bool(unsafe { libc::isatty(0) } == 1);
    Ok(1)
}
