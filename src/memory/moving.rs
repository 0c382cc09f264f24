//! Resizable memories moved between Lua states (spec seed-todo.md E4):
//! the allocation changes owner, its bytes are never copied.
//!
//! Taking the bytes of a memory leaves it resizable and empty, as
//! `resize(m, 0)` would, which every user of a memory already copes
//! with (a reader or writer fetches the bytes again after each resume,
//! see [`super::with_buffer`]). The destination gets a new resizable
//! memory owning the allocation. Fixed and `"other"` memories do not
//! move: a fixed memory promises its size for its whole life, and an
//! `"other"` one has no bytes of its own to give.

use std::ffi::c_int;

use super::{Bytes, Kind, Memory, with_memory_anywhere};
use crate::lua::Lua;
use crate::lua::class;

/// What the value at `i` is, for a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Movable {
    /// Not a memory.
    No,
    /// A resizable memory: its bytes can move.
    Yes,
    /// A fixed or `"other"` memory: a userdata that cannot be transferred.
    Fixed,
}

/// Can the value at `i` move as a memory?
pub fn movable(lua: Lua, i: c_int) -> Movable {
    match with_memory_anywhere(lua, i, |m| m.kind) {
        None => Movable::No,
        Some(Kind::Resizable) => Movable::Yes,
        Some(_) => Movable::Fixed,
    }
}

/// Takes the bytes of the resizable memory at `i` (checked with
/// [`movable`] in the same C call), leaving it empty and resizable.
pub fn take(lua: Lua, i: c_int) -> Bytes {
    with_memory_anywhere(lua, i, |m| match m.kind {
        Kind::Resizable => std::mem::take(&mut m.data),
        _ => Bytes::new(),
    })
    .unwrap_or_default()
}

/// Pushes a new resizable memory owning `data`.
pub fn push(lua: Lua, data: Bytes) {
    class::push(
        lua,
        Memory {
            data,
            kind: Kind::Resizable,
        },
    );
}

/// Gives `data`, taken from the memory at `i` by a transfer that did not
/// happen, back to it; if that memory changed meanwhile (resized, closed)
/// the bytes are dropped instead: the memory keeps what was put there.
pub fn restore(lua: Lua, i: c_int, data: Bytes) {
    let mut data = Some(data);
    with_memory_anywhere(lua, i, |m| {
        if m.kind == Kind::Resizable && m.data.capacity() == 0 {
            m.data = data.take().unwrap_or_default();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_move_without_copy_and_come_back() {
        // In a C function, as `with_bytes` (a function of the module's C
        // functions) expects.
        crate::lua::TestState::new().in_cfunction(|lua| {
            super::super::push_new(lua, Bytes::copy_from(b"fixed").unwrap(), Kind::Fixed);
            assert_eq!(movable(lua, 1), Movable::Fixed);
            lua.push_bytes(b"string");
            assert_eq!(movable(lua, 2), Movable::No);
            push(lua, Bytes::copy_from(b"contents").unwrap());
            assert_eq!(movable(lua, 3), Movable::Yes);
            let p = super::super::with_bytes(lua, 3, <[u8]>::as_ptr).unwrap();
            let data = take(lua, 3);
            assert_eq!((data.as_ptr(), &data[..]), (p, &b"contents"[..]));
            assert_eq!(
                super::super::with_bytes(lua, 3, <[u8]>::to_vec).as_deref(),
                Some(&b""[..])
            );
            assert_eq!(movable(lua, 3), Movable::Yes);
            push(lua, data);
            assert_eq!(super::super::with_bytes(lua, 4, <[u8]>::as_ptr), Some(p));
            // Back into the emptied source.
            let data = take(lua, 4);
            restore(lua, 3, data);
            assert_eq!(super::super::with_bytes(lua, 3, <[u8]>::as_ptr), Some(p));
            // Not into a memory that holds something again.
            restore(lua, 3, Bytes::copy_from(b"other").unwrap());
            assert_eq!(
                super::super::with_bytes(lua, 3, <[u8]>::to_vec).as_deref(),
                Some(&b"contents"[..])
            );
        });
    }
}
