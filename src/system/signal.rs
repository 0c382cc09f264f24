//! `system.emitsig` and `system.awaitsig` (spec/process.md §1), and the
//! process-wide signal delivery they share with other parts of the library
//! (e.g. child exits for `system.execute`).
//!
//! Delivery: [`subscribe`] registers a `notify` function for one signal.
//! While a signal has subscriptions, its disposition is an async-signal-safe
//! handler that only writes the signal number to a process-wide self-pipe
//! (the disposition found before is saved); when its last subscription is
//! dropped, the saved disposition is restored (normally `SIG_DFL`). A
//! dispatcher thread, started on first use, reads the pipe and calls the
//! `notify` functions of the signal's current subscriptions. Signals that
//! arrive while nobody subscribes are handled by their normal disposition,
//! and nothing is remembered.
//!
//! `awaitsig` subscribes for each waiting coroutine with a `notify` that
//! completes the coroutine's `External` operation through a
//! [`crate::runtime::Remote`], which wakes the poll of that coroutine's own
//! loop: several coroutines, and several Lua states in other threads, may
//! await the same signal. The subscriptions of a Lua state live in a
//! registry userdata ([`Watch`]) keyed by operation id; the await's
//! continuation drops its subscription (however it was resumed), and the
//! `Watch` is collected with the state, so a closed state leaves no handler
//! installed. A subscription whose coroutine was closed by
//! `coroutine.close` is pruned once its operation is released.

use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::lua::awaiting::{self, Await, Resumed, state_loop};
use crate::lua::class::{self, Class, Object};
use crate::lua::{Error, Lua, Reg, Ret, fail, ffi};
use crate::runtime::{OpId, Outcome, Remote, Wait};
use crate::system::errno::{errno as last_errno, errno_location};
use crate::system::sys_loop;
use crate::{afn, cfn, kfn};

pub const FUNCTIONS: &[Reg] = &[(c"emitsig", cfn!(emitsig)), (c"awaitsig", afn!(awaitsig))];

#[cfg(any(target_os = "linux", target_os = "android"))]
const SIGPOLL: Option<c_int> = Some(libc::SIGPOLL);
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SIGPOLL: Option<c_int> = None;

/// The signal names, in lookup order (number → name takes the first);
/// `None` for signals this platform does not have.
const SIGNALS: &[(&str, Option<c_int>)] = &[
    ("TERMINATE", Some(libc::SIGKILL)),
    ("STOP", Some(libc::SIGSTOP)),
    ("interrupt", Some(libc::SIGINT)),
    ("terminate", Some(libc::SIGTERM)),
    ("stop", Some(libc::SIGTSTP)),
    ("continue", Some(libc::SIGCONT)),
    ("hangup", Some(libc::SIGHUP)),
    ("stdinoff", Some(libc::SIGTTIN)),
    ("stdoutoff", Some(libc::SIGTTOU)),
    ("winresize", Some(libc::SIGWINCH)),
    ("quit", Some(libc::SIGQUIT)),
    ("child", Some(libc::SIGCHLD)),
    ("abort", Some(libc::SIGABRT)),
    ("brokenpipe", Some(libc::SIGPIPE)),
    ("urgentsock", Some(libc::SIGURG)),
    ("userdef1", Some(libc::SIGUSR1)),
    ("userdef2", Some(libc::SIGUSR2)),
    ("trap", Some(libc::SIGTRAP)),
    ("filelimit", Some(libc::SIGXFSZ)),
    ("clocktime", Some(libc::SIGALRM)),
    ("cpulimit", Some(libc::SIGXCPU)),
    ("cputotal", Some(libc::SIGPROF)),
    ("cputime", Some(libc::SIGVTALRM)),
    ("polling", SIGPOLL),
    ("sysargerr", Some(libc::SIGSYS)),
    ("break", None),
];

/// The signal number of a name of this platform.
pub fn lookup(name: &[u8]) -> Option<c_int> {
    SIGNALS
        .iter()
        .find(|(n, _)| n.as_bytes() == name)
        .and_then(|&(_, signo)| signo)
}

/// The first name of signal `signo` in the table order.
pub fn name_of(signo: c_int) -> Option<&'static str> {
    SIGNALS
        .iter()
        .find(|&&(_, s)| s == Some(signo))
        .map(|&(n, _)| n)
}

fn invalid_signal(arg: c_int, name: &[u8]) -> Error {
    let mut text = b"invalid signal '".to_vec();
    text.extend_from_slice(name);
    text.push(b'\'');
    Error::Arg(arg, text.into())
}

