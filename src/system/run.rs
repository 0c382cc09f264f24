//! `system.run`, `isrunning`, `halt`, `printall`: driving the loop.
//!
//! The driver (`runtime::driver`) owns the iteration and its order; this
//! file is its host (deliveries resume coroutines, pool tasks park) and
//! repeats iterations as `run`'s mode says.

use std::time::Duration;

use crate::cfn;
use crate::lua::awaiting::{self, Await, SysLoop, Waiter};
use crate::lua::{Error, KContext, Lua, Reg, Ret};
use crate::runtime::OpId;
use crate::runtime::driver::{Host, Mode};
use crate::system::sys_loop;

pub const FUNCTIONS: &[Reg] = &[
    (c"run", crate::afn!(run)),
    (c"isrunning", cfn!(isrunning)),
    (c"halt", cfn!(halt)),
    (c"printall", cfn!(printall)),
];

/// pending = system.run([mode])
fn run(lua: Lua) -> Result<Await, Error> {
    let mode = [Mode::Loop, Mode::Step, Mode::Ready]
        [lua.arg_option(1, &["loop", "step", "ready"], Some(0))?];
    let sl = sys_loop(&lua);
    if !sl.start() {
        return Err(Error::msg("already running"));
    }
    proceed(lua, sl, mode)
}

/// Drives the loop until `run` returns, or until a pool task parks: then
/// the task's coroutine yields (releasing its system thread) and `run_k`
/// goes on when the pool resumes it (see `awaiting::park`).
fn proceed(lua: Lua, sl: &SysLoop, mode: Mode) -> Result<Await, Error> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drive(lua, sl, mode)));
    if let Ok(Ok(Driven::Parked)) = outcome {
        return Ok(Await::Keep(OpId::from_bits(0), 0, crate::kfn!(run_k)));
    }
    let pending = sl.stop();
    match outcome {
        Ok(Ok(_)) => {
            lua.push_bool(pending);
            Ok(Await::Done(1))
        }
        Ok(Err(e)) => Err(Error::msg(format!(
            "system.run: {}",
            crate::lua::fail::text(crate::lua::fail::code_of(&e))
        ))),
        Err(_) => Err(Error::msg("internal error in coutil (panic)")),
    }
}

/// `run` continued after its pool task was parked (only mode `"loop"`).
fn run_k(lua: Lua, _ctx: KContext) -> Result<Await, Error> {
    lua.set_top(0);
    proceed(lua, sys_loop(&lua), Mode::Loop)
}

enum Driven {
    Returned,
    Parked,
}

fn drive(lua: Lua, sl: &SysLoop, mode: Mode) -> std::io::Result<Driven> {
    let mut host = Runner { lua, sl };
    loop {
        if !awaiting::has_work(sl) {
            return Ok(Driven::Returned);
        }
        if sl.iterate(mode, &mut host)? {
            return Ok(Driven::Parked);
        }
        if mode != Mode::Loop || sl.is_halted() || !awaiting::has_work(sl) {
            return Ok(Driven::Returned);
        }
    }
}

/// The Lua side of an iteration: deliveries resume coroutines.
struct Runner<'a> {
    lua: Lua,
    sl: &'a SysLoop,
}

impl Host<Waiter> for Runner<'_> {
    fn deliver(&mut self, id: OpId) {
        awaiting::deliver(self.lua, self.sl, id);
    }

    /// Only awaitch calls pending in a pool task: release the thread
    /// rather than block in the poll.
    fn park(&mut self, active: usize) -> bool {
        awaiting::park(self.lua, active)
    }

    fn sweep(&mut self, timeout: &mut Option<Duration>) {
        awaiting::drop_closed(self.lua, self.sl, timeout);
    }

    fn closing(&mut self, waiters: Vec<Waiter>) {
        awaiting::close_pending(self.lua, self.sl, waiters);
    }
}

/// running = system.isrunning()
fn isrunning(lua: Lua) -> Ret {
    lua.push_bool(sys_loop(&lua).is_running());
    Ok(1)
}

/// system.halt()
fn halt(lua: Lua) -> Ret {
    if !sys_loop(&lua).halt() {
        return Err(Error::msg("not running"));
    }
    Ok(0)
}

/// system.printall()
fn printall(lua: Lua) -> Ret {
    let sl = sys_loop(&lua);
    eprintln!(
        "[coutil] loop: {} pending operation(s), running: {}",
        sl.active(),
        sl.is_running()
    );
    Ok(0)
}
