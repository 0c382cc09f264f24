//! `coutil.coroutine` (state coroutines) and `system.resume` (spec
//! threads.md §4).
//!
//! A state coroutine is an independent state whose chunk runs as a
//! coroutine. The object and a running resume share a slot behind a
//! `Mutex`: `system.resume` takes the state out of it and moves it into a
//! job of the worker pool, which resumes it. So the state is only used by
//! the thread holding it.
//!
//! The object stays `"running"` until the awaiter's loop delivers the
//! results (spec behaviour-rules R6), not merely until the job stops: the
//! job leaves the state and the status it reached in the slot ([`Ended`]),
//! and the delivery applies them (puts the state back, or closes it when
//! the object was collected meanwhile). A state whose chunk died is
//! closed by the job at once, so that its finalizers run on the worker,
//! not in the awaiter's loop. When nobody will
//! deliver (the awaiter was resumed explicitly, closed, or its state
//! closed), the resume is *unawaited* and its end is applied as soon as
//! the job stops, or at once if it stopped already.

use std::ffi::{CString, c_int};
use std::sync::{Arc, Mutex, MutexGuard};

use super::origin::Source;
use super::state::{self, IndState};
use super::transfer::{self, Value};
use crate::lua::awaiting::sys_loop;
use crate::lua::awaiting::{self, Await, Resumed as By};
use crate::lua::class::{self, Class, Object};
use crate::lua::{
    CFunction, Error, KContext, LUA_OK, LUA_TNUMBER, LUA_TSTRING, LUA_YIELD, Lua, Reg, Ret,
};
use crate::runtime::{Outcome, Wait};
use crate::{afn, cfn, kfn};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Suspended,
    Running,
    Dead,
}

struct Inner {
    state: Option<IndState>,
    status: Status,
    /// The transferred error value of a coroutine that died by error.
    error: Option<Value>,
    /// The object was collected: the state is closed when the resume ends.
    orphan: bool,
    /// Number of the current (or last) resume, so that a late drop of an
    /// older resume's [`Delivery`] does not touch a newer one.
    resumes: u64,
    /// The end of the current resume, its job stopped: kept until its
    /// results are delivered (the status stays `Running` until then).
    ended: Option<Ended>,
    /// The results of the current resume will not be delivered: its end
    /// is applied as soon as the job stops.
    unawaited: bool,
}

/// What a stopped job leaves for the delivery to apply.
struct Ended {
    /// None if the chunk died (its state is closed already).
    state: Option<IndState>,
    next: Status,
    error: Option<Value>,
}

pub struct StateCo {
    shared: Arc<Mutex<Inner>>,
}

/// The to-be-closed value of a waiting `system.resume` (user value: its
/// state coroutine).
struct Guard;

/// What a resume job sends back: the results, or the error value.
type Resumed = Result<Vec<Value>, Value>;

/// The outcome of a resume job. However it goes (delivered, or dropped
/// because the awaiter was resumed explicitly or closed, or its state
/// closed), dropping it ends its resume (see [`settle`]).
struct Delivery {
    shared: Arc<Mutex<Inner>>,
    resume: u64,
    result: Resumed,
}

impl Drop for Delivery {
    fn drop(&mut self) {
        settle(&self.shared, self.resume);
    }
}

// One C function per Lua function, shared by the module table and the
// metatable, so that error messages find its name in `package.loaded`.
const STATUS_FN: CFunction = cfn!(status);
const CLOSE_FN: CFunction = cfn!(close);
const LOAD_FN: CFunction = cfn!(load);
const LOADFILE_FN: CFunction = cfn!(loadfile);

const METHODS: &[Reg] = &[(c"status", STATUS_FN), (c"close", CLOSE_FN)];

const FUNCTIONS: &[Reg] = &[
    (c"load", LOAD_FN),
    (c"loadfile", LOADFILE_FN),
    (c"status", STATUS_FN),
    (c"close", CLOSE_FN),
];

/// Functions added to `coutil.system`.
pub const SYSTEM: &[Reg] = &[(c"resume", afn!(resume))];

impl Object for StateCo {
    const CLASS: &'static Class = &Class {
        name: c"coutil:coroutine",
        methods: METHODS,
        meta: &[(c"__close", CLOSE_FN)],
    };

    crate::class_key!();
}

impl Object for Guard {
    const CLASS: &'static Class = &Class {
        name: c"coutil:resumeguard",
        methods: &[],
        meta: &[(c"__close", cfn!(guard_close))],
    };

    crate::class_key!();
}

