//! Transferable values (spec threads.md §2, seed-todo.md E4): what crosses
//! from one Lua state to another. Values are taken out of the source
//! state into plain Rust data, so no state is ever touched by a thread
//! other than the one running it; they are pushed into the destination
//! state later, by the thread that runs that one.
//!
//! * `nil`, booleans, numbers, strings and light userdata are copied;
//! * tables are copied deeply ([`super::tables`]);
//! * resizable memories and state coroutines that are not running
//!   *move*: the allocation or the independent state changes owner and
//!   the source object is left empty (a memory of length 0) or dead.
//!
//! A transfer is all or nothing: [`take`] checks every value before it
//! moves any, and the object given twice moves once (the destination gets
//! one object twice, [`Value::Again`]). A caller whose transfer then does
//! not happen (no peer for `sync`, a load error) gives the moved values
//! back with [`restore`].

use std::ffi::{c_int, c_void};
use std::fmt;
use std::sync::Arc;

use super::stateco::{self, Moved};
use super::tables::{self, Memo, Seen, Table};
use crate::lua::{Error, Lua, Numeric};
use crate::memory::Bytes;
use crate::memory::moving::{self, Movable};

/// A value taken out of a state.
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(Box<[u8]>),
    /// A light userdata: the pointer value only.
    Light(usize),
    /// A deep copy of a table (shared within one transfer).
    Table(Arc<Table>),
    /// The allocation of a resizable memory.
    Memory(Bytes),
    /// The state of a state coroutine.
    Co(Box<Moved>),
    /// The object moved at this earlier position of the same transfer.
    Again(usize),
}

impl Value {
    /// A copy, for values that own nothing (all but moved memories and
    /// state coroutines, and references to them).
    pub fn try_clone(&self) -> Option<Value> {
        Some(match self {
            Value::Nil => Value::Nil,
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(n) => Value::Int(*n),
            Value::Num(n) => Value::Num(*n),
            Value::Str(s) => Value::Str(s.clone()),
            Value::Light(p) => Value::Light(*p),
            Value::Table(t) => Value::Table(t.clone()),
            Value::Memory(_) | Value::Co(_) | Value::Again(_) => return None,
        })
    }

    /// Does the value own a moved object?
    pub fn moves(&self) -> bool {
        matches!(self, Value::Memory(_) | Value::Co(_))
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Num(a), Value::Num(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Light(a), Value::Light(b)) => a == b,
            (Value::Table(a), Value::Table(b)) => a == b,
            (Value::Memory(a), Value::Memory(b)) => a[..] == b[..],
            (Value::Again(a), Value::Again(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => write!(f, "Nil"),
            Value::Bool(b) => write!(f, "Bool({b})"),
            Value::Int(n) => write!(f, "Int({n})"),
            Value::Num(n) => write!(f, "Num({n})"),
            Value::Str(s) => write!(f, "Str({:?})", String::from_utf8_lossy(s)),
            Value::Light(p) => write!(f, "Light({p:#x})"),
            Value::Table(t) => write!(f, "{t:?}"),
            Value::Memory(b) => write!(f, "Memory({} bytes)", b.len()),
            Value::Co(m) => write!(f, "{m:?}"),
            Value::Again(k) => write!(f, "Again({k})"),
        }
    }
}

/// Why a value cannot be transferred.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// `got <type>`: a type that does not cross states (functions,
    /// threads, userdata other than resizable memories and state
    /// coroutines).
    Type(&'static str),
    /// `running coroutine`: a state coroutine that is running (or is the
    /// one being resumed by this call).
    Running,
    /// `got table with <type>`: a table holding (as key or value, at any
    /// depth) a value that cannot be copied inside a table.
    Inside(&'static str),
    /// `got table with cycle`: a table containing itself.
    Cycle,
    /// `got table too deep`: tables nested more than
    /// [`tables::MAX_DEPTH`] levels.
    Deep,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Type(t) => write!(f, "got {t}"),
            Reason::Running => write!(f, "running coroutine"),
            Reason::Inside(t) => write!(f, "got table with {t}"),
            Reason::Cycle => write!(f, "got table with cycle"),
            Reason::Deep => write!(f, "got table too deep"),
        }
    }
}

