//! `coutil.channel` and `system.awaitch` (spec threads.md §3).
//!
//! A channel object is a name plus the domain of its state; all matching
//! happens in [`super::matcher`]. An `awaitch` that must wait arms an
//! `External` operation of its state's loop and queues a waiter whose wake
//! closure completes that operation through a [`Remote`], from whatever
//! thread matches it; the coroutine is then resumed by its own state's
//! `system.run`, which pushes the peer's values.
//!
//! A waiting `awaitch` keeps a to-be-closed *guard* on its stack (one per
//! channel object, reused): a coroutine closed with `coroutine.close`
//! while it waits closes the guard, which takes its waiter out of the
//! channel at once, so no later peer matches it and the channel is no
//! longer in use.
//!
//! Values are transferred when the call is made, so memories and state
//! coroutines among them move then (spec seed-todo.md E4). When the
//! exchange does not happen after all (`sync` finds no peer, an
//! `awaitch` stops waiting unmatched), they are given back to their
//! objects: a waiting `awaitch` keeps those objects in a registry table.

use std::ffi::c_int;
use std::sync::atomic::Ordering;

use super::matcher::{self, Endpoint, Exchanged, Pending};
use super::park;
use super::transfer::{self, Value};
use crate::lua::awaiting::{self, Await, Resumed};
use crate::lua::class::{self, Class, Object};
use crate::lua::{Error, Lua, Reg, Ret, ffi};
use crate::runtime::{OpId, Outcome, Remote, Wait};
use crate::system::sys_loop;
use crate::{afn, cfn, kfn};

pub struct Channel {
    domain: matcher::Domain,
    name: Box<[u8]>,
    /// This object's pending `awaitch`, until its coroutine resumes.
    waiting: Option<Waiting>,
}

#[derive(Clone, Copy)]
struct Waiting {
    /// The waiter's key in the matcher.
    key: u64,
    /// The loop operation of the waiting coroutine.
    op: OpId,
    /// Registry reference to a table of the objects whose contents the
    /// waiter's values moved (by position), or `LUA_NOREF`.
    sources: c_int,
}

/// The to-be-closed value of a waiting `awaitch` (user value: its channel).
struct Guard;

// One C function per Lua function, shared by the module table and the
// metatable, so that error messages find its name in `package.loaded`.
const CLOSE_FN: ffi::lua_CFunction = cfn!(close);
const GETNAME_FN: ffi::lua_CFunction = cfn!(getname);
const SYNC_FN: ffi::lua_CFunction = cfn!(sync);
const CREATE_FN: ffi::lua_CFunction = cfn!(create);
const GETNAMES_FN: ffi::lua_CFunction = cfn!(getnames);

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

/// Functions added to `coutil.system`.
pub const SYSTEM: &[Reg] = &[(c"awaitch", afn!(awaitch))];

impl Object for Channel {
    const CLASS: &'static Class = &Class {
        name: c"coutil:channel",
        methods: METHODS,
        meta: &[(c"__close", CLOSE_FN)],
    };

    crate::class_key!();
}

