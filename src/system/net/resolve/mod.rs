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

use std::ffi::{CString, c_char, c_int};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::afn;
use crate::lua::awaiting::{self, Await};
use crate::lua::class;
use crate::lua::{Error, LUA_TNUMBER, Lua, Reg, fail};
use crate::runtime::{Outcome, Wait};
use crate::system::sys_loop;

mod addrlist;
mod nameaddr;

use addrlist::{AddrList, Entry};
use nameaddr::nameaddr;

pub const FUNCTIONS: &[Reg] = &[(c"findaddr", afn!(findaddr)), (c"nameaddr", afn!(nameaddr))];

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
