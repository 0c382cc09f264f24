//! `coutil.memory` (also `require "memory"`): mutable byte buffers,
//! compatible with lua-memory 2.x (spec `memory.md`).
//!
//! A memory is a full userdata of class `memory` holding a [`Memory`]: its
//! bytes (a [`Bytes`], in a 64-byte aligned allocation, page-aligned from
//! 64 KiB: the kernel copies to and from such buffers fastest) and its
//! kind. Fixed memories never change size; resizable ones
//! (`create()`) grow and shrink with `resize`; closing a resizable memory
//! frees its bytes and leaves an empty `"other"` memory. The metatable's
//! `__index` is the module table itself, so `m:get(1)` works.
//!
//! Other modules borrow the bytes of an argument in place with
//! [`bytes_of`] (string or memory, for senders) and [`buffer_of`] (memory
//! only, for receivers), and apply the position rules of [`range`].
//!
//! Aliasing: an argument may be given twice (`memory.fill(m, m)`), so the
//! functions copy a source before borrowing a destination mutably, and never
//! hold a mutable borrow across a call that can run Lua code (an allocation
//! can run finalizers, which could resize the memory).
//!
//! Sizes are limited to `isize::MAX` bytes (Rust's allocation limit, also
//! Lua's largest string on 64-bit targets); larger or negative sizes raise
//! `invalid size`, and a failed allocation raises `not enough memory`
//! instead of aborting.

mod bytes;
mod contents;
pub mod moving;
mod pack;
pub mod range;

pub use bytes::{Bytes, Scratch};

use std::borrow::Cow;
use std::ffi::c_int;

use crate::cfn;
use crate::lua::class::{self, Class, Object};
use crate::lua::{CFunction, Error, LUA_TNIL, LUA_TNUMBER, Lua, Reg, Ret};
use contents::{diff, fill, find, get, set, tostring};

// Also metamethods: one C function each, so that `mt.__len == memory.len`.
const LEN: CFunction = cfn!(len);
const TOSTRING: CFunction = cfn!(tostring);

const FUNCTIONS: &[Reg] = &[
    (c"create", cfn!(create)),
    (c"type", cfn!(type_)),
    (c"len", LEN),
    (c"resize", cfn!(resize)),
    (c"tostring", TOSTRING),
    (c"get", cfn!(get)),
    (c"set", cfn!(set)),
    (c"fill", cfn!(fill)),
    (c"find", cfn!(find)),
    (c"diff", cfn!(diff)),
    (c"pack", cfn!(pack::pack)),
    (c"unpack", cfn!(pack::unpack)),
];

const META: &[Reg] = &[
    (c"__len", LEN),
    (c"__tostring", TOSTRING),
    (c"__concat", crate::delegating!(concat)),
    (c"__close", cfn!(close)),
];

/// The largest size of a memory, in bytes.
pub const MAX_SIZE: usize = isize::MAX as usize;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Fixed,
    Resizable,
    Other,
}

/// The contents of a memory userdata.
pub struct Memory {
    data: Bytes,
    kind: Kind,
}

impl Object for Memory {
    const CLASS: &'static Class = &Class {
        name: c"memory",
        methods: FUNCTIONS,
        meta: META,
    };

    crate::class_key!();

    // Every function of the module has the metatable as first upvalue: the
    // class check of its arguments then needs no registry lookup.
    const OWN_UPVALUE: bool = true;
}

/// The memory at `i`, if it is one. Raw, so that a memory given as two
/// arguments is never borrowed mutably twice.
/// Only in a C function's call (its upvalue is read): the transfers
/// between states, which also run outside one, use `slot_anywhere`.
fn slot(lua: Lua, i: c_int) -> Option<*mut Option<Memory>> {
    // A userdata with the `memory` metatable, which only `class::push`
    // makes, holding an initialised Option<Memory> (see `lua/class.rs`).
    // The module's own functions have the metatable as first upvalue.
    let p = class::test_own(lua, i, Memory::key());
    (!p.is_null()).then_some(p.cast())
}

/// [`slot`] for any caller (the registry's metatable only).
fn slot_anywhere(lua: Lua, i: c_int) -> Option<*mut Option<Memory>> {
    let p = class::test_key(lua, i, Memory::key());
    (!p.is_null()).then_some(p.cast())
}

