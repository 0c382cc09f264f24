//! `system.nameaddr`: host and service names of an address, the service
//! name of a port, the canonical name of a host (`getnameinfo` and
//! `getaddrinfo` on the worker pool).

use std::ffi::{CStr, CString, c_int};
use std::net::SocketAddr;

use super::super::address;
use super::{EAI_NONAME, eai_code, gnu};
use crate::lua::awaiting::{self, Await};
use crate::lua::{Error, LUA_TNUMBER, Lua, fail};
use crate::runtime::{Outcome, Wait};
use crate::system::sys_loop;

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
pub(super) fn nameaddr(lua: Lua) -> Result<Await, Error> {
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
