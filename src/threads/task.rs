//! The life of one pool task (spec threads.md §5, "Task execution"): its
//! state, made by the worker that first runs it, and what a worker does
//! with the task after each resume.

use std::ffi::{c_int, c_void};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::channel;
use super::matcher;
use super::origin::{Code, Origin};
use super::park::Park;
use super::state::{IndState, TaskLink};
use super::transfer::{self, Value};
use super::workers::Pool;
use crate::lua::{LUA_OK, LUA_TSTRING, LUA_YIELD, Lua};

/// A chunk to run in a pool, with the values for its next resume.
pub struct Task {
    pub body: Body,
    pub args: Vec<Value>,
    /// Keeps the pool alive for `threads.create()` in the task, which finds
    /// it through a raw pointer in the task state's registry.
    #[allow(dead_code)] // held for its lifetime, never read
    pub pool: Arc<Pool>,
    /// Same for `system.run` and `system.awaitch` in the task.
    pub park: Arc<Park>,
}

/// The state of a task: made by the worker that first runs it.
pub enum Body {
    New(Arc<Code>, Origin),
    Started(IndState),
}

/// What a worker does with a task after resuming it.
pub(super) enum After {
    /// The task ended; true if its chunk returned.
    Ended(Task, bool),
    Requeue(Task),
    /// `system.run` in the task waits only for `awaitch` calls.
    Park(Task),
    Await(Task, Vec<u8>, matcher::Endpoint, Vec<Value>),
}

impl Task {
    pub(super) fn origin(&self) -> &Origin {
        match &self.body {
            Body::New(_, origin) => origin,
            Body::Started(state) => state.origin(),
        }
    }
}

impl Pool {
    /// Gives `task` its state: the spare one if it has the same origin,
    /// else a new one; false if it cannot be made (no memory).
    fn start(self: &Arc<Pool>, task: &mut Task, spare: &mut Option<IndState>) -> bool {
        let Body::New(code, origin) = &task.body else {
            return true;
        };
        let park = Arc::as_ptr(&task.park) as *const c_void;
        let mut state = match spare.take() {
            Some(state) if state.origin().same(origin) => {
                state.set_park(park);
                state
            }
            other => {
                drop(other);
                let link = TaskLink {
                    pool: Arc::as_ptr(self) as *const c_void,
                    park,
                };
                match IndState::new(origin, link) {
                    Ok(state) => state,
                    Err(_) => return false,
                }
            }
        };
        if state.load(code).is_err() {
            return false;
        }
        state.watch();
        task.body = Body::Started(state);
        true
    }

    /// Resumes `task` until it ends or yields something that releases the
    /// thread.
    pub(super) fn run(self: &Arc<Pool>, mut task: Task, spare: &mut Option<IndState>) -> After {
        if !self.start(&mut task, spare) {
            return After::Ended(task, false);
        }
        let Body::Started(state) = &task.body else {
            return After::Ended(task, false);
        };
        let co = state.co();
        resume(task, co)
    }
}

/// Resumes `task`, whose chunk runs in `co`, until it ends or yields
/// something that releases the thread.
fn resume(mut task: Task, co: Lua) -> After {
    loop {
        let args = std::mem::take(&mut task.args);
        let Body::Started(state) = &task.body else {
            return After::Ended(task, false);
        };
        let Some((status, nres)) = state.resume(args) else {
            return After::Ended(task, false);
        };
        match status {
            LUA_OK => return After::Ended(task, true),
            LUA_YIELD => {
                let first = co.top() - nres + 1;
                if nres == 0 && task.park.requested.swap(false, Ordering::Relaxed) {
                    return After::Park(task);
                }
                if nres == 0 || co.type_of(first) != LUA_TSTRING {
                    co.set_top(first - 1);
                    return After::Requeue(task);
                }
                match channel_yield(co, first) {
                    Ok((name, ep, values)) => {
                        co.set_top(first - 1);
                        return After::Await(task, name, ep, values);
                    }
                    Err(msg) => {
                        co.set_top(first - 1);
                        task.args = vec![Value::Bool(false), Value::Str(msg.into())];
                    }
                }
            }
            _ => {
                let mut text = b"[coutil] threads: ".to_vec();
                match co.to_bytes(-1) {
                    Some(msg) => text.extend_from_slice(msg),
                    None => text.extend_from_slice(b"(error object is not a string)"),
                }
                co.warn(&text);
                return After::Ended(task, false);
            }
        }
    }
}

type ChannelYield = (Vec<u8>, matcher::Endpoint, Vec<Value>);

/// `coroutine.yield(name, endpoint, ...)` of a task: name at `first`.
fn channel_yield(co: Lua, first: c_int) -> Result<ChannelYield, Vec<u8>> {
    let name = co.to_bytes(first).unwrap_or_default().to_vec();
    let ep = channel::endpoint(co, first + 1, 2)?;
    let values = transfer::take_or_message(co, first + 2, "argument", 3)?;
    Ok((name, ep, values))
}