fn memory_ref<'a>(lua: Lua, i: c_int) -> Option<&'a Memory> {
    memory_ref_in(slot(lua, i))
}

fn memory_mut<'a>(lua: Lua, i: c_int) -> Option<&'a mut Memory> {
    memory_mut_in(slot(lua, i))
}

fn memory_ref_in<'a>(slot: Option<*mut Option<Memory>>) -> Option<&'a Memory> {
    const EMPTY: &Memory = &Memory {
        data: Bytes::new(),
        kind: Kind::Other,
    };
    // SAFETY: see `slot`; the value lives while it is on the stack. A
    // memory whose value was dropped by `__gc` reads as an empty "other".
    slot.map(|p| unsafe { (*p).as_ref() }.unwrap_or(EMPTY))
}

fn memory_mut_in<'a>(slot: Option<*mut Option<Memory>>) -> Option<&'a mut Memory> {
    slot.map(|p| {
        // SAFETY: see `slot`; callers hold no other borrow of this memory.
        // An empty Bytes owns no allocation, so refilling a collected slot
        // leaks nothing even though its `__gc` already ran.
        unsafe { &mut *p }.get_or_insert(Memory {
            data: Bytes::new(),
            kind: Kind::Other,
        })
    })
}

/// The bytes of the string, number or memory at `i`. The slice is valid
/// while the value stays on the stack and the memory is not resized.
pub fn bytes_of<'a>(lua: Lua, i: c_int) -> Option<&'a [u8]> {
    match memory_ref(lua, i) {
        Some(m) => Some(&m.data),
        None => lua.to_bytes(i),
    }
}

/// The bytes of the memory at `i`, to write in place (never resized).
/// NOTE: the slice dangles once the memory is resized, closed or collected;
/// a caller keeping it across a yield must anchor the memory and re-fetch.
pub fn buffer_of<'a>(lua: Lua, i: c_int) -> Option<&'a mut [u8]> {
    memory_mut(lua, i).map(|m| &mut m.data[..])
}

/// Like [`buffer_of`] for a value checked to be a memory earlier and kept
/// on the stack since (an await's argument, seen again by its
/// continuation): no class check.
///
/// # Safety
/// The value at `i` must be a memory object (checked by [`arg_buffer`]
/// in the same C frame).
pub unsafe fn kept_buffer<'a>(lua: Lua, i: c_int) -> &'a mut [u8] {
    // The caller promises a memory; a collected slot is refilled as in
    // `memory_mut`.
    let p = class::block(lua, i).cast::<Option<Memory>>();
    let m = memory_mut_in(Some(p)).expect("a memory");
    &mut m.data[..]
}

/// Writes `data` into the memory at `i` from byte `at`, as far as the
/// memory goes; false if the value at `i` is not a memory. When `data`
/// replaces every byte of the memory and has the same capacity (thus the
/// same alignment), the two allocations are exchanged instead of copied:
/// `data` then holds the former bytes of the memory. Like a resize, this
/// moves the memory's bytes: slices of it taken before dangle (see
/// [`buffer_of`]).
pub fn put(lua: Lua, i: c_int, at: usize, data: &mut Bytes) -> bool {
    let Some(m) = memory_mut(lua, i) else {
        return false;
    };
    if at == 0 && data.len() == m.data.len() && data.capacity() == m.data.capacity() {
        std::mem::swap(&mut m.data, data);
    } else if let Some(dst) = m.data.get_mut(at..) {
        let n = dst.len().min(data.len());
        dst[..n].copy_from_slice(&data[..n]);
    }
    true
}

/// [`bytes_of`], or the argument error `string or memory expected`.
pub fn arg_bytes<'a>(lua: Lua, i: c_int) -> Result<&'a [u8], Error> {
    bytes_of(lua, i).ok_or(Error::Type(i, c"string or memory"))
}

/// The bytes of the string or memory argument `i` (else the argument
/// error `string or memory expected`) for a caller that runs Lua code
/// while it uses them (e.g. compiling a chunk, which allocates and so may
/// run finalizers): a string is borrowed (immutable, alive while on the
/// stack), a memory is copied, since it could be resized or closed
/// meanwhile.
pub fn arg_stable_bytes<'a>(lua: Lua, i: c_int) -> Result<Cow<'a, [u8]>, Error> {
    match memory_ref(lua, i) {
        Some(m) => copy(&m.data).map(Cow::Owned),
        None => lua
            .to_bytes(i)
            .map(Cow::Borrowed)
            .ok_or(Error::Type(i, c"string or memory")),
    }
}

