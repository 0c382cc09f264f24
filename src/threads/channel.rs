//! `coutil.channel` (spec threads.md §3): channel objects and `sync`;
//! `system.awaitch` is in [`super::awaitch`].
//!
//! A channel object is a name plus the domain of its state; all matching
//! happens in [`super::matcher`].
//!
//! Values are transferred when the call is made, so memories and state
//! coroutines among them move then (spec seed-todo.md E4); when `sync`
//! finds no peer, they are given back to their objects.

use std::ffi::c_int;

use super::awaitch::Waiting;
use super::matcher::{self, Endpoint, Exchanged};
use super::transfer::{self, Value};
use crate::cfn;
use crate::lua::class::{self, Class, Object};
use crate::lua::{Error, Lua, Reg, Ret};

pub struct Channel {
    pub(super) domain: matcher::Domain,
    pub(super) name: Box<[u8]>,
    /// This object's pending `awaitch`, until its coroutine resumes.
    pub(super) waiting: Option<Waiting>,
}

// One C function per Lua function, shared by the module table and the
// metatable, so that error messages find its name in `package.loaded`.
const CLOSE_FN: crate::lua::CFunction = cfn!(close);
const GETNAME_FN: crate::lua::CFunction = cfn!(getname);
const SYNC_FN: crate::lua::CFunction = cfn!(sync);
const CREATE_FN: crate::lua::CFunction = cfn!(create);
const GETNAMES_FN: crate::lua::CFunction = cfn!(getnames);

const METHODS: &[Reg] = &[
    (c"close", CLOSE_FN),
    (c"getname", GETNAME_FN),
    (c"sync", SYNC_FN),
];

const FUNCTIONS: &[Reg] = &[
    (c"create", CREATE_FN),
    (c"close", CLOSE_FN),
    (c"getname", GETNAME_FN),
    (c"getnames", GETNAMES_FN),
    (c"sync", SYNC_FN),
];

impl Object for Channel {
    const CLASS: &'static Class = &Class {
        name: c"coutil:channel",
        methods: METHODS,
        meta: &[(c"__close", CLOSE_FN)],
    };

    crate::class_key!();
}

impl Drop for Channel {
    fn drop(&mut self) {
        // Removed waiters are dropped after the matcher's lock is released.
        let key = self.waiting.map(|w| w.key);
        drop(matcher::release(self.domain, &self.name, key));
    }
}

/// `require "coutil.channel"`: the module table.
pub fn open(lua: Lua) -> c_int {
    lua.push_functions(FUNCTIONS, false);
    1
}

/// Runs `f` on the open channel at `i`.
fn with_open<R>(lua: Lua, i: c_int, f: impl FnOnce(&mut Channel) -> R + Send) -> Result<R, Error> {
    class::with_checked::<Channel, _>(lua, i, |slot| slot.as_mut().map(f))?
        .ok_or_else(|| Error::msg("closed channel"))
}

/// Runs `f` on the channel at 1, found open by [`validate`] in the same
/// call (nothing since could run Lua code to close it).
pub(super) fn with_validated<R>(lua: Lua, f: impl FnOnce(&mut Channel) -> R + Send) -> R {
    let found = class::with::<Channel, _>(lua, 1, |slot| slot.as_mut().map(f));
    found.flatten().expect("a channel checked by `validate`")
}

/// ch = channel.create(name)
fn create(lua: Lua) -> Ret {
    let name: Box<[u8]> = lua.arg_bytes(1)?.into();
    let domain = super::domain_of(lua);
    matcher::retain(domain, &name);
    class::push(
        lua,
        Channel {
            domain,
            name,
            waiting: None,
        },
    );
    Ok(1)
}

/// closed = channel.close(ch)
fn close(lua: Lua) -> Ret {
    // The channel is dropped after the borrow (its `Drop` ends its waits).
    let taken = class::with_checked::<Channel, _>(lua, 1, |slot| match slot {
        Some(ch) if ch.waiting.is_some() => Err(()),
        _ => Ok(slot.take()),
    })?;
    match taken {
        Err(()) => Err(Error::msg("in use")),
        Ok(Some(ch)) => {
            drop(ch);
            lua.push_bool(true);
            Ok(1)
        }
        Ok(None) => {
            lua.push_bool(false);
            Ok(1)
        }
    }
}

