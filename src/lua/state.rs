//! `Lua`: the running state of a C function call, with safe helpers for
//! the stack operations the API files need.
//!
//! A `Lua` is only made by [`super::entry`] (or by the loop for a coroutine
//! it resumes), so its pointer is valid for as long as the value lives. The
//! helpers never raise errors themselves except on memory exhaustion, which
//! Lua reports by longjmp; callers keep only plain data alive across them.

use std::ffi::{CStr, c_int, c_void};

use super::{Error, Reg, ffi};

#[derive(Clone, Copy, Debug)]
pub struct Lua {
    l: *mut ffi::lua_State,
}

impl Lua {
    /// # Safety
    /// `l` must be a valid state that stays valid while the value is used.
    pub unsafe fn from_raw(l: *mut ffi::lua_State) -> Lua {
        Lua { l }
    }

    pub fn raw(self) -> *mut ffi::lua_State {
        self.l
    }

    // SAFETY (for every method below): `self.l` is valid (see `from_raw`);
    // each call only reads or pushes stack values, within the
    // LUA_MINSTACK slots guaranteed to a C function unless stated.

    pub fn top(self) -> c_int {
        // SAFETY: see above.
        unsafe { ffi::lua_gettop(self.l) }
    }

    pub fn set_top(self, n: c_int) {
        // SAFETY: see above.
        unsafe { ffi::lua_settop(self.l, n) }
    }

    pub fn type_of(self, i: c_int) -> c_int {
        // SAFETY: see above.
        unsafe { ffi::lua_type(self.l, i) }
    }

