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

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use super::{Error, Lua, ffi, raise};
use crate::runtime::driver::Driver;
use crate::runtime::{ArmFailed, OpId, Outcome, Wait};

/// Pushes the results of a completed operation on the coroutine's stack
/// and returns how many: at most 16 without calling `lua_checkstack`
/// first. It runs in the coroutine, in a protected call: it may raise.
pub type Deliver = fn(co: Lua, outcome: Option<Outcome>) -> c_int;

/// What a coroutine waits for, as `coutil.await.stats` counts it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Timer,
    Idle,
    Read,
    Write,
    Connect,
    Accept,
    Process,
    Signal,
    Channel,
    File,
    Dns,
    /// `system.resume` of a state coroutine.
    Coroutine,
    /// `system.awaitfd`.
    Descriptor,
    Other,
    /// The library's own waits (not reported).
    Hidden,
}

impl Kind {
    /// The reported kinds, in the order of their names.
    pub const REPORTED: [Kind; 14] = [
        Kind::Timer,
        Kind::Idle,
        Kind::Read,
        Kind::Write,
        Kind::Connect,
        Kind::Accept,
        Kind::Process,
        Kind::Signal,
        Kind::Channel,
        Kind::File,
        Kind::Dns,
        Kind::Coroutine,
        Kind::Descriptor,
        Kind::Other,
    ];

    pub fn name(self) -> &'static CStr {
        match self {
            Kind::Timer => c"timer",
            Kind::Idle => c"idle",
            Kind::Read => c"read",
            Kind::Write => c"write",
            Kind::Connect => c"connect",
            Kind::Accept => c"accept",
            Kind::Process => c"process",
            Kind::Signal => c"signal",
            Kind::Channel => c"channel",
            Kind::File => c"file",
            Kind::Dns => c"dns",
            Kind::Coroutine => c"coroutine",
            Kind::Descriptor => c"fd",
            Kind::Other => c"other",
            Kind::Hidden => c"hidden",
        }
    }
}

/// What the loop keeps of a waiting coroutine.
#[derive(Clone, Copy)]
pub struct Waiter {
    thread: *mut ffi::lua_State,
    /// Registry reference to the thread, or `LUA_NOREF` after cancelling.
    key: c_int,
    deliver: Deliver,
    kind: Kind,
}

/// The loop of a Lua state, as stored in its userdata: the driver (which
/// it derefs to: `sl.complete(...)`, `sl.recheck(...)`) and what the await
/// protocol adds.
pub struct SysLoop {
    driver: Driver<Waiter>,
    /// Registry references of objects closed since the last closing phase,
    /// kept alive until it (R2).
    closed: RefCell<Vec<c_int>>,
    /// The operation being delivered, for the reuse rule.
    delivering: Cell<Option<OpId>>,
    /// When [`drop_closed`] last looked (monotonic ns).
    swept: Cell<u64>,
    /// Coroutines waiting, by [`Kind`] (armed operations whose delivery
    /// has not begun; an explicit resume ends the wait too).
    waiting: [Cell<u32>; Kind::Hidden as usize + 1],
    /// Open objects by class (see `lua::tally`).
    tallies: std::rc::Rc<super::tally::Tallies>,
}

impl SysLoop {
    fn count(&self, kind: Kind, up: bool) {
        let c = &self.waiting[kind as usize];
        c.set(if up {
            c.get() + 1
        } else {
            c.get().saturating_sub(1)
        });
    }

    pub fn tallies(&self) -> std::rc::Rc<super::tally::Tallies> {
        self.tallies.clone()
    }

    /// Coroutines waiting for `kind` now.
    pub fn waiting(&self, kind: Kind) -> u32 {
        self.waiting[kind as usize].get()
    }

    /// The registry references of the coroutines waiting in armed
    /// operations, with what they wait for (hidden waits left out).
    pub fn waiters(&self) -> Vec<(c_int, Kind)> {
        self.armed_where(|w| w.key != ffi::LUA_NOREF && w.kind != Kind::Hidden)
            .into_iter()
            .filter_map(|id| self.waiter(id))
            .map(|w| (w.key, w.kind))
            .collect()
    }
}

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
static LOOP_KEY: u8 = 0;

