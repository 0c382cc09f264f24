//! The `coutil` command as a user sees it (spec/console.md): options, usage
//! errors, `COUTIL_INIT`, the `arg` table, the globals, running as a chunk
//! in thread pools. Errors are in `console_errors.rs`, the REPL in
//! `console_repl.rs`; `common/` runs the binary.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

// ---- options ----

#[test]
fn version_line_names_coutil_and_the_lua_release() {
    let out = run(&["-v"]);
    assert_eq!(out.stderr, "");
    let line = out.stdout.strip_suffix('\n').expect("one line");
    let head = format!("Coutil {} on Lua {RELEASE}.", env!("CARGO_PKG_VERSION"));
    let rest = line
        .strip_prefix(&head)
        .unwrap_or_else(|| panic!("{line:?}"));
    let (release, copyright) = rest.split_once("  ").expect("two spaces");
    assert!(release.parse::<u32>().is_ok(), "{line:?}");
    assert!(
        copyright.starts_with("Copyright (C) 1994-") && copyright.ends_with(" Lua.org, PUC-Rio"),
        "{line:?}"
    );
    assert_ok(
        &run(&["-e", "print(system._COUTIL)"]),
        &format!("Coutil {}\n", env!("CARGO_PKG_VERSION")),
    );
}

#[test]
fn version_comes_before_everything_else() {
    assert_ok(
        &run_init(&["-e", "print('e')", "-v"], "print('init')"),
        &format!("{}init\ne\n", version()),
    );
}

#[test]
fn exec_option_runs_statements_in_order() {
    assert_ok(
        &run(&["-e", "print('a')", "-eprint('b')", "-e", "print(...)"]),
        "a\nb\n\n",
    );
}

#[test]
fn exec_option_chunk_name() {
    let out = run(&["-e", "error('bad')"]);
    assert_reported(&out, &format!("{}: (command line):1: bad\n", prog()));
}

#[test]
fn exec_option_syntax_error_is_reported() {
    let out = run(&["-e", "print(", "-e", "print('after')"]);
    assert_one_line(&out, "(command line):1: unexpected symbol near <eof>");
    assert_eq!(out.stdout, "");
}

#[test]
fn lib_option_sets_the_global() {
    assert_ok(&run(&["-l", "greet", "-e", "print(greet.name)"]), "greet\n");
    assert_ok(&run(&["-lgreet", "-e", "print(greet.name)"]), "greet\n");
}

#[test]
fn lib_option_global_name_cut_before_dash() {
    assert_ok(
        &run(&["-l", "greet-v2", "-e", "print(greet.name)"]),
        "greet-v2\n",
    );
}

#[test]
fn lib_option_explicit_global() {
    assert_ok(
        &run(&["-l", "g=greet-v2", "-e", "print(g.name, greet)"]),
        "greet-v2\tnil\n",
    );
}