// ---------------------------------------------------------------------
// Process-wide delivery

/// Called on the dispatcher thread with the signal number, once per
/// delivery of the signal while the subscription exists. It must not block
/// for long; it may subscribe or unsubscribe.
pub type Notify = Arc<dyn Fn(c_int) + Send + Sync>;

struct Sub {
    key: u64,
    signo: c_int,
    notify: Notify,
}

struct Installed {
    count: usize,
    /// The disposition found when the handler was installed.
    previous: libc::sigaction,
}

#[derive(Default)]
struct Registry {
    next: u64,
    subs: Vec<Sub>,
    installed: HashMap<c_int, Installed>,
}

// SAFETY: `libc::sigaction` is plain data (a handler address, a mask and
// flags); it is only passed back to `sigaction(2)`.
unsafe impl Send for Installed {}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Write end of the self-pipe (non-blocking), or -1 before it exists.
static PIPE_WR: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// The signal handler: writes the signal number to the self-pipe. Only
/// async-signal-safe calls; errno is preserved.
extern "C" fn on_signal(signo: c_int) {
    let fd = PIPE_WR.load(std::sync::atomic::Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    let errno = errno_location();
    // SAFETY: `errno` is this thread's errno; `write` of one byte from a
    // local to a descriptor that is never closed. A full pipe (EAGAIN)
    // drops the byte: the dispatcher is behind anyway.
    unsafe {
        let saved = *errno;
        let byte = signo as u8;
        libc::write(fd, (&byte as *const u8).cast::<c_void>(), 1);
        *errno = saved;
    }
}

/// Creates the self-pipe and starts the dispatcher thread, once.
fn start() -> Result<(), c_int> {
    static STARTED: OnceLock<Result<(), c_int>> = OnceLock::new();
    *STARTED.get_or_init(|| {
        let mut fds = [0 as c_int; 2];
        // SAFETY: `fds` has room for the two descriptors.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(last_errno());
        }
        for (fd, nonblock) in [(fds[0], false), (fds[1], true)] {
            // SAFETY: fcntl on descriptors we just created.
            unsafe {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                if nonblock {
                    let flags = libc::fcntl(fd, libc::F_GETFL);
                    libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
                }
            }
        }
        let rd = fds[0];
        let spawned = std::thread::Builder::new()
            .name("coutil-signals".into())
            .spawn(move || dispatch(rd));
        if let Err(e) = spawned {
            // SAFETY: closing the descriptors we created, unused elsewhere.
            unsafe {
                libc::close(fds[0]);
                libc::close(fds[1]);
            }
            return Err(e.raw_os_error().unwrap_or(libc::EAGAIN));
        }
        crate::pin_library();
        PIPE_WR.store(fds[1], std::sync::atomic::Ordering::Relaxed);
        Ok(())
    })
}

/// The dispatcher thread: forwards each signal read from the pipe to the
/// subscriptions of that signal at that moment.
fn dispatch(rd: c_int) {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reads into a local buffer from our own pipe.
        let n = unsafe { libc::read(rd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            if n < 0 && last_errno() == libc::EINTR {
                continue;
            }
            return; // cannot happen: the write end is never closed
        }
        for &byte in &buf[..n as usize] {
            let signo = byte as c_int;
            let notifies: Vec<Notify> = registry()
                .subs
                .iter()
                .filter(|s| s.signo == signo)
                .map(|s| s.notify.clone())
                .collect();
            for notify in notifies {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| notify(signo)));
            }
        }
    }
}

/// A registration made by [`subscribe`]; dropping it unsubscribes.
pub struct Subscription {
    key: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut reg = registry();
        let Some(pos) = reg.subs.iter().position(|s| s.key == self.key) else {
            return;
        };
        let signo = reg.subs.swap_remove(pos).signo;
        let restore = match reg.installed.get_mut(&signo) {
            Some(inst) => {
                inst.count -= 1;
                inst.count == 0
            }
            None => false,
        };
        if restore && let Some(inst) = reg.installed.remove(&signo) {
            // SAFETY: restores the disposition saved by `subscribe`.
            unsafe { libc::sigaction(signo, &inst.previous, std::ptr::null_mut()) };
        }
    }
}

