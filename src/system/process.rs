//! Process state (spec/process.md §2): priority, working directory and
//! environment variables, and packed environments (`coutil:procesenv`).
//!
//! The environment is read and changed through `std::env`, whose accesses
//! are serialised with each other (C `getenv` calls in other threads are
//! not, exactly as with libuv's `uv_os_setenv`). Names and values are cut
//! at their first `"\0"`, as C strings would be. `getenv` answers what C
//! `getenv` answers, even for names with `=` (rule R5); `setenv` refuses
//! those.

use std::ffi::{CString, OsStr, c_int};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::cfn;
use crate::lua::class::{self, Class, Object};
use crate::lua::{
    Error, LUA_TNIL, LUA_TNONE, LUA_TNUMBER, LUA_TSTRING, LUA_TTABLE, Lua, Reg, Ret, fail,
};
use crate::system::errno::{errno as last_errno, errno_location};

pub const FUNCTIONS: &[Reg] = &[
    (c"getpriority", cfn!(getpriority)),
    (c"setpriority", cfn!(setpriority)),
    (c"getdir", cfn!(getdir)),
    (c"setdir", cfn!(setdir)),
    (c"getenv", cfn!(getenv)),
    (c"setenv", cfn!(setenv)),
    (c"packenv", cfn!(packenv)),
    (c"unpackenv", cfn!(unpackenv)),
];

/// Priority names and values.
const PRIORITIES: &[(&str, i64)] = &[
    ("highest", -20),
    ("high", -14),
    ("above", -7),
    ("normal", 0),
    ("below", 10),
    ("low", 19),
];

fn arg_pid(lua: Lua, i: c_int) -> Result<libc::id_t, Error> {
    let pid = lua.arg_integer(i)?;
    match c_int::try_from(pid) {
        // A negative pid reaches the OS as the id it converts to (ESRCH).
        Ok(pid) => Ok(pid as libc::id_t),
        Err(_) => Err(Error::arg(i, "out of range")),
    }
}

/// name, value | false, msg, code = system.getpriority(pid)
fn getpriority(lua: Lua) -> Ret {
    let pid = arg_pid(lua, 1)?;
    // SAFETY: errno is reset to tell a -1 priority from a failure.
    let value = unsafe {
        *errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, pid)
    };
    if value == -1 {
        let e = last_errno();
        if e != 0 {
            return Ok(fail::push(lua, e));
        }
    }
    let value = value as i64;
    let name = PRIORITIES
        .iter()
        .find(|&&(_, v)| v == value)
        .map_or("other", |&(n, _)| n);
    lua.push_bytes(name.as_bytes());
    lua.push_integer(value);
    Ok(2)
}

/// true | false, msg, code = system.setpriority(pid, value)
fn setpriority(lua: Lua) -> Ret {
    let pid = arg_pid(lua, 1)?;
    let value = if lua.type_of(2) == LUA_TNUMBER {
        let v = lua.arg_integer(2)?;
        if !(-20..=19).contains(&v) {
            return Err(Error::arg(2, "out of range"));
        }
        v
    } else {
        let names: Vec<&str> = PRIORITIES.iter().map(|&(n, _)| n).collect();
        PRIORITIES[lua.arg_option(2, &names, None)?].1
    };
    // SAFETY: plain integers.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, pid, value as c_int) } == 0 {
        lua.push_bool(true);
        Ok(1)
    } else {
        Ok(fail::push(lua, last_errno()))
    }
}

/// path = system.getdir(): raises on failure.
fn getdir(lua: Lua) -> Ret {
    match std::env::current_dir() {
        Ok(dir) => {
            lua.push_bytes(dir.as_os_str().as_bytes());
            Ok(1)
        }
        Err(e) => Err(Error::msg(fail::text(fail::code_of(&e)))),
    }
}

/// true | false, msg, code = system.setdir(path)
fn setdir(lua: Lua) -> Ret {
    let path = OsStr::from_bytes(lua.arg_bytes(1)?);
    match std::env::set_current_dir(path) {
        Ok(()) => {
            lua.push_bool(true);
            Ok(1)
        }
        Err(e) => Ok(fail::push_io(lua, &e)),
    }
}

