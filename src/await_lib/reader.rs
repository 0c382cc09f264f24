//! The native half of `await.reader` (the Lua half is
//! `src/lua/coutil/reader.lua`): scanning the reader's memory for the end
//! of a line or a delimiter and making the item's string in one call, so
//! that a line already buffered costs one Lua call and one native call.
//!
//! The reader keeps its state (the memory, the first unread byte `i`, the
//! last filled byte `j`) in Lua; these functions only look at
//! `buf[i..j]` (1-based, inclusive) and return where the next item starts.
//! They get the memories' metatable as first upvalue (see
//! [`open`]), so the class check of the buffer is one comparison.

use memchr::memmem;

use crate::cfn;
use crate::lua::class;
use crate::lua::{Error, LUA_OK, LUA_TBOOLEAN, Lua, Reg, Ret};
use crate::memory::{self, Memory};

/// The Lua half of the reader.
const CHUNK: &str = include_str!("../lua/coutil/reader.lua");

const FUNCTIONS: &[Reg] = &[
    (c"line", cfn!(line)),
    (c"upto", cfn!(upto)),
    (c"shift", cfn!(shift)),
];

/// chunk, scan = reader(): the reader's Lua chunk, to be called with
/// `scan`, the table of the functions below (each with the memories'
/// metatable as upvalue); the chunk returns `await.reader`.
pub fn reader(lua: Lua) -> Ret {
    if lua.load(CHUNK.as_bytes(), c"=coutil.await.reader", Some(c"t")) != LUA_OK {
        return Err(Error::Value);
    }
    class::push_metatable::<Memory>(lua);
    lua.push_functions(FUNCTIONS, true);
    Ok(2)
}

/// The positions at 2 and 3 (`i`, `j`) and at `at` (absent: `i`), as
/// given; [`span`] checks them against the memory.
fn positions(lua: Lua, at: i32) -> Result<(usize, usize, usize), Error> {
    let pos = |n: i32| -> Result<usize, Error> {
        lua.to_integer(n)
            .and_then(|v| usize::try_from(v).ok())
            .ok_or(Error::Type(n, c"number"))
    };
    let (i, j) = (pos(2)?, pos(3)?);
    let from = if lua.is_none_or_nil(at) { i } else { pos(at)? };
    Ok((i, j, from))
}

/// The 0-based range `i-1..j` of [`positions`] (`1 <= i`, `i - 1 <= j <=
/// len`, the memory's length) and the 0-based offset of `from`, where a
/// search starts, within `i-1..=j`. Checked inside the borrow that uses
/// them: one class check per call.
fn span(
    len: usize,
    (i, j, from): (usize, usize, usize),
    at: i32,
) -> Result<(usize, usize, usize), Error> {
    if i == 0 || j > len || i - 1 > j {
        return Err(Error::arg(2, "out of range"));
    }
    if from < i || from - 1 > j {
        return Err(Error::arg(at, "out of range"));
    }
    Ok((i - 1, j, from - 1))
}

/// Whether the value at `k` is `true`: only that keeps the end of line,
/// so that `for s in r.line, r do` (which passes the previous line) strips
/// it.
fn keeps(lua: Lua, k: i32) -> bool {
    lua.type_of(k) == LUA_TBOOLEAN && lua.to_boolean(k)
}

/// [s, next] = line(buf, i, j, keep [, from]): the line of `buf[i..j]`
/// whose `\n` is at or after `from`, without its end (`\n` or `\r\n`)
/// unless `keep`, and the position after its `\n`; nothing if no `\n`.
fn line(lua: Lua) -> Ret {
    let pos = positions(lua, 5)?;
    let keep = keeps(lua, 4);
    // The scan, then the push of the line, with one class check.
    let found = memory::push_part(lua, 1, |buf| {
        let (i, j, from) = span(buf.len(), pos, 5).map_err(Some)?;
        let p = memchr::memchr(b'\n', &buf[from..j]).ok_or(None)? + from;
        let end = if keep {
            p + 1
        } else if p > i && buf[p - 1] == b'\r' {
            p - 1
        } else {
            p
        };
        Ok((i..end, p))
    });
    pushed_next(lua, found, 2)
}

/// The results of [`line`] and [`upto`] once the item was pushed (or
/// not): the 1-based position after the item's end, `offset` after the
/// 0-based position found.
fn pushed_next(lua: Lua, found: Option<Result<usize, Option<Error>>>, offset: i64) -> Ret {
    match found {
        None => Err(Error::Type(1, c"memory")),
        Some(Ok(p)) => {
            lua.push_integer(p as i64 + offset);
            Ok(2)
        }
        Some(Err(None)) => Ok(0),
        Some(Err(Some(e))) => Err(e),
    }
}

/// [s, next] = upto(buf, i, j, delimiter, keep [, from]): like [`line`]
/// for a delimiter (a non-empty string) starting at or after `from`; the
/// delimiter is kept only with `keep`.
fn upto(lua: Lua) -> Ret {
    let pos = positions(lua, 6)?;
    let delim = lua.arg_bytes(4)?;
    if delim.is_empty() {
        return Err(Error::arg(4, "empty delimiter"));
    }
    let keep = keeps(lua, 5);
    let found = memory::push_part(lua, 1, |buf| {
        let (i, j, from) = span(buf.len(), pos, 6).map_err(Some)?;
        let p = memmem::find(&buf[from..j], delim).ok_or(None)? + from;
        let next = p + delim.len();
        Ok((i..if keep { next } else { p }, next))
    });
    pushed_next(lua, found, 1)
}

/// n = shift(buf, i, j): moves `buf[i..j]` to the start of `buf`; returns
/// its length, the new `j`.
fn shift(lua: Lua) -> Ret {
    let pos = positions(lua, 4)?;
    let n = memory::with_buffer(lua, 1, |buf| {
        let (i, j, _) = span(buf.len(), pos, 4)?;
        buf.copy_within(i..j, 0);
        Ok(j - i)
    });
    lua.push_integer(n.ok_or(Error::Type(1, c"memory"))?? as i64);
    Ok(1)
}
