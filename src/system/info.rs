//! System information (spec/stdio-info.md §2, §3): `system.procinfo`,
//! and the `system.cpuinfo` / `system.netinfo` iterators.
//!
//! The iterators are callable userdata holding a snapshot taken when they
//! are made (`coutil:cpustats`, `coutil:netifaces`): `it(which, k)` returns
//! `k+1` and the values of entry `k+1`, `#it` the number of entries, and
//! closing them (to-be-closed, or collection) drops the snapshot.
//!
//! Sources are those of libuv on Linux: `/proc` files, `uname`,
//! `getrusage`, `getifaddrs`, the cgroup memory limits. OS failures are
//! raised with libuv's message text.

use std::ffi::{CStr, c_int};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::cfn;
use crate::lua::class::{self, Class, Object};
use crate::lua::{Error, Lua, Reg, Ret, fail};
use crate::system::net::address;

pub const FUNCTIONS: &[Reg] = &[
    (c"procinfo", cfn!(procinfo)),
    (c"cpuinfo", cfn!(cpuinfo)),
    (c"netinfo", cfn!(netinfo)),
];

/// The raised error of an OS failure.
fn os_error(e: &std::io::Error) -> Error {
    Error::msg(fail::text(fail::code_of(e)))
}

fn last_error() -> Error {
    os_error(&std::io::Error::last_os_error())
}

fn c_bytes(chars: &[libc::c_char]) -> &[u8] {
    // SAFETY: c_char and u8 have the same size and alignment.
    let bytes: &[u8] = unsafe { std::slice::from_raw_parts(chars.as_ptr().cast(), chars.len()) };
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

// ---------------------------------------------------------------------
// system.procinfo

/// Values fetched once per `procinfo` call, when first needed, that
/// several characters share.
#[derive(Default)]
struct Cache {
    uname: Option<libc::utsname>,
    usage: Option<libc::rusage>,
    user: Option<User>,
    loads: Option<[f64; 3]>,
}

struct User {
    name: Vec<u8>,
    home: Vec<u8>,
    shell: Vec<u8>,
}

impl Cache {
    fn uname(&mut self) -> Result<&libc::utsname, Error> {
        if self.uname.is_none() {
            // SAFETY: `uname` fills a zeroed struct of plain arrays.
            let mut u: libc::utsname = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            if unsafe { libc::uname(&mut u) } != 0 {
                return Err(last_error());
            }
            self.uname = Some(u);
        }
        Ok(self.uname.as_ref().expect("just set"))
    }

    fn usage(&mut self) -> Result<&libc::rusage, Error> {
        if self.usage.is_none() {
            // SAFETY: `getrusage` fills a zeroed plain struct.
            let mut u: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
                return Err(last_error());
            }
            self.usage = Some(u);
        }
        Ok(self.usage.as_ref().expect("just set"))
    }

    fn user(&mut self) -> Result<&User, Error> {
        if self.user.is_none() {
            self.user = Some(passwd()?);
        }
        Ok(self.user.as_ref().expect("just set"))
    }

    fn loads(&mut self) -> Result<[f64; 3], Error> {
        if self.loads.is_none() {
            let mut loads = [0.0f64; 3];
            // SAFETY: room for the three values asked for.
            if unsafe { libc::getloadavg(loads.as_mut_ptr(), 3) } != 3 {
                return Err(Error::msg(fail::text(libc::ENOSYS)));
            }
            self.loads = Some(loads);
        }
        Ok(self.loads.expect("just set"))
    }
}

