//! `system.run`, `isrunning`, `halt`, `printall`: driving the loop.
//!
//! One call of [`iterate`] is one loop iteration in the order of
//! `runtime` (timers, idle pass, poll, ready operations, closing phase);
//! `run` repeats it according to its mode.

use std::time::Duration;

use crate::cfn;
use crate::lua::awaiting::{self, Await, SysLoop};
use crate::lua::{Error, Lua, Reg, Ret, ffi};
use crate::runtime::OpId;
use crate::system::sys_loop;

pub const FUNCTIONS: &[Reg] = &[
    (c"run", crate::afn!(run)),
    (c"isrunning", cfn!(isrunning)),
    (c"halt", cfn!(halt)),
    (c"printall", cfn!(printall)),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Loop,
    Step,
    Ready,
}

/// pending = system.run([mode])
fn run(lua: Lua) -> Result<Await, Error> {
    let mode = [Mode::Loop, Mode::Step, Mode::Ready]
        [lua.arg_option(1, &["loop", "step", "ready"], Some(0))?];
    let sl = sys_loop(lua);
    {
        let mut ops = sl.ops.borrow_mut();
        if ops.running {
            return Err(Error::msg("already running"));
        }
        ops.running = true;
        ops.halted = false;
    }
    proceed(lua, sl, mode)
}

/// Drives the loop until `run` returns, or until a pool task parks: then
/// the task's coroutine yields (releasing its system thread) and `run_k`
/// goes on when the pool resumes it (see `threads::park_run`).
fn proceed(lua: Lua, sl: &SysLoop, mode: Mode) -> Result<Await, Error> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drive(lua, sl, mode)));
    if let Ok(Ok(Driven::Parked)) = outcome {
        return Ok(Await::Keep(OpId::from_bits(0), 0, crate::kfn!(run_k)));
    }
    let mut ops = sl.ops.borrow_mut();
    ops.running = false;
    let pending = ops.active() > 0;
    drop(ops);
    match outcome {
        Ok(Ok(_)) => {
            lua.push_bool(pending);
            Ok(Await::Done(1))
        }
        Ok(Err(e)) => Err(Error::msg(format!("system.run: {e}"))),
        Err(_) => Err(Error::msg("internal error in coutil (panic)")),
    }
}

/// `run` continued after its pool task was parked (only mode `"loop"`).
fn run_k(lua: Lua, _ctx: ffi::lua_KContext) -> Result<Await, Error> {
    lua.set_top(0);
    proceed(lua, sys_loop(lua), Mode::Loop)
}

/// At most this many rounds of rechecks in one poll phase (libuv's
/// stream reading loop stops after 32 reads too).
const RECHECK_ROUNDS: usize = 32;

enum Driven {
    Returned,
    Parked,
}

fn drive(lua: Lua, sl: &SysLoop, mode: Mode) -> std::io::Result<Driven> {
    loop {
        if !awaiting::has_work(sl) {
            return Ok(Driven::Returned);
        }
        if iterate(lua, sl, mode)? {
            return Ok(Driven::Parked);
        }
        if mode != Mode::Loop || sl.ops.borrow().halted || !awaiting::has_work(sl) {
            return Ok(Driven::Returned);
        }
    }
}

/// One iteration; true if it stopped before the poll to park a pool task.
fn iterate(lua: Lua, sl: &SysLoop, mode: Mode) -> std::io::Result<bool> {
    sl.ops.borrow_mut().update_time();
    let mut resumed = run_timers(lua, sl);
    sl.ops.borrow_mut().begin_pending();
    loop {
        let next = sl.ops.borrow_mut().pop_pending();
        let Some(id) = next else { break };
        awaiting::deliver(lua, sl, id);
        resumed += 1;
    }
    sl.ops.borrow_mut().begin_idle();
    loop {
        let next = sl.ops.borrow_mut().pop_idle();
        let Some(id) = next else { break };
        awaiting::deliver(lua, sl, id);
        resumed += 1;
    }
    let mut timeout = match mode {
        Mode::Ready => Some(Duration::ZERO),
        Mode::Step if resumed > 0 => Some(Duration::ZERO),
        _ => sl.ops.borrow_mut().poll_timeout(),
    };
    if timeout.is_none() && mode == Mode::Loop {
        // Only awaitch calls pending in a pool task: release the thread
        // rather than block in the poll (the rest of this iteration has
        // nothing to do: nothing is ready and nothing is closing).
        let active = sl.ops.borrow().active();
        if crate::threads::park_run(lua, active) {
            return Ok(true);
        }
        timeout = sl.ops.borrow_mut().poll_timeout();
    }
    awaiting::drop_closed(lua, sl, &mut timeout);
    sl.ops.borrow_mut().poll(timeout)?;
    // The kernel's events, then the rechecks, in rounds: a coroutine
    // resumed here may ask for another (e.g. `accept` in a loop takes the
    // connections queued by the kernel one per round, as libuv's accept
    // loop does); rounds are bounded so that a stream always readable
    // cannot keep the loop in this phase.
    let mut rounds = 0;
    loop {
        loop {
            let next = sl.ops.borrow_mut().pop_ready();
            let Some(id) = next else { break };
            awaiting::deliver(lua, sl, id);
            resumed += 1;
        }
        if rounds == RECHECK_ROUNDS || !sl.ops.borrow_mut().run_rechecks() {
            break;
        }
        rounds += 1;
    }
    if mode == Mode::Step && resumed == 0 {
        // The poll blocked until the next timer: it belongs to this step.
        sl.ops.borrow_mut().update_time();
        run_timers(lua, sl);
    }
    awaiting::close_pending(lua, sl);
    Ok(false)
}

fn run_timers(lua: Lua, sl: &SysLoop) -> usize {
    let mut resumed = 0;
    loop {
        let next = sl.ops.borrow_mut().pop_timer();
        let Some(id) = next else { return resumed };
        awaiting::deliver(lua, sl, id);
        resumed += 1;
    }
}

/// running = system.isrunning()
fn isrunning(lua: Lua) -> Ret {
    lua.push_bool(sys_loop(lua).ops.borrow().running);
    Ok(1)
}

/// system.halt()
fn halt(lua: Lua) -> Ret {
    let mut ops = sys_loop(lua).ops.borrow_mut();
    if !ops.running {
        return Err(Error::msg("not running"));
    }
    ops.halted = true;
    Ok(0)
}

/// system.printall()
fn printall(lua: Lua) -> Ret {
    let ops = sys_loop(lua).ops.borrow();
    eprintln!(
        "[coutil] loop: {} pending operation(s), running: {}",
        ops.active(),
        ops.running
    );
    Ok(0)
}
