//! Name resolution (spec/network.md §2): `system.findaddr` and
//! `system.nameaddr`, and the `coutil:netaddrlist` object.
//!
//! Both are await functions running `getaddrinfo`/`getnameinfo` as jobs on
//! the worker pool, so the loop never blocks on a lookup. A job owns all
//! its inputs (C strings, a `SocketAddr`) and returns plain Rust data (the
//! `addrinfo` list is converted and freed on the worker), so nothing of the
//! C library crosses threads. An explicit resume cancels the await: the
//! lookup itself cannot be aborted, it finishes on the worker and the loop
//! drops its result.
//!
//! Resolver errors are reported with libuv's numbers (3000 + n, see
//! `lua/fail.rs`), translated from the C library's `EAI_*` values;
//! `EAI_SYSTEM` reports `errno`.

use std::ffi::{CStr, CString, c_char, c_int};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::address;
use crate::lua::awaiting::{self, Await};
use crate::lua::class::{self, Class, Object};
use crate::lua::{Error, LUA_TNUMBER, Lua, Reg, Ret, fail};
use crate::runtime::{Outcome, Wait};
use crate::system::sys_loop;
use crate::{afn, cfn};

pub const FUNCTIONS: &[Reg] = &[(c"findaddr", afn!(findaddr)), (c"nameaddr", afn!(nameaddr))];

const METHODS: &[Reg] = &[
    (c"next", cfn!(next)),
    (c"reset", cfn!(reset)),
    (c"getaddress", cfn!(getaddress)),
    (c"getdomain", cfn!(getdomain)),
    (c"getsocktype", cfn!(getsocktype)),
    (c"close", cfn!(close)),
];

const META: &[Reg] = &[(c"__close", cfn!(close_meta))];

/// Flags and error values of glibc that the `libc` crate does not define.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod gnu {
    use std::ffi::c_int;
    pub const EAI_ADDRFAMILY: c_int = -9;
    pub const EAI_CANCELED: c_int = -101;
    pub const AI_IDN: c_int = 0x0040;
    pub const AI_CANONIDN: c_int = 0x0080;
    pub const NI_IDN: c_int = 32;
    pub const NI_IDN_ALLOW_UNASSIGNED: c_int = 64;
    pub const NI_IDN_USE_STD3_ASCII_RULES: c_int = 128;
}

/// Elsewhere the IDN mode characters are accepted and have no effect.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod gnu {
    use std::ffi::c_int;
    pub const EAI_ADDRFAMILY: c_int = c_int::MIN;
    pub const EAI_CANCELED: c_int = c_int::MIN + 1;
    pub const AI_IDN: c_int = 0;
    pub const AI_CANONIDN: c_int = 0;
    pub const NI_IDN: c_int = 0;
    pub const NI_IDN_ALLOW_UNASSIGNED: c_int = 0;
    pub const NI_IDN_USE_STD3_ASCII_RULES: c_int = 0;
}

/// The libuv error number of a `getaddrinfo`/`getnameinfo` result `rc`
/// (not 0); `errno` must still be that of the call.
fn eai_code(rc: c_int) -> i32 {
    if rc == libc::EAI_SYSTEM {
        return std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(fail::UNKNOWN);
    }
    let n = match rc {
        gnu::EAI_ADDRFAMILY => 0,
        libc::EAI_AGAIN => 1,
        libc::EAI_BADFLAGS => 2,
        gnu::EAI_CANCELED => 3,
        libc::EAI_FAIL => 4,
        libc::EAI_FAMILY => 5,
        libc::EAI_MEMORY => 6,
        libc::EAI_NODATA => 7,
        libc::EAI_NONAME => 8,
        libc::EAI_OVERFLOW => 9,
        libc::EAI_SERVICE => 10,
        libc::EAI_SOCKTYPE => 11,
        _ => return fail::UNKNOWN,
    };
    fail::EAI_BASE + n
}

const EAI_NONAME: i32 = fail::EAI_BASE + 8;

// ---------------------------------------------------------------------------
// The address list

#[derive(Clone, Copy)]
struct Entry {
    addr: SocketAddr,
    socktype: c_int,
}