/// Calls `notify` for every delivery of `signo` until the subscription is
/// dropped; installs the handler of `signo` if it is the first one. Fails
/// with an errno value (e.g. `EINVAL` for a signal that cannot be caught).
pub fn subscribe(signo: c_int, notify: Notify) -> Result<Subscription, c_int> {
    start()?;
    let mut reg = registry();
    let inst = match reg.installed.entry(signo) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(v) => {
            // SAFETY: a zeroed sigaction is a valid value to fill in; the
            // handler only does async-signal-safe work.
            let previous = unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(c_int) as libc::sighandler_t;
                action.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                let mut previous: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signo, &action, &mut previous) != 0 {
                    return Err(last_errno());
                }
                previous
            };
            v.insert(Installed { count: 0, previous })
        }
    };
    inst.count += 1;
    reg.next += 1;
    let key = reg.next;
    reg.subs.push(Sub { key, signo, notify });
    Ok(Subscription { key })
}

// ---------------------------------------------------------------------
// Lua functions

/// true | false, msg, code = system.emitsig(pid, signal)
fn emitsig(lua: Lua) -> Ret {
    let pid = lua.arg_integer(1)?;
    let pid = libc::pid_t::try_from(pid).map_err(|_| Error::arg(1, "out of range"))?;
    let signo = if lua.type_of(2) == ffi::LUA_TNUMBER {
        // An impossible number makes kill fail with EINVAL.
        c_int::try_from(lua.arg_integer(2)?).unwrap_or(-1)
    } else {
        let name = lua.arg_bytes(2)?;
        lookup(name).ok_or_else(|| invalid_signal(2, name))?
    };
    // SAFETY: kill only takes plain integers.
    if unsafe { libc::kill(pid, signo) } == 0 {
        lua.push_bool(true);
        Ok(1)
    } else {
        Ok(fail::push(lua, last_errno()))
    }
}

/// The subscriptions of the awaits of one Lua state, by operation id.
struct Watch {
    subs: HashMap<u64, Subscription>,
}

impl Object for Watch {
    const CLASS: &'static Class = &Class {
        name: c"coutil:signalwatch",
        methods: &[],
        meta: &[],
    };
}

static WATCH_KEY: u8 = 0;

/// The `Watch` of `lua`'s state, if created; pushes nothing.
fn find_watch<'a>(lua: Lua) -> Option<&'a mut Watch> {
    // SAFETY: WATCH_KEY only ever holds the Watch.
    unsafe { class::find_kept(lua, &WATCH_KEY) }
}

/// The `Watch` of `lua`'s state, created on first use; pushes nothing.
fn watch<'a>(lua: Lua) -> &'a mut Watch {
    let make = || Watch {
        subs: HashMap::new(),
    };
    // SAFETY: as above.
    unsafe { class::kept(lua, &WATCH_KEY, make) }
}

/// Drops subscriptions whose operation was released without its
/// continuation running (the coroutine was closed).
fn prune(lua: Lua, w: &mut Watch) {
    let sl = state_loop(lua);
    let stale: Vec<u64> = {
        let ops = sl.ops.borrow();
        w.subs
            .keys()
            .copied()
            .filter(|&bits| ops.waiter(OpId::from_bits(bits)).is_none())
            .collect()
    };
    for bits in stale {
        w.subs.remove(&bits);
    }
}

/// name = system.awaitsig(signal)
fn awaitsig(lua: Lua) -> Result<Await, Error> {
    awaiting::require_coroutine(lua)?;
    let name = lua.arg_bytes(1)?;
    let signo = match lookup(name) {
        Some(s) if s != libc::SIGKILL && s != libc::SIGSTOP => s,
        _ => return Err(invalid_signal(1, name)),
    };
    let w = watch(lua);
    prune(lua, w);
    let slot: Arc<Mutex<Option<Remote>>> = Arc::new(Mutex::new(None));
    let target = slot.clone();
    let notify: Notify = Arc::new(move |signo| {
        let remote = target.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(remote) = remote {
            remote.complete(Box::new(signo));
        }
    });
    let sub = subscribe(signo, notify).map_err(|e| Error::msg(fail::text(e)))?;
    let sl = sys_loop(lua);
    let id = awaiting::wait(lua, sl, Wait::External, deliver)?;
    let remote = sl.ops.borrow_mut().remote(id);
    match remote {
        Ok(remote) => {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(remote);
            w.subs.insert(id.to_bits(), sub);
        }
        Err(e) => {
            drop(sub);
            awaiting::complete(lua, id, Some(Box::new(e)));
        }
    }
    Ok(Await::Keep(id, 0, kfn!(awaitsig_k)))
}

