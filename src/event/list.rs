//! The registrations of `coutil.event`.
//!
//! `LISTS` (an upvalue of every function of the module) is an ephemeron
//! table keyed by the awaited values. `LISTS[e]` is either
//! * the waiting coroutine itself, when there is one registration on `e`
//!   (the common case, with no table involved), or
//! * a list: a plain table with the waiting coroutines in registration
//!   order, from index `FIRST`; `[HEAD]` is the index of the oldest entry,
//!   which is never nil, and `[TAIL]` the newest (`HEAD > TAIL`: empty).
//!   A deregistered entry becomes nil.
//!
//! Values without registrations have no entry in `LISTS`, so emptiness is a
//! lookup; empty lists are kept in `POOL` for reuse.
//!
//! Entries never move, so a waiter keeps on its own stack, for each value
//! it awaits, the triple `(e, DIRECT, 0)` or `(e, list, index)` of its
//! registration: the await function yields keeping them, so an await
//! allocates nothing (but a list when a value gets a second waiter and no
//! spare one is left). When a second coroutine registers on `e`, the first
//! one moves to a new list at `FIRST` and its triple is rewritten in place.
//!
//! A registration is removed only by the emitter that takes it to resume
//! its waiter, or by the waiter itself once resumed; so the waiter knows
//! which registrations are left (the emitter's marker tells which triple it
//! took).
//!
//! An entry is *valid* when its coroutine is suspended with its triple on
//! the stack. Emitters resume only valid entries and drop the others: a
//! coroutine closed by `coroutine.close` (which cannot tell us) or whose
//! await failed half-way (a memory error) leaves a stale entry, which is
//! never resumed and goes away when an emitter, `pending` or a new
//! registration on the value comes across it.
//!
//! Safety contract of every function here: `l` is the running state of a
//! C function (or continuation) of the module, so `LISTS` and `POOL` are its
//! upvalues; stack indices are absolute and valid; the stack has room for 6
//! more values. Coroutines passed in are anchored on `l`'s stack. No
//! function keeps a Rust value with a destructor alive.

use std::ffi::{c_int, c_void};
use std::ptr::null_mut;

use crate::lua::{
    Error, LUA_TBOOLEAN, LUA_TNIL, LUA_TNUMBER, LUA_TSTRING, LUA_TTABLE, LUA_TTHREAD, LUA_YIELD,
    ffi,
};

pub(super) const LISTS: c_int = ffi::lua_upvalueindex(1);
pub(super) const POOL: c_int = ffi::lua_upvalueindex(2);

const HEAD: i64 = 1;
const TAIL: i64 = 2;
const FIRST: i64 = 3;

/// Spare lists kept at most, and the largest tail of a list kept as spare
/// (bigger ones may have a big array; the collector takes them).
const POOL_MAX: usize = 16;
const POOL_TAIL_MAX: i64 = FIRST + 15;

/// Second value of the triple of a direct registration.
static DIRECT: u8 = 0;

fn direct() -> *mut c_void {
    &DIRECT as *const u8 as *mut c_void
}

type State = *mut ffi::lua_State;

unsafe fn get(l: State, t: c_int, n: i64) -> i64 {
    // SAFETY: see the module's contract; reads an integer slot.
    unsafe {
        ffi::lua_rawgeti(l, t, n);
        let v = ffi::lua_tointegerx(l, -1, null_mut());
        ffi::lua_settop(l, -2);
        v
    }
}

unsafe fn set(l: State, t: c_int, n: i64, v: i64) {
    // SAFETY: see the module's contract; the header slots always exist, so
    // this never allocates.
    unsafe {
        ffi::lua_pushinteger(l, v);
        ffi::lua_rawseti(l, t, n);
    }
}

/// Pushes `LISTS[e]` and returns its type: nil, a thread or a table (a
/// list). A NaN key only reads nil.
#[inline]
pub(super) unsafe fn push_entry(l: State, e: c_int) -> c_int {
    // SAFETY: see the module's contract.
    unsafe {
        ffi::lua_pushvalue(l, e);
        ffi::lua_rawget(l, LISTS)
    }
}

/// `LISTS[e] = nil`.
#[inline]
pub(super) unsafe fn detach(l: State, e: c_int) {
    // SAFETY: see the module's contract; clearing a key never allocates.
    unsafe {
        ffi::lua_pushvalue(l, e);
        ffi::lua_pushnil(l);
        ffi::lua_rawset(l, LISTS);
    }
}