#[test]
fn lib_option_missing_module_stops_the_rest() {
    let out = run(&["-l", "nosuchmodule", "-e", "print('after')"]);
    assert_reported(
        &out,
        &format!("{}: module 'nosuchmodule' not found", prog()),
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn exec_lib_and_warn_options_run_in_command_line_order() {
    let out = run(&[
        "-e",
        "greet = 1",
        "-l",
        "greet",
        "-e",
        "print(type(greet))",
        "-e",
        "greet = 5",
        "-e",
        "print(greet)",
    ]);
    assert_ok(&out, "table\n5\n");
    let out = run(&["-e", "warn('before')", "-W", "-e", "warn('after')"]);
    assert_eq!(out.stderr, "Lua warning: after\n");
    assert_eq!(out.status, 0);
}

#[test]
fn warn_option_shows_system_run_warnings() {
    let code = "coroutine.wrap(function() system.suspend() error('oops') end)()";
    let out = run(&["-W", "-e", code]);
    assert_eq!(
        out.stderr,
        "Lua warning: [coutil] system.run: (command line):1: oops\n"
    );
    assert_eq!(out.status, 0);
    assert_ok(&run(&["-e", code]), "");
}

#[test]
fn double_dash_stops_option_handling() {
    let out = run(&["--", "args.lua", "-v"]);
    assert_ok(
        &out,
        &format!("-2\t{}\n-1\t--\n0\targs.lua\n1\t-v\n...\t1\t-v\n", prog()),
    );
    // After `--`, `-` is a file name, as in `lua`.
    let out = run_stdin(&["--", "-"], "print('stdin')");
    assert_one_line(&out, "cannot open -: No such file or directory");
}

#[test]
fn dash_runs_stdin_with_arguments() {
    let out = run_stdin(
        &["-", "a", "b"],
        "print(arg[0], arg[-1], ...)\nprint('line 2')\n",
    );
    assert_ok(&out, &format!("-\t{}\ta\tb\nline 2\n", prog()));
}

#[test]
fn stdin_chunk_runs_without_script_nor_exec() {
    assert_ok(&run_stdin(&[], "print('from stdin', ...)"), "from stdin\n");
    assert_ok(&run_stdin(&["-W"], "print('from stdin')"), "from stdin\n");
    // -e or -v means "no stdin chunk".
    assert_ok(
        &run_stdin(&["-e", "print(1)"], "print('from stdin')"),
        "1\n",
    );
    assert_ok(&run_stdin(&["-v"], "print('from stdin')"), &version());
}

#[test]
fn stdin_chunk_error_names_stdin() {
    let out = run_stdin(&[], "error('bad input')");
    assert_reported(&out, &format!("{}: stdin:1: bad input\n", prog()));
}

// ---- usage errors ----

#[test]
fn unknown_option_prints_usage_and_runs_nothing() {
    assert_usage(&run(&["-x"]), "unrecognized option '-x'");
    assert_usage(
        &run_init(&["-v", "-e", "print(1)", "-x", "args.lua"], "print('init')"),
        "unrecognized option '-x'",
    );
    assert_usage(&run(&["--x"]), "unrecognized option '--x'");
    assert_usage(&run(&["-ix"]), "unrecognized option '-ix'");
    assert_usage(&run(&["-vE"]), "unrecognized option '-vE'");
}

#[test]
fn missing_argument_prints_usage_and_runs_nothing() {
    assert_usage(&run(&["-v", "-e"]), "'-e' needs argument");
    assert_usage(&run(&["-v", "-l"]), "'-l' needs argument");
    // As in `lua`, an option-like word is not a value.
    assert_usage(&run(&["-e", "-v"]), "'-e' needs argument");
}

// ---- COUTIL_INIT ----

#[test]
fn init_chunk_runs_first() {
    let out = run_init(&["-e", "print('e')"], "print('init', arg[1])");
    assert_ok(&out, "init\t-e\ne\n");
}

#[test]
fn init_chunk_errors_name_it_and_stop_the_rest() {
    let out = run_init(&["-e", "print('e')", "args.lua"], "error('bad init')");
    assert_reported(&out, &format!("{}: COUTIL_INIT:1: bad init\n", prog()));
    assert_eq!(out.stdout, "");
}

#[test]
fn init_file_runs_first() {
    assert_ok(
        &run_init(&["-e", "print('e')"], "@init.lua"),
        &format!("init file\t{}\ne\n", prog()),
    );
}

#[test]
fn init_file_missing_is_reported() {
    let out = run_init(&["-e", "print('e')"], "@nosuchfile.lua");
    assert_one_line(
        &out,
        "cannot open nosuchfile.lua: No such file or directory",
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn ignore_env_option_skips_init() {
    assert_ok(
        &run_init(&["-E", "-e", "print('e')"], "print('init')"),
        "e\n",
    );
    assert_ok(&run_init(&["-E", "-e", "print('e')"], "@init.lua"), "e\n");
}

// ---- arg and script arguments ----

#[test]
fn arg_table_and_script_varargs() {
    let out = run(&["-W", "args.lua", "a", "", "c"]);
    let expected = format!(
        "-2\t{}\n-1\t-W\n0\targs.lua\n1\ta\n2\t\n3\tc\n...\t3\ta\t\tc\n",
        prog()
    );
    assert_ok(&out, &expected);
}

#[test]
fn arg_table_without_script() {
    let out = run(&[
        "-e",
        "for i = 0, #arg do print(i, arg[i]) end print(arg[-1])",
    ]);
    let expected = format!(
        "0\t{}\n1\t-e\n2\tfor i = 0, #arg do print(i, arg[i]) end print(arg[-1])\nnil\n",
        prog()
    );
    assert_ok(&out, &expected);
}

#[test]
fn options_end_at_first_non_option() {
    let out = run(&["args.lua", "-v", "-x"]);
    assert_ok(
        &out,
        &format!(
            "-1\t{}\n0\targs.lua\n1\t-v\n2\t-x\n...\t2\t-v\t-x\n",
            prog()
        ),
    );
}

// ---- globals ----

#[test]
fn library_globals_are_set() {
    let code = "for _, n in ipairs{'memory', 'event', 'mutex', 'promise', 'queued', 'spawn', 'system'} do \
                io.write(n, '=', type(_G[n]), ' ') end \
                print(memory == require 'memory', system == require 'coutil.system', type(spawn.call))";
    let out = run(&["-e", code]);
    let expected = "memory=table event=table mutex=table promise=table queued=table spawn=table system=table true\ttrue\tfunction\n";
    assert_ok(&out, expected);
}

// ---- as a chunk (thread pools) ----

#[test]
fn console_loadable_as_a_chunk() {
    let out = run(&["chunk.lua"]);
    let name = "../../src/lua/console.lua";
    let expected = format!(
        "inner\t{name}\t-W\n-4\t{name}\n-3\t-e\n-2\tprint('inner', arg[-4], arg[-1])\n-1\t-W\n0\targs.lua\n1\t7\n...\t1\t7\nstatus\t0\nstatus\t1\n"
    );
    assert_eq!(out.stdout, expected);
    assert!(
        out.stderr.starts_with(&format!(
            "{name}: (command line):1: inner failure\nstack traceback:\n"
        )),
        "{:?}",
        out.stderr
    );
    assert_eq!(out.status, 0);
}

/// The command exports the Lua API, so native modules of the system's Lua
/// packages load in it (Debian's `lua-luv`; skipped when not installed).
#[test]
fn native_modules_of_the_system_load() {
    let luv = format!(
        "/usr/lib/{}-linux-gnu/lua/{RELEASE}/luv.so",
        std::env::consts::ARCH
    );
    if !Path::new(&luv).exists() {
        eprintln!("SKIPPED: {luv} not installed (apt-get install lua-luv)");
        return;
    }
    let mut cmd = Command::new(prog());
    cmd.args(["-e", "local uv = require 'luv' local t = uv.new_timer() t:start(1, 0, function() print('luv ok') t:close() end) uv.run()"])
        .env_remove("COUTIL_INIT")
        .env_remove("LUA_CPATH")
        .env_remove(release_var("LUA_CPATH"))
        .stdin(Stdio::null());
    let out = cmd.output().expect("cannot run coutil");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "luv ok\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The examples a newcomer starts from keep working.
#[test]
fn examples_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(prog())
        .arg(root.join("examples/hello.lua"))
        .env_remove("COUTIL_INIT")
        .stdin(Stdio::null())
        .output()
        .expect("cannot run coutil");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("finished job"))
            .count(),
        6,
        "{stdout}"
    );
    assert!(stdout.ends_with("all done\n"), "{stdout}");
}

/// Closing the state with operations pending ends the process normally.
#[test]
fn closing_the_state_with_pending_operations() {
    let start = Instant::now();
    let out = run(&[
        "-e",
        "coroutine.wrap(function() system.suspend(100) end)() os.exit(3, true)",
    ]);
    assert_eq!(out.status, 3, "{}", out.stderr);
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn library_modules_come_from_a_searcher_after_preload() {
    let out = run(&[
        "-e",
        "print(package.preload['coutil.system'], package.searchers[2] ~= nil)",
        "-e",
        "package.loaded['coutil.console'] = nil print(select(2, require 'coutil.console'), select('#', require 'coutil.console'))",
        "-e",
        "package.loaded.memory = nil; package.preload.memory = function() return 'mine' end",
        "-e",
        "print((require 'memory'))",
        "-e",
        "print((select(2, pcall(require, 'coutil.nope')):match('^[^\\n]*\\n[^\\n]*')))",
    ]);
    assert_ok(
        &out,
        "nil\ttrue\n:preload:\t1\nmine\nmodule 'coutil.nope' not found:\n\tno field package.preload['coutil.nope']\n",
    );
}

#[test]
fn pool_runs_the_console_from_its_command_path() {
    assert_ok(
        &run(&["pool.lua"]),
        "1 pool-worker.lua true globals\n2 pool-worker.lua true globals\n3 pool-worker.lua true globals\nclosed\n",
    );
}
