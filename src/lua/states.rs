//! Lua states of our own, made and driven from Rust rather than from a
//! running C function (the independent states of `coutil.threads` and
//! `coutil.coroutine`, unit tests): making and closing them, setting them
//! up in protected mode, opening libraries, and watching a thread for
//! the first call it makes.
//!
//! An [`OwnedState`] closes its state when dropped; the [`Lua`] handles
//! taken from it (its main thread, threads made in it) are valid until
//! then. Values never move between two states with `lua_xmove`: they are
//! copied out into Rust data and pushed into the other state
//! (`threads::transfer`).
//!
//! Outside a protected call, a memory error in a state has no place to
//! longjmp to and ends in `lua_atpanic` (an abort): so a new state is set
//! up with [`Lua::pcall_fn`], and what is done outside one is kept to
//! what cannot allocate or is bounded (as the callers' comments say).

use std::ffi::{CStr, c_int, c_void};

use super::{CFunction, Lua, Reg, Ret, entry, ffi};

/// A state made with `luaL_newstate` (the C allocator, a panic function,
/// warnings off until `@on`), closed when dropped.
pub struct OwnedState {
    main: Lua,
}

impl OwnedState {
    /// A new state, or `None` when there is no memory for one.
    pub fn new() -> Option<OwnedState> {
        // Null when it cannot allocate; warnings off under 5.5 too.
        let l = super::new_state();
        if l.is_null() {
            return None;
        }
        // SAFETY: a new valid state, closed only by `drop`.
        let main = unsafe { Lua::from_raw(l) };
        Some(OwnedState { main })
    }

    /// The main thread of the state.
    #[inline]
    pub fn lua(&self) -> Lua {
        self.main
    }
}

impl Drop for OwnedState {
    fn drop(&mut self) {
        // SAFETY: the state was made by `new` and is closed once; its
        // handles are not used past this point (see the module doc).
        unsafe { ffi::lua_close(self.main.raw()) }
    }
}

/// The standard libraries that `package.preload` of a new independent
/// state offers, by `require` name (`package` itself is opened).
pub const STANDARD_LIBS: &[Reg] = &[
    (c"_G", ffi::luaopen_base),
    (c"coroutine", ffi::luaopen_coroutine),
    (c"table", ffi::luaopen_table),
    (c"io", ffi::luaopen_io),
    (c"os", ffi::luaopen_os),
    (c"string", ffi::luaopen_string),
    (c"math", ffi::luaopen_math),
    (c"utf8", ffi::luaopen_utf8),
    (c"debug", ffi::luaopen_debug),
];

/// The opener of the `package` library.
pub const OPEN_PACKAGE: CFunction = ffi::luaopen_package;

/// The call hook of [`Lua::watch_first_call`]: removes itself at the
/// first call other than the watched function's own start.
unsafe extern "C-unwind" fn first_call(l: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) {
    // SAFETY: Lua calls the hook with a valid state and activation record;
    // lua_getstack only fills `caller`.
    unsafe {
        let mut caller = std::mem::MaybeUninit::<ffi::lua_Debug>::zeroed();
        if (*ar).event == ffi::LUA_HOOKTAILCALL || ffi::lua_getstack(l, 1, caller.as_mut_ptr()) != 0
        {
            ffi::lua_sethook(l, None, 0, 0);
        }
    }
}

// SAFETY (for every method below): as in `state.rs`, `self` is a valid
// state or thread, used by the thread of the program that holds it.
impl Lua {
    /// Calls `f(lua, data)` as a C function from this thread, protected
    /// (`lua_pcall`): its errors (memory errors above all) come back as the
    /// status (`LUA_OK` on success) with the error value on top, instead
    /// of ending in a panic. `f` returns its number of results, of which
    /// `nres` are left on the stack. As in every C function, a memory
    /// error longjmps out of `f` (the longjmp rule: it keeps only plain
    /// data alive); its panics are caught. Needs 3 free stack slots.
    pub fn pcall_fn<T>(self, f: fn(Lua, &T) -> Ret, data: &T, nres: c_int) -> c_int {
        unsafe extern "C-unwind" fn call<T>(l: *mut ffi::lua_State) -> c_int {
            // SAFETY: called by the lua_pcall below with its two light
            // userdata: a `fn(Lua, &T) -> Ret` and a `&T` that outlives
            // the call.
            unsafe {
                entry(l, |lua| {
                    let f: fn(Lua, &T) -> Ret = std::mem::transmute(lua.to_userdata(1));
                    let data = &*(lua.to_userdata(2) as *const T);
                    lua.set_top(0);
                    f(lua, data)
                })
            }
        }
        self.push_cfunction(call::<T>);
        self.push_light(f as *mut c_void);
        self.push_light(data as *const T as *mut c_void);
        self.pcall(2, nres)
    }

    /// Pushes a message handler for [`pcall_handled`](Lua::pcall_handled)
    /// that appends a traceback to a string message (`luaL_traceback`, as
    /// `lua.c`'s handler; other values get the traceback alone).
    #[cfg(any(test, feature = "command"))]
    pub fn push_traceback_handler(self) {
        unsafe extern "C-unwind" fn traceback(l: *mut ffi::lua_State) -> c_int {
            // SAFETY: Lua calls the handler with the error value at 1;
            // `lua_tolstring` gives null for a value that is not a string
            // or a number, which `luaL_traceback` takes as no message.
            unsafe {
                let msg = ffi::lua_tolstring(l, 1, std::ptr::null_mut());
                ffi::luaL_traceback(l, l, msg, 1);
            }
            1
        }
        self.push_cfunction(traceback);
    }

    /// Opens the standard libraries (`luaL_openlibs`).
    #[cfg(any(test, feature = "command"))]
    pub fn open_libs(self) {
        // SAFETY: see above; may raise memory errors, as every push.
        unsafe { ffi::luaL_openlibs(self.raw()) }
    }

    /// `luaL_requiref`: pushes `package.loaded[name]`, calling `open`
    /// with `name` to make it if needed; also sets the global `name` to
    /// it if `global`.
    pub fn require_lib(self, name: &CStr, open: CFunction, global: bool) {
        // SAFETY: see above; errors of `open` propagate (callers run
        // protected with plain data only).
        unsafe { ffi::luaL_requiref(self.raw(), name.as_ptr(), open, global as c_int) }
    }

    /// Watches this thread, about to start a function, for a call: a call
    /// hook that removes itself at the first call made by the function
    /// (a tail call too). Replaces the thread's hook.
    #[inline]
    pub fn watch_first_call(self) {
        // SAFETY: see above; sets the hook of a thread of the state.
        unsafe { ffi::lua_sethook(self.raw(), Some(first_call), ffi::LUA_MASKCALL, 0) }
    }

    /// Ends [`watch_first_call`](Lua::watch_first_call): true (and the
    /// watch removed) if the function made no call meanwhile and the hook
    /// was not replaced.
    pub fn end_watch(self) -> bool {
        // SAFETY: see above; reads and clears the hook of a thread.
        unsafe {
            let ours = ffi::lua_gethook(self.raw())
                .is_some_and(|h| std::ptr::fn_addr_eq(h, first_call as ffi::lua_Hook));
            if ours {
                ffi::lua_sethook(self.raw(), None, 0, 0);
            }
            ours
        }
    }
}
