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

mod await_lib;
mod console;
mod event;
mod lua;
mod memory;
mod runtime;
mod system;
mod threads;

/// The Lua C API as the library uses it (for hosts that embed the library
/// with [`preload`] or [`add_searcher`]).
pub use lua::ffi;

use std::ffi::c_int;

/// The `coutil` command (`src/bin/coutil.rs` reads its command line).
#[cfg(feature = "command")]
pub use console::host::{Command, run as run_command};

pub use console::mark_stdin_closed;

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

use lua::{Lua, modules};

macro_rules! embedded {
    ($fn:ident, $chunk:literal, $file:literal) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $fn(l: *mut lua::State) -> c_int {
            // SAFETY: called by `require` as a C function.
            unsafe { modules::open_chunk(l, $chunk, include_str!(concat!("lua/coutil/", $file))) }
        }
    };
}

embedded!(luaopen_coutil_queued, c"=coutil.queued", "queued.lua");
embedded!(luaopen_coutil_mutex, c"=coutil.mutex", "mutex.lua");
embedded!(luaopen_coutil_promise, c"=coutil.promise", "promise.lua");
embedded!(luaopen_coutil_spawn, c"=coutil.spawn", "spawn.lua");

/// `require "coutil.await"`: a Lua chunk with native helpers (see
/// `await_lib`).
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_coutil_await(l: *mut lua::State) -> c_int {
    // SAFETY: called by `require` as a C function.
    unsafe {
        modules::open_chunk_with(
            l,
            c"=coutil.await",
            await_lib::CHUNK,
            Some(await_lib::NATIVES),
        )
    }
}

/// `require "coutil.event"`: native (see `event`).
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_coutil_event(l: *mut lua::State) -> c_int {
    // SAFETY: called by `require` with a valid state.
    unsafe { lua::entry(l, |lua| Ok(event::module(lua))) }
}

/// `require "coutil.system"`
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_coutil_system(l: *mut lua::State) -> c_int {
    // SAFETY: called by `require` with a valid state.
    unsafe { lua::entry(l, |lua| Ok(system::open(lua))) }
}

/// `require "coutil.memory"`
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_coutil_memory(l: *mut lua::State) -> c_int {
    // SAFETY: called by `require` with a valid state.
    unsafe { lua::entry(l, |lua| Ok(memory::open(lua))) }
}

/// `require "memory"`: the same table as `coutil.memory`.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_memory(l: *mut lua::State) -> c_int {
    // SAFETY: called by `require` as a C function.
    unsafe { modules::open_alias(l, c"coutil.memory", luaopen_coutil_memory) }
}

/// `require "coutil.channel"`
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_coutil_channel(l: *mut lua::State) -> c_int {
    // SAFETY: called by `require` with a valid state.
    unsafe { lua::entry(l, |lua| Ok(threads::open_channel(lua))) }
}

/// `require "coutil.coroutine"`
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_coutil_coroutine(l: *mut lua::State) -> c_int {
    // SAFETY: called by `require` with a valid state.
    unsafe { lua::entry(l, |lua| Ok(threads::open_coroutine(lua))) }
}

/// `require "coutil.threads"`
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_coutil_threads(l: *mut lua::State) -> c_int {
    // SAFETY: called by `require` with a valid state.
    unsafe { lua::entry(l, |lua| Ok(threads::open_threads(lua))) }
}

/// `require "coutil.console"`: internal support of the `coutil` command.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_coutil_console(l: *mut lua::State) -> c_int {
    // SAFETY: called by `require` with a valid state.
    unsafe { lua::entry(l, |lua| Ok(console::open(lua))) }
}

/// `require "coutil.testing"`: hooks for the test scripts, in debug
/// builds only (see `lua::testing`).
#[cfg(debug_assertions)]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn luaopen_coutil_testing(l: *mut lua::State) -> c_int {
    // SAFETY: called by `require` with a valid state.
    let lua = unsafe { Lua::from_raw(l) };
    lua.push_functions(lua::testing::FUNCTIONS, false);
    1
}

/// Keeps `coutil.so` loaded for the life of the process: worker and
/// dispatcher threads may still run its code after the state that loaded
/// it closed (and `dlclose`d it). Only meaningful for the module build.
pub(crate) fn pin_library() {
    #[cfg(feature = "loadable")]
    {
        static PINNED: std::sync::Once = std::sync::Once::new();
        PINNED.call_once(|| modules::pin_object(pin_library as *const std::ffi::c_void));
    }
}

/// Every module of the library: `require` name and entry point.
pub static MODULES: &[modules::Module] = &[
    (c"coutil.system", luaopen_coutil_system),
    (c"coutil.event", luaopen_coutil_event),
    (c"coutil.queued", luaopen_coutil_queued),
    (c"coutil.mutex", luaopen_coutil_mutex),
    (c"coutil.promise", luaopen_coutil_promise),
    (c"coutil.spawn", luaopen_coutil_spawn),
    (c"coutil.await", luaopen_coutil_await),
    (c"coutil.memory", luaopen_coutil_memory),
    (c"memory", luaopen_memory),
    (c"coutil.console", luaopen_coutil_console),
    (c"coutil.channel", luaopen_coutil_channel),
    (c"coutil.coroutine", luaopen_coutil_coroutine),
    (c"coutil.threads", luaopen_coutil_threads),
    #[cfg(debug_assertions)]
    (c"coutil.testing", luaopen_coutil_testing),
];

/// Inserts a searcher for every module of the library in
/// `package.searchers` of state `l`, right after the preload searcher.
///
/// # Safety
/// `l` must be a valid state with the `package` library open, and enough
/// stack space for 4 values.
pub unsafe fn add_searcher(l: *mut lua::State) {
    // SAFETY: as the caller promises.
    modules::add_searcher(unsafe { Lua::from_raw(l) }, &MODULES);
}

/// Registers every module in `package.preload` of state `l`.
///
/// # Safety
/// `l` must be a valid state with the `package` library open, and enough
/// stack space for 3 values.
pub unsafe fn preload(l: *mut lua::State) {
    // SAFETY: as the caller promises.
    modules::preload(unsafe { Lua::from_raw(l) }, MODULES);
}
