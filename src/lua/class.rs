//! Userdata classes: a Rust value inside a full userdata, with a metatable
//! registered under the class `__name` (`coutil:file`, …).
//!
//! The userdata holds an `Option<T>`: `None` once the value was dropped by
//! `__gc` (or taken by a `close` method), so a resurrected or closed object
//! is never used after its destructor ran. The metatable has `__name`,
//! `__index` (the methods), `__gc` (drops the value) and any extra
//! metamethods the class lists (`__close`, `__tostring`, `__len`, …).
//!
//! Borrows are scoped: code outside this module reaches a slot only inside
//! a closure ([`with`], [`with_checked`], [`with_kept`], …), whose
//! reference is higher-ranked, so it cannot outlive the call. The closure
//! must be `Send`, which [`Lua`] is not: it cannot reach the state, so no
//! C API call runs while the reference lives — no Lua code, no garbage
//! collection, no finalizer, no longjmp, and no second borrow of the same
//! object (getting one needs the state). This holds as long as no
//! [`Object`] holds a handle to its own state (none does: a state
//! coroutine holds another state). Two objects at once go through
//! [`with_pair`], which checks that they are distinct. No guard with a
//! destructor is involved, so a longjmp elsewhere cannot leave an object
//! marked as borrowed.

use std::ffi::{CStr, c_int, c_void};
use std::marker::PhantomData;

use super::{Error, Lua, Reg, ffi};

pub struct Class {
    /// `__name`, also the type name in argument errors.
    pub name: &'static CStr,
    /// Functions of `__index`.
    pub methods: &'static [Reg],
    /// Other metamethods, e.g. `(c"__close", close)`.
    pub meta: &'static [Reg],
}

/// A Rust type stored in userdata of one class.
pub trait Object: Sized + 'static {
    const CLASS: &'static Class;

    /// The address of a private static of the class, under which the
    /// registry keeps its metatable too, so that [`with`] compares
    /// metatables by identity instead of looking them up by name (see
    /// [`test_key`]). Null: by name.
    fn key() -> *const c_void {
        std::ptr::null()
    }

    /// Whether the class's functions (methods and metamethods, but
    /// `__gc`) are closures with its metatable as first upvalue, for
    /// [`test_own`]; otherwise plain C functions.
    const OWN_UPVALUE: bool = false;
}

/// Defines `Object::key` in an `impl Object for T` block: the address of a
/// static private to that impl.
#[macro_export]
macro_rules! class_key {
    () => {
        fn key() -> *const ::std::ffi::c_void {
            static KEY: u8 = 0;
            &KEY as *const u8 as *const ::std::ffi::c_void
        }
    };
}

/// Pushes the metatable of `T`'s class, creating it on first use.
pub fn push_metatable<T: Object>(lua: Lua) {
    let class = T::CLASS;
    let l = lua.raw();
    // SAFETY: plain stack operations on a valid state; luaL_newmetatable
    // sets `__name` itself.
    unsafe {
        if ffi::luaL_newmetatable(l, class.name.as_ptr()) != 0 {
            if !T::key().is_null() {
                register_key(lua, T::key());
            }
            if T::OWN_UPVALUE {
                ffi::lua_pushvalue(l, -1);
            }
            lua.push_functions(class.methods, T::OWN_UPVALUE);
            ffi::lua_pushvalue(l, -1);
            ffi::lua_setfield(l, -3, c"__index".as_ptr());
            ffi::lua_pushcfunction(l, gc::<T>);
            ffi::lua_setfield(l, -3, c"__gc".as_ptr());
            // Set after `__index` and `__gc`: a class's own `__index`
            // (a function, e.g. `coutil:netaddress`) replaces the table.
            for (name, f) in class.meta {
                // A metamethod that is also a method (the same C function)
                // is the same closure, as it would be the same function
                // without upvalues (`mt.__len == memory.len`).
                let method = class.methods.iter().find(|m| m.1 as usize == *f as usize);
                match method {
                    Some((method, _)) if T::OWN_UPVALUE => {
                        ffi::lua_getfield(l, -1, method.as_ptr());
                    }
                    _ if T::OWN_UPVALUE => {
                        ffi::lua_pushvalue(l, -2);
                        ffi::lua_pushcclosure(l, *f, 1);
                    }
                    _ => ffi::lua_pushcfunction(l, *f),
                }
                ffi::lua_setfield(l, -3, name.as_ptr());
            }
            ffi::lua_settop(l, -2); // the methods
        }
    }
}

