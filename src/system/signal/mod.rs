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
//! `awaitsig` subscribes once per coroutine and signal: the coroutine's
//! [`Listener`] completes its `External` operation through a
//! [`crate::runtime::Remote`], which wakes the poll of that coroutine's own
//! loop, so several coroutines, and several Lua states in other threads,
//! may await the same signal. The listener outlives the await: while the
//! coroutine keeps awaiting the same signal (a loop of `awaitsig` calls),
//! the handler stays installed, and arrivals between two awaits are
//! counted and returned by the next awaits, one each, as libuv calls a
//! started `uv_signal_t` once per arrival. The await's continuation queues
//! a *recheck* on the loop (it runs in the poll phase, right after the
//! deliveries of the current round, or in the next poll phase for a
//! coroutine resumed explicitly); it drops every listener whose coroutine
//! did not await again: it awaits something else, ended, or waits to be
//! collected. A coroutine awaiting another signal drops its listener at
//! once, and outside `system.run` (no recheck to come) the continuation
//! drops it. The listeners of a Lua state live in a registry userdata
//! ([`Watch`]) collected with the state, so a closed state leaves no
//! handler installed. A listener whose coroutine was closed by
//! `coroutine.close` while it waited is pruned once its operation is
//! released.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_int;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use crate::lua::awaiting::{self, Await, Resumed, state_loop};
use crate::lua::class::{self, Class, Object};
use crate::lua::{
    Error, KContext, LUA_REGISTRYINDEX, LUA_TNIL, LUA_TNUMBER, LUA_TTABLE, Lua, Reg, Ret, fail,
};
use crate::runtime::{Completions, Handler, OpId, Outcome, Readiness, Remote, SourceHandler, Wait};
use crate::system::errno::errno as last_errno;
use crate::system::sys_loop;
use crate::{afn, cfn, kfn};

mod delivery;

pub use delivery::{Notify, Subscription, subscribe};

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