/// The result of `findaddr`: the usable entries (never empty: a lookup
/// without any fails with `address family not supported`) and the current
/// one.
pub struct AddrList {
    entries: Vec<Entry>,
    /// From a `"*"` search: stream entries are for listening sockets.
    passive: bool,
    current: usize,
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

// ---------------------------------------------------------------------------
// findaddr

/// What a `getaddrinfo` job needs, all owned.
struct Query {
    node: Option<CString>,
    service: Option<CString>,
    family: c_int,
    socktype: c_int,
    flags: c_int,
}

/// A resolved entry of `getaddrinfo`, if it is an IP address of a stream
/// or datagram socket.
///
/// NOTE: without a service or socket type glibc also lists `SOCK_RAW`
/// entries; the original's list skips every entry that is neither stream
/// nor datagram (rule R4), so `getsocktype` never gives `nil`.
///
/// # Safety
/// `ai` must be an entry of a list returned by `getaddrinfo`, not freed.
unsafe fn entry_of(ai: &libc::addrinfo) -> Option<Entry> {
    if ai.ai_addr.is_null() || !matches!(ai.ai_socktype, libc::SOCK_STREAM | libc::SOCK_DGRAM) {
        return None;
    }
    let len = ai.ai_addrlen as usize;
    // SAFETY: `ai_addr` points to `ai_addrlen` bytes of a socket address of
    // family `sa_family`; each read checks that length first and uses
    // `read_unaligned`, so no alignment is assumed.
    let addr = unsafe {
        match c_int::from((*ai.ai_addr).sa_family) {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                let sa = ai.ai_addr.cast::<libc::sockaddr_in>().read_unaligned();
                SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)),
                    u16::from_be(sa.sin_port),
                ))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                let sa = ai.ai_addr.cast::<libc::sockaddr_in6>().read_unaligned();
                SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sa.sin6_addr.s6_addr),
                    u16::from_be(sa.sin6_port),
                    sa.sin6_flowinfo,
                    sa.sin6_scope_id,
                ))
            }
            _ => return None,
        }
    };
    Some(Entry {
        addr,
        socktype: ai.ai_socktype,
    })
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// Runs `getaddrinfo` (on a worker): the IP entries, or an error number.
fn lookup(q: Query) -> Result<Vec<Entry>, i32> {
    // SAFETY: an all-zero addrinfo is a valid "no hints" value (null
    // pointers, zero numbers).
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = q.family;
    hints.ai_socktype = q.socktype;
    hints.ai_flags = q.flags;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: the strings are NUL-terminated or null, `hints` and `res`
    // are valid for the call.
    let rc = unsafe { libc::getaddrinfo(opt_ptr(&q.node), opt_ptr(&q.service), &hints, &mut res) };
    if rc != 0 {
        return Err(eai_code(rc));
    }
    let mut entries = Vec::new();
    let mut p = res;
    // SAFETY: `res` is the list getaddrinfo returned; it is walked through
    // `ai_next` and freed once, after the last use of its entries.
    unsafe {
        while let Some(ai) = p.as_ref() {
            entries.extend(entry_of(ai));
            p = ai.ai_next;
        }
        libc::freeaddrinfo(res);
    }
    Ok(entries)
}

type Found = Result<(Vec<Entry>, bool), i32>;

/// list | false, msg, code = system.findaddr(name [, service [, mode]])
fn findaddr(lua: Lua) -> Result<Await, Error> {
    awaiting::require_coroutine(lua)?;
    let name = lua.opt_bytes(1)?;
    let service = if lua.type_of(2) == LUA_TNUMBER {
        let port = lua.arg_integer(2)?;
        if !(0..=65535).contains(&port) {
            return Err(Error::arg(2, "invalid port"));
        }
        Some(port.to_string().into_bytes())
    } else {
        lua.opt_bytes(2)?.map(<[u8]>::to_vec)
    };
    let (mut v4, mut v6, mut mapped, mut dgram, mut stream) = (false, false, false, false, false);
    let mut flags = 0;
    for &c in lua.opt_bytes(3)?.unwrap_or_default() {
        match c {
            b'4' => v4 = true,
            b'6' => v6 = true,
            b'm' => mapped = true,
            b'd' => dgram = true,
            b's' => stream = true,
            b'n' => flags |= libc::AI_NUMERICHOST,
            _ => return Err(Error::mode_char(3, c)),
        }
    }
    let family = match (v4, v6) {
        (true, false) => libc::AF_INET,
        (false, true) => libc::AF_INET6,
        (false, false) => {
            flags |= libc::AI_ADDRCONFIG;
            libc::AF_UNSPEC
        }
        (true, true) => libc::AF_UNSPEC,
    };
    if mapped {
        if family == libc::AF_INET {
            return Err(Error::arg(3, "'m' is invalid for IPv4"));
        }
        flags |= libc::AI_V4MAPPED;
    }
    let socktype = match (dgram, stream) {
        (true, false) => libc::SOCK_DGRAM,
        (false, true) => libc::SOCK_STREAM,
        _ => 0,
    };
    let passive = name == Some(b"*");
    match (name, &service) {
        (None, None) => return Err(Error::arg(1, "name or service must be provided")),
        (Some(b"*"), None) => return Err(Error::arg(2, "service must be provided for '*'")),
        _ => {}
    }
    if passive {
        flags |= libc::AI_PASSIVE;
    }
    let node = match name.filter(|_| !passive).map(CString::new).transpose() {
        Ok(node) => node,
        // A name with a NUL byte names no host.
        Err(_) => return Ok(Await::Done(fail::push(lua, EAI_NONAME))),
    };
    let service = match service.map(CString::new).transpose() {
        Ok(service) => service,
        Err(_) => return Ok(Await::Done(fail::push(lua, EAI_NONAME))),
    };
    let query = Query {
        node,
        service,
        family,
        socktype,
        flags,
    };
    let job = Box::new(move || Box::new(lookup(query).map(|e| (e, passive))) as Outcome);
    let id = awaiting::wait(
        lua,
        sys_loop(&lua),
        awaiting::Kind::Dns,
        Wait::Work(job),
        deliver_list,
    )?;
    Ok(Await::Yield(id))
}

