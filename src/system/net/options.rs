//! `sock:setoption(name, value, ...)`: the options of each socket class.
//! Misuse raises (unknown option, bad values of the documented ranges);
//! what the OS refuses, including a literal it cannot parse (as libuv,
//! which parses them itself), returns the failure triple. Multicast
//! options take the IP level from their address literal, not from the
//! socket's domain, and return what the kernel answers.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use socket2::TcpKeepalive;

use super::address::path_of;
use super::class::{PIPEACTIVE, PIPEDGRAM, PIPEPASSIVE, PIPESHARE, TCPACTIVE, UDP, this};
use super::netio::{Domain, Shared};
use super::sys;
use crate::lua::{Error, LUA_TBOOLEAN, LUA_TNIL, LUA_TNONE, Lua, Ret, fail};

const UDP_OPTIONS: &[&str] = &[
    "broadcast",
    "mcastloop",
    "mcastttl",
    "mcastiface",
    "mcastjoin",
    "mcastleave",
];
const TCP_OPTIONS: &[&str] = &["keepalive", "nodelay"];
const PIPE_OPTIONS: &[&str] = &["permission"];

/// true | false, msg, code = sock:setoption(name, value, ...)
pub fn setoption<const K: u8>(lua: Lua) -> Ret {
    let core = this::<K>(lua)?;
    let result = match K {
        UDP => match lua.arg_option(2, UDP_OPTIONS, None)? {
            0 => Ok(sock(&core, |s| s.set_broadcast(lua_bool(lua)))),
            1 => udp_loop(lua, &core),
            2 => udp_ttl(lua, &core),
            3 => udp_iface(lua, &core),
            k => membership(lua, &core, k == 4),
        },
        TCPACTIVE => match lua.arg_option(2, TCP_OPTIONS, None)? {
            0 => keepalive(lua, &core),
            _ => Ok(sock(&core, |s| s.set_tcp_nodelay(lua_bool(lua)))),
        },
        PIPEACTIVE | PIPESHARE | PIPEPASSIVE | PIPEDGRAM => {
            lua.arg_option(2, PIPE_OPTIONS, None)?;
            permission(lua, &core)
        }
        _ => unreachable!("no setoption for this class"),
    }?;
    match result {
        Ok(()) => {
            lua.push_bool(true);
            Ok(1)
        }
        Err(e) => Ok(fail::push_io(lua, &e)),
    }
}

type Set = Result<io::Result<()>, Error>;

fn sock<T>(core: &Shared, f: impl FnOnce(&socket2::Socket) -> io::Result<T>) -> io::Result<()> {
    f(core.borrow().sock()).map(drop)
}

fn lua_bool(lua: Lua) -> bool {
    lua.to_boolean(3)
}

fn is_v6(core: &Shared) -> bool {
    core.borrow().domain == Domain::Ipv6
}

fn invalid() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

fn udp_loop(lua: Lua, core: &Shared) -> Set {
    let on = lua_bool(lua);
    Ok(if is_v6(core) {
        sock(core, |s| s.set_multicast_loop_v6(on))
    } else {
        sock(core, |s| s.set_multicast_loop_v4(on))
    })
}

fn udp_ttl(lua: Lua, core: &Shared) -> Set {
    let ttl = lua.arg_integer(3)?;
    if !(1..=255).contains(&ttl) {
        return Err(Error::arg(3, "must be from 1 upto 255"));
    }
    Ok(if is_v6(core) {
        sock(core, |s| s.set_multicast_hops_v6(ttl as u32))
    } else {
        sock(core, |s| s.set_multicast_ttl_v4(ttl as u32))
    })
}

/// An IPv4 literal.
fn v4(text: &[u8]) -> io::Result<Ipv4Addr> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(invalid)
}

/// An IPv6 literal with an optional `%zone`: address and interface index.
fn v6(text: &[u8]) -> io::Result<(Ipv6Addr, u32)> {
    let text = std::str::from_utf8(text).map_err(|_| invalid())?;
    let (ip, zone) = match text.split_once('%') {
        Some((ip, zone)) => (ip, sys::interface_index(zone)),
        None => (text, 0),
    };
    Ok((ip.parse().map_err(|_| invalid())?, zone))
}

/// A multicast literal: an IPv4 one if it parses as such, else IPv6 with
/// its zone's interface index.
enum Literal {
    V4(Ipv4Addr),
    V6(Ipv6Addr, u32),
}

fn literal(text: &[u8]) -> io::Result<Literal> {
    match v4(text) {
        Ok(ip) => Ok(Literal::V4(ip)),
        Err(_) => v6(text).map(|(ip, index)| Literal::V6(ip, index)),
    }
}

