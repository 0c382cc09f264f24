//! The arguments of `system.execute`: the string form `execute(path,
//! ...)` and the table form, whose fields are read once, in order, and
//! checked before anything is created (so misuse raises, with the field
//! named). They become the [`Plan`] of the child and a [`Spec`] per
//! standard stream: inherited, discarded, an object's descriptor (an `io`
//! file or a connected stream socket) or a new pipe. The extension fields
//! (`uid`, `gid`, `pgroup`, `detach`: spec/seed-todo.md E2) come last.

use std::ffi::c_int;
use std::os::fd::RawFd;

use super::spawn::{Group, Plan, candidates};
use crate::lua::class;
use crate::lua::{
    Error, LUA_TBOOLEAN, LUA_TNIL, LUA_TNONE, LUA_TNUMBER, LUA_TSTRING, LUA_TTABLE, LUA_TUSERDATA,
    Lua,
};
use crate::system::net::class as net_class;
use crate::system::process::{self, pack_table, with_env};

pub const STREAMS: [&str; 3] = ["stdin", "stdout", "stderr"];

/// A standard stream of the child as the script gave it.
pub enum Spec {
    Inherit,
    Discard,
    /// The descriptor of an object on the stack (an `io` file or socket).
    Fd(RawFd),
    /// A new pipe; the parent's end replaces the field.
    Pipe {
        share: bool,
    },
}

/// `bad field <f> (<why>)`.
fn bad_field(field: &str, why: &str) -> Error {
    Error::msg(format!("bad field {field} ({why})"))
}

/// The stream field at `i` named `field`.
fn arg_stream(lua: Lua, i: c_int, field: &str) -> Result<Spec, Error> {
    match lua.type_of(i) {
        LUA_TNONE | LUA_TNIL => Ok(Spec::Inherit),
        LUA_TBOOLEAN => {
            if lua.to_boolean(i) {
                Err(bad_field(field, "got true"))
            } else {
                Ok(Spec::Discard)
            }
        }
        LUA_TSTRING => {
            let mut share = false;
            for &c in lua.to_bytes(i).unwrap_or_default() {
                match c {
                    b'r' | b'w' => {}
                    b's' => share = true,
                    _ => {
                        let mut text = format!("unknown '{field}' mode char (got '").into_bytes();
                        text.push(c);
                        text.extend_from_slice(b"')");
                        return Err(Error::Msg(text.into()));
                    }
                }
            }
            Ok(Spec::Pipe { share })
        }
        LUA_TUSERDATA => {
            let known = &crate::lua::awaiting::state_loop(&lua).io_metatable;
            if let Some(fd) = crate::lua::iofile::descriptor(lua, i, known) {
                return fd
                    .map(Spec::Fd)
                    .ok_or_else(|| bad_field(field, "invalid stream"));
            }
            match net_class::any(lua, i) {
                Some(Some(core)) => {
                    let c = core.borrow();
                    match c.kind {
                        net_class::TCPACTIVE | net_class::PIPEACTIVE | net_class::PIPESHARE => {
                            Ok(Spec::Fd(c.raw()))
                        }
                        _ => Err(bad_field(field, "invalid stream")),
                    }
                }
                _ => Err(bad_field(field, "invalid stream")),
            }
        }
        _ => Err(bad_field(field, "invalid stream")),
    }
}

/// Index of the first field pushed by the table form.
const FIELDS: c_int = 2;
const FIELD_NAMES: [&std::ffi::CStr; 11] = [
    c"execfile",
    c"runpath",
    c"arguments",
    c"environment",
    c"stdin",
    c"stdout",
    c"stderr",
    c"uid",
    c"gid",
    c"pgroup",
    c"detach",
];

/// The id field at `i` named `field` (`uid` or `gid`): absent, or an
/// integer that is an id (`(uid_t)-1` is not: it means "unchanged" to
/// `setresuid`).
fn arg_id(lua: Lua, i: c_int, field: &str) -> Result<Option<u32>, Error> {
    match lua.type_of(i) {
        LUA_TNIL => Ok(None),
        // Not `to_integer` alone: it would convert strings too.
        LUA_TNUMBER => match lua.to_integer(i) {
            Some(n) => match u32::try_from(n) {
                Ok(id) if id != u32::MAX => Ok(Some(id)),
                _ => Err(bad_field(field, "out of range")),
            },
            None => Err(bad_field(field, "must be an integer")),
        },
        _ => Err(bad_field(field, "must be an integer")),
    }
}

