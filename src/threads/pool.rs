//! `coutil.threads` (spec threads.md §5): the Lua side of thread pools;
//! the threads and tasks themselves are in [`super::task`].
//!
//! A pool object is a reference to a shared [`Pool`]. The creator's
//! reference frees the pool on `close`; a task's own reference (from
//! `threads.create()` in a task) only invalidates itself. A creator's
//! reference collected without `close` hands the pool to its state's
//! *keeper*, a registry object made before any pool of that state (so it
//! is finalized after them when the state closes), which then frees every
//! pool it holds, waiting for each to have no tasks or no threads.

use std::ffi::c_int;
use std::sync::Arc;

use super::origin::{self, Source};
use super::park::Park;
use super::state;
use super::stateco::{opt_c_string, opt_name, up_to_nul};
use super::task::{Body, Task};
use super::transfer;
use super::workers::Pool;
use crate::cfn;
use crate::lua::class::{self, Class, Object};
use crate::lua::{CFunction, Error, Lua, Reg, Ret, fail};

pub struct PoolRef {
    pool: Arc<Pool>,
    /// A task's reference to its own pool.
    own: bool,
}

/// The pools of a state collected without `close`.
struct Keeper {
    pools: Vec<Arc<Pool>>,
}

// One C function per Lua function, shared by the module table and the
// metatable, so that error messages find its name in `package.loaded`.
const RESIZE_FN: CFunction = cfn!(resize);
const COUNT_FN: CFunction = cfn!(count);
const DOSTRING_FN: CFunction = cfn!(dostring);
const DOFILE_FN: CFunction = cfn!(dofile);
const CLOSE_FN: CFunction = cfn!(close);
const CREATE_FN: CFunction = cfn!(create);

const METHODS: &[Reg] = &[
    (c"resize", RESIZE_FN),
    (c"count", COUNT_FN),
    (c"dostring", DOSTRING_FN),
    (c"dofile", DOFILE_FN),
    (c"close", CLOSE_FN),
];

const FUNCTIONS: &[Reg] = &[
    (c"create", CREATE_FN),
    (c"preloadclibs", cfn!(super::preload::preloadclibs)),
    (c"resize", RESIZE_FN),
    (c"count", COUNT_FN),
    (c"dostring", DOSTRING_FN),
    (c"dofile", DOFILE_FN),
    (c"close", CLOSE_FN),
];

impl Object for PoolRef {
    const CLASS: &'static Class = &Class {
        name: c"coutil:threads",
        methods: METHODS,
        meta: &[(c"__close", CLOSE_FN), (c"__gc", cfn!(gc))],
    };

    crate::class_key!();
}

impl Object for Keeper {
    const CLASS: &'static Class = &Class {
        name: c"coutil:threadskeeper",
        methods: &[],
        meta: &[],
    };

    crate::class_key!();
}

impl Drop for Keeper {
    fn drop(&mut self) {
        for pool in self.pools.drain(..) {
            pool.free();
        }
    }
}

static KEEPER_KEY: class::KeptKey<Keeper> = class::KeptKey::new();

/// `require "coutil.threads"`: the module table.
pub fn open(lua: Lua) -> c_int {
    lua.push_functions(FUNCTIONS, false);
    1
}

/// Makes the keeper of `lua`'s state, unless it exists.
fn make_keeper(lua: Lua) {
    let make = || Keeper { pools: Vec::new() };
    class::with_kept::<Keeper, _>(lua, &KEEPER_KEY, make, |_| ());
}

/// The pool of the open pool reference at `i`.
fn check(lua: Lua, i: c_int) -> Result<Arc<Pool>, Error> {
    class::with_checked::<PoolRef, _>(lua, i, |slot| Some(slot.as_ref()?.pool.clone()))?
        .ok_or_else(|| Error::msg("closed threads"))
}

fn push_result(lua: Lua, result: std::io::Result<()>) -> Ret {
    match result {
        Ok(()) => {
            lua.push_bool(true);
            Ok(1)
        }
        Err(e) => Ok(fail::push_io(lua, &e)),
    }
}

/// pool | nil | false, msg, code = threads.create([size])
fn create(lua: Lua) -> Ret {
    if lua.is_none_or_nil(1) {
        let own = state::task_pool(lua) as *const Pool;
        if own.is_null() {
            lua.push_nil();
        } else {
            // SAFETY: the pointer was stored by `state::create` for a task
            // of this pool, and the task (running this call) holds an Arc
            // of it for as long as its state lives.
            let pool = unsafe {
                Arc::increment_strong_count(own);
                Arc::from_raw(own)
            };
            class::push(lua, PoolRef { pool, own: true });
        }
        return Ok(1);
    }
    let size = lua.arg_integer(1)?.max(0) as usize;
    make_keeper(lua);
    let pool = Pool::new();
    if let Err(e) = pool.resize(size, true) {
        // The threads already started exit at once.
        pool.free();
        pool.join();
        return Ok(fail::push_io(lua, &e));
    }
    class::push(lua, PoolRef { pool, own: false });
    Ok(1)
}

