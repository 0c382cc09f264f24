//! Files of Lua's `io` library, seen as OS descriptors (for `execute`'s
//! standard streams, and any function taking "a descriptor or an `io`
//! file").

use std::ffi::c_int;
use std::os::fd::RawFd;

use super::{Lua, ffi};

/// Layout of Lua's `luaL_Stream` (the userdata of an `io` file).
#[repr(C)]
struct LuaStream {
    f: *mut libc::FILE,
    closef: Option<ffi::lua_CFunction>,
}

/// The descriptor of the Lua `io` file at `i`: `None` if the value is no
/// such file, `Some(None)` if it is closed.
pub fn descriptor(lua: Lua, i: c_int) -> Option<Option<RawFd>> {
    // SAFETY: luaL_testudata checks the metatable registered as "FILE*" by
    // Lua's io library, whose userdata are `luaL_Stream`s.
    unsafe {
        let p = ffi::luaL_testudata(lua.raw(), i, c"FILE*".as_ptr()) as *const LuaStream;
        let stream = p.as_ref()?;
        if stream.closef.is_none() || stream.f.is_null() {
            return Some(None);
        }
        let fd = libc::fileno(stream.f);
        Some((fd >= 0).then_some(fd))
    }
}
