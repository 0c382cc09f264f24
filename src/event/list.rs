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
//! Contract of every function here: `lua` is the running state of a C
//! function (or continuation) of the module, so `LISTS` and `POOL` are its
//! upvalues; stack indices are absolute and valid; the stack has room for 6
//! more values. Coroutines passed in are anchored on `lua`'s stack. No
//! function keeps a Rust value with a destructor alive (a memory error
//! raised by a push longjmps over them).

use std::ffi::{c_int, c_void};

use crate::lua::{
    Error, LUA_TBOOLEAN, LUA_TNIL, LUA_TNUMBER, LUA_TSTRING, LUA_TTABLE, LUA_TTHREAD, LUA_YIELD,
    Lua,
};

pub(super) const LISTS: c_int = Lua::upvalue(1);
pub(super) const POOL: c_int = Lua::upvalue(2);

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

/// The integer slot `n` of the list at `t` (0 if not an integer).
#[inline]
fn get(lua: Lua, t: c_int, n: i64) -> i64 {
    lua.raw_get_index(t, n);
    let v = lua.to_integer(-1).unwrap_or(0);
    lua.pop(1);
    v
}

/// Sets the integer slot `n` of the list at `t`; the header slots always
/// exist, so this never allocates.
#[inline]
fn set(lua: Lua, t: c_int, n: i64, v: i64) {
    lua.push_integer(v);
    lua.raw_set_index(t, n);
}

/// Pushes `LISTS[e]` and returns its type: nil, a thread or a table (a
/// list). A NaN key only reads nil.
#[inline]
pub(super) fn push_entry(lua: Lua, e: c_int) -> c_int {
    lua.push_value(e);
    lua.raw_get(LISTS)
}

/// `LISTS[e] = nil` (clearing a key never allocates).
#[inline]
pub(super) fn detach(lua: Lua, e: c_int) {
    lua.push_value(e);
    lua.push_nil();
    lua.raw_set(LISTS);
}

/// Pushes an empty list: a spare one, or a new one.
fn new_list(lua: Lua) {
    let n = lua.raw_len(POOL) as i64;
    if n > 0 {
        lua.raw_get_index(POOL, n);
        lua.push_nil();
        lua.raw_set_index(POOL, n);
    } else {
        lua.new_table(FIRST as c_int + 4, 0);
        let t = lua.top();
        set(lua, t, HEAD, FIRST);
        set(lua, t, TAIL, FIRST - 1);
    }
}

/// Resets the list at `list`, whose entries are all nil and which is out of
/// `LISTS`, and keeps it as a spare if it is small.
pub(super) fn recycle(lua: Lua, list: c_int) {
    if get(lua, list, TAIL) > POOL_TAIL_MAX {
        return;
    }
    set(lua, list, HEAD, FIRST);
    set(lua, list, TAIL, FIRST - 1);
    let n = lua.raw_len(POOL);
    if n < POOL_MAX {
        lua.push_value(list);
        lua.raw_set_index(POOL, n as i64 + 1);
    }
}

/// A valid registration found by an emitter: the coroutine, and which of
/// the triples on its stack is the registration (0 for the first one).
#[derive(Clone, Copy)]
pub(super) struct Waiter {
    pub(super) co: Lua,
    pub(super) triple: c_int,
    /// The number of values on its stack.
    pub(super) top: c_int,
}

/// The registration on the value at `e` (of type `kind`) of the coroutine
/// `co`, if it is suspended in an await with a direct one on `e` (else the
/// entry is stale). `co`'s stack is read, and `e` may be pushed on it for
/// the comparison, then popped.
#[inline]
fn find_direct(lua: Lua, co: Lua, e: c_int, kind: c_int) -> Option<Waiter> {
    if co.status() != LUA_YIELD {
        return None;
    }
    let top = co.top();
    if kind != LUA_TSTRING && kind != LUA_TNUMBER && kind != LUA_TBOOLEAN {
        // an object (or light userdata): the same one has the same address
        let address = lua.to_pointer(e);
        let mut i = 1;
        while i + 2 <= top {
            if co.to_userdata(i + 1) == direct()
                && co.to_pointer(i) == address
                && co.type_of(i) == kind
            {
                return waiter(co, i, top);
            }
            i += 3;
        }
        return None;
    }
    if co.check_stack(1).is_err() {
        return None;
    }
    lua.push_value(e);
    lua.xmove(co, 1);
    let mut found = 0;
    let mut i = 1;
    while i + 2 <= top {
        if co.to_userdata(i + 1) == direct() && co.raw_equal(i, top + 1) {
            found = i;
            break;
        }
        i += 3;
    }
    co.set_top(top);
    waiter(co, found, top)
}