fn token() -> *mut c_void {
    &TOKEN as *const u8 as *mut c_void
}

/// The loop of `lua`'s state, created on first use and kept in the
/// registry (its userdata is never moved, so the reference stays valid as
/// long as the state lives). Pushes nothing. The reference borrows the
/// caller's `Lua` handle, so it cannot be kept past the function holding
/// that handle (e.g. stored in a job or an op); it is shared, and the
/// loop's state is behind `Cell`/`RefCell`, so aliasing is not a concern.
pub fn state_loop(lua: &Lua) -> &SysLoop {
    let l = lua.raw();
    // SAFETY: registry access with a private light userdata key; the block
    // stored there is always a SysLoop made below and lives until the state
    // closes (the registry keeps it), after every Lua function call.
    unsafe {
        ffi::lua_rawgetp(
            l,
            ffi::LUA_REGISTRYINDEX,
            &LOOP_KEY as *const u8 as *const c_void,
        );
        let p = ffi::lua_touserdata(l, -1) as *mut SysLoop;
        ffi::lua_pop(l, 1);
        if !p.is_null() {
            return &*p;
        }
        let p = ffi::lua_newuserdatauv(l, std::mem::size_of::<SysLoop>(), 0) as *mut SysLoop;
        p.write(SysLoop {
            driver: Driver::default(),
            closed: RefCell::new(Vec::new()),
            delivering: Cell::new(None),
            swept: Cell::new(0),
            waiting: Default::default(),
            tallies: Default::default(),
        });
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushcfunction(l, loop_gc);
        ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        ffi::lua_setmetatable(l, -2);
        ffi::lua_rawsetp(
            l,
            ffi::LUA_REGISTRYINDEX,
            &LOOP_KEY as *const u8 as *const c_void,
        );
        &*p
    }
}

/// The loop of the running function, a `coutil.system` function or a
/// socket method: its first upvalue, a light userdata pointing to the
/// state's SysLoop. Bounded by the `Lua` handle, as [`state_loop`].
pub fn sys_loop(lua: &Lua) -> &SysLoop {
    // SAFETY: only called by functions made with the loop as first upvalue
    // (`system::open`, socket methods), which lives as long as the state.
    unsafe { &*(ffi::lua_touserdata(lua.raw(), ffi::lua_upvalueindex(1)) as *const SysLoop) }
}

/// What a pool task's state does when its `system.run` would block
/// without limit: installed by `coutil.threads` (see `threads::park_run`),
/// so that the loop needs no knowledge of pools.
pub type ParkHook = fn(Lua, usize) -> bool;

static PARK_HOOK: std::sync::OnceLock<ParkHook> = std::sync::OnceLock::new();

/// Installs the park hook (once per process; later calls are ignored).
pub fn set_park_hook(hook: ParkHook) {
    let _ = PARK_HOOK.set(hook);
}

/// Whether the running `system.run`, about to block with `active`
/// operations pending, parks instead (see [`ParkHook`]).
pub fn park(lua: Lua, active: usize) -> bool {
    PARK_HOOK.get().is_some_and(|hook| hook(lua, active))
}

unsafe extern "C-unwind" fn loop_gc(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: only set as `__gc` of the SysLoop userdata, which is not
    // reachable from Lua, so this runs once, when the state closes; the
    // objects using the loop were made after it, so their finalizers ran
    // before this one.
    unsafe {
        let p = ffi::lua_touserdata(l, 1) as *mut SysLoop;
        if !p.is_null() {
            let lua = Lua::from_raw(l);
            let _ = catch_unwind(AssertUnwindSafe(|| deliver_last(lua, &*p)));
            let _ = catch_unwind(AssertUnwindSafe(|| std::ptr::drop_in_place(p)));
        }
    }
    0
}

/// Delivers the operations `ids`, just completed, at once instead of in
/// the loop's next iteration: for the finalizer of an object that
/// coroutines still wait on, which only happens when the state closes.
/// Nothing is delivered if the loop is borrowed (a finalizer run by a
/// collection in the middle of a loop call).
pub fn deliver_now(lua: Lua, ids: &[OpId]) {
    let sl = state_loop(&lua);
    for &id in ids {
        if sl.take_completed(id) {
            deliver(lua, sl, id);
        }
    }
}

