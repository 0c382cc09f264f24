//! The emitters of `coutil.event`, and `pending`.

use std::ffi::c_int;

use super::{SLACK, emitted, list, push_bool, reserve};
use crate::lua::coroutines::Step;
use crate::lua::{Error, LUA_MINSTACK, LUA_OK, LUA_TNIL, LUA_TTHREAD, LUA_YIELD, Lua};

/// Resumes the coroutine of `waiter` (anchored on the emitter's stack) with
/// the marker and the emitter's arguments `1..=n`; `lua` has room for `n`
/// more values. Its errors are ignored.
#[inline]
fn deliver(lua: Lua, waiter: list::Waiter, n: c_int) {
    let co = waiter.co;
    // Its yielded C function was called with LUA_MINSTACK free slots above
    // its arguments, so it has room for that many values above the bottom
    // of its stack. A coroutine without room for the values is skipped, as
    // `coroutine.resume` would fail.
    let needed = n + 1 + SLACK;
    if waiter.top + needed > LUA_MINSTACK && co.check_stack(needed).is_err() {
        return;
    }
    co.push_light(emitted(waiter.triple));
    for i in 1..=n {
        lua.push_value(i);
    }
    lua.xmove(co, n);
    match co.resume(lua, n + 1) {
        (LUA_OK | LUA_YIELD, 0) => {}
        (LUA_OK | LUA_YIELD, nres) => co.pop(nres),
        _ => co.pop(1), // the error value
    }
}

#[inline]
pub(super) fn emitone(lua: Lua) -> Result<Step, Error> {
    let n = lua.top();
    let key = lua.type_of(1);
    if key <= LUA_TNIL {
        return push_bool(lua, false);
    }
    reserve(lua, n + 8)?;
    let kind = list::push_entry(lua, 1);
    if kind == LUA_TNIL {
        return push_bool(lua, false);
    }
    match list::oldest(lua, 1, key, n + 1, kind, true) {
        Some(waiter) => {
            deliver(lua, waiter, n);
            push_bool(lua, true)
        }
        None => push_bool(lua, false),
    }
}

#[inline]
pub(super) fn emitall(lua: Lua) -> Result<Step, Error> {
    let n = lua.top();
    let key = lua.type_of(1);
    if key <= LUA_TNIL {
        return push_bool(lua, false);
    }
    reserve(lua, n + 8)?;
    let at = n + 1;
    let kind = list::push_entry(lua, 1);
    if kind == LUA_TNIL {
        return push_bool(lua, false);
    }
    if kind == LUA_TTHREAD {
        match list::oldest(lua, 1, key, at, kind, true) {
            Some(waiter) => deliver(lua, waiter, n),
            None => return push_bool(lua, false),
        }
    } else {
        if list::oldest(lua, 1, key, at, kind, false).is_none() {
            return push_bool(lua, false);
        }
        // Detached: registrations made from now on (even by a coroutine
        // resumed here) go to a new entry, seen only by later emissions.
        list::detach(lua, 1);
        let (head, tail) = list::bounds(lua, at);
        for index in head..=tail {
            if let Some(waiter) = list::take_at(lua, at, index) {
                deliver(lua, waiter, n);
                lua.set_top(at);
            }
        }
        list::recycle(lua, at);
    }
    push_bool(lua, true)
}

pub(super) fn pending(lua: Lua) -> Result<Step, Error> {
    // a C function has room for the few values `oldest` pushes
    let key = lua.type_of(1);
    if key <= LUA_TNIL {
        return push_bool(lua, false);
    }
    lua.set_top(1);
    let kind = list::push_entry(lua, 1);
    let found = kind != LUA_TNIL && list::oldest(lua, 1, key, 2, kind, false).is_some();
    push_bool(lua, found)
}