impl Object for Guard {
    const CLASS: &'static Class = &Class {
        name: c"coutil:awaitguard",
        methods: &[],
        meta: &[(c"__close", cfn!(guard_close))],
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

/// The open channel at `i`.
fn check<'a>(lua: Lua, i: c_int) -> Result<&'a mut Channel, Error> {
    class::check::<Channel>(lua, i)?
        .as_mut()
        .ok_or_else(|| Error::msg("closed channel"))
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
    let slot = class::check::<Channel>(lua, 1)?;
    match slot.as_ref().map(|ch| ch.waiting.is_some()) {
        Some(true) => Err(Error::msg("in use")),
        Some(false) => {
            drop(slot.take());
            lua.push_bool(true);
            Ok(1)
        }
        None => {
            lua.push_bool(false);
            Ok(1)
        }
    }
}

/// name = channel.getname(ch)
fn getname(lua: Lua) -> Ret {
    let ch = check(lua, 1)?;
    lua.push_bytes(&ch.name);
    Ok(1)
}

/// names = channel.getnames([names])
fn getnames(lua: Lua) -> Ret {
    let domain = super::domain_of(lua);
    let l = lua.raw();
    if lua.is_none_or_nil(1) {
        let names = matcher::names(domain);
        // SAFETY: plain table operations on a new table at the top.
        unsafe {
            ffi::lua_createtable(l, 0, names.len() as c_int);
            for name in &names {
                lua.push_bytes(name);
                lua.push_bool(true);
                ffi::lua_rawset(l, -3);
            }
        }
        return Ok(1);
    }
    if lua.type_of(1) != ffi::LUA_TTABLE {
        return Err(Error::Type(1, c"table"));
    }
    lua.set_top(1);
    let mut keys = Vec::new();
    // SAFETY: a raw traversal of the table at 1 (lua_next on raw keys
    // never raises); keys are copied, the table is changed afterwards.
    unsafe {
        lua.push_nil();
        while ffi::lua_next(l, 1) != 0 {
            ffi::lua_pop(l, 1);
            if lua.type_of(-1) == ffi::LUA_TSTRING {
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
            ffi::lua_rawset(l, 1);
        }
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
            transfer::type_name(lua, i)
        )
        .into_bytes()),
    }
}

/// The checks shared by `sync` and `awaitch`: the channel, endpoint and
/// values (from #3).
fn validate<'a>(lua: Lua) -> Result<(&'a mut Channel, Endpoint, Vec<Value>), Error> {
    let ch = check(lua, 1)?;
    let ep = endpoint(lua, 2, 2).map_err(|text| Error::Msg(text.into()))?;
    let values = transfer::take_or_message(lua, 3, "argument", 3).map_err(Error::msg)?;
    Ok((ch, ep, values))
}

/// Pushes `true` and the peer's values; returns how many.
fn push_matched(lua: Lua, values: Vec<Value>) -> Result<c_int, Error> {
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
    let (ch, ep, values) = validate(lua)?;
    match matcher::exchange(ch.domain, &ch.name, ep, values, None) {
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

/// true, ... = system.awaitch(ch, endpoint, ...)
fn awaitch(lua: Lua) -> Result<Await, Error> {
    awaiting::require_coroutine(lua)?;
    let (ch, ep, values) = validate(lua)?;
    if ch.waiting.is_some() {
        transfer::restore(lua, 3, values);
        return Err(Error::msg("in use"));
    }
    let values = match matcher::exchange(ch.domain, &ch.name, ep, values, None) {
        Exchanged::Matched(peer) => return push_matched(lua, peer).map(Await::Done),
        Exchanged::Empty(values) => values,
        Exchanged::Queued => unreachable!("nothing was given to queue"),
    };
    let sl = sys_loop(lua);
    let id = match awaiting::wait(lua, sl, Wait::External, deliver) {
        Ok(id) => id,
        Err(e) => {
            transfer::restore(lua, 3, values);
            return Err(e);
        }
    };
    let remote = sl.ops.borrow_mut().remote(id);
    let remote: Remote = match remote {
        Ok(remote) => remote,
        Err(e) => {
            // Not waiting after all: the failure is the result.
            awaiting::abandon(lua, id);
            transfer::restore(lua, 3, values);
            return Err(Error::io(&e));
        }
    };
    let sources = keep_sources(lua, &values);
    let key = matcher::next_key();
    // In a pool task, a match also ends the parking of its `system.run`.
    let park = park::park_arc(lua);
    if let Some(p) = &park {
        p.awaiting.fetch_add(1, Ordering::Relaxed);
    }
    let pending = Pending {
        key,
        counted: false,
        wake: Box::new(move |peer: Vec<Value>| {
            remote.complete(Box::new(peer));
            park.and_then(|p| p.notify())
        }),
    };
    // A peer that came meanwhile wakes us at once, through the loop.
    matcher::exchange(ch.domain, &ch.name, ep, values, Some(pending));
    ch.waiting = Some(Waiting {
        key,
        op: id,
        sources,
    });
    super::push_guard(lua, || Guard);
    Ok(Await::Keep(id, 2, kfn!(awaitch_k)))
}

/// Ends the wait of the channel's pending `awaitch` for its coroutine:
/// a task's count of armed waits; if the coroutine did not get a peer,
/// its waiter leaves the channel.
fn end_wait(lua: Lua, ch: &mut Channel, matched: bool) -> Option<Waiting> {
    let waiting = ch.waiting.take()?;
    if let Some(p) = park::park_ref(lua) {
        p.awaiting.fetch_sub(1, Ordering::Relaxed);
    }
    let removed = match matched {
        true => None,
        false => matcher::remove(ch.domain, &ch.name, waiting.key),
    };
    give_back(lua, waiting.sources, removed.map(|(_, values)| values));
    Some(waiting)
}

/// A registry table of the objects at 3.. whose contents `values` moved,
/// by position (from 1), or `LUA_NOREF` if nothing moved.
fn keep_sources(lua: Lua, values: &[Value]) -> c_int {
    if !values.iter().any(Value::moves) {
        return ffi::LUA_NOREF;
    }
    let l = lua.raw();
    // SAFETY: a new table filled with stack values, then referenced from
    // the registry; the caller's stack has room for 2 more values.
    unsafe {
        ffi::lua_createtable(l, values.len() as c_int, 0);
        for (k, v) in values.iter().enumerate() {
            if v.moves() {
                ffi::lua_pushvalue(l, 3 + k as c_int);
                ffi::lua_rawseti(l, -2, k as ffi::lua_Integer + 1);
            }
        }
        ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX)
    }
}

/// Gives the moved objects of `values` (not exchanged, if any) back to
/// the objects kept in `sources` (see [`keep_sources`]), and drops that
/// table.
fn give_back(lua: Lua, sources: c_int, values: Option<Vec<Value>>) {
    if sources == ffi::LUA_NOREF {
        return;
    }
    let l = lua.raw();
    // SAFETY: reads the registry table made by `keep_sources`; 2 stack
    // slots are used and popped.
    unsafe {
        if let Some(values) = values {
            ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, sources.into());
            for (k, v) in values.into_iter().enumerate() {
                if v.moves() {
                    ffi::lua_rawgeti(l, -1, k as ffi::lua_Integer + 1);
                    transfer::restore_one(lua, lua.top(), v);
                    ffi::lua_pop(l, 1);
                }
            }
            ffi::lua_pop(l, 1);
        }
        ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, sources);
    }
}