/// Continuation of `awaitsig`: the await is over, however it ended.
fn awaitsig_k(lua: Lua, ctx: ffi::lua_KContext) -> Result<Await, Error> {
    let resumed = awaiting::resumed(lua, 0, ctx);
    if let Some(w) = find_watch(lua) {
        w.subs.remove(&(ctx as u64));
        prune(lua, w);
    }
    match resumed {
        Resumed::User(n) => Ok(Await::Done(n)),
        Resumed::Loop => Ok(Await::Done(lua.top() - 1)),
    }
}

fn deliver(co: Lua, outcome: Option<Outcome>) -> c_int {
    let Some(outcome) = outcome else {
        return fail::push(co, fail::UNKNOWN);
    };
    match outcome.downcast::<c_int>() {
        Ok(signo) => {
            match name_of(*signo) {
                Some(name) => co.push_bytes(name.as_bytes()),
                None => co.push_integer(*signo as i64),
            }
            1
        }
        Err(other) => match other.downcast::<std::io::Error>() {
            Ok(e) => fail::push_io(co, &e),
            Err(_) => fail::push(co, libc::ECANCELED),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(lookup(b"userdef1"), Some(libc::SIGUSR1));
        assert_eq!(lookup(b"break"), None);
        assert_eq!(lookup(b"nothing"), None);
        assert_eq!(name_of(libc::SIGKILL), Some("TERMINATE"));
        assert_eq!(name_of(libc::SIGCHLD), Some("child"));
    }

    #[test]
    fn delivery_reaches_subscribers_and_restores_the_disposition() {
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = Mutex::new(tx);
        let sub = subscribe(
            libc::SIGURG,
            Arc::new(move |s| {
                let _ = tx.lock().unwrap().send(s);
            }),
        )
        .unwrap();
        // SAFETY: sends a signal this process now handles.
        unsafe { libc::kill(libc::getpid(), libc::SIGURG) };
        let got = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(got, libc::SIGURG);
        drop(sub);
        // SAFETY: reads the current disposition only.
        let current = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGURG, std::ptr::null(), &mut old);
            old.sa_sigaction
        };
        assert_ne!(
            current,
            on_signal as extern "C" fn(c_int) as libc::sighandler_t
        );
    }

    /// Runs `code` in state `l`; returns its first result as a string.
    unsafe fn run(l: *mut ffi::lua_State, code: &CStr) -> String {
        // SAFETY: `l` is a valid state owned by the caller.
        unsafe {
            ffi::lua_settop(l, 0);
            let status = ffi::luaL_loadstring(l, code.as_ptr());
            let status = if status == ffi::LUA_OK {
                ffi::lua_pcall(l, 0, 1, 0)
            } else {
                status
            };
            let text = Lua::from_raw(l).to_bytes(-1).unwrap_or(b"(no string)");
            let text = String::from_utf8_lossy(text).into_owned();
            assert_eq!(status, ffi::LUA_OK, "{text}");
            text
        }
    }

    #[test]
    fn states_in_threads_get_their_own_wake_ups() {
        const STATES: usize = 3;
        let barrier = Arc::new(std::sync::Barrier::new(STATES + 1));
        let threads: Vec<_> = (0..STATES)
            .map(|_| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    // SAFETY: a new state used by this thread only, closed
                    // at the end.
                    unsafe {
                        let l = ffi::luaL_newstate();
                        ffi::luaL_openlibs(l);
                        crate::preload(l);
                        run(
                            l,
                            c"system = require 'coutil.system'
                            co = coroutine.create(function()
                                got = system.awaitsig('winresize')
                            end)
                            coroutine.resume(co)
                            return 'waiting'",
                        );
                        barrier.wait();
                        let got = run(l, c"system.run() return got");
                        // Closing with an await pending cancels it.
                        run(l, c"coroutine.resume(coroutine.create(system.awaitsig), 'winresize') return ''");
                        ffi::lua_close(l);
                        got
                    }
                })
            })
            .collect();
        barrier.wait();
        // SAFETY: SIGWINCH is handled (the states await it) or ignored.
        unsafe { libc::kill(libc::getpid(), libc::SIGWINCH) };
        for t in threads {
            assert_eq!(t.join().unwrap(), "winresize");
        }
        assert!(registry().subs.iter().all(|s| s.signo != libc::SIGWINCH));
    }
}
