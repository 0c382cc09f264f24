//! `system.netinfo`: an iterator over the addresses of the network
//! interfaces that are up and running (`getifaddrs`, each completed with
//! the MAC address of its interface's packet entry), and the name of an
//! interface index (`if_indextoname`).

use std::ffi::{CStr, c_int};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Entry, Snapshot, c_bytes, call, check_which, close, last_error, len, push_iterator};
use crate::cfn;
use crate::lua::class::{Class, Object};
use crate::lua::{Error, Lua, Ret, fail};
use crate::system::net::address;

#[derive(Clone)]
struct Iface {
    name: Vec<u8>,
    internal: bool,
    ip: IpAddr,
    mask: Vec<u8>,
    mac: [u8; 6],
}

impl Entry for Iface {
    fn known(c: u8) -> bool {
        b"nidlmtbTB".contains(&c)
    }
    fn push(&self, lua: Lua, c: u8) {
        match c {
            b'n' => lua.push_bytes(&self.name),
            b'i' => lua.push_bool(self.internal),
            b'd' => lua.push_bytes(if self.ip.is_ipv4() { b"ipv4" } else { b"ipv6" }),
            b'l' => lua.push_integer(self.mask.iter().map(|b| b.count_ones() as i64).sum()),
            b'm' => lua.push_bytes(&self.mask),
            b't' => lua.push_bytes(address::literal(self.ip).as_bytes()),
            b'b' => match self.ip {
                IpAddr::V4(ip) => lua.push_bytes(&ip.octets()),
                IpAddr::V6(ip) => lua.push_bytes(&ip.octets()),
            },
            b'T' => {
                let m = self.mac;
                let text = format!(
                    "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    m[0], m[1], m[2], m[3], m[4], m[5]
                );
                lua.push_bytes(text.as_bytes());
            }
            _ => lua.push_bytes(&self.mac),
        }
    }
}

impl Object for Snapshot<Iface> {
    const CLASS: &'static Class = &Class {
        name: c"coutil:netifaces",
        methods: &[],
        meta: &[
            (c"__call", cfn!(call::<Iface>)),
            (c"__len", cfn!(len::<Iface>)),
            (c"__close", cfn!(close::<Iface>)),
        ],
    };

    crate::class_key!();
}

/// The IP address in `sa`, if it is one.
///
/// # Safety
/// `sa` must be null or point to a socket address of its family's size.
unsafe fn ip_of(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: the family tells the actual type, as the caller promises.
    unsafe {
        match (*sa).sa_family as c_int {
            libc::AF_INET => {
                let a = &*(sa as *const libc::sockaddr_in);
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr))))
            }
            libc::AF_INET6 => {
                let a = &*(sa as *const libc::sockaddr_in6);
                Some(IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}

/// The addresses of the interfaces that are up and running.
fn iface_entries() -> Result<Vec<Iface>, Error> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs makes a list freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(last_error());
    }
    let mut entries = Vec::new();
    let mut macs: Vec<(Vec<u8>, [u8; 6])> = Vec::new();
    let mut p = list;
    // SAFETY: walks the list made by getifaddrs; each node's pointers are
    // null or valid for their address family.
    unsafe {
        while let Some(ifa) = p.as_ref() {
            p = ifa.ifa_next;
            let flags = ifa.ifa_flags as c_int;
            let up = flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0;
            if !up || ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
                continue;
            }
            let name = CStr::from_ptr(ifa.ifa_name).to_bytes().to_vec();
            if (*ifa.ifa_addr).sa_family as c_int == libc::AF_PACKET {
                let ll = &*(ifa.ifa_addr as *const libc::sockaddr_ll);
                let mut mac = [0u8; 6];
                if ll.sll_halen as usize >= 6 {
                    mac.copy_from_slice(&ll.sll_addr[..6]);
                }
                macs.push((name, mac));
                continue;
            }
            let Some(ip) = ip_of(ifa.ifa_addr) else {
                continue;
            };
            let mask = match (ip_of(ifa.ifa_netmask), ip) {
                (Some(IpAddr::V4(m)), IpAddr::V4(_)) => m.octets().to_vec(),
                (Some(IpAddr::V6(m)), IpAddr::V6(_)) => m.octets().to_vec(),
                (_, IpAddr::V4(_)) => vec![0; 4],
                (_, IpAddr::V6(_)) => vec![0; 16],
            };
            entries.push(Iface {
                name,
                internal: flags & libc::IFF_LOOPBACK != 0,
                ip,
                mask,
                mac: [0; 6],
            });
        }
        libc::freeifaddrs(list);
    }
    for entry in &mut entries {
        if let Some((_, mac)) = macs.iter().find(|(n, _)| *n == entry.name) {
            entry.mac = *mac;
        }
    }
    Ok(entries)
}

/// it, which, 0, it = system.netinfo("all" [, which])
/// name | false, msg, code = system.netinfo("name" | "id", index)
pub fn netinfo(lua: Lua) -> Ret {
    match lua.arg_option(1, &["all", "name", "id"], None)? {
        0 => {
            if !lua.is_none_or_nil(2) {
                check_which::<Iface>(&lua, 2)?;
            }
            let entries = iface_entries()?;
            push_iterator(lua, entries, 2)
        }
        _ => {
            let index = lua.arg_integer(2)?;
            if !(1..=i32::MAX as i64).contains(&index) {
                return Err(Error::arg(2, "out of range"));
            }
            let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE + 1];
            // SAFETY: `buf` has room for IF_NAMESIZE bytes.
            let p = unsafe { libc::if_indextoname(index as libc::c_uint, buf.as_mut_ptr()) };
            if p.is_null() {
                let code = std::io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::ENXIO);
                return Ok(fail::push(lua, code));
            }
            // On POSIX the scope identifier of an interface is its name.
            lua.push_bytes(c_bytes(&buf));
            Ok(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_not_empty() {
        let ifaces = iface_entries().unwrap();
        assert!(ifaces.iter().any(|i| i.internal));
    }
}