/// The registration at `index` of the list at address `list` of the
/// coroutine `co`, if it is suspended in an await with it. `co`'s stack is
/// only read, which never allocates or raises.
fn in_list(co: Lua, list: *const c_void, index: i64) -> Option<Waiter> {
    if co.status() != LUA_YIELD {
        return None;
    }
    let top = co.top();
    let mut i = 1;
    while i + 2 <= top {
        if co.to_pointer(i + 1) == list && co.to_integer(i + 2) == Some(index) {
            return waiter(co, i, top);
        }
        i += 3;
    }
    None
}

/// The waiter `co`, with `top` values on its stack, whose triple is at
/// `position` (0: none).
#[inline]
fn waiter(co: Lua, position: c_int, top: c_int) -> Option<Waiter> {
    (position > 0).then_some(Waiter {
        co,
        triple: (position - 1) / 3,
        top,
    })
}

/// Moves the head of the list at `list` past nil entries, from `head`;
/// returns the new head.
fn advance(lua: Lua, list: c_int, mut head: i64, tail: i64) -> i64 {
    while head <= tail {
        let t = lua.raw_get_index(list, head);
        lua.pop(1);
        if t != LUA_TNIL {
            break;
        }
        head += 1;
    }
    set(lua, list, HEAD, head);
    head
}

/// Finds the oldest valid registration on the value at `e` (of type
/// `key`), whose `LISTS[e]` (not nil, of type `kind`) is at `at`, dropping
/// stale ones. With `take` it is removed too, and its coroutine stays
/// anchored on the stack (pushed, or at `at`). Leaves nothing in
/// `LISTS[e]` if no registration is left.
// NOTE: inlined into each emitter, as `register` into each await: each
// has a few callers, the hot ones (see `await_one`).
#[inline(always)]
pub(super) fn oldest(
    lua: Lua,
    e: c_int,
    key: c_int,
    at: c_int,
    kind: c_int,
    take: bool,
) -> Option<Waiter> {
    if kind == LUA_TTHREAD {
        let found = lua
            .to_thread(at)
            .and_then(|co| find_direct(lua, co, e, key));
        if take || found.is_none() {
            detach(lua, e);
        }
        return found;
    }
    let list = at;
    let address = lua.to_pointer(list);
    let mut head = get(lua, list, HEAD);
    let tail = get(lua, list, TAIL);
    let mut found = None;
    while head <= tail {
        lua.raw_get_index(list, head);
        let valid = lua.to_thread(-1).and_then(|co| in_list(co, address, head));
        if valid.is_some() && !take {
            lua.pop(1);
            return valid;
        }
        lua.push_nil();
        lua.raw_set_index(list, head);
        head = advance(lua, list, head + 1, tail);
        if valid.is_some() {
            found = valid; // stays pushed
            break;
        }
        lua.pop(1);
    }
    if head > tail {
        detach(lua, e);
        recycle(lua, list);
    }
    found
}

/// Removes the entry at `index` of the list at `list`, detached by
/// `emitall`, and returns it (its coroutine pushed) if it is valid; else
/// pushes nothing.
pub(super) fn take_at(lua: Lua, list: c_int, index: i64) -> Option<Waiter> {
    if lua.raw_get_index(list, index) == LUA_TNIL {
        lua.pop(1);
        return None;
    }
    lua.push_nil();
    lua.raw_set_index(list, index);
    let found = lua
        .to_thread(-1)
        .and_then(|co| in_list(co, lua.to_pointer(list), index));
    if found.is_none() {
        lua.pop(1);
    }
    found
}

/// The head and tail of the list at `list`.
pub(super) fn bounds(lua: Lua, list: c_int) -> (i64, i64) {
    (get(lua, list, HEAD), get(lua, list, TAIL))
}

