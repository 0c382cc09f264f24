//! The `coutil` command: Lua 5.4 (or 5.5) with the library built in. All of its
//! behaviour (options, REPL, error reports) is the Lua console chunk
//! `src/lua/console.lua`; this file only makes the state, adds the
//! library's searcher and hands the command line to that chunk.

use std::ffi::{CString, c_int};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, Ordering};

use coutil::ffi;

use coutil::CONSOLE;

unsafe extern "C-unwind" fn traceback(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by lua_pcall as the message handler.
    unsafe {
        let msg = ffi::lua_tolstring(l, 1, std::ptr::null_mut());
        ffi::luaL_traceback(l, l, msg, 1);
    }
    1
}

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

/// Makes modules installed by the system's `lua5.4` packages (Debian's
/// directories; those of 5.5 in the 5.5 build) loadable, as that
/// interpreter does, unless the user chose the paths with the environment
/// (not read with `-E`).
unsafe fn add_system_paths(l: *mut ffi::lua_State, noenv: bool) {
    let (dir, var) = RELEASE;
    let dirs = [
        (
            "path",
            [format!("LUA_PATH_{var}"), "LUA_PATH".into()],
            format!("/usr/share/lua/{dir}/?.lua;/usr/share/lua/{dir}/?/init.lua"),
        ),
        (
            "cpath",
            [format!("LUA_CPATH_{var}"), "LUA_CPATH".into()],
            format!(
                "/usr/lib/{}-linux-gnu/lua/{dir}/?.so;/usr/lib/lua/{dir}/?.so",
                std::env::consts::ARCH
            ),
        ),
    ];
    for (field, vars, extra) in dirs {
        if !noenv && vars.iter().any(|v| std::env::var_os(v).is_some()) {
            continue;
        }
        let code = format!("package.{field} = package.{field} .. ';{extra}'\0");
        // SAFETY: runs a constant chunk of ours in the fresh state.
        unsafe {
            if ffi::luaL_loadstring(l, code.as_ptr().cast()) == ffi::LUA_OK {
                ffi::lua_pcall(l, 0, 0, 0);
            } else {
                ffi::lua_pop(l, 1);
            }
        }
    }
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
    coutil::setup_command();
    let noenv = ignores_env(&args);
    // SAFETY: a fresh state used only by this thread; every string passed
    // is NUL-terminated and outlives the call.
    let status = unsafe {
        let l = coutil::new_state();
        if l.is_null() {
            eprintln!("coutil: cannot create state: not enough memory");
            std::process::exit(1);
        }
        if noenv {
            ffi::lua_pushboolean(l, 1);
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, c"LUA_NOENV".as_ptr());
        }
        ffi::luaL_openlibs(l);
        coutil::add_searcher(l);
        add_system_paths(l, noenv);
        ffi::lua_pushcfunction(l, traceback);
        let loaded = ffi::luaL_loadbufferx(
            l,
            CONSOLE.as_ptr().cast(),
            CONSOLE.len(),
            c"=coutil".as_ptr(),
            c"t".as_ptr(),
        );
        let ok = loaded == ffi::LUA_OK && {
            // One table argument, argv[0] at index 0: a command line cannot
            // produce a table, so the console knows it runs as the command
            // rather than as a chunk loaded with plain arguments.
            ffi::lua_createtable(l, args.len() as c_int, 1);
            for (i, a) in args.iter().enumerate() {
                ffi::lua_pushstring(l, a.as_ptr());
                ffi::lua_rawseti(l, -2, i as ffi::lua_Integer);
            }
            ffi::lua_pcall(l, 1, 1, 1) == ffi::LUA_OK
        };
        let status = if ok {
            // The console returns the exit status (true/false or a number).
            match ffi::lua_type(l, -1) {
                ffi::LUA_TNUMBER => ffi::lua_tointeger(l, -1) as i32,
                ffi::LUA_TBOOLEAN if ffi::lua_toboolean(l, -1) == 0 => 1,
                _ => 0,
            }
        } else {
            let msg = ffi::lua_tolstring(l, -1, std::ptr::null_mut());
            let text = if msg.is_null() {
                "(error object is not a string)".into()
            } else {
                std::ffi::CStr::from_ptr(msg).to_string_lossy()
            };
            eprintln!("coutil: {text}");
            1
        };
        ffi::lua_close(l);
        status
    };
    std::process::exit(status);
}
