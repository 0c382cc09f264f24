//! Transferable values (spec threads.md §2): what crosses from one Lua
//! state to another. Values are copied out of the source state into plain
//! Rust data, so no state is ever touched by a thread other than the one
//! running it; the copy is pushed into the destination state later, by the
//! thread that runs that one.

use std::ffi::{c_int, c_void};

use crate::lua::{
    Error, LUA_TBOOLEAN, LUA_TLIGHTUSERDATA, LUA_TNIL, LUA_TNONE, LUA_TNUMBER, LUA_TSTRING, Lua,
    ffi,
};

/// A copied Lua value: `nil`, boolean, number (subtype kept), string
/// (byte-exact) or light userdata (the pointer value only).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(Box<[u8]>),
    Light(usize),
}

/// A value that cannot be transferred: its stack index and basic type name.
#[derive(Clone, Copy, Debug)]
pub struct Refused {
    pub index: c_int,
    pub type_name: &'static str,
}

impl Refused {
    /// `unable to transfer <what> #N (got <type>)`, where N counts from
    /// `first_n` at stack index `first`.
    pub fn numbered(self, what: &str, first: c_int, first_n: c_int) -> String {
        format!(
            "unable to transfer {what} #{} (got {})",
            self.index - first + first_n,
            self.type_name
        )
    }
}

/// Copies the value at `i`, or tells why it cannot be.
pub fn copy(lua: Lua, i: c_int) -> Result<Value, Refused> {
    let l = lua.raw();
    // SAFETY: reads a stack slot of a valid state; strings are copied while
    // they are on the stack.
    unsafe {
        Ok(match lua.type_of(i) {
            LUA_TNIL | LUA_TNONE => Value::Nil,
            LUA_TBOOLEAN => Value::Bool(ffi::lua_toboolean(l, i) != 0),
            LUA_TNUMBER => {
                if ffi::lua_isinteger(l, i) != 0 {
                    Value::Int(ffi::lua_tointeger(l, i))
                } else {
                    Value::Num(ffi::lua_tonumber(l, i))
                }
            }
            LUA_TSTRING => Value::Str(lua.to_bytes(i).unwrap_or_default().into()),
            LUA_TLIGHTUSERDATA => Value::Light(ffi::lua_touserdata(l, i) as usize),
            _ => {
                return Err(Refused {
                    index: i,
                    type_name: lua.type_name(i),
                });
            }
        })
    }
}

/// Copies the values from stack index `first` to the top.
pub fn take(lua: Lua, first: c_int) -> Result<Vec<Value>, Refused> {
    let top = lua.top();
    (first..=top).map(|i| copy(lua, i)).collect()
}

/// Copies the values from `first` to the top, or makes the error message
/// `unable to transfer <what> #N (got <type>)` with `first` being `#first_n`.
pub fn take_or_message(
    lua: Lua,
    first: c_int,
    what: &str,
    first_n: c_int,
) -> Result<Vec<Value>, String> {
    take(lua, first).map_err(|r| r.numbered(what, first, first_n))
}

/// Pushes `v`; does not check the stack space.
pub fn push_one(lua: Lua, v: &Value) {
    match v {
        Value::Nil => lua.push_nil(),
        Value::Bool(b) => lua.push_bool(*b),
        Value::Int(n) => lua.push_integer(*n),
        Value::Num(n) => lua.push_number(*n),
        Value::Str(s) => lua.push_bytes(s),
        Value::Light(p) => lua.push_light(*p as *mut c_void),
    }
}

/// Pushes every value after making room for them.
pub fn push(lua: Lua, values: &[Value]) -> Result<(), Error> {
    lua.check_stack(values.len() as c_int + 1)?;
    for v in values {
        push_one(lua, v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_count_from_the_given_position() {
        let r = Refused {
            index: 5,
            type_name: "table",
        };
        assert_eq!(
            r.numbered("argument", 3, 3),
            "unable to transfer argument #5 (got table)"
        );
        assert_eq!(
            r.numbered("return value", 2, 1),
            "unable to transfer return value #4 (got table)"
        );
    }
}