/// The flag field at `i` named `field`: absent (false) or a boolean.
fn arg_flag(lua: Lua, i: c_int, field: &str) -> Result<bool, Error> {
    match lua.type_of(i) {
        LUA_TNIL => Ok(false),
        LUA_TBOOLEAN => Ok(lua.to_boolean(i)),
        _ => Err(bad_field(field, "must be a boolean")),
    }
}

/// The table form: fields pushed at 2..12, then checked in order.
pub fn parse_table(lua: Lua) -> Result<(Plan, [Spec; 3]), Error> {
    lua.set_top(1);
    lua.check_stack(FIELD_NAMES.len() as c_int + 4)?;
    for name in FIELD_NAMES {
        // May run metamethods, before any Rust value with a destructor
        // exists.
        lua.get_field(1, name);
    }
    let file = match lua.type_of(FIELDS) {
        LUA_TSTRING => crate::lua::c_string(lua.to_bytes(FIELDS).unwrap_or_default()),
        _ => return Err(bad_field("execfile", "must be a string")),
    };
    let cwd = match lua.type_of(FIELDS + 1) {
        LUA_TNIL => None,
        LUA_TSTRING => Some(crate::lua::c_string(
            lua.to_bytes(FIELDS + 1).unwrap_or_default(),
        )),
        _ => return Err(bad_field("runpath", "must be a string")),
    };
    let mut argv = vec![file.clone()];
    let at = FIELDS + 2;
    match lua.type_of(at) {
        LUA_TNIL => {}
        LUA_TTABLE => {
            let len = lua.raw_len(at) as i64;
            for i in 1..=len {
                lua.raw_get_index(at, i);
                let ok = matches!(lua.type_of(-1), LUA_TSTRING | LUA_TNUMBER);
                if !ok {
                    lua.set_top(FIELDS + FIELD_NAMES.len() as c_int - 1);
                    return Err(Error::msg(format!(
                        "bad value #{i} in field 'arguments' (must be a string)"
                    )));
                }
                argv.push(crate::lua::c_string(lua.to_bytes(-1).unwrap_or_default()));
                lua.set_top(-2);
            }
        }
        _ => return Err(Error::arg(1, "field 'arguments' must be a table")),
    }
    let at = FIELDS + 3;
    let env = match lua.type_of(at) {
        LUA_TNIL => None,
        LUA_TTABLE => Some(pack_table(lua, at, 1)?.vars),
        LUA_TUSERDATA if class::is::<process::PackedEnv>(lua, at) => {
            Some(with_env(lua, at, |env| env.vars.clone())?)
        }
        _ => {
            return Err(bad_field(
                "environment",
                &format!("coutil:procesenv expected, got {}", lua.type_name(at)),
            ));
        }
    };
    let mut specs = [Spec::Inherit, Spec::Inherit, Spec::Inherit];
    for (k, field) in STREAMS.iter().enumerate() {
        specs[k] = arg_stream(lua, FIELDS + 4 + k as c_int, field)?;
    }
    let uid = arg_id(lua, FIELDS + 7, "uid")?;
    let gid = arg_id(lua, FIELDS + 8, "gid")?;
    let pgroup = arg_flag(lua, FIELDS + 9, "pgroup")?;
    let detach = arg_flag(lua, FIELDS + 10, "detach")?;
    let plan = Plan {
        candidates: candidates(&file, env.as_deref()),
        argv,
        env,
        cwd,
        uid,
        gid,
        // A session is a group too (and `setsid` fails in a group leader).
        group: match (detach, pgroup) {
            (true, _) => Group::Session,
            (false, true) => Group::Leader,
            (false, false) => Group::Inherit,
        },
    };
    Ok((plan, specs))
}

/// The string form: `execute(path, ...)`.
pub fn parse_args(lua: Lua) -> Result<(Plan, [Spec; 3]), Error> {
    let file = crate::lua::c_string(lua.arg_bytes(1)?);
    let mut argv = vec![file.clone()];
    for i in 2..=lua.top() {
        argv.push(crate::lua::c_string(lua.arg_bytes(i)?));
    }
    let plan = Plan {
        candidates: candidates(&file, None),
        argv,
        env: None,
        cwd: None,
        uid: None,
        gid: None,
        group: Group::Inherit,
    };
    Ok((plan, [Spec::Inherit, Spec::Inherit, Spec::Inherit]))
}
