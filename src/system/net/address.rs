//! `coutil:netaddress`: an IPv4 or IPv6 socket address (spec/network.md §1).
//!
//! The object holds a `std::net::SocketAddr`; other areas (sockets, name
//! resolution) use [`push`], [`check`] and [`test`] to pass addresses.
//! Scripts see the fields `type`, `literal`, `binary` and `port` through the
//! `__index`/`__newindex` metamethods (the class has no methods), so the
//! metatable's `__index` is a function here, not a table.
//!
//! Literals follow libuv (and glibc's `inet_ntop`/`inet_pton`): IPv6 text
//! is the compressed lowercase form with IPv4-mapped (`::ffff:a.b.c.d`) and
//! IPv4-compatible (`::a.b.c.d`) addresses written dotted; a `%zone` suffix
//! of an IPv6 literal is ignored when parsing.

use std::ffi::c_int;
use std::fmt::Write;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::unix::ffi::OsStrExt;

use socket2::SockAddr;

use super::netio::Domain;
use crate::cfn;
use crate::lua::class::{self, Class, Object};
use crate::lua::{Error, Lua, Reg, Ret};
use crate::memory;

pub const FUNCTIONS: &[Reg] = &[(c"address", cfn!(address))];

const META: &[Reg] = &[
    (c"__index", cfn!(index)),
    (c"__newindex", cfn!(newindex)),
    (c"__tostring", cfn!(tostring)),
    (c"__eq", cfn!(eq)),
];

pub struct NetAddress(pub SocketAddr);

impl Object for NetAddress {
    const CLASS: &'static Class = &Class {
        name: c"coutil:netaddress",
        methods: &[],
        // `__index` here replaces the (empty) methods table.
        meta: META,
    };

    crate::class_key!();
}

/// Pushes a new address object.
pub fn push(lua: Lua, addr: SocketAddr) {
    class::push(lua, NetAddress(addr));
}

/// The address at `i`, if it is an address object.
pub fn test(lua: Lua, i: c_int) -> Option<SocketAddr> {
    class::with::<NetAddress, _>(lua, i, |slot| Some(slot.as_ref()?.0)).flatten()
}

/// The address at `i`, or the error `coutil:netaddress expected, got <t>`.
pub fn check(lua: Lua, i: c_int) -> Result<SocketAddr, Error> {
    test(lua, i).ok_or(Error::Type(i, c"coutil:netaddress"))
}

/// Sets the address object at `i` to `addr`, or returns the error of
/// [`check`].
pub fn set(lua: Lua, i: c_int, addr: SocketAddr) -> Result<(), Error> {
    let found = class::with::<NetAddress, _>(lua, i, |slot| slot.as_mut().map(|a| a.0 = addr));
    found.flatten().ok_or(Error::Type(i, c"coutil:netaddress"))
}

/// Like [`set`] for a value checked earlier (in the same C frame) to be
/// nil or an address object and kept on the stack since: no class check;
/// nothing for nil.
///
/// # Safety
/// The value at `i` must be nil or an address object.
pub unsafe fn set_kept(lua: Lua, i: c_int, addr: SocketAddr) {
    // SAFETY: as the caller promises.
    unsafe {
        class::with_unchecked::<NetAddress, _>(lua, i, |slot| slot.as_mut().map(|a| a.0 = addr))
    };
}

const TYPES: &[&str] = &["ipv4", "ipv6"];
const FIELDS: &[&str] = &["type", "literal", "binary", "port"];

/// The zero address of a family: `0.0.0.0:0` or `[::]:0`.
fn zero(v6: bool) -> SocketAddr {
    if v6 {
        SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0))
    } else {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
    }
}

fn invalid_argument() -> Error {
    Error::msg(crate::lua::fail::text(libc::EINVAL))
}

/// Parses a numeric literal of one family (`%zone` of IPv6 ignored).
pub fn parse_literal(text: &[u8], v6: bool) -> Option<IpAddr> {
    let text = std::str::from_utf8(text).ok()?;
    if v6 {
        let text = text.split('%').next().unwrap_or(text);
        text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

/// A port written as plain decimal digits, 0..65535.
fn parse_port(text: &[u8]) -> Option<u16> {
    if text.is_empty() {
        return None;
    }
    let mut n: u32 = 0;
    for &c in text {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (c - b'0') as u32;
        if n > 65535 {
            return None;
        }
    }
    Some(n as u16)
}

/// `"a.b.c.d:port"` or `"[literal]:port"`.
fn parse_uri(uri: &[u8], v6: bool) -> Result<SocketAddr, Error> {
    let (host, port) = if v6 {
        let close = match uri.iter().position(|&c| c == b']') {
            Some(k) if uri.first() == Some(&b'[') && uri.get(k + 1) == Some(&b':') => k,
            _ => return Err(Error::arg(2, "invalid URI format")),
        };
        (&uri[1..close], &uri[close + 2..])
    } else {
        match uri.iter().rposition(|&c| c == b':') {
            Some(k) => (&uri[..k], &uri[k + 1..]),
            None => return Err(Error::arg(2, "invalid URI format")),
        }
    };
    let port = parse_port(port).ok_or(Error::arg(2, "invalid port"))?;
    let ip = parse_literal(host, v6).ok_or_else(invalid_argument)?;
    Ok(SocketAddr::new(ip, port))
}

/// The IP address of raw bytes: 4 for IPv4, 16 for IPv6.
fn from_binary(bytes: &[u8], v6: bool) -> Option<IpAddr> {
    if v6 {
        <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| IpAddr::V6(Ipv6Addr::from(b)))
    } else {
        <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| IpAddr::V4(Ipv4Addr::from(b)))
    }
}

