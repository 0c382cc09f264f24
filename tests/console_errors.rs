//! How the `coutil` command reports errors, compared with what `lua5.4`
//! prints for the same cases: tracebacks without the command's own frames,
//! one-line load errors, error objects that are not strings; and the main
//! chunk left waiting when nothing can resume it.

mod common;

use std::process::{Command, Stdio};

use common::*;

// ---- errors and the event loop ----

#[test]
fn script_error_is_reported_with_traceback() {
    let out = run(&["error.lua"]);
    assert_reported(
        &out,
        &format!("{}: error.lua:1: boom\nstack traceback:\n", prog()),
    );
    assert!(
        out.stderr.contains("error.lua:2: in main chunk"),
        "{:?}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn script_error_skips_the_repl() {
    let out = run_stdin(&["-i", "error.lua"], "print('repl')\n");
    assert_reported(&out, &format!("{}: error.lua:1: boom\n", prog()));
    assert_eq!(out.stdout, version(), "-i shows the version first");
}

#[test]
fn exec_error_skips_the_script() {
    let out = run(&["-e", "error('first')", "args.lua"]);
    assert_reported(&out, &format!("{}: (command line):1: first\n", prog()));
    assert_eq!(out.stdout, "");
}

#[test]
fn missing_script_is_reported() {
    let out = run(&["nosuchscript.lua"]);
    assert_one_line(
        &out,
        "cannot open nosuchscript.lua: No such file or directory",
    );
}

#[test]
fn non_string_errors_are_described() {
    let out = run(&["-e", "error({})"]);
    assert_reported(
        &out,
        &format!("{}: (error object is a table value)\n", prog()),
    );
    let out = run(&[
        "-e",
        "error(setmetatable({}, {__tostring = function() return 'custom' end}))",
    ]);
    // As lua.c: the `__tostring` text alone, without a traceback.
    assert_one_line(&out, "custom");
}

#[test]
fn script_may_await_at_top_level() {
    assert_ok(&run(&["sleep.lua"]), "suspend\ttrue\nwaited\ttrue\n");
}

#[test]
fn pending_coroutines_keep_the_process_alive() {
    let code = "coroutine.wrap(function() system.suspend(0.1) print('late') end)() print('first')";
    assert_ok(&run(&["-e", code]), "first\nlate\n");
}

#[test]
fn spawn_call_reports_errors_and_the_rest_goes_on() {
    let code = "spawn.call(function(...) print(...) system.suspend(0.01) error('in call') end, 'x', 'y') print('main')";
    let out = run(&["-e", code]);
    assert_eq!(out.stdout, "x\ty\nmain\n");
    assert_reported(&out, &format!("{}: (command line):1: in call\n", prog()));
}

#[test]
fn spawn_call_returns_the_coroutine() {
    let code = "local co = spawn.call(function() coroutine.yield() end) print(type(co), coroutine.status(co))";
    assert_ok(&run(&["-e", code]), "thread\tsuspended\n");
}

/// Runs `lua5.4` (`lua5.5` in the 5.5 build; when installed) like `Run`
/// runs `coutil`, with its program name replaced by ours.
fn host(args: &[&str]) -> Option<Output> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    let lua = format!("lua{RELEASE}");
    let out = Command::new(&lua)
        .args(args)
        .current_dir(dir)
        .env("LUA_PATH", "./?.lua")
        .env_remove("LUA_INIT")
        .env_remove(release_var("LUA_INIT"))
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = |b: Vec<u8>| {
        String::from_utf8_lossy(&b).replace(&format!("{lua}: "), &format!("{}: ", prog()))
    };
    Some(Output {
        status: out.status.code()?,
        stdout: text(out.stdout),
        stderr: text(out.stderr),
    })
}

/// The same reports as `lua5.4`, byte for byte: tracebacks without frames
/// of the command, one line for code that cannot be loaded, error objects
/// that are not strings.
#[test]
fn errors_are_reported_as_lua_does() {
    let cases: &[&[&str]] = &[
        &["error.lua"],
        &["nosuchscript.lua"],
        &["-e", "print("],
        &["-e", "local t t.x = 1"],
        &["-e", "error('plain', 0)"],
        &["-e", "error(42)"],
        &["-e", "error({})"],
        &["-e", "error()"],
        &[
            "-e",
            "error(setmetatable({}, {__tostring = function() return 'shown' end}))",
        ],
        &[
            "-e",
            "local function f() error('deep') end local function g() f() end g()",
        ],
    ];
    if host(&["-v"]).is_none() {
        eprintln!("SKIPPED: lua{RELEASE} not installed");
        return;
    }
    for args in cases {
        let ours = run(args);
        let theirs = host(args).unwrap();
        assert_eq!(ours.stderr, theirs.stderr, "coutil {args:?}");
        assert_eq!(ours.status, theirs.status, "coutil {args:?}");
    }
}

