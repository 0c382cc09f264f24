//! Coroutines driven from Rust: handles on threads other than the running
//! one (read their stacks, move values to them, resume them), and C
//! functions that yield with a continuation, for modules that schedule
//! coroutines themselves (`coutil.event`) rather than through the loop.
//!
//! A thread handle is a [`Lua`] like any other, made by [`Lua::to_thread`]
//! from a thread value on a stack; the methods of `state.rs` and
//! `table.rs` work on it. It is valid while that thread stays reachable
//! (in practice: anchored on the running stack), and a suspended one only
//! has room for the values made room for with [`Lua::check_stack`] (but
//! what its yielded C function had left).
//!
//! A function that may yield is made with [`yfn!`] (a C function) or
//! [`ykfn!`] (a continuation) from a body returning a [`Step`]. As with
//! [`super::entry`], the body returns first, panics caught, so that no Rust
//! value is alive when Lua leaves the frame by longjmp, which `lua_yieldk`
//! does too (to `lua_resume`).

use std::ffi::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::{Error, KContext, KFunction, Lua, ffi, raise};

/// What a body made with [`yfn!`] or [`ykfn!`] decided.
pub enum Step {
    /// Return this many values from the top of the stack.
    Return(c_int),
    /// Yield no values, keeping the whole stack, and continue in `k` (made
    /// with [`ykfn!`]), which gets the context and finds the stack as it
    /// was with the resume values above it.
    Yield(KFunction, KContext),
}

/// Runs `body` for a C function or continuation call, then returns,
/// yields or raises as it decided, with no Rust value of the body alive.
/// Every error is raised, [`Error::Fail`] too (as its message): these
/// functions have no `false, msg, code` results.
///
/// # Safety
/// `l` must be the state of the running C function or continuation call.
/// (A yield where none is possible, see [`Lua::is_yieldable`], raises
/// Lua's error.)
#[inline(always)]
pub unsafe fn step(l: *mut ffi::lua_State, body: impl FnOnce(Lua) -> Result<Step, Error>) -> c_int {
    // SAFETY: `l` is the running state, as the caller promises.
    let lua = unsafe { Lua::from_raw(l) };
    let (k, ctx) = match catch_unwind(AssertUnwindSafe(move || body(lua))) {
        Ok(Ok(Step::Return(n))) => return n,
        Ok(Ok(Step::Yield(k, ctx))) => (k, ctx),
        // SAFETY: the body's values are dropped (see `raise`).
        Ok(Err(e)) => return unsafe { raise(l, e) },
        Err(payload) => {
            drop(payload);
            let e = Error::msg("internal error in coutil (panic)");
            // SAFETY: as above.
            return unsafe { raise(l, e) };
        }
    };
    // NOTE: nothing is left to drop here, so that this can be a tail call
    // (`jmp lua_yieldk`; LLVM may still keep a large frame, see
    // `event::wait::await_one`): a yield longjmps, and each frame it skips
    // costs a mispredicted return later (10% of an `await`/`emitone` round
    // trip for this one frame).
    // SAFETY: only plain data is alive; lua_yieldk leaves this frame and
    // `k` takes over with the stack as it is.
    unsafe { ffi::lua_yieldk(l, 0, ctx, Some(k)) }
}

/// Makes a `lua_CFunction` from a `fn(Lua) -> Result<Step, Error>`.
#[macro_export]
macro_rules! yfn {
    ($f:path) => {{
        unsafe extern "C-unwind" fn wrapper(
            l: *mut $crate::lua::ffi::lua_State,
        ) -> ::std::ffi::c_int {
            // SAFETY: Lua calls this as a C function with its running state.
            unsafe { $crate::lua::coroutines::step(l, $f) }
        }
        wrapper as $crate::lua::CFunction
    }};
}

/// Makes a continuation (`lua_KFunction`) from a
/// `fn(Lua, KContext) -> Result<Step, Error>`, for [`Step::Yield`].
#[macro_export]
macro_rules! ykfn {
    ($f:path) => {{
        unsafe extern "C-unwind" fn wrapper(
            l: *mut $crate::lua::ffi::lua_State,
            _status: ::std::ffi::c_int,
            ctx: $crate::lua::KContext,
        ) -> ::std::ffi::c_int {
            // SAFETY: Lua calls this as the continuation of a yield.
            unsafe { $crate::lua::coroutines::step(l, |lua| $f(lua, ctx)) }
        }
        wrapper as $crate::lua::KFunction
    }};
}

