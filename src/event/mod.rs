//! `coutil.event` (spec coop.md), native: coroutines await events emitted
//! on arbitrary non-nil values.
//!
//! The pure-Lua version allocated about five tables and a to-be-closed
//! variable per await and cost 20 to 35 times a bare `coroutine.yield` /
//! `coroutine.resume` pair; see `doc/devnotes.md` for the numbers.
//!
//! An await registers the running coroutine on each value (see [`list`])
//! and yields with `lua_yieldk`, keeping on its stack a triple per
//! registration, which tells where it is. Emitters resume it with a private
//! marker followed by `e` and their extra values; the continuation removes
//! the registrations left and tells an emission (the marker) from an
//! explicit resume (anything else), whose values it returns as they are.
//! Nothing is allocated per await or emission in the common cases.
//!
//! `promise` needs that distinction too and gets it through
//! `getmetatable(event).coutil_internal.waitany`: `true, ek, extra...` for
//! an emission, `false, values...` for an explicit resume.
//!
//! Everything goes through the binding layer's [`Lua`] (threads, resumes
//! and the yields with a continuation are in `lua/coroutines.rs`), so no
//! `unsafe` is left here.

mod emit;
mod list;
mod wait;

use std::ffi::{CStr, c_int, c_void};

use crate::lua::coroutines::Step;
use crate::lua::{Error, LUA_MINSTACK, LUA_REGISTRYINDEX, LUA_TTABLE, Lua, Reg};
use crate::yfn;
use emit::{emitall, emitone, pending};
use wait::{await_one, awaitall, awaitany, waitany};

/// First value given by emitters to the coroutines they resume: the
/// address of `EMITTED[k]` when the registration taken is the triple `k`
/// of the waiter (the last one meaning "some triple at or past it").
static EMITTED: [u8; MARKS] = [0; MARKS];
const MARKS: usize = 64;
/// Free slots an emitter leaves to the continuation of the coroutine it
/// resumes (enough for the functions of `list`).
const SLACK: c_int = 8;

/// Registry keys of the state's lists and spare lists, shared by every copy
/// of the module loaded in the state.
static LISTS_KEY: u8 = 0;
static POOL_KEY: u8 = 0;

fn emitted(triple: c_int) -> *mut c_void {
    EMITTED[(triple as usize).min(MARKS - 1)..].as_ptr() as *mut c_void
}

/// The triple taken by the emitter that resumed us with `mark`, or `None`
/// for an explicit resume.
fn taken(mark: *mut c_void) -> Option<usize> {
    let k = (mark as usize).wrapping_sub(EMITTED.as_ptr() as usize);
    (k < MARKS).then_some(k)
}

/// An error message with the position of the caller `level` levels up.
fn located(lua: Lua, level: c_int, msg: &str) -> Error {
    // a C function has room for these 2 values; only a memory error can be
    // raised, with nothing owned alive
    lua.push_where(level);
    lua.push_bytes(msg.as_bytes());
    lua.concat(2);
    Error::Value
}

fn push_bool(lua: Lua, b: bool) -> Result<Step, Error> {
    lua.push_bool(b);
    Ok(Step::Return(1))
}

/// Makes room for `n` more values on entry to a C function, which has
/// LUA_MINSTACK slots free above its arguments.
#[inline]
fn reserve(lua: Lua, n: c_int) -> Result<(), Error> {
    if n <= LUA_MINSTACK {
        Ok(())
    } else {
        lua.check_stack(n)
    }
}

const FUNCTIONS: &[Reg] = &[
    (c"await", yfn!(await_one)),
    (c"awaitany", yfn!(awaitany)),
    (c"awaitall", yfn!(awaitall)),
    (c"emitall", yfn!(emitall)),
    (c"emitone", yfn!(emitone)),
    (c"pending", yfn!(pending)),
];

/// Pushes the table of the state stored at `key`, creating it (with `mode`
/// as weak mode, if any) on first use.
fn push_shared(lua: Lua, key: &'static u8, mode: Option<&CStr>) {
    let key = key as *const u8 as *const c_void;
    if lua.raw_get_ptr(LUA_REGISTRYINDEX, key) == LUA_TTABLE {
        return;
    }
    lua.pop(1);
    lua.new_table(0, 0);
    if let Some(mode) = mode {
        lua.new_table(0, 1);
        lua.push_str(mode);
        lua.set_field(-2, c"__mode");
        lua.set_metatable(-2);
    }
    lua.push_value(-1);
    lua.raw_set_ptr(LUA_REGISTRYINDEX, key);
}

/// `require "coutil.event"`: the module table, with the hidden channel for
/// `coutil.promise` in its metatable.
pub fn module(lua: Lua) -> c_int {
    // builds tables within LUA_MINSTACK; errors are memory errors only
    push_shared(lua, &LISTS_KEY, Some(c"k"));
    push_shared(lua, &POOL_KEY, None);
    let shared = lua.top() - 1;
    let closure = |f| {
        lua.push_value(shared);
        lua.push_value(shared + 1);
        lua.push_cclosure(f, 2);
    };
    lua.new_table(0, FUNCTIONS.len() as c_int + 1);
    for (name, f) in FUNCTIONS {
        closure(*f);
        lua.set_field(-2, name);
    }
    lua.push_str(c"1.0 alpha");
    lua.set_field(-2, c"version");
    // Not part of the API: kept out of the module table so it does not
    // show up as a function of the module.
    lua.new_table(0, 1);
    lua.new_table(0, 1);
    closure(yfn!(waitany));
    lua.set_field(-2, c"waitany");
    lua.set_field(-2, c"coutil_internal");
    lua.set_metatable(-2);
    1
}