/// [`buffer_of`], or the argument error `memory expected`.
pub fn arg_buffer<'a>(lua: Lua, i: c_int) -> Result<&'a mut [u8], Error> {
    buffer_of(lua, i).ok_or(Error::Type(i, c"memory"))
}

/// In the module's own functions (see `contents.rs`), the slot of the
/// memory at `i`, or the argument error `memory expected`: checked once,
/// then borrowed with `memory_ref_in` or `memory_mut_in` as the function
/// needs. NOTE: leaves the memory's metatable on the stack (see
/// `class::test_own_keep`): the caller returns its results from the top,
/// reads arguments by positive index and has one free slot less.
#[inline]
fn arg_own(lua: Lua, i: c_int) -> Result<*mut Option<Memory>, Error> {
    let p = class::test_own_keep(lua, i, Memory::key());
    match p.is_null() {
        false => Ok(p.cast()),
        true => Err(Error::Type(i, c"memory")),
    }
}

/// A size argument: an integer in `0..=MAX_SIZE`.
fn arg_size(lua: Lua, i: c_int) -> Result<usize, Error> {
    match usize::try_from(lua.arg_integer(i)?) {
        Ok(n) if n <= MAX_SIZE => Ok(n),
        _ => Err(Error::arg(i, "invalid size")),
    }
}

fn no_memory() -> Error {
    Error::msg("not enough memory")
}

/// A byte value argument: an integer in `0..=255`.
fn arg_byte(lua: Lua, i: c_int) -> Result<u8, Error> {
    u8::try_from(lua.arg_integer(i)?).map_err(|_| Error::arg(i, "value out of range"))
}

/// A copy of `s` made without aborting on allocation failure.
fn copy(s: &[u8]) -> Result<Vec<u8>, Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(s.len()).map_err(|_| no_memory())?;
    v.extend_from_slice(s);
    Ok(v)
}

/// Fills `dst` repeating `pattern` (not empty).
fn repeat(dst: &mut [u8], pattern: &[u8]) {
    for chunk in dst.chunks_mut(pattern.len()) {
        chunk.copy_from_slice(&pattern[..chunk.len()]);
    }
}

fn push_new(lua: Lua, data: Bytes, kind: Kind) {
    class::push(lua, Memory { data, kind });
}

/// `luaopen_coutil_memory`: the module table, which is the memories'
/// `__index` (its functions have the metatable as upvalue, see
/// `Object::OWN_UPVALUE`).
pub fn open(lua: Lua) -> c_int {
    class::push_metatable::<Memory>(lua);
    lua.get_field(-1, c"__index");
    lua.remove(-2);
    1
}

/// m = memory.create([n | s [, i [, j]]])
fn create(lua: Lua) -> Ret {
    if lua.is_none_or_nil(1) {
        push_new(lua, Bytes::new(), Kind::Resizable);
    } else if lua.type_of(1) == LUA_TNUMBER {
        let n = arg_size(lua, 1)?;
        let data = Bytes::zeroed(n).map_err(|_| no_memory())?;
        push_new(lua, data, Kind::Fixed);
    } else {
        let s = arg_bytes(lua, 1)?;
        let r = range::arg_span(lua, s.len(), 2, 3)?;
        let data = Bytes::copy_from(&s[r]).map_err(|_| no_memory())?;
        push_new(lua, data, Kind::Fixed);
    }
    Ok(1)
}

/// kind = memory.type(x)
fn type_(lua: Lua) -> Ret {
    match memory_ref(lua, 1).map(|m| m.kind) {
        Some(Kind::Fixed) => lua.push_bytes(b"fixed"),
        Some(Kind::Resizable) => lua.push_bytes(b"resizable"),
        Some(Kind::Other) => lua.push_bytes(b"other"),
        None => lua.push_nil(),
    }
    Ok(1)
}

/// n = memory.len(m)
fn len(lua: Lua) -> Ret {
    let n = memory_ref_in(Some(arg_own(lua, 1)?)).map_or(0, |m| m.data.len());
    lua.push_integer(n as i64);
    Ok(1)
}

