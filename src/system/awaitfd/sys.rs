//! The one system call of `awaitfd` besides the loop's own: asking
//! `poll(2)` whether a descriptor has normal data, when mio's flags cannot
//! tell (its "readable" is also set by priority data).

use std::os::fd::RawFd;

/// Whether `fd` has data to read now (`POLLIN`), without waiting.
pub fn has_input(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd of ours, no timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & libc::POLLIN != 0
}
