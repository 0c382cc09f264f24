//! Coutil: multithreading and non-blocking OS access for Lua 5.4.
//!
//! This crate builds two things from one source (design §1, §7):
//! `coutil.so`, a native module for a host `lua5.4` (feature `module`),
//! and the `coutil` command with Lua built in (feature `vendored`). Each
//! Lua module has a `luaopen_coutil_*` entry point here; [`preload`]
//! registers them all in `package.preload` for embedding, and
//! [`add_searcher`] makes them requirable with a searcher instead (the
//! command's way: an empty `package.preload` is cheaper to copy into every
//! independent state).
//!
//! Layers: `lua` (binding layer: argument checks, userdata classes, the
//! await protocol), `runtime` (the event loop, Lua-agnostic), and the
//! Lua-facing modules (`system`, `memory`, `event`, and the pure-Lua
//! modules embedded from `src/lua/coutil/*.lua`).

#![deny(unsafe_op_in_unsafe_fn)]

mod console;
mod event;
mod lua;
mod memory;
mod runtime;
mod system;
mod threads;

/// The Lua C API as the library uses it (for the command's own state).
pub use lua::ffi;

use std::ffi::{CStr, c_int};

/// The chunk of the `coutil` command (`src/lua/console.lua`).
pub const CONSOLE: &str = console::CHUNK;

pub use console::mark_stdin_closed;

/// What the `coutil` command sets up in the library before running:
/// `pool:dofile(arg[-1])` and `coroutine.loadfile(arg[-1])` load the
/// command's chunk (the library itself knows no command).
#[cfg(feature = "vendored")]
pub fn setup_command() {
    threads::set_command_chunk(console::command_chunk);
}

/// The library's version, as `system._COUTIL` gives it: `"Coutil 0.2.0"`
/// (the form of Lua's `_VERSION`).
pub const VERSION: &str = concat!("Coutil ", env!("CARGO_PKG_VERSION"));

/// Sets `_COUTIL` in the module table on top of the stack: a name of the
/// Lua-reserved form (`_` and capitals), which the original's all-lowercase
/// API cannot clash with.
fn set_version(lua: Lua) {
    lua.push_bytes(VERSION.as_bytes());
    lua.set_field(-2, c"_COUTIL");
}

use crate::lua::{CFunction, LUA_OK, LUA_REGISTRYINDEX};
use lua::Lua;

/// Loads an embedded Lua module chunk and runs it; returns its result.
///
/// # Safety
/// `l` must be the state of the running C function call.
unsafe fn open_embedded(l: *mut ffi::lua_State, name: &CStr, source: &str) -> c_int {
    // SAFETY: loads and calls a chunk of ours; errors propagate as Lua
    // errors from this C function, with no Rust value alive.
    unsafe {
        if ffi::luaL_loadbufferx(
            l,
            source.as_ptr().cast(),
            source.len(),
            name.as_ptr(),
            c"t".as_ptr(),
        ) != LUA_OK
        {
            ffi::lua_error(l);
        }
        ffi::lua_callk(l, 0, 1, 0, None);
    }
    1
}

macro_rules! embedded {
    ($fn:ident, $chunk:literal, $file:literal) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $fn(l: *mut ffi::lua_State) -> c_int {
            // SAFETY: called by `require` as a C function.
            unsafe { open_embedded(l, $chunk, include_str!(concat!("lua/coutil/", $file))) }
        }
    };
}

embedded!(luaopen_coutil_queued, c"=coutil.queued", "queued.lua");
embedded!(luaopen_coutil_mutex, c"=coutil.mutex", "mutex.lua");
embedded!(luaopen_coutil_promise, c"=coutil.promise", "promise.lua");
embedded!(luaopen_coutil_spawn, c"=coutil.spawn", "spawn.lua");

/// `require "coutil.event"`: native (see `event`).
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_coutil_event(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by `require` with a valid state.
    unsafe { event::open(l) }
}

/// `require "coutil.system"`
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_coutil_system(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by `require` with a valid state.
    unsafe { lua::entry(l, |lua| Ok(system::open(lua))) }
}

/// `require "coutil.memory"`
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_coutil_memory(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by `require` with a valid state.
    unsafe { lua::entry(l, |lua| Ok(memory::open(lua))) }
}

/// `require "memory"`: the same table as `coutil.memory`.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_memory(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: luaL_requiref reuses package.loaded["coutil.memory"] if set.
    unsafe { ffi::luaL_requiref(l, c"coutil.memory".as_ptr(), luaopen_coutil_memory, 0) };
    1
}

/// `require "coutil.channel"`
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_coutil_channel(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by `require` with a valid state.
    unsafe { lua::entry(l, |lua| Ok(threads::open_channel(lua))) }
}

