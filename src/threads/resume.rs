//! `system.resume` (spec threads.md §4): resumes a state coroutine
//! ([`super::stateco`]) on a worker thread.
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
//!
//! Arguments and results are transferred (see [`super::transfer`]), so
//! memories and state coroutines among them move; arguments taken for a
//! resume that cannot start are given back to their objects.

use std::ffi::c_int;
use std::sync::{Arc, Mutex};

use super::state::IndState;
use super::stateco::{Inner, StateCo, Status, lock, with_shared};
use super::transfer::{self, Value};
use crate::lua::awaiting::sys_loop;
use crate::lua::awaiting::{self, Await, Resumed as By};
use crate::lua::class::{self, Class, Object};
use crate::lua::{Error, Lua, Reg, Ret};
use crate::runtime::{Outcome, Wait};
use crate::{afn, cfn, kfn};

/// Functions added to `coutil.system`.
pub const SYSTEM: &[Reg] = &[(c"resume", afn!(resume))];

/// What a stopped job leaves for the delivery to apply.
pub(super) struct Ended {
    /// None if the chunk died (its state is closed already).
    state: Option<IndState>,
    next: Status,
    error: Option<Value>,
}

/// The to-be-closed value of a waiting `system.resume` (user value: its
/// state coroutine).
struct Guard;

impl Object for Guard {
    const CLASS: &'static Class = &Class {
        name: c"coutil:resumeguard",
        methods: &[],
        meta: &[(c"__close", cfn!(guard_close))],
    };

    crate::class_key!();
}

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

fn fail(lua: Lua, msg: &[u8]) -> Result<Await, Error> {
    lua.push_bool(false);
    lua.push_bytes(msg);
    Ok(Await::Done(2))
}

/// true, ... | false, err = system.resume(co, ...)
fn resume(lua: Lua) -> Result<Await, Error> {
    awaiting::require_coroutine(lua)?;
    let shared = with_shared(lua, 1, Arc::clone)?;
    match lock(&shared).status {
        Status::Running => return fail(lua, b"cannot resume running coroutine"),
        Status::Dead => return fail(lua, b"cannot resume dead coroutine"),
        Status::Suspended => {}
    }
    // `co` itself among the values would move into its own state: it
    // counts as the running coroutine it is about to be.
    let args = match transfer::take_except(lua, 2, Some(1)) {
        Ok(args) => args,
        Err(r) => return fail(lua, r.numbered("argument", 2, 2).as_bytes()),
    };
    let (state, number) = {
        let mut inner = lock(&shared);
        inner.status = Status::Running;
        inner.resumes += 1;
        inner.unawaited = false;
        inner.unsent = None;
        (inner.state.take(), inner.resumes)
    };
    let Some(state) = state else {
        lock(&shared).status = Status::Dead;
        transfer::restore(lua, 2, args);
        return fail(lua, b"cannot resume dead coroutine");
    };
    let mut resumption = Resumption {
        shared: shared.clone(),
        resume: number,
        state: Some(state),
        args,
    };
    let job = Box::new(move || Box::new(resumption.run()) as Outcome);
    let id = match awaiting::wait(
        lua,
        sys_loop(&lua),
        awaiting::Kind::Coroutine,
        Wait::Work(job),
        deliver,
    ) {
        Ok(id) => id,
        Err(e) => {
            // The job was dropped without running: its arguments go back.
            let unsent = lock(&shared).unsent.take();
            if let Some(args) = unsent {
                transfer::restore(lua, 2, args);
            }
            return Err(e);
        }
    };
    // `co` stays at 1, alive while awaited, with its guard above it.
    super::push_guard(lua, || Guard);
    Ok(Await::Keep(id, 2, kfn!(resume_k)))
}

fn resume_k(lua: Lua, ctx: crate::lua::KContext) -> Result<Await, Error> {
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
    let shared = class::with::<StateCo, _>(lua, at, |slot| Some(slot.as_ref()?.shared.clone()));
    if let Some(Some(shared)) = shared {
        let number = lock(&shared).resumes;
        settle(&shared, number);
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
                let args = std::mem::take(&mut self.args);
                let (result, next, error) = step(&state, args);
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
            lock(&self.shared).unsent = Some(std::mem::take(&mut self.args));
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
fn step(state: &IndState, args: Vec<Value>) -> (Resumed, Status, Option<Value>) {
    let co = state.co();
    let Some((status, nres)) = state.resume(args) else {
        let err = Value::Str((*b"stack overflow").into());
        return (Err(err), Status::Suspended, None);
    };
    if status == crate::lua::LUA_OK || status == crate::lua::LUA_YIELD {
        let first = co.top() - nres + 1;
        let values = transfer::take_or_message(co, first, "return value", 1)
            .map_err(|msg| Value::Str(msg.into_bytes().into()));
        co.set_top(first - 1);
        let next = if status == crate::lua::LUA_YIELD {
            Status::Suspended
        } else {
            Status::Dead
        };
        (values, next, None)
    } else {
        let err = transfer::copy(co, -1).unwrap_or_else(|r| {
            let msg = format!("unable to transfer error ({})", r.reason);
            Value::Str(msg.into_bytes().into())
        });
        let kept = err.try_clone();
        (Err(err), Status::Dead, kept)
    }
}

/// Ends the resume (dropping the [`Delivery`]), then pushes its results.
fn deliver(co: Lua, outcome: Option<Outcome>) -> c_int {
    let result = outcome
        .and_then(|o| o.downcast::<Delivery>().ok())
        .map(|mut d| std::mem::replace(&mut d.result, Ok(Vec::new())));
    match result {
        Some(Ok(values)) if co.check_stack(values.len() as c_int + 2).is_ok() => {
            let n = 1 + values.len() as c_int;
            co.push_bool(true);
            transfer::push_unchecked(co, values);
            n
        }
        Some(Ok(_)) => {
            co.push_bool(false);
            co.push_bytes(b"too many values");
            2
        }
        Some(Err(e)) => {
            co.push_bool(false);
            transfer::push_one(co, e);
            2
        }
        None => {
            co.push_bool(false);
            co.push_bytes(b"internal error");
            2
        }
    }
}
