//! `coutil.coroutine` (state coroutines, spec threads.md §4): the object,
//! its module functions, and its moves to other states (seed-todo.md E4);
//! `system.resume` is in [`super::resume`].
//!
//! A state coroutine is an independent state whose chunk runs as a
//! coroutine. The object and a running resume share a slot behind a
//! `Mutex` ([`Inner`]): `system.resume` takes the state out of it and
//! moves it into a job of the worker pool, which resumes it. So the state
//! is only used by the thread holding it.
//!
//! A state coroutine that is not running can be transferred to another
//! state: [`take`] empties the slot (the object then behaves as closed)
//! and [`push`] makes a new object owning the state in the destination.

use std::ffi::{CString, c_int};
use std::sync::{Arc, Mutex, MutexGuard};

use super::origin::Source;
use super::resume::Ended;
use super::state::{self, IndState};
use super::transfer::{self, Reason, Value};
use crate::cfn;
use crate::lua::class::{self, Class, Object};
use crate::lua::{Error, Lua, Reg, Ret};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Status {
    Suspended,
    Running,
    Dead,
}

pub(super) struct Inner {
    pub state: Option<IndState>,
    pub status: Status,
    /// The transferred error value of a coroutine that died by error.
    pub error: Option<Value>,
    /// The object was collected: the state is closed when the resume ends.
    pub orphan: bool,
    /// Number of the current (or last) resume, so that a late drop of an
    /// older resume's delivery does not touch a newer one.
    pub resumes: u64,
    /// The end of the current resume, its job stopped: kept until its
    /// results are delivered (the status stays `Running` until then).
    pub ended: Option<Ended>,
    /// The results of the current resume will not be delivered: its end
    /// is applied as soon as the job stops.
    pub unawaited: bool,
    /// The arguments of a resume whose job was dropped without running
    /// (its arming failed), for `system.resume` to give them back.
    pub unsent: Option<Vec<Value>>,
    /// The coroutine was moved to another state (and not closed since):
    /// a transfer that does not happen may give it back.
    moved: bool,
}

impl Inner {
    fn new(state: Option<IndState>, status: Status, error: Option<Value>) -> Inner {
        Inner {
            state,
            status,
            error,
            orphan: false,
            resumes: 0,
            ended: None,
            unawaited: false,
            unsent: None,
            moved: false,
        }
    }
}

pub struct StateCo {
    pub(super) shared: Arc<Mutex<Inner>>,
}

/// A state coroutine on its way to another state: what its object held.
pub struct Moved {
    state: Option<IndState>,
    status: Status,
    error: Option<Value>,
}

impl std::fmt::Debug for Moved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Moved({:?})", self.status)
    }
}

// One C function per Lua function, shared by the module table and the
// metatable, so that error messages find its name in `package.loaded`.
const STATUS_FN: crate::lua::CFunction = cfn!(status);
const CLOSE_FN: crate::lua::CFunction = cfn!(close);
const LOAD_FN: crate::lua::CFunction = cfn!(load);
const LOADFILE_FN: crate::lua::CFunction = cfn!(loadfile);

const METHODS: &[Reg] = &[(c"status", STATUS_FN), (c"close", CLOSE_FN)];

const FUNCTIONS: &[Reg] = &[
    (c"load", LOAD_FN),
    (c"loadfile", LOADFILE_FN),
    (c"status", STATUS_FN),
    (c"close", CLOSE_FN),
];

impl Object for StateCo {
    const CLASS: &'static Class = &Class {
        name: c"coutil:coroutine",
        methods: METHODS,
        meta: &[(c"__close", CLOSE_FN)],
    };

    crate::class_key!();
}

