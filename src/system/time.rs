//! `system.nanosecs`, `time`, `suspend`: clocks and timers.

use std::time::Duration;

use crate::lua::awaiting::{self, Await, Kind};
use crate::lua::{Error, Lua, Reg, Ret, fail};
use crate::runtime::{self, Outcome, Wait};
use crate::system::sys_loop;
use crate::{afn, cfn};

pub const FUNCTIONS: &[Reg] = &[
    (c"nanosecs", cfn!(nanosecs)),
    (c"time", cfn!(time)),
    (c"suspend", afn!(suspend)),
];

/// ns = system.nanosecs()
fn nanosecs(lua: Lua) -> Ret {
    lua.push_integer(runtime::monotonic_ns() as i64);
    Ok(1)
}

/// secs = system.time([mode])
fn time(lua: Lua) -> Ret {
    let sl = sys_loop(&lua);
    match lua.arg_option(1, &["cached", "updated", "epoch"], Some(0))? {
        k @ (0 | 1) => {
            if k == 1 {
                sl.update_time();
            }
            // Millisecond precision, like the loop's timers.
            lua.push_number((sl.now_ns() / 1_000_000) as f64 / 1e3);
            Ok(1)
        }
        _ => match runtime::epoch_secs() {
            Ok(secs) => {
                lua.push_number(secs);
                Ok(1)
            }
            Err(e) => Ok(fail::push_io(lua, &e)),
        },
    }
}

/// true = system.suspend([seconds [, mode]])
fn suspend(lua: Lua) -> Result<Await, Error> {
    if lua.top() == 0 {
        // The common `suspend()`: no argument to parse.
        awaiting::require_coroutine(lua)?;
        return Ok(Await::Yield(awaiting::wait(
            lua,
            sys_loop(&lua),
            Kind::Idle,
            Wait::Idle,
            deliver_true,
        )?));
    }
    let secs = lua.opt_number(1)?.unwrap_or(0.0);
    let blocking = parse_mode(lua, 2)?;
    let ms = secs * 1000.0;
    let limit = if blocking {
        4294967295.0
    } else {
        18446744073709551615.0
    };
    // NaN is out of range too.
    if ms.is_nan() || ms > limit {
        return Err(Error::arg(1, "out of range"));
    }
    let ms = if ms > 0.0 { ms as u64 } else { 0 };
    if blocking {
        if ms > 0 {
            std::thread::sleep(Duration::from_millis(ms));
        }
        lua.push_bool(true);
        return Ok(Await::Done(1));
    }
    awaiting::require_coroutine(lua)?;
    let (kind, wait) = if ms == 0 {
        (Kind::Idle, Wait::Idle)
    } else {
        (Kind::Timer, Wait::Timer(ms))
    };
    let id = awaiting::wait(lua, sys_loop(&lua), kind, wait, deliver_true)?;
    Ok(Await::Yield(id))
}

fn deliver_true(co: Lua, _: Option<Outcome>) -> std::ffi::c_int {
    co.push_bool(true);
    1
}

/// Parses a mode string that may only contain `~`; true when it does.
fn parse_mode(lua: Lua, arg: std::ffi::c_int) -> Result<bool, Error> {
    let mode = lua.opt_bytes(arg)?.unwrap_or(b"");
    match mode.iter().find(|&&c| c != b'~') {
        Some(&c) => Err(Error::mode_char(arg, c)),
        None => Ok(!mode.is_empty()),
    }
}
