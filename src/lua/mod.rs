//! The binding layer: raw Lua C API functions written in Rust.
//!
//! Every function the library exports is a `lua_CFunction` made with
//! [`cfn!`] from a plain Rust function `fn(Lua) -> Ret`. The body checks its
//! arguments with the [`Lua`] helpers, which return `Result`s; the error is
//! raised by [`entry`] only after the body has returned, so no Rust value
//! with a destructor is alive when Lua longjmps (the *longjmp rule*). Panics
//! are caught there too and become Lua errors.
//!
//! The messages are made by the real `luaL_argerror`/`luaL_typeerror`, so
//! they are exactly those of the Lua 5.4 auxiliary library, including the
//! function name taken from the call info and the `calling 'm' on bad self`
//! form for methods.

pub mod awaiting;
pub mod class;
pub mod coroutines;
pub mod fail;
pub mod interrupt;
pub mod iofile;
pub mod modules;
mod state;
pub mod states;
mod stop;
pub mod sysloop;
mod table;
pub mod tally;
#[cfg(debug_assertions)]
pub mod testing;

use std::borrow::Cow;
use std::ffi::{CStr, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

pub use mlua_sys as ffi;
pub use state::Lua;
pub use stop::Stopped;
pub use table::Numeric;

/// Type tags, statuses and types of the C API, for the layers above.
pub use ffi::{
    LUA_ERRFILE, LUA_MINSTACK, LUA_MULTRET, LUA_NOREF, LUA_OK, LUA_REGISTRYINDEX, LUA_SIGNATURE,
    LUA_TBOOLEAN, LUA_TFUNCTION, LUA_TLIGHTUSERDATA, LUA_TNIL, LUA_TNONE, LUA_TNUMBER, LUA_TSTRING,
    LUA_TTABLE, LUA_TTHREAD, LUA_TUSERDATA, LUA_YIELD, lua_CFunction as CFunction,
    lua_KContext as KContext, lua_KFunction as KFunction, lua_State as State,
};

/// The registry's tables of loaded modules and preload loaders (the C
/// API's `LUA_LOADED_TABLE` and `LUA_PRELOAD_TABLE`).
pub const LOADED_TABLE: &CStr = c"_LOADED";
pub const PRELOAD_TABLE: &CStr = c"_PRELOAD";

unsafe extern "C-unwind" {
    // Part of the Lua 5.4 auxiliary library, not declared by mlua-sys.
    fn luaL_typeerror(l: *mut ffi::lua_State, arg: c_int, tname: *const c_char) -> c_int;
}

/// A raised Lua error, described with plain data until it is raised.
#[derive(Debug)]
pub enum Error {
    /// `bad argument #n to 'f' (<text>)`.
    Arg(c_int, Cow<'static, [u8]>),
    /// `bad argument #n to 'f' (<what> expected, got <type>)`.
    Type(c_int, &'static CStr),
    /// A plain message, without position information.
    Msg(Cow<'static, [u8]>),
    /// The error value is already on top of the stack.
    Value,
    /// Not raised: an OS failure (error number) that the function returns
    /// as `false, msg, code` instead, e.g. when a resource the call needs
    /// cannot be had (`too many open files` making the loop's poll).
    Fail(i32),
}

impl Error {
    pub fn arg(n: c_int, text: impl Into<Cow<'static, str>>) -> Error {
        Error::Arg(n, cow_bytes(text.into()))
    }
    pub fn msg(text: impl Into<Cow<'static, str>>) -> Error {
        Error::Msg(cow_bytes(text.into()))
    }
    /// The failure of `e`, returned as `false, msg, code` (see [`Error::Fail`]).
    pub fn io(e: &std::io::Error) -> Error {
        Error::Fail(fail::code_of(e))
    }

    /// `unknown mode char (got '<c>')` for argument `n`; the raw byte is kept.
    pub fn mode_char(n: c_int, c: u8) -> Error {
        let mut text = b"unknown mode char (got '".to_vec();
        text.push(c);
        text.extend_from_slice(b"')");
        Error::Arg(n, Cow::Owned(text))
    }
}

fn cow_bytes(s: Cow<'static, str>) -> Cow<'static, [u8]> {
    match s {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

/// `bytes` as a C string, cut at its first NUL as C (and Lua's own
/// `const char *` functions) would read it.
pub fn c_string(bytes: &[u8]) -> std::ffi::CString {
    let cut = bytes
        .iter()
        .position(|&b| b == 0)
        .map_or(bytes, |n| &bytes[..n]);
    std::ffi::CString::new(cut).unwrap_or_default()
}

/// The result of a Lua-facing function: the number of results it pushed.
pub type Ret = Result<c_int, Error>;

/// Runs `body` for a C function call and raises its error, if any, once the
/// body's frame is gone. Never returns across a panic.
///
/// # Safety
/// `l` must be the state of the running C function call.
#[inline(always)]
pub unsafe fn entry(l: *mut ffi::lua_State, body: impl FnOnce(Lua) -> Ret) -> c_int {
    // SAFETY: `l` is the running state, as the caller promises.
    let lua = unsafe { Lua::from_raw(l) };
    // NOTE: the closure returns the count in a register and boxes an
    // error: the count stored by a body that was not inlined is read
    // with its own width. Copying the body's whole `Result` (for a
    // `match`, or to pass it on) loaded 8 or 16 bytes over its 4-byte
    // store of the count, a failed store forwarding that cost 13% of a
    // `b:get(j)` call (perf).
    let result = catch_unwind(AssertUnwindSafe(move || body(lua).map_err(Box::new)));
    if let Ok(Ok(n)) = result {
        // Nothing to drop, but the drop glue was called all the same.
        std::mem::forget(result);
        return n;
    }
    // SAFETY: as the caller promises.
    unsafe { failed(l, result) }
}

/// The rest of [`entry`], out of line: a panic or an error of the body.
///
/// # Safety
/// As for [`entry`].
#[cold]
#[inline(never)]
unsafe fn failed(
    l: *mut ffi::lua_State,
    result: std::thread::Result<Result<c_int, Box<Error>>>,
) -> c_int {
    // SAFETY: as the caller promises.
    let lua = unsafe { Lua::from_raw(l) };
    let result = match result {
        Ok(result) => result.map_err(|e| *e),
        Err(payload) => {
            drop(payload);
            Err(Error::msg("internal error in coutil (panic)"))
        }
    };
    match result {
        Ok(n) => n,
        Err(Error::Fail(code)) => fail::push(lua, code),
        // SAFETY: every Rust value of the body has been dropped; `raise`
        // only holds the error, which it drops before longjmp.
        Err(e) => unsafe { raise(l, e) },
    }
}

/// Raises `e` as a Lua error. The error is pushed and dropped first, so the
/// longjmp skips no destructor.
///
/// # Safety
/// `l` must be the state of the running C function call.
pub unsafe fn raise(l: *mut ffi::lua_State, e: Error) -> c_int {
    enum Plain {
        Arg(c_int),
        Type(c_int, &'static CStr),
        Msg,
    }
    // SAFETY: pushing strings onto the running state; these may only fail
    // with a memory error, which longjmps while `e` still owns its text:
    // a leak in an out-of-memory case, never unsoundness.
    let plain = unsafe {
        match &e {
            Error::Arg(n, text) => {
                ffi::lua_pushlstring(l, text.as_ptr().cast(), text.len());
                Plain::Arg(*n)
            }
            Error::Type(n, what) => Plain::Type(*n, what),
            Error::Msg(text) => {
                ffi::lua_pushlstring(l, text.as_ptr().cast(), text.len());
                Plain::Msg
            }
            Error::Value => Plain::Msg,
            Error::Fail(code) => {
                let text = fail::text(*code);
                ffi::lua_pushlstring(l, text.as_ptr().cast(), text.len());
                Plain::Msg
            }
        }
    };
    drop(e);
    // SAFETY: only plain data is alive in this frame; the functions below
    // longjmp out of it.
    unsafe {
        match plain {
            Plain::Arg(n) => ffi::luaL_argerror(l, n, ffi::lua_tostring(l, -1)),
            Plain::Type(n, what) => luaL_typeerror(l, n, what.as_ptr()),
            Plain::Msg => ffi::lua_error(l),
        }
    }
}

/// What a body run by [`entry_delegating`] returns to have the function it
/// pushed below two arguments called, once the body's frame is gone (a
/// Lua error in that call then skips no Rust frame).
pub const DELEGATE: c_int = -1;

/// Like [`entry`]; when the body returns [`DELEGATE`], calls the function
/// it left below two arguments on top and returns its one result.
///
/// # Safety
/// As for [`entry`].
pub unsafe fn entry_delegating(l: *mut ffi::lua_State, body: impl FnOnce(Lua) -> Ret) -> c_int {
    // SAFETY: as the caller promises.
    let n = unsafe { entry(l, body) };
    if n != DELEGATE {
        return n;
    }
    // SAFETY: the body left the function and two arguments on top; no Rust
    // value is alive in this frame.
    unsafe { ffi::lua_callk(l, 2, 1, 0, None) };
    1
}

/// Makes a `lua_CFunction` from a body for [`entry_delegating`].
#[macro_export]
macro_rules! delegating {
    ($f:path) => {{
        unsafe extern "C-unwind" fn wrapper(
            l: *mut $crate::lua::ffi::lua_State,
        ) -> ::std::ffi::c_int {
            // SAFETY: Lua calls this as a C function with its running state.
            unsafe { $crate::lua::entry_delegating(l, $f) }
        }
        wrapper as $crate::lua::ffi::lua_CFunction
    }};
}

/// Like [`entry`] for a C function that calls a Lua function with its
/// errors passing through: `before` pushes the function and its
/// arguments and returns their count; the function is then called with
/// all its results kept (`LUA_MULTRET`) by this frame, which holds no
/// Rust value (the longjmp rule); `after` then makes the results, as a
/// body of [`entry`]. `before` never returns [`Error::Fail`].
///
/// # Safety
/// As for [`entry`].
pub unsafe fn entry_calling(
    l: *mut ffi::lua_State,
    before: fn(Lua) -> Ret,
    after: fn(Lua) -> Ret,
) -> c_int {
    // SAFETY: as the caller promises.
    let nargs = unsafe { entry(l, before) };
    // SAFETY: `before` left the function and `nargs` arguments on top;
    // only plain data is alive in this frame.
    unsafe { ffi::lua_callk(l, nargs, LUA_MULTRET, 0, None) };
    // SAFETY: as the caller promises.
    unsafe { entry(l, after) }
}

/// Makes a `lua_CFunction` from two bodies for [`entry_calling`].
#[macro_export]
macro_rules! calling {
    ($before:path, $after:path) => {{
        unsafe extern "C-unwind" fn wrapper(
            l: *mut $crate::lua::ffi::lua_State,
        ) -> ::std::ffi::c_int {
            // SAFETY: Lua calls this as a C function with its running state.
            unsafe { $crate::lua::entry_calling(l, $before, $after) }
        }
        wrapper as $crate::lua::ffi::lua_CFunction
    }};
}

/// `luaL_newstate` (null without memory), with warnings off as in Lua 5.4:
/// 5.5's turns them on, and its `lua` turns them off again at start.
pub fn new_state() -> *mut State {
    // SAFETY: luaL_newstate has no precondition; the control message only
    // changes the new state's warning function.
    unsafe {
        let l = ffi::luaL_newstate();
        #[cfg(feature = "lua55")]
        if !l.is_null() {
            ffi::lua_warning(l, c"@off".as_ptr(), 0);
        }
        l
    }
}

/// A new state for a unit test, closed when dropped.
#[cfg(test)]
pub struct TestState(states::OwnedState);

#[cfg(test)]
impl TestState {
    pub fn new() -> TestState {
        TestState(states::OwnedState::new().expect("memory for a state"))
    }

    /// A new state with the standard libraries and the library's modules
    /// in `package.preload`.
    pub fn with_libs() -> TestState {
        let state = TestState::new();
        state.lua().open_libs();
        modules::preload(state.lua(), crate::MODULES);
        state
    }

    pub fn lua(&self) -> Lua {
        self.0.lua()
    }

    /// Runs `f` inside a C function call, as the library's functions run
    /// (their upvalue indices are valid there), with an empty stack;
    /// panics if `f` panicked.
    pub fn in_cfunction(&self, f: fn(Lua)) {
        unsafe extern "C-unwind" fn call(l: *mut ffi::lua_State) -> c_int {
            // SAFETY: called by lua_pcall below with the function pointer
            // as a light userdata upvalue.
            let lua = unsafe { Lua::from_raw(l) };
            // SAFETY: the upvalue was made from a `fn(Lua)`.
            let f: fn(Lua) = unsafe { std::mem::transmute(lua.to_userdata(Lua::upvalue(1))) };
            match catch_unwind(AssertUnwindSafe(|| f(lua))) {
                Ok(()) => 0,
                Err(_) => {
                    lua.push_str(c"the function panicked");
                    1
                }
            }
        }
        let lua = self.lua();
        lua.set_top(0);
        lua.push_light(f as *mut std::ffi::c_void);
        lua.push_cclosure(call, 1);
        assert_eq!(lua.pcall(0, 1), LUA_OK);
        assert!(lua.to_bytes(-1).is_none(), "the function panicked");
        lua.set_top(0);
    }

    /// Runs `code`; returns its first result as a string (panics on an
    /// error).
    pub fn run(&self, code: &std::ffi::CStr) -> String {
        let lua = self.lua();
        lua.set_top(0);
        let mut status = lua.load(code.to_bytes(), c"=test", Some(c"t"));
        if status == LUA_OK {
            status = lua.pcall(0, 1);
        }
        let text = String::from_utf8_lossy(lua.to_bytes(-1).unwrap_or(b"(no string)")).into_owned();
        assert_eq!(status, LUA_OK, "{text}");
        text
    }
}

/// Makes a `lua_CFunction` from a `fn(Lua) -> Ret`.
#[macro_export]
macro_rules! cfn {
    ($f:path) => {{
        unsafe extern "C-unwind" fn wrapper(
            l: *mut $crate::lua::ffi::lua_State,
        ) -> ::std::ffi::c_int {
            // SAFETY: Lua calls this as a C function with its running state.
            unsafe { $crate::lua::entry(l, $f) }
        }
        wrapper as $crate::lua::ffi::lua_CFunction
    }};
}

/// One Lua-visible function of a module or class: name and C function.
pub type Reg = (&'static CStr, ffi::lua_CFunction);