/// true | false, msg, code = system.emitsig(pid, signal)
fn emitsig(lua: Lua) -> Ret {
    let pid = lua.arg_integer(1)?;
    let pid = libc::pid_t::try_from(pid).map_err(|_| Error::arg(1, "out of range"))?;
    let signo = if lua.type_of(2) == LUA_TNUMBER {
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

/// What the dispatcher thread found for one [`Listener`].
#[derive(Default)]
struct Arrivals {
    /// Completes the armed await; taken by the first arrival.
    remote: Option<Remote>,
    /// Arrivals while no await was armed (between two awaits), each
    /// returned at once by a later await of the same coroutine.
    missed: u64,
}

/// One coroutine's registration for one signal: from its first `awaitsig`
/// of that signal until it stops awaiting it (see the module doc).
struct Listener {
    signo: c_int,
    _sub: Subscription,
    arrivals: Arc<Mutex<Arrivals>>,
    /// The armed await, if any.
    op: Option<OpId>,
}

/// The listeners of one Lua state, by coroutine (thread address); also
/// the loop's recheck that drops those whose coroutine did not await
/// again.
#[derive(Default)]
struct Listeners {
    by_thread: HashMap<usize, Listener>,
    /// The recheck is queued on the loop.
    queued: bool,
}

impl SourceHandler for Listeners {
    fn ready(&mut self, _readiness: Readiness, _done: &mut Completions) {
        self.queued = false;
        // Dropping a listener drops its subscription: the last one of a
        // signal restores its disposition.
        self.by_thread.retain(|_, l| l.op.is_some());
    }
}

struct Watch {
    listeners: Rc<RefCell<Listeners>>,
}

impl Object for Watch {
    const CLASS: &'static Class = &Class {
        name: c"coutil:signalwatch",
        methods: &[],
        meta: &[],
    };
}

static WATCH_KEY: class::KeptKey<Watch> = class::KeptKey::new();
static THREADS_KEY: u8 = 0;

/// The listeners of the `Watch` of `lua`'s state, if created; pushes
/// nothing.
fn find_listeners(lua: Lua) -> Option<Rc<RefCell<Listeners>>> {
    class::with_found(lua, &WATCH_KEY, |w| w.listeners.clone())
}

/// The listeners of the `Watch` of `lua`'s state, created on first use;
/// pushes nothing.
fn listeners(lua: Lua) -> Rc<RefCell<Listeners>> {
    let make = || Watch {
        listeners: Rc::default(),
    };
    class::with_kept(lua, &WATCH_KEY, make, |w| w.listeners.clone())
}

/// Whether the running coroutine called `awaitsig` before, which a weak-
/// keyed table of the state remembers; marks it. A listener found by the
/// thread's address belongs to it only then: otherwise its coroutine was
/// collected and this one was allocated at the same address.
fn seen_before(lua: Lua) -> bool {
    // The registry value under our private key is only ever this table.
    let key = class::key(&THREADS_KEY);
    if lua.raw_get_ptr(LUA_REGISTRYINDEX, key) != LUA_TTABLE {
        lua.pop(1);
        lua.new_table(0, 0);
        lua.new_table(0, 1);
        lua.push_str(c"k");
        lua.set_field(-2, c"__mode");
        lua.set_metatable(-2);
        lua.push_value(-1);
        lua.raw_set_ptr(LUA_REGISTRYINDEX, key);
    }
    lua.push_thread();
    let seen = lua.raw_get(-2) != LUA_TNIL;
    lua.pop(1);
    if !seen {
        lua.push_thread();
        lua.push_bool(true);
        lua.raw_set(-3);
    }
    lua.pop(1);
    seen
}

/// Drops listeners whose operation was released without its continuation
/// running (the coroutine was closed while it waited).
fn prune(lua: Lua, listeners: &mut Listeners) {
    let sl = state_loop(&lua);
    listeners
        .by_thread
        .retain(|_, l| l.op.is_none_or(|id| sl.waiter(id).is_some()));
}

/// name = system.awaitsig(signal)
fn awaitsig(lua: Lua) -> Result<Await, Error> {
    awaiting::require_coroutine(lua)?;
    let name = lua.arg_bytes(1)?;
    let signo = match lookup(name) {
        Some(s) if s != libc::SIGKILL && s != libc::SIGSTOP => s,
        _ => return Err(invalid_signal(1, name)),
    };
    let seen = seen_before(lua);
    let thread = lua.raw() as usize;
    let listeners = listeners(lua);
    {
        let mut ls = listeners.borrow_mut();
        prune(lua, &mut ls);
        // The coroutine's listener of this signal, kept since its last
        // await, or a new one (which replaces one of another signal).
        let reuse = seen
            && ls
                .by_thread
                .get(&thread)
                .is_some_and(|l| l.signo == signo && l.op.is_none());
        if !reuse {
            ls.by_thread.remove(&thread);
            let arrivals: Arc<Mutex<Arrivals>> = Arc::default();
            let target = arrivals.clone();
            let notify: Notify = Arc::new(move |signo| {
                let mut a = target.lock().unwrap_or_else(|e| e.into_inner());
                match a.remote.take() {
                    Some(remote) => remote.complete(Box::new(signo)),
                    None => a.missed = a.missed.saturating_add(1),
                }
            });
            let sub = subscribe(signo, notify).map_err(Error::Fail)?;
            let listener = Listener {
                signo,
                _sub: sub,
                arrivals,
                op: None,
            };
            ls.by_thread.insert(thread, listener);
        }
    }
    let sl = sys_loop(&lua);
    let waited = awaiting::wait(lua, sl, awaiting::Kind::Signal, Wait::External, deliver);
    let mut ls = listeners.borrow_mut();
    let id = match waited {
        Ok(id) => id,
        Err(e) => {
            ls.by_thread.remove(&thread);
            return Err(e);
        }
    };
    let Some(listener) = ls.by_thread.get_mut(&thread) else {
        // Cannot happen: nothing between runs Lua code that could await.
        drop(ls);
        awaiting::abandon(lua, id);
        return Err(Error::msg("internal error in coutil (no listener)"));
    };
    listener.op = Some(id);
    let remote = sl.remote(id);
    match remote {
        Ok(remote) => {
            let mut a = listener.arrivals.lock().unwrap_or_else(|e| e.into_inner());
            if a.missed > 0 {
                // Arrived between the coroutine's last await and this one.
                a.missed -= 1;
                remote.complete(Box::new(signo));
            } else {
                a.remote = Some(remote);
            }
        }
        Err(e) => {
            drop(ls);
            awaiting::complete(lua, id, Some(Box::new(e)));
        }
    }
    Ok(Await::Keep(id, 0, kfn!(awaitsig_k)))
}

/// Continuation of `awaitsig`: the await is over, however it ended. The
/// coroutine's listener stays until the loop's recheck, so that an await
/// of the same signal right after keeps the handler installed; outside
/// `system.run` there is no recheck, and it is dropped at once.
fn awaitsig_k(lua: Lua, ctx: KContext) -> Result<Await, Error> {
    let resumed = awaiting::resumed(lua, 0, ctx);
    if let Some(listeners) = find_listeners(lua) {
        let mut ls = listeners.borrow_mut();
        let thread = lua.raw() as usize;
        let id = OpId::from_bits(ctx as u64);
        if let Some(l) = ls.by_thread.get_mut(&thread).filter(|l| l.op == Some(id)) {
            l.op = None;
            // After an explicit resume: later arrivals count as missed.
            let stale = l
                .arrivals
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remote
                .take();
            drop(stale);
        }
        let sl = state_loop(&lua);
        let running = sl.is_running();
        if !running {
            ls.by_thread.retain(|_, l| l.op.is_some());
        } else if !ls.queued {
            ls.queued = true;
            let handler: Handler = listeners.clone();
            sl.recheck(handler, Readiness::default());
        }
        prune(lua, &mut ls);
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
    fn states_in_threads_get_their_own_wake_ups() {
        const STATES: usize = 3;
        let barrier = Arc::new(std::sync::Barrier::new(STATES + 1));
        let threads: Vec<_> = (0..STATES)
            .map(|_| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let state = crate::lua::TestState::with_libs();
                    state.run(
                        c"system = require 'coutil.system'
                        co = coroutine.create(function()
                            got = system.awaitsig('winresize')
                        end)
                        coroutine.resume(co)
                        return 'waiting'",
                    );
                    barrier.wait();
                    let got = state.run(c"system.run() return got");
                    // Closing with an await pending cancels it.
                    state.run(c"coroutine.resume(coroutine.create(system.awaitsig), 'winresize') return ''");
                    got
                })
            })
            .collect();
        barrier.wait();
        // SAFETY: SIGWINCH is handled (the states await it) or ignored.
        unsafe { libc::kill(libc::getpid(), libc::SIGWINCH) };
        for t in threads {
            assert_eq!(t.join().unwrap(), "winresize");
        }
        assert!(!delivery::subscribed(libc::SIGWINCH));
    }
}
