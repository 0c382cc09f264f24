//! The functions that read and write a memory's bytes: `tostring`, `get`,
//! `set`, `fill`, `find`, `diff` (`pack`/`unpack` are in `pack.rs`).
//!
//! They are the hot path of byte-crunching Lua code (`b:get(j)` in a
//! loop), so each checks its memory once (`arg_own`, by metatable
//! identity with the function's first upvalue) and reads optional
//! arguments only when the call has them: `bench/memory` compares each
//! with the string function of the same shape (`s:byte(j)`, …).
//!
//! Aliasing: a memory may be given twice (`memory.fill(m, m)`), so a
//! source is copied before the destination is borrowed mutably, and no
//! borrow is kept across a call that can run Lua code (an allocation can
//! run finalizers, which could resize the memory). Reading integers from
//! the stack runs none.

use std::ffi::c_int;
use std::ops::Range;

use super::{Memory, arg_byte, arg_own, copy, range, raw_bytes, repeat};
use crate::lua::{Error, LUA_MINSTACK, LUA_TNUMBER, Lua, Ret};

/// The memory in `slot` (from [`arg_own`]) to read.
///
/// # Safety
/// As `memory_in`: the reference is not used across a call that can run
/// Lua code (reading integer arguments, checking the stack and pushing
/// numbers run none), nor while a `&mut` to the memory exists.
#[inline(always)]
unsafe fn read<'a>(slot: *mut Option<Memory>) -> &'a Memory {
    // SAFETY: as the caller promises.
    unsafe { super::memory_in(slot) }
}

/// The memory in `slot` to write.
///
/// # Safety
/// As [`read`], and no other reference to the memory is alive.
#[inline(always)]
unsafe fn write<'a>(slot: *mut Option<Memory>) -> &'a mut Memory {
    // SAFETY: as the caller promises.
    unsafe { super::memory_mut_in(slot) }
}

/// Runs the body of a function that uses [`arg_own`] with the count of
/// its arguments, taken before that left the metatable above them. The
/// body reads optional arguments with [`opt`]; a required one that is
/// absent reads as the metatable, which no check accepts, and on any
/// error the stack is cut back to the arguments, so that the message
/// describes them (`got no value`).
#[inline(always)]
fn with_args(lua: Lua, body: impl FnOnce(c_int) -> Ret) -> Ret {
    let top = lua.top();
    let result = body(top);
    if result.is_err() {
        lua.set_top(top);
    }
    result
}

/// The optional integer argument `k` of a call with `top` arguments.
#[inline]
fn opt(lua: Lua, top: c_int, k: c_int, default: i64) -> Result<i64, Error> {
    match k <= top {
        true => lua.opt_integer(k, default),
        false => Ok(default),
    }
}

/// The range of the optional positions `ia` (default 1) and `ja` (default
/// -1) of a call with `top` arguments, as `range::arg_span`.
fn span(lua: Lua, top: c_int, len: usize, ia: c_int, ja: c_int) -> Result<Range<usize>, Error> {
    let i = range::start(opt(lua, top, ia, 1)?, len);
    let j = range::end(opt(lua, top, ja, -1)?, len);
    Ok(range::span(i, j))
}

/// s = memory.tostring(m [, i [, j]])
#[inline]
pub fn tostring(lua: Lua) -> Ret {
    with_args(lua, |top| {
        let s = match arg_own(lua, 1) {
            // SAFETY: used until the push, which copies it before any Lua
            // code can run; reading the positions runs none.
            Ok(slot) => &unsafe { read(slot) }.data[..],
            Err(_) => lua.to_bytes(1).ok_or(Error::Type(1, c"string or memory"))?,
        };
        let r = span(lua, top, s.len(), 2, 3)?;
        lua.push_bytes(&s[r]);
        Ok(1)
    })
}

/// b1, b2, ... = memory.get(m, i [, j])
#[inline]
pub fn get(lua: Lua) -> Ret {
    with_args(lua, |top| {
        let slot = arg_own(lua, 1)?;
        // SAFETY: used until the pushes of integers; reading integer
        // arguments and checking the stack run no Lua code.
        let data = &unsafe { read(slot) }.data;
        let len = data.len();
        let i = range::start(lua.arg_integer(2)?, len);
        let j = range::end(opt(lua, top, 3, i)?, len);
        let r = range::span(i, j);
        let n = c_int::try_from(r.len()).map_err(|_| Error::msg("memory slice too long"))?;
        // The metatable takes one of the LUA_MINSTACK free slots.
        if n > LUA_MINSTACK - 1 {
            lua.check_stack(n)
                .map_err(|_| Error::msg("memory slice too long"))?;
        }
        // `data` is still the memory's: nothing above ran Lua code.
        for &b in &data[r] {
            lua.push_integer(b.into());
        }
        Ok(n)
    })
}

