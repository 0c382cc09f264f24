//! The system calls of the sockets that `socket2` does not cover the way
//! we need: no `SIGPIPE` ever (`MSG_NOSIGNAL`), datagram sizes with
//! `MSG_TRUNC`, descriptors passed with `SCM_RIGHTS`, `accept4` giving
//! non-blocking descriptors, source-specific multicast for IPv6 and the
//! `chmod` of a local socket's path.
//!
//! Every call retries on `EINTR`; `WouldBlock` is returned to the caller,
//! which waits for readiness.
//!
//! NOTE: socket sends and receives pass `MSG_DONTWAIT` instead of relying
//! on `O_NONBLOCK` alone: that flag belongs to the open file description,
//! which a child of `system.execute` shares when it gets the socket as a
//! standard stream, and the child clears it (as libuv's children do) so
//! that its stdio is blocking. Our calls then still never block.

use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use socket2::SockAddr;

use crate::system::sigpipe::{is_epipe, no_sigpipe};

/// Most descriptors taken from one message.
const MAX_FDS: usize = 8;

fn retry(mut call: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let n = call();
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Reads into `buf`: `recv` for sockets, `read` for other descriptors.
pub fn recv(fd: RawFd, buf: &mut [u8], socket: bool) -> io::Result<usize> {
    let (p, len) = (buf.as_mut_ptr().cast(), buf.len());
    // SAFETY: `p` points to `len` writable bytes.
    retry(|| unsafe {
        if socket {
            libc::recv(fd, p, len, libc::MSG_DONTWAIT)
        } else {
            libc::read(fd, p, len)
        }
    })
}

/// Writes `buf` without raising `SIGPIPE`.
pub fn send(fd: RawFd, buf: &[u8], socket: bool) -> io::Result<usize> {
    let (p, len) = (buf.as_ptr().cast(), buf.len());
    if socket {
        // SAFETY: `p` points to `len` readable bytes.
        return retry(|| unsafe {
            libc::send(fd, p, len, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
        });
    }
    // Other descriptors (pipes) have no MSG_NOSIGNAL.
    // SAFETY: `p` points to `len` readable bytes.
    no_sigpipe(|| retry(|| unsafe { libc::write(fd, p, len) }), is_epipe)
}

/// Sends one datagram to `to`.
pub fn send_to(fd: RawFd, buf: &[u8], to: &SockAddr) -> io::Result<usize> {
    let (p, len) = (buf.as_ptr().cast(), buf.len());
    // SAFETY: `p` points to `len` readable bytes; `to` is a valid address
    // of `to.len()` bytes.
    retry(|| unsafe {
        let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
        libc::sendto(fd, p, len, flags, to.as_ptr().cast(), to.len())
    })
}

/// Receives one datagram: its full size (maybe more than `buf`) and sender.
pub fn recv_from(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<SocketAddr>)> {
    let (p, len) = (buf.as_mut_ptr().cast(), buf.len());
    // SAFETY: `p` points to `len` writable bytes; `try_init` gives a zeroed
    // storage and its size, which recvfrom fills.
    let (n, from) = unsafe {
        SockAddr::try_init(|storage, size| {
            let flags = libc::MSG_TRUNC | libc::MSG_DONTWAIT;
            retry(|| libc::recvfrom(fd, p, len, flags, storage.cast(), size))
        })
    }?;
    Ok((n, from.as_socket()))
}

/// Receives one datagram of a local socket: its full size (maybe more
/// than `buf`) and the sender's address (unnamed senders give an address
/// without a path).
pub fn recv_from_local(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SockAddr)> {
    let (p, len) = (buf.as_mut_ptr().cast(), buf.len());
    // SAFETY: as in `recv_from`.
    unsafe {
        SockAddr::try_init(|storage, size| {
            let flags = libc::MSG_TRUNC | libc::MSG_DONTWAIT;
            retry(|| libc::recvfrom(fd, p, len, flags, storage.cast(), size))
        })
    }
}

/// Accepts a connection as a non-blocking, close-on-exec descriptor.
pub fn accept(fd: RawFd) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: no address is requested.
        let r = retry(|| unsafe {
            libc::accept4(
                fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            ) as isize
        });
        match r {
            // SAFETY: accept4 returned a new descriptor that we own.
            Ok(new) => return Ok(unsafe { OwnedFd::from_raw_fd(new as RawFd) }),
            // The peer gave up before we accepted: take the next one.
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A pipe as the two ends of a `"pair"`: (read end, write end), both
/// non-blocking and close-on-exec from their creation.
pub fn pipe_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors, which we own from here.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])))
    }
}

