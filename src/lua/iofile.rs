//! Files of Lua's `io` library, seen as OS descriptors (for `execute`'s
//! standard streams, and any function taking "a descriptor or an `io`
//! file").

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::os::fd::RawFd;

use super::{Lua, ffi};

/// Layout of Lua's `luaL_Stream` (the userdata of an `io` file).
#[repr(C)]
struct LuaStream {
    f: *mut libc::FILE,
    closef: Option<ffi::lua_CFunction>,
}

/// Registry key (light userdata) under which [`descriptor`] keeps the
/// metatable of `io` files once it has found one by name, so that the
/// address it caches stays that table's while the state lives.
static FILE_METATABLE: u8 = 0;

/// The descriptor of the Lua `io` file at `i`: `None` if the value is no
/// such file, `Some(None)` if it is closed. `known` caches the address of
/// the state's `io` metatable (a field of its loop): a value with that
/// metatable needs no look-up by name.
pub fn descriptor(lua: Lua, i: c_int, known: &Cell<*const c_void>) -> Option<Option<RawFd>> {
    let l = lua.raw();
    // SAFETY: a value whose metatable is the one cached in `known` (kept
    // in the registry, so no other table can take its address) or that
    // luaL_testudata finds registered as "FILE*" by Lua's io library is
    // one of its `luaL_Stream`s. Both paths leave the stack as they found
    // it; only the first time, which stores the metatable, can allocate.
    unsafe {
        let i = ffi::lua_absindex(l, i);
        let mut p = std::ptr::null::<LuaStream>();
        if !known.get().is_null() && ffi::lua_getmetatable(l, i) != 0 {
            if ffi::lua_topointer(l, -1) == known.get() {
                p = ffi::lua_touserdata(l, i) as *const LuaStream;
            }
            ffi::lua_settop(l, -2);
        }
        if p.is_null() {
            p = ffi::luaL_testudata(l, i, c"FILE*".as_ptr()) as *const LuaStream;
            if !p.is_null() && known.get().is_null() && ffi::lua_getmetatable(l, i) != 0 {
                let metatable = ffi::lua_topointer(l, -1);
                let key = &FILE_METATABLE as *const u8 as *const c_void;
                ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, key);
                known.set(metatable); // once kept (the store may raise)
            }
        }
        let stream = p.as_ref()?;
        if stream.closef.is_none() || stream.f.is_null() {
            return Some(None);
        }
        let fd = libc::fileno(stream.f);
        Some((fd >= 0).then_some(fd))
    }
}
