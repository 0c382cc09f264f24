//! Stopping a suspended coroutine at a safe point, for `coutil.await`'s
//! `any` and `all`, which close the coroutines of their functions.
//!
//! [`resume_to_lua`] resumes a coroutine that is suspended in an await
//! function with no values, which cancels the await (an explicit resume),
//! and has it yield again before it runs one instruction of Lua code: a
//! count hook of period 1 on the coroutine yields from the hook (Lua 5.4
//! lets count hooks yield with no values). The await's results are dropped
//! and the coroutine is left suspended, ready for `coroutine.close`, which
//! then runs its to-be-closed variables. The coroutine's own hook is put
//! back.

use super::{LUA_OK, LUA_YIELD, Lua, ffi};

unsafe extern "C-unwind" fn yield_now(l: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) {
    // SAFETY: called by Lua as a hook of `l`; a count hook may yield with
    // no values, and `lua_yield` returns normally from a hook (the
    // interpreter performs the yield once the hook has returned).
    unsafe {
        if (*ar).event == ffi::LUA_HOOKCOUNT {
            ffi::lua_yield(l, 0);
        }
    }
}

/// How [`resume_to_lua`] left the coroutine.
#[derive(PartialEq, Eq, Debug)]
pub enum Stopped {
    /// Suspended again (before its next Lua instruction or in a yield of
    /// C code): ready to be closed.
    Suspended,
    /// It ended: nothing of Lua was left to run.
    Ended,
    /// It raised an error (value left on the coroutine's stack).
    Failed,
}

impl Lua {
    /// Resumes the coroutine `co` (suspended in a yield, not running) with
    /// no values and stops it again before its next Lua instruction. `self`
    /// is the resuming (running) state.
    pub fn resume_to_lua(self, co: Lua) -> Stopped {
        let co = co.raw();
        let mut nres = 0;
        // SAFETY: `co` is a suspended coroutine of this state (checked by
        // the caller); its hook is saved and put back around one protected
        // resume, and the values it yields are popped.
        unsafe {
            let hook = ffi::lua_gethook(co);
            let mask = ffi::lua_gethookmask(co);
            let count = ffi::lua_gethookcount(co);
            ffi::lua_sethook(co, Some(yield_now), ffi::LUA_MASKCOUNT, 1);
            let status = ffi::lua_resume(co, self.raw(), 0, &mut nres);
            ffi::lua_sethook(co, hook, mask, count);
            match status {
                LUA_YIELD => {
                    ffi::lua_pop(co, nres);
                    Stopped::Suspended
                }
                LUA_OK => {
                    ffi::lua_pop(co, nres);
                    Stopped::Ended
                }
                _ => Stopped::Failed,
            }
        }
    }

    /// Makes this coroutine (suspended or in the middle of resuming
    /// another) yield before its next Lua instruction, with no values, for
    /// good: its hook is replaced.
    pub fn stop_next(self) {
        // SAFETY: sets the hook of a live thread of this state.
        unsafe { ffi::lua_sethook(self.raw(), Some(yield_now), ffi::LUA_MASKCOUNT, 1) };
    }
}