/// Ends the writing of the pipe write end `fd`: a pipe has no half-close,
/// so the descriptor is replaced, under the same number, by `/dev/null`
/// (`dup3`, atomic): our reference to the pipe is dropped, and once no
/// other writer holds the pipe (a child given it as a stream), its reader
/// reads end of file. The number stays valid for the object (writes are
/// refused after a shutdown anyway) until it is closed.
pub fn close_pipe_writer(fd: RawFd) -> io::Result<()> {
    // SAFETY: a NUL-terminated path; `null` is ours and closed here; dup3
    // replaces `fd`, a descriptor this object owns.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if null < 0 {
            return Err(io::Error::last_os_error());
        }
        let r = retry(|| libc::dup3(null, fd, libc::O_CLOEXEC) as isize);
        libc::close(null);
        r.map(drop)
    }
}

/// Removes the default peer of a datagram socket.
pub fn disconnect(fd: RawFd) -> io::Result<()> {
    // SAFETY: a zeroed sockaddr with family AF_UNSPEC.
    let r = unsafe {
        let mut sa: libc::sockaddr = zeroed();
        sa.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
        libc::connect(fd, &sa, size_of::<libc::sockaddr>() as libc::socklen_t)
    };
    match r {
        0 => Ok(()),
        _ => {
            let e = io::Error::last_os_error();
            // Linux reports this after dissolving the association.
            if e.raw_os_error() == Some(libc::EAFNOSUPPORT) {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

/// Sends `buf` on a local stream with descriptor `passed` attached.
pub fn send_with_fd(fd: RawFd, buf: &[u8], passed: RawFd) -> io::Result<usize> {
    // SAFETY: the message header points to `buf` and to a control buffer
    // sized by CMSG_SPACE for one descriptor, filled through the CMSG
    // macros.
    unsafe {
        let space = libc::CMSG_SPACE(size_of::<RawFd>() as u32) as usize;
        let mut control = vec![0u8; space];
        let mut iov = libc::iovec {
            iov_base: buf.as_ptr() as *mut _,
            iov_len: buf.len(),
        };
        let mut msg: libc::msghdr = zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), passed);
        retry(|| libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT))
    }
}

/// Reads into `buf` from a local stream, adding the descriptors that came
/// with the data to `fds` (close-on-exec).
pub fn recv_with_fds(fd: RawFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    // SAFETY: as in `send_with_fd`; the received descriptors are read
    // from the control messages the kernel wrote, each one owned by us.
    unsafe {
        let space = libc::CMSG_SPACE((MAX_FDS * size_of::<RawFd>()) as u32) as usize;
        let mut control = vec![0u8; space];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut msg: libc::msghdr = zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space;
        let n = retry(|| libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT))?;
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let bytes = (*cmsg).cmsg_len - (data as usize - cmsg as usize);
                for k in 0..bytes / size_of::<RawFd>() {
                    let raw = std::ptr::read_unaligned(data.cast::<RawFd>().add(k));
                    fds.push(OwnedFd::from_raw_fd(raw));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        Ok(n)
    }
}

/// Joins or leaves an IPv6 source-specific multicast group.
pub fn source_membership_v6(
    fd: RawFd,
    group: Ipv6Addr,
    source: Ipv6Addr,
    interface: u32,
    join: bool,
) -> io::Result<()> {
    let addr = |ip| SockAddr::from(SocketAddrV6::new(ip, 0, 0, 0));
    let (g, s) = (addr(group), addr(source));
    // SAFETY: a zeroed request whose address fields receive the bytes of
    // sockaddr_in6 addresses, smaller than their storage fields.
    unsafe {
        let mut req: libc::group_source_req = zeroed();
        req.gsr_interface = interface;
        for (src, dst) in [(&g, &mut req.gsr_group), (&s, &mut req.gsr_source)] {
            std::ptr::copy_nonoverlapping(
                src.as_ptr().cast::<u8>(),
                (dst as *mut libc::sockaddr_storage).cast::<u8>(),
                src.len() as usize,
            );
        }
        let name = if join {
            libc::MCAST_JOIN_SOURCE_GROUP
        } else {
            libc::MCAST_LEAVE_SOURCE_GROUP
        };
        let r = libc::setsockopt(
            fd,
            libc::IPPROTO_IPV6,
            name,
            (&req as *const libc::group_source_req).cast(),
            size_of::<libc::group_source_req>() as libc::socklen_t,
        );
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// The index of a network interface by name, 0 if unknown (as libuv).
pub fn interface_index(name: &str) -> u32 {
    match CString::new(name) {
        // SAFETY: a NUL-terminated name.
        Ok(name) => unsafe { libc::if_nametoindex(name.as_ptr()) },
        Err(_) => 0,
    }
}

/// Adds the permission `bits` to the file at `path` (a local socket).
pub fn chmod_add(path: &[u8], bits: libc::mode_t) -> io::Result<()> {
    let path = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?;
    // SAFETY: a NUL-terminated path and a zeroed stat buffer.
    unsafe {
        let mut st: libc::stat = zeroed();
        if libc::stat(path.as_ptr(), &mut st) != 0 {
            return Err(io::Error::last_os_error());
        }
        if st.st_mode & bits == bits {
            return Ok(());
        }
        if libc::chmod(path.as_ptr(), (st.st_mode | bits) & 0o7777) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The file a local socket bound, removed when the socket is closed (as
/// libuv does), but only if it is still that socket: its absolute path
/// (the working directory may change meanwhile) and identity.
pub struct BoundFile {
    path: std::path::PathBuf,
    dev: u64,
    ino: u64,
}

impl BoundFile {
    pub fn of(path: &std::path::Path) -> Option<BoundFile> {
        use std::os::unix::fs::MetadataExt;
        let path = std::env::current_dir().ok()?.join(path);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        Some(BoundFile {
            dev: meta.dev(),
            ino: meta.ino(),
            path,
        })
    }

    pub fn remove(self) {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && meta.file_type().is_socket()
            && meta.dev() == self.dev
            && meta.ino() == self.ino
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn writing_a_broken_pipe_fails_without_the_signal() {
        let mut fds = [0; 2];
        // SAFETY: pipe fills the two descriptors, which we own from here.
        let (r, w) = unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
        };
        drop(r);
        let e = send(w.as_raw_fd(), b"x", false).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPIPE));
        // Nothing is left pending for the process either.
        // SAFETY: an initialised set filled by sigpending.
        unsafe {
            let mut pending: libc::sigset_t = zeroed();
            libc::sigpending(&mut pending);
            assert_eq!(libc::sigismember(&pending, libc::SIGPIPE), 0);
        }
    }

    #[test]
    fn descriptors_travel_over_local_streams() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (x, _y) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(send_with_fd(a.as_raw_fd(), b"!", x.as_raw_fd()).unwrap(), 1);
        let mut buf = [0u8; 4];
        let mut fds = Vec::new();
        assert_eq!(recv_with_fds(b.as_raw_fd(), &mut buf, &mut fds).unwrap(), 1);
        assert_eq!((buf[0], fds.len()), (b'!', 1));
    }
}