/// memory.set(m, i, ...)
#[inline]
pub fn set(lua: Lua) -> Ret {
    with_args(lua, |top| {
        let slot = arg_own(lua, 1)?;
        // SAFETY: read at once.
        let len = unsafe { read(slot) }.data.len();
        let i = range::start(lua.arg_integer(2)?, len);
        if i > len as i64 {
            return Err(Error::arg(2, "index out of bounds"));
        }
        let at = (i - 1) as usize;
        let count = (top - 2)
            .max(0)
            .min((len - at).try_into().unwrap_or(c_int::MAX));
        // Every value is checked before any is written: a few at once,
        // more in two passes.
        // SAFETY: the only reference to the memory (the values are read
        // from the stack as integers, which runs no Lua code).
        let dst = &mut unsafe { write(slot) }.data[at..at + count as usize];
        let mut few = [0u8; 16];
        if let Some(values) = few.get_mut(..count as usize) {
            for (k, b) in (3..).zip(values.iter_mut()) {
                *b = arg_byte(lua, k)?;
            }
            dst.copy_from_slice(values);
        } else {
            for k in 3..3 + count {
                arg_byte(lua, k)?;
            }
            for (k, b) in (3..).zip(dst) {
                *b = arg_byte(lua, k)?;
            }
        }
        Ok(0)
    })
}

/// memory.fill(m, s [, i [, j [, o]]])
#[inline]
pub fn fill(lua: Lua) -> Ret {
    with_args(lua, |top| {
        let slot = arg_own(lua, 1)?;
        // SAFETY: read at once.
        let len = unsafe { read(slot) }.data.len();
        let r = span(lua, top, len, 3, 4)?;
        if lua.type_of(2) == LUA_TNUMBER {
            let b = arg_byte(lua, 2)?;
            // SAFETY: the only reference, used at once.
            unsafe { write(slot) }.data[r].fill(b);
            return Ok(0);
        }
        // SAFETY: used until copied below, reading an integer in between.
        let s = unsafe { raw_bytes(&lua, 2) }.ok_or(Error::Type(2, c"string or memory"))?;
        let o = range::start(opt(lua, top, 5, 1)?, s.len());
        if r.is_empty() || o > s.len() as i64 {
            return Ok(0);
        }
        // The pattern is copied first: it may be `m` itself.
        let s = &s[(o - 1) as usize..];
        let pattern = copy(&s[..s.len().min(r.len())])?;
        // SAFETY: the only reference (the pattern was copied), used at once.
        repeat(&mut unsafe { write(slot) }.data[r], &pattern);
        Ok(0)
    })
}

/// [first, last] = memory.find(m, s [, i [, j [, o]]])
pub fn find(lua: Lua) -> Ret {
    with_args(lua, |top| {
        let slot = arg_own(lua, 1)?;
        // NOTE: `s` first: converting a number may run Lua code (a GC
        // step, finalizers), which could resize or close the memory.
        // SAFETY: both only read, until the pushes of integers; reading
        // integer arguments runs no Lua code.
        let s = unsafe { raw_bytes(&lua, 2) }.ok_or(Error::Type(2, c"string or memory"))?;
        // SAFETY: as `s`.
        let data = &unsafe { read(slot) }.data[..];
        let i = range::start(opt(lua, top, 3, 1)?, data.len());
        let j = range::end(opt(lua, top, 4, -1)?, data.len());
        let o = range::start(opt(lua, top, 5, 1)?, s.len());
        let hay = &data[range::span(i, j)];
        let s = s.get((o - 1) as usize..).unwrap_or_default();
        let s = &s[..s.len().min(hay.len())];
        let found = match s.split_first() {
            None => Some(0),
            Some((&first, rest)) => (0..=hay.len() - s.len())
                .find(|&k| hay[k] == first && &hay[k + 1..k + s.len()] == rest),
        };
        match found {
            Some(k) => {
                let first = i + k as i64;
                lua.push_integer(first);
                lua.push_integer(first + s.len() as i64 - 1);
                Ok(2)
            }
            None => {
                lua.push_nil();
                Ok(1)
            }
        }
    })
}

/// [pos, less] = memory.diff(a, b)
pub fn diff(lua: Lua) -> Ret {
    // Numbers are converted first, in order: a conversion may run Lua code
    // (a GC step, finalizers), which could resize or close a memory.
    for k in 1..=2 {
        // SAFETY: only converts (or checks) the value; the slice is dropped.
        unsafe { raw_bytes(&lua, k) }.ok_or(Error::Type(k, c"string or memory"))?;
    }
    // SAFETY: both only read, until the pushes of a number and a boolean;
    // taking them runs no Lua code now.
    let a = unsafe { raw_bytes(&lua, 1) }.unwrap_or_default();
    // SAFETY: as `a`.
    let b = unsafe { raw_bytes(&lua, 2) }.unwrap_or_default();
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(k) => {
            lua.push_integer(k as i64 + 1);
            lua.push_bool(a[k] < b[k]);
        }
        None if a.len() != b.len() => {
            lua.push_integer(a.len().min(b.len()) as i64 + 1);
            lua.push_bool(a.len() < b.len());
        }
        None => {
            lua.push_nil();
            lua.push_bool(false);
        }
    }
    Ok(2)
}
