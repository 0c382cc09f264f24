//! `coutil.system`: the event loop and the OS, one file per area. Each
//! area lists its functions in a `FUNCTIONS` table; this file only
//! assembles them. Every function gets the state's loop userdata as its
//! first upvalue (see [`sys_loop`]).

mod children;
mod errno;
mod execute;
pub mod fs;
mod info;
pub mod net;
mod process;
mod random;
mod run;
mod signal;
mod stdio;
mod time;

use std::ffi::c_int;

use crate::lua::awaiting::{SysLoop, state_loop};
use crate::lua::{Lua, Reg, ffi};

const AREAS: &[&[&[Reg]]] = &[
    &[run::FUNCTIONS, time::FUNCTIONS],
    &[signal::FUNCTIONS, process::FUNCTIONS, execute::FUNCTIONS],
    &[info::FUNCTIONS, random::FUNCTIONS],
    net::AREAS,
    &[fs::FUNCTIONS],
    crate::threads::SYSTEM,
];

/// `luaopen_coutil_system`: the module table.
pub fn open(lua: Lua) -> c_int {
    state_loop(lua);
    let l = lua.raw();
    let areas = || AREAS.iter().flat_map(|group| group.iter());
    let count: usize = areas().map(|a| a.len()).sum();
    // SAFETY: plain stack operations; the loop userdata is in the registry
    // (made by `state_loop`), pushed here to become each function's upvalue.
    unsafe {
        ffi::lua_createtable(l, 0, count as c_int);
        for area in areas() {
            for (name, f) in *area {
                push_loop(l);
                ffi::lua_pushcclosure(l, *f, 1);
                ffi::lua_setfield(l, -2, name.as_ptr());
            }
        }
    }
    fs::set_filebits(lua);
    net::socket::register(lua);
    stdio::set_lazy(lua);
    crate::set_version(lua);
    1
}

unsafe fn push_loop(l: *mut ffi::lua_State) {
    // SAFETY: pushes a light userdata pointing to the loop, which lives as
    // long as the state (it is a full userdata anchored in the registry).
    unsafe {
        ffi::lua_pushlightuserdata(l, state_loop(Lua::from_raw(l)) as *const SysLoop as *mut _)
    }
}

pub use crate::lua::awaiting::sys_loop;