fn deliver_list(co: Lua, outcome: Option<Outcome>) -> c_int {
    match outcome.and_then(|o| o.downcast::<Found>().ok()).map(|r| *r) {
        Some(Ok((entries, _))) if entries.is_empty() => fail::push(co, libc::EAFNOSUPPORT),
        Some(Ok((entries, passive))) => {
            class::push(
                co,
                AddrList {
                    entries,
                    passive,
                    current: 0,
                },
            );
            1
        }
        Some(Err(code)) => fail::push(co, code),
        None => fail::push(co, libc::ECANCELED),
    }
}

// ---------------------------------------------------------------------------
// nameaddr

enum NameQuery {
    /// Host and service names of an address.
    Address(SocketAddr),
    /// Service name of a port.
    Port(u16),
    /// Canonical name of a host.
    Host(CString),
}

/// Names found: one or two strings.
type Names = Result<Vec<Vec<u8>>, i32>;

/// The bytes of a NUL-terminated result buffer.
fn buffer_text(buf: &[u8]) -> Vec<u8> {
    CStr::from_bytes_until_nul(buf)
        .map(|s| s.to_bytes().to_vec())
        .unwrap_or_default()
}

/// Runs `getnameinfo` for `addr`; the host name only if `host` is set.
fn name_info(addr: SocketAddr, host: bool, flags: c_int) -> Names {
    let sa = socket2::SockAddr::from(addr);
    let mut hbuf = vec![0u8; if host { libc::NI_MAXHOST as usize } else { 0 }];
    let mut sbuf = [0u8; 32];
    // SAFETY: `sa` is a valid socket address of `sa.len()` bytes; each
    // buffer is given with its length (a null host with length 0 asks for
    // the service only).
    let rc = unsafe {
        libc::getnameinfo(
            sa.as_ptr().cast::<libc::sockaddr>(),
            sa.len(),
            if host {
                hbuf.as_mut_ptr().cast()
            } else {
                std::ptr::null_mut()
            },
            hbuf.len() as libc::socklen_t,
            sbuf.as_mut_ptr().cast(),
            sbuf.len() as libc::socklen_t,
            flags,
        )
    };
    if rc != 0 {
        return Err(eai_code(rc));
    }
    let service = buffer_text(&sbuf);
    Ok(if host {
        vec![buffer_text(&hbuf), service]
    } else {
        vec![service]
    })
}

