//! What the tests of the `coutil` command share: running the built binary
//! in `tests/console/` (fixture scripts) with a clean environment, and
//! checking stdout, stderr and the exit status.
#![allow(dead_code)] // each test binary uses part of it

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The release of the Lua built into the command (`5.5` in the build of
/// feature `vendored55`), as in `lua5.4` and `lua/5.4/`.
pub const RELEASE: &str = if cfg!(feature = "lua55") {
    "5.5"
} else {
    "5.4"
};

/// `RELEASE` as in the names of environment variables (`LUA_INIT_5_4`).
pub fn release_var(name: &str) -> String {
    format!("{name}_{}", RELEASE.replace('.', "_"))
}

/// How a traceback names the standard function `error`: 5.5 says that it
/// is a global.
pub const ERROR_FRAME: &str = if cfg!(feature = "lua55") {
    "[C]: in global 'error'"
} else {
    "[C]: in function 'error'"
};

/// The version line (checked by `version_line_names_coutil_and_the_lua_release`).
pub fn version() -> String {
    let out = Command::new(prog()).arg("-v").output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

pub fn prog() -> &'static str {
    env!("CARGO_BIN_EXE_coutil")
}

pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// One invocation: arguments, `COUTIL_INIT` (always set or removed so the
/// caller's environment does not leak in) and optional stdin data (else
/// stdin is `/dev/null`).
pub struct Run<'a> {
    pub args: &'a [&'a str],
    pub init: Option<&'a str>,
    pub stdin: Option<&'a str>,
}

pub fn run(args: &[&str]) -> Output {
    Run {
        args,
        init: None,
        stdin: None,
    }
    .go()
}

pub fn run_init(args: &[&str], init: &str) -> Output {
    Run {
        args,
        init: Some(init),
        stdin: None,
    }
    .go()
}

pub fn run_stdin(args: &[&str], stdin: &str) -> Output {
    Run {
        args,
        init: None,
        stdin: Some(stdin),
    }
    .go()
}

impl Run<'_> {
    pub fn go(&self) -> Output {
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
pub fn assert_ok(out: &Output, stdout: &str) {
    assert_eq!(out.stderr, "", "unexpected stderr");
    assert_eq!(out.stdout, stdout);
    assert_eq!(out.status, 0);
}

/// Asserts a reported error: status 1 and stderr starting with `prefix`,
/// followed by a traceback.
pub fn assert_reported(out: &Output, prefix: &str) {
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

/// Asserts an error reported as `lua` does for code that cannot be loaded:
/// one line, no traceback, status 1.
pub fn assert_one_line(out: &Output, line: &str) {
    assert_eq!(out.stderr, format!("{}: {line}\n", prog()));
    assert_eq!(out.status, 1);
}

/// Asserts a usage error: the message, the usage text, nothing run.
pub fn assert_usage(out: &Output, message: &str) {
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
