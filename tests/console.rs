//! The `coutil` command as a user sees it (spec/console.md): options, usage
//! errors, `COUTIL_INIT`, the `arg` table, error reports, the event loop
//! around the script, stdin chunks and the REPL. Each test runs the built
//! binary in `tests/console/` (fixture scripts) with a clean environment
//! and checks stdout, stderr and the exit status.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);
const VERSION: &str = "Lua 5.4  Copyright (C) 1994-2024 Lua.org, PUC-Rio\n";

fn prog() -> &'static str {
    env!("CARGO_BIN_EXE_coutil")
}

struct Output {
    status: i32,
    stdout: String,
    stderr: String,
}

/// One invocation: arguments, `COUTIL_INIT` (always set or removed so the
/// caller's environment does not leak in) and optional stdin data (else
/// stdin is `/dev/null`).
struct Run<'a> {
    args: &'a [&'a str],
    init: Option<&'a str>,
    stdin: Option<&'a str>,
}

fn run(args: &[&str]) -> Output {
    Run {
        args,
        init: None,
        stdin: None,
    }
    .go()
}

fn run_init(args: &[&str], init: &str) -> Output {
    Run {
        args,
        init: Some(init),
        stdin: None,
    }
    .go()
}

fn run_stdin(args: &[&str], stdin: &str) -> Output {
    Run {
        args,
        init: None,
        stdin: Some(stdin),
    }
    .go()
}

impl Run<'_> {
    fn go(&self) -> Output {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
        let mut cmd = Command::new(prog());
        cmd.args(self.args)
            .current_dir(dir)
            .env("LUA_PATH", "./?.lua")
            .env_remove("LUA_INIT")
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match self.init {
            Some(init) => cmd.env("COUTIL_INIT", init),
            None => cmd.env_remove("COUTIL_INIT"),
        };
        let mut child = cmd.spawn().expect("cannot run coutil");
        let input = self.stdin.map(|data| {
            let mut pipe = child.stdin.take().unwrap();
            let data = data.to_owned();
            // The command may exit before reading everything: ignore EPIPE.
            std::thread::spawn(move || drop(pipe.write_all(data.as_bytes())))
        });
        let collect = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                pipe.read_to_string(&mut text).unwrap();
                text
            })
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > TIMEOUT {
                let _ = child.kill();
                panic!("coutil {:?} timed out after {TIMEOUT:?}", self.args);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if let Some(input) = input {
            input.join().unwrap();
        }
        Output {
            status: status.code().expect("killed by a signal"),
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        }
    }
}

/// Asserts a clean success with exactly `stdout`.
fn assert_ok(out: &Output, stdout: &str) {
    assert_eq!(out.stderr, "", "unexpected stderr");
    assert_eq!(out.stdout, stdout);
    assert_eq!(out.status, 0);
}

/// Asserts a reported error: status 1 and stderr starting with `prefix`,
/// followed by a traceback.
fn assert_reported(out: &Output, prefix: &str) {
    assert!(
        out.stderr.starts_with(prefix),
        "stderr {:?} does not start with {prefix:?}",
        out.stderr
    );
    assert!(
        out.stderr.contains("\nstack traceback:\n"),
        "no traceback in {:?}",
        out.stderr
    );
    assert_eq!(out.status, 1);
}

/// Asserts a usage error: the message, the usage text, nothing run.
fn assert_usage(out: &Output, message: &str) {
    let head = format!(
        "{p}: {message}\nusage: {p} [options] [script [args]]\n",
        p = prog()
    );
    assert!(
        out.stderr.starts_with(&head),
        "stderr {:?} does not start with {head:?}",
        out.stderr
    );
    for option in [
        "-e stat", "-l mod", "-l g=mod", "-i", "-v", "-E", "-W", "--", "-  ",
    ] {
        assert!(
            out.stderr.contains(&format!("\n  {option}")),
            "usage lacks {option}: {:?}",
            out.stderr
        );
    }
    assert_eq!(out.stdout, "", "something ran");
    assert_eq!(out.status, 1);
}

// ---- options ----

#[test]
fn version_option_prints_the_version_line() {
    assert_ok(&run(&["-v"]), VERSION);
}