/// Pushes an empty list: a spare one, or a new one.
unsafe fn new_list(l: State) {
    // SAFETY: see the module's contract.
    unsafe {
        let n = ffi::lua_rawlen(l, POOL) as i64;
        if n > 0 {
            ffi::lua_rawgeti(l, POOL, n);
            ffi::lua_pushnil(l);
            ffi::lua_rawseti(l, POOL, n);
        } else {
            ffi::lua_createtable(l, FIRST as c_int + 4, 0);
            let t = ffi::lua_gettop(l);
            set(l, t, HEAD, FIRST);
            set(l, t, TAIL, FIRST - 1);
        }
    }
}

/// Resets the list at `list`, whose entries are all nil and which is out of
/// `LISTS`, and keeps it as a spare if it is small.
pub(super) unsafe fn recycle(l: State, list: c_int) {
    // SAFETY: see the module's contract.
    unsafe {
        if get(l, list, TAIL) > POOL_TAIL_MAX {
            return;
        }
        set(l, list, HEAD, FIRST);
        set(l, list, TAIL, FIRST - 1);
        let n = ffi::lua_rawlen(l, POOL);
        if n < POOL_MAX {
            ffi::lua_pushvalue(l, list);
            ffi::lua_rawseti(l, POOL, n as i64 + 1);
        }
    }
}

/// A valid registration found by an emitter: the coroutine, and which of
/// the triples on its stack is the registration (0 for the first one).
#[derive(Clone, Copy)]
pub(super) struct Waiter {
    pub(super) co: State,
    pub(super) triple: c_int,
    /// The number of values on its stack.
    pub(super) top: c_int,
}

/// The registration on the value at `e` (of type `kind`) of the coroutine
/// `co`, if it is suspended in an await with a direct one on `e` (else the
/// entry is stale).
#[inline]
unsafe fn find_direct(l: State, co: State, e: c_int, kind: c_int) -> Option<Waiter> {
    // SAFETY: `co` is a live thread, not running; its stack is read, and
    // `e` may be pushed on it for the comparison, then popped.
    unsafe {
        if ffi::lua_status(co) != LUA_YIELD {
            return None;
        }
        let top = ffi::lua_gettop(co);
        if kind != LUA_TSTRING && kind != LUA_TNUMBER && kind != LUA_TBOOLEAN {
            // an object (or light userdata): the same one has the same address
            let address = ffi::lua_topointer(l, e);
            let mut i = 1;
            while i + 2 <= top {
                if ffi::lua_touserdata(co, i + 1) == direct()
                    && ffi::lua_topointer(co, i) == address
                    && ffi::lua_type(co, i) == kind
                {
                    return waiter(co, i, top);
                }
                i += 3;
            }
            return None;
        }
        if ffi::lua_checkstack(co, 1) == 0 {
            return None;
        }
        ffi::lua_pushvalue(l, e);
        ffi::lua_xmove(l, co, 1);
        let mut found = 0;
        let mut i = 1;
        while i + 2 <= top {
            if ffi::lua_touserdata(co, i + 1) == direct() && ffi::lua_rawequal(co, i, top + 1) != 0
            {
                found = i;
                break;
            }
            i += 3;
        }
        ffi::lua_settop(co, top);
        waiter(co, found, top)
    }
}

/// The registration at `index` of the list at address `list` of the
/// coroutine `co`, if it is suspended in an await with it.
unsafe fn in_list(co: State, list: *const c_void, index: i64) -> Option<Waiter> {
    // SAFETY: `co` is a live thread, not running; its stack is only read,
    // and these reads never allocate or raise.
    unsafe {
        if ffi::lua_status(co) != LUA_YIELD {
            return None;
        }
        let top = ffi::lua_gettop(co);
        let mut i = 1;
        while i + 2 <= top {
            if ffi::lua_topointer(co, i + 1) == list
                && ffi::lua_tointegerx(co, i + 2, null_mut()) == index
            {
                return waiter(co, i, top);
            }
            i += 3;
        }
        None
    }
}

/// The waiter `co`, with `top` values on its stack, whose triple is at
/// `position` (0: none).
#[inline]
fn waiter(co: State, position: c_int, top: c_int) -> Option<Waiter> {
    (position > 0).then_some(Waiter {
        co,
        triple: (position - 1) / 3,
        top,
    })
}

