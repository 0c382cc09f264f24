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

use std::ffi::c_void;

use crate::calling;
use crate::lua::class::key;
use crate::lua::modules::pin_object;
use crate::lua::{
    CFunction, Error, LOADED_TABLE, LUA_REGISTRYINDEX, LUA_TBOOLEAN, LUA_TNIL, LUA_TNONE,
    LUA_TSTRING, LUA_TTABLE, Lua, PRELOAD_TABLE, Ret,
};

static ENABLED_KEY: u8 = 0;

/// The wrapper of a searcher (see [`call_searcher`]).
const SEARCHER: CFunction = calling!(call_searcher, searched);

/// Is the recording enabled in `lua`'s state?
fn enabled(lua: Lua) -> bool {
    lua.raw_get_ptr(LUA_REGISTRYINDEX, key(&ENABLED_KEY));
    let on = lua.to_boolean(-1);
    lua.pop(1);
    on
}

/// previous = threads.preloadclibs([enable])
pub fn preloadclibs(lua: Lua) -> Ret {
    let enable = match lua.type_of(1) {
        LUA_TNONE | LUA_TNIL => None,
        LUA_TBOOLEAN => Some(lua.to_boolean(1)),
        _ => return Err(Error::Type(1, c"boolean")),
    };
    let previous = enabled(lua);
    if let Some(on) = enable
        && on != previous
    {
        // Raw table operations with room checked; a memory error in them
        // longjmps over this frame, which holds no Rust value with a
        // destructor.
        lua.check_stack(6)?;
        set_searchers(lua, on);
        lua.push_bool(on);
        lua.raw_set_ptr(LUA_REGISTRYINDEX, key(&ENABLED_KEY));
    }
    lua.push_bool(previous);
    Ok(1)
}

/// Wraps (`on`) the C functions of `package.searchers` in [`SEARCHER`]
/// closures, or puts the wrapped functions back. Raw accesses only, so no
/// Lua code runs; a missing `package` or `searchers` table is skipped.
/// Needs room for 4 values; every value pushed is popped.
fn set_searchers(lua: Lua, on: bool) {
    let top = lua.top();
    // Not raw, but the registry has no metatable.
    let found = lua.get_field(LUA_REGISTRYINDEX, LOADED_TABLE) == LUA_TTABLE
        && {
            lua.push_str(c"package");
            lua.raw_get(-2) == LUA_TTABLE
        }
        && {
            lua.push_str(c"searchers");
            lua.raw_get(-2) == LUA_TTABLE
        };
    if found {
        let searchers = lua.top();
        let n = lua.raw_len(searchers);
        for k in 1..=n as i64 {
            lua.raw_get_index(searchers, k);
            let ours = lua
                .to_cfunction(-1)
                .is_some_and(|f| std::ptr::fn_addr_eq(f, SEARCHER));
            if on && !ours && lua.is_cfunction(-1) {
                lua.push_cclosure(SEARCHER, 1);
                lua.raw_set_index(searchers, k);
            } else if !on && ours && lua.get_upvalue(-1, 1) {
                lua.raw_set_index(searchers, k);
                lua.pop(1);
            } else {
                lua.pop(1);
            }
        }
    }
    lua.set_top(top);
}

/// A wrapped searcher (upvalue 1), called by `require` (or by hand) with
/// the module name: calls it with the name, its errors going through,
/// then [`searched`] gets its results.
fn call_searcher(lua: Lua) -> Ret {
    lua.set_top(1);
    lua.push_value(Lua::upvalue(1));
    lua.push_value(1);
    Ok(1)
}

/// The results of a wrapped searcher (above the name at 1), returned all
/// after storing a native loader among them in `package.preload[name]`.
fn searched(lua: Lua) -> Ret {
    let results = lua.top() - 1;
    if results >= 1
        && lua.type_of(1) == LUA_TSTRING
        && lua.is_cfunction(2)
        && let Some(f) = lua.to_cfunction(2)
        && lua.check_stack(3).is_ok()
    {
        if lua.get_upvalue(2, 1) {
            lua.pop(1);
        } else {
            record(lua, f);
        }
    }
    Ok(results)
}

/// Stores the loader `f` (at 2) as `package.preload[name]` (name at 1),
/// unless it is one of Coutil's modules or there already. Needs room for
/// 3 values; pushes are popped.
fn record(lua: Lua, f: CFunction) {
    if (crate::MODULES.iter()).any(|(_, open)| std::ptr::fn_addr_eq(*open, f)) {
        return;
    }
    lua.get_subtable(LUA_REGISTRYINDEX, PRELOAD_TABLE);
    lua.push_value(1);
    lua.raw_get(-2);
    let known = lua.raw_equal(-1, 2);
    lua.pop(1);
    if !known {
        pin_object(f as *const c_void);
        lua.push_value(1);
        lua.push_value(2);
        lua.raw_set(-3);
    }
    lua.pop(1);
}
