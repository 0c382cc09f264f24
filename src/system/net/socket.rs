//! `system.socket` and what every socket class shares: the six classes
//! (and terminals, see `terminal`)
//! and their method tables, creation, `close` (also `__gc`, `__close`),
//! `getdomain`, `getaddress` and `bind`.
//!
//! A socket object is a userdata holding `Option<Shared>` (the [`Core`]
//! also registered as the loop's source handler); `close` takes it, so a
//! closed object raises `closed object`. All classes hold the same payload
//! and differ by metatable; methods are instantiated per class (`K`) so
//! that a bad self names the expected class. Awaits keep the object on
//! the coroutine's stack, which keeps a socket with a pending operation
//! alive; their continuations find it with [`kept`].

use std::ffi::c_void;
use std::io;
use std::os::fd::AsRawFd;

use mio::unix::SourceFd;
use socket2::{Socket, Type};

use super::address::{ip_arg, path_of, target};
use super::class::{
    self, PIPEACTIVE, PIPEDGRAM, PIPEPASSIVE, PIPESHARE, TCPACTIVE, TCPPASSIVE, TERMINAL, UDP, this,
};
use super::netio::{Domain, PipeEnd, Shared};
use super::sys::{self, BoundFile};
use super::{address, options, passive, pipedgram, stream, terminal, udp};
use crate::lua::awaiting::{self, SysLoop, state_loop};
use crate::lua::{Lua, Reg, Ret, fail};
use crate::runtime::OpId;
use crate::{afn, cfn};

pub const FUNCTIONS: &[Reg] = &[(c"socket", cfn!(socket))];

macro_rules! active_methods {
    ($k:ident) => {
        &[
            (c"close", cfn!(close::<$k>)),
            (c"getdomain", cfn!(getdomain::<$k>)),
            (c"getaddress", cfn!(getaddress::<$k>)),
            (c"bind", cfn!(bind::<$k>)),
            (c"setoption", cfn!(options::setoption::<$k>)),
            (c"connect", afn!(stream::connect::<$k>)),
            (c"write", afn!(stream::write::<$k>)),
            (c"read", afn!(stream::read::<$k>)),
            (c"shutdown", afn!(stream::shutdown::<$k>)),
        ]
    };
}

/// The methods of each class, by class index (names in `class::NAMES`).
const CLASSES: [&[Reg]; class::COUNT] = [
    &[
        (c"close", cfn!(close::<UDP>)),
        (c"getdomain", cfn!(getdomain::<UDP>)),
        (c"getaddress", cfn!(getaddress::<UDP>)),
        (c"bind", cfn!(bind::<UDP>)),
        (c"setoption", cfn!(options::setoption::<UDP>)),
        (c"connect", cfn!(udp::connect)),
        (c"write", afn!(udp::write)),
        (c"read", afn!(udp::read)),
    ],
    active_methods!(TCPACTIVE),
    &[
        (c"close", cfn!(close::<TCPPASSIVE>)),
        (c"getdomain", cfn!(getdomain::<TCPPASSIVE>)),
        (c"getaddress", cfn!(getaddress::<TCPPASSIVE>)),
        (c"bind", cfn!(bind::<TCPPASSIVE>)),
        (c"listen", cfn!(passive::listen::<TCPPASSIVE>)),
        (c"accept", afn!(passive::accept::<TCPPASSIVE>)),
    ],
    active_methods!(PIPEACTIVE),
    active_methods!(PIPESHARE),
    &[
        (c"close", cfn!(close::<PIPEPASSIVE>)),
        (c"getdomain", cfn!(getdomain::<PIPEPASSIVE>)),
        (c"getaddress", cfn!(getaddress::<PIPEPASSIVE>)),
        (c"bind", cfn!(bind::<PIPEPASSIVE>)),
        (c"setoption", cfn!(options::setoption::<PIPEPASSIVE>)),
        (c"listen", cfn!(passive::listen::<PIPEPASSIVE>)),
        (c"accept", afn!(passive::accept::<PIPEPASSIVE>)),
    ],
    &[
        (c"close", cfn!(close::<TERMINAL>)),
        (c"read", afn!(stream::read::<TERMINAL>)),
        (c"write", afn!(stream::write::<TERMINAL>)),
        (c"shutdown", afn!(stream::shutdown::<TERMINAL>)),
        (c"setmode", cfn!(terminal::setmode)),
        (c"winsize", cfn!(terminal::winsize)),
    ],
    &[
        (c"close", cfn!(close::<PIPEDGRAM>)),
        (c"getdomain", cfn!(getdomain::<PIPEDGRAM>)),
        (c"getaddress", cfn!(getaddress::<PIPEDGRAM>)),
        (c"bind", cfn!(bind::<PIPEDGRAM>)),
        (c"setoption", cfn!(options::setoption::<PIPEDGRAM>)),
        (c"connect", cfn!(pipedgram::connect)),
        (c"write", afn!(pipedgram::write)),
        (c"read", afn!(pipedgram::read)),
    ],
];

