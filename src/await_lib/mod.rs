//! `coutil.await` (issue 15): deadlines on any await (`within`), the first
//! or all of several activities (`any`, `all`), buffered readers over
//! streams (`reader`) and a view of what waits (`stats`). The module is a
//! Lua chunk (`src/lua/coutil/await.lua`) called with the functions of
//! this directory as its argument.

mod reader;

use std::ffi::c_int;

use crate::lua::awaiting::{self, Await, Kind};
use crate::lua::{Error, LUA_TFUNCTION, LUA_TNUMBER, LUA_YIELD, Lua, Reg, Ret, Stopped};
use crate::runtime::{OpId, Outcome, Wait};
use crate::{afn, cfn};

pub const CHUNK: &str = include_str!("../lua/coutil/await.lua");

pub const NATIVES: &[Reg] = &[
    (c"stop", cfn!(stop)),
    (c"stopnext", cfn!(stopnext)),
    (c"sleep", afn!(sleep)),
    (c"hold", cfn!(hold)),
    (c"enter", cfn!(enter)),
    (c"stats", cfn!(stats)),
    (c"waiting", cfn!(waiting)),
    (c"reader", cfn!(reader::reader)),
];

/// stats(): `{ waiting = { <kind> = n, ... }, objects = { <class> = n,
/// ... }, iterations = n }` for this state (see `awaiting::Kind` and
/// `lua::tally`); counters kept as operations are armed and delivered and
/// objects opened and closed, nothing scanned.
fn stats(lua: Lua) -> Ret {
    let sl = awaiting::state_loop(&lua);
    lua.new_table(0, 3);
    let open = sl.tallies().open();
    lua.new_table(0, open.len() as c_int);
    for (name, n) in open {
        lua.push_integer(n);
        lua.set_field(-2, name);
    }
    lua.set_field(-2, c"objects");
    lua.new_table(0, Kind::REPORTED.len() as c_int);
    for kind in Kind::REPORTED {
        lua.push_integer(i64::from(sl.waiting(kind)));
        lua.set_field(-2, kind.name());
    }
    lua.set_field(-2, c"waiting");
    lua.push_integer(sl.iterations() as i64);
    lua.set_field(-2, c"iterations");
    Ok(1)
}

/// waiting(): `{ co1, kind1, co2, kind2, ... }`, the coroutines waiting in
/// loop operations now and what for (scanned on each call).
fn waiting(lua: Lua) -> Ret {
    let waiters = awaiting::state_loop(&lua).waiters();
    lua.new_table(2 * waiters.len() as c_int, 0);
    for (n, (key, kind)) in waiters.into_iter().enumerate() {
        lua.push_reference(key);
        lua.raw_set_index(-2, 2 * n as i64 + 1);
        lua.push_str(kind.name());
        lua.raw_set_index(-2, 2 * n as i64 + 2);
    }
    Ok(1)
}

/// e = enter(seconds, f, mt): `within`'s common case in one call. With a
/// finite non-negative number of seconds and a function, in a coroutine:
/// a new deadline entry `{ running coroutine, deadline, false, false,
/// false }` with metatable `mt`, the deadline in loop time as
/// `system.time()` gives it. Otherwise nothing, and `within` checks its
/// arguments itself.
fn enter(lua: Lua) -> Ret {
    if lua.type_of(1) != LUA_TNUMBER || lua.type_of(2) != LUA_TFUNCTION || !lua.is_yieldable() {
        return Ok(0);
    }
    let secs = lua.to_number(1).unwrap_or(f64::NAN);
    if !(0.0..f64::INFINITY).contains(&secs) {
        return Ok(0);
    }
    // As `system.time()`: milliseconds of the cached loop time.
    let now = (awaiting::state_loop(&lua).now_ns() / 1_000_000) as f64 / 1e3;
    let spare = lua.raw_len(4);
    if spare > 0 {
        lua.raw_get_index(4, spare as i64);
        lua.push_nil();
        lua.raw_set_index(4, spare as i64);
        lua.push_thread();
        lua.raw_set_index(-2, 1);
        lua.push_number(now + secs);
        lua.raw_set_index(-2, 2);
        return Ok(1);
    }
    lua.new_table(5, 0);
    lua.push_thread();
    lua.raw_set_index(-2, 1);
    lua.push_number(now + secs);
    lua.raw_set_index(-2, 2);
    for i in 3..=5 {
        lua.push_bool(false);
        lua.raw_set_index(-2, i);
    }
    lua.push_value(3);
    lua.set_metatable(-2);
    Ok(1)
}

/// sleep(seconds, cell, strong): like `system.suspend(seconds)` (loop
/// time), returning nothing; the keeper of `within`'s deadlines waits so.
/// The timer keeps `system.run` going only if `strong` (deadlines are
/// pending); `hold` changes that while it waits, through the operation id
/// stored in `cell[1]`.
fn sleep(lua: Lua) -> Result<Await, Error> {
    awaiting::require_coroutine(lua)?;
    // `as` saturates, and makes NaN 0.
    let ms = (lua.arg_number(1)? * 1000.0) as u64;
    let strong = lua.to_boolean(3);
    let sl = awaiting::state_loop(&lua);
    let wait = if ms == 0 { Wait::Idle } else { Wait::Timer(ms) };
    let id = awaiting::wait(lua, sl, awaiting::Kind::Hidden, wait, deliver_nothing)?;
    sl.set_weak(id, !strong);
    lua.push_integer(id.to_bits() as i64);
    lua.raw_set_index(2, 1);
    Ok(Await::Yield(id))
}

/// hold(cell, strong): whether the keeper's timer (see `sleep`) keeps
/// `system.run` going; nothing if it does not wait any more.
fn hold(lua: Lua) -> Ret {
    lua.raw_get_index(1, 1);
    if let Some(bits) = lua.to_integer(-1) {
        awaiting::state_loop(&lua).set_weak(OpId::from_bits(bits as u64), !lua.to_boolean(2));
    }
    Ok(0)
}

fn deliver_nothing(_: Lua, _: Option<Outcome>) -> c_int {
    0
}

/// stop(co): resumes `co`, suspended in an await function, so that the
/// await is cancelled as by an explicit resume, and suspends it again
/// before it runs any Lua code (see `lua::stop`). Returns `true` when `co`
/// is left suspended, `false` when it ended (or raised) meanwhile.
fn stop(lua: Lua) -> Ret {
    let Some(co) = lua.to_thread(1) else {
        return Err(Error::Type(1, c"coroutine"));
    };
    if co.status() != LUA_YIELD || co.raw() == lua.raw() {
        return Err(Error::arg(1, "suspended coroutine expected"));
    }
    lua.push_bool(lua.resume_to_lua(co) == Stopped::Suspended);
    Ok(1)
}

/// stopnext(co): `co`, which is resuming others, yields before its next
/// Lua instruction (see `lua::stop`), to be closed then.
fn stopnext(lua: Lua) -> Ret {
    match lua.to_thread(1) {
        Some(co) => co.stop_next(),
        None => return Err(Error::Type(1, c"coroutine")),
    }
    Ok(0)
}