/// memory.resize(m, n [, s])
fn resize(lua: Lua) -> Ret {
    match memory_ref(lua, 1) {
        Some(m) if m.kind == Kind::Resizable => {}
        _ => return Err(Error::Type(1, c"resizable memory")),
    }
    let n = arg_size(lua, 2)?;
    // The pattern is copied first: it may be `m` itself.
    let pattern = match lua.is_none_or_nil(3) {
        true => Vec::new(),
        false => {
            // Checked (a number converted) before the length is read: a
            // conversion may run Lua code, which could resize `m`.
            let s = arg_bytes(lua, 3)?;
            let old = memory_ref(lua, 1).map_or(0, |m| m.data.len());
            copy(&s[..s.len().min(n.saturating_sub(old))])?
        }
    };
    let Some(m) = memory_mut(lua, 1) else {
        return Ok(0);
    };
    let old = m.data.len();
    if n <= old {
        m.data.truncate(n);
        if m.data.capacity() / 2 > n {
            m.data.shrink_to_fit();
        }
    } else {
        m.data.resize(n, 0).map_err(|_| no_memory())?;
        if !pattern.is_empty() {
            repeat(&mut m.data[old..], &pattern);
        }
    }
    Ok(0)
}

/// `__close`: a resizable memory frees its bytes and becomes an empty
/// "other" memory; fixed memories are left as they are.
fn close(lua: Lua) -> Ret {
    if let Some(m) = memory_mut(lua, 1)
        && m.kind == Kind::Resizable
    {
        *m = Memory {
            data: Bytes::new(),
            kind: Kind::Other,
        };
    }
    Ok(0)
}

/// s = a .. b (a string or memory and a memory, or the reverse)
fn concat(lua: Lua) -> Ret {
    let joinable = |k| memory_ref(lua, k).is_some() || lua.to_bytes(k).is_some();
    if joinable(1) && joinable(2) {
        for k in 1..=2 {
            match memory_ref(lua, k) {
                Some(m) => lua.push_bytes(&m.data),
                None => lua.push_value(k),
            }
        }
        lua.concat(2); // the two strings just pushed
        return Ok(1);
    }
    for k in 1..=2 {
        if !joinable(k) && lua.get_metafield(k, c"__concat") != LUA_TNIL {
            lua.push_value(1);
            lua.push_value(2);
            return Ok(crate::lua::DELEGATE);
        }
    }
    let text = format!(
        "attempt to concat a '{}' with a '{}'",
        lua.type_name(1),
        lua.type_name(2)
    );
    Err(Error::msg(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_exchanges_whole_buffers_and_copies_parts() {
        // In a C function: the class check reads its first upvalue.
        crate::lua::TestState::new().in_cfunction(|lua| {
            push_new(lua, Bytes::copy_from(b"abcdef").unwrap(), Kind::Fixed);
            // A part: copied, as far as the memory goes.
            let mut d = Bytes::copy_from(b"XYZ").unwrap();
            assert!(put(lua, 1, 4, &mut d));
            assert_eq!(bytes_of(lua, 1), Some(&b"abcdXY"[..]));
            assert_eq!(&d[..], b"XYZ");
            assert!(put(lua, 1, 9, &mut d));
            assert_eq!(bytes_of(lua, 1), Some(&b"abcdXY"[..]));
            // Every byte with the same capacity: the allocations are swapped.
            let mut d = Bytes::copy_from(b"123456").unwrap();
            let p = d.as_ptr();
            assert!(put(lua, 1, 0, &mut d));
            assert_eq!(bytes_of(lua, 1).map(<[u8]>::as_ptr), Some(p));
            assert_eq!(bytes_of(lua, 1), Some(&b"123456"[..]));
            assert_eq!(&d[..], b"abcdXY");
            // Every byte but another capacity: copied.
            let mut d = Bytes::with_capacity(100).unwrap();
            d.resize(6, b'=').unwrap();
            assert!(put(lua, 1, 0, &mut d));
            assert_ne!(bytes_of(lua, 1).map(<[u8]>::as_ptr), Some(d.as_ptr()));
            assert_eq!(bytes_of(lua, 1), Some(&b"======"[..]));
            // Not a memory.
            lua.push_bytes(b"string");
            assert!(!put(lua, 2, 0, &mut d));
            assert_eq!(lua.to_bytes(2), Some(&b"string"[..]));
        });
    }
}
