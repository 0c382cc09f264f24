//! `system.awaitch` (spec threads.md §3) on channel objects
//! ([`super::channel`]).
//!
//! An `awaitch` that must wait arms an `External` operation of its
//! state's loop and queues a waiter whose wake closure completes that
//! operation through a [`Remote`], from whatever thread matches it; the
//! coroutine is then resumed by its own state's `system.run`, which
//! pushes the peer's values.
//!
//! A waiting `awaitch` keeps a to-be-closed *guard* on its stack (one per
//! channel object, reused): a coroutine closed with `coroutine.close`
//! while it waits closes the guard, which takes its waiter out of the
//! channel at once, so no later peer matches it and the channel is no
//! longer in use.
//!
//! The values are transferred when the call is made, so memories and
//! state coroutines among them move then (spec seed-todo.md E4); if the
//! `awaitch` stops waiting unmatched, they are given back to their
//! objects, which it keeps in a registry table meanwhile.

use std::ffi::c_int;
use std::sync::atomic::Ordering;

use super::channel::{Channel, push_matched, validate, with_validated};
use super::matcher::{self, Exchanged, Pending};
use super::park;
use super::transfer::{self, Value};
use crate::lua::awaiting::sys_loop;
use crate::lua::awaiting::{self, Await, Resumed};
use crate::lua::class::{self, Class, Object};
use crate::lua::{Error, LUA_NOREF, Lua, Reg, Ret};
use crate::runtime::{OpId, Outcome, Remote, Wait};
use crate::{afn, cfn, kfn};

/// Functions added to `coutil.system`.
pub const SYSTEM: &[Reg] = &[(c"awaitch", afn!(awaitch))];

#[derive(Clone, Copy)]
pub(super) struct Waiting {
    /// The waiter's key in the matcher.
    pub(super) key: u64,
    /// The loop operation of the waiting coroutine.
    op: OpId,
    /// Registry reference to a table of the objects whose contents the
    /// waiter's values moved (by position), or `LUA_NOREF`.
    sources: c_int,
}

/// The to-be-closed value of a waiting `awaitch` (user value: its channel).
struct Guard;

impl Object for Guard {
    const CLASS: &'static Class = &Class {
        name: c"coutil:awaitguard",
        methods: &[],
        meta: &[(c"__close", cfn!(guard_close))],
    };

    crate::class_key!();
}

/// true, ... = system.awaitch(ch, endpoint, ...)
fn awaitch(lua: Lua) -> Result<Await, Error> {
    awaiting::require_coroutine(lua)?;
    let (ep, values) = validate(lua)?;
    if with_validated(lua, |ch| ch.waiting.is_some()) {
        transfer::restore(lua, 3, values);
        return Err(Error::msg("in use"));
    }
    let exchanged = with_validated(lua, |ch| {
        matcher::exchange(ch.domain, &ch.name, ep, values, None)
    });
    let values = match exchanged {
        Exchanged::Matched(peer) => return push_matched(lua, peer).map(Await::Done),
        Exchanged::Empty(values) => values,
        Exchanged::Queued => unreachable!("nothing was given to queue"),
    };
    let sl = sys_loop(&lua);
    let id = match awaiting::wait(lua, sl, awaiting::Kind::Channel, Wait::External, deliver) {
        Ok(id) => id,
        Err(e) => {
            transfer::restore(lua, 3, values);
            return Err(e);
        }
    };
    let remote = sl.remote(id);
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
    with_validated(lua, |ch| {
        matcher::exchange(ch.domain, &ch.name, ep, values, Some(pending));
        ch.waiting = Some(Waiting {
            key,
            op: id,
            sources,
        });
    });
    super::push_guard(lua, || Guard);
    Ok(Await::Keep(id, 2, kfn!(awaitch_k)))
}

/// Ends the wait of the channel's pending `awaitch` for its coroutine:
/// a task's count of armed waits; if the coroutine did not get a peer,
/// its waiter leaves the channel.
/// The channel is the object at `at`, if it is one and open.
fn end_wait(lua: Lua, at: c_int, matched: bool) -> Option<Waiting> {
    let park = park::park_ref(&lua);
    let (waiting, removed) = class::with::<Channel, _>(lua, at, |slot| {
        let ch = slot.as_mut()?;
        let waiting = ch.waiting.take()?;
        if let Some(p) = park {
            p.awaiting.fetch_sub(1, Ordering::Relaxed);
        }
        let removed = match matched {
            true => None,
            false => matcher::remove(ch.domain, &ch.name, waiting.key),
        };
        Some((waiting, removed))
    })??;
    give_back(lua, waiting.sources, removed.map(|(_, values)| values));
    Some(waiting)
}

/// A registry table of the objects at 3.. whose contents `values` moved,
/// by position (from 1), or `LUA_NOREF` if nothing moved.
fn keep_sources(lua: Lua, values: &[Value]) -> c_int {
    if !values.iter().any(Value::moves) {
        return LUA_NOREF;
    }
    // The caller's stack has room for 2 more values.
    lua.new_table(values.len() as c_int, 0);
    for (k, v) in values.iter().enumerate() {
        if v.moves() {
            lua.push_value(3 + k as c_int);
            lua.raw_set_index(-2, k as i64 + 1);
        }
    }
    lua.reference()
}

/// Gives the moved objects of `values` (not exchanged, if any) back to
/// the objects kept in `sources` (see [`keep_sources`]), and drops that
/// table.
fn give_back(lua: Lua, sources: c_int, values: Option<Vec<Value>>) {
    if sources == LUA_NOREF {
        return;
    }
    // The registry table made by `keep_sources`; 2 stack slots are used
    // and popped.
    if let Some(values) = values {
        lua.push_reference(sources);
        for (k, v) in values.into_iter().enumerate() {
            if v.moves() {
                lua.raw_get_index(-1, k as i64 + 1);
                transfer::restore_one(lua, lua.top(), v);
                lua.pop(1);
            }
        }
        lua.pop(1);
    }
    lua.unreference(sources);
}

fn awaitch_k(lua: Lua, ctx: crate::lua::KContext) -> Result<Await, Error> {
    let resumed = awaiting::resumed(lua, 2, ctx);
    let matched = matches!(resumed, Resumed::Loop);
    end_wait(lua, 1, matched);
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
    if let Some(waiting) = end_wait(lua, at, false) {
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