/// The bytes of `s` before its first `"\0"`.
fn cut(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |n| &s[..n])
}

/// Sets `t[name] = value` for each pair, in the table on top of the stack.
fn store_pairs<'a>(lua: Lua, pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) {
    for (name, value) in pairs {
        lua.push_bytes(name);
        lua.push_bytes(value);
        lua.raw_set(-3); // the table is below the two values
    }
}

/// t | value | false, msg, code = system.getenv([name | t])
fn getenv(lua: Lua) -> Ret {
    match lua.type_of(1) {
        LUA_TNONE | LUA_TNIL | LUA_TTABLE => {
            let vars: Vec<(Vec<u8>, Vec<u8>)> = std::env::vars_os()
                .map(|(k, v)| (k.into_vec(), v.into_vec()))
                .collect();
            if lua.type_of(1) == LUA_TTABLE {
                lua.set_top(1);
            } else {
                lua.new_table(0, vars.len() as c_int);
            }
            store_pairs(lua, vars.iter().map(|(k, v)| (&k[..], &v[..])));
            Ok(1)
        }
        _ => {
            // NOTE: `var_os` is C `getenv` under `std::env`'s lock (the
            // unix implementation checks nothing), so a name with `=`
            // answers as C does (glibc: `NAME=` + prefix of the value).
            let name = cut(lua.arg_bytes(1)?);
            match std::env::var_os(OsStr::from_bytes(name)) {
                Some(value) if !name.is_empty() => {
                    lua.push_bytes(value.as_bytes());
                    Ok(1)
                }
                _ => Ok(fail::push(lua, libc::ENOENT)),
            }
        }
    }
}

/// true | false, msg, code = system.setenv(name [, value])
fn setenv(lua: Lua) -> Ret {
    let name = cut(lua.arg_bytes(1)?);
    let value = lua.opt_bytes(2)?.map(cut);
    if name.is_empty() || name.contains(&b'=') {
        return Ok(fail::push(lua, libc::EINVAL));
    }
    let name = OsStr::from_bytes(name);
    // SAFETY: the name and value are valid for `std::env` (checked above,
    // cut at NUL), so these calls cannot panic. Changing the environment
    // while another thread reads it with C `getenv` is a data race; like
    // libuv's `uv_os_setenv`, this is the documented caveat of
    // `system.setenv` with several Lua states in threads.
    unsafe {
        match value {
            Some(value) => std::env::set_var(name, OsStr::from_bytes(value)),
            None => std::env::remove_var(name),
        }
    }
    lua.push_bool(true);
    Ok(1)
}

/// A packed environment: `name=value` entries, as `execve` takes them.
pub struct PackedEnv {
    pub vars: Vec<CString>,
}

impl Object for PackedEnv {
    const CLASS: &'static Class = &Class {
        name: c"coutil:procesenv",
        methods: &[],
        meta: &[(c"__index", cfn!(env_index))],
    };
}

impl PackedEnv {
    /// The value of `name` (linear search).
    fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.vars.iter().find_map(|entry| {
            let entry = entry.as_bytes();
            entry
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(b"="))
        })
    }

    fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.vars.iter().map(|entry| {
            let entry = entry.as_bytes();
            let eq = entry.iter().position(|&b| b == b'=').unwrap_or(entry.len());
            (&entry[..eq], entry.get(eq + 1..).unwrap_or_default())
        })
    }
}

fn bad_name(name: &[u8]) -> Error {
    let mut text = b"bad name '".to_vec();
    text.extend_from_slice(name);
    text.extend_from_slice(b"' in environment (cannot contain '=')");
    Error::Msg(text.into())
}

