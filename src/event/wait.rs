//! The await functions of `coutil.event` and their continuation.

use std::ffi::c_int;

use super::{MARKS, SLACK, Step, check_stack, list, located, push_bool, reserve, taken};
use crate::lua::{Error, KContext, LUA_TNIL, LUA_TNONE, LUA_TNUMBER, ffi};

/// The await forms, kept in the low bits of the continuation context (the
/// number of triples is in the others).
const ANY: isize = 0;
const WAITANY: isize = 1;
const ALL: isize = 2;

#[inline]
pub(super) fn await_one(l: *mut ffi::lua_State) -> Result<Step, Error> {
    // SAFETY: reads and trims the arguments of the running call.
    unsafe {
        if ffi::lua_isyieldable(l) == 0 {
            return Err(located(l, 1, "unable to yield"));
        }
        let n = ffi::lua_gettop(l);
        let key = if n == 0 {
            LUA_TNONE
        } else {
            ffi::lua_type(l, 1)
        };
        match key {
            LUA_TNONE | LUA_TNIL => return Err(located(l, 1, "table index is nil")),
            LUA_TNUMBER if is_nan(l, 1) => return Err(located(l, 1, "table index is NaN")),
            _ => {}
        }
        if n != 1 {
            ffi::lua_settop(l, 1);
        }
        // the stack of a C function has room for the triple
        list::register(l, 1, key, 0)?;
    }
    Ok(Step::Yield((1 << 2) | ANY))
}

fn is_nan(l: *mut ffi::lua_State, i: c_int) -> bool {
    // SAFETY: reads a number argument of the running call.
    unsafe {
        ffi::lua_isinteger(l, i) == 0 && ffi::lua_tonumberx(l, i, std::ptr::null_mut()).is_nan()
    }
}

pub(super) fn awaitany(l: *mut ffi::lua_State) -> Result<Step, Error> {
    checked_wait(l, ANY, 1)
}

pub(super) fn waitany(l: *mut ffi::lua_State) -> Result<Step, Error> {
    // the caller is a sibling module: blame its caller
    checked_wait(l, WAITANY, 2)
}

pub(super) fn awaitall(l: *mut ffi::lua_State) -> Result<Step, Error> {
    checked_wait(l, ALL, 1)
}

#[inline]
fn checked_wait(l: *mut ffi::lua_State, kind: isize, level: c_int) -> Result<Step, Error> {
    // SAFETY: plain queries of the running state.
    unsafe {
        if ffi::lua_isyieldable(l) == 0 {
            return Err(located(l, level, "unable to yield"));
        }
        wait(l, kind, level, ffi::lua_gettop(l))
    }
}

/// Registers the running coroutine on each distinct non-nil value of the
/// `n` arguments and yields keeping the triples of its registrations.
#[inline]
fn wait(l: *mut ffi::lua_State, kind: isize, level: c_int, n: c_int) -> Result<Step, Error> {
    // SAFETY: works on the running call's stack, with room checked below.
    // Values are checked before any registration, so only a memory error
    // can stop it half-way (leaving stale entries that emitters skip).
    unsafe {
        // the types of the first arguments, not to ask twice
        let mut types = [LUA_TNIL; 8];
        let mut count = 0;
        for i in 1..=n {
            let key = ffi::lua_type(l, i);
            if let Some(t) = types.get_mut(i as usize - 1) {
                *t = key;
            }
            match key {
                LUA_TNIL => continue,
                LUA_TNUMBER if is_nan(l, i) => {
                    return Err(located(l, level, "table index is NaN"));
                }
                _ => count += 1,
            }
        }
        if count == 0 {
            return match kind {
                ALL => push_bool(l, true),
                _ => Err(located(l, level, "non-nil value expected")),
            };
        }
        reserve(l, 2 * count + 8)?;
        // Each value becomes the first of its triple, in place: the rest is
        // pushed and moved right after it; nils and duplicates go away.
        let mut at = 1;
        let mut done = 0;
        for i in 1..=n {
            let key = match types.get(i as usize - 1) {
                Some(&key) => key,
                None => ffi::lua_type(l, at),
            };
            if key != LUA_TNIL && list::register(l, at, key, done)? {
                if i < n {
                    ffi::lua_rotate(l, at + 1, 2);
                }
                at += 3;
                done += 1;
            } else {
                ffi::lua_rotate(l, at, -1);
                ffi::lua_settop(l, -2);
            }
        }
        Ok(Step::Yield(((done as isize) << 2) | kind))
    }
}

/// Where an await goes on when its coroutine is resumed.
#[inline]
pub(super) fn continuation(l: *mut ffi::lua_State, ctx: KContext) -> Result<Step, Error> {
    let kind = ctx & 3;
    let triples = (ctx >> 2) as c_int;
    let kept = 3 * triples;
    // SAFETY: the stack holds our triples, then the resume values.
    unsafe {
        let top = ffi::lua_gettop(l);
        let taken = if top > kept {
            taken(ffi::lua_touserdata(l, kept + 1))
        } else {
            None
        };
        let by_emitter = taken.is_some();
        if !by_emitter {
            check_stack(l, SLACK)?;
        }
        // The emitter removed the registration it resumes us for. The
        // others are still there: a registration is only removed by an
        // emitter resuming its waiter, or by the waiter itself.
        let consumed = |t: c_int| match taken {
            Some(k) if k < MARKS - 1 => t == 3 * k as c_int + 1,
            // the one on the emitted value (this await has one per value)
            Some(_) => ffi::lua_rawequal(l, t, kept + 2) != 0,
            None => false,
        };
        if kind == ALL && by_emitter {
            let mut left = 0;
            for i in 0..triples {
                let t = 3 * i + 1;
                if !consumed(t) {
                    let to = 3 * left + 1;
                    if to != t {
                        for j in 0..3 {
                            ffi::lua_copy(l, t + j, to + j);
                        }
                    }
                    left += 1;
                }
            }
            if left == 0 {
                return push_bool(l, true);
            }
            ffi::lua_settop(l, 3 * left);
            return Ok(Step::Yield(((left as isize) << 2) | ALL));
        }
        for i in 0..triples {
            let t = 3 * i + 1;
            if !consumed(t) {
                list::cancel(l, t);
            }
        }
        Ok(Step::Return(match (kind, by_emitter) {
            (WAITANY, true) => {
                ffi::lua_pushboolean(l, 1);
                ffi::lua_replace(l, kept + 1);
                top - kept
            }
            (WAITANY, false) => {
                ffi::lua_pushboolean(l, 0);
                ffi::lua_rotate(l, kept + 1, 1);
                top - kept + 1
            }
            (_, true) => top - kept - 1,
            (_, false) => top - kept,
        }))
    }
}