/// Moves the head of the list at `list` past nil entries, from `head`;
/// returns the new head.
unsafe fn advance(l: State, list: c_int, mut head: i64, tail: i64) -> i64 {
    // SAFETY: see the module's contract.
    unsafe {
        while head <= tail {
            let t = ffi::lua_rawgeti(l, list, head);
            ffi::lua_settop(l, -2);
            if t != LUA_TNIL {
                break;
            }
            head += 1;
        }
        set(l, list, HEAD, head);
        head
    }
}

/// Finds the oldest valid registration on the value at `e` (of type
/// `key`), whose `LISTS[e]` (not nil, of type `kind`) is at `at`, dropping
/// stale ones. With `take` it is removed too, and its coroutine stays
/// anchored on the stack (pushed, or at `at`). Leaves nothing in
/// `LISTS[e]` if no registration is left.
#[inline]
pub(super) unsafe fn oldest(
    l: State,
    e: c_int,
    key: c_int,
    at: c_int,
    kind: c_int,
    take: bool,
) -> Option<Waiter> {
    // SAFETY: see the module's contract.
    unsafe {
        if kind == LUA_TTHREAD {
            let co = ffi::lua_tothread(l, at);
            let found = find_direct(l, co, e, key);
            if take || found.is_none() {
                detach(l, e);
            }
            return found;
        }
        let list = at;
        let address = ffi::lua_topointer(l, list);
        let mut head = get(l, list, HEAD);
        let tail = get(l, list, TAIL);
        let mut found = None;
        while head <= tail {
            ffi::lua_rawgeti(l, list, head);
            let co = ffi::lua_tothread(l, -1);
            let valid = if co.is_null() {
                None
            } else {
                in_list(co, address, head)
            };
            if valid.is_some() && !take {
                ffi::lua_settop(l, -2);
                return valid;
            }
            ffi::lua_pushnil(l);
            ffi::lua_rawseti(l, list, head);
            head = advance(l, list, head + 1, tail);
            if valid.is_some() {
                found = valid; // stays pushed
                break;
            }
            ffi::lua_settop(l, -2);
        }
        if head > tail {
            detach(l, e);
            recycle(l, list);
        }
        found
    }
}

/// Removes the entry at `index` of the list at `list`, detached by
/// `emitall`, and returns it (its coroutine pushed) if it is valid; else
/// pushes nothing.
pub(super) unsafe fn take_at(l: State, list: c_int, index: i64) -> Option<Waiter> {
    // SAFETY: see the module's contract.
    unsafe {
        if ffi::lua_rawgeti(l, list, index) == LUA_TNIL {
            ffi::lua_settop(l, -2);
            return None;
        }
        ffi::lua_pushnil(l);
        ffi::lua_rawseti(l, list, index);
        let co = ffi::lua_tothread(l, -1);
        if !co.is_null() {
            let found = in_list(co, ffi::lua_topointer(l, list), index);
            if found.is_some() {
                return found;
            }
        }
        ffi::lua_settop(l, -2);
        None
    }
}

/// The head and tail of the list at `list`.
pub(super) unsafe fn bounds(l: State, list: c_int) -> (i64, i64) {
    // SAFETY: see the module's contract.
    unsafe { (get(l, list, HEAD), get(l, list, TAIL)) }
}

/// Registers the running coroutine on the value at `e` (of type `key`,
/// neither nil nor NaN) and pushes the rest of the triple of the
/// registration. Pushes nothing and returns false if this await made that
/// registration already (a duplicate value); its `done` triples are at the
/// bottom of the stack. Fails only if the coroutine to move to a list has
/// a full stack.
#[inline]
pub(super) unsafe fn register(l: State, e: c_int, key: c_int, done: c_int) -> Result<bool, Error> {
    // SAFETY: see the module's contract. Only memory errors can be raised.
    unsafe {
        match push_entry(l, e) {
            LUA_TTHREAD => {
                let other = ffi::lua_tothread(l, -1);
                if other == l {
                    if holds_direct(l, done, e) {
                        ffi::lua_settop(l, -2); // a duplicate
                        return Ok(false);
                    }
                    // stale: replaced below
                } else if let Some(found) = find_direct(l, other, e, key) {
                    // `other` moves to a new list, at FIRST
                    if ffi::lua_checkstack(other, 1) == 0 {
                        return Err(Error::msg("stack overflow"));
                    }
                    new_list(l);
                    let list = ffi::lua_gettop(l);
                    ffi::lua_pushvalue(l, -2);
                    ffi::lua_rawseti(l, list, FIRST);
                    ffi::lua_pushthread(l);
                    ffi::lua_rawseti(l, list, FIRST + 1);
                    set(l, list, TAIL, FIRST + 1);
                    ffi::lua_pushvalue(l, e);
                    ffi::lua_pushvalue(l, list);
                    ffi::lua_rawset(l, LISTS);
                    rewrite(l, other, 3 * found.triple + 1, list);
                    ffi::lua_remove(l, list - 1); // `other`
                    ffi::lua_pushinteger(l, FIRST + 1);
                    return Ok(true);
                }
                register_direct(l, e);
            }
            LUA_TTABLE => {
                let list = ffi::lua_gettop(l);
                let tail = get(l, list, TAIL);
                if ffi::lua_rawgeti(l, list, tail) == LUA_TTHREAD
                    && ffi::lua_tothread(l, -1) == l
                    && holds(l, done, ffi::lua_topointer(l, list), tail)
                {
                    ffi::lua_settop(l, -3); // a duplicate
                    return Ok(false);
                }
                ffi::lua_settop(l, list);
                ffi::lua_pushthread(l);
                ffi::lua_rawseti(l, list, tail + 1);
                set(l, list, TAIL, tail + 1);
                ffi::lua_pushinteger(l, tail + 1);
            }
            _ => register_direct(l, e),
        }
        Ok(true)
    }
}