/// Pushes a new object holding `value`.
pub fn push<T: Object>(lua: Lua, value: T) {
    let l = lua.raw();
    // SAFETY: the new userdata block is sized and aligned for Option<T>
    // (Lua aligns userdata for any standard type; Object types need at most
    // 16-byte alignment, checked below) and is initialised before use.
    unsafe {
        const { assert!(std::mem::align_of::<Option<T>>() <= 16) };
        let p = ffi::lua_newuserdatauv(l, std::mem::size_of::<Option<T>>(), 1) as *mut Option<T>;
        p.write(Some(value));
        push_metatable::<T>(lua);
        ffi::lua_setmetatable(l, -2);
    }
}

/// The block of the object at `i` if it belongs to `T`'s class, else null.
fn slot_ptr<T: Object>(lua: Lua, i: c_int) -> *mut Option<T> {
    let p = if T::key().is_null() {
        // SAFETY: a stack read on a valid state; pushes and pops the
        // metatable.
        unsafe { ffi::luaL_testudata(lua.raw(), i, T::CLASS.name.as_ptr()) }
    } else {
        test_key(lua, i, T::key())
    };
    p.cast()
}

/// Whether the value at `i` is an object of `T`'s class.
pub fn is<T: Object>(lua: Lua, i: c_int) -> bool {
    !slot_ptr::<T>(lua, i).is_null()
}

/// Runs `f` on the slot of the object at `i` if it belongs to `T`'s class.
///
/// `f` is `Send`, so it cannot hold the state (see the module doc): while
/// it runs, nothing else can reach the object.
pub fn with<T: Object, R>(
    lua: Lua,
    i: c_int,
    f: impl FnOnce(&mut Option<T>) -> R + Send,
) -> Option<R> {
    let p = slot_ptr::<T>(lua, i);
    // SAFETY: the metatable was checked, so the block was made by
    // `push::<T>` and holds an initialised Option<T>; the object is on
    // the stack, so alive, and `f` can make no C API call (it is Send and
    // `Lua` is not), so no other reference to the slot exists while it
    // runs.
    unsafe { p.as_mut() }.map(f)
}

/// Like [`with`], or the argument error `<class> expected, got <type>`.
pub fn with_checked<T: Object, R>(
    lua: Lua,
    i: c_int,
    f: impl FnOnce(&mut Option<T>) -> R + Send,
) -> Result<R, Error> {
    with::<T, R>(lua, i, f).ok_or(Error::Type(i, T::CLASS.name))
}

/// Runs `f` on the slots of two objects of `T`'s class, at `i` and `j`,
/// when both are; if they are the same object, `f` gets it once, as
/// `Err(slot)`.
#[allow(clippy::type_complexity)] // the two cases are the point
pub fn with_pair<T: Object, R>(
    lua: Lua,
    i: c_int,
    j: c_int,
    f: impl FnOnce(Result<(&mut Option<T>, &mut Option<T>), &mut Option<T>>) -> R + Send,
) -> Option<R> {
    let (p, q) = (slot_ptr::<T>(lua, i), slot_ptr::<T>(lua, j));
    if p.is_null() || q.is_null() {
        return None;
    }
    // SAFETY: as in `with`, for each block; when they are the same block
    // only one reference is made.
    unsafe {
        match p == q {
            true => Some(f(Err(&mut *p))),
            false => Some(f(Ok((&mut *p, &mut *q)))),
        }
    }
}