#[test]
fn traceback_stops_at_the_command_line_chunk() {
    let out = run(&["error.lua"]);
    let expected = format!(
        "{}: error.lua:1: boom\nstack traceback:\n\t{ERROR_FRAME}\n\terror.lua:1: in local 'fail'\n\terror.lua:2: in main chunk\n\t[C]: in ?\n",
        prog()
    );
    assert_eq!(out.stderr, expected);
}

#[test]
fn missing_module_traceback_is_require_alone() {
    let out = run(&["-l", "nosuchmodule"]);
    assert_reported(
        &out,
        &format!("{}: module 'nosuchmodule' not found:", prog()),
    );
    assert!(
        out.stderr
            .ends_with("\nstack traceback:\n\t[C]: in function 'require'\n\t[C]: in ?\n"),
        "{:?}",
        out.stderr
    );
}

#[test]
fn spawn_call_traceback_has_no_spawn_frames() {
    let code = "spawn.call(function() local function f() error('inner') end f() end)";
    let out = run(&["-e", code]);
    let expected = format!(
        "{}: (command line):1: inner\nstack traceback:\n\t{ERROR_FRAME}\n\t(command line):1: in local 'f'\n\t(command line):1: in function <(command line):1>\n",
        prog()
    );
    assert_eq!(out.stderr, expected);
    assert_eq!(out.status, 1);
}

#[test]
fn a_deep_stack_is_reported_quickly() {
    let start = std::time::Instant::now();
    let out = run(&["-e", "local function f() return 1 + f() end f()"]);
    assert_reported(
        &out,
        &format!("{}: (command line):1: stack overflow", prog()),
    );
    assert!(
        out.stderr.contains("\n\t...\t(skipping "),
        "{:?}",
        out.stderr
    );
    assert!(
        out.stderr
            .ends_with("\n\t(command line):1: in main chunk\n\t[C]: in ?\n")
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
}

// ---- -E ----

#[test]
fn ignore_env_option_ignores_lua_path_and_cpath() {
    let code = "print(package.path:find('/nowhere/', 1, true) ~= nil, package.cpath:find('/nowhere/', 1, true) ~= nil)";
    let command = |extra: &[&str]| {
        let out = Command::new(prog())
            .args(extra)
            .args(["-e", code])
            .env("LUA_PATH", "/nowhere/?.lua")
            .env("LUA_CPATH", "/nowhere/?.so")
            .env_remove("COUTIL_INIT")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(command(&[]), "true\ttrue\n");
    assert_eq!(command(&["-E"]), "false\tfalse\n");
    // Found after other options too, not after the script or `--`.
    assert_eq!(command(&["-W", "-e", "x = 1", "-E"]), "false\tfalse\n");
}

// ---- a main chunk left waiting ----

#[test]
fn main_chunk_waiting_forever_is_named() {
    let out = run(&["-e", "print('before') event.await('never')"]);
    assert_eq!(out.stdout, "before\n");
    assert_eq!(
        out.stderr,
        format!(
            "{}: (command line):1: main chunk waits forever in function 'coutil.event.await' (nothing left could resume it)\n",
            prog()
        )
    );
    assert_eq!(out.status, 0, "the status stays the original's");
    let out = run(&["-e", "local p = promise.create()\np()"]);
    assert_eq!(
        out.stderr,
        format!(
            "{}: (command line):2: main chunk waits forever in local 'p' (nothing left could resume it)\n",
            prog()
        )
    );
}

#[test]
fn main_chunk_ending_or_halting_says_nothing() {
    assert_ok(
        &run(&["-e", "system.suspend(0.01) print('done')"]),
        "done\n",
    );
    let code = "spawn.call(function() system.suspend(0.01) system.halt() end) system.suspend(60)";
    assert_ok(&run(&["-e", code]), "");
}

// ---- standard input closed ----

#[test]
fn closed_stdin_is_one_line() {
    for args in [&["-i"][..], &[], &["-"]] {
        let out = Command::new("sh")
            .arg("-c")
            .arg("exec \"$0\" \"$@\" <&-")
            .arg(prog())
            .args(args)
            .env_remove("COUTIL_INIT")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr,
            format!("{}: cannot read stdin: standard input is closed\n", prog()),
            "{args:?}"
        );
        assert_eq!(out.status.code(), Some(1));
    }
}
