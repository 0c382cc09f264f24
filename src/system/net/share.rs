//! Sockets passed over `"share"` streams (`SCM_RIGHTS`) and socket objects
//! made from descriptors the library did not create.
//!
//! `write(data, i, j, sock)` on a share stream sends a duplicate of
//! `sock`'s descriptor with the first bytes (the sender's object stays
//! open); `read` returns the received descriptor as a new object. A
//! message may carry several descriptors: the extra ones wait in the
//! receiving socket and the next reads return them at once (`0, sock`).

use std::ffi::c_int;
use std::io;
use std::os::fd::{OwnedFd, RawFd};

use socket2::{Domain as SockDomain, Socket, Type};

use super::class::{self, PIPEACTIVE, PIPEPASSIVE, PIPESHARE, TCPACTIVE, TCPPASSIVE, UDP};
use super::netio::{Domain, Shared};
use super::sys;
use crate::lua::{Error, Lua};
use crate::memory;

/// The descriptor of the socket object passed as argument `i` of a share
/// stream's `write`, if any.
pub fn passed(lua: Lua, i: c_int) -> Result<Option<RawFd>, Error> {
    if lua.is_none_or_nil(i) {
        return Ok(None);
    }
    match class::any(lua, i) {
        Some(Some(core)) => {
            let c = core.borrow();
            match c.kind {
                TCPACTIVE | TCPPASSIVE | PIPEACTIVE | PIPEPASSIVE | PIPESHARE => Ok(Some(c.raw())),
                _ => Err(Error::arg(i, "writable object expected")),
            }
        }
        Some(None) => Err(Error::arg(i, "closed object")),
        None => Err(Error::arg(i, "writable object expected")),
    }
}

/// Pushes a new socket object owning `fd` (made non-blocking): a TCP or
/// UDP socket by its family and type, a local stream as `coutil:pipeactive`
/// (also descriptors that are not sockets, e.g. pipes, read and written
/// with `read`/`write`).
pub fn push_fd(lua: Lua, fd: OwnedFd) -> io::Result<()> {
    push_fd_as(lua, fd, false)
}

/// Like [`push_fd`]; local streams become `coutil:pipeshare` when `share`.
pub fn push_fd_as(lua: Lua, fd: OwnedFd, share: bool) -> io::Result<()> {
    let sock = Socket::from(fd);
    sock.set_nonblocking(true)?;
    let (kind, domain, is_socket) = match (sock.domain(), sock.r#type()) {
        (Ok(d), Ok(t)) => {
            let domain = if d == SockDomain::IPV4 {
                Domain::Ipv4
            } else if d == SockDomain::IPV6 {
                Domain::Ipv6
            } else if share {
                Domain::Share
            } else {
                Domain::Local
            };
            let kind = match (domain.is_ip(), t == Type::DGRAM) {
                (true, true) => UDP,
                (true, false) => TCPACTIVE,
                (false, _) if share => PIPESHARE,
                (false, _) => PIPEACTIVE,
            };
            (kind, domain, true)
        }
        _ if share => (PIPESHARE, Domain::Share, false),
        _ => (PIPEACTIVE, Domain::Local, false),
    };
    class::push(lua, sock, kind, domain, is_socket, true)
}

/// Reads into `buffer[i..j]` (arguments 2 to 4, which the caller's await
/// checked; see `memory::with_kept_span`): the size of that range and,
/// unless it is empty, the bytes read; on share streams, the descriptors
/// that came with them are queued in `received`.
pub fn recv(lua: Lua, core: &Shared) -> Result<(usize, Option<io::Result<usize>>), Error> {
    let (raw, socket, share) = {
        let c = core.borrow();
        (c.raw(), c.socket, c.domain == Domain::Share && c.socket)
    };
    let mut fds = Vec::new();
    let fds_ref = &mut fds;
    // SAFETY: the socket `read`s checked their kept argument 2, a memory.
    let n = unsafe {
        memory::with_kept_span(lua, 2, (3, 4), move |buf| {
            let n = match (buf.is_empty(), share) {
                (true, _) => None,
                (false, true) => Some(sys::recv_with_fds(raw, buf, fds_ref)),
                (false, false) => Some(sys::recv(raw, buf, socket)),
            };
            (buf.len(), n)
        })
    }?;
    if !fds.is_empty() {
        core.borrow_mut().received.extend(fds);
    }
    Ok(n)
}

/// Pushes the next received descriptor as a socket object, if any; returns
/// whether it did (a failure to register it is pushed as `nil`).
pub fn push_received(lua: Lua, core: &Shared) -> bool {
    let fd = core.borrow_mut().received.pop_front();
    match fd {
        Some(fd) => {
            if push_fd(lua, fd).is_err() {
                lua.push_nil();
            }
            true
        }
        None => false,
    }
}