/// How many passes [`deliver_last`] makes at most.
const LAST_PASSES: usize = 4;

/// When the state closes: resumes the coroutines whose operations are
/// complete already, above all those that closing their objects completed
/// (a `read` gets `false, "closed"`, R2), so that their cleanup runs. The
/// others are dropped with the loop, never resumed.
fn deliver_last(lua: Lua, sl: &SysLoop) {
    if sl.is_running() {
        return;
    }
    for _ in 0..LAST_PASSES {
        let mut delivered = false;
        sl.begin_pending();
        while let Some(id) = sl.take_last() {
            deliver(lua, sl, id);
            delivered = true;
        }
        if !delivered {
            break;
        }
    }
}

impl std::ops::Deref for SysLoop {
    type Target = Driver<Waiter>;

    fn deref(&self) -> &Driver<Waiter> {
        &self.driver
    }
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

fn unreference(lua: Lua, key: c_int) {
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
fn cancel(lua: Lua, sl: &SysLoop, id: OpId) {
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

/// How often at most [`drop_closed`] looks at every waiting coroutine.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// Polls shorter than this need no look: the timers they wait for will
/// release the operations of closed coroutines anyway.
const SWEEP_ABOVE: Duration = Duration::from_millis(10);

/// Before the loop blocks in its poll for up to `timeout` (`None`: no
/// limit): cancels the operations of coroutines closed with
/// `coroutine.close` while they waited (any armed operation whose
/// coroutine is not suspended any more: an await is always suspended until
/// its continuation runs), so that they do not keep `system.run` from
/// returning. Looks at most every [`SWEEP_EVERY`]; when it may not look
/// yet, shortens `timeout` to when it may.
pub fn drop_closed(lua: Lua, sl: &SysLoop, timeout: &mut Option<Duration>) {
    if timeout.is_some_and(|t| t < SWEEP_ABOVE) {
        return;
    }
    let now = crate::runtime::monotonic_ns();
    let next = sl.swept.get().saturating_add(SWEEP_EVERY.as_nanos() as u64);
    if now < next {
        let wait = Duration::from_nanos(next - now);
        *timeout = Some(timeout.map_or(wait, |t| t.min(wait)));
        return;
    }
    sl.swept.set(now);
    let dead = sl.armed_where(|w| {
        // SAFETY: the registry reference of the waiter keeps its thread
        // alive while the operation is armed; lua_status only reads it.
        unsafe { ffi::lua_status(w.thread) != ffi::LUA_YIELD }
    });
    if !dead.is_empty() {
        // The cancelled operations close in this iteration: no waiting.
        *timeout = Some(Duration::ZERO);
    }
    for id in dead {
        cancel(lua, sl, id);
    }
}

/// The closing phase: drops the references of released operations
/// (`released`) and of the objects closed since the last one.
pub fn close_pending(main: Lua, sl: &SysLoop, released: Vec<Waiter>) {
    if released.is_empty() && sl.closed.borrow().is_empty() {
        return; // most iterations
    }
    for w in released {
        unreference(main, w.key);
    }
    let closed = std::mem::take(&mut *sl.closed.borrow_mut());
    for key in closed {
        unreference(main, key);
    }
}

/// Keeps the value at `i` (an object just closed) referenced until the
/// closing phase of the next loop iteration, as libuv keeps a closing
/// handle until its close callback.
pub fn keep_until_closed(lua: Lua, i: c_int) {
    // SAFETY: pushes a copy of a stack value and moves it to the registry.
    let key = unsafe {
        ffi::lua_pushvalue(lua.raw(), i);
        ffi::luaL_ref(lua.raw(), ffi::LUA_REGISTRYINDEX)
    };
    state_loop(&lua).closed.borrow_mut().push(key);
}

/// Whether `system.run` has anything to do: operations, or closed objects
/// to release.
pub fn has_work(sl: &SysLoop) -> bool {
    sl.active() > 0 || !sl.closed.borrow().is_empty()
}
