//! `coutil.testing`, only in debug builds: hooks for the test scripts that
//! no script could otherwise reach.
//!
//! `testing.looperrors()` counts the errors of coroutines resumed by a
//! loop, so that testlib fails a case that raised one unexpectedly.
//! `testing.failalloc(n [, times])` makes the state's allocator fail
//! `times` (default 2) consecutive growing allocations, starting with the
//! `n`-th from now (Lua retries a failed one once after a full collection,
//! so one failure alone is never seen). It tests E1 of spec/seed-todo.md:
//! an allocation failing while the loop turns a completion into Lua values.

use std::ffi::c_void;
use std::sync::atomic::{AtomicI64, Ordering};

use super::{Lua, Reg, Ret, ffi};
use crate::cfn;

pub const FUNCTIONS: &[Reg] = &[
    (c"failalloc", cfn!(failalloc)),
    (c"looperrors", cfn!(looperrors)),
];

/// count = testing.looperrors(): errors raised so far by coroutines that a
/// loop resumed (each also a warning `[coutil] system.run: ...`).
fn looperrors(lua: Lua) -> Ret {
    let n = super::awaiting::LOOP_ERRORS.load(Ordering::Relaxed);
    lua.push_integer(n as i64);
    Ok(1)
}

/// The allocator installed over the state's own.
struct Failing {
    prev: ffi::lua_Alloc,
    prev_ud: *mut c_void,
    /// Allocations left before failing (counted down), then failures left.
    countdown: AtomicI64,
    failures: AtomicI64,
}

unsafe extern "C" fn alloc(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    // SAFETY: `ud` is the Failing installed by `failalloc`, never freed.
    let f = unsafe { &*(ud as *const Failing) };
    // Lua assumes that shrinking and freeing never fail.
    let grows = nsize > 0 && (ptr.is_null() || nsize > osize);
    if grows && f.countdown.load(Ordering::Relaxed) > 0 {
        let left = f.countdown.fetch_sub(1, Ordering::Relaxed) - 1;
        if left == 0 && f.failures.load(Ordering::Relaxed) > 0 {
            f.failures.fetch_sub(1, Ordering::Relaxed);
            f.countdown.store(1, Ordering::Relaxed);
            return std::ptr::null_mut();
        }
    }
    // SAFETY: the previous allocator of this state, with its data.
    unsafe { (f.prev)(f.prev_ud, ptr, osize, nsize) }
}

/// testing.failalloc(n [, times])
fn failalloc(lua: Lua) -> Ret {
    let n = lua.arg_integer(1)?.max(1);
    let times = lua.opt_integer(2, 2)?.max(0);
    let l = lua.raw();
    let mut ud = std::ptr::null_mut();
    // SAFETY: reads the state's allocator; installs ours over it once
    // (its data is leaked: it must outlive every allocation of the state).
    unsafe {
        let current = ffi::lua_getallocf(l, &mut ud);
        let failing = if std::ptr::fn_addr_eq(current, alloc as ffi::lua_Alloc) {
            &*(ud as *const Failing)
        } else {
            let f: &'static Failing = Box::leak(Box::new(Failing {
                prev: current,
                prev_ud: ud,
                countdown: AtomicI64::new(0),
                failures: AtomicI64::new(0),
            }));
            ffi::lua_setallocf(l, alloc, f as *const Failing as *mut c_void);
            f
        };
        failing.failures.store(times, Ordering::Relaxed);
        failing.countdown.store(n, Ordering::Relaxed);
    }
    Ok(0)
}