fn lock(shared: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for StateCo {
    fn drop(&mut self) {
        let state = {
            let mut inner = lock(&self.shared);
            inner.orphan = true;
            inner.state.take()
        };
        drop(state); // closes the state outside the lock
    }
}

/// `require "coutil.coroutine"`: the module table.
pub fn open(lua: Lua) -> c_int {
    lua.push_functions(FUNCTIONS, false);
    1
}

/// `bytes` up to its first NUL (as Lua reads chunk names and modes).
pub fn up_to_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// An optional string argument up to its first NUL (`string expected`
/// else).
pub fn opt_name<'a>(lua: Lua, i: c_int) -> Result<Option<&'a [u8]>, Error> {
    if lua.is_none_or_nil(i) {
        return Ok(None);
    }
    if lua.type_of(i) != LUA_TSTRING && lua.type_of(i) != LUA_TNUMBER {
        return Err(Error::Type(i, c"string"));
    }
    Ok(lua.to_bytes(i).map(up_to_nul))
}

/// [`opt_name`] as a C string.
pub fn opt_c_string(lua: Lua, i: c_int) -> Result<Option<CString>, Error> {
    Ok(opt_name(lua, i)?.map(|s| CString::new(s).unwrap_or_default()))
}

/// Pushes a new state coroutine for `source`, or `false, msg`.
fn push_new(lua: Lua, source: Source) -> Ret {
    match state::create(lua, source) {
        Ok(st) => {
            let inner = Inner {
                state: Some(st),
                status: Status::Suspended,
                error: None,
                orphan: false,
                resumes: 0,
                ended: None,
                unawaited: false,
            };
            class::push(
                lua,
                StateCo {
                    shared: Arc::new(Mutex::new(inner)),
                },
            );
            Ok(1)
        }
        Err(msg) => {
            lua.push_bool(false);
            lua.push_bytes(&msg);
            Ok(2)
        }
    }
}

/// co | false, msg = coroutine.load(chunk [, chunkname [, mode]])
fn load(lua: Lua) -> Ret {
    let chunk = crate::memory::arg_bytes(lua, 1)?;
    let name = opt_name(lua, 2)?.unwrap_or_else(|| up_to_nul(chunk));
    let mode = opt_name(lua, 3)?;
    push_new(lua, Source::Text { chunk, name, mode })
}

/// co | false, msg = coroutine.loadfile([path [, mode]])
fn loadfile(lua: Lua) -> Ret {
    let path = opt_c_string(lua, 1)?;
    let mode = opt_c_string(lua, 2)?;
    push_new(lua, Source::File { path, mode })
}

fn shared_of<'a>(lua: Lua, i: c_int) -> Result<&'a Arc<Mutex<Inner>>, Error> {
    class::check::<StateCo>(lua, i)?
        .as_ref()
        .map(|co| &co.shared)
        .ok_or(Error::Type(i, c"coutil:coroutine"))
}

/// status = coroutine.status(co)
fn status(lua: Lua) -> Ret {
    let text: &[u8] = match lock(shared_of(lua, 1)?).status {
        Status::Suspended => b"suspended",
        Status::Running => b"running",
        Status::Dead => b"dead",
    };
    lua.push_bytes(text);
    Ok(1)
}

/// true | false, err = coroutine.close(co)
fn close(lua: Lua) -> Ret {
    let shared = shared_of(lua, 1)?;
    let (state, error) = {
        let mut inner = lock(shared);
        if inner.status == Status::Running {
            return Err(Error::msg("cannot close a running coroutine"));
        }
        inner.status = Status::Dead;
        (inner.state.take(), inner.error.take())
    };
    drop(state);
    match error {
        None => {
            lua.push_bool(true);
            Ok(1)
        }
        Some(e) => {
            lua.push_bool(false);
            transfer::push_one(lua, &e);
            Ok(2)
        }
    }
}

fn fail(lua: Lua, msg: &[u8]) -> Result<Await, Error> {
    lua.push_bool(false);
    lua.push_bytes(msg);
    Ok(Await::Done(2))
}

/// true, ... | false, err = system.resume(co, ...)
fn resume(lua: Lua) -> Result<Await, Error> {
    awaiting::require_coroutine(lua)?;
    let shared = shared_of(lua, 1)?.clone();
    match lock(&shared).status {
        Status::Running => return fail(lua, b"cannot resume running coroutine"),
        Status::Dead => return fail(lua, b"cannot resume dead coroutine"),
        Status::Suspended => {}
    }
    let args = match transfer::take_or_message(lua, 2, "argument", 2) {
        Ok(args) => args,
        Err(msg) => return fail(lua, msg.as_bytes()),
    };
    let (state, number) = {
        let mut inner = lock(&shared);
        inner.status = Status::Running;
        inner.resumes += 1;
        inner.unawaited = false;
        (inner.state.take(), inner.resumes)
    };
    let Some(state) = state else {
        lock(&shared).status = Status::Dead;
        return fail(lua, b"cannot resume dead coroutine");
    };
    let mut resumption = Resumption {
        shared,
        resume: number,
        state: Some(state),
        args,
    };
    let job = Box::new(move || Box::new(resumption.run()) as Outcome);
    let id = awaiting::wait(lua, sys_loop(lua), Wait::Work(job), deliver)?;
    // `co` stays at 1, alive while awaited, with its guard above it.
    super::push_guard(lua, || Guard);
    Ok(Await::Keep(id, 2, kfn!(resume_k)))
}

fn resume_k(lua: Lua, ctx: KContext) -> Result<Await, Error> {
    match awaiting::resumed(lua, 2, ctx) {
        // [co, guard, token, results...]
        By::Loop => Ok(Await::Done(lua.top() - 3)),
        By::User(n) => Ok(Await::Done(n)),
    }
}

/// `__close` of the guard of a `system.resume`, closed however the await
/// ends: the awaiter no longer waits for the current resume (the only one:
/// `co` runs until it ends), so its end need not wait for a delivery. A
/// no-op after a delivery, which ended the resume already.
fn guard_close(lua: Lua) -> Ret {
    let Some(at) = super::guarded::<Guard>(lua) else {
        return Ok(0);
    };
    if let Some(co) = class::test::<StateCo>(lua, at).and_then(|slot| slot.as_ref()) {
        let number = lock(&co.shared).resumes;
        settle(&co.shared, number);
    }
    Ok(0)
}

/// A resume handed to the worker pool. A job may be dropped without
/// running (an arming deferred to the loop's closing phase and cancelled
/// before it): then the state goes back to the object, unchanged.
struct Resumption {
    shared: Arc<Mutex<Inner>>,
    resume: u64,
    state: Option<IndState>,
    args: Vec<Value>,
}

impl Resumption {
    /// Resumes the chunk on this (worker) thread, then leaves the state
    /// for the delivery, or applies the end at once if it is unawaited.
    fn run(&mut self) -> Delivery {
        let result = match self.state.take() {
            Some(state) => {
                let (result, next, error) = step(&state, &self.args);
                let state = if next == Status::Suspended {
                    Some(state)
                } else {
                    drop(state);
                    None
                };
                let ended = Ended { state, next, error };
                let unawaited = {
                    let mut inner = lock(&self.shared);
                    if inner.unawaited {
                        Some(ended)
                    } else {
                        inner.ended = Some(ended);
                        None
                    }
                };
                if let Some(ended) = unawaited {
                    give_back(&self.shared, ended);
                }
                result
            }
            None => Err(Value::Str((*b"cannot resume dead coroutine").into())),
        };
        Delivery {
            shared: self.shared.clone(),
            resume: self.resume,
            result,
        }
    }
}

/// Nobody waits any more for the results of resume number `resume`
/// (delivered, or never to be): if its job stopped, its end is applied
/// now, else when the job stops. Nothing for an older resume.
fn settle(shared: &Mutex<Inner>, resume: u64) {
    let ended = {
        let mut inner = lock(shared);
        if inner.resumes != resume {
            return;
        }
        inner.unawaited = true;
        inner.ended.take()
    };
    if let Some(ended) = ended {
        give_back(shared, ended);
    }
}

impl Drop for Resumption {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            let next = Status::Suspended;
            let state = Some(state);
            give_back(
                &self.shared,
                Ended {
                    state,
                    next,
                    error: None,
                },
            );
        }
    }
}

