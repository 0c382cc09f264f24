//! The REPL's line editor (the command's build only): rustyline, used when
//! standard input and output are both terminals.
//!
//! `readline` is an await function whose job runs the editor on the worker
//! pool, so the loop and the other coroutines go on while the user types;
//! the editor lives in a process-wide slot because only one REPL reads the
//! terminal. History is kept in memory and, once `history(path)` named a
//! file, appended to it after each statement. While the editor has the
//! terminal in raw mode, an `atexit` handler stands ready to give the
//! terminal its settings back should the process exit meanwhile (another
//! coroutine calling `os.exit`).

use std::ffi::c_int;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Once};

use rustyline::config::Config;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{DefaultEditor, Editor};

use crate::cfn;
use crate::lua::awaiting::{self, Await, state_loop};
use crate::lua::{Error, Lua, Reg, Ret, fail};
use crate::runtime::{Outcome, Wait};

pub const FUNCTIONS: &[Reg] = &[
    (c"readline", crate::afn!(readline)),
    (c"history", cfn!(history)),
    (c"addhistory", cfn!(addhistory)),
];

struct Line {
    editor: Option<DefaultEditor>,
    /// The history file, until saving to it failed.
    file: Option<PathBuf>,
}

static LINE: Mutex<Line> = Mutex::new(Line {
    editor: None,
    file: None,
});

/// The terminal's settings before the editor first read (`atexit`).
static TERMINAL: Mutex<Option<libc::termios>> = Mutex::new(None);
/// Is the editor reading (terminal in raw mode)?
static READING: AtomicBool = AtomicBool::new(false);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

extern "C" fn restore_terminal() {
    if READING.load(Ordering::SeqCst)
        && let Ok(saved) = TERMINAL.try_lock()
        && let Some(settings) = saved.as_ref()
    {
        // SAFETY: sets descriptor 0's settings to a copy taken from it.
        unsafe { libc::tcsetattr(0, libc::TCSADRAIN, settings) };
    }
}

/// The message of an editor's failure: libuv's text for OS errors, as
/// every other function reports them.
fn message(e: &ReadlineError) -> std::borrow::Cow<'static, str> {
    match e {
        ReadlineError::Io(e) => fail::text(fail::code_of(e)).into(),
        ReadlineError::Errno(e) => fail::text(*e as i32).into(),
        other => other.to_string().into(),
    }
}

/// The editor, made on first use.
fn editor(line: &mut Line) -> Result<&mut DefaultEditor, ReadlineError> {
    if line.editor.is_none() {
        static ATEXIT: Once = Once::new();
        ATEXIT.call_once(|| {
            // SAFETY: tcgetattr fills `t`; `restore_terminal` is a plain
            // extern "C" function that lives as long as the process.
            unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(0, &mut t) == 0 {
                    *lock(&TERMINAL) = Some(t);
                    libc::atexit(restore_terminal);
                }
            }
        });
        let config = Config::builder()
            .max_history_size(1000)?
            .history_ignore_dups(true)?
            .auto_add_history(false)
            .build();
        line.editor = Some(Editor::with_history(config, DefaultHistory::new())?);
    }
    Ok(line.editor.as_mut().expect("made above"))
}

/// line | nil | false, "interrupted" | false, msg = console.readline(prompt)
fn readline(lua: Lua) -> Result<Await, Error> {
    awaiting::require_coroutine(lua)?;
    let prompt = String::from_utf8_lossy(lua.arg_bytes(1)?).into_owned();
    let job = Box::new(move || {
        let mut line = lock(&LINE);
        let result = editor(&mut line).and_then(|ed| {
            READING.store(true, Ordering::SeqCst);
            let result = ed.readline(&prompt);
            READING.store(false, Ordering::SeqCst);
            result
        });
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
    let result = outcome.and_then(|o| o.downcast::<Result<String, ReadlineError>>().ok());
    match result.map(|r| *r) {
        Some(Ok(text)) => {
            co.push_bytes(text.as_bytes());
            1
        }
        Some(Err(ReadlineError::Eof)) => {
            co.push_nil();
            1
        }
        Some(Err(ReadlineError::Interrupted)) => {
            co.push_bool(false);
            co.push_bytes(b"interrupted");
            2
        }
        Some(Err(e)) => {
            co.push_bool(false);
            co.push_bytes(message(&e).as_bytes());
            2
        }
        None => {
            co.push_bool(false);
            co.push_bytes(b"unknown error");
            2
        }
    }
}

/// ok | false, msg = console.history(path): loads the history file (a
/// missing one is fine) and appends to it from now on.
fn history(lua: Lua) -> Ret {
    let path = PathBuf::from(String::from_utf8_lossy(lua.arg_bytes(1)?).into_owned());
    let Ok(mut line) = LINE.try_lock() else {
        lua.push_bool(false);
        lua.push_bytes(b"the editor is busy");
        return Ok(2);
    };
    let result = editor(&mut line).and_then(|ed| match ed.load_history(&path) {
        Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    });
    match result {
        Ok(()) => {
            line.file = Some(path);
            lua.push_bool(true);
            Ok(1)
        }
        Err(e) => {
            lua.push_bool(false);
            lua.push_bytes(message(&e).as_bytes());
            Ok(2)
        }
    }
}

/// ok | false, msg = console.addhistory(text): adds an entry and appends it
/// to the history file; after the first failure the file is left alone.
fn addhistory(lua: Lua) -> Ret {
    let text = String::from_utf8_lossy(lua.arg_bytes(1)?).into_owned();
    let Ok(mut line) = LINE.try_lock() else {
        lua.push_bool(true);
        return Ok(1);
    };
    let line = &mut *line;
    let file = line.file.clone();
    let result = editor(line).and_then(|ed| {
        ed.add_history_entry(text)?;
        match &file {
            Some(path) => ed.append_history(path),
            None => Ok(()),
        }
    });
    match result {
        Ok(()) => {
            lua.push_bool(true);
            Ok(1)
        }
        Err(e) => {
            line.file = None;
            lua.push_bool(false);
            lua.push_bytes(message(&e).as_bytes());
            Ok(2)
        }
    }
}