/// `mcastiface`: an interface literal, or `nil` for the system's choice.
/// NOTE: the IP level is the literal's, not the socket's domain (spec
/// R4, as libuv): Linux accepts IPv4 options on IPv6 sockets and refuses
/// IPv6 ones on IPv4 sockets (`protocol not available`).
fn udp_iface(lua: Lua, core: &Shared) -> Set {
    let text = lua.opt_bytes(3)?;
    Ok((|| match text {
        None if is_v6(core) => sock(core, |s| s.set_multicast_if_v6(0)),
        None => sock(core, |s| s.set_multicast_if_v4(&Ipv4Addr::UNSPECIFIED)),
        Some(t) => match literal(t)? {
            Literal::V4(ip) => sock(core, |s| s.set_multicast_if_v4(&ip)),
            Literal::V6(_, index) => sock(core, |s| s.set_multicast_if_v6(index)),
        },
    })())
}

/// `mcastjoin`/`mcastleave`: group [, interface [, source]]. The group
/// literal chooses the IP level (see [`udp_iface`]); the interface and
/// source must be literals of the same family (else `invalid argument`).
fn membership(lua: Lua, core: &Shared, join: bool) -> Set {
    let group = lua.arg_bytes(3)?;
    let iface = lua.opt_bytes(4)?;
    let source = lua.opt_bytes(5)?;
    let raw = core.borrow().raw();
    Ok((|| match literal(group)? {
        Literal::V4(group) => {
            let source = source.map(v4).transpose()?;
            let iface = iface.map(v4).transpose()?.unwrap_or(Ipv4Addr::UNSPECIFIED);
            match (source, join) {
                (None, true) => sock(core, |s| s.join_multicast_v4(&group, &iface)),
                (None, false) => sock(core, |s| s.leave_multicast_v4(&group, &iface)),
                (Some(src), true) => sock(core, |s| s.join_ssm_v4(&src, &group, &iface)),
                (Some(src), false) => sock(core, |s| s.leave_ssm_v4(&src, &group, &iface)),
            }
        }
        Literal::V6(group, _) => {
            let source = source.map(v6).transpose()?;
            let index = iface.map(v6).transpose()?.map_or(0, |(_, index)| index);
            match (source, join) {
                (None, true) => sock(core, |s| s.join_multicast_v6(&group, index)),
                (None, false) => sock(core, |s| s.leave_multicast_v6(&group, index)),
                (Some((src, _)), join) => sys::source_membership_v6(raw, group, src, index, join),
            }
        }
    })())
}

/// `keepalive`: `false`/`nil` off, seconds of idle time before probing.
fn keepalive(lua: Lua, core: &Shared) -> Set {
    match lua.type_of(3) {
        LUA_TNONE => Err(Error::arg(3, "value expected")),
        LUA_TNIL => Ok(sock(core, |s| s.set_keepalive(false))),
        LUA_TBOOLEAN if !lua_bool(lua) => Ok(sock(core, |s| s.set_keepalive(false))),
        _ => {
            let secs = lua.arg_integer(3)?;
            if secs <= 0 {
                return Err(Error::arg(3, "invalid argument"));
            }
            let params = TcpKeepalive::new().with_time(Duration::from_secs(secs as u64));
            Ok(sock(core, |s| s.set_tcp_keepalive(&params)))
        }
    }
}

/// `permission`: `r`/`w` give other users read/write access to the
/// socket's path (bits are only added, as libuv).
fn permission(lua: Lua, core: &Shared) -> Set {
    let mode = lua.arg_bytes(3)?;
    let mut bits = 0;
    for &c in mode {
        bits |= match c {
            b'r' => libc::S_IRUSR | libc::S_IRGRP | libc::S_IROTH,
            b'w' => libc::S_IWUSR | libc::S_IWGRP | libc::S_IWOTH,
            _ => {
                let mut text = b"unknown option (got '".to_vec();
                text.push(c);
                text.extend_from_slice(b"')");
                return Err(Error::Arg(3, text.into()));
            }
        };
    }
    if bits == 0 {
        return Ok(Err(invalid()));
    }
    if core.borrow().domain == Domain::Pair {
        // A pipe has no file of its own to grant.
        return Ok(Err(io::Error::from_raw_os_error(libc::ENOTSUP)));
    }
    let name = core.borrow().sock().local_addr().map(|a| path_of(&a));
    Ok(name.and_then(|path| {
        // An unnamed or abstract socket has no file: stat("") fails.
        let path = if path.first() == Some(&0) {
            &[][..]
        } else {
            &path
        };
        sys::chmod_add(path, bits)
    }))
}