/// Packs the table at `t` (absolute index), argument `arg` of the
/// function: string names to string or number values. A name with `=`
/// raises `bad name ...`; a name or a value of another type raises
/// `bad argument #<arg> ... (environment name must be a string, got
/// <type>)` or `(environment value for '<name>' must be a string, got
/// <type>)`.
pub fn pack_table(lua: Lua, t: c_int, arg: c_int) -> Result<PackedEnv, Error> {
    let mut vars = Vec::new();
    lua.check_stack(3)?;
    lua.push_nil();
    // Keys are never converted in place (only string keys are read as
    // strings). Only memory errors can longjmp here (a leak of `vars`).
    while lua.next(t) {
        if lua.type_of(-2) != LUA_TSTRING {
            let mut text = b"environment name must be a string, got ".to_vec();
            text.extend_from_slice(lua.type_name(-2).as_bytes());
            lua.pop(2);
            return Err(Error::Arg(arg, text.into()));
        }
        let name = cut(lua.to_bytes(-2).unwrap_or_default());
        if name.contains(&b'=') {
            let e = bad_name(name);
            lua.pop(2);
            return Err(e);
        }
        if !matches!(lua.type_of(-1), LUA_TSTRING | LUA_TNUMBER) {
            let mut text = b"environment value for '".to_vec();
            text.extend_from_slice(name);
            text.extend_from_slice(b"' must be a string, got ");
            text.extend_from_slice(lua.type_name(-1).as_bytes());
            lua.pop(2);
            return Err(Error::Arg(arg, text.into()));
        }
        let value = cut(lua.to_bytes(-1).unwrap_or_default());
        let mut entry = Vec::with_capacity(name.len() + 1 + value.len());
        entry.extend_from_slice(name);
        entry.push(b'=');
        entry.extend_from_slice(value);
        // No NUL inside: both parts were cut at their first one.
        vars.push(CString::new(entry).map_err(|_| Error::msg("invalid environment"))?);
        lua.pop(1);
    }
    Ok(PackedEnv { vars })
}

/// Runs `f` on the packed environment at `i`, or returns the error
/// `coutil:procesenv expected`.
pub fn with_env<R>(lua: Lua, i: c_int, f: impl FnOnce(&PackedEnv) -> R + Send) -> Result<R, Error> {
    class::with_checked::<PackedEnv, _>(lua, i, |slot| slot.as_ref().map(f))?
        .ok_or(Error::Type(i, PackedEnv::CLASS.name))
}

/// env = system.packenv(vars)
fn packenv(lua: Lua) -> Ret {
    if lua.type_of(1) != LUA_TTABLE {
        return Err(Error::Type(1, c"table"));
    }
    let env = pack_table(lua, 1, 1)?;
    class::push(lua, env);
    Ok(1)
}

/// value | nil = env[name]
fn env_index(lua: Lua) -> Ret {
    with_env(lua, 1, |_| ())?;
    let name = cut(lua.arg_bytes(2)?);
    if name.contains(&b'=') {
        return Err(Error::arg(2, "cannot contain '='"));
    }
    match with_env(lua, 1, |env| env.get(name).map(<[u8]>::to_vec))? {
        Some(value) => lua.push_bytes(&value),
        None => lua.push_nil(),
    }
    Ok(1)
}

/// t = system.unpackenv(env [, t])
fn unpackenv(lua: Lua) -> Ret {
    let env = PackedEnv {
        vars: with_env(lua, 1, |env| env.vars.clone())?,
    };
    if lua.is_none_or_nil(2) {
        lua.set_top(1);
        lua.new_table(0, env.vars.len() as c_int);
    } else if lua.type_of(2) != LUA_TTABLE {
        return Err(Error::Type(2, c"table"));
    } else {
        lua.set_top(2);
    }
    store_pairs(lua, env.pairs());
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_lookup() {
        let env = PackedEnv {
            vars: vec![
                CString::new("A=1").unwrap(),
                CString::new("AB=2=3").unwrap(),
                CString::new("E=").unwrap(),
            ],
        };
        assert_eq!(env.get(b"A"), Some(&b"1"[..]));
        assert_eq!(env.get(b"AB"), Some(&b"2=3"[..]));
        assert_eq!(env.get(b"E"), Some(&b""[..]));
        assert_eq!(env.get(b"X"), None);
        let pairs: Vec<_> = env.pairs().collect();
        assert_eq!(pairs[1], (&b"AB"[..], &b"2=3"[..]));
    }
}