/// `LISTS[e] = <running coroutine>`; replaces the value on top (the old
/// `LISTS[e]`) by the rest of the triple.
#[inline]
unsafe fn register_direct(l: State, e: c_int) {
    // SAFETY: see the module's contract.
    unsafe {
        ffi::lua_copy(l, e, -1);
        ffi::lua_pushthread(l);
        ffi::lua_rawset(l, LISTS);
        ffi::lua_pushlightuserdata(l, direct());
        ffi::lua_pushinteger(l, 0);
    }
}

/// Rewrites the direct triple at `pos` of the suspended coroutine `co` to
/// `(e, list, FIRST)`, `list` being at `list` on `l`.
unsafe fn rewrite(l: State, co: State, pos: c_int, list: c_int) {
    // SAFETY: `co` is suspended in our await (checked by `find_direct`)
    // and has room for one more value (checked by the caller); its frame's
    // slots are overwritten with plain values.
    unsafe {
        ffi::lua_pushvalue(l, list);
        ffi::lua_xmove(l, co, 1);
        ffi::lua_replace(co, pos + 1);
        ffi::lua_pushinteger(co, FIRST);
        ffi::lua_replace(co, pos + 2);
    }
}

/// Do the first `done` triples on the stack hold a direct registration on
/// the value at `e`?
unsafe fn holds_direct(l: State, done: c_int, e: c_int) -> bool {
    // SAFETY: see the module's contract; only reads.
    unsafe {
        (0..done).any(|k| {
            ffi::lua_touserdata(l, 3 * k + 2) == direct() && ffi::lua_rawequal(l, 3 * k + 1, e) != 0
        })
    }
}

/// Do the first `done` triples on the stack hold the registration `index`
/// of the list at address `list`?
unsafe fn holds(l: State, done: c_int, list: *const c_void, index: i64) -> bool {
    // SAFETY: see the module's contract; only reads.
    unsafe {
        (0..done).any(|k| {
            ffi::lua_topointer(l, 3 * k + 2) == list
                && ffi::lua_tointegerx(l, 3 * k + 3, null_mut()) == index
        })
    }
}

/// Removes the registration of the triple at `t`, which no emitter took.
#[inline]
pub(super) unsafe fn cancel(l: State, t: c_int) {
    // SAFETY: see the module's contract; setting existing slots to nil
    // never allocates.
    unsafe {
        if ffi::lua_touserdata(l, t + 1) == direct() {
            // still `LISTS[e]`: moving it to a list rewrites the triple
            detach(l, t);
            return;
        }
        let list = t + 1;
        let index = ffi::lua_tointegerx(l, t + 2, null_mut());
        ffi::lua_rawgeti(l, list, index);
        let mine = ffi::lua_tothread(l, -1) == l;
        ffi::lua_settop(l, -2);
        if !mine {
            return; // cannot happen; a wrong removal would be worse
        }
        ffi::lua_pushnil(l);
        ffi::lua_rawseti(l, list, index);
        let (head, tail) = bounds(l, list);
        if index == head && advance(l, list, head, tail) > tail {
            // empty: out of LISTS, unless `emitall` detached it
            push_entry(l, t);
            let attached = ffi::lua_rawequal(l, -1, list) != 0;
            ffi::lua_settop(l, -2);
            if attached {
                detach(l, t);
                recycle(l, list);
            }
        }
    }
}
