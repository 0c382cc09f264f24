//! `system.procinfo(which)`: one value per character of `which`, about
//! the process, its user and the machine.
//!
//! Each measure is read once per call: values that several characters
//! share (`uname`, `getrusage`, the password entry, the load averages)
//! are fetched when first needed and kept for the rest of the call. The
//! memory figures come from `/proc/meminfo` (else `sysinfo`), the cgroup
//! limit files and `/proc/self/statm`, as libuv reads them.

use std::ffi::{CStr, c_int};

use super::{c_bytes, last_error, os_error};
use crate::lua::{Error, Lua, Ret, fail};

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
pub fn procinfo(lua: Lua) -> Ret {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_values() {
        assert!(total_memory().unwrap() >= free_memory().unwrap());
        assert!(resident_memory().unwrap() > 0);
        let _ = constrained_memory();
    }
}