/// `require "coutil.coroutine"`
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_coutil_coroutine(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by `require` with a valid state.
    unsafe { lua::entry(l, |lua| Ok(threads::open_coroutine(lua))) }
}

/// `require "coutil.threads"`
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_coutil_threads(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by `require` with a valid state.
    unsafe { lua::entry(l, |lua| Ok(threads::open_threads(lua))) }
}

/// `require "coutil.console"`: internal support of the `coutil` command.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_coutil_console(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by `require` with a valid state.
    unsafe { lua::entry(l, |lua| Ok(console::open(lua))) }
}

/// `require "coutil.testing"`: hooks for the test scripts, in debug
/// builds only (see `lua::testing`).
#[cfg(debug_assertions)]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_coutil_testing(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by `require` with a valid state.
    let lua = unsafe { Lua::from_raw(l) };
    lua.push_functions(lua::testing::FUNCTIONS, false);
    1
}

/// Keeps `coutil.so` loaded for the life of the process: worker and
/// dispatcher threads may still run its code after the state that loaded
/// it closed (and `dlclose`d it). Only meaningful for the module build.
pub(crate) fn pin_library() {
    #[cfg(feature = "module")]
    {
        static PINNED: std::sync::Once = std::sync::Once::new();
        PINNED.call_once(|| {
            // SAFETY: dladdr fills `info` for an address of this library;
            // dlopen of an already loaded object only adds a reference
            // (RTLD_NOLOAD) and marks it undeletable.
            unsafe {
                let mut info: libc::Dl_info = std::mem::zeroed();
                let here = pin_library as *const std::ffi::c_void;
                if libc::dladdr(here, &mut info) != 0 && !info.dli_fname.is_null() {
                    libc::dlopen(
                        info.dli_fname,
                        libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
                    );
                }
            }
        });
    }
}

/// Every module of the library: `require` name and entry point.
pub const MODULES: &[(&CStr, CFunction)] = &[
    (c"coutil.system", luaopen_coutil_system),
    (c"coutil.event", luaopen_coutil_event),
    (c"coutil.queued", luaopen_coutil_queued),
    (c"coutil.mutex", luaopen_coutil_mutex),
    (c"coutil.promise", luaopen_coutil_promise),
    (c"coutil.spawn", luaopen_coutil_spawn),
    (c"coutil.memory", luaopen_coutil_memory),
    (c"memory", luaopen_memory),
    (c"coutil.console", luaopen_coutil_console),
    (c"coutil.channel", luaopen_coutil_channel),
    (c"coutil.coroutine", luaopen_coutil_coroutine),
    (c"coutil.threads", luaopen_coutil_threads),
    #[cfg(debug_assertions)]
    (c"coutil.testing", luaopen_coutil_testing),
];

/// A `package.searchers` entry for the modules of [`MODULES`]: the loader
/// and `":preload:"`, as the preload searcher gives; nothing for other
/// names, so `require`'s error message stays the standard one.
unsafe extern "C-unwind" fn search(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by `require` with the module name.
    unsafe {
        let name = ffi::lua_tolstring(l, 1, std::ptr::null_mut());
        if name.is_null() {
            return 0;
        }
        let name = CStr::from_ptr(name);
        match MODULES.iter().find(|(n, _)| *n == name) {
            Some((_, open)) => {
                ffi::lua_pushcfunction(l, *open);
                ffi::lua_pushstring(l, c":preload:".as_ptr());
                2
            }
            None => 0,
        }
    }
}

/// Inserts a searcher for every module of the library in
/// `package.searchers` of state `l`, right after the preload searcher.
///
/// # Safety
/// `l` must be a valid state with the `package` library open, and enough
/// stack space for 4 values.
pub unsafe fn add_searcher(l: *mut ffi::lua_State) {
    // SAFETY: plain table operations on package.searchers, run as a
    // constant chunk of ours with the searcher as argument.
    unsafe {
        let top = ffi::lua_gettop(l);
        let code = c"local searchers, search = package.searchers, ...
            table.insert(searchers, math.min(2, #searchers + 1), search)";
        if ffi::luaL_loadstring(l, code.as_ptr()) == LUA_OK {
            ffi::lua_pushcfunction(l, search);
            ffi::lua_pcall(l, 1, 0, 0);
        }
        ffi::lua_settop(l, top);
    }
}

/// Registers every module in `package.preload` of state `l`.
///
/// # Safety
/// `l` must be a valid state with the `package` library open, and enough
/// stack space for 3 values.
pub unsafe fn preload(l: *mut ffi::lua_State) {
    // SAFETY: plain table operations on package.preload.
    unsafe {
        ffi::luaL_getsubtable(l, LUA_REGISTRYINDEX, c"_PRELOAD".as_ptr());
        for (name, open) in MODULES {
            ffi::lua_pushcfunction(l, *open);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
        ffi::lua_pop(l, 1);
    }
}
