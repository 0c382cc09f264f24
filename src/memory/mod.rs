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
//! Other modules borrow the bytes of an argument in place only in a scoped
//! borrow: [`with_bytes`] (string or memory, for senders) and
//! [`with_buffer`] (memory only, for receivers) run a `Send` closure, which
//! cannot reach the state, so no Lua code can resize or free the memory
//! while the slice lives, and the slice cannot outlive the closure; they
//! apply the position rules of [`range`] (`range::part` clips a range
//! computed before). Bytes needed across a C API call are copied
//! ([`arg_stable_bytes`] for a chunk to compile, the rest of a write in
//! the socket queue); [`push_range`] pushes a part as a string.
//!
//! Aliasing: an argument may be given twice (`memory.fill(m, m)`), so the
//! module's own functions copy a source before borrowing a destination
//! mutably, and never hold a borrow across a call that can run Lua code (an
//! allocation can run finalizers, which could resize the memory; converting
//! a number argument to a string is one): they keep raw access on their hot
//! paths, through the `unsafe` `memory_in`/`memory_mut_in`/`raw_bytes`
//! and `contents.rs`'s `read`/`write`, whose contracts say so.
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
use std::ops::Range;

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

/// The memory in `p` to read. A memory whose value was dropped by `__gc`
/// reads as an empty "other".
///
/// # Safety
/// `p` is the slot of a memory on the stack (from [`slot`],
/// [`slot_anywhere`] or [`arg_own`]). While the reference is used, no
/// `&mut` to the same memory exists and no call that can run Lua code is
/// made (an allocation can run finalizers, which can resize or close the
/// memory); C API calls that only read the stack or push numbers are fine.
unsafe fn memory_in<'a>(p: *mut Option<Memory>) -> &'a Memory {
    const EMPTY: &Memory = &Memory {
        data: Bytes::new(),
        kind: Kind::Other,
    };
    // SAFETY: as the caller promises, a live, initialised slot (see `slot`).
    unsafe { (*p).as_ref() }.unwrap_or(EMPTY)
}

/// The memory in `p` to write. A collected slot is refilled with an empty
/// "other" memory: an empty Bytes owns no allocation, so this leaks
/// nothing even though its `__gc` already ran.
///
/// # Safety
/// As [`memory_in`], and no other reference to the same memory exists
/// while this one is used.
unsafe fn memory_mut_in<'a>(p: *mut Option<Memory>) -> &'a mut Memory {
    // SAFETY: as the caller promises.
    unsafe { &mut *p }.get_or_insert(Memory {
        data: Bytes::new(),
        kind: Kind::Other,
    })
}

/// Runs `f` on the memory at `i`, if it is one. `f` is `Send`, so it
/// cannot reach the state (see `class::with`): while it runs, nothing
/// else can reach the memory, nor resize or free it.
fn with_memory<R>(lua: Lua, i: c_int, f: impl FnOnce(&mut Memory) -> R + Send) -> Option<R> {
    // SAFETY: a slot of the stack, and `f` can make no C API call.
    slot(lua, i).map(|p| f(unsafe { memory_mut_in(p) }))
}

/// [`with_memory`] for any caller (see [`slot_anywhere`]).
fn with_memory_anywhere<R>(
    lua: Lua,
    i: c_int,
    f: impl FnOnce(&mut Memory) -> R + Send,
) -> Option<R> {
    // SAFETY: as in `with_memory`.
    slot_anywhere(lua, i).map(|p| f(unsafe { memory_mut_in(p) }))
}

/// The bytes of the string, number or memory at `i`, for the module's own
/// functions, which push parts of them (pushing a string copies it before
/// any Lua code can run).
///
/// # Safety
/// As [`memory_in`]: the slice is not used across a call that can run Lua
/// code, nor while a `&mut` to the memory exists.
unsafe fn raw_bytes(lua: &Lua, i: c_int) -> Option<&[u8]> {
    match slot(*lua, i) {
        // SAFETY: as the caller promises.
        Some(p) => Some(&unsafe { memory_in(p) }.data),
        None => lua.to_bytes(i),
    }
}

/// Runs `f` on the bytes of the string, number or memory at `i`; `None`
/// if the value is none of these. `f` is `Send`, so it cannot reach the
/// state (see `class::with`): the bytes cannot change, move or be freed
/// while it runs, and the slice cannot outlive it. A caller that needs
/// the bytes across a C API call (`awaiting::wait`, a push, a job for the
/// worker pool) copies them in `f`.
pub fn with_bytes<R>(lua: Lua, i: c_int, f: impl FnOnce(&[u8]) -> R + Send) -> Option<R> {
    match slot(lua, i) {
        // SAFETY: a slot of the stack, and `f` can make no C API call.
        Some(p) => Some(f(&unsafe { memory_in(p) }.data)),
        // A string is immutable and anchored by the stack.
        None => lua.to_bytes(i).map(f),
    }
}