/// Runs `f` on the slot of the object at `i` without a class check, or
/// returns `None` for a value that is not a full userdata (e.g. nil).
///
/// # Safety
/// The value at `i` must be nil or an object holding an `Option<P>`
/// (checked earlier, e.g. an await's argument kept on its stack).
pub unsafe fn with_unchecked<P, R>(
    lua: Lua,
    i: c_int,
    f: impl FnOnce(&mut Option<P>) -> R + Send,
) -> Option<R> {
    // SAFETY: as the caller promises, a non-null block holds an
    // initialised Option<P>; exclusive while `f` runs, as in `with`.
    unsafe { (ffi::lua_touserdata(lua.raw(), i) as *mut Option<P>).as_mut() }.map(f)
}

unsafe extern "C-unwind" fn gc<T: Object>(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this with a valid state.
    let lua = unsafe { Lua::from_raw(l) };
    // `__gc` can be called by hand with any value: only drop our own.
    // SAFETY: as in `with`: a block of the class, and nothing else runs
    // while the value is taken.
    if let Some(slot) = unsafe { slot_ptr::<T>(lua, 1).as_mut() } {
        let value = slot.take();
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(value))).is_err() {
            lua.warn(b"[coutil] gc: internal error (panic)");
        }
    }
    0
}

/// The block of the userdata at `i` if its metatable is the one stored in
/// the registry under `key` (compared by identity: a userdata of another
/// library whose metatable has the same `__name` is not ours), else null.
/// Cheaper than `luaL_testudata`, which looks the metatable up by name.
// NOTE: `key` is only a value to Lua (a light userdata), never dereferenced.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn test_key(lua: Lua, i: c_int, key: *const c_void) -> *mut c_void {
    let l = lua.raw();
    // SAFETY: stack reads and a raw registry read with a light userdata
    // key; two values pushed and popped.
    unsafe {
        let p = ffi::lua_touserdata(l, i);
        if p.is_null() || ffi::lua_getmetatable(l, i) == 0 {
            return std::ptr::null_mut();
        }
        ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, key);
        let same = ffi::lua_rawequal(l, -1, -2) != 0;
        ffi::lua_settop(l, -3);
        if same { p } else { std::ptr::null_mut() }
    }
}

/// Like [`test_key`], with a fast path for the functions of a class's
/// own module, which carry its metatable as first upvalue (see
/// [`Object::OWN_UPVALUE`]): that is compared first, and the registry is
/// only read when it differs (another module's function, whose first
/// upvalue is something else or nothing).
#[allow(clippy::not_unsafe_ptr_arg_deref)] // as for `test_key`
pub fn test_own(lua: Lua, i: c_int, key: *const c_void) -> *mut c_void {
    let l = lua.raw();
    // SAFETY: stack reads; an upvalue index beyond the running function's
    // upvalues is acceptable (it reads as none, equal to no table); one
    // or two values pushed and popped.
    unsafe {
        let p = ffi::lua_touserdata(l, i);
        if p.is_null() || ffi::lua_getmetatable(l, i) == 0 {
            return std::ptr::null_mut();
        }
        let mut same = ffi::lua_rawequal(l, -1, ffi::lua_upvalueindex(1)) != 0;
        if !same {
            ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, key);
            same = ffi::lua_rawequal(l, -1, -2) != 0;
            ffi::lua_settop(l, -2);
        }
        ffi::lua_settop(l, -2);
        if same { p } else { std::ptr::null_mut() }
    }
}

/// [`test_own`] for the class's own functions that return their results
/// from the top of the stack and read their arguments by positive index:
/// when the value at `i` is an object of the class, its metatable is left
/// on the stack, one slot above the arguments (its pop was one API call
/// in seven of `b:get(j)`); otherwise the stack is as it was.
#[allow(clippy::not_unsafe_ptr_arg_deref)] // as for `test_key`
#[inline]
pub fn test_own_keep(lua: Lua, i: c_int, key: *const c_void) -> *mut c_void {
    let l = lua.raw();
    // SAFETY: as in `test_own`; one value pushed and left, or none.
    unsafe {
        let p = ffi::lua_touserdata(l, i);
        if p.is_null() || ffi::lua_getmetatable(l, i) == 0 {
            return std::ptr::null_mut();
        }
        if ffi::lua_rawequal(l, -1, ffi::lua_upvalueindex(1)) != 0 {
            return p;
        }
        ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, key);
        let same = ffi::lua_rawequal(l, -1, -2) != 0;
        ffi::lua_settop(l, if same { -2 } else { -3 });
        if same { p } else { std::ptr::null_mut() }
    }
}