fn awaitch_k(lua: Lua, ctx: ffi::lua_KContext) -> Result<Await, Error> {
    let resumed = awaiting::resumed(lua, 2, ctx);
    let matched = matches!(resumed, Resumed::Loop);
    if let Some(ch) = class::test::<Channel>(lua, 1).and_then(|slot| slot.as_mut()) {
        end_wait(lua, ch, matched);
    }
    match resumed {
        // [ch, guard, token, results...]
        Resumed::Loop => Ok(Await::Done(lua.top() - 3)),
        Resumed::User(n) => Ok(Await::Done(n)),
    }
}

/// `__close` of the guard: only has work when the coroutine is closed
/// while it waits (a resumed `awaitch` ended its wait already).
fn guard_close(lua: Lua) -> Ret {
    let Some(at) = super::guarded::<Guard>(lua) else {
        return Ok(0);
    };
    if let Some(ch) = class::test::<Channel>(lua, at).and_then(|slot| slot.as_mut())
        && let Some(waiting) = end_wait(lua, ch, false)
    {
        awaiting::abandon(lua, waiting.op);
    }
    Ok(0)
}

fn deliver(co: Lua, outcome: Option<Outcome>) -> c_int {
    let peer = outcome.and_then(|o| o.downcast::<Vec<Value>>().ok());
    match peer {
        Some(values) if co.check_stack(values.len() as c_int + 2).is_ok() => {
            let n = 1 + values.len() as c_int;
            co.push_bool(true);
            transfer::push_unchecked(co, *values);
            n
        }
        Some(_) => {
            co.push_bool(false);
            co.push_bytes(b"too many values");
            2
        }
        None => {
            co.push_bool(false);
            co.push_bytes(b"closed channel");
            2
        }
    }
}