/// Runs `getaddrinfo` for the canonical name of `host`.
fn canonical_name(host: &CStr, flags: c_int) -> Names {
    // SAFETY: see `lookup`.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME | flags;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: as in `lookup`.
    let rc = unsafe { libc::getaddrinfo(host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 {
        return Err(eai_code(rc));
    }
    // SAFETY: `res` is a non-empty list from getaddrinfo, freed once after
    // the name is copied; `ai_canonname` is null or NUL-terminated.
    unsafe {
        let name = res
            .as_ref()
            .and_then(|ai| ai.ai_canonname.as_ref())
            .map(|p| CStr::from_ptr(p).to_bytes().to_vec());
        libc::freeaddrinfo(res);
        name.map(|n| vec![n]).ok_or(EAI_NONAME)
    }
}

/// host, service | service | name | false, msg, code =
/// system.nameaddr(address | port | hostname [, mode])
fn nameaddr(lua: Lua) -> Result<Await, Error> {
    awaiting::require_coroutine(lua)?;
    let query = if let Some(addr) = address::test(lua, 1) {
        NameQuery::Address(addr)
    } else if lua.type_of(1) == LUA_TNUMBER {
        let port = lua.arg_integer(1)?;
        let port = u16::try_from(port).map_err(|_| Error::arg(1, "invalid port"))?;
        NameQuery::Port(port)
    } else {
        match CString::new(lua.arg_bytes(1)?) {
            Ok(name) => NameQuery::Host(name),
            Err(_) => return Ok(Await::Done(fail::push(lua, EAI_NONAME))),
        }
    };
    let (mut ni, mut ai) = (0, 0);
    for &c in lua.opt_bytes(2)?.unwrap_or_default() {
        match c {
            b'l' => ni |= libc::NI_NOFQDN,
            b'd' => ni |= libc::NI_DGRAM,
            b'i' => ni |= gnu::NI_IDN,
            b'u' => ni |= gnu::NI_IDN | gnu::NI_IDN_ALLOW_UNASSIGNED,
            b'a' => ni |= gnu::NI_IDN | gnu::NI_IDN_USE_STD3_ASCII_RULES,
            _ => return Err(Error::mode_char(2, c)),
        }
        if matches!(c, b'i' | b'u' | b'a') {
            ai |= gnu::AI_IDN | gnu::AI_CANONIDN;
        }
    }
    let job = Box::new(move || {
        let names = match query {
            NameQuery::Address(addr) => name_info(addr, true, ni | libc::NI_NAMEREQD),
            NameQuery::Port(port) => name_info(SocketAddr::from(([0, 0, 0, 0], port)), false, ni),
            NameQuery::Host(name) => canonical_name(&name, ai),
        };
        Box::new(names) as Outcome
    });
    let id = awaiting::wait(
        lua,
        sys_loop(&lua),
        awaiting::Kind::Dns,
        Wait::Work(job),
        deliver_names,
    )?;
    Ok(Await::Yield(id))
}

fn deliver_names(co: Lua, outcome: Option<Outcome>) -> c_int {
    match outcome.and_then(|o| o.downcast::<Names>().ok()).map(|r| *r) {
        Some(Ok(names)) => {
            for name in &names {
                co.push_bytes(name);
            }
            names.len() as c_int
        }
        Some(Err(code)) => fail::push(co, code),
        None => fail::push(co, libc::ECANCELED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolver_errors_use_libuv_numbers() {
        assert_eq!(eai_code(libc::EAI_NONAME), 3008);
        assert_eq!(eai_code(libc::EAI_AGAIN), 3001);
        assert_eq!(eai_code(libc::EAI_SERVICE), 3010);
        assert_eq!(eai_code(libc::EAI_SOCKTYPE), 3011);
        assert_eq!(
            fail::text(eai_code(libc::EAI_NONAME)),
            "unknown node or service"
        );
    }

    #[test]
    fn only_stream_and_datagram_entries() {
        // Without service nor socket type glibc adds raw entries.
        let entries = lookup(Query {
            node: Some(c"127.0.0.1".into()),
            service: None,
            family: libc::AF_INET,
            socktype: 0,
            flags: libc::AI_NUMERICHOST,
        })
        .unwrap();
        assert!(!entries.is_empty());
        for e in &entries {
            assert!(matches!(e.socktype, libc::SOCK_STREAM | libc::SOCK_DGRAM));
        }
        // SAFETY: all-zero C structs are valid; `ai` points to `sa` only
        // while both live.
        let (mut ai, mut sa): (libc::addrinfo, libc::sockaddr_in) =
            unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        ai.ai_addr = (&raw mut sa).cast();
        ai.ai_addrlen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        for (socktype, listed) in [
            (libc::SOCK_STREAM, true),
            (libc::SOCK_DGRAM, true),
            (libc::SOCK_RAW, false),
            (libc::SOCK_SEQPACKET, false),
        ] {
            ai.ai_socktype = socktype;
            // SAFETY: `ai` describes a valid sockaddr_in of its length.
            assert_eq!(unsafe { entry_of(&ai) }.is_some(), listed);
        }
    }

    #[test]
    fn lookup_of_literals() {
        let entries = lookup(Query {
            node: Some(c"127.0.0.1".into()),
            service: Some(c"80".into()),
            family: libc::AF_UNSPEC,
            socktype: libc::SOCK_STREAM,
            flags: libc::AI_NUMERICHOST,
        })
        .unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].addr, "127.0.0.1:80".parse().unwrap());
        let entries = lookup(Query {
            node: Some(c"::1".into()),
            service: None,
            family: libc::AF_INET6,
            socktype: libc::SOCK_DGRAM,
            flags: libc::AI_NUMERICHOST,
        })
        .unwrap();
        assert_eq!(entries[0].addr, "[::1]:0".parse().unwrap());
        assert_eq!(entries[0].socktype, libc::SOCK_DGRAM);
    }
}
