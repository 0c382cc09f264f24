//! `coutil.memory` (placeholder until the module lands).
use std::ffi::c_int;

use crate::lua::{Lua, ffi};

pub fn open(lua: Lua) -> c_int {
    // SAFETY: pushes a new table.
    unsafe { ffi::lua_createtable(lua.raw(), 0, 0) };
    1
}