/// Ends a resume: the object gets the state back if it is resumable,
/// else the state is closed (outside the lock).
fn give_back(shared: &Mutex<Inner>, ended: Ended) {
    let Ended { state, next, error } = ended;
    let state = {
        let mut inner = lock(shared);
        inner.status = next;
        inner.error = error;
        if next == Status::Suspended && !inner.orphan {
            inner.state = state;
            None
        } else {
            state
        }
    };
    drop(state);
}

/// One resume: the results, the status after it and the error to keep.
fn step(state: &IndState, args: &[Value]) -> (Resumed, Status, Option<Value>) {
    let co = state.co();
    let Some((status, nres)) = state.resume(args) else {
        let err = Value::Str((*b"stack overflow").into());
        return (Err(err), Status::Suspended, None);
    };
    if status == LUA_OK || status == LUA_YIELD {
        let first = co.top() - nres + 1;
        let values = transfer::take_or_message(co, first, "return value", 1)
            .map_err(|msg| Value::Str(msg.into_bytes().into()));
        co.set_top(first - 1);
        let next = if status == LUA_YIELD {
            Status::Suspended
        } else {
            Status::Dead
        };
        (values, next, None)
    } else {
        let err = transfer::copy(co, -1).unwrap_or_else(|r| {
            let msg = format!("unable to transfer error (got {})", r.type_name);
            Value::Str(msg.into_bytes().into())
        });
        (Err(err.clone()), Status::Dead, Some(err))
    }
}

/// Ends the resume (dropping the [`Delivery`]), then pushes its results.
fn deliver(co: Lua, outcome: Option<Outcome>) -> c_int {
    let result = outcome
        .and_then(|o| o.downcast::<Delivery>().ok())
        .map(|mut d| std::mem::replace(&mut d.result, Ok(Vec::new())));
    match result {
        Some(Ok(values)) if co.check_stack(values.len() as c_int + 2).is_ok() => {
            co.push_bool(true);
            for v in &values {
                transfer::push_one(co, v);
            }
            1 + values.len() as c_int
        }
        Some(Ok(_)) => {
            co.push_bool(false);
            co.push_bytes(b"too many values");
            2
        }
        Some(Err(e)) => {
            co.push_bool(false);
            transfer::push_one(co, &e);
            2
        }
        None => {
            co.push_bool(false);
            co.push_bytes(b"internal error");
            2
        }
    }
}
