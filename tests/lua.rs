//! Runs every Lua test script of `tests/lua/` three ways (design §8):
//! in the `coutil` command, in Debian's `lua5.4` with `coutil.so` (skipped
//! with a message when `lua5.4` is absent), and in the `coutil` command
//! with an aggressive garbage collector. A script passes when it exits
//! with status 0 (it prints `N passed, N failed` through testlib).
//!
//! Built for Lua 5.5 (`--no-default-features --features vendored55`), the
//! same scripts run in that command, and `coutil.so` (`module55`) in a
//! `lua5.5` interpreter when one is installed (Debian has none today).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(180);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The host interpreter for `coutil.so` and the module build for it, for
/// the Lua release of this build.
struct Host {
    lua: &'static str,
    feature: &'static str,
    target: &'static str,
    install: &'static str,
    /// Where the scripts' output goes.
    logs: &'static str,
}

#[cfg(not(feature = "lua55"))]
const HOST: Host = Host {
    lua: "lua5.4",
    feature: "module",
    target: "target/module",
    install: " (apt-get install lua5.4)",
    logs: "target/lua-tests",
};
#[cfg(feature = "lua55")]
const HOST: Host = Host {
    lua: "lua5.5",
    feature: "module55",
    target: "target/module55",
    install: "",
    logs: "target/lua55/lua-tests",
};

/// Builds `coutil.so` (feature `module` or `module55`, own target dir) once and returns
/// the directory holding `coutil.so` and `memory.so` for `LUA_CPATH`.
fn module_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = root().join(HOST.target);
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--lib",
                "--no-default-features",
                "--features",
                HOST.feature,
                "--target-dir",
            ])
            .arg(&target)
            .current_dir(root())
            .status()
            .expect("cannot run cargo");
        assert!(status.success(), "building coutil.so failed");
        let dir = target.join("lua");
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["coutil.so", "memory.so"] {
            let dest = dir.join(name);
            let _ = std::fs::remove_file(&dest);
            std::fs::copy(target.join("debug/libcoutil.so"), &dest).unwrap();
        }
        dir
    })
}

/// The host interpreter (`lua5.4`, or `lua5.5` in the 5.5 build) if it is
/// installed; else says that the test is skipped.
fn host() -> Option<&'static str> {
    let lua = HOST.lua;
    let found = Command::new(lua)
        .arg("-v")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if !found {
        eprintln!("SKIPPED: {lua} is not installed{}", HOST.install);
    }
    found.then_some(lua)
}

/// Runs `program script` with the test environment; panics on failure,
/// showing the script's output (kept in a log file, not printed on success).
fn run(program: &Path, script: &str, gc: bool) {
    run_with(program, script, gc, None);
}

/// Runs `script` in the host interpreter with `coutil.so`, if installed.
fn run_host(script: &str) {
    if let Some(lua) = host() {
        run(lua.as_ref(), script, false);
    }
}

/// Like [`run`], with one more environment variable (also in the log name).
fn run_with(program: &Path, script: &str, gc: bool, var: Option<(&str, &str)>) {
    let path = root().join("tests/lua").join(format!("{script}.lua"));
    let tag = program.file_name().unwrap().to_string_lossy();
    let extra = var.map(|(name, _)| format!("-{name}")).unwrap_or_default();
    let log = format!("{script}-{tag}{}{extra}", if gc { "-gc" } else { "" });
    run_script(program, &path, &[], &log, gc, var);
}

/// Runs the stress script `tests/stress/<name>.lua` with `args` (its
/// reduced size) in `program`.
fn run_stress(program: &Path, name: &str, args: &[&str]) {
    let path = root().join("tests/stress").join(format!("{name}.lua"));
    let tag = program.file_name().unwrap().to_string_lossy();
    run_script(
        program,
        &path,
        args,
        &format!("stress-{name}-{tag}"),
        false,
        None,
    );
}

/// Runs the stress script `name` in the host interpreter, if installed.
fn run_stress_host(name: &str, args: &[&str]) {
    if let Some(lua) = host() {
        run_stress(lua.as_ref(), name, args);
    }
}

