//! The await functions of `coutil.event` and their continuation.

use std::ffi::c_int;

use super::{MARKS, SLACK, list, located, push_bool, reserve, taken};
use crate::lua::coroutines::Step;
use crate::lua::{Error, KContext, KFunction, LUA_TNIL, LUA_TNONE, LUA_TNUMBER, Lua};
use crate::ykfn;

/// The await forms, kept in the low bits of the continuation context (the
/// number of triples is in the others).
const ANY: isize = 0;
const WAITANY: isize = 1;
const ALL: isize = 2;

/// Where every await goes on when its coroutine is resumed.
const RESUMED: KFunction = ykfn!(continuation);

/// Yields keeping the `triples` registrations on the stack.
fn yield_with(triples: c_int, kind: isize) -> Result<Step, Error> {
    Ok(Step::Yield(RESUMED, ((triples as KContext) << 2) | kind))
}

// NOTE: not inlined, so that its C function stays small and yields by a
// tail call (see `lua::coroutines::step`); inlined, LLVM kept that call in
// the frame and `await`/`emitone` round trips took 10% longer.
#[inline(never)]
pub(super) fn await_one(lua: Lua) -> Result<Step, Error> {
    if !lua.is_yieldable() {
        return Err(located(lua, 1, "unable to yield"));
    }
    let n = lua.top();
    let key = if n == 0 { LUA_TNONE } else { lua.type_of(1) };
    match key {
        LUA_TNONE | LUA_TNIL => return Err(located(lua, 1, "table index is nil")),
        LUA_TNUMBER if is_nan(lua, 1) => return Err(located(lua, 1, "table index is NaN")),
        _ => {}
    }
    if n != 1 {
        lua.set_top(1);
    }
    // the stack of a C function has room for the triple
    list::register(lua, 1, key, 0)?;
    yield_with(1, ANY)
}

fn is_nan(lua: Lua, i: c_int) -> bool {
    !lua.is_integer(i) && lua.to_number(i).is_some_and(f64::is_nan)
}

pub(super) fn awaitany(lua: Lua) -> Result<Step, Error> {
    checked_wait(lua, ANY, 1)
}

pub(super) fn waitany(lua: Lua) -> Result<Step, Error> {
    // the caller is a sibling module: blame its caller
    checked_wait(lua, WAITANY, 2)
}

pub(super) fn awaitall(lua: Lua) -> Result<Step, Error> {
    checked_wait(lua, ALL, 1)
}

#[inline]
fn checked_wait(lua: Lua, kind: isize, level: c_int) -> Result<Step, Error> {
    if !lua.is_yieldable() {
        return Err(located(lua, level, "unable to yield"));
    }
    wait(lua, kind, level, lua.top())
}

/// Registers the running coroutine on each distinct non-nil value of the
/// `n` arguments and yields keeping the triples of its registrations.
/// Values are checked before any registration, so only a memory error can
/// stop it half-way (leaving stale entries that emitters skip).
#[inline]
fn wait(lua: Lua, kind: isize, level: c_int, n: c_int) -> Result<Step, Error> {
    // the types of the first arguments, not to ask twice
    let mut types = [LUA_TNIL; 8];
    let mut count = 0;
    for i in 1..=n {
        let key = lua.type_of(i);
        if let Some(t) = types.get_mut(i as usize - 1) {
            *t = key;
        }
        match key {
            LUA_TNIL => continue,
            LUA_TNUMBER if is_nan(lua, i) => {
                return Err(located(lua, level, "table index is NaN"));
            }
            _ => count += 1,
        }
    }
    if count == 0 {
        return match kind {
            ALL => push_bool(lua, true),
            _ => Err(located(lua, level, "non-nil value expected")),
        };
    }
    reserve(lua, 2 * count + 8)?;
    // Each value becomes the first of its triple, in place: the rest is
    // pushed and moved right after it; nils and duplicates go away.
    let mut at = 1;
    let mut done = 0;
    for i in 1..=n {
        let key = match types.get(i as usize - 1) {
            Some(&key) => key,
            None => lua.type_of(at),
        };
        if key != LUA_TNIL && list::register(lua, at, key, done)? {
            if i < n {
                lua.rotate(at + 1, 2);
            }
            at += 3;
            done += 1;
        } else {
            lua.remove(at);
        }
    }
    yield_with(done, kind)
}

/// Where an await goes on when its coroutine is resumed: the stack holds
/// its triples, then the resume values.
#[inline]
fn continuation(lua: Lua, ctx: KContext) -> Result<Step, Error> {
    let kind = ctx & 3;
    let triples = (ctx >> 2) as c_int;
    let kept = 3 * triples;
    let top = lua.top();
    let taken = if top > kept {
        taken(lua.to_userdata(kept + 1))
    } else {
        None
    };
    let by_emitter = taken.is_some();
    if !by_emitter {
        lua.check_stack(SLACK)?;
    }
    // The emitter removed the registration it resumes us for. The others
    // are still there: a registration is only removed by an emitter
    // resuming its waiter, or by the waiter itself.
    let consumed = |t: c_int| match taken {
        Some(k) if k < MARKS - 1 => t == 3 * k as c_int + 1,
        // the one on the emitted value (this await has one per value)
        Some(_) => lua.raw_equal(t, kept + 2),
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
                        lua.copy(t + j, to + j);
                    }
                }
                left += 1;
            }
        }
        if left == 0 {
            return push_bool(lua, true);
        }
        lua.set_top(3 * left);
        return yield_with(left, ALL);
    }
    for i in 0..triples {
        let t = 3 * i + 1;
        if !consumed(t) {
            list::cancel(lua, t);
        }
    }
    Ok(Step::Return(match (kind, by_emitter) {
        (WAITANY, true) => {
            lua.push_bool(true);
            lua.replace(kept + 1);
            top - kept
        }
        (WAITANY, false) => {
            lua.push_bool(false);
            lua.insert(kept + 1);
            top - kept + 1
        }
        (_, true) => top - kept - 1,
        (_, false) => top - kept,
    }))
}
