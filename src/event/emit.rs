//! The emitters of `coutil.event`, and `pending`.

use std::ffi::c_int;

use super::{SLACK, Step, emitted, list, push_bool, reserve};
use crate::lua::{Error, LUA_MINSTACK, LUA_OK, LUA_TNIL, LUA_TTHREAD, LUA_YIELD, ffi};

/// Resumes the coroutine of `waiter` (anchored on the emitter's stack) with
/// the marker and the emitter's arguments `1..=n`. Its errors are ignored.
///
/// # Safety
/// `l` is the emitter's running state, with room for `n` more values; the
/// coroutine is suspended in an await (a valid entry, see `list`).
#[inline]
unsafe fn deliver(l: *mut ffi::lua_State, waiter: list::Waiter, n: c_int) {
    let co = waiter.co;
    // SAFETY: as promised by the caller. Its yielded C function was called
    // with LUA_MINSTACK free slots above its arguments, so it has room for
    // that many values above the bottom of its stack. A coroutine without
    // room for the values is skipped, as `coroutine.resume` would fail.
    unsafe {
        let needed = n + 1 + SLACK;
        if waiter.top + needed > LUA_MINSTACK && ffi::lua_checkstack(co, needed) == 0 {
            return;
        }
        ffi::lua_pushlightuserdata(co, emitted(waiter.triple));
        for i in 1..=n {
            ffi::lua_pushvalue(l, i);
        }
        ffi::lua_xmove(l, co, n);
        let mut nres = 0;
        match ffi::lua_resume(co, l, n + 1, &mut nres) {
            LUA_OK | LUA_YIELD if nres == 0 => {}
            LUA_OK | LUA_YIELD => ffi::lua_settop(co, -nres - 1),
            _ => ffi::lua_settop(co, -2), // the error value
        }
    }
}

#[inline]
pub(super) fn emitone(l: *mut ffi::lua_State) -> Result<Step, Error> {
    // SAFETY: works on the running call's stack, with room checked.
    unsafe {
        let n = ffi::lua_gettop(l);
        let key = ffi::lua_type(l, 1);
        if key <= LUA_TNIL {
            return push_bool(l, false);
        }
        reserve(l, n + 8)?;
        let kind = list::push_entry(l, 1);
        if kind == LUA_TNIL {
            return push_bool(l, false);
        }
        match list::oldest(l, 1, key, n + 1, kind, true) {
            Some(waiter) => {
                deliver(l, waiter, n);
                push_bool(l, true)
            }
            None => push_bool(l, false),
        }
    }
}

#[inline]
pub(super) fn emitall(l: *mut ffi::lua_State) -> Result<Step, Error> {
    // SAFETY: works on the running call's stack, with room checked.
    unsafe {
        let n = ffi::lua_gettop(l);
        let key = ffi::lua_type(l, 1);
        if key <= LUA_TNIL {
            return push_bool(l, false);
        }
        reserve(l, n + 8)?;
        let at = n + 1;
        let kind = list::push_entry(l, 1);
        if kind == LUA_TNIL {
            return push_bool(l, false);
        }
        if kind == LUA_TTHREAD {
            match list::oldest(l, 1, key, at, kind, true) {
                Some(waiter) => deliver(l, waiter, n),
                None => return push_bool(l, false),
            }
        } else {
            if list::oldest(l, 1, key, at, kind, false).is_none() {
                return push_bool(l, false);
            }
            // Detached: registrations made from now on (even by a coroutine
            // resumed here) go to a new entry, seen only by later emissions.
            list::detach(l, 1);
            let (head, tail) = list::bounds(l, at);
            for index in head..=tail {
                if let Some(waiter) = list::take_at(l, at, index) {
                    deliver(l, waiter, n);
                    ffi::lua_settop(l, at);
                }
            }
            list::recycle(l, at);
        }
        push_bool(l, true)
    }
}

pub(super) fn pending(l: *mut ffi::lua_State) -> Result<Step, Error> {
    // SAFETY: works on the running call's stack (a C function has room
    // for the few values `oldest` pushes).
    unsafe {
        let key = ffi::lua_type(l, 1);
        if key <= LUA_TNIL {
            return push_bool(l, false);
        }
        ffi::lua_settop(l, 1);
        let kind = list::push_entry(l, 1);
        let found = kind != LUA_TNIL && list::oldest(l, 1, key, 2, kind, false).is_some();
        push_bool(l, found)
    }
}