fn arg_port(lua: Lua, i: c_int) -> Result<u16, Error> {
    let port = lua.arg_integer(i)?;
    u16::try_from(port).map_err(|_| Error::arg(i, "invalid port"))
}

/// a = system.address(type [, data [, port [, mode]]])
fn address(lua: Lua) -> Ret {
    let v6 = lua.arg_option(1, TYPES, None)? == 1;
    let nargs = lua.top();
    let addr = if nargs < 2 {
        zero(v6)
    } else {
        if nargs == 2 {
            memory::with_arg_bytes(lua, 2, |data| parse_uri(data, v6))??
        } else {
            memory::with_arg_bytes(lua, 2, |_| ())?;
            let port = arg_port(lua, 3)?;
            let binary = match lua.opt_bytes(4)? {
                None | Some(b"t") => false,
                Some(b"b") => true,
                Some(_) => return Err(Error::arg(4, "invalid mode")),
            };
            // The data is read after the other arguments: converting a
            // number to the mode's string may run Lua code.
            let parse = |data: &[u8]| match binary {
                true => from_binary(data, v6).ok_or(Error::arg(2, "invalid binary address")),
                false => parse_literal(data, v6).ok_or_else(invalid_argument),
            };
            let ip = memory::with_arg_bytes(lua, 2, parse)??;
            SocketAddr::new(ip, port)
        }
    };
    push(lua, addr);
    Ok(1)
}

/// The text of an IP address, as libuv writes it.
pub fn literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => literal6(&ip),
    }
}

fn literal6(ip: &Ipv6Addr) -> String {
    let words = ip.segments();
    // The longest run of two or more zero words (the first of equal ones)
    // becomes "::".
    let (mut base, mut len) = (None, 0);
    let mut i = 0;
    while i < 8 {
        if words[i] == 0 {
            let start = i;
            while i < 8 && words[i] == 0 {
                i += 1;
            }
            if i - start > len {
                (base, len) = (Some(start), i - start);
            }
        } else {
            i += 1;
        }
    }
    if len < 2 {
        base = None;
    }
    let mut out = String::with_capacity(46);
    for (i, &w) in words.iter().enumerate() {
        if let Some(b) = base
            && (b..b + len).contains(&i)
        {
            if i == b {
                out.push(':');
            }
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        // IPv4-compatible or IPv4-mapped: the last 32 bits dotted.
        if i == 6 && base == Some(0) && (len == 6 || (len == 5 && words[5] == 0xffff)) {
            let o = ip.octets();
            let _ = write!(out, "{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
            return out;
        }
        let _ = write!(out, "{w:x}");
    }
    if base.is_some_and(|b| b + len == 8) {
        out.push(':');
    }
    out
}

fn type_name(addr: &SocketAddr) -> &'static str {
    if addr.is_ipv6() { "ipv6" } else { "ipv4" }
}

/// The raw bytes of an IP address.
fn binary(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    }
}

/// value = a.<field>
fn index(lua: Lua) -> Ret {
    let addr = check(lua, 1)?;
    match lua.arg_option(2, FIELDS, None)? {
        0 => lua.push_bytes(type_name(&addr).as_bytes()),
        1 => lua.push_bytes(literal(addr.ip()).as_bytes()),
        2 => lua.push_bytes(&binary(addr.ip())),
        _ => lua.push_integer(addr.port() as i64),
    }
    Ok(1)
}

/// a.<field> = value
fn newindex(lua: Lua) -> Ret {
    let mut addr = check(lua, 1)?;
    let v6 = addr.is_ipv6();
    match lua.arg_option(2, FIELDS, None)? {
        1 => {
            let text = lua.arg_bytes(3)?;
            let ip = parse_literal(text, v6).ok_or_else(invalid_argument)?;
            addr.set_ip(ip);
        }
        2 => {
            let ip = memory::with_arg_bytes(lua, 3, |bytes| from_binary(bytes, v6))?
                .ok_or(Error::arg(3, "wrong byte size"))?;
            addr.set_ip(ip);
        }
        3 => {
            let port = arg_port(lua, 3)?;
            addr.set_port(port);
        }
        // `type` cannot be written.
        _ => {
            let mut text = b"invalid option '".to_vec();
            text.extend_from_slice(lua.to_bytes(2).unwrap_or_default());
            text.push(b'\'');
            return Err(Error::Arg(2, text.into()));
        }
    }
    set(lua, 1, addr)?;
    Ok(0)
}