/// true | false, msg, code = threads.resize(pool, size [, create])
fn resize(lua: Lua) -> Ret {
    let pool = check(lua, 1)?;
    let size = lua.arg_integer(2)?;
    if size < 0 {
        return Err(Error::arg(2, "size cannot be negative"));
    }
    let create = lua.to_boolean(3);
    push_result(lua, pool.resize(size as usize, create))
}

/// ... = threads.count(pool, options)
fn count(lua: Lua) -> Ret {
    let pool = check(lua, 1)?;
    let opts = lua.arg_bytes(2)?;
    lua.check_stack(opts.len() as c_int)?;
    let q = pool.lock();
    let values: Result<Vec<usize>, u8> = opts
        .iter()
        .map(|&c| match c {
            b'n' => Ok(q.tasks()),
            b'r' => Ok(q.running),
            b'p' => Ok(q.pending.len()),
            b's' => Ok(q.suspended),
            b'e' => Ok(q.expected),
            b'a' => Ok(q.actual),
            other => Err(other),
        })
        .collect();
    drop(q);
    match values {
        Ok(values) => {
            for v in &values {
                lua.push_integer(*v as i64);
            }
            Ok(values.len() as c_int)
        }
        Err(c) => {
            let mut text = b"bad option (got '".to_vec();
            text.push(c);
            text.extend_from_slice(b"')");
            Err(Error::Arg(2, text.into()))
        }
    }
}

/// Adds a task loaded from `source` with the values from `first` (given
/// back to their objects if the chunk cannot be loaded).
fn add(lua: Lua, pool: &Arc<Pool>, source: Source, first: c_int) -> Ret {
    let args = match transfer::take_or_message(lua, first, "argument", first) {
        Ok(args) => args,
        Err(msg) => return fail_msg(lua, msg.as_bytes()),
    };
    match origin::prepare(lua, source) {
        Ok((code, origin)) => {
            pool.push(Task {
                body: Body::New(code, origin),
                args,
                pool: pool.clone(),
                park: Arc::new(Park::default()),
            });
            lua.push_bool(true);
            Ok(1)
        }
        Err(msg) => {
            transfer::restore(lua, first, args);
            fail_msg(lua, &msg)
        }
    }
}

fn fail_msg(lua: Lua, msg: &[u8]) -> Ret {
    lua.push_bool(false);
    lua.push_bytes(msg);
    Ok(2)
}

/// true | false, msg = threads.dostring(pool, chunk [, chunkname [, mode, ...]])
fn dostring(lua: Lua) -> Ret {
    let pool = check(lua, 1)?;
    // A memory is copied: compiling runs Lua code (finalizers), which
    // could resize or close it.
    let chunk = crate::memory::arg_stable_bytes(&lua, 2)?;
    let chunk = &chunk[..];
    let name = opt_name(&lua, 3)?.unwrap_or_else(|| up_to_nul(chunk));
    let mode = opt_name(&lua, 4)?;
    add(lua, &pool, Source::Text { chunk, name, mode }, 5)
}

/// true | false, msg = threads.dofile(pool [, path [, mode, ...]])
fn dofile(lua: Lua) -> Ret {
    let pool = check(lua, 1)?;
    let path = opt_c_string(lua, 2)?;
    let mode = opt_c_string(lua, 3)?;
    add(lua, &pool, Source::File { path, mode }, 4)
}

/// true = threads.close(pool)
fn close(lua: Lua) -> Ret {
    let taken = class::with_checked::<PoolRef, _>(lua, 1, Option::take)?;
    let r = taken.ok_or_else(|| Error::msg("closed threads"))?;
    if !r.own {
        r.pool.free();
    }
    lua.push_bool(true);
    Ok(1)
}

/// `__gc`: a creator's reference leaves its pool to the keeper.
fn gc(lua: Lua) -> Ret {
    let taken = class::with::<PoolRef, _>(lua, 1, Option::take).flatten();
    if let Some(r) = taken.filter(|r| !r.own) {
        let mut pool = Some(r.pool);
        class::with_found::<Keeper, _>(lua, &KEEPER_KEY, |k| k.pools.extend(pool.take()));
        if let Some(pool) = pool {
            pool.free();
        }
    }
    Ok(0)
}