/// A value that cannot be transferred: its stack index and why.
#[derive(Clone, Copy, Debug)]
pub struct Refused {
    pub index: c_int,
    pub reason: Reason,
}

impl Refused {
    /// `unable to transfer <what> #N (<reason>)`, where N counts from
    /// `first_n` at stack index `first`.
    pub fn numbered(self, what: &str, first: c_int, first_n: c_int) -> String {
        format!(
            "unable to transfer {what} #{} ({})",
            self.index - first + first_n,
            self.reason
        )
    }
}

/// Copies the value at `i` without moving anything: a plain value or a
/// table (error values of state coroutines).
pub fn copy(lua: Lua, i: c_int) -> Result<Value, Refused> {
    let refused = |reason| Refused { index: i, reason };
    if lua.type_of(i) == crate::lua::LUA_TTABLE {
        let t = tables::copy(lua, i, &mut Seen::default()).map_err(refused)?;
        return Ok(Value::Table(t));
    }
    scalar(lua, i).ok_or_else(|| refused(Reason::Type(lua.type_name(i))))
}

/// The value at `i` if it is copied as it is (not a table, not moved).
fn scalar(lua: Lua, i: c_int) -> Option<Value> {
    // Strings are copied while they are on the stack.
    Some(match lua.type_of(i) {
        crate::lua::LUA_TNIL | crate::lua::LUA_TNONE => Value::Nil,
        crate::lua::LUA_TBOOLEAN => Value::Bool(lua.to_boolean(i)),
        crate::lua::LUA_TNUMBER => match lua.to_numeric(i) {
            Numeric::Int(n) => Value::Int(n),
            Numeric::Float(n) => Value::Num(n),
        },
        crate::lua::LUA_TSTRING => Value::Str(lua.to_bytes(i).unwrap_or_default().into()),
        crate::lua::LUA_TLIGHTUSERDATA => Value::Light(lua.to_userdata(i) as usize),
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum Kind {
    Memory,
    Co,
}

/// An object to move once every value is checked.
struct Mover {
    /// Position in the transfer.
    at: usize,
    index: c_int,
    kind: Kind,
    /// The userdata block, to find it given twice.
    block: *mut c_void,
}

/// Takes the values from stack index `first` to the top: all of them, or
/// none (nothing moved) and why the first refused one cannot go.
pub fn take(lua: Lua, first: c_int) -> Result<Vec<Value>, Refused> {
    take_except(lua, first, None)
}

/// Like [`take`]; the object at stack index `own` (the state coroutine a
/// `system.resume` starts) is refused as running.
pub fn take_except(lua: Lua, first: c_int, own: Option<c_int>) -> Result<Vec<Value>, Refused> {
    let top = lua.top();
    let mut values = Vec::with_capacity((top - first + 1).max(0) as usize);
    let mut movers: Vec<Mover> = Vec::new();
    let mut seen = Seen::default();
    for i in first..=top {
        let refused = |reason| Refused { index: i, reason };
        let value = match lua.type_of(i) {
            crate::lua::LUA_TTABLE => {
                Value::Table(tables::copy(lua, i, &mut seen).map_err(refused)?)
            }
            crate::lua::LUA_TUSERDATA => {
                let block = lua.to_userdata(i);
                if own.is_some_and(|o| lua.raw_equal(i, o)) {
                    return Err(refused(Reason::Running));
                }
                if let Some(m) = movers.iter().find(|m| m.block == block) {
                    values.push(Value::Again(m.at));
                    continue;
                }
                let kind = match moving::movable(lua, i) {
                    Movable::Yes => Kind::Memory,
                    Movable::Fixed => return Err(refused(Reason::Type("userdata"))),
                    Movable::No => match stateco::movable(lua, i) {
                        Some(Ok(())) => Kind::Co,
                        Some(Err(reason)) => return Err(refused(reason)),
                        None => return Err(refused(Reason::Type("userdata"))),
                    },
                };
                movers.push(Mover {
                    at: values.len(),
                    index: i,
                    kind,
                    block,
                });
                Value::Nil
            }
            _ => scalar(lua, i).ok_or_else(|| refused(Reason::Type(lua.type_name(i))))?,
        };
        values.push(value);
    }
    // Every value can go: only now is anything moved.
    for m in movers {
        values[m.at] = match m.kind {
            Kind::Memory => Value::Memory(moving::take(lua, m.index)),
            Kind::Co => Value::Co(Box::new(stateco::take(lua, m.index))),
        };
    }
    Ok(values)
}

/// Takes the values from `first` to the top, or makes the error message
/// `unable to transfer <what> #N (<reason>)` with `first` being `#first_n`.
pub fn take_or_message(
    lua: Lua,
    first: c_int,
    what: &str,
    first_n: c_int,
) -> Result<Vec<Value>, String> {
    take(lua, first).map_err(|r| r.numbered(what, first, first_n))
}

/// `first` followed by `values`, whose references to earlier positions
/// ([`Value::Again`]) are shifted accordingly.
pub fn prepend(first: Value, values: Vec<Value>) -> Vec<Value> {
    let mut all = Vec::with_capacity(values.len() + 1);
    all.push(first);
    all.extend(values.into_iter().map(|v| match v {
        Value::Again(at) => Value::Again(at + 1),
        v => v,
    }));
    all
}

/// Gives the objects moved by a transfer that did not happen back to the
/// objects they came from, the first value's at stack index `first`
/// (see [`moving::restore`] and [`stateco::restore`]).
pub fn restore(lua: Lua, first: c_int, values: Vec<Value>) {
    for (k, v) in values.into_iter().enumerate() {
        restore_one(lua, first + k as c_int, v);
    }
}

/// Gives a moved object back to the object at `i` it came from.
pub fn restore_one(lua: Lua, i: c_int, value: Value) {
    match value {
        Value::Memory(data) => moving::restore(lua, i, data),
        Value::Co(moved) => stateco::restore(lua, i, *moved),
        _ => {}
    }
}

/// Pushes `values` on a stack with room for them (and 2 more slots).
pub fn push_unchecked(lua: Lua, mut values: Vec<Value>) {
    let base = lua.top();
    let mut memo = Memo::default();
    // Copies of tables stay in `values` until every value is pushed, so a
    // table shared by several of them is known as such (see tables::push).
    for v in values.iter_mut() {
        match v {
            Value::Nil => lua.push_nil(),
            Value::Bool(b) => lua.push_bool(*b),
            Value::Int(n) => lua.push_integer(*n),
            Value::Num(n) => lua.push_number(*n),
            Value::Str(s) => lua.push_bytes(s),
            Value::Light(p) => lua.push_light(*p as *mut c_void),
            Value::Table(t) => tables::push(lua, t, &mut memo),
            Value::Memory(data) => moving::push(lua, std::mem::take(data)),
            Value::Co(_) => {
                if let Value::Co(moved) = std::mem::replace(v, Value::Nil) {
                    stateco::push(lua, *moved);
                }
            }
            Value::Again(at) => lua.push_value(base + 1 + *at as c_int),
        }
    }
    memo.release(lua);
}

/// Pushes one value (an error value: never an [`Value::Again`]).
pub fn push_one(lua: Lua, value: Value) {
    push_unchecked(lua, vec![value]);
}

/// Pushes every value after making room for them.
pub fn push(lua: Lua, values: Vec<Value>) -> Result<(), Error> {
    lua.check_stack(values.len() as c_int + 2)?;
    push_unchecked(lua, values);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_count_from_the_given_position() {
        let r = |reason| Refused { index: 5, reason };
        assert_eq!(
            r(Reason::Type("function")).numbered("argument", 3, 3),
            "unable to transfer argument #5 (got function)"
        );
        assert_eq!(
            r(Reason::Inside("thread")).numbered("return value", 2, 1),
            "unable to transfer return value #4 (got table with thread)"
        );
        assert_eq!(
            r(Reason::Running).numbered("argument", 5, 2),
            "unable to transfer argument #2 (running coroutine)"
        );
        assert_eq!(Reason::Cycle.to_string(), "got table with cycle");
        assert_eq!(Reason::Deep.to_string(), "got table too deep");
    }
}
