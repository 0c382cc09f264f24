//! The loop of a Lua state as the await protocol sees it: [`SysLoop`]
//! (the driver and what the protocol adds: closed objects kept until the
//! closing phase, the operation being delivered, counts of waiters by
//! kind), where it lives (a userdata in the registry, and the first upvalue
//! of the functions that use it), the hook that parks pool tasks, the
//! sweep of closed coroutines, and the last deliveries when the state
//! closes. The protocol itself is in `awaiting.rs`.

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use super::awaiting::{Deliver, cancel, deliver, unreference};
use super::{Lua, ffi};
use crate::runtime::OpId;
use crate::runtime::driver::Driver;

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
    pub(super) thread: *mut ffi::lua_State,
    /// Registry reference to the thread, or `LUA_NOREF` after cancelling.
    pub(super) key: c_int,
    pub(super) deliver: Deliver,
    pub(super) kind: Kind,
}

/// The loop of a Lua state, as stored in its userdata: the driver (which
/// it derefs to: `sl.complete(...)`, `sl.recheck(...)`) and what the await
/// protocol adds.
pub struct SysLoop {
    pub(super) driver: Driver<Waiter>,
    /// Registry references of objects closed since the last closing phase,
    /// kept alive until it (R2).
    pub(super) closed: RefCell<Vec<c_int>>,
    /// The operation being delivered, for the reuse rule.
    pub(super) delivering: Cell<Option<OpId>>,
    /// When [`drop_closed`] last looked (monotonic ns).
    pub(super) swept: Cell<u64>,
    /// Coroutines waiting, by [`Kind`] (armed operations whose delivery
    /// has not begun; an explicit resume ends the wait too).
    pub(super) waiting: [Cell<u32>; Kind::Hidden as usize + 1],
    /// Open objects by class (see `lua::tally`).
    pub(super) tallies: std::rc::Rc<super::tally::Tallies>,
    /// The address of the state's `io` file metatable (see `iofile`).
    pub io_metatable: Cell<*const c_void>,
}

impl SysLoop {
    pub(super) fn count(&self, kind: Kind, up: bool) {
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

static LOOP_KEY: u8 = 0;

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
            io_metatable: Cell::new(std::ptr::null()),
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
    // The loop's time, read at the start of this iteration, is precise enough.
    let now = sl.now_ns();
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
