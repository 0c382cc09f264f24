//! `system.listdir`: a generic-`for` iterator over a directory's entries.
//!
//! The job reads the whole directory (like libuv's `scandir`), so
//! iterating never blocks and needs no descriptor. The iterator is a
//! callable `coutil:dirlist` object, also returned as the to-be-closed
//! value of the `for`; it is closed after its last entry or by `__close`,
//! and calling it then raises. Failures are raised, in both modes.

use std::ffi::c_int;

use super::path::start;
use super::sys;
use super::{Reply, arg_mode, arg_path, perform_raising};
use crate::cfn;
use crate::lua::awaiting::Await;
use crate::lua::class::{self, Class, Object};
use crate::lua::{Error, Lua, Ret};

struct DirList {
    entries: std::vec::IntoIter<(Vec<u8>, &'static str)>,
}

impl Object for DirList {
    const CLASS: &'static Class = &Class {
        name: c"coutil:dirlist",
        methods: &[],
        meta: &[(c"__call", cfn!(next)), (c"__close", cfn!(close))],
    };
}

struct Listed(Vec<(Vec<u8>, &'static str)>);

impl Reply for Listed {
    fn push(self: Box<Self>, lua: Lua) -> Result<c_int, Error> {
        class::push(
            lua,
            DirList {
                entries: self.0.into_iter(),
            },
        );
        lua.push_nil();
        lua.push_nil();
        lua.push_value(-3);
        Ok(4)
    }
}

/// iterator, nil, nil, closing = system.listdir(path [, mode])
pub fn listdir(lua: Lua) -> Result<Await, Error> {
    let (blocking, _) = arg_mode(&lua, 2, b"")?;
    start(lua, blocking)?;
    let path = arg_path(lua, 1)?;
    perform_raising(lua, blocking, move || {
        let entries = sys::read_dir(&sys::cpath(&path)?)?;
        Ok(Box::new(Listed(entries)) as Box<dyn Reply>)
    })
}

/// name, type = iterator(): the next entry; nothing after the last one,
/// which closes the list.
fn next(lua: Lua) -> Ret {
    let next = class::with_checked::<DirList, _>(lua, 1, |slot| {
        let list = slot.as_mut()?;
        let next = list.entries.next();
        if next.is_none() {
            *slot = None;
        }
        Some(next)
    })?;
    match next {
        None => Err(Error::msg("closed directory list")),
        Some(Some((name, kind))) => {
            lua.push_bytes(&name);
            lua.push_bytes(kind.as_bytes());
            Ok(2)
        }
        Some(None) => Ok(0),
    }
}

/// `__close`: releases the entries.
fn close(lua: Lua) -> Ret {
    let taken = class::with::<DirList, _>(lua, 1, Option::take);
    drop(taken);
    Ok(0)
}
