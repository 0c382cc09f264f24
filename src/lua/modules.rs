//! How Lua finds the library's modules: their `luaopen_*` entry points
//! (listed by the crate root in `MODULES`), embedded Lua chunks, the
//! searcher the `coutil` command adds, and `package.preload` for embedders.

use std::ffi::{CStr, c_int, c_void};

use super::{CFunction, LUA_OK, LUA_REGISTRYINDEX, Lua, PRELOAD_TABLE, Reg, ffi};

/// A module: its `require` name and entry point.
pub type Module = (&'static CStr, CFunction);

/// Loads an embedded Lua chunk of ours and runs it; returns its result.
///
/// # Safety
/// `l` must be the state of the running C function call (`require`'s
/// call of a `luaopen_*`).
pub unsafe fn open_chunk(l: *mut ffi::lua_State, name: &CStr, source: &str) -> c_int {
    // SAFETY: as the caller promises.
    unsafe { open_chunk_with(l, name, source, None) }
}

/// Like [`open_chunk`], calling the chunk with a table of `natives` (the
/// module's functions written in Rust) as its argument.
///
/// # Safety
/// As for [`open_chunk`].
pub unsafe fn open_chunk_with(
    l: *mut ffi::lua_State,
    name: &CStr,
    source: &str,
    natives: Option<&[Reg]>,
) -> c_int {
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
        let nargs = match natives {
            Some(natives) => {
                Lua::from_raw(l).push_functions(natives, false);
                1
            }
            None => 0,
        };
        ffi::lua_callk(l, nargs, 1, 0, None);
    }
    1
}

/// `require "memory"`: the table of `coutil.memory`, through `require` so
/// that both names share it.
///
/// # Safety
/// As for [`open_chunk`].
pub unsafe fn open_alias(l: *mut ffi::lua_State, name: &CStr, open: CFunction) -> c_int {
    // SAFETY: luaL_requiref reuses package.loaded[name] if set.
    unsafe { ffi::luaL_requiref(l, name.as_ptr(), open, 0) };
    1
}

/// A `package.searchers` entry for the modules of the list its upvalue
/// points to: the loader and `":preload:"`, as the preload searcher gives;
/// nothing for other names, so `require`'s error message stays the
/// standard one.
unsafe extern "C-unwind" fn search(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by `require` with the module name; the upvalue is the
    // light userdata made by `add_searcher` from a `&'static [Module]`.
    unsafe {
        let lua = Lua::from_raw(l);
        let modules = &*(lua.to_userdata(Lua::upvalue(1)) as *const &'static [Module]);
        let Some(name) = lua.to_bytes(1) else {
            return 0;
        };
        match modules.iter().find(|(n, _)| n.to_bytes() == name) {
            Some((_, open)) => {
                lua.push_cfunction(*open);
                lua.push_str(c":preload:");
                2
            }
            None => 0,
        }
    }
}

/// Inserts a searcher for `modules` in `package.searchers` of `lua`'s
/// state, right after the preload searcher. `lua` needs the `package`
/// library and stack space for 4 values.
pub fn add_searcher(lua: Lua, modules: &'static &'static [Module]) {
    let top = lua.top();
    let code = b"local searchers, search = package.searchers, ...
        table.insert(searchers, math.min(2, #searchers + 1), search)";
    if lua.load(code, c"=coutil", Some(c"t")) == LUA_OK {
        lua.push_light(modules as *const &[Module] as *mut c_void);
        lua.push_cclosure(search, 1);
        lua.pcall(1, 0);
    }
    lua.set_top(top);
}

/// Registers `modules` in `package.preload` of `lua`'s state. `lua` needs
/// the `package` library and stack space for 3 values.
pub fn preload(lua: Lua, modules: &[Module]) {
    lua.get_subtable(LUA_REGISTRYINDEX, PRELOAD_TABLE);
    for (name, open) in modules {
        lua.push_cfunction(*open);
        lua.set_field(-2, name);
    }
    lua.pop(1);
}

/// Keeps the shared object that holds the code at `addr` (a C function,
/// a static) loaded until the process exits, even after every state that
/// loaded it is closed (closing a state `dlclose`s the libraries it
/// loaded, while other states or threads may still run that code).
pub fn pin_object(addr: *const c_void) {
    // SAFETY: dladdr only fills `info` for an address of a loaded object;
    // dlopen of an already loaded object (RTLD_NOLOAD) adds a reference,
    // never closed, and marks it undeletable.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(addr, &mut info) != 0 && !info.dli_fname.is_null() {
            libc::dlopen(
                info.dli_fname,
                libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
            );
        }
    }
}
