//! The await protocol (design §4): how a coroutine waits for a loop
//! operation and how the loop resumes it.
//!
//! An await function arms an operation for the running coroutine and
//! yields with `lua_yieldk`, the operation id as continuation context. The
//! loop resumes the coroutine with a private token (a light userdata only
//! this module knows) and a pointer to the delivery (the operation's
//! outcome and how to turn it into values, on the loop's stack during the
//! resume); the continuation
//! sees the token and makes the results itself, from the operation's
//! outcome (E1 of spec/seed-todo.md): every allocation while turning a
//! completion into Lua values happens inside the coroutine, never in the
//! loop. An outcome carrying data is turned into values in a protected
//! call, and a failure there (out of memory) makes the await return
//! `false, "not enough memory"`; the results of an operation without
//! outcome are constants (`true`, nothing) and are pushed directly. Anything else means the script resumed the
//! coroutine itself: the continuation cancels the operation and returns
//! exactly the values given to `coroutine.resume`.
//!
//! The registry reference that keeps a waiting coroutine alive is taken
//! when the operation is armed and dropped when it is delivered or
//! cancelled, so once an await returns the library holds no reference.
//!
//! Two reuse rules keep the ordering contracts of spec/loop-time.md:
//! * a coroutine that awaits again while the loop is delivering its
//!   operation reuses that operation (same slot, same reference, and an
//!   idle wait keeps its place in the idle list);
//! * a coroutine that awaits again while its cancelled operation is still
//!   closing gets that operation back, armed only in the closing phase.