/// The password entry of the effective user.
fn passwd() -> Result<User, Error> {
    let mut size = 1024usize;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: a zeroed passwd is filled by getpwuid_r with pointers into
        // `buf`, which outlives their use below.
        unsafe {
            let mut pw: libc::passwd = std::mem::zeroed();
            let mut found: *mut libc::passwd = std::ptr::null_mut();
            let r = libc::getpwuid_r(libc::geteuid(), &mut pw, buf.as_mut_ptr(), size, &mut found);
            if r == libc::ERANGE && size < 1 << 20 {
                size *= 4;
                continue;
            }
            if r != 0 {
                return Err(Error::msg(fail::text(r)));
            }
            if found.is_null() {
                return Err(Error::msg(fail::text(libc::ENOENT)));
            }
            let text = |p: *const libc::c_char| {
                if p.is_null() {
                    Vec::new()
                } else {
                    CStr::from_ptr(p).to_bytes().to_vec()
                }
            };
            return Ok(User {
                name: text(pw.pw_name),
                home: text(pw.pw_dir),
                shell: text(pw.pw_shell),
            });
        }
    }
}

fn hostname() -> Result<Vec<u8>, Error> {
    let mut buf = [0 as libc::c_char; 257];
    // SAFETY: at most 256 bytes are written; the last byte stays 0.
    if unsafe { libc::gethostname(buf.as_mut_ptr(), 256) } != 0 {
        return Err(last_error());
    }
    Ok(c_bytes(&buf).to_vec())
}

/// The temporary directory, as libuv's `uv_os_tmpdir`.
fn tmpdir() -> Vec<u8> {
    use std::os::unix::ffi::OsStringExt;
    let mut dir = ["TMPDIR", "TMP", "TEMP", "TEMPDIR"]
        .iter()
        .filter_map(std::env::var_os)
        .map(|v| v.into_vec())
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| b"/tmp".to_vec());
    if dir.len() > 1 && dir.ends_with(b"/") {
        dir.pop();
    }
    dir
}

/// The home directory: `HOME`, else the password entry's.
fn homedir(cache: &mut Cache) -> Result<Vec<u8>, Error> {
    use std::os::unix::ffi::OsStringExt;
    match std::env::var_os("HOME").map(|v| v.into_vec()) {
        Some(home) if !home.is_empty() => Ok(home),
        _ => Ok(cache.user()?.home.clone()),
    }
}

/// The `kB` value of `key` in `/proc/meminfo`, in bytes.
fn meminfo(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

fn sysinfo() -> Result<libc::sysinfo, Error> {
    // SAFETY: sysinfo fills a zeroed plain struct.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::sysinfo(&mut info) } != 0 {
        return Err(last_error());
    }
    Ok(info)
}

fn total_memory() -> Result<u64, Error> {
    match meminfo("MemTotal") {
        Some(n) => Ok(n),
        None => sysinfo().map(|i| i.totalram * i.mem_unit as u64),
    }
}

fn free_memory() -> Result<u64, Error> {
    match meminfo("MemAvailable") {
        Some(n) => Ok(n),
        None => sysinfo().map(|i| i.freeram * i.mem_unit as u64),
    }
}

/// A cgroup memory limit file: `None` when unreadable or unlimited.
fn read_limit(path: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    if text == "max" {
        return None;
    }
    let n: u64 = text.parse().ok()?;
    // cgroup v1 shows "no limit" as LONG_MAX rounded down to a page.
    // SAFETY: sysconf only reads a system value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    (n != 0 && n != i64::MAX as u64 & !(page - 1)).then_some(n)
}

/// The memory limit of the process's cgroup (v2, else v1), or 0.
fn constrained_memory() -> u64 {
    let Ok(groups) = std::fs::read_to_string("/proc/self/cgroup") else {
        return 0;
    };
    let mut limits = Vec::new();
    if let Some(path) = groups.lines().find_map(|l| l.strip_prefix("0::")) {
        let dir = format!("/sys/fs/cgroup{}", path.trim_end_matches('/'));
        limits.push(read_limit(&format!("{dir}/memory.max")));
        limits.push(read_limit(&format!("{dir}/memory.high")));
    }
    let v1 = groups.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then_some(path)
    });
    if let Some(path) = v1 {
        let dir = format!("/sys/fs/cgroup/memory{}", path.trim_end_matches('/'));
        let own = read_limit(&format!("{dir}/memory.limit_in_bytes"));
        limits.push(own);
        if own.is_none() {
            limits.push(read_limit("/sys/fs/cgroup/memory/memory.limit_in_bytes"));
        }
    }
    limits.into_iter().flatten().min().unwrap_or(0)
}