const META: &[Reg] = &[(c"__gc", cfn!(gc)), (c"__close", cfn!(tbc_close))];

/// sock | rd, wr | false, msg, code = system.socket(type, domain)
fn socket(lua: Lua) -> Ret {
    let ty = lua.arg_option(1, &["stream", "passive", "datagram"], None)?;
    let domain = [
        Domain::Ipv4,
        Domain::Ipv6,
        Domain::Local,
        Domain::Share,
        Domain::Pair,
    ][lua.arg_option(2, &["ipv4", "ipv6", "local", "share", "pair"], None)?];
    let kind = match (ty, domain) {
        (0, Domain::Pair) => return pair(lua),
        (_, Domain::Pair) => return Ok(fail::push(lua, fail::EAI_BASE + 11)),
        (0, Domain::Local) => PIPEACTIVE,
        (0, Domain::Share) => PIPESHARE,
        (0, _) => TCPACTIVE,
        (1, Domain::Local | Domain::Share) => PIPEPASSIVE,
        (1, _) => TCPPASSIVE,
        (_, Domain::Share) => return Ok(fail::push(lua, fail::EAI_BASE + 11)),
        (_, Domain::Local) => PIPEDGRAM,
        _ => UDP,
    };
    let family = match domain {
        Domain::Ipv4 => socket2::Domain::IPV4,
        Domain::Ipv6 => socket2::Domain::IPV6,
        _ => socket2::Domain::UNIX,
    };
    let ty = if kind == UDP || kind == PIPEDGRAM {
        Type::DGRAM
    } else {
        Type::STREAM
    };
    // Non-blocking and close-on-exec from the start.
    match Socket::new(family, ty.nonblocking(), None) {
        Ok(sock) => match class::push(lua, sock, kind, domain, true, false) {
            Ok(()) => Ok(1),
            Err(e) => Ok(fail::push_io(lua, &e)),
        },
        Err(e) => Ok(fail::push_io(lua, &e)),
    }
}

/// rd, wr = system.socket("stream", "pair"): the two ends of a pipe, as
/// connected `coutil:pipeactive` streams, `rd` only readable and `wr` only
/// writable.
fn pair(lua: Lua) -> Ret {
    let (rd, wr) = match sys::pipe_pair() {
        Ok(ends) => ends,
        Err(e) => return Ok(fail::push_io(lua, &e)),
    };
    for (fd, end) in [(rd, PipeEnd::Read), (wr, PipeEnd::Write)] {
        if let Err(e) = class::push_pair_end(lua, Socket::from(fd), end) {
            return Ok(fail::push_io(lua, &e));
        }
    }
    Ok(2)
}

/// Makes the metatables of the socket classes in `lua`'s state (when
/// `coutil.system` opens, before any socket exists).
pub fn register(lua: Lua) {
    let sl = state_loop(&lua) as *const SysLoop as *mut c_void;
    for (kind, methods) in CLASSES.iter().enumerate() {
        let (key, name) = (class::key(kind as u8), class::NAMES[kind]);
        crate::lua::class::make_metatable(lua, key, name, methods, META, sl);
    }
}

/// Closes a socket taken out of its object: removes it from the loop,
/// wakes its awaiters (`false, "closed"` for a reader, `operation
/// canceled` for requests) and closes the descriptor. Returns the
/// operations it completed.
pub fn shut(lua: Lua, core: &Shared) -> Vec<OpId> {
    let (fd, token, mut done, bound) = {
        let mut c = core.borrow_mut();
        let (fd, token, done) = c.close();
        (fd, token, done, c.bound_file.take())
    };
    // NOTE: this also runs from `__gc`, which may run while the loop is
    // in use: the driver then skips both (see `Driver::deregister`).
    let sl = state_loop(&lua);
    if let (Some(fd), Some(token)) = (&fd, token) {
        sl.deregister(&mut SourceFd(&fd.as_raw_fd()), token);
    }
    let completed = sl.complete_closed(done.drain());
    drop(fd);
    if let Some(bound) = bound {
        bound.remove();
    }
    completed
}