/// The text of a socket address: `a.b.c.d:port` or `[literal]:port`.
pub fn to_text(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", literal6(a.ip()), a.port()),
    }
}

/// tostring(a)
fn tostring(lua: Lua) -> Ret {
    let addr = check(lua, 1)?;
    lua.push_bytes(to_text(&addr).as_bytes());
    Ok(1)
}

/// a == b: same family, port and address bytes.
fn eq(lua: Lua) -> Ret {
    let same = class::with_pair::<NetAddress, _>(lua, 1, 2, |pair| match pair {
        Ok((Some(a), Some(b))) => a.0.ip() == b.0.ip() && a.0.port() == b.0.port(),
        Err(Some(_)) => true,
        _ => false,
    });
    let same = same.unwrap_or(false);
    lua.push_bool(same);
    Ok(1)
}

/// The address object at `i` for a socket of `domain`, copied.
pub fn ip_arg(lua: Lua, i: c_int, domain: Domain) -> Result<SocketAddr, Error> {
    let addr = check(lua, i)?;
    match (addr, domain) {
        (SocketAddr::V4(_), Domain::Ipv4) | (SocketAddr::V6(_), Domain::Ipv6) => Ok(addr),
        _ => Err(Error::arg(i, "wrong domain")),
    }
}

/// The address argument `i` of `bind`/`connect`: an address object of
/// the socket's family, or a path for local sockets (whose conversion may
/// fail, e.g. a path too long).
pub fn target(lua: Lua, i: c_int, domain: Domain) -> Result<io::Result<SockAddr>, Error> {
    if domain.is_ip() {
        return Ok(Ok(SockAddr::from(ip_arg(lua, i, domain)?)));
    }
    let path = lua.arg_bytes(i)?;
    if path.contains(&0) {
        // As the file functions: a path is never silently cut.
        return Ok(Err(io::Error::from_raw_os_error(libc::EINVAL)));
    }
    Ok(SockAddr::unix(std::ffi::OsStr::from_bytes(path))
        .map_err(|_| io::Error::from_raw_os_error(libc::ENAMETOOLONG)))
}

/// The path of a local socket address ("" if unnamed; abstract names
/// start with a NUL byte).
pub fn path_of(addr: &SockAddr) -> Vec<u8> {
    if let Some(p) = addr.as_pathname() {
        p.as_os_str().as_bytes().to_vec()
    } else if let Some(name) = addr.as_abstract_namespace() {
        let mut v = vec![0];
        v.extend_from_slice(name);
        v
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text6(s: &str) -> String {
        literal6(&s.parse().unwrap())
    }

    #[test]
    fn ipv6_text_is_compressed_like_libuv() {
        assert_eq!(text6("::"), "::");
        assert_eq!(text6("::1"), "::1");
        assert_eq!(text6("1:0:0:0:0:0:0:f"), "1::f");
        assert_eq!(text6("1:0:0:2:0:0:0:3"), "1:0:0:2::3");
        assert_eq!(text6("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7");
        assert_eq!(text6("1:0:0:2:3:4:0:0"), "1::2:3:4:0:0");
        assert_eq!(text6("1:2:3:4:5:6:7:0"), "1:2:3:4:5:6:7:0");
        assert_eq!(text6("1:2:3:4:5:6:0:0"), "1:2:3:4:5:6::");
        assert_eq!(text6("::FFFF:192.168.0.1"), "::ffff:192.168.0.1");
        assert_eq!(text6("::1.2.3.4"), "::1.2.3.4");
        assert_eq!(text6("ABCD::EF01"), "abcd::ef01");
    }

    #[test]
    fn uri_and_port_parsing() {
        assert_eq!(parse_port(b"65535"), Some(65535));
        assert_eq!(parse_port(b"0000000000080"), Some(80));
        for bad in [&b"65536"[..], b"-1", b"0x1f90", b"", b"+1", b"1 "] {
            assert_eq!(parse_port(bad), None);
        }
        assert_eq!(
            parse_uri(b"[::1]:8", true).unwrap(),
            "[::1]:8".parse().unwrap()
        );
        assert_eq!(
            parse_uri(b"1.2.3.4:80", false).unwrap(),
            "1.2.3.4:80".parse().unwrap()
        );
        assert!(parse_uri(b"::1:80", true).is_err());
        assert!(parse_uri(b"1.2.3.4", false).is_err());
        assert_eq!(
            parse_literal(b"fe80::1%lo", true),
            Some("fe80::1".parse().unwrap())
        );
    }
}