use std::ffi::{c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

pub use super::sysloop::{
    Kind, SysLoop, Waiter, close_pending, deliver_now, drop_closed, has_work, keep_until_closed,
    park, set_park_hook, state_loop, sys_loop,
};
use super::{Error, Lua, ffi, raise};
use crate::runtime::{ArmFailed, OpId, Outcome, Wait};

/// Pushes the results of a completed operation on the coroutine's stack
/// and returns how many: at most 16 without calling `lua_checkstack`
/// first. It runs in the coroutine, in a protected call: it may raise.
pub type Deliver = fn(co: Lua, outcome: Option<Outcome>) -> c_int;

/// What an await function's body decided.
pub enum Await {
    /// Finished without waiting (e.g. blocking mode): this many results.
    Done(c_int),
    /// Yield until the operation completes.
    Yield(OpId),
    /// Yield keeping the first `keep` stack values (e.g. the object and a
    /// buffer, which stay alive and reachable) and continue in `k` (made
    /// with `kfn!`), which sees them below the resume values.
    Keep(OpId, c_int, ffi::lua_KFunction),
}

/// How a continuation with kept values was resumed.
pub enum Resumed {
    /// By the loop: the results of the delivery are above the token, which
    /// is at `keep + 1`.
    Loop,
    /// Explicitly, with this many values above the kept ones; the
    /// operation has been cancelled and the values are the await's results.
    User(c_int),
}

/// In a continuation that kept `keep` values: who resumed it. On an
/// explicit resume the operation `ctx` is cancelled.
pub fn resumed(lua: Lua, keep: c_int, ctx: ffi::lua_KContext) -> Resumed {
    let top = lua.top();
    // SAFETY: reads a stack slot of the running continuation.
    if top == keep + 2 && unsafe { ffi::lua_touserdata(lua.raw(), keep + 1) } == token() {
        // SAFETY: after the token, `deliver` passes its Delivery, alive
        // while it resumes this coroutine.
        let delivery = unsafe { &mut *(ffi::lua_touserdata(lua.raw(), keep + 2) as *mut Delivery) };
        lua.set_top(keep + 1);
        push_delivery(lua, delivery);
        return Resumed::Loop;
    }
    cancel(lua, state_loop(&lua), OpId::from_bits(ctx as u64));
    Resumed::User(top - keep)
}

/// Runs a continuation body (see `kfn!`) and yields, returns or raises as
/// it decided, like [`entry`].
///
/// # Safety
/// `l` must be the state of the running continuation.
pub unsafe fn k_entry(
    l: *mut ffi::lua_State,
    ctx: ffi::lua_KContext,
    body: fn(Lua, ffi::lua_KContext) -> Result<Await, Error>,
) -> c_int {
    // SAFETY: `l` is the running state.
    let lua = unsafe { Lua::from_raw(l) };
    let decided = catch_unwind(AssertUnwindSafe(|| body(lua, ctx)));
    // SAFETY: as in `entry`.
    unsafe { finish(l, decided) }
}

static TOKEN: u8 = 0;
fn token() -> *mut c_void {
    &TOKEN as *const u8 as *mut c_void
}

/// Raises `unable to yield` unless the running coroutine can yield.
pub fn require_coroutine(lua: Lua) -> Result<(), Error> {
    if lua.is_yieldable() {
        Ok(())
    } else {
        Err(Error::msg("unable to yield"))
    }
}

/// Arms `wait` for the running coroutine, which must be yieldable; the
/// caller then returns `Await::Yield` with the id. When it cannot be armed
/// (a worker job needs the loop's poll, which needs descriptors), nothing
/// is left armed and the failure is returned ([`Error::Fail`]): the await
/// returns it without yielding.
pub fn wait(
    lua: Lua,
    sl: &SysLoop,
    kind: Kind,
    mut wait: Wait,
    deliver: Deliver,
) -> Result<OpId, Error> {
    let thread = lua.raw();
    if let Some(id) = sl.delivering.get() {
        let same = |w: &Waiter| w.thread == thread;
        let update = |w: &mut Waiter| {
            w.deliver = deliver;
            w.kind = kind;
        };
        match sl.rearm_delivering(id, same, update, wait) {
            Ok(armed) => {
                // A failed arming leaves the op being delivered: released
                // after.
                armed.map_err(|e| Error::io(&e))?;
                sl.count(kind, true);
                return Ok(id);
            }
            Err(not_rearmed) => wait = not_rearmed,
        }
    }
    let closing = sl.find_closing(|w| w.thread == thread);
    let key = reference_thread(lua);
    let waiter = Waiter {
        thread,
        key,
        deliver,
        kind,
    };
    let id = match closing {
        Some(id) => {
            sl.set_waiter(id, waiter);
            sl.set_weak(id, false);
            sl.defer(id, wait);
            id
        }
        None => {
            let id = sl.alloc(waiter);
            if let Err(e) = sl.arm(id, wait) {
                sl.discard(id);
                unreference(lua, key);
                return Err(Error::io(&e));
            }
            id
        }
    };
    sl.count(kind, true);
    Ok(id)
}

fn reference_thread(lua: Lua) -> c_int {
    // SAFETY: pushes the running thread and stores it in the registry.
    unsafe {
        ffi::lua_pushthread(lua.raw());
        ffi::luaL_ref(lua.raw(), ffi::LUA_REGISTRYINDEX)
    }
}

pub(super) fn unreference(lua: Lua, key: c_int) {
    // SAFETY: `key` is a registry reference taken by `reference_thread`
    // (or LUA_NOREF, which luaL_unref ignores).
    unsafe { ffi::luaL_unref(lua.raw(), ffi::LUA_REGISTRYINDEX, key) }
}

/// Whether the coroutine of operation `id` still waits for it: false once
/// the operation was released, and for a coroutine closed with
/// `coroutine.close` while it waited (its operation is then only dropped
/// by [`drop_closed`] or when the loop meets it).
pub fn still_waits(sl: &SysLoop, id: OpId) -> bool {
    // SAFETY: the registry reference of an armed operation's waiter keeps
    // its thread alive; lua_status only reads it.
    sl.waiter(id)
        .is_some_and(|w| unsafe { ffi::lua_status(w.thread) } == ffi::LUA_YIELD)
}

/// Cancels the operation `id` of a coroutine that no longer waits for it
/// (closed with `coroutine.close`).
pub fn abandon(lua: Lua, id: OpId) {
    cancel(lua, state_loop(&lua), id);
}

/// Cancels `id` after an explicit resume and drops its reference.
pub(super) fn cancel(lua: Lua, sl: &SysLoop, id: OpId) {
    if !sl.cancel(id) {
        return;
    }
    if let Some(w) = sl.waiter(id) {
        sl.set_waiter(
            id,
            Waiter {
                key: ffi::LUA_NOREF,
                ..w
            },
        );
        if w.key != ffi::LUA_NOREF {
            sl.count(w.kind, false);
        }
        unreference(lua, w.key);
    }
}

/// Runs an await function's body and yields or raises as it decided.
///
/// # Safety
/// `l` must be the state of the running C function call.
pub unsafe fn entry(l: *mut ffi::lua_State, body: fn(Lua) -> Result<Await, Error>) -> c_int {
    // SAFETY: `l` is the running state.
    let lua = unsafe { Lua::from_raw(l) };
    let decided = catch_unwind(AssertUnwindSafe(|| body(lua)));
    // SAFETY: `l` is the running state.
    unsafe { finish(l, decided) }
}

unsafe fn finish(
    l: *mut ffi::lua_State,
    decided: std::thread::Result<Result<Await, Error>>,
) -> c_int {
    let decided = match decided {
        Ok(decided) => decided,
        Err(payload) => {
            drop(payload);
            Err(Error::msg("internal error in coutil (panic)"))
        }
    };
    match decided {
        Ok(Await::Done(n)) => n,
        // SAFETY: `l` is the running state.
        Err(Error::Fail(code)) => super::fail::push(unsafe { Lua::from_raw(l) }, code),
        // SAFETY: only plain data is alive; lua_yieldk longjmps out of this
        // frame and the continuation takes over.
        Ok(Await::Yield(id)) => unsafe {
            ffi::lua_settop(l, 0);
            ffi::lua_yieldk(l, 0, id.to_bits() as ffi::lua_KContext, Some(continuation))
        },
        // SAFETY: as above.
        Ok(Await::Keep(id, keep, k)) => unsafe {
            ffi::lua_settop(l, keep);
            ffi::lua_yieldk(l, 0, id.to_bits() as ffi::lua_KContext, Some(k))
        },
        // SAFETY: the body's values are dropped (see `raise`).
        Err(e) => unsafe { raise(l, e) },
    }
}

unsafe extern "C-unwind" fn continuation(
    l: *mut ffi::lua_State,
    _status: c_int,
    ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: Lua calls the continuation with the resumed state, whose
    // stack holds exactly the values given to the resume.
    unsafe {
        let lua = Lua::from_raw(l);
        let id = OpId::from_bits(ctx as u64);
        let top = ffi::lua_gettop(l);
        if top == 2 && ffi::lua_touserdata(l, 1) == token() {
            // As in `resumed`. The results go above the two values.
            let delivery = &mut *(ffi::lua_touserdata(l, 2) as *mut Delivery);
            return push_delivery(lua, delivery);
        }
        let _ = catch_unwind(AssertUnwindSafe(|| cancel(lua, state_loop(&lua), id)));
        ffi::lua_gettop(l)
    }
}

/// Makes a `lua_CFunction` from an await body `fn(Lua) -> Result<Await, Error>`.
#[macro_export]
macro_rules! afn {
    ($f:path) => {{
        unsafe extern "C-unwind" fn wrapper(
            l: *mut $crate::lua::ffi::lua_State,
        ) -> ::std::ffi::c_int {
            // SAFETY: Lua calls this as a C function with its running state.
            unsafe { $crate::lua::awaiting::entry(l, $f) }
        }
        wrapper as $crate::lua::ffi::lua_CFunction
    }};
}

/// Makes a continuation (`lua_KFunction`) from a body
/// `fn(Lua, lua_KContext) -> Result<Await, Error>`; see [`Await::Keep`].
#[macro_export]
macro_rules! kfn {
    ($f:path) => {{
        unsafe extern "C-unwind" fn wrapper(
            l: *mut $crate::lua::ffi::lua_State,
            _status: ::std::ffi::c_int,
            ctx: $crate::lua::ffi::lua_KContext,
        ) -> ::std::ffi::c_int {
            // SAFETY: Lua calls this as the continuation of a yield.
            unsafe { $crate::lua::awaiting::k_entry(l, ctx, $f) }
        }
        wrapper as $crate::lua::ffi::lua_KFunction
    }};
}

/// Completes the armed operation `id` of `lua`'s loop: it is delivered in
/// the current or next iteration, with `outcome` passed to its `Deliver`.
pub fn complete(lua: Lua, id: OpId, outcome: Option<Outcome>) {
    state_loop(&lua).complete(id, outcome);
}

/// Resumes the coroutine of operation `id`, taken for delivery, from the
/// thread `main` that runs the loop, with the token only: its continuation
/// makes the results ([`push_delivery`]). Errors of the coroutine become
/// warnings. The operation is released unless the coroutine armed it again.
/// No Lua function called here can raise: the loop is never unwound.
pub fn deliver(main: Lua, sl: &SysLoop, id: OpId) {
    let (thread, mut delivery) = match sl.take_delivery(id) {
        Some((w, outcome)) => {
            sl.count(w.kind, false);
            (w.thread, Delivery::of(w.deliver, outcome))
        }
        None => return,
    };
    // SAFETY: the registry reference keeps `thread` alive while the
    // operation is armed; it is only resumed if it is suspended (a
    // coroutine closed by `coroutine.close` is dead and skipped). Pushing
    // light userdata on the yielded C frame, which keeps LUA_MINSTACK free
    // slots, allocates nothing; `lua_resume` is protected. `delivery` lives
    // until the resume returned.
    unsafe {
        if ffi::lua_status(thread) == ffi::LUA_YIELD {
            let co = Lua::from_raw(thread);
            co.push_light(token());
            co.push_light((&mut delivery as *mut Delivery).cast());
            sl.delivering.set(Some(id));
            let mut nres = 0;
            let status = ffi::lua_resume(thread, main.raw(), 2, &mut nres);
            sl.delivering.set(None);
            if status == ffi::LUA_OK || status == ffi::LUA_YIELD {
                ffi::lua_pop(thread, nres);
            } else {
                warn_error(main, co);
            }
        }
    }
    drop(delivery);
    if let Some(w) = sl.finish(id) {
        unreference(main, w.key);
    }
}

/// Warns `[coutil] system.run: <msg>` for the error on top of the dead
/// coroutine `co`, and pops it. Converts nothing with Lua (a number would
/// allocate its string): it runs in the loop, unprotected.
fn warn_error(main: Lua, co: Lua) {
    LOOP_ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut text = b"[coutil] system.run: ".to_vec();
    match co.type_of(-1) {
        ffi::LUA_TSTRING => text.extend_from_slice(co.to_bytes(-1).unwrap_or_default()),
        ffi::LUA_TNUMBER => text.extend_from_slice(co.number_text(-1).as_bytes()),
        _ => text.extend_from_slice(b"(error object is not a string)"),
    }
    co.set_top(-2);
    main.warn(&text);
}

/// Errors of coroutines resumed by a loop, in the whole process (read by
/// the test scripts' strict mode, see `lua::testing`).
pub static LOOP_ERRORS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// What the continuation of a delivered operation needs to make its
/// results.
struct Delivery {
    deliver: Deliver,
    outcome: Option<Outcome>,
}

impl Delivery {
    fn of(deliver: Deliver, outcome: Option<Outcome>) -> Delivery {
        match outcome.map(|o| o.downcast::<ArmFailed>()) {
            // An arming deferred to the closing phase that failed: the
            // await returns the failure.
            Some(Ok(failed)) => Delivery {
                deliver: push_arm_failure,
                outcome: Some(failed as Outcome),
            },
            Some(Err(outcome)) => Delivery {
                deliver,
                outcome: Some(outcome),
            },
            None => Delivery {
                deliver,
                outcome: None,
            },
        }
    }
}

/// In the continuation of a delivered operation: pushes its results and
/// returns how many. Those of an outcome are made in a protected call, so
/// a failure (out of memory) gives `false, <error>` instead.
#[inline]
fn push_delivery(lua: Lua, delivery: &mut Delivery) -> c_int {
    if delivery.outcome.is_none() {
        // Constant results: `true`, nothing, a failure text.
        return (delivery.deliver)(lua, None);
    }
    let l = lua.raw();
    let base = lua.top();
    // SAFETY: calls `make_results` protected with a pointer to the
    // delivery, which outlives the call; an error leaves its value
    // (allocated before, e.g. the memory error's message) on top.
    unsafe {
        ffi::lua_pushcfunction(l, make_results);
        ffi::lua_pushlightuserdata(l, (delivery as *mut Delivery).cast());
        if ffi::lua_pcall(l, 1, ffi::LUA_MULTRET, 0) != ffi::LUA_OK {
            ffi::lua_pushboolean(l, 0);
            ffi::lua_insert(l, -2);
            return 2;
        }
    }
    lua.top() - base
}

unsafe extern "C-unwind" fn make_results(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: only called by `push_delivery`, with a pointer to its
    // Delivery as only argument.
    unsafe {
        let delivery = &mut *(ffi::lua_touserdata(l, 1) as *mut Delivery);
        ffi::lua_settop(l, 0);
        let lua = Lua::from_raw(l);
        let outcome = delivery.outcome.take();
        let deliver = delivery.deliver;
        match catch_unwind(AssertUnwindSafe(|| deliver(lua, outcome))) {
            Ok(n) => n,
            Err(payload) => {
                drop(payload);
                raise(l, Error::msg("internal error in coutil (panic)"))
            }
        }
    }
}

fn push_arm_failure(co: Lua, outcome: Option<Outcome>) -> c_int {
    let code = outcome
        .and_then(|o| o.downcast::<ArmFailed>().ok())
        .map_or(libc::EIO, |f| super::fail::code_of(&f.0));
    super::fail::push(co, code)
}