/// Runs `f` on the bytes of the memory at `i`, to write them in place
/// (never resized); `None` if the value is not a memory. As for
/// [`with_bytes`], nothing else can reach the memory while `f` runs.
pub fn with_buffer<R>(lua: Lua, i: c_int, f: impl FnOnce(&mut [u8]) -> R + Send) -> Option<R> {
    with_memory(lua, i, |m| f(&mut m.data))
}

/// [`with_bytes`], or the argument error `string or memory expected`.
pub fn with_arg_bytes<R>(
    lua: Lua,
    i: c_int,
    f: impl FnOnce(&[u8]) -> R + Send,
) -> Result<R, Error> {
    with_bytes(lua, i, f).ok_or(Error::Type(i, c"string or memory"))
}

/// [`with_buffer`], or the argument error `memory expected`.
pub fn with_arg_buffer<R>(
    lua: Lua,
    i: c_int,
    f: impl FnOnce(&mut [u8]) -> R + Send,
) -> Result<R, Error> {
    with_buffer(lua, i, f).ok_or(Error::Type(i, c"memory"))
}

/// Runs `f` on the bytes of the memory at `i` in the range of the optional
/// positions at `ia` and `ja` (as `range::arg_span`), without a class
/// check: for the reads of an await's continuation, whose memory and
/// positions the await checked and kept on the stack. A scoped borrow as
/// [`with_buffer`]. (A class check here, `class::test_own` from a socket
/// method, costs about 400 instructions: +9% for `bench/run tcp-serial`.)
///
/// # Safety
/// The value at `i` is a memory (checked with [`with_arg_buffer`] by the
/// await, and kept since on the stack of the coroutine it suspended).
/// NOTE: `debug.setlocal` can replace a suspended C frame's values; the
/// debug library is trusted, as Lua itself does.
pub unsafe fn with_kept_span<R>(
    lua: Lua,
    i: c_int,
    (ia, ja): (c_int, c_int),
    f: impl FnOnce(&mut [u8]) -> R + Send,
) -> Result<R, Error> {
    let (start, end) = (lua.opt_integer(ia, 1)?, lua.opt_integer(ja, -1)?);
    // SAFETY: as the caller promises, a block made by `class::push` for a
    // memory; exclusive while the Send closure runs, as in `with_memory`.
    let done = unsafe {
        class::with_unchecked::<Memory, _>(lua, i, |slot| {
            let b = &mut slot
                .get_or_insert(Memory {
                    data: Bytes::new(),
                    kind: Kind::Other,
                })
                .data[..];
            let r = range::span(range::start(start, b.len()), range::end(end, b.len()));
            f(&mut b[r])
        })
    };
    done.ok_or(Error::Type(i, c"memory"))
}

/// The bytes of the string or memory argument `i` (else the argument
/// error `string or memory expected`) for a caller that runs Lua code
/// while it uses them (e.g. compiling a chunk, which allocates and so may
/// run finalizers): a string is borrowed (immutable, alive while on the
/// stack), a memory is copied, since it could be resized or closed
/// meanwhile.
pub fn arg_stable_bytes(lua: &Lua, i: c_int) -> Result<Cow<'_, [u8]>, Error> {
    match with_memory(*lua, i, |m| copy(&m.data)) {
        Some(copied) => copied.map(Cow::Owned),
        None => lua
            .to_bytes(i)
            .map(Cow::Borrowed)
            .ok_or(Error::Type(i, c"string or memory")),
    }
}

/// Runs `f` on the bytes of the string or memory at `i` and pushes, as a
/// string, the part of them it returns (clipped to their length), with
/// one class check for both; `None` if the value is neither. `f` returns
/// the part and a value for the caller, or `Err` to push nothing. As for
/// [`with_bytes`], `f` cannot reach the state; the push copies the part
/// before any Lua code can run.
pub fn push_part<R, E>(
    lua: Lua,
    i: c_int,
    f: impl FnOnce(&[u8]) -> Result<(Range<usize>, R), E> + Send,
) -> Option<Result<R, E>> {
    // SAFETY: the slice is read by `f`, which can make no C API call, and
    // by `lua_pushlstring`, which copies it before it can run a GC step.
    let bytes = unsafe { raw_bytes(&lua, i) }?;
    Some(f(bytes).map(|(r, value)| {
        lua.push_bytes(&bytes[range::clip(r, bytes.len())]);
        value
    }))
}

/// Pushes the bytes `r` (clipped to its length) of the string or memory
/// at `i` as a string; false if the value is neither.
pub fn push_range(lua: Lua, i: c_int, r: Range<usize>) -> bool {
    // SAFETY: the slice is only read by `lua_pushlstring`, which copies
    // it into the new string before it can run a GC step (thus Lua code).
    let Some(bytes) = (unsafe { raw_bytes(&lua, i) }) else {
        return false;
    };
    let r = range::clip(r, bytes.len());
    lua.push_bytes(&bytes[r]);
    true
}