/// Resident memory of the process, from `/proc/self/statm`.
fn resident_memory() -> Result<u64, Error> {
    let text = std::fs::read_to_string("/proc/self/statm").map_err(|e| os_error(&e))?;
    let pages: u64 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::msg(fail::text(libc::EINVAL)))?;
    // SAFETY: sysconf only reads a system value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    Ok(pages * page)
}

/// Seconds since boot, as libuv's `uv_uptime`: the first number of
/// `/proc/uptime` (centiseconds; right in containers where the clock may
/// not be), else the whole seconds of `CLOCK_BOOTTIME`.
fn uptime() -> Result<f64, Error> {
    let text = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
    if let Some(Ok(secs)) = text.split_whitespace().next().map(str::parse::<f64>) {
        return Ok(secs);
    }
    // SAFETY: clock_gettime fills a zeroed timespec.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
        return Err(last_error());
    }
    Ok(ts.tv_sec as f64)
}

fn seconds(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6
}

/// ... = system.procinfo(which)
fn procinfo(lua: Lua) -> Ret {
    let which = lua.arg_bytes(1)?;
    let count = c_int::try_from(which.len()).map_err(|_| Error::msg("stack overflow"))?;
    lua.check_stack(count)?;
    let mut cache = Cache::default();
    // Each measure is read once per call (rule R5): a repeated character
    // pushes a copy of the value of its first occurrence (stack index).
    let mut first: [c_int; 256] = [0; 256];
    for &c in which {
        if first[c as usize] != 0 {
            lua.push_value(first[c as usize]);
            continue;
        }
        match c {
            b'e' => {
                use std::os::unix::ffi::OsStrExt;
                let exe = std::env::current_exe().map_err(|e| os_error(&e))?;
                lua.push_bytes(exe.as_os_str().as_bytes());
            }
            b'n' => lua.push_bytes(&hostname()?),
            b'T' => lua.push_bytes(&tmpdir()),
            b'h' => lua.push_bytes(c_bytes(&cache.uname()?.machine)),
            b'k' => lua.push_bytes(c_bytes(&cache.uname()?.sysname)),
            b'v' => lua.push_bytes(c_bytes(&cache.uname()?.release)),
            b'V' => lua.push_bytes(c_bytes(&cache.uname()?.version)),
            b'$' => lua.push_bytes(&cache.user()?.shell),
            b'H' => lua.push_bytes(&homedir(&mut cache)?),
            b'U' => lua.push_bytes(&cache.user()?.name),
            // SAFETY: these id and pid getters cannot fail.
            b'u' => lua.push_integer(unsafe { libc::geteuid() } as i64),
            // SAFETY: as above.
            b'g' => lua.push_integer(unsafe { libc::getegid() } as i64),
            // SAFETY: as above.
            b'#' => lua.push_integer(unsafe { libc::getpid() } as i64),
            // SAFETY: as above.
            b'^' => lua.push_integer(unsafe { libc::getppid() } as i64),
            b'=' | b'd' | b'm' | b'R' | b'<' | b'>' | b'i' | b'o' | b'p' | b'P' | b'S' | b'w'
            | b'x' | b'X' => {
                let u = cache.usage()?;
                let value = match c {
                    b'=' => u.ru_isrss * 1024,
                    b'd' => u.ru_idrss * 1024,
                    b'm' => u.ru_ixrss * 1024,
                    b'R' => u.ru_maxrss * 1024,
                    b'<' => u.ru_msgrcv,
                    b'>' => u.ru_msgsnd,
                    b'i' => u.ru_inblock,
                    b'o' => u.ru_oublock,
                    b'p' => u.ru_minflt,
                    b'P' => u.ru_majflt,
                    b'S' => u.ru_nsignals,
                    b'w' => u.ru_nswap,
                    b'x' => u.ru_nvcsw,
                    _ => u.ru_nivcsw,
                };
                #[allow(clippy::unnecessary_cast)] // c_long is i32 on 32-bit targets
                lua.push_integer(value as i64);
            }
            b'c' => lua.push_number(seconds(cache.usage()?.ru_utime)),
            b's' => lua.push_number(seconds(cache.usage()?.ru_stime)),
            b'1' => lua.push_number(cache.loads()?[0]),
            b'l' => lua.push_number(cache.loads()?[1]),
            b'L' => lua.push_number(cache.loads()?[2]),
            b't' => lua.push_number(uptime()?),
            b'b' => lua.push_integer(total_memory()? as i64),
            b'f' => lua.push_integer(free_memory()? as i64),
            b'M' => lua.push_integer(constrained_memory() as i64),
            b'r' => lua.push_integer(resident_memory()? as i64),
            _ => return Err(Error::mode_char(1, c)),
        }
        first[c as usize] = lua.top();
    }
    Ok(count)
}

