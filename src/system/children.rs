//! The children started by `system.execute` and their reaping.
//!
//! Each child is watched by a descriptor registered with the loop's poll;
//! its [`Child`] is the source handler, which reaps the child with
//! `waitpid(WNOHANG)` when the descriptor is readable and completes the
//! waiting coroutine's `External` operation with the wait status. The
//! descriptor is a `pidfd` (pidfd_open(2)), readable when the process
//! ended: no polling, no `SIGCHLD`. Where `pidfd_open` does not exist
//! (Linux before 5.3, or under valgrind, which does not know it) it is an
//! `eventfd` that a process-wide `SIGCHLD` subscription writes to on every
//! `SIGCHLD`; each child then checks its own pid. `COUTIL_TEST_NOPIDFD=1`
//! forces that fallback (for the tests).
//!
//! An explicit resume only detaches the coroutine: the child stays
//! watched, so it is still reaped by the loop when it ends. The children
//! of a Lua state are listed in a registry object; ended children without
//! a waiter are dropped from the loop by the next `execute` or
//! continuation ([`sweep`]). When the state is closed, children still
//! running are handed to a process-wide reaper driven by `SIGCHLD`, so
//! none is left a zombie.

use std::cell::RefCell;
use std::ffi::c_int;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use mio::unix::SourceFd;

use super::signal;
use crate::lua::Lua;
use crate::lua::awaiting::state_loop;
use crate::lua::class::{self, Class, Object};
use crate::runtime::{Completions, OpId, Outcome, Readiness, SourceHandler, Token};
use crate::system::errno::errno;

/// How a child ended: its wait status, or the `errno` of `waitpid`.
pub type Ended = Result<c_int, c_int>;

/// A started child, registered with the loop through its watch.
pub struct Child {
    pid: libc::pid_t,
    watch: Option<Watch>,
    token: Option<Token>,
    ended: Option<Ended>,
    /// The operation of the coroutine waiting for the child's end.
    pub waiter: Option<OpId>,
}

/// What tells that a child may have ended.
enum Watch {
    Pidfd(OwnedFd),
    Signalled(Signalled),
}

impl Watch {
    fn raw(&self) -> RawFd {
        match self {
            Watch::Pidfd(fd) => fd.as_raw_fd(),
            Watch::Signalled(s) => s.0.as_raw_fd(),
        }
    }
}

/// An eventfd written to on every `SIGCHLD` while it exists.
struct Signalled(OwnedFd);

/// The eventfds of [`Signalled`] watches.
static SIGNALLED: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

fn signalled() -> std::sync::MutexGuard<'static, Vec<RawFd>> {
    SIGNALLED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Adds 1 to an eventfd.
fn poke(fd: RawFd) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a local buffer to a descriptor that the
    // caller knows open.
    unsafe { libc::write(fd, one.as_ptr().cast(), one.len()) };
}

impl Signalled {
    fn new() -> std::io::Result<Signalled> {
        static SUBSCRIPTION: OnceLock<Option<signal::Subscription>> = OnceLock::new();
        let subscribed = SUBSCRIPTION.get_or_init(|| {
            let notify = Arc::new(|_| signalled().iter().for_each(|&fd| poke(fd)));
            signal::subscribe(libc::SIGCHLD, notify).ok()
        });
        if subscribed.is_none() {
            return Err(std::io::Error::from_raw_os_error(libc::ENOSYS));
        }
        // SAFETY: creates a descriptor we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: just created, ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        signalled().push(fd.as_raw_fd());
        // The child may have ended before: look once anyway.
        poke(fd.as_raw_fd());
        Ok(Signalled(fd))
    }

