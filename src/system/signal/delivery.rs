//! The process-wide delivery of signals (see the module's doc): the
//! subscriptions, the handler that writes to the self-pipe, the
//! dispatcher thread that reads it, and the saved dispositions restored
//! when a signal's last subscription goes.

use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::system::errno::{errno as last_errno, errno_location};

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
        // SAFETY: `fds` has room for the two descriptors. Close-on-exec
        // from the start: another thread may start a process meanwhile.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(last_errno());
        }
        // SAFETY: fcntl on the write end we just created.
        unsafe {
            let flags = libc::fcntl(fds[1], libc::F_GETFL);
            libc::fcntl(fds[1], libc::F_SETFL, flags | libc::O_NONBLOCK);
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

/// Has `signo` any subscription now?
#[cfg(test)]
pub fn subscribed(signo: c_int) -> bool {
    registry().subs.iter().any(|s| s.signo == signo)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