/// Registers the running coroutine on the value at `e` (of type `key`,
/// neither nil nor NaN) and pushes the rest of the triple of the
/// registration. Pushes nothing and returns false if this await made that
/// registration already (a duplicate value); its `done` triples are at the
/// bottom of the stack. Fails only if the coroutine to move to a list has
/// a full stack; otherwise only memory errors can be raised.
#[inline(always)]
pub(super) fn register(lua: Lua, e: c_int, key: c_int, done: c_int) -> Result<bool, Error> {
    match push_entry(lua, e) {
        LUA_TTHREAD => {
            // a thread: `to_thread` finds it
            let Some(other) = lua.to_thread(-1) else {
                unreachable!()
            };
            if other.same_thread(lua) {
                if holds_direct(lua, done, e) {
                    lua.pop(1); // a duplicate
                    return Ok(false);
                }
                // stale: replaced below
            } else if let Some(found) = find_direct(lua, other, e, key) {
                // `other` moves to a new list, at FIRST
                other.check_stack(1)?;
                new_list(lua);
                let list = lua.top();
                lua.push_value(-2);
                lua.raw_set_index(list, FIRST);
                lua.push_thread();
                lua.raw_set_index(list, FIRST + 1);
                set(lua, list, TAIL, FIRST + 1);
                lua.push_value(e);
                lua.push_value(list);
                lua.raw_set(LISTS);
                rewrite(lua, other, 3 * found.triple + 1, list);
                lua.remove(list - 1); // `other`
                lua.push_integer(FIRST + 1);
                return Ok(true);
            }
            register_direct(lua, e);
        }
        LUA_TTABLE => {
            let list = lua.top();
            let tail = get(lua, list, TAIL);
            if lua.raw_get_index(list, tail) == LUA_TTHREAD
                && lua.to_thread(-1).is_some_and(|co| co.same_thread(lua))
                && holds(lua, done, lua.to_pointer(list), tail)
            {
                lua.pop(2); // a duplicate
                return Ok(false);
            }
            lua.set_top(list);
            lua.push_thread();
            lua.raw_set_index(list, tail + 1);
            set(lua, list, TAIL, tail + 1);
            lua.push_integer(tail + 1);
        }
        _ => register_direct(lua, e),
    }
    Ok(true)
}

/// `LISTS[e] = <running coroutine>`; replaces the value on top (the old
/// `LISTS[e]`) by the rest of the triple.
#[inline]
fn register_direct(lua: Lua, e: c_int) {
    lua.copy(e, -1);
    lua.push_thread();
    lua.raw_set(LISTS);
    lua.push_light(direct());
    lua.push_integer(0);
}

/// Rewrites the direct triple at `pos` of the suspended coroutine `co` to
/// `(e, list, FIRST)`, `list` being at `list` on `lua`. `co` is suspended
/// in our await (checked by `find_direct`) and has room for one more value
/// (checked by the caller); its frame's slots are overwritten with plain
/// values.
fn rewrite(lua: Lua, co: Lua, pos: c_int, list: c_int) {
    lua.push_value(list);
    lua.xmove(co, 1);
    co.replace(pos + 1);
    co.push_integer(FIRST);
    co.replace(pos + 2);
}

/// Do the first `done` triples on the stack hold a direct registration on
/// the value at `e`?
fn holds_direct(lua: Lua, done: c_int, e: c_int) -> bool {
    (0..done).any(|k| lua.to_userdata(3 * k + 2) == direct() && lua.raw_equal(3 * k + 1, e))
}

/// Do the first `done` triples on the stack hold the registration `index`
/// of the list at address `list`?
fn holds(lua: Lua, done: c_int, list: *const c_void, index: i64) -> bool {
    (0..done).any(|k| lua.to_pointer(3 * k + 2) == list && lua.to_integer(3 * k + 3) == Some(index))
}

/// Removes the registration of the triple at `t`, which no emitter took
/// (setting existing slots to nil never allocates).
#[inline]
pub(super) fn cancel(lua: Lua, t: c_int) {
    if lua.to_userdata(t + 1) == direct() {
        // still `LISTS[e]`: moving it to a list rewrites the triple
        detach(lua, t);
        return;
    }
    let list = t + 1;
    let index = lua.to_integer(t + 2).unwrap_or(0);
    lua.raw_get_index(list, index);
    let mine = lua.to_thread(-1).is_some_and(|co| co.same_thread(lua));
    lua.pop(1);
    if !mine {
        return; // cannot happen; a wrong removal would be worse
    }
    lua.push_nil();
    lua.raw_set_index(list, index);
    let (head, tail) = bounds(lua, list);
    if index == head && advance(lua, list, head, tail) > tail {
        // empty: out of LISTS, unless `emitall` detached it
        push_entry(lua, t);
        let attached = lua.raw_equal(-1, list);
        lua.pop(1);
        if attached {
            detach(lua, t);
            recycle(lua, list);
        }
    }
}