// ---------------------------------------------------------------------
// Iterators

/// One entry of a snapshot, pushed one value per character.
trait Entry: Sized + 'static {
    /// Is `c` a character of this kind of entry?
    fn known(c: u8) -> bool;
    /// Pushes the value of character `c` (a known one).
    fn push(&self, lua: Lua, c: u8);
}

/// A snapshot of entries: the iterator object.
struct Snapshot<E> {
    entries: Vec<E>,
}

/// Checks the characters of the `which` at `i`.
fn check_which<'a, E: Entry>(lua: Lua, i: c_int) -> Result<&'a [u8], Error> {
    let which: &'a [u8] = lua.arg_bytes(i)?;
    match which.iter().find(|&&c| !E::known(c)) {
        Some(&c) => Err(Error::mode_char(i, c)),
        None => Ok(which),
    }
}

fn closed() -> Error {
    Error::msg("closed object")
}

fn snapshot<'a, E: Entry>(lua: Lua) -> Result<&'a Snapshot<E>, Error>
where
    Snapshot<E>: Object,
{
    class::check::<Snapshot<E>>(lua, 1)?
        .as_ref()
        .ok_or_else(closed)
}

/// k+1, ... | (nothing) = it(which, k)
fn call<E: Entry>(lua: Lua) -> Ret
where
    Snapshot<E>: Object,
{
    let snap = snapshot::<E>(lua)?;
    let which = check_which::<E>(lua, 2)?;
    let k = lua.arg_integer(3)?;
    let Some(entry) = usize::try_from(k).ok().and_then(|k| snap.entries.get(k)) else {
        return Ok(0);
    };
    let count = c_int::try_from(which.len())
        .ok()
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| Error::msg("stack overflow"))?;
    lua.check_stack(count)?;
    lua.push_integer(k + 1);
    for &c in which {
        entry.push(lua, c);
    }
    Ok(count)
}

/// #it
fn len<E: Entry>(lua: Lua) -> Ret
where
    Snapshot<E>: Object,
{
    let n = snapshot::<E>(lua)?.entries.len();
    lua.push_integer(n as i64);
    Ok(1)
}

/// `__close`: drops the snapshot.
fn close<E: Entry>(lua: Lua) -> Ret
where
    Snapshot<E>: Object,
{
    if let Some(slot) = class::test::<Snapshot<E>>(lua, 1) {
        *slot = None;
    }
    Ok(0)
}

/// Pushes `it, which, 0, it` for the snapshot, `which` being at `i`.
fn push_iterator<E: Entry>(lua: Lua, entries: Vec<E>, i: c_int) -> Ret
where
    Snapshot<E>: Object,
{
    lua.set_top(i);
    class::push(lua, Snapshot { entries });
    lua.push_value(i);
    lua.push_integer(0);
    lua.push_value(i + 1);
    Ok(4)
}

// ---------------------------------------------------------------------
// system.cpuinfo

struct Cpu {
    model: Vec<u8>,
    speed: i64,
    user: i64,
    nice: i64,
    sys: i64,
    irq: i64,
    idle: i64,
}

