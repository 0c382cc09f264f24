//! More of [`Lua`]: stack shuffling, raw table access (tables, the
//! registry, upvalues), metatables, user values, iteration and protected
//! calls, for the layers above, which then need no `ffi::` of their own.
//!
//! Every method is a thin `#[inline]` wrapper of one or two C API calls
//! with the same contract as those of `state.rs`: the state is valid, and
//! the indices given are valid (absolute or relative to the top as the C
//! API allows). Raw accesses never call metamethods; the only errors they
//! can raise are memory errors (as every push), which longjmp: callers keep
//! only plain data alive across them, as everywhere.

use std::ffi::{CStr, c_int, c_void};

use super::{Lua, ffi};

/// A number as its subtype says (see [`Lua::to_numeric`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Numeric {
    Int(i64),
    Float(f64),
}

// A binding API: not every method is used by every build.
#[allow(dead_code)]
impl Lua {
    // --- stack ---

    #[inline]
    pub fn pop(self, n: c_int) {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_settop(self.raw(), -n - 1) }
    }

    /// Moves the top value to `i`, shifting up the values above.
    #[inline]
    pub fn insert(self, i: c_int) {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_rotate(self.raw(), i, 1) }
    }

    #[inline]
    pub fn remove(self, i: c_int) {
        // SAFETY: see the module doc.
        unsafe {
            ffi::lua_rotate(self.raw(), i, -1);
            ffi::lua_settop(self.raw(), -2);
        }
    }

    /// Moves the top value to `i`, replacing it (popped).
    #[inline]
    pub fn replace(self, i: c_int) {
        // SAFETY: see the module doc.
        unsafe {
            ffi::lua_copy(self.raw(), -1, i);
            ffi::lua_settop(self.raw(), -2);
        }
    }

    #[inline]
    pub fn rotate(self, i: c_int, n: c_int) {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_rotate(self.raw(), i, n) }
    }

    #[inline]
    pub fn abs_index(self, i: c_int) -> c_int {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_absindex(self.raw(), i) }
    }

    // --- values ---

    #[inline]
    pub fn is_integer(self, i: c_int) -> bool {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_isinteger(self.raw(), i) != 0 }
    }

    /// The integer at `i` (numbers with an exact integer value and
    /// strings convertible to one too), or `None`.
    #[inline]
    pub fn to_integer(self, i: c_int) -> Option<i64> {
        let mut ok = 0;
        // SAFETY: see the module doc.
        let n = unsafe { ffi::lua_tointegerx(self.raw(), i, &mut ok) };
        (ok != 0).then_some(n)
    }

    /// The number at `i`, of type number (checked by the caller): an
    /// integer or a float as its subtype says (`2.0` stays a float).
    #[inline]
    pub fn to_numeric(self, i: c_int) -> Numeric {
        // SAFETY: see the module doc.
        unsafe {
            if ffi::lua_isinteger(self.raw(), i) != 0 {
                Numeric::Int(ffi::lua_tointegerx(self.raw(), i, std::ptr::null_mut()))
            } else {
                Numeric::Float(ffi::lua_tonumberx(self.raw(), i, std::ptr::null_mut()))
            }
        }
    }

    /// The number at `i` (or a string convertible to one), or `None`.
    #[inline]
    pub fn to_number(self, i: c_int) -> Option<f64> {
        let mut ok = 0;
        // SAFETY: see the module doc.
        let n = unsafe { ffi::lua_tonumberx(self.raw(), i, &mut ok) };
        (ok != 0).then_some(n)
    }

    #[inline]
    pub fn to_boolean(self, i: c_int) -> bool {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_toboolean(self.raw(), i) != 0 }
    }

    /// The block of a full userdata, or the pointer of a light one, at
    /// `i`; null otherwise.
    #[inline]
    pub fn to_userdata(self, i: c_int) -> *mut c_void {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_touserdata(self.raw(), i) }
    }

    /// The identity of the value at `i` (tables, functions, userdata,
    /// threads), or null.
    #[inline]
    pub fn to_pointer(self, i: c_int) -> *const c_void {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_topointer(self.raw(), i) }
    }

    /// The C function at `i` (a C closure's too), or `None`.
    #[inline]
    pub fn to_cfunction(self, i: c_int) -> Option<ffi::lua_CFunction> {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_tocfunction(self.raw(), i) }
    }

    /// Whether the value at `i` is a C function (or C closure).
    #[inline]
    pub fn is_cfunction(self, i: c_int) -> bool {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_iscfunction(self.raw(), i) != 0 }
    }

    #[inline]
    pub fn raw_equal(self, a: c_int, b: c_int) -> bool {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_rawequal(self.raw(), a, b) != 0 }
    }

    #[inline]
    pub fn push_str(self, s: &CStr) {
        // SAFETY: see the module doc; `s` is NUL-terminated.
        unsafe {
            ffi::lua_pushstring(self.raw(), s.as_ptr());
        }
    }

    /// Pushes the running thread; true if it is the main one.
    #[inline]
    pub fn push_thread(self) -> bool {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_pushthread(self.raw()) != 0 }
    }

    #[inline]
    pub fn push_cfunction(self, f: ffi::lua_CFunction) {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_pushcfunction(self.raw(), f) }
    }

    /// Pushes `f` with the `n` values on top as its upvalues (popped).
    #[inline]
    pub fn push_cclosure(self, f: ffi::lua_CFunction, n: c_int) {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_pushcclosure(self.raw(), f, n) }
    }

    // --- tables ---

    #[inline]
    pub fn new_table(self, narr: c_int, nrec: c_int) {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_createtable(self.raw(), narr, nrec) }
    }

    /// Pushes `t[k]` (the key on top, popped), raw; returns its type.
    #[inline]
    pub fn raw_get(self, t: c_int) -> c_int {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_rawget(self.raw(), t) }
    }

    /// `t[k] = v`, raw, with `k` and `v` on top (popped).
    #[inline]
    pub fn raw_set(self, t: c_int) {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_rawset(self.raw(), t) }
    }

    /// `t[n] = v`, raw, with `v` on top (popped).
    #[inline]
    pub fn raw_set_index(self, t: c_int, n: i64) {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_rawseti(self.raw(), t, n) }
    }

    /// Pushes `t[p]` for the light userdata key `p`, raw; returns its type.
    #[inline]
    pub fn raw_get_ptr(self, t: c_int, p: *const c_void) -> c_int {
        // SAFETY: see the module doc; `p` is only a key.
        unsafe { ffi::lua_rawgetp(self.raw(), t, p) }
    }

    /// `t[p] = v` for the light userdata key `p`, `v` on top (popped).
    #[inline]
    pub fn raw_set_ptr(self, t: c_int, p: *const c_void) {
        // SAFETY: see the module doc; `p` is only a key.
        unsafe { ffi::lua_rawsetp(self.raw(), t, p) }
    }

    /// Pushes field `name` of the table at `t`. Not raw: only for tables
    /// of ours and the standard libraries', whose metamethods cannot
    /// raise.
    #[inline]
    pub fn get_field(self, t: c_int, name: &CStr) -> c_int {
        // SAFETY: see the module doc and above.
        unsafe { ffi::lua_getfield(self.raw(), t, name.as_ptr()) }
    }

    /// Pushes the table `t[name]` of the table at `t`, raw, made (and
    /// stored there) if that is no table (`luaL_getsubtable`); true if it
    /// existed. Not raw: for tables without metatables (the registry).
    #[inline]
    pub fn get_subtable(self, t: c_int, name: &CStr) -> bool {
        // SAFETY: see the module doc and `get_field`.
        unsafe { ffi::luaL_getsubtable(self.raw(), t, name.as_ptr()) != 0 }
    }

    /// Pushes the global table of the state.
    #[inline]
    pub fn push_globals(self) {
        // SAFETY: see the module doc; a raw read of the registry.
        unsafe {
            ffi::lua_rawgeti(self.raw(), ffi::LUA_REGISTRYINDEX, ffi::LUA_RIDX_GLOBALS);
        }
    }

    /// Pops a key and pushes the next key and value of the table at `t`;
    /// false (nothing pushed) at the end.
    #[inline]
    pub fn next(self, t: c_int) -> bool {
        // SAFETY: see the module doc; the key on top came from `next`.
        unsafe { ffi::lua_next(self.raw(), t) != 0 }
    }

    // --- metatables, user values, upvalues ---

    /// Marks slot `i` as to-be-closed (`lua_toclose`): the `__close`
    /// metamethod of its value runs when the slot leaves the stack. The
    /// value has one (or is false or nil), and no slot from `i` up is
    /// marked already.
    #[inline]
    pub fn to_close(self, i: c_int) {
        // SAFETY: see the module doc; the caller's value has `__close`
        // (Lua raises otherwise).
        unsafe { ffi::lua_toclose(self.raw(), i) }
    }

    /// Pushes the metatable of the value at `i`; false (nothing pushed)
    /// if it has none.
    #[inline]
    pub fn get_metatable(self, i: c_int) -> bool {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_getmetatable(self.raw(), i) != 0 }
    }

    /// Sets the table on top (popped) as metatable of the value at `i`.
    #[inline]
    pub fn set_metatable(self, i: c_int) {
        // SAFETY: see the module doc.
        unsafe {
            ffi::lua_setmetatable(self.raw(), i);
        }
    }

    /// Pushes user value `n` of the full userdata at `i`; its type
    /// (`LUA_TNONE` when it has no such value).
    #[inline]
    pub fn get_user_value(self, i: c_int, n: c_int) -> c_int {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_getiuservalue(self.raw(), i, n) }
    }

    /// Pops the top value into user value `n` of the userdata at `i`;
    /// false if it has no such value.
    #[inline]
    pub fn set_user_value(self, i: c_int, n: c_int) -> bool {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_setiuservalue(self.raw(), i, n) != 0 }
    }

    /// Pushes upvalue `n` of the function at `f` and returns true, or
    /// pushes nothing and returns false if it has no such upvalue.
    #[inline]
    pub fn get_upvalue(self, f: c_int, n: c_int) -> bool {
        // SAFETY: see the module doc.
        unsafe { !ffi::lua_getupvalue(self.raw(), f, n).is_null() }
    }

    /// The pseudo-index of upvalue `n` of the running C function.
    #[inline]
    pub const fn upvalue(n: c_int) -> c_int {
        ffi::lua_upvalueindex(n)
    }

    // --- registry ---

    /// Pops the top value into a new registry reference.
    #[inline]
    pub fn reference(self) -> c_int {
        // SAFETY: see the module doc.
        unsafe { ffi::luaL_ref(self.raw(), ffi::LUA_REGISTRYINDEX) }
    }

    /// Frees a registry reference (`LUA_NOREF` is ignored).
    #[inline]
    pub fn unreference(self, key: c_int) {
        // SAFETY: see the module doc; `key` came from `reference`.
        unsafe { ffi::luaL_unref(self.raw(), ffi::LUA_REGISTRYINDEX, key) }
    }

    /// Pushes the value of registry reference `key`.
    #[inline]
    pub fn push_reference(self, key: c_int) -> c_int {
        // SAFETY: see the module doc.
        unsafe { ffi::lua_rawgeti(self.raw(), ffi::LUA_REGISTRYINDEX, key as i64) }
    }

    // --- calls ---

    /// Calls the function below the `nargs` values on top, protected;
    /// leaves `nres` results (or the error value) and returns the status
    /// (`LUA_OK` on success).
    #[inline]
    pub fn pcall(self, nargs: c_int, nres: c_int) -> c_int {
        // SAFETY: see the module doc; errors are caught.
        unsafe { ffi::lua_pcall(self.raw(), nargs, nres, 0) }
    }

    /// Like [`pcall`](Lua::pcall), with the message handler at index
    /// `handler` (below the function).
    pub fn pcall_handled(self, nargs: c_int, nres: c_int, handler: c_int) -> c_int {
        // SAFETY: see the module doc; errors are caught.
        unsafe { ffi::lua_pcall(self.raw(), nargs, nres, handler) }
    }

    /// Loads `chunk` as a function named `name` (mode `"t"`, `"b"`,
    /// `"bt"`, or `None` for both); pushes it or the error message;
    /// returns the status.
    pub fn load(self, chunk: &[u8], name: &CStr, mode: Option<&CStr>) -> c_int {
        let mode = mode.map_or(std::ptr::null(), |m| m.as_ptr());
        // SAFETY: see the module doc; the buffer outlives the call.
        unsafe {
            ffi::luaL_loadbufferx(
                self.raw(),
                chunk.as_ptr().cast(),
                chunk.len(),
                name.as_ptr(),
                mode,
            )
        }
    }

    /// Loads the file `path` (`None`: standard input) as `luaL_loadfilex`
    /// does (its descriptor is not close-on-exec: see
    /// `threads::loadfile`); pushes the function or the error message;
    /// returns the status.
    pub fn load_file(self, path: Option<&CStr>, mode: Option<&CStr>) -> c_int {
        let path = path.map_or(std::ptr::null(), |p| p.as_ptr());
        let mode = mode.map_or(std::ptr::null(), |m| m.as_ptr());
        // SAFETY: see the module doc; the strings outlive the call.
        unsafe { ffi::luaL_loadfilex(self.raw(), path, mode) }
    }

    /// The binary chunk of the Lua function on top (`lua_dump`, with
    /// debug information unless `strip`); empty for a C function.
    pub fn dump(self, strip: bool) -> Vec<u8> {
        unsafe extern "C-unwind" fn writer(
            _l: *mut ffi::lua_State,
            p: *const c_void,
            size: usize,
            ud: *mut c_void,
        ) -> c_int {
            // NOTE: Lua 5.5 ends a dump with a call whose `p` is null.
            if p.is_null() {
                return 0;
            }
            // SAFETY: `ud` is the Vec given to lua_dump below; `p` points
            // to `size` bytes.
            unsafe {
                let buf = &mut *(ud as *mut Vec<u8>);
                buf.extend_from_slice(std::slice::from_raw_parts(p as *const u8, size));
            }
            0
        }
        let mut code = Vec::new();
        // SAFETY: see the module doc; lua_dump only calls `writer`, which
        // appends to our Vec, and does not allocate in Lua.
        unsafe {
            ffi::lua_dump(
                self.raw(),
                writer,
                &mut code as *mut Vec<u8> as *mut c_void,
                strip as c_int,
            );
        }
        code
    }

    /// Concatenates the `n` values on top (popped) as Lua's `..`.
    #[inline]
    pub fn concat(self, n: c_int) {
        // SAFETY: see the module doc; may call `__concat` metamethods,
        // whose errors propagate (callers hold plain data only).
        unsafe { ffi::lua_concat(self.raw(), n) }
    }
}