/// true = sock:close()
///
/// The object stays referenced until the next `system.run` finished the
/// close (R2): what it cancelled is delivered by that run.
fn close<const K: u8>(lua: Lua) -> Ret {
    this::<K>(lua)?;
    if let Some(core) = class::take_self(lua) {
        shut(lua, &core);
        awaiting::keep_until_closed(lua, 1);
    }
    lua.push_bool(true);
    Ok(1)
}

/// `__close`: closes the socket if it is still open, as `close`.
fn tbc_close(lua: Lua) -> Ret {
    if let Some(core) = class::take(lua, 1) {
        shut(lua, &core);
        awaiting::keep_until_closed(lua, 1);
    }
    Ok(0)
}

/// `__gc`: closes the socket if it is still open. A coroutine waiting on
/// it keeps it alive, so waiters are only met here when the state closes:
/// they are resumed at once (a reader with `false, "closed"`), while the
/// objects made before the socket are still usable by their cleanup.
fn gc(lua: Lua) -> Ret {
    if let Some(core) = class::take(lua, 1) {
        let completed = shut(lua, &core);
        awaiting::deliver_now(lua, &completed);
    }
    Ok(0)
}

/// domain = sock:getdomain()
fn getdomain<const K: u8>(lua: Lua) -> Ret {
    let domain = this::<K>(lua)?.borrow().domain;
    lua.push_bytes(domain.name().as_bytes());
    Ok(1)
}

/// true | false, msg, code = sock:bind(address | path)
fn bind<const K: u8>(lua: Lua) -> Ret {
    let core = this::<K>(lua)?;
    let domain = core.borrow().domain;
    if domain == Domain::Pair {
        return Ok(fail::push(lua, libc::ENOTSUP));
    }
    let addr = match target(lua, 2, domain)? {
        Ok(addr) => addr,
        Err(e) => return Ok(fail::push_io(lua, &e)),
    };
    let result = {
        let c = core.borrow();
        if K == TCPACTIVE || K == TCPPASSIVE {
            // As libuv: a restarted server can bind while old connections linger.
            let _ = c.sock().set_reuse_address(true);
        }
        c.sock().bind(&addr)
    };
    match result {
        Ok(()) => {
            if !domain.is_ip() {
                let mut c = core.borrow_mut();
                c.path = Some(path_of(&addr));
                c.bound_file = addr.as_pathname().and_then(BoundFile::of);
            }
            lua.push_bool(true);
            Ok(1)
        }
        Err(e) => Ok(fail::push_io(lua, &e)),
    }
}

/// address | path | false, msg, code = sock:getaddress([site [, address]])
fn getaddress<const K: u8>(lua: Lua) -> Ret {
    let core = this::<K>(lua)?;
    let peer = lua.arg_option(2, &["self", "peer"], Some(0))? == 1;
    let domain = core.borrow().domain;
    if domain == Domain::Pair {
        // A pipe has no address.
        return Ok(fail::push(lua, libc::ENOTSUP));
    }
    let into = domain.is_ip() && !lua.is_none_or_nil(3);
    if into {
        ip_arg(lua, 3, domain)?;
    }
    let result = {
        let c = core.borrow();
        let named = c.open || c.connected || c.path.is_some();
        if !domain.is_ip() && !named {
            // As libuv, whose local sockets get a descriptor only when
            // bound or connected (local datagram sockets alike).
            Err(io::Error::from_raw_os_error(libc::EBADF))
        } else if peer {
            c.sock().peer_addr()
        } else {
            c.sock().local_addr()
        }
    };
    let addr = match result {
        Ok(addr) => addr,
        Err(e) => return Ok(fail::push_io(lua, &e)),
    };
    match addr.as_socket() {
        Some(sa) if into => {
            address::set(lua, 3, sa)?;
            lua.push_value(3);
        }
        Some(sa) => address::push(lua, sa),
        None => lua.push_bytes(&path_of(&addr)),
    }
    Ok(1)
}