    /// The basic type name of the value at `i` (`lua_typename`: `"no
    /// value"` for none, `"userdata"` for light userdata too).
    pub fn type_name(self, i: c_int) -> &'static str {
        // SAFETY: see above; lua_typename returns a static string for any
        // type tag.
        unsafe { CStr::from_ptr(ffi::lua_typename(self.l, self.type_of(i))) }
            .to_str()
            .unwrap_or("?")
    }

    pub fn is_none_or_nil(self, i: c_int) -> bool {
        self.type_of(i) <= ffi::LUA_TNIL
    }

    pub fn is_yieldable(self) -> bool {
        // SAFETY: see above.
        unsafe { ffi::lua_isyieldable(self.l) != 0 }
    }

    /// The number at `i`, converting strings as `luaL_checknumber` does.
    pub fn arg_number(self, i: c_int) -> Result<f64, Error> {
        let mut ok = 0;
        // SAFETY: see above.
        let n = unsafe { ffi::lua_tonumberx(self.l, i, &mut ok) };
        if ok != 0 {
            Ok(n)
        } else {
            Err(Error::Type(i, c"number"))
        }
    }

    pub fn opt_number(self, i: c_int) -> Result<Option<f64>, Error> {
        if self.is_none_or_nil(i) {
            Ok(None)
        } else {
            self.arg_number(i).map(Some)
        }
    }

    /// The integer at `i`, as `luaL_checkinteger` does.
    #[inline]
    pub fn arg_integer(self, i: c_int) -> Result<i64, Error> {
        let mut ok = 0;
        // SAFETY: see above.
        let n = unsafe { ffi::lua_tointegerx(self.l, i, &mut ok) };
        if ok != 0 {
            Ok(n)
        } else {
            Err(self.not_integer(i))
        }
    }

    /// Like `luaL_optinteger`. The value is converted first: absent or nil
    /// is only looked for when that fails (one API call when present).
    #[inline]
    pub fn opt_integer(self, i: c_int, default: i64) -> Result<i64, Error> {
        let mut ok = 0;
        // SAFETY: see above.
        let n = unsafe { ffi::lua_tointegerx(self.l, i, &mut ok) };
        if ok != 0 {
            Ok(n)
        } else if self.is_none_or_nil(i) {
            Ok(default)
        } else {
            Err(self.not_integer(i))
        }
    }

    /// The error for the value at `i`, which is not an integer.
    #[cold]
    fn not_integer(self, i: c_int) -> Error {
        if self.arg_number(i).is_ok() {
            Error::arg(i, "number has no integer representation")
        } else {
            Error::Type(i, c"number")
        }
    }

    /// The bytes of the string (or number, converted in place) at `i`. The
    /// slice borrows the handle, so it cannot outlive the function holding
    /// it; within that function it stays valid as long as the value stays on
    /// the stack (which the borrow cannot check: see "Binding layer" in
    /// doc/devnotes.md).
    pub fn arg_bytes(&self, i: c_int) -> Result<&[u8], Error> {
        self.to_bytes(i).ok_or(Error::Type(i, c"string"))
    }

    pub fn opt_bytes(&self, i: c_int) -> Result<Option<&[u8]>, Error> {
        if self.is_none_or_nil(i) {
            Ok(None)
        } else {
            self.arg_bytes(i).map(Some)
        }
    }

    /// The bytes of a string or number at `i`, or `None` for other types;
    /// as [`Lua::arg_bytes`].
    // NOTE: `&self` although `Lua` is Copy: the slice borrows the handle.
    #[allow(clippy::wrong_self_convention)]
    pub fn to_bytes(&self, i: c_int) -> Option<&[u8]> {
        let mut len = 0;
        // SAFETY: see above; Lua keeps the string alive while it is on the
        // stack, which the caller guarantees for the slice's lifetime.
        unsafe {
            let p = ffi::lua_tolstring(self.l, i, &mut len);
            if p.is_null() {
                None
            } else {
                Some(std::slice::from_raw_parts(p.cast(), len))
            }
        }
    }

    /// The number at `i` as Lua's `tostring` writes it (`%.14g`, and
    /// `.0` after a float that looks like an integer), made without
    /// allocating in Lua.
    pub fn number_text(self, i: c_int) -> String {
        let mut isnum = 0;
        // SAFETY: see above; reads a stack value.
        let n = unsafe { ffi::lua_tointegerx(self.l, i, &mut isnum) };
        // SAFETY: as above.
        if isnum != 0 && unsafe { ffi::lua_isinteger(self.l, i) } != 0 {
            return n.to_string();
        }
        // SAFETY: as above.
        let f = unsafe { ffi::lua_tonumberx(self.l, i, std::ptr::null_mut()) };
        let mut buf = [0u8; 64];
        // SAFETY: snprintf writes at most `buf.len()` bytes, NUL included.
        let len =
            unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.14g".as_ptr(), f) };
        let mut text = String::from_utf8_lossy(&buf[..(len.max(0) as usize).min(63)]).into_owned();
        if text.bytes().all(|b| b == b'-' || b.is_ascii_digit()) {
            text.push_str(".0");
        }
        text
    }

    /// Pushes field `name` of the metatable of the value at `i` and returns
    /// its type; pushes nothing and returns `LUA_TNIL` when there is none.
    pub fn get_metafield(self, i: c_int, name: &CStr) -> c_int {
        // SAFETY: see above; a raw read of the metatable.
        unsafe { ffi::luaL_getmetafield(self.l, i, name.as_ptr()) }
    }

    /// The raw length of the value at `i` (`#` without metamethods).
    pub fn raw_len(self, i: c_int) -> usize {
        // SAFETY: see above.
        unsafe { ffi::lua_rawlen(self.l, i) as usize }
    }

    /// Pushes `t[n]` of the table at `t`, raw; returns its type.
    pub fn raw_get_index(self, t: c_int, n: i64) -> c_int {
        // SAFETY: see above; a raw read pushes one value.
        unsafe { ffi::lua_rawgeti(self.l, t, n) }
    }

    /// An option name at `i` (as `luaL_checkoption`), its index in `names`.
    pub fn arg_option(
        self,
        i: c_int,
        names: &[&str],
        default: Option<usize>,
    ) -> Result<usize, Error> {
        let name = match default {
            Some(d) if self.is_none_or_nil(i) => return Ok(d),
            _ => self.arg_bytes(i)?,
        };
        match names.iter().position(|n| n.as_bytes() == name) {
            Some(k) => Ok(k),
            None => {
                let mut text = b"invalid option '".to_vec();
                text.extend_from_slice(name);
                text.push(b'\'');
                Err(Error::Arg(i, text.into()))
            }
        }
    }

    pub fn push_nil(self) {
        // SAFETY: see above.
        unsafe { ffi::lua_pushnil(self.l) }
    }

    pub fn push_bool(self, b: bool) {
        // SAFETY: see above.
        unsafe { ffi::lua_pushboolean(self.l, b as c_int) }
    }

    pub fn push_integer(self, n: i64) {
        // SAFETY: see above.
        unsafe { ffi::lua_pushinteger(self.l, n) }
    }

    pub fn push_number(self, n: f64) {
        // SAFETY: see above.
        unsafe { ffi::lua_pushnumber(self.l, n) }
    }

    pub fn push_bytes(self, s: &[u8]) {
        // SAFETY: see above; Lua copies the bytes.
        unsafe { ffi::lua_pushlstring(self.l, s.as_ptr().cast(), s.len()) };
    }

    /// Pushes a light userdata; `p` is stored, never dereferenced.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    pub fn push_light(self, p: *mut c_void) {
        // SAFETY: see above; Lua does not dereference light userdata.
        unsafe { ffi::lua_pushlightuserdata(self.l, p) }
    }

    pub fn push_value(self, i: c_int) {
        // SAFETY: see above.
        unsafe { ffi::lua_pushvalue(self.l, i) }
    }

    /// Makes sure `n` more values fit on the stack.
    pub fn check_stack(self, n: c_int) -> Result<(), Error> {
        // SAFETY: see above.
        if unsafe { ffi::lua_checkstack(self.l, n) } != 0 {
            Ok(())
        } else {
            Err(Error::msg("stack overflow"))
        }
    }

    /// Pushes a new table with the functions of `regs`, each with the value
    /// on top of the stack as its upvalue when `upvalue` is set (popped).
    pub fn push_functions(self, regs: &[Reg], upvalue: bool) {
        // SAFETY: see above; `regs` names are NUL-terminated C strings.
        unsafe {
            ffi::lua_createtable(self.l, 0, regs.len() as c_int);
            for (name, f) in regs {
                if upvalue {
                    ffi::lua_pushvalue(self.l, -2);
                    ffi::lua_pushcclosure(self.l, *f, 1);
                } else {
                    ffi::lua_pushcfunction(self.l, *f);
                }
                ffi::lua_setfield(self.l, -2, name.as_ptr());
            }
            if upvalue {
                ffi::lua_remove(self.l, -2);
            }
        }
    }

    /// Sets field `name` of the table at `t` to the value on top (popped).
    pub fn set_field(self, t: c_int, name: &CStr) {
        // SAFETY: see above.
        unsafe { ffi::lua_setfield(self.l, t, name.as_ptr()) }
    }

    /// Emits a warning through `lua_warning` (a single message piece).
    pub fn warn(self, text: &[u8]) {
        let mut msg = text.to_vec();
        msg.retain(|&b| b != 0);
        msg.push(0);
        // SAFETY: see above; `msg` is NUL-terminated.
        unsafe { ffi::lua_warning(self.l, msg.as_ptr().cast(), 0) }
    }
}