// SAFETY (for every method below): as in `state.rs`, `self.l` is valid,
// and so are the indices given; a thread handle is only used while its
// thread is reachable (see the module doc).
impl Lua {
    /// The thread at `i`, as a handle, or `None` if the value is no thread.
    #[inline]
    pub fn to_thread(self, i: c_int) -> Option<Lua> {
        // SAFETY: see above.
        let co = unsafe { ffi::lua_tothread(self.raw(), i) };
        // SAFETY: a thread of the state, valid while it is reachable, which
        // its users keep it (see the module doc).
        (!co.is_null()).then(|| unsafe { Lua::from_raw(co) })
    }

    /// Whether `self` and `other` are the same thread.
    #[inline]
    pub fn same_thread(self, other: Lua) -> bool {
        std::ptr::eq(self.raw(), other.raw())
    }

    /// The status of this thread: `LUA_OK` (running, not started or
    /// finished), `LUA_YIELD` (suspended) or an error status (dead).
    #[inline]
    pub fn status(self) -> c_int {
        // SAFETY: see above.
        unsafe { ffi::lua_status(self.raw()) }
    }

    /// Moves the `n` values on top of this stack to the top of `to`'s,
    /// another thread of the same state (with room for them).
    #[inline]
    pub fn xmove(self, to: Lua, n: c_int) {
        // SAFETY: see above; both threads belong to the same state, as
        // every thread handle of this state does.
        unsafe { ffi::lua_xmove(self.raw(), to.raw(), n) }
    }

    /// Resumes this coroutine from the running thread `from`, with the
    /// `nargs` values on top of its stack as arguments; returns the status
    /// (`LUA_OK` finished, `LUA_YIELD` yielded, or an error status) and
    /// the number of values it returned or yielded, on top of its stack
    /// (on error, the error value is there instead). Errors of the
    /// coroutine are caught; Lua refuses to resume a coroutine that is not
    /// suspended (or not started), as an error status.
    #[inline]
    pub fn resume(self, from: Lua, nargs: c_int) -> (c_int, c_int) {
        let mut nres = 0;
        // SAFETY: see above; lua_resume runs the coroutine and catches its
        // errors, and checks its status first.
        let status = unsafe { ffi::lua_resume(self.raw(), from.raw(), nargs, &mut nres) };
        (status, nres)
    }

    /// Resumes this coroutine, a thread of a state that runs no Lua code
    /// (a state of ours driven from Rust, see `states.rs`), with the
    /// `nargs` values on top of its stack as arguments; as
    /// [`resume`](Lua::resume) otherwise.
    #[inline]
    pub fn resume_from_host(self, nargs: c_int) -> (c_int, c_int) {
        let mut nres = 0;
        // SAFETY: see above; no coroutine resumes it (`from` null), as the
        // C API allows.
        let status = unsafe { ffi::lua_resume(self.raw(), std::ptr::null_mut(), nargs, &mut nres) };
        (status, nres)
    }

    /// Pushes a new thread of the state and returns a handle on it, valid
    /// while the thread stays reachable (see the module doc).
    #[inline]
    pub fn new_thread(self) -> Lua {
        // SAFETY: see above; the new thread is on the stack, reachable.
        unsafe { Lua::from_raw(ffi::lua_newthread(self.raw())) }
    }

    /// Copies the value at `from` into the slot `to`, replacing it.
    #[inline]
    pub fn copy(self, from: c_int, to: c_int) {
        // SAFETY: see above.
        unsafe { ffi::lua_copy(self.raw(), from, to) }
    }

    /// Pushes the position `"chunk:line: "` of the function `level` levels
    /// up the call stack (1: the caller of the running C function), or
    /// `""` if unknown, as `luaL_where` (the prefix of `error` messages).
    #[inline]
    pub fn push_where(self, level: c_int) {
        // SAFETY: see above; pushes one string.
        unsafe { ffi::luaL_where(self.raw(), level) }
    }
}
