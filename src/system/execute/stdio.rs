//! The descriptors of the child's standard streams, all close-on-exec
//! and numbered 3 or more (so that `dup2` onto 0–2 in the child never
//! overwrites another source): duplicates of objects' descriptors,
//! `/dev/null`, and the child's ends of new socket pairs.
//!
//! Blocking stdio: `O_NONBLOCK` belongs to the open file description,
//! which the child shares with us for every stream it inherits or gets
//! from an object. Where a description is non-blocking, sockets (which
//! cannot be reopened) are left shared: the child clears the flag and our
//! socket calls pass `MSG_DONTWAIT` (see `net/sys.rs`), so our objects
//! keep working. Pipes and terminals are reopened through `/proc/self/fd`
//! for the child (a description of its own, blocking). Other non-blocking
//! descriptions (no `/proc`, a pipe without reader, other file types) are
//! cleared by the child and set again by `execute` once the child has
//! started.

use std::ffi::{CString, c_int};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::system::errno::errno;

/// A close-on-exec duplicate of `fd` numbered 3 or more (so that `dup2`
/// onto 0–2 in the child never overwrites another source).
pub fn dup_high(fd: RawFd) -> Result<OwnedFd, c_int> {
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor we own.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        Err(errno())
    } else {
        // SAFETY: `new` was just created and is owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(new) })
    }
}

/// A connected pair of local stream sockets, close-on-exec: the parent's
/// end and the child's end (numbered 3 or more).
pub fn socket_pair() -> Result<(OwnedFd, OwnedFd), c_int> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` has room for the two new descriptors.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(errno());
    }
    // SAFETY: both descriptors were just created and are ours.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((a, dup_high(b.as_raw_fd())?))
}

pub fn null_device() -> Result<OwnedFd, c_int> {
    // SAFETY: opens a path with a constant NUL-terminated name.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: just opened, ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    dup_high(fd.as_raw_fd())
}

/// A new blocking, close-on-exec description (numbered 3 or more) of the
/// pipe or terminal `fd` (of status `flags`), through `/proc/self/fd`.
fn reopen_blocking(fd: RawFd, flags: c_int) -> Option<OwnedFd> {
    let path = CString::new(format!("/proc/self/fd/{fd}")).ok()?;
    // SAFETY: opens a NUL-terminated path. `O_NONBLOCK` keeps the open of
    // a pipe's writing end from waiting for a reader (it fails instead).
    let new = unsafe {
        libc::open(
            path.as_ptr(),
            (flags & libc::O_ACCMODE) | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if new < 0 {
        return None;
    }
    // SAFETY: just opened, ours.
    let new = unsafe { OwnedFd::from_raw_fd(new) };
    // SAFETY: fcntl on our own descriptor.
    unsafe {
        let own = libc::fcntl(new.as_raw_fd(), libc::F_GETFL);
        if own < 0 || libc::fcntl(new.as_raw_fd(), libc::F_SETFL, own & !libc::O_NONBLOCK) < 0 {
            return None;
        }
    }
    dup_high(new.as_raw_fd()).ok()
}

/// Whether `st` is a pipe, or a terminal that a new open does not
/// replace (a pseudo-terminal master through `ptmx` would be a new one).
fn reopenable(fd: RawFd, st: &libc::stat) -> bool {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => true,
        libc::S_IFCHR => {
            let ptmx = libc::makedev(5, 2);
            // SAFETY: isatty only queries the descriptor.
            st.st_rdev != ptmx && unsafe { libc::isatty(fd) } == 1
        }
        _ => false,
    }
}

/// Gives the child blocking standard streams without making ours
/// blocking (see the module doc). `stdio[k]` is the source of stream `k`
/// (`None`: our descriptor `k`); a non-blocking pipe or terminal gets a
/// reopened source. Returns the descriptors (alive until the child has
/// started) whose status flags must be set back after the start.
pub fn unshare_nonblocking(stdio: &mut [Option<OwnedFd>; 3]) -> Vec<(RawFd, c_int)> {
    let mut restore = Vec::new();
    for (k, source) in stdio.iter_mut().enumerate() {
        let fd = source.as_ref().map_or(k as RawFd, |f| f.as_raw_fd());
        // SAFETY: fcntl and fstat only query the descriptor (which may be
        // closed: then there is nothing to do).
        let (flags, st) = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || flags & libc::O_NONBLOCK == 0 || libc::fstat(fd, &mut st) != 0 {
                continue;
            }
            (flags, st)
        };
        if st.st_mode & libc::S_IFMT == libc::S_IFSOCK {
            continue;
        }
        if reopenable(fd, &st)
            && let Some(new) = reopen_blocking(fd, flags)
        {
            *source = Some(new);
            continue;
        }
        restore.push((fd, flags));
    }
    restore
}
