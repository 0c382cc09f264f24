//! Interrupting a coroutine busy in Lua code from a signal handler, as
//! `lua.c` does for Ctrl-C: [`request`] (async-signal-safe) sets a hook on
//! the target coroutine that raises `interrupted!` at its next instruction
//! (`lua_sethook` is meant to be called asynchronously). Used by the
//! `coutil` command's REPL (`console::interrupt`), one target at a time per
//! process.

use std::ffi::CStr;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use super::{Lua, ffi};

/// The coroutine to interrupt (kept alive by its owner until [`clear`]).
static TARGET: AtomicPtr<ffi::lua_State> = AtomicPtr::new(null_mut());
/// Between [`set_target`] and [`clear`]: the hook only raises then.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Makes the thread at `i` the target; the caller checked it is one and
/// keeps it alive until [`clear`].
pub fn set_target(lua: Lua, i: std::ffi::c_int) {
    // SAFETY: reads a stack value; a non-thread gives null.
    let thread = unsafe { ffi::lua_tothread(lua.raw(), i) };
    TARGET.store(thread, Ordering::SeqCst);
    ACTIVE.store(true, Ordering::SeqCst);
}

/// From a signal handler: have the target raise `interrupted!` at its
/// next Lua instruction. Async-signal-safe.
pub fn request() {
    let l = TARGET.load(Ordering::SeqCst);
    if !l.is_null() {
        let mask = ffi::LUA_MASKCALL | ffi::LUA_MASKRET | ffi::LUA_MASKCOUNT;
        // SAFETY: the target is alive (see `set_target`); lua_sethook may
        // be called from a signal handler.
        unsafe { ffi::lua_sethook(l, Some(stop), mask, 1) };
    }
}

/// No target any more; a hook set but never fired is removed.
pub fn clear() {
    ACTIVE.store(false, Ordering::SeqCst);
    let l = TARGET.swap(null_mut(), Ordering::SeqCst);
    if !l.is_null() {
        // SAFETY: the owner still holds the coroutine.
        unsafe { ffi::lua_sethook(l, None, 0, 0) };
    }
}

/// The hook: raises `interrupted!` in the target, once; not in the
/// command's own chunks (between a statement's end and `clear` the
/// coroutine runs them, and the error would escape the statement).
unsafe extern "C-unwind" fn stop(l: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) {
    // SAFETY: called by Lua as a hook with its debug record; `luaL_error`
    // longjmps out of this frame, which owns nothing.
    unsafe {
        if !ACTIVE.load(Ordering::SeqCst) {
            ffi::lua_sethook(l, None, 0, 0);
            return;
        }
        if ffi::lua_getinfo(l, c"S".as_ptr(), ar) != 0 && !(*ar).source.is_null() {
            let source = CStr::from_ptr((*ar).source).to_bytes();
            if source == b"=coutil" || source == b"=coutil.repl" {
                return;
            }
        }
        ffi::lua_sethook(l, None, 0, 0);
        ffi::luaL_error(l, c"interrupted!".as_ptr());
    }
}
