//! Preemptive multithreading (spec threads.md, design §6): independent
//! states, transferable values, channels, state coroutines and thread
//! pools.
//!
//! * [`origin`]: what a new state takes from its creator (compiled chunk,
//!   preload loaders), cached in the creator;
//! * [`state`]: independent Lua states, and their reuse by pool tasks;
//! * [`transfer`]: values copied or moved between states;
//! * [`matcher`]: the process-wide table of channel names (one `Mutex`);
//! * [`channel`]: `coutil.channel`; [`awaitch`]: `system.awaitch`;
//! * [`tables`]: tables copied between states;
//! * [`stateco`]: `coutil.coroutine`; [`resume`]: `system.resume`;
//! * [`pool`]: `coutil.threads`; [`workers`]: a pool's threads and queue;
//!   [`task`]: the life of a task; [`park`]: tasks parked by `system.run`;
//! * [`preload`]: `threads.preloadclibs`, native loaders for new states.
//!
//! Thread safety by construction: a Lua state is only ever used by the one
//! thread that holds its owner value ([`state::IndState`], moved as a
//! whole); everything shared between threads is plain Rust data behind a
//! `Mutex` (the matcher, a pool's queue, a state coroutine's slot).
//!
//! Everything goes through the binding layer's [`Lua`] (independent
//! states are made, set up and closed by `lua/states.rs`). The `unsafe`
//! left here is what the design needs: an [`state::IndState`] sent to
//! another thread, the raw pointers to a task's pool and parking slot kept
//! in its state's registry (made into references again while the task
//! runs), and the per-state objects kept under registry keys
//! (`class::kept`).

pub mod awaitch;
pub mod channel;
mod loadfile;
pub mod matcher;
pub mod origin;
pub mod park;
pub mod pool;
pub mod preload;
pub mod resume;
pub mod state;
pub mod stateco;
pub mod tables;
pub mod task;
pub mod transfer;
pub mod workers;

use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::lua::awaiting::state_loop;
use crate::lua::class::{self, key};
use crate::lua::{LUA_REGISTRYINDEX, LUA_TUSERDATA, Lua, Reg};

/// Functions of `coutil.system` defined here.
pub const SYSTEM: &[&[Reg]] = &[awaitch::SYSTEM, resume::SYSTEM];

static DOMAIN_KEY: u8 = 0;
static DOMAINS: AtomicU64 = AtomicU64::new(1);

/// The channel domain of `lua`'s state: inherited from its creator by an
/// independent state, else made on first use.
pub fn domain_of(lua: Lua) -> matcher::Domain {
    // The value under the private key is nil or an integer set by
    // `set_domain`.
    lua.raw_get_ptr(LUA_REGISTRYINDEX, key(&DOMAIN_KEY));
    let found = lua.to_integer(-1).unwrap_or(0) as u64;
    lua.pop(1);
    if found != 0 {
        return found;
    }
    let d = DOMAINS.fetch_add(1, Ordering::Relaxed);
    set_domain(lua, d);
    d
}

/// Sets the channel domain of `lua`'s state.
pub fn set_domain(lua: Lua, domain: matcher::Domain) {
    // May only fail on memory exhaustion, with no Rust value alive here.
    lua.push_integer(domain as i64);
    lua.raw_set_ptr(LUA_REGISTRYINDEX, key(&DOMAIN_KEY));
}

/// Puts the to-be-closed guard of the object at 1 at 2, above it, and
/// marks it to be closed; the guard (a `G` made by `make` on first use)
/// is kept as the object's user value and has the object as its own, and
/// its `__close` finds the object with [`guarded`]. Awaits that must know
/// when their coroutine stops waiting, however that happens (results
/// delivered, explicit resume, `coroutine.close`), keep such a guard.
fn push_guard<G: class::Object>(lua: Lua, make: impl FnOnce() -> G) {
    lua.set_top(1);
    // The object at 1 was made by `class::push`, with one user value; so
    // is the guard. Stack space: LUA_MINSTACK.
    if lua.get_user_value(1, 1) != LUA_TUSERDATA {
        lua.pop(1);
        class::push(lua, make());
        lua.push_value(1);
        lua.set_user_value(-2, 1);
        lua.push_value(-1);
        lua.set_user_value(1, 1);
    }
    // The guard has a `__close` metamethod and is the topmost value, above
    // the object (no slot of this call is marked yet).
    lua.to_close(-1);
}

/// In the `__close` of a guard of class `G` (at 1): pushes the object it
/// guards and returns its index, or `None` (nothing pushed) if the value
/// at 1 is no such guard (`__close` can be called by hand with anything).
fn guarded<G: class::Object>(lua: Lua) -> Option<c_int> {
    if !class::is::<G>(lua, 1) {
        return None;
    }
    lua.get_user_value(1, 1);
    Some(lua.top())
}

/// For `system.run` in a pool task (spec loop-time.md): may the run, about
/// to block with `active` pending operations, yield the task's system
/// thread instead? Yes when `lua` runs the task's chunk, can yield, every
/// pending operation is an `awaitch` and none is matched yet (a match
/// after this check finds the task parking and queues it again at once,
/// see `park::Park`); the task is then marked to
/// park when it yields (with no values), and a match of one of those
/// `awaitch` calls queues it again.
fn park_run(lua: Lua, active: usize) -> bool {
    // The cheap checks first: tasks run in pools' threads only, and a
    // main chunk's `run` is not yieldable.
    if active == 0 || !park::in_pool_thread() || !lua.is_yieldable() {
        return false;
    }
    let Some(park) = park::park_ref(&lua) else {
        return false;
    };
    if !state::is_body(lua) || park.awaiting.load(Ordering::Relaxed) != active {
        return false;
    }
    // Completions already posted would not wake a parked task: take them
    // first (without blocking); any of them means no parking.
    if !state_loop(&lua).would_block() {
        return false;
    }
    park.requested.store(true, Ordering::Relaxed);
    true
}

/// `require "coutil.channel"`
pub fn open_channel(lua: Lua) -> c_int {
    channel::open(lua)
}

/// `require "coutil.coroutine"`
pub fn open_coroutine(lua: Lua) -> c_int {
    stateco::open(lua)
}

/// `require "coutil.threads"`
pub fn open_threads(lua: Lua) -> c_int {
    crate::lua::awaiting::set_park_hook(park_run);
    pool::open(lua)
}

/// Tells, for a file given to `pool:dofile` or `coroutine.loadfile`,
/// whether it names a program whose chunk to load instead (the `coutil`
/// command: its own executable); set by the command at start-up.
pub type CommandChunk = fn(&[u8]) -> Option<&'static [u8]>;

static COMMAND_CHUNK: std::sync::OnceLock<CommandChunk> = std::sync::OnceLock::new();

/// Installs the command's check (once per process).
#[cfg_attr(not(feature = "command"), allow(dead_code))]
pub fn set_command_chunk(check: CommandChunk) {
    let _ = COMMAND_CHUNK.set(check);
}

fn command_chunk(path: &[u8]) -> Option<&'static [u8]> {
    COMMAND_CHUNK.get().and_then(|check| check(path))
}
