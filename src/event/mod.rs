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

mod emit;
mod list;
mod wait;

use std::ffi::{CStr, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::lua::{
    CFunction, Error, KContext, LUA_MINSTACK, LUA_REGISTRYINDEX, LUA_TTABLE, ffi, raise,
};
use emit::{emitall, emitone, pending};
use wait::{await_one, awaitall, awaitany, waitany};

/// What a function (or the continuation) decided.
enum Step {
    /// Return this many values from the top of the stack.
    Return(c_int),
    /// Yield keeping the whole stack (the triples); the context.
    Yield(KContext),
}

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

/// Runs a body, then returns, yields or raises as it decided, with no Rust
/// value alive.
///
/// # Safety
/// `l` must be the running state of a function of this module.
unsafe fn run(l: *mut ffi::lua_State, body: impl FnOnce() -> Result<Step, Error>) -> c_int {
    let decided = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(decided) => decided,
        Err(payload) => {
            drop(payload);
            Err(Error::msg("internal error in coutil (panic)"))
        }
    };
    match decided {
        Ok(Step::Return(n)) => n,
        // SAFETY: only plain data is alive; lua_yieldk leaves this frame
        // and `resumed` takes over with the stack as it is.
        Ok(Step::Yield(ctx)) => unsafe { ffi::lua_yieldk(l, 0, ctx, Some(resumed)) },
        // SAFETY: the body's values are dropped (see `raise`).
        Err(e) => unsafe { raise(l, e) },
    }
}

macro_rules! efn {
    ($f:path) => {{
        unsafe extern "C-unwind" fn wrapper(l: *mut ffi::lua_State) -> c_int {
            // SAFETY: Lua calls this as a C function of the module.
            unsafe { run(l, || $f(l)) }
        }
        wrapper as CFunction
    }};
}

unsafe extern "C-unwind" fn resumed(l: *mut ffi::lua_State, _: c_int, ctx: KContext) -> c_int {
    // SAFETY: Lua calls this as the continuation of one of our awaits.
    unsafe { run(l, || wait::continuation(l, ctx)) }
}

/// An error message with the position of the caller `level` levels up.
fn located(l: *mut ffi::lua_State, level: c_int, msg: &str) -> Error {
    // SAFETY: pushes onto the running state (a C function has room for 3
    // values); may only raise a memory error, with nothing owned alive.
    unsafe {
        ffi::luaL_where(l, level);
        ffi::lua_pushlstring(l, msg.as_ptr().cast(), msg.len());
        ffi::lua_concat(l, 2);
    }
    Error::Value
}

fn push_bool(l: *mut ffi::lua_State, b: bool) -> Result<Step, Error> {
    // SAFETY: a C function has room for one more value.
    unsafe { ffi::lua_pushboolean(l, b as c_int) };
    Ok(Step::Return(1))
}

fn check_stack(l: *mut ffi::lua_State, n: c_int) -> Result<(), Error> {
    // SAFETY: plain stack check of the running state.
    match unsafe { ffi::lua_checkstack(l, n) } {
        0 => Err(Error::msg("stack overflow")),
        _ => Ok(()),
    }
}

/// Makes room for `n` more values on entry to a C function, which has
/// LUA_MINSTACK slots free above its arguments.
fn reserve(l: *mut ffi::lua_State, n: c_int) -> Result<(), Error> {
    if n <= LUA_MINSTACK {
        Ok(())
    } else {
        check_stack(l, n)
    }
}

const FUNCTIONS: &[(&CStr, CFunction)] = &[
    (c"await", efn!(await_one)),
    (c"awaitany", efn!(awaitany)),
    (c"awaitall", efn!(awaitall)),
    (c"emitall", efn!(emitall)),
    (c"emitone", efn!(emitone)),
    (c"pending", efn!(pending)),
];

/// Pushes the table of the state stored at `key`, creating it (with `mode`
/// as weak mode, if any) on first use.
unsafe fn push_shared(l: *mut ffi::lua_State, key: &'static u8, mode: Option<&CStr>) {
    let key = key as *const u8 as *const c_void;
    // SAFETY: registry access with a private light userdata key.
    unsafe {
        if ffi::lua_rawgetp(l, LUA_REGISTRYINDEX, key) == LUA_TTABLE {
            return;
        }
        ffi::lua_settop(l, -2);
        ffi::lua_createtable(l, 0, 0);
        if let Some(mode) = mode {
            ffi::lua_createtable(l, 0, 1);
            ffi::lua_pushstring(l, mode.as_ptr());
            ffi::lua_setfield(l, -2, c"__mode".as_ptr());
            ffi::lua_setmetatable(l, -2);
        }
        ffi::lua_pushvalue(l, -1);
        ffi::lua_rawsetp(l, LUA_REGISTRYINDEX, key);
    }
}

/// `require "coutil.event"`: the module table, with the hidden channel for
/// `coutil.promise` in its metatable.
///
/// # Safety
/// `l` must be the state of a running C function call.
pub unsafe fn open(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: builds tables on the running state (within LUA_MINSTACK);
    // errors are memory errors only, with no Rust value owning anything.
    unsafe {
        push_shared(l, &LISTS_KEY, Some(c"k"));
        push_shared(l, &POOL_KEY, None);
        let shared = ffi::lua_gettop(l) - 1;
        let closure = |f: CFunction| {
            ffi::lua_pushvalue(l, shared);
            ffi::lua_pushvalue(l, shared + 1);
            ffi::lua_pushcclosure(l, f, 2);
        };
        ffi::lua_createtable(l, 0, FUNCTIONS.len() as c_int + 1);
        for (name, f) in FUNCTIONS {
            closure(*f);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
        ffi::lua_pushstring(l, c"1.0 alpha".as_ptr());
        ffi::lua_setfield(l, -2, c"version".as_ptr());
        // Not part of the API: kept out of the module table so it does not
        // show up as a function of the module.
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_createtable(l, 0, 1);
        closure(efn!(waitany));
        ffi::lua_setfield(l, -2, c"waitany".as_ptr());
        ffi::lua_setfield(l, -2, c"coutil_internal".as_ptr());
        ffi::lua_setmetatable(l, -2);
    }
    1
}
