//! System information (spec/stdio-info.md §2, §3): `system.procinfo`,
//! and the `system.cpuinfo` / `system.netinfo` iterators.
//!
//! The iterators are callable userdata holding a snapshot taken when they
//! are made (`coutil:cpustats`, `coutil:netifaces`): `it(which, k)` returns
//! `k+1` and the values of entry `k+1`, `#it` the number of entries, and
//! closing them (to-be-closed, or collection) drops the snapshot. This file
//! holds that machinery, generic over the kind of entry; each function's
//! file makes its entries.
//!
//! Sources are those of libuv on Linux: `/proc` files, `uname`,
//! `getrusage`, `getifaddrs`, the cgroup memory limits. OS failures are
//! raised with libuv's message text.

mod cpuinfo;
mod netinfo;
mod procinfo;

use std::ffi::c_int;

use crate::cfn;
use crate::lua::class::{self, Object};
use crate::lua::{Error, Lua, Reg, Ret, fail};

pub const FUNCTIONS: &[Reg] = &[
    (c"procinfo", cfn!(procinfo::procinfo)),
    (c"cpuinfo", cfn!(cpuinfo::cpuinfo)),
    (c"netinfo", cfn!(netinfo::netinfo)),
];

/// The raised error of an OS failure.
fn os_error(e: &std::io::Error) -> Error {
    Error::msg(fail::text(fail::code_of(e)))
}

fn last_error() -> Error {
    os_error(&std::io::Error::last_os_error())
}

fn c_bytes(chars: &[libc::c_char]) -> &[u8] {
    // SAFETY: c_char and u8 have the same size and alignment.
    let bytes: &[u8] = unsafe { std::slice::from_raw_parts(chars.as_ptr().cast(), chars.len()) };
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

// ---------------------------------------------------------------------
// Iterators

/// One entry of a snapshot, pushed one value per character.
trait Entry: Sized + Clone + 'static {
    /// Is `c` a character of this kind of entry?
    fn known(c: u8) -> bool;
    /// Pushes the value of character `c` (a known one).
    fn push(&self, lua: Lua, c: u8);
}

/// A snapshot of entries: the iterator object.
struct Snapshot<E> {
    entries: Vec<E>,
}

/// Checks the characters of the `which` at `i`.
fn check_which<'a, E: Entry>(lua: &'a Lua, i: c_int) -> Result<&'a [u8], Error> {
    let which: &'a [u8] = lua.arg_bytes(i)?;
    match which.iter().find(|&&c| !E::known(c)) {
        Some(&c) => Err(Error::mode_char(i, c)),
        None => Ok(which),
    }
}

fn closed() -> Error {
    Error::msg("closed object")
}

/// Runs `f` on the open snapshot at 1.
fn with_snapshot<E: Entry, R>(
    lua: Lua,
    f: impl FnOnce(&Snapshot<E>) -> R + Send,
) -> Result<R, Error>
where
    Snapshot<E>: Object,
{
    class::with_checked::<Snapshot<E>, _>(lua, 1, |slot| slot.as_ref().map(f))?.ok_or_else(closed)
}

/// k+1, ... | (nothing) = it(which, k)
fn call<E: Entry>(lua: Lua) -> Ret
where
    Snapshot<E>: Object,
{
    with_snapshot::<E, _>(lua, |_| ())?;
    let which = check_which::<E>(&lua, 2)?;
    let k = lua.arg_integer(3)?;
    let entry = with_snapshot::<E, _>(lua, |snap| {
        usize::try_from(k)
            .ok()
            .and_then(|k| snap.entries.get(k))
            .cloned()
    })?;
    let Some(entry) = entry else {
        return Ok(0);
    };
    let count = c_int::try_from(which.len())
        .ok()
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| Error::msg("stack overflow"))?;
    lua.check_stack(count)?;
    lua.push_integer(k + 1);
    for &c in which {
        entry.push(lua, c);
    }
    Ok(count)
}

/// #it
fn len<E: Entry>(lua: Lua) -> Ret
where
    Snapshot<E>: Object,
{
    let n = with_snapshot::<E, _>(lua, |snap| snap.entries.len())?;
    lua.push_integer(n as i64);
    Ok(1)
}

/// `__close`: drops the snapshot.
fn close<E: Entry>(lua: Lua) -> Ret
where
    Snapshot<E>: Object,
{
    let taken = class::with::<Snapshot<E>, _>(lua, 1, Option::take);
    drop(taken);
    Ok(0)
}

/// Pushes `it, which, 0, it` for the snapshot, `which` being at `i`.
fn push_iterator<E: Entry>(lua: Lua, entries: Vec<E>, i: c_int) -> Ret
where
    Snapshot<E>: Object,
{
    lua.set_top(i);
    class::push(lua, Snapshot { entries });
    lua.push_value(i);
    lua.push_integer(0);
    lua.push_value(i + 1);
    Ok(4)
}