/// name = channel.getname(ch)
fn getname(lua: Lua) -> Ret {
    let name = with_open(lua, 1, |ch| ch.name.clone())?;
    lua.push_bytes(&name);
    Ok(1)
}

/// names = channel.getnames([names])
fn getnames(lua: Lua) -> Ret {
    let domain = super::domain_of(lua);
    if lua.is_none_or_nil(1) {
        let names = matcher::names(domain);
        lua.new_table(0, names.len() as c_int);
        for name in &names {
            lua.push_bytes(name);
            lua.push_bool(true);
            lua.raw_set(-3);
        }
        return Ok(1);
    }
    if lua.type_of(1) != crate::lua::LUA_TTABLE {
        return Err(Error::Type(1, c"table"));
    }
    lua.set_top(1);
    let mut keys = Vec::new();
    // A raw traversal of the table at 1 (`next` on raw keys never
    // raises); keys are copied, the table is changed afterwards.
    lua.push_nil();
    while lua.next(1) {
        lua.pop(1);
        if lua.type_of(-1) == crate::lua::LUA_TSTRING {
            keys.push(lua.to_bytes(-1).unwrap_or_default().to_vec());
        }
    }
    for key in &keys {
        lua.push_bytes(key);
        if matcher::exists(domain, key) {
            lua.push_bool(true);
        } else {
            lua.push_nil();
        }
        lua.raw_set(1);
    }
    Ok(1)
}

/// The endpoint at `i` (`nil`/`"any"`, `"in"`, `"out"`), or the message of
/// a bad one, `bad argument #2 (invalid option '<x>')` (no function name).
pub fn endpoint(lua: Lua, i: c_int, n: c_int) -> Result<Endpoint, Vec<u8>> {
    if lua.is_none_or_nil(i) {
        return Ok(Endpoint::Any);
    }
    match lua.to_bytes(i) {
        Some(b"any") => Ok(Endpoint::Any),
        Some(b"in") => Ok(Endpoint::In),
        Some(b"out") => Ok(Endpoint::Out),
        Some(other) => {
            let mut text = format!("bad argument #{n} (invalid option '").into_bytes();
            text.extend_from_slice(other);
            text.extend_from_slice(b"')");
            Err(text)
        }
        None => Err(format!(
            "bad argument #{n} (string expected, got {})",
            lua.type_name(i)
        )
        .into_bytes()),
    }
}

/// The checks shared by `sync` and `awaitch`: the channel (open, then
/// reached with [`with_validated`]), endpoint and values (from #3).
pub(super) fn validate(lua: Lua) -> Result<(Endpoint, Vec<Value>), Error> {
    with_open(lua, 1, |_| ())?;
    let ep = endpoint(lua, 2, 2).map_err(|text| Error::Msg(text.into()))?;
    let values = transfer::take_or_message(lua, 3, "argument", 3).map_err(Error::msg)?;
    Ok((ep, values))
}

/// Pushes `true` and the peer's values; returns how many.
pub(super) fn push_matched(lua: Lua, values: Vec<Value>) -> Result<c_int, Error> {
    let n = 1 + values.len() as c_int;
    lua.push_bool(true);
    transfer::push(lua, values)?;
    Ok(n)
}

/// true, ... | false, "empty" = channel.sync(ch [, endpoint, ...])
///
/// NOTE: no `in use` check (spec behaviour-rules R6): a sync may match the
/// coroutine waiting in `awaitch` on this very object, the usual way to
/// wake it from the loop. Its `waiting` stays set until that coroutine
/// resumes (the continuation ends the wait as matched), so the object
/// stays in use for `awaitch` and `close` until then.
fn sync(lua: Lua) -> Ret {
    let (ep, values) = validate(lua)?;
    let exchanged = with_validated(lua, |ch| {
        matcher::exchange(ch.domain, &ch.name, ep, values, None)
    });
    match exchanged {
        Exchanged::Matched(peer) => push_matched(lua, peer),
        Exchanged::Empty(values) => {
            transfer::restore(lua, 3, values);
            lua.push_bool(false);
            lua.push_bytes(b"empty");
            Ok(2)
        }
        Exchanged::Queued => unreachable!("nothing was given to queue"),
    }
}
