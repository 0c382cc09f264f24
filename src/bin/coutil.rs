//! The `coutil` command: Lua 5.4 (or 5.5) with the library built in. All of its
//! behaviour (options, REPL, error reports) is the Lua console chunk
//! `src/lua/console.lua`, which the library's host (`src/console/host.rs`)
//! runs; this file reads the command line and chooses the module paths.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, Ordering};

/// Does the command line ask for `-E` (ignore the environment)? Options
/// end as the console sees them: at the first argument that is not one,
/// `--` or `-`; the values of `-e` and `-l` are skipped. As `lua` does,
/// this is known before the libraries open, so that `package` ignores
/// `LUA_PATH` and `LUA_CPATH` too.
fn ignores_env(args: &[CString]) -> bool {
    let mut args = args.iter().skip(1).map(|a| a.as_bytes());
    while let Some(a) = args.next() {
        match a {
            b"-E" => return true,
            b"-e" | b"-l" => drop(args.next()),
            b"--" | b"-" => break,
            _ if a.first() != Some(&b'-') => break,
            _ => {}
        }
    }
    false
}

/// The built-in Lua's release, as in the names of module directories and
/// of the versioned path variables (`LUA_PATH_5_4`).
#[cfg(not(feature = "lua55"))]
const RELEASE: (&str, &str) = ("5.4", "5_4");
#[cfg(feature = "lua55")]
const RELEASE: (&str, &str) = ("5.5", "5_5");

/// The directories of modules installed by the system's `lua5.4` packages
/// (Debian's; those of 5.5 in the 5.5 build), for `package.path` and
/// `package.cpath` as that interpreter has them, unless the user chose the
/// paths with the environment (not read with `-E`).
fn system_paths(noenv: bool) -> Vec<(&'static CStr, String)> {
    let (dir, var) = RELEASE;
    let dirs = [
        (
            c"path",
            [format!("LUA_PATH_{var}"), "LUA_PATH".into()],
            format!("/usr/share/lua/{dir}/?.lua;/usr/share/lua/{dir}/?/init.lua"),
        ),
        (
            c"cpath",
            [format!("LUA_CPATH_{var}"), "LUA_CPATH".into()],
            format!(
                "/usr/lib/{}-linux-gnu/lua/{dir}/?.so;/usr/lib/lua/{dir}/?.so",
                std::env::consts::ARCH
            ),
        ),
    ];
    dirs.into_iter()
        .filter(|(_, vars, _)| noenv || vars.iter().all(|v| std::env::var_os(v).is_none()))
        .map(|(field, _, extra)| (field, extra))
        .collect()
}

/// Was descriptor 0 closed when the process started? Rust's runtime opens
/// `/dev/null` on a closed descriptor 0, 1 or 2 before `main` (so that no
/// other file takes their numbers), hence this check runs earlier, as a
/// constructor of the executable; the console then says that stdin is
/// closed instead of reading nothing.
static STDIN_CLOSED: AtomicBool = AtomicBool::new(false);

extern "C" fn check_stdin() {
    // SAFETY: fcntl only inspects descriptor 0.
    if unsafe { libc::fcntl(0, libc::F_GETFD) } == -1 {
        STDIN_CLOSED.store(true, Ordering::Relaxed);
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static CHECK_STDIN: extern "C" fn() = check_stdin;

fn main() {
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_else(|_| c"?".to_owned()))
        .collect();
    if STDIN_CLOSED.load(Ordering::Relaxed) {
        coutil::mark_stdin_closed();
    }
    let noenv = ignores_env(&args);
    let paths = system_paths(noenv);
    let command = coutil::Command {
        args: &args,
        noenv,
        paths: &paths,
    };
    std::process::exit(coutil::run_command(&command));
}