impl Entry for Cpu {
    fn known(c: u8) -> bool {
        b"mcunsdi".contains(&c)
    }
    fn push(&self, lua: Lua, c: u8) {
        match c {
            b'm' => lua.push_bytes(&self.model),
            b'c' => lua.push_integer(self.speed),
            b'u' => lua.push_integer(self.user),
            b'n' => lua.push_integer(self.nice),
            b's' => lua.push_integer(self.sys),
            b'd' => lua.push_integer(self.irq),
            _ => lua.push_integer(self.idle),
        }
    }
}

impl Object for Snapshot<Cpu> {
    const CLASS: &'static Class = &Class {
        name: c"coutil:cpustats",
        methods: &[],
        meta: &[
            (c"__call", cfn!(call::<Cpu>)),
            (c"__len", cfn!(len::<Cpu>)),
            (c"__close", cfn!(close::<Cpu>)),
        ],
    };

    crate::class_key!();
}

/// Model and speed (MHz) of each processor number, from `/proc/cpuinfo`.
fn cpu_models() -> Vec<(usize, Vec<u8>, i64)> {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mut cpus: Vec<(usize, Vec<u8>, i64)> = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" => {
                if let Ok(n) = value.parse() {
                    cpus.push((n, b"unknown".to_vec(), 0));
                }
            }
            "model name" => {
                if let Some(cpu) = cpus.last_mut() {
                    cpu.1 = value.as_bytes().to_vec();
                }
            }
            "cpu MHz" => {
                if let (Some(cpu), Ok(mhz)) = (cpus.last_mut(), value.parse::<f64>()) {
                    cpu.2 = mhz as i64;
                }
            }
            _ => {}
        }
    }
    cpus
}

fn cpu_entries() -> Result<Vec<Cpu>, Error> {
    let stat = std::fs::read_to_string("/proc/stat").map_err(|e| os_error(&e))?;
    // SAFETY: sysconf only reads a system value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    let ms = (1000 / ticks).max(1);
    let models = cpu_models();
    let mut cpus = Vec::new();
    for line in stat.lines() {
        // "cpuN ..." lines; not the "cpu ..." total.
        let Some(rest) = line
            .strip_prefix("cpu")
            .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let Some(Ok(n)) = fields.next().map(str::parse::<usize>) else {
            continue;
        };
        let times: Vec<i64> = fields.map(|f| f.parse().unwrap_or(0)).collect();
        let time = |i: usize| times.get(i).copied().unwrap_or(0) * ms;
        let (model, mut speed) = models
            .iter()
            .find(|m| m.0 == n)
            .map_or((b"unknown".to_vec(), 0), |m| (m.1.clone(), m.2));
        let freq = format!("/sys/devices/system/cpu/cpu{n}/cpufreq/scaling_cur_freq");
        if let Some(khz) = std::fs::read_to_string(freq)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
        {
            speed = khz / 1000;
        }
        cpus.push(Cpu {
            model,
            speed,
            user: time(0),
            nice: time(1),
            sys: time(2),
            idle: time(3),
            irq: time(5),
        });
    }
    if cpus.is_empty() {
        return Err(Error::msg(fail::text(libc::ENOSYS)));
    }
    Ok(cpus)
}

/// it, which, 0, it = system.cpuinfo([which])
fn cpuinfo(lua: Lua) -> Ret {
    if !lua.is_none_or_nil(1) {
        check_which::<Cpu>(lua, 1)?;
    }
    let cpus = cpu_entries()?;
    push_iterator(lua, cpus, 1)
}

// ---------------------------------------------------------------------
// system.netinfo

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
fn netinfo(lua: Lua) -> Ret {
    match lua.arg_option(1, &["all", "name", "id"], None)? {
        0 => {
            if !lua.is_none_or_nil(2) {
                check_which::<Iface>(lua, 2)?;
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
        assert!(!cpu_entries().unwrap().is_empty());
        let ifaces = iface_entries().unwrap();
        assert!(ifaces.iter().any(|i| i.internal));
    }

    #[test]
    fn memory_values() {
        assert!(total_memory().unwrap() >= free_memory().unwrap());
        assert!(resident_memory().unwrap() > 0);
        let _ = constrained_memory();
    }
}