fn run_script(
    program: &Path,
    path: &Path,
    args: &[&str],
    log: &str,
    gc: bool,
    var: Option<(&str, &str)>,
) {
    let script = log;
    let logs = root().join(HOST.logs);
    std::fs::create_dir_all(&logs).unwrap();
    let log = logs.join(format!("{log}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let mut command = Command::new(program);
    if let Some((name, value)) = var {
        command.env(name, value);
    }
    let mut child = command
        .arg(path)
        .args(args)
        .current_dir(root())
        .env("LUA_PATH", "tests/lua/?.lua;;")
        .env("LUA_CPATH", format!("{}/?.so;;", module_dir().display()))
        .env("COUTIL_TEST_GC", if gc { "1" } else { "0" })
        .env_remove("COUTIL_INIT")
        .env_remove("LUA_INIT")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0) // a timeout kills the script's children too
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > TIMEOUT {
            // SAFETY: signals the process group made for this child.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("{script} failed in {} ({s}):\n{output}", program.display()),
        None => panic!(
            "{script} timed out after {TIMEOUT:?} in {}:\n{output}",
            program.display()
        ),
    }
}

macro_rules! lua_tests {
    ($($script:ident),* $(,)?) => {
        const SCRIPTS: &[&str] = &[$(stringify!($script)),*];
        $(
            mod $script {
                #[test]
                fn coutil() {
                    super::run(env!("CARGO_BIN_EXE_coutil").as_ref(), stringify!($script), false);
                }
                #[test]
                #[cfg(not(feature = "lua55"))]
                fn lua54() {
                    super::run_host(stringify!($script));
                }
                #[test]
                #[cfg(feature = "lua55")]
                fn lua55() {
                    super::run_host(stringify!($script));
                }
                #[test]
                fn aggressive_gc() {
                    super::run(env!("CARGO_BIN_EXE_coutil").as_ref(), stringify!($script), true);
                }
            }
        )*
    };
}

lua_tests!(
    system_loop,
    coop_spawn,
    coop_event,
    coop_queued,
    coop_mutex,
    coop_promise,
    await_within,
    await_any,
    await_stats,
    memory_buffer,
    net_address,
    net_resolve,
    net_tcp,
    net_local,
    net_pair,
    net_localdgram,
    net_share,
    net_udp,
    net_await,
    fs_path,
    fs_file,
    fs_info,
    sys_signal,
    sys_env,
    sys_awaitfd,
    sys_info,
    sys_execute,
    sys_nofile,
    sys_stdio,
    threads_channel,
    threads_states,
    threads_stateco,
    threads_pool,
    threads_moves,
    threads_preload,
    threads_stress,
    fuzz_args,
    await_reader,
);

/// Processes watched through `SIGCHLD` instead of a pidfd, as on Linux
/// before 5.3 or under valgrind.
#[test]
fn sys_execute_without_pidfd() {
    run_with(
        env!("CARGO_BIN_EXE_coutil").as_ref(),
        "sys_execute",
        false,
        Some(("COUTIL_TEST_NOPIDFD", "1")),
    );
}

/// `coutil.so` of this build loads into the `coutil` command (which
/// exports the Lua API as an interpreter does) and runs its own loop there:
/// the 5.5 module's check of its symbols when no `lua5.5` is installed.
#[test]
fn module_loads_into_the_command() {
    let so = module_dir().join("coutil.so");
    let code = format!(
        "local open = assert(package.loadlib([[{}]], 'luaopen_coutil_system')) \
         local system, done = open() \
         coroutine.wrap(function() system.suspend(0.01) done = system._COUTIL end)() \
         system.run() print(done, _VERSION)",
        so.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_coutil"))
        .args(["-e", &code])
        .env_remove("COUTIL_INIT")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let lua = if cfg!(feature = "lua55") {
        "5.5"
    } else {
        "5.4"
    };
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Coutil {}\tLua {lua}\n", env!("CARGO_PKG_VERSION")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The stress scripts of `tests/stress/` in reduced size (the full sizes
/// are their defaults; see doc/devnotes.md), in both builds.
macro_rules! stress_tests {
    ($($name:ident: [$($arg:expr),*]),* $(,)?) => {
        mod stress {
            $(
                mod $name {
                    #[test]
                    fn coutil() {
                        super::super::run_stress(env!("CARGO_BIN_EXE_coutil").as_ref(), stringify!($name), &[$($arg),*]);
                    }
                    #[test]
                    #[cfg(not(feature = "lua55"))]
                    fn lua54() {
                        super::super::run_stress_host(stringify!($name), &[$($arg),*]);
                    }
                    #[test]
                    #[cfg(feature = "lua55")]
                    fn lua55() {
                        super::super::run_stress_host(stringify!($name), &[$($arg),*]);
                    }
                }
            )*
        }
    };
}

stress_tests!(
    echo: ["300"],
    soak: ["8000", "65536", "5000"],
);

/// Every script in tests/lua/ is listed above.
#[test]
fn all_scripts_listed() {
    for entry in std::fs::read_dir(root().join("tests/lua")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = name.strip_suffix(".lua") {
            assert!(
                stem == "testlib" || SCRIPTS.contains(&stem),
                "tests/lua/{name} is not listed in tests/lua.rs"
            );
        }
    }
}