#[test]
fn version_comes_before_everything_else() {
    assert_ok(
        &run_init(&["-e", "print('e')", "-v"], "print('init')"),
        &format!("{VERSION}init\ne\n"),
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
    assert!(
        out.stderr
            .starts_with(&format!("{}: (command line):1:", prog())),
        "{:?}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
    assert_eq!(out.status, 1);
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
    assert_reported(&out, &format!("{}: cannot open -", prog()));
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
    assert_ok(&run_stdin(&["-v"], "print('from stdin')"), VERSION);
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
    assert_reported(&out, &format!("{}: cannot open nosuchfile.lua", prog()));
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
    assert_eq!(out.stdout, "");
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
    assert_reported(&out, &format!("{}: cannot open nosuchscript.lua", prog()));
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
    assert_reported(&out, &format!("{}: custom\n", prog()));
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

// ---- REPL ----

#[test]
fn repl_evaluates_lines() {
    let input = "x = 1\nreturn x + 1\nx, 'two'\nprint('p')\n\n";
    let out = run_stdin(&["-i"], input);
    assert_ok(&out, "> > 2\n> 1\ttwo\n> p\n> > \n");
}

#[test]
fn repl_continues_incomplete_statements() {
    let input = "for i = 1, 2 do\nprint(i)\nend\nlocal t = {\n1,\n}\nreturn 1 +\n2\n";
    let out = run_stdin(&["-i"], input);
    assert_ok(&out, "> >> >> 1\n2\n> >> >> > >> 3\n> \n");
}

#[test]
fn repl_reports_errors_without_program_name() {
    let out = run_stdin(&["-i"], "error('oops')\nprint('still here')\n= 1\n");
    assert_eq!(out.stdout, "> > still here\n> > \n");
    assert!(
        out.stderr.starts_with("stdin:1: oops\nstack traceback:\n"),
        "{:?}",
        out.stderr
    );
    assert!(
        out.stderr
            .ends_with("\nstdin:1: unexpected symbol near '='\n"),
        "{:?}",
        out.stderr
    );
    assert_eq!(out.status, 0);
}

#[test]
fn repl_end_of_input_inside_a_statement() {
    let out = run_stdin(&["-i"], "for i = 1, 2 do\n");
    assert_eq!(out.stdout, "> >> > \n");
    assert_eq!(out.stderr, "stdin:1: 'end' expected near <eof>\n");
}

#[test]
fn repl_uses_custom_prompts() {
    let out = run_stdin(
        &["-e", "_PROMPT = '$ ' _PROMPT2 = '+ '", "-i"],
        "if true then\nend\n",
    );
    assert_ok(&out, "$ + $ \n");
}

#[test]
fn repl_lines_may_await() {
    let input = "system.suspend(0.01)\nspawn.call(function() system.suspend(0.05) print('background') end)\nprint('line')\n";
    let out = run_stdin(&["-i"], input);
    assert_eq!(out.stderr, "");
    assert_eq!(out.status, 0);
    assert!(
        out.stdout.starts_with("> true\n> thread: "),
        "{:?}",
        out.stdout
    );
    // While stdin is read by the C library (no system.stdin yet) reading
    // blocks the loop, so the order of the last lines is not checked.
    assert!(out.stdout.contains("\n> line\n> \n"), "{:?}", out.stdout);
    assert!(out.stdout.contains("background\n"), "{:?}", out.stdout);
}

#[test]
fn repl_after_script_and_version() {
    let out = run_stdin(&["-i", "args.lua", "a"], "return arg[0], ...\n");
    let expected = format!(
        "-2\t{}\n-1\t-i\n0\targs.lua\n1\ta\n...\t1\ta\n> args.lua\n> \n",
        prog()
    );
    assert_ok(&out, &expected);
    assert_ok(
        &run_stdin(&["-v", "-i"], "return 1\n"),
        &format!("{VERSION}> 1\n> \n"),
    );
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

/// The REPL waits for input on the worker pool: a coroutine of the script
/// keeps running while no line has arrived yet.
#[test]
fn repl_does_not_block_other_coroutines() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    let mut child = Command::new(prog())
        .args([
            "-e",
            "spawn.call(function() for i = 1, 3 do system.suspend(0.05) io.write('tick', i, ' ') io.flush() end end)",
            "-i",
        ])
        .current_dir(dir)
        .env_remove("COUTIL_INIT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run coutil");
    // No input for a while: the ticks must be printed meanwhile.
    std::thread::sleep(Duration::from_millis(600));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"return 'line'\n").unwrap();
    drop(stdin);
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < TIMEOUT, "coutil did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let ticks = stdout.find("tick3").expect("ticks missing");
    let result = stdout.find("line").expect("result missing");
    assert!(ticks < result, "ticks came after the input: {stdout:?}");
}

/// The command exports the Lua API, so native modules of the system's Lua
/// packages load in it (Debian's `lua-luv`; skipped when not installed).
#[test]
fn native_modules_of_the_system_load() {
    let luv = format!(
        "/usr/lib/{}-linux-gnu/lua/5.4/luv.so",
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
        .env_remove("LUA_CPATH_5_4")
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
        "print(select(2, require 'coutil.console'), select('#', require 'coutil.console'))",
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
