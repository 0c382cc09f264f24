//! Tables copied between states (seed-todo.md E4), as Lanes and effil
//! users expect: a deep copy of the raw contents (metatables are not
//! copied, `__pairs` and `__index` are not used) whose keys and values
//! are booleans, numbers, strings, light userdata and tables.
//!
//! A table met twice in one transfer (`{t, t}`, or `t` given as two
//! values) is copied once and arrives as one table referenced twice; a
//! table inside itself, at any depth, is refused (`got table with
//! cycle`), as are functions, threads and full userdata inside (`got
//! table with <type>`, whatever the depth) and nesting deeper than
//! [`MAX_DEPTH`] (`got table too deep`). Copies are plain Rust data
//! ([`Table`], shared through an `Arc`), built and pushed without calling
//! any Lua code.

use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::transfer::Reason;
use crate::lua::{Lua, Numeric};

/// The deepest nesting of tables transferred (the outer table is level 1).
pub const MAX_DEPTH: usize = 100;

/// A key or value inside a copied table.
#[derive(Debug, PartialEq)]
pub enum Plain {
    Bool(bool),
    Int(i64),
    Num(f64),
    /// Bytes `at..at + len` of the table's `bytes`.
    Str {
        at: usize,
        len: usize,
    },
    Light(usize),
    Table(Arc<Table>),
}

/// The raw contents of a table.
#[derive(Debug, PartialEq)]
pub struct Table {
    /// Size hints for `lua_createtable`: its border and other entries.
    narr: c_int,
    nrec: c_int,
    entries: Vec<(Plain, Plain)>,
    /// The bytes of its strings, one after the other (one allocation
    /// instead of one per string).
    bytes: Vec<u8>,
}

/// Hashes an address (all the maps here are keyed by one): a multiply,
/// much cheaper than the default SipHash, which showed in transfers of
/// many small tables.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(26);
    }
}

type ByAddress<K, V> = HashMap<K, V, BuildHasherDefault<AddressHasher>>;

/// What one transfer has copied so far.
#[derive(Default)]
pub struct Seen {
    /// Tables copied, by address.
    done: ByAddress<*const c_void, Arc<Table>>,
    /// The tables being copied: the outer one first.
    path: Vec<*const c_void>,
}

/// Copies the table at `i`.
pub fn copy(lua: Lua, i: c_int, seen: &mut Seen) -> Result<Arc<Table>, Reason> {
    let (i, p) = (lua.abs_index(i), lua.to_pointer(i));
    if let Some(t) = seen.done.get(&p) {
        return Ok(t.clone());
    }
    if seen.path.contains(&p) {
        return Err(Reason::Cycle);
    }
    // A key, a value and the nil that starts a traversal.
    if seen.path.len() >= MAX_DEPTH || lua.check_stack(3).is_err() {
        return Err(Reason::Deep);
    }
    seen.path.push(p);
    let copied = entries(lua, i, seen);
    seen.path.pop();
    let t = Arc::new(copied?);
    seen.done.insert(p, t.clone());
    Ok(t)
}

fn entries(lua: Lua, t: c_int, seen: &mut Seen) -> Result<Table, Reason> {
    // A raw traversal (`next` on raw keys never raises); each key and
    // value is read while on the stack, and both are popped before
    // returning.
    let border = lua.raw_len(t);
    let mut entries = Vec::with_capacity(border.min(1 << 16) + 4);
    let mut bytes = Vec::new();
    lua.push_nil();
    while lua.next(t) {
        let entry = element(lua, -2, seen, &mut bytes)
            .and_then(|k| Ok((k, element(lua, -1, seen, &mut bytes)?)));
        match entry {
            Ok(entry) => {
                entries.push(entry);
                lua.pop(1);
            }
            Err(reason) => {
                lua.pop(2);
                return Err(reason);
            }
        }
    }
    let narr = c_int::try_from(border.min(entries.len())).unwrap_or(0);
    let nrec = c_int::try_from(entries.len()).unwrap_or(0) - narr;
    Ok(Table {
        narr,
        nrec,
        entries,
        bytes,
    })
}

/// A key or value found in a table (its strings go to `bytes`).
#[inline(always)]
fn element(lua: Lua, i: c_int, seen: &mut Seen, bytes: &mut Vec<u8>) -> Result<Plain, Reason> {
    // Only string-typed values are read as strings (`to_bytes` would
    // change a number key in place).
    Ok(match lua.type_of(i) {
        crate::lua::LUA_TBOOLEAN => Plain::Bool(lua.to_boolean(i)),
        crate::lua::LUA_TNUMBER => match lua.to_numeric(i) {
            Numeric::Int(n) => Plain::Int(n),
            Numeric::Float(n) => Plain::Num(n),
        },
        crate::lua::LUA_TSTRING => {
            let s = lua.to_bytes(i).unwrap_or_default();
            let at = bytes.len();
            bytes.extend_from_slice(s);
            Plain::Str { at, len: s.len() }
        }
        crate::lua::LUA_TLIGHTUSERDATA => Plain::Light(lua.to_userdata(i) as usize),
        crate::lua::LUA_TTABLE => Plain::Table(copy(lua, i, seen)?),
        _ => return Err(Reason::Inside(lua.type_name(i))),
    })
}

/// The tables pushed by one transfer that may be pushed again (their copy
/// is shared), kept in the registry until [`Memo::release`].
#[derive(Default)]
pub struct Memo {
    refs: ByAddress<*const Table, c_int>,
}

impl Memo {
    /// Drops the registry references.
    pub fn release(self, lua: Lua) {
        for r in self.refs.into_values() {
            lua.unreference(r);
        }
    }
}

/// Pushes a new table with the contents of `t` (or the one pushed for it
/// already in this transfer).
pub fn push(lua: Lua, t: &Arc<Table>, memo: &mut Memo) {
    let shared = Arc::strong_count(t) > 1;
    let key = Arc::as_ptr(t);
    if shared && let Some(&r) = memo.refs.get(&key) {
        lua.push_reference(r);
        return;
    }
    // Room for a new table, a key and a value (nested tables are at most
    // MAX_DEPTH deep, checked when they were copied).
    if lua.check_stack(3).is_err() {
        lua.push_nil();
        return;
    }
    lua.new_table(t.narr, t.nrec);
    for (k, v) in &t.entries {
        push_plain(lua, t, k, memo);
        push_plain(lua, t, v, memo);
        lua.raw_set(-3);
    }
    if shared {
        lua.push_value(-1);
        let r = lua.reference();
        memo.refs.insert(key, r);
    }
}

/// Pushes `v`, a key or value of `t`.
fn push_plain(lua: Lua, t: &Table, v: &Plain, memo: &mut Memo) {
    match v {
        Plain::Bool(b) => lua.push_bool(*b),
        Plain::Int(n) => lua.push_integer(*n),
        Plain::Num(n) => lua.push_number(*n),
        Plain::Str { at, len } => lua.push_bytes(&t.bytes[*at..*at + *len]),
        Plain::Light(p) => lua.push_light(*p as *mut c_void),
        Plain::Table(t) => push(lua, t, memo),
    }
}
