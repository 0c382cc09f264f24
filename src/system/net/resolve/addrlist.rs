//! The `coutil:netaddrlist` object: the result of `findaddr`, a list of
//! addresses with a current entry.

use std::ffi::c_int;
use std::net::SocketAddr;

use super::super::address;
use crate::cfn;
use crate::lua::class::{self, Class, Object};
use crate::lua::{Error, Lua, Reg, Ret};

const METHODS: &[Reg] = &[
    (c"next", cfn!(next)),
    (c"reset", cfn!(reset)),
    (c"getaddress", cfn!(getaddress)),
    (c"getdomain", cfn!(getdomain)),
    (c"getsocktype", cfn!(getsocktype)),
    (c"close", cfn!(close)),
];

const META: &[Reg] = &[(c"__close", cfn!(close_meta))];

/// An address found, and its socket type.
#[derive(Clone, Copy)]
pub(super) struct Entry {
    pub(super) addr: SocketAddr,
    pub(super) socktype: c_int,
}

/// The result of `findaddr`: the usable entries (never empty: a lookup
/// without any fails with `address family not supported`) and the current
/// one.
pub struct AddrList {
    pub(super) entries: Vec<Entry>,
    /// From a `"*"` search: stream entries are for listening sockets.
    pub(super) passive: bool,
    pub(super) current: usize,
}

impl Object for AddrList {
    const CLASS: &'static Class = &Class {
        name: c"coutil:netaddrlist",
        methods: METHODS,
        meta: META,
    };

    crate::class_key!();
}

fn closed() -> Error {
    Error::msg("closed coutil:netaddrlist")
}

/// Runs `f` on the open list at argument 1.
fn with_list<R>(lua: Lua, f: impl FnOnce(&mut AddrList) -> R + Send) -> Result<R, Error> {
    class::with_checked::<AddrList, _>(lua, 1, |slot| slot.as_mut().map(f))?.ok_or_else(closed)
}

/// The current entry (a list is never empty).
fn current(lua: Lua) -> Result<(Entry, bool), Error> {
    with_list(lua, |list| (list.entries[list.current], list.passive))
}

/// moved = list:next()
fn next(lua: Lua) -> Ret {
    let moved = with_list(lua, |list| {
        let moved = list.current + 1 < list.entries.len();
        if moved {
            list.current += 1;
        }
        moved
    })?;
    lua.push_bool(moved);
    Ok(1)
}

/// list:reset()
fn reset(lua: Lua) -> Ret {
    with_list(lua, |list| list.current = 0)?;
    Ok(0)
}

/// a = list:getaddress([a])
fn getaddress(lua: Lua) -> Ret {
    let addr = current(lua)?.0.addr;
    if lua.is_none_or_nil(2) {
        address::push(lua, addr);
    } else {
        let into = address::check(lua, 2)?;
        if into.is_ipv6() != addr.is_ipv6() {
            return Err(Error::arg(2, "wrong domain"));
        }
        address::set(lua, 2, addr)?;
        lua.push_value(2);
    }
    Ok(1)
}

/// domain = list:getdomain()
fn getdomain(lua: Lua) -> Ret {
    let v6 = current(lua)?.0.addr.is_ipv6();
    lua.push_bytes(if v6 { b"ipv6" } else { b"ipv4" });
    Ok(1)
}

/// socktype = list:getsocktype()
fn getsocktype(lua: Lua) -> Ret {
    let (entry, passive) = current(lua)?;
    match entry.socktype {
        libc::SOCK_DGRAM => lua.push_bytes(b"datagram"),
        libc::SOCK_STREAM if passive => lua.push_bytes(b"passive"),
        libc::SOCK_STREAM => lua.push_bytes(b"stream"),
        // Not listed (see `entry_of`).
        _ => lua.push_nil(),
    }
    Ok(1)
}

/// true = list:close()
fn close(lua: Lua) -> Ret {
    if class::with_checked::<AddrList, _>(lua, 1, Option::take)?.is_none() {
        return Err(closed());
    }
    lua.push_bool(true);
    Ok(1)
}

/// `__close`: closes the list unless it is closed already.
fn close_meta(lua: Lua) -> Ret {
    let taken = class::with::<AddrList, _>(lua, 1, Option::take);
    drop(taken);
    Ok(0)
}
