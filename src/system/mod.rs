//! `coutil.system`: the event loop and the OS, one file per area. Each
//! area lists its functions in a `FUNCTIONS` table; this file only
//! assembles them. Every function gets the state's loop userdata as its
//! first upvalue (see [`sys_loop`]).

mod awaitfd;
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
mod sigpipe;
mod stdio;
mod time;

use std::ffi::{c_int, c_void};

use crate::lua::awaiting::{SysLoop, state_loop};
use crate::lua::{Lua, Reg};

const AREAS: &[&[&[Reg]]] = &[
    &[run::FUNCTIONS, time::FUNCTIONS],
    &[signal::FUNCTIONS, process::FUNCTIONS, execute::FUNCTIONS],
    &[awaitfd::FUNCTIONS],
    &[info::FUNCTIONS, random::FUNCTIONS],
    net::AREAS,
    &[fs::FUNCTIONS],
    crate::threads::SYSTEM,
];

/// `luaopen_coutil_system`: the module table.
pub fn open(lua: Lua) -> c_int {
    // Every function gets the loop as upvalue: a light userdata pointing
    // to it (it lives as long as the state, anchored in the registry).
    let sl = state_loop(&lua) as *const SysLoop as *mut c_void;
    let areas = || AREAS.iter().flat_map(|group| group.iter());
    let count: usize = areas().map(|a| a.len()).sum();
    lua.new_table(0, count as c_int);
    for area in areas() {
        for (name, f) in *area {
            lua.push_light(sl);
            lua.push_cclosure(*f, 1);
            lua.set_field(-2, name);
        }
    }
    fs::set_filebits(lua);
    net::socket::register(lua);
    stdio::set_lazy(lua);
    crate::set_version(lua);
    1
}

pub use crate::lua::awaiting::sys_loop;