/// Stores the table on top of the stack (a metatable) in the registry
/// under `key` too, for [`test_key`]. Leaves the stack as it was.
#[allow(clippy::not_unsafe_ptr_arg_deref)] // as for `test_key`
pub fn register_key(lua: Lua, key: *const c_void) {
    // SAFETY: copies the top value into the registry under a light
    // userdata key.
    unsafe {
        ffi::lua_pushvalue(lua.raw(), -1);
        ffi::lua_rawsetp(lua.raw(), ffi::LUA_REGISTRYINDEX, key);
    }
}

// --- families of classes keyed by the caller ---------------------------
//
// The socket classes all hold an `Option<P>` of the same payload and
// differ by metatable; their methods are closures with two upvalues, the
// state's loop and the class's metatable (see `system::net::class`).

/// Makes the metatable of a class, unless one is stored under `key`
/// already: `__name` (and the registry entry under `name`, as
/// `luaL_newmetatable`), `__index` with `methods` as closures whose
/// upvalues are `upvalue` and the metatable itself, and the metamethods
/// `meta`; stores it under `key`.
#[allow(clippy::not_unsafe_ptr_arg_deref)] // `key`, `upvalue`: values only
pub fn make_metatable(
    lua: Lua,
    key: *const c_void,
    name: &CStr,
    methods: &[Reg],
    meta: &[Reg],
    upvalue: *mut c_void,
) {
    let l = lua.raw();
    // SAFETY: table operations on the stack, within LUA_MINSTACK.
    unsafe {
        if ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, key) != ffi::LUA_TNIL {
            ffi::lua_pop(l, 1);
            return;
        }
        ffi::lua_pop(l, 1);
        ffi::luaL_newmetatable(l, name.as_ptr());
        register_key(lua, key);
        ffi::lua_createtable(l, 0, methods.len() as c_int);
        for (name, f) in methods {
            ffi::lua_pushlightuserdata(l, upvalue);
            ffi::lua_pushvalue(l, -3);
            ffi::lua_pushcclosure(l, *f, 2);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
        ffi::lua_setfield(l, -2, c"__index".as_ptr());
        for (name, f) in meta {
            ffi::lua_pushcfunction(l, *f);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
        ffi::lua_pop(l, 1);
    }
}

/// Pushes a new object holding `Some(value)` with the metatable stored
/// under `key` (made by [`make_metatable`]).
///
/// # Safety
/// Every object with that metatable must hold an `Option<P>`.
pub unsafe fn push_keyed<P>(lua: Lua, value: P, key: *const c_void) {
    let l = lua.raw();
    // SAFETY: the block is sized and aligned for Option<P> (at most 16
    // bytes of alignment, checked) and initialised before the metatable
    // is set.
    unsafe {
        const { assert!(std::mem::align_of::<Option<P>>() <= 16) };
        let p = ffi::lua_newuserdatauv(l, std::mem::size_of::<Option<P>>(), 0) as *mut Option<P>;
        p.write(Some(value));
        ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, key);
        ffi::lua_setmetatable(l, -2);
    }
}

/// Runs `f` on the slot of the object at `i` if its metatable is the one
/// under `key`; as [`with`].
///
/// # Safety
/// As for [`push_keyed`]: objects with that metatable hold an `Option<P>`.
pub unsafe fn with_keyed<P, R>(
    lua: Lua,
    i: c_int,
    key: *const c_void,
    f: impl FnOnce(&mut Option<P>) -> R + Send,
) -> Option<R> {
    // SAFETY: as the caller promises; exclusive while `f` runs, as in
    // `with`.
    unsafe { (test_key(lua, i, key) as *mut Option<P>).as_mut() }.map(f)
}

