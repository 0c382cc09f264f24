//! Ctrl-C while a REPL statement runs, as `lua.c` does it: a `SIGINT`
//! handler, installed only while the statement runs, sets a hook on the
//! statement's coroutine that raises `interrupted!` at its next Lua
//! instruction (`lua_sethook` is meant to be called asynchronously, which
//! is how `lua.c` uses it). That stops a statement busy in Lua code.
//!
//! A statement waiting in an await runs no instruction, so the REPL also
//! keeps a helper coroutine in [`awaitint`] meanwhile: the handler writes
//! a byte to a pipe, a thread of ours blocked on that pipe completes the
//! helper's operation (an async-signal-safe handler cannot touch the
//! loop), and the helper resumes the statement's coroutine explicitly,
//! which cancels its await, so that the hook fires.
//!
//! As in `lua.c`, the handler resets itself: a second Ctrl-C before the
//! statement ends kills the process. Between statements `SIGINT` has the
//! disposition it had before (the default: the terminal is in raw mode
//! while the line editor reads, so Ctrl-C at the prompt is a key there).

use std::ffi::c_int;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::lua::awaiting::{self, Await, state_loop};
use crate::lua::{Error, LUA_TTHREAD, Lua, Ret, interrupt};
use crate::runtime::{Outcome, Remote, Wait};

/// Write end of the pipe to the waking thread, -1 before it exists.
static PIPE: AtomicI32 = AtomicI32::new(-1);
/// The helper's operation, completed by the waking thread.
static WAITER: Mutex<Option<Remote>> = Mutex::new(None);
/// The disposition of `SIGINT` before [`catchint`].
static PREVIOUS: Mutex<Option<libc::sigaction>> = Mutex::new(None);

/// What the helper's operation completes with.
struct Interrupted;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

extern "C" fn on_sigint(_: c_int) {
    // SAFETY: only async-signal-safe work: atomics, `interrupt::request`
    // (lua_sethook), `write`; errno is kept.
    unsafe {
        let errno = *libc::__errno_location();
        interrupt::request();
        let fd = PIPE.load(Ordering::SeqCst);
        if fd >= 0 {
            libc::write(fd, [1u8].as_ptr().cast(), 1);
        }
        *libc::__errno_location() = errno;
    }
}

/// Makes the pipe and the thread that turns its bytes into completions.
fn start_waker() -> std::io::Result<()> {
    if PIPE.load(Ordering::SeqCst) >= 0 {
        return Ok(());
    }
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let [reader, writer] = fds;
    std::thread::Builder::new()
        .name("coutil-sigint".into())
        .spawn(move || {
            let mut byte = 0u8;
            loop {
                // SAFETY: reads one byte into `byte`.
                let n = unsafe { libc::read(reader, (&raw mut byte).cast(), 1) };
                if n < 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                {
                    continue;
                }
                if n <= 0 {
                    break;
                }
                if let Some(remote) = lock(&WAITER).take() {
                    remote.complete(Box::new(Interrupted));
                }
            }
        })?;
    PIPE.store(writer, Ordering::SeqCst);
    Ok(())
}

/// console.catchint(co): until `releaseint`, Ctrl-C interrupts `co`.
pub fn catchint(lua: Lua) -> Ret {
    if lua.type_of(1) != LUA_TTHREAD {
        return Err(Error::arg(1, "coroutine expected"));
    }
    start_waker().map_err(|e| Error::io(&e))?;
    // `co` is a thread (checked); the REPL keeps it alive until `releaseint`.
    interrupt::set_target(lua, 1);
    // SAFETY: the sigaction records are plain data.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as extern "C" fn(c_int) as usize;
        action.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGINT, &action, &mut old) == 0 {
            lock(&PREVIOUS).get_or_insert(old);
        }
    }
    Ok(0)
}

/// console.releaseint(): the statement is over; `SIGINT` as before.
pub fn releaseint(lua: Lua) -> Ret {
    interrupt::clear();
    if let Some(old) = lock(&PREVIOUS).take() {
        // SAFETY: restores the disposition saved by `catchint`.
        unsafe { libc::sigaction(libc::SIGINT, &old, null_mut()) };
    }
    // Dropping the remote completes the helper's wait (as abandoned).
    drop(lock(&WAITER).take());
    let _ = lua;
    Ok(0)
}

/// interrupted = console.awaitint(): waits for Ctrl-C during the statement;
/// `false` when `releaseint` ended the wait first.
pub fn awaitint(lua: Lua) -> Result<Await, Error> {
    awaiting::require_coroutine(lua)?;
    let sl = state_loop(&lua);
    let id = awaiting::wait(lua, sl, awaiting::Kind::Signal, Wait::External, deliver)?;
    let remote = sl.remote(id);
    match remote {
        Ok(remote) => *lock(&WAITER) = Some(remote),
        Err(e) => awaiting::complete(lua, id, Some(Box::new(e))),
    }
    Ok(Await::Yield(id))
}

fn deliver(co: Lua, outcome: Option<Outcome>) -> c_int {
    co.push_bool(outcome.is_some_and(|o| o.is::<Interrupted>()));
    1
}
