//! `coutil:netaddress`: an IPv4 or IPv6 socket address (spec/network.md §1).
//!
//! The object holds a `std::net::SocketAddr`; other areas (sockets, name
//! resolution) use [`push`], [`check`] and [`test`] to pass addresses.

use std::ffi::c_int;
use std::net::SocketAddr;

use crate::lua::class::{self, Class, Object};
use crate::lua::{Error, Lua, Reg};

pub const FUNCTIONS: &[Reg] = &[];

pub struct NetAddress(pub SocketAddr);

impl Object for NetAddress {
    const CLASS: &'static Class = &Class {
        name: c"coutil:netaddress",
        methods: &[],
        meta: &[],
    };
}

/// Pushes a new address object.
pub fn push(lua: Lua, addr: SocketAddr) {
    class::push(lua, NetAddress(addr));
}

/// The address at `i`, if it is an address object.
pub fn test<'a>(lua: Lua, i: c_int) -> Option<&'a mut SocketAddr> {
    class::test::<NetAddress>(lua, i)
        .and_then(|slot| slot.as_mut())
        .map(|a| &mut a.0)
}

/// The address at `i`, or the error `coutil:netaddress expected, got <t>`.
pub fn check<'a>(lua: Lua, i: c_int) -> Result<&'a mut SocketAddr, Error> {
    test(lua, i).ok_or(Error::Type(i, c"coutil:netaddress"))
}