/// In a method made by [`make_metatable`]: runs `f` on the slot of its
/// self (the first argument) if that has the method's class, compared by
/// identity with the method's second upvalue (no registry lookup); as
/// [`with`].
///
/// # Safety
/// Only in such a method; objects of the class hold an `Option<P>`.
pub unsafe fn with_method_self<P, R>(
    lua: Lua,
    f: impl FnOnce(&mut Option<P>) -> R + Send,
) -> Option<R> {
    let l = lua.raw();
    // SAFETY: the running function is a closure made by `make_metatable`,
    // with the class metatable as second upvalue; exclusive while `f`
    // runs, as in `with`.
    unsafe {
        let p = ffi::lua_touserdata(l, 1) as *mut Option<P>;
        if p.is_null() || ffi::lua_getmetatable(l, 1) == 0 {
            return None;
        }
        let same = ffi::lua_rawequal(l, -1, ffi::lua_upvalueindex(2)) != 0;
        ffi::lua_pop(l, 1);
        if same { p.as_mut().map(f) } else { None }
    }
}

/// A registry key: the address of a private static of the caller.
pub fn key(k: &'static u8) -> *const c_void {
    k as *const u8 as *const c_void
}

/// A registry key for the one object of class `T` a state keeps (see
/// [`with_kept`]): a static of the module of `T`. Its type ties what is
/// stored under its address to `T`, so the objects found there need no
/// class check.
pub struct KeptKey<T> {
    /// Not zero-sized, so that every key has an address of its own.
    _unique: u8,
    _of: PhantomData<fn() -> T>,
}

impl<T> KeptKey<T> {
    #[allow(clippy::new_without_default)] // only for statics
    pub const fn new() -> Self {
        KeptKey {
            _unique: 0,
            _of: PhantomData,
        }
    }

    fn raw(&'static self) -> *const c_void {
        (self as *const Self).cast()
    }
}

/// The block of the object kept in the registry under `k`, or null.
fn kept_ptr<T: Object>(lua: Lua, k: &'static KeptKey<T>) -> *mut Option<T> {
    // SAFETY: a raw registry read, popped at once.
    unsafe {
        ffi::lua_rawgetp(lua.raw(), ffi::LUA_REGISTRYINDEX, k.raw());
        let p = ffi::lua_touserdata(lua.raw(), -1);
        ffi::lua_pop(lua.raw(), 1);
        p.cast()
    }
}

/// Runs `f` on the object of class `T` kept in the registry under `k`
/// (see [`with_kept`]), if it was made and is not dropped; as [`with`].
/// Pushes nothing.
pub fn with_found<T: Object, R>(
    lua: Lua,
    k: &'static KeptKey<T>,
    f: impl FnOnce(&mut T) -> R + Send,
) -> Option<R> {
    let p = kept_ptr(lua, k);
    // SAFETY: only `with_kept` stores a value under `k`, an object made by
    // `push::<T>`, which the registry keeps alive; exclusive while `f`
    // runs, as in `with`.
    unsafe { p.as_mut() }.and_then(Option::as_mut).map(f)
}

/// Runs `f` on the object of class `T` kept in the registry under `k` for
/// the life of the state, made with `make` on first use; as [`with`].
/// Pushes nothing.
pub fn with_kept<T: Object, R>(
    lua: Lua,
    k: &'static KeptKey<T>,
    make: impl FnOnce() -> T,
    f: impl FnOnce(&mut T) -> R + Send,
) -> R {
    let mut p = kept_ptr(lua, k);
    // SAFETY: as in `with_found`.
    if unsafe { p.as_ref() }.is_none_or(Option::is_none) {
        push(lua, make());
        // SAFETY: the object just made, stored under `k` at once.
        unsafe {
            p = ffi::lua_touserdata(lua.raw(), -1).cast();
            ffi::lua_rawsetp(lua.raw(), ffi::LUA_REGISTRYINDEX, k.raw());
        }
    }
    // SAFETY: as in `with_found`; `p` is not null and holds a value.
    f(unsafe { &mut *p }.as_mut().expect("just made"))
}
