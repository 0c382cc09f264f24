//! `threads.preloadclibs([enable])` (spec seed-todo.md E3): native
//! loaders recorded in `package.preload`, so that the independent states
//! created afterwards (which copy the creator's preload, threads.md §1)
//! get them without opening the library again.
//!
//! Enabling wraps every C function of `package.searchers` (the standard
//! preload, Lua, C and all-in-one searchers, and the command's searcher
//! of Coutil's own modules) in a closure that calls it and, when it
//! returns a plain C function (`lua_CFunction`, no upvalues: what the C
//! searchers return, the `luaopen_*` symbol of the library), stores that
//! function in `package.preload[name]`. Lua loaders, C closures with
//! upvalues (which the copy to new states leaves out) and Coutil's own
//! modules (preloaded in every independent state anyway) are not stored.
//! Disabling puts the original searchers back; stored loaders stay.
//!
//! A state closing unloads the libraries it loaded (`dlclose`, from the
//! `__gc` of its `CLIBS` table), while other states may still run a
//! stored loader or the module it made: so the library of every stored
//! loader is made undeletable (`RTLD_NODELETE`, as `coutil.so` pins
//! itself), and stays loaded until the process exits.

use std::ffi::{c_int, c_void};

use crate::lua::class::key;
use crate::lua::{Error, Lua, Ret, ffi};

static ENABLED_KEY: u8 = 0;

/// Is the recording enabled in `lua`'s state?
fn enabled(lua: Lua) -> bool {
    // SAFETY: a raw registry read with a private key, popped.
    unsafe {
        ffi::lua_rawgetp(lua.raw(), crate::lua::LUA_REGISTRYINDEX, key(&ENABLED_KEY));
        let on = ffi::lua_toboolean(lua.raw(), -1) != 0;
        ffi::lua_pop(lua.raw(), 1);
        on
    }
}

/// previous = threads.preloadclibs([enable])
pub fn preloadclibs(lua: Lua) -> Ret {
    let enable = match lua.type_of(1) {
        crate::lua::LUA_TNONE | crate::lua::LUA_TNIL => None,
        // SAFETY: reads a stack slot.
        crate::lua::LUA_TBOOLEAN => Some(unsafe { ffi::lua_toboolean(lua.raw(), 1) } != 0),
        _ => return Err(Error::Type(1, c"boolean")),
    };
    let previous = enabled(lua);
    if let Some(on) = enable
        && on != previous
    {
        lua.check_stack(6)?;
        // SAFETY: raw table operations with room checked; a memory error
        // in them longjmps over this frame, which holds no Rust value
        // with a destructor.
        unsafe {
            set_searchers(lua.raw(), on);
            ffi::lua_pushboolean(lua.raw(), on as c_int);
            ffi::lua_rawsetp(lua.raw(), crate::lua::LUA_REGISTRYINDEX, key(&ENABLED_KEY));
        }
    }
    lua.push_bool(previous);
    Ok(1)
}

/// Wraps (`on`) the C functions of `package.searchers` in [`searcher`]
/// closures, or puts the wrapped functions back. Raw accesses only, so no
/// Lua code runs; a missing `package` or `searchers` table is skipped.
///
/// # Safety
/// `l` is a running state with room for 4 values.
unsafe fn set_searchers(l: *mut ffi::lua_State, on: bool) {
    // SAFETY: see the function's contract; every value pushed is popped.
    unsafe {
        let top = ffi::lua_gettop(l);
        let found = ffi::lua_getfield(l, crate::lua::LUA_REGISTRYINDEX, ffi::LUA_LOADED_TABLE)
            == crate::lua::LUA_TTABLE
            && {
                ffi::lua_pushstring(l, c"package".as_ptr());
                ffi::lua_rawget(l, -2) == crate::lua::LUA_TTABLE
            }
            && {
                ffi::lua_pushstring(l, c"searchers".as_ptr());
                ffi::lua_rawget(l, -2) == crate::lua::LUA_TTABLE
            };
        if found {
            let searchers = ffi::lua_gettop(l);
            let n = ffi::lua_rawlen(l, searchers);
            for k in 1..=n as ffi::lua_Integer {
                ffi::lua_rawgeti(l, searchers, k);
                let ours = ffi::lua_tocfunction(l, -1)
                    .is_some_and(|f| std::ptr::fn_addr_eq(f, searcher as crate::lua::CFunction));
                if on && !ours && ffi::lua_iscfunction(l, -1) != 0 {
                    ffi::lua_pushcclosure(l, searcher, 1);
                    ffi::lua_rawseti(l, searchers, k);
                } else if !on && ours && !ffi::lua_getupvalue(l, -1, 1).is_null() {
                    ffi::lua_rawseti(l, searchers, k);
                    ffi::lua_pop(l, 1);
                } else {
                    ffi::lua_pop(l, 1);
                }
            }
        }
        ffi::lua_settop(l, top);
    }
}

/// A wrapped searcher (upvalue 1): calls it with the module name and
/// returns its results, after storing a native loader it returned in
/// `package.preload[name]`. The searcher's errors go through (no Rust
/// value lives in this frame).
unsafe extern "C-unwind" fn searcher(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by `require` (or by hand) as a C closure with one
    // upvalue; plain stack operations, room checked.
    unsafe {
        ffi::lua_settop(l, 1);
        ffi::luaL_checkstack(l, 6, std::ptr::null());
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_pushvalue(l, 1);
        ffi::lua_callk(l, 1, ffi::LUA_MULTRET, 0, None);
        let results = ffi::lua_gettop(l) - 1;
        if results >= 1
            && ffi::lua_type(l, 1) == crate::lua::LUA_TSTRING
            && ffi::lua_iscfunction(l, 2) != 0
            && let Some(f) = ffi::lua_tocfunction(l, 2)
        {
            if ffi::lua_getupvalue(l, 2, 1).is_null() {
                record(l, f);
            } else {
                ffi::lua_pop(l, 1);
            }
        }
        results
    }
}

/// Stores the loader `f` (at 2) as `package.preload[name]` (name at 1),
/// unless it is one of Coutil's modules or there already.
///
/// # Safety
/// As in [`searcher`], with room for 3 values.
unsafe fn record(l: *mut ffi::lua_State, f: crate::lua::CFunction) {
    if (crate::MODULES.iter()).any(|(_, open)| std::ptr::fn_addr_eq(*open, f)) {
        return;
    }
    // SAFETY: see the function's contract; pushes are popped.
    unsafe {
        ffi::luaL_getsubtable(l, crate::lua::LUA_REGISTRYINDEX, ffi::LUA_PRELOAD_TABLE);
        ffi::lua_pushvalue(l, 1);
        ffi::lua_rawget(l, -2);
        let known = ffi::lua_rawequal(l, -1, 2) != 0;
        ffi::lua_pop(l, 1);
        if !known {
            pin(f);
            ffi::lua_pushvalue(l, 1);
            ffi::lua_pushvalue(l, 2);
            ffi::lua_rawset(l, -3);
        }
        ffi::lua_pop(l, 1);
    }
}

/// Keeps the shared object holding `f` loaded until the process exits.
fn pin(f: crate::lua::CFunction) {
    // SAFETY: dladdr only fills `info` for an address of a loaded object;
    // dlopen of an already loaded object (RTLD_NOLOAD) adds a reference,
    // never closed, and marks it undeletable.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(f as *const c_void, &mut info) != 0 && !info.dli_fname.is_null() {
            libc::dlopen(
                info.dli_fname,
                libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
            );
        }
    }
}