/// Writes `data` into the memory at `i` from byte `at`, as far as the
/// memory goes; false if the value at `i` is not a memory. When `data`
/// replaces every byte of the memory and has the same capacity (thus the
/// same alignment), the two allocations are exchanged instead of copied:
/// `data` then holds the former bytes of the memory.
pub fn put(lua: Lua, i: c_int, at: usize, data: &mut Bytes) -> bool {
    with_memory(lua, i, |m| {
        if at == 0 && data.len() == m.data.len() && data.capacity() == m.data.capacity() {
            std::mem::swap(&mut m.data, data);
        } else if let Some(dst) = m.data.get_mut(at..) {
            let n = dst.len().min(data.len());
            dst[..n].copy_from_slice(&data[..n]);
        }
    })
    .is_some()
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
        let len = with_arg_bytes(lua, 1, <[u8]>::len)?;
        let r = range::arg_span(lua, len, 2, 3)?;
        let data = with_bytes(lua, 1, |s| Bytes::copy_from(range::part(s, r)))
            .unwrap_or_else(|| Ok(Bytes::new()))
            .map_err(|_| no_memory())?;
        push_new(lua, data, Kind::Fixed);
    }
    Ok(1)
}

/// kind = memory.type(x)
fn type_(lua: Lua) -> Ret {
    match with_memory(lua, 1, |m| m.kind) {
        Some(Kind::Fixed) => lua.push_bytes(b"fixed"),
        Some(Kind::Resizable) => lua.push_bytes(b"resizable"),
        Some(Kind::Other) => lua.push_bytes(b"other"),
        None => lua.push_nil(),
    }
    Ok(1)
}

/// n = memory.len(m)
fn len(lua: Lua) -> Ret {
    let slot = arg_own(lua, 1)?;
    // SAFETY: a slot from `arg_own`, read at once.
    let n = unsafe { memory_in(slot) }.data.len();
    lua.push_integer(n as i64);
    Ok(1)
}

/// memory.resize(m, n [, s])
fn resize(lua: Lua) -> Ret {
    if with_memory(lua, 1, |m| m.kind) != Some(Kind::Resizable) {
        return Err(Error::Type(1, c"resizable memory"));
    }
    let n = arg_size(lua, 2)?;
    // The pattern is copied first: it may be `m` itself.
    let pattern = match lua.is_none_or_nil(3) {
        true => Vec::new(),
        false => {
            // Checked (a number converted) before the length is read: a
            // conversion may run Lua code, which could resize `m`.
            with_arg_bytes(lua, 3, |_| ())?;
            let old = with_memory(lua, 1, |m| m.data.len()).unwrap_or(0);
            with_arg_bytes(lua, 3, |s| copy(&s[..s.len().min(n.saturating_sub(old))]))??
        }
    };
    let resized = with_memory(lua, 1, |m| {
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
        Ok(())
    });
    resized.unwrap_or(Ok(())).map(|()| 0)
}

/// `__close`: a resizable memory frees its bytes and becomes an empty
/// "other" memory; fixed memories are left as they are.
fn close(lua: Lua) -> Ret {
    with_memory(lua, 1, |m| {
        if m.kind == Kind::Resizable {
            *m = Memory {
                data: Bytes::new(),
                kind: Kind::Other,
            };
        }
    });
    Ok(0)
}

/// s = a .. b (a string or memory and a memory, or the reverse)
fn concat(lua: Lua) -> Ret {
    let is_memory = |k| slot(lua, k).is_some();
    let joinable = |k| is_memory(k) || lua.to_bytes(k).is_some();
    if joinable(1) && joinable(2) {
        for k in 1..=2 {
            match is_memory(k) {
                true => push_range(lua, k, 0..usize::MAX),
                false => {
                    lua.push_value(k);
                    true
                }
            };
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
            assert_eq!(
                with_bytes(lua, 1, <[u8]>::to_vec).as_deref(),
                Some(&b"abcdXY"[..])
            );
            assert_eq!(&d[..], b"XYZ");
            assert!(put(lua, 1, 9, &mut d));
            assert_eq!(
                with_bytes(lua, 1, <[u8]>::to_vec).as_deref(),
                Some(&b"abcdXY"[..])
            );
            // Every byte with the same capacity: the allocations are swapped.
            let mut d = Bytes::copy_from(b"123456").unwrap();
            let p = d.as_ptr();
            assert!(put(lua, 1, 0, &mut d));
            assert_eq!(with_bytes(lua, 1, <[u8]>::as_ptr), Some(p));
            assert_eq!(
                with_bytes(lua, 1, <[u8]>::to_vec).as_deref(),
                Some(&b"123456"[..])
            );
            assert_eq!(&d[..], b"abcdXY");
            // Every byte but another capacity: copied.
            let mut d = Bytes::with_capacity(100).unwrap();
            d.resize(6, b'=').unwrap();
            assert!(put(lua, 1, 0, &mut d));
            assert_ne!(with_bytes(lua, 1, <[u8]>::as_ptr), Some(d.as_ptr()));
            assert_eq!(
                with_bytes(lua, 1, <[u8]>::to_vec).as_deref(),
                Some(&b"======"[..])
            );
            // Not a memory.
            lua.push_bytes(b"string");
            assert!(!put(lua, 2, 0, &mut d));
            assert_eq!(lua.to_bytes(2), Some(&b"string"[..]));
        });
    }
}
