//! Writes that cannot kill the process with `SIGPIPE`, whatever the host's
//! disposition (which is left alone): for files and pipes, which have no
//! `MSG_NOSIGNAL` (sockets use that flag instead).

/// Runs `f` (writes) with `SIGPIPE` blocked in this thread and consumes a
/// `SIGPIPE` it raised, so that a write to a pipe without reader fails with
/// `EPIPE` instead of killing the process. `raised` tells from the result
/// whether the signal may have been raised (a single `write` raises it
/// only when it fails with `EPIPE`; a loop of writes that returns a
/// partial count may have met it too), which saves looking for a pending
/// signal after every write. The thread's mask is restored, and a
/// `SIGPIPE` pending before (the host's own, blocked by it) is left
/// pending. Worker threads block `SIGPIPE` for good
/// (`runtime::pool::block_sigpipe`), so there this only consumes it.
pub fn no_sigpipe<T>(f: impl FnOnce() -> T, raised: impl FnOnce(&T) -> bool) -> T {
    // SAFETY: the signal sets are initialised by sigemptyset/sigpending
    // before use; the mask changes only concern this thread and are undone
    // before returning.
    unsafe {
        let mut pipe: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut pending);
        let was_pending = libc::sigismember(&pending, libc::SIGPIPE) == 1;
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old);
        let result = f();
        if !was_pending && raised(&result) {
            libc::sigpending(&mut pending);
            if libc::sigismember(&pending, libc::SIGPIPE) == 1 {
                let none = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                libc::sigtimedwait(&pipe, std::ptr::null_mut(), &none);
            }
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        result
    }
}

/// For [`no_sigpipe`]: a result that is the failure `EPIPE`.
pub fn is_epipe<T>(result: &std::io::Result<T>) -> bool {
    result
        .as_ref()
        .is_err_and(|e| e.raw_os_error() == Some(libc::EPIPE))
}
