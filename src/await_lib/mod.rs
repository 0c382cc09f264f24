//! `coutil.await` (issue 15): deadlines on any await (`within`), the first
//! or all of several activities (`any`, `all`), buffered readers over
//! streams (`reader`) and a view of what waits (`stats`). The module is a
//! Lua chunk (`src/lua/coutil/await.lua`) called with the functions of
//! this directory as its argument.

mod reader;

use crate::cfn;
use crate::lua::{Error, Lua, Reg, Ret, Stopped};

pub const CHUNK: &str = include_str!("../lua/coutil/await.lua");

pub const NATIVES: &[Reg] = &[
    (c"stop", cfn!(stop)),
    (c"stopnext", cfn!(stopnext)),
    (c"reader", cfn!(reader::reader)),
];

/// stop(co): resumes `co`, suspended in an await function, so that the
/// await is cancelled as by an explicit resume, and suspends it again
/// before it runs any Lua code (see `lua::stop`). Returns `true` when `co`
/// is left suspended, `false` when it ended (or raised) meanwhile.
fn stop(lua: Lua) -> Ret {
    let Some(co) = lua.to_thread(1) else {
        return Err(Error::Type(1, c"coroutine"));
    };
    if !co.is_yielded() || co.raw() == lua.raw() {
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
