//! The `coutil` command's REPL: evaluating lines, continuation, prompts,
//! errors, awaiting, other coroutines running while it waits for input,
//! Ctrl-C (`SIGINT`) during a statement, and, through a pseudo-terminal
//! (python3's `pty`), line editing, history and Ctrl-C at the prompt.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

// ---- REPL ----

#[test]
fn repl_evaluates_lines() {
    let input = "x = 1\nreturn x + 1\nx, 'two'\nprint('p')\n\n";
    let out = run_stdin(&["-i"], input);
    assert_ok(&out, &format!("{}> > 2\n> 1\ttwo\n> p\n> > \n", version()));
}

#[test]
fn repl_continues_incomplete_statements() {
    let input = "for i = 1, 2 do\nprint(i)\nend\nlocal t = {\n1,\n}\nreturn 1 +\n2\n";
    let out = run_stdin(&["-i"], input);
    let stdout = format!("{}> >> >> 1\n2\n> >> >> > >> 3\n> \n", version());
    if cfg!(feature = "lua55") {
        assert_eq!(out.stdout, stdout);
        assert_eq!(out.stderr, LOCALS_WARNING);
        assert_eq!(out.status, 0);
    } else {
        assert_ok(&out, &stdout);
    }
}

const LOCALS_WARNING: &str = "warning: locals do not survive across lines in interactive mode\n";

/// Lua 5.5's `lua` warns of a statement that starts with `local` (not of
/// a name that starts with it); 5.4's does not.
#[test]
fn repl_warns_of_locals_under_lua_55() {
    let out = run_stdin(
        &["-i"],
        "local x = 1\n  local\ny = 2\nlocalx = 3\nprint(x, localx)\n",
    );
    assert_eq!(out.stdout, format!("{}> > >> > > nil\t3\n> \n", version()));
    let warnings = if cfg!(feature = "lua55") { 2 } else { 0 };
    assert_eq!(out.stderr, LOCALS_WARNING.repeat(warnings));
}

#[test]
fn repl_reports_errors_without_program_name() {
    let out = run_stdin(&["-i"], "error('oops')\nprint('still here')\n= 1\n");
    assert_eq!(out.stdout, format!("{}> > still here\n> > \n", version()));
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
    assert_eq!(out.stdout, format!("{}> >> > \n", version()));
    assert_eq!(out.stderr, "stdin:1: 'end' expected near <eof>\n");
}

#[test]
fn repl_uses_custom_prompts() {
    let out = run_stdin(
        &["-e", "_PROMPT = '$ ' _PROMPT2 = '+ '", "-i"],
        "if true then\nend\n",
    );
    assert_ok(&out, &format!("{}$ + $ \n", version()));
}

#[test]
fn repl_lines_may_await() {
    let input = "system.suspend(0.01)\nspawn.call(function() system.suspend(0.05) print('background') end)\nprint('line')\n";
    let out = run_stdin(&["-i"], input);
    assert_eq!(out.stderr, "");
    assert_eq!(out.status, 0);
    assert!(
        out.stdout
            .starts_with(&format!("{}> true\n> thread: ", version())),
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
        "{}-2\t{}\n-1\t-i\n0\targs.lua\n1\ta\n...\t1\ta\n> args.lua\n> \n",
        version(),
        prog()
    );
    assert_ok(&out, &expected);
    assert_ok(
        &run_stdin(&["-v", "-i"], "return 1\n"),
        &format!("{}> 1\n> \n", version()),
    );
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

/// `coutil -i` with pipes, read as it goes.
struct Interactive {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: std::sync::mpsc::Receiver<u8>,
    seen: String,
}

impl Interactive {
    fn start() -> Interactive {
        let mut child = Command::new(prog())
            .arg("-i")
            .env_remove("COUTIL_INIT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run coutil");
        let (tx, rx) = std::sync::mpsc::channel();
        let mut out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut byte = [0u8];
            while out.read(&mut byte).unwrap_or(0) == 1 && tx.send(byte[0]).is_ok() {}
        });
        let stdin = child.stdin.take();
        Interactive {
            child,
            stdin,
            stdout: rx,
            seen: String::new(),
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits until the standard output has shown `text`.
    fn expect(&mut self, text: &str) {
        let start = Instant::now();
        while !self.seen.contains(text) {
            let left = TIMEOUT.saturating_sub(start.elapsed());
            match self.stdout.recv_timeout(left) {
                Ok(b) => self.seen.push(b as char),
                Err(_) => panic!("no {text:?} in {:?}", self.seen),
            }
        }
    }

    fn interrupt(&self) {
        // SAFETY: sends SIGINT to our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
    }

    /// Closes stdin; returns the exit status and the standard error.
    fn finish(mut self) -> (i32, String) {
        drop(self.stdin.take());
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < TIMEOUT, "coutil did not end");
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status.code().expect("killed by a signal"), stderr)
    }
}

/// Ctrl-C (`SIGINT`) while a statement waits in an await or computes
/// interrupts it, as `lua` does, and the REPL goes on.
#[test]
fn sigint_interrupts_the_running_statement() {
    let mut repl = Interactive::start();
    repl.send("print('waiting') system.suspend(60)\n");
    repl.expect("waiting\n");
    std::thread::sleep(Duration::from_millis(100));
    repl.interrupt();
    repl.send("print('busy') while true do end\n");
    repl.expect("busy\n");
    std::thread::sleep(Duration::from_millis(100));
    repl.interrupt();
    repl.send("print('after')\n");
    repl.expect("after\n");
    let (status, stderr) = repl.finish();
    assert_eq!(status, 0);
    let reports: Vec<&str> = stderr.split_inclusive("[C]: in ?\n").collect();
    assert_eq!(reports.len(), 2, "{stderr:?}");
    for report in reports {
        // With a position when the hook fired in a function the chunk
        // called (the await), without when in the chunk itself, as in lua.
        let report = report.strip_prefix("stdin:1: ").unwrap_or(report);
        assert!(
            report.starts_with("interrupted!\nstack traceback:\n")
                && report.ends_with("\tstdin:1: in main chunk\n\t[C]: in ?\n"),
            "{stderr:?}"
        );
    }
}

/// Editing, history and Ctrl-C at the prompt need a terminal: a python3
/// script drives the REPL through a pseudo-terminal (skipped without it).
#[test]
fn repl_in_a_terminal() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/pty_repl.py");
    let Ok(out) = Command::new("python3").arg(script).arg(prog()).output() else {
        eprintln!("SKIPPED: python3 not found");
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "pty REPL: ok\n");
}