pub(super) fn lock(shared: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
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
pub fn opt_name(lua: &Lua, i: c_int) -> Result<Option<&[u8]>, Error> {
    if lua.is_none_or_nil(i) {
        return Ok(None);
    }
    if lua.type_of(i) != crate::lua::LUA_TSTRING && lua.type_of(i) != crate::lua::LUA_TNUMBER {
        return Err(Error::Type(i, c"string"));
    }
    Ok(lua.to_bytes(i).map(up_to_nul))
}

/// [`opt_name`] as a C string.
pub fn opt_c_string(lua: Lua, i: c_int) -> Result<Option<CString>, Error> {
    Ok(opt_name(&lua, i)?.map(|s| CString::new(s).unwrap_or_default()))
}

/// Pushes a new state coroutine for `source`, or `false, msg`.
fn push_new(lua: Lua, source: Source) -> Ret {
    match state::create(lua, source) {
        Ok(st) => {
            let inner = Inner::new(Some(st), Status::Suspended, None);
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
    // A memory is copied: compiling runs Lua code (finalizers), which
    // could resize or close it.
    let chunk = crate::memory::arg_stable_bytes(&lua, 1)?;
    let chunk = &chunk[..];
    let name = opt_name(&lua, 2)?.unwrap_or_else(|| up_to_nul(chunk));
    let mode = opt_name(&lua, 3)?;
    push_new(lua, Source::Text { chunk, name, mode })
}

/// co | false, msg = coroutine.loadfile([path [, mode]])
fn loadfile(lua: Lua) -> Ret {
    let path = opt_c_string(lua, 1)?;
    let mode = opt_c_string(lua, 2)?;
    push_new(lua, Source::File { path, mode })
}

/// Runs `f` on the shared part of the state coroutine at `i`.
pub(super) fn with_shared<R>(
    lua: Lua,
    i: c_int,
    f: impl FnOnce(&Arc<Mutex<Inner>>) -> R + Send,
) -> Result<R, Error> {
    class::with_checked::<StateCo, _>(lua, i, |slot| slot.as_ref().map(|co| f(&co.shared)))?
        .ok_or(Error::Type(i, c"coutil:coroutine"))
}

/// status = coroutine.status(co)
fn status(lua: Lua) -> Ret {
    let text: &[u8] = match with_shared(lua, 1, |shared| lock(shared).status)? {
        Status::Suspended => b"suspended",
        Status::Running => b"running",
        Status::Dead => b"dead",
    };
    lua.push_bytes(text);
    Ok(1)
}

/// true | false, err = coroutine.close(co)
fn close(lua: Lua) -> Ret {
    let (state, error) = with_shared(lua, 1, |shared| {
        let mut inner = lock(shared);
        if inner.status == Status::Running {
            return Err(Error::msg("cannot close a running coroutine"));
        }
        inner.status = Status::Dead;
        inner.moved = false;
        Ok((inner.state.take(), inner.error.take()))
    })??;
    drop(state);
    match error {
        None => {
            lua.push_bool(true);
            Ok(1)
        }
        Some(e) => {
            lua.push_bool(false);
            transfer::push_one(lua, e);
            Ok(2)
        }
    }
}

/// Can the value at `i` move as a state coroutine? `None` if it is no
/// state coroutine, else whether it is not running.
pub fn movable(lua: Lua, i: c_int) -> Option<Result<(), Reason>> {
    let status =
        class::with::<StateCo, _>(lua, i, |slot| Some(lock(&slot.as_ref()?.shared).status))??;
    Some(match status {
        Status::Running => Err(Reason::Running),
        _ => Ok(()),
    })
}

/// Takes the state coroutine at `i` (found movable by [`movable`] in the
/// same C call, so not running: only this thread could have resumed it
/// since): its object is left as a closed one.
pub fn take(lua: Lua, i: c_int) -> Moved {
    let moved = class::with::<StateCo, _>(lua, i, |slot| {
        let mut inner = lock(&slot.as_ref()?.shared);
        let moved = Moved {
            state: inner.state.take(),
            status: inner.status,
            error: inner.error.take(),
        };
        inner.status = Status::Dead;
        inner.moved = true;
        Some(moved)
    });
    moved.flatten().unwrap_or(Moved {
        state: None,
        status: Status::Dead,
        error: None,
    })
}

/// Pushes a new state coroutine object owning `moved`.
pub fn push(lua: Lua, moved: Moved) {
    let Moved {
        state,
        status,
        error,
    } = moved;
    let inner = Inner::new(state, status, error);
    class::push(
        lua,
        StateCo {
            shared: Arc::new(Mutex::new(inner)),
        },
    );
}

/// Gives `moved`, taken from the object at `i` by a transfer that did not
/// happen, back to it, unless that object was closed meanwhile (then the
/// state is closed).
pub fn restore(lua: Lua, i: c_int, moved: Moved) {
    let Some(Some(shared)) =
        class::with::<StateCo, _>(lua, i, |slot| Some(slot.as_ref()?.shared.clone()))
    else {
        return;
    };
    let mut inner = lock(&shared);
    if inner.moved && inner.state.is_none() {
        inner.moved = false;
        inner.state = moved.state;
        inner.status = moved.status;
        inner.error = moved.error;
    }
}