    fn drain(&self) {
        let mut count = [0u8; 8];
        // SAFETY: reads 8 bytes into a local buffer (never blocks).
        unsafe { libc::read(self.0.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
    }
}

impl Drop for Signalled {
    fn drop(&mut self) {
        // Out of the list before the descriptor closes (and its number
        // can be reused).
        let raw = self.0.as_raw_fd();
        signalled().retain(|&fd| fd != raw);
    }
}

/// A watch for `pid`: its pidfd, or the `SIGCHLD` fallback.
fn watch(pid: libc::pid_t) -> std::io::Result<Watch> {
    // Set once pidfd_open is known missing (or the tests forbid it).
    static NO_PIDFD: OnceLock<AtomicBool> = OnceLock::new();
    let missing = NO_PIDFD.get_or_init(|| {
        AtomicBool::new(std::env::var_os("COUTIL_TEST_NOPIDFD").is_some_and(|v| v == "1"))
    });
    if !missing.load(Ordering::Relaxed) {
        // SAFETY: pidfd_open only takes integers; the pidfd is close-on-exec.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as c_int;
        if fd >= 0 {
            // SAFETY: just created, ours.
            return Ok(Watch::Pidfd(unsafe { OwnedFd::from_raw_fd(fd) }));
        }
        if errno() != libc::ENOSYS {
            return Err(std::io::Error::last_os_error());
        }
        missing.store(true, Ordering::Relaxed);
    }
    Signalled::new().map(Watch::Signalled)
}

impl Child {
    /// Reaps the child if it ended.
    fn reap(&mut self) {
        if self.ended.is_some() {
            return;
        }
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child without blocking.
            let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if r == self.pid {
                self.ended = Some(Ok(status));
            } else if r < 0 {
                match errno() {
                    libc::EINTR => continue,
                    e => self.ended = Some(Err(e)),
                }
            }
            return;
        }
    }
}

impl SourceHandler for Child {
    fn ready(&mut self, _readiness: Readiness, done: &mut Completions) {
        if let Some(Watch::Signalled(s)) = &self.watch {
            s.drain();
        }
        self.reap();
        if let Some(ended) = self.ended
            && let Some(op) = self.waiter.take()
        {
            done.push(op, Some(Box::new(ended) as Outcome));
        }
    }
}

/// The children of a Lua state, in a registry object.
pub type List = Rc<RefCell<Vec<Rc<RefCell<Child>>>>>;

/// The registry object of a state's children (the list is shared, so that
/// it can be used out of the object's borrow; see `class::with`).
struct Children {
    list: List,
}

impl Object for Children {
    const CLASS: &'static Class = &Class {
        name: c"coutil:children",
        methods: &[],
        meta: &[],
    };

    crate::class_key!();
}

impl Drop for Children {
    /// The state is closing: its loop will not run again, so children
    /// still running are left to the process-wide reaper.
    fn drop(&mut self) {
        for child in self.list.take() {
            let mut c = child.borrow_mut();
            c.reap();
            if c.ended.is_none() {
                orphan(c.pid);
            }
            // Closing the descriptor also removes it from the poll.
            c.watch = None;
            c.waiter = None;
        }
    }
}

static CHILDREN_KEY: class::KeptKey<Children> = class::KeptKey::new();

/// The children of `lua`'s state, listed on first use; pushes nothing.
pub fn children(lua: Lua) -> List {
    let make = || Children {
        list: Rc::default(),
    };
    class::with_kept(lua, &CHILDREN_KEY, make, |c| c.list.clone())
}

/// Watches the new child `pid` with `lua`'s loop and lists it; if that is
/// impossible, kills and reaps it and returns why.
pub fn adopt(lua: Lua, pid: libc::pid_t) -> std::io::Result<Rc<RefCell<Child>>> {
    let child = Rc::new(RefCell::new(Child {
        pid,
        watch: None,
        token: None,
        ended: None,
        waiter: None,
    }));
    let registered = watch(pid).and_then(|w| {
        let raw = w.raw();
        child.borrow_mut().watch = Some(w);
        let handler: Rc<RefCell<dyn SourceHandler>> = child.clone();
        state_loop(&lua).register_handler(&mut SourceFd(&raw), handler)
    });
    match registered {
        Ok(token) => child.borrow_mut().token = Some(token),
        Err(e) => {
            // Nothing can tell when the child ends: kill and reap it.
            child.borrow_mut().watch = None;
            // SAFETY: signals and waits for our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            return Err(e);
        }
    }
    sweep(lua);
    children(lua).borrow_mut().push(child.clone());
    Ok(child)
}

/// Drops the children that ended and that nobody waits for: their watch
/// leaves the loop and is closed.
pub fn sweep(lua: Lua) {
    let sl = state_loop(&lua);
    children(lua).borrow_mut().retain(|child| {
        let mut c = child.borrow_mut();
        if let Some(op) = c.waiter
            && sl.waiter(op).is_none()
        {
            c.waiter = None; // its coroutine was closed
        }
        if c.ended.is_none() || c.waiter.is_some() {
            return true;
        }
        if let (Some(fd), Some(token)) = (c.watch.as_ref().map(Watch::raw), c.token.take()) {
            sl.deregister(&mut SourceFd(&fd), token);
        }
        c.watch = None;
        false
    });
}

/// Pids of children of closed states, reaped on `SIGCHLD`.
static ORPHANS: Mutex<Vec<libc::pid_t>> = Mutex::new(Vec::new());

fn reap_orphans() {
    let mut orphans = ORPHANS.lock().unwrap_or_else(|e| e.into_inner());
    orphans.retain(|&pid| {
        let mut status = 0;
        // SAFETY: reaps a child of this process without blocking.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        r == 0 || (r < 0 && errno() == libc::EINTR)
    });
}

/// Leaves `pid` to the `SIGCHLD` reaper (subscribed once, for good).
fn orphan(pid: libc::pid_t) {
    static REAPER: OnceLock<Option<signal::Subscription>> = OnceLock::new();
    ORPHANS.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
    REAPER.get_or_init(|| signal::subscribe(libc::SIGCHLD, Arc::new(|_| reap_orphans())).ok());
    // It may have ended before the subscription.
    reap_orphans();
}
