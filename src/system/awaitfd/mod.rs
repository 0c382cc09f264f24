//! `system.awaitfd(fd, events)` (extension E7): waits until a descriptor
//! that is not ours (an integer, or a Lua `io` file) is ready, without
//! reading or writing it, so that other libraries' sockets and pipes can
//! join the loop. Coutil never closes it.
//!
//! Each descriptor number waited on has a [`Watch`], the handler of its
//! registration in the loop's poll (`runtime::io`: edge-triggered, kept
//! between waits, identified by number and forgotten when one of our
//! sources takes the number); the loop keeps it, and finds it by number. Every wait re-arms it with its own
//! interests, which also has the kernel report what is ready already: the
//! poll phase delivers it, so `awaitfd` always suspends (R1), and what it
//! returns was ready when the poll looked. One coroutine waits per
//! descriptor (`already in use`); an explicit resume stops the watch.
//!
//! Results follow `poll(2)` (and libuv's `uv_poll`, which the original
//! planned to use): the requested events among those reported, where an
//! error or hang-up makes reads (`r`) and writes (`w`) ready (they would
//! not block), a hang-up also `d`, and a condition that matches none of
//! the requested events makes them all ready (libuv merges them likewise),
//! so that it is never lost. Unlike libuv, an error is not turned into
//! `bad file descriptor`: the coroutine gets readiness and meets the error
//! in its own call. A file epoll cannot watch (`EPERM`: regular files,
//! directories, `/dev/null`) is, as `poll(2)` says, always ready to read
//! and write: `r` and `w` are returned at once (through the loop), and
//! only `p`/`d` requested fail with `operation not permitted`, as libuv's.

mod sys;

use std::any::Any;
use std::cell::RefCell;
use std::ffi::c_int;
use std::os::fd::RawFd;
use std::rc::Rc;

use crate::lua::awaiting::{self, Await, Resumed, SysLoop};
use crate::lua::{Error, KContext, LUA_TNUMBER, LUA_TUSERDATA, Lua, Reg, fail, iofile};
use crate::runtime::{
    Completions, Handler, Interest, OpId, Outcome, Readiness, SourceHandler, Token, Wait,
};
use crate::system::sys_loop;
use crate::{afn, kfn};

pub const FUNCTIONS: &[Reg] = &[(c"awaitfd", afn!(awaitfd))];

const R: u8 = 1;
const W: u8 = 2;
const P: u8 = 4;
const D: u8 = 8;
/// The event characters, in the order of results.
const CHARS: [(u8, u8); 4] = [(b'r', R), (b'w', W), (b'p', P), (b'd', D)];

/// A descriptor number being watched, and its current wait.
struct Watch {
    fd: RawFd,
    /// The registration, `None` once the loop forgot it.
    token: Option<Token>,
    /// The waiting coroutine's op.
    op: Option<OpId>,
    /// Completed by the handler, not delivered yet.
    woken: bool,
    wanted: u8,
    /// What the handler found ready (`woken`).
    ready: u8,
}

impl SourceHandler for Watch {
    fn ready(&mut self, r: Readiness, done: &mut Completions) {
        let Some(op) = self.op.filter(|_| !self.woken) else {
            return; // nobody waits: the next wait asks the kernel again
        };
        let got = ready_set(r, self.wanted, self.fd);
        if got != 0 {
            self.ready = got;
            self.woken = true;
            done.push(op, None);
        }
    }

    fn forgotten(&mut self, done: &mut Completions) {
        // The number was closed (and is one of our sources' now); the loop
        // drops this watch, so the failure travels with the completion.
        self.token = None;
        if let Some(op) = self.op.filter(|_| !self.woken) {
            self.woken = true;
            done.push(op, Some(Box::new(Early::Failed(libc::EBADF)) as Outcome));
        }
    }

    fn as_any(&mut self) -> Option<&mut dyn Any> {
        Some(self)
    }
}

/// Runs `f` on the watch behind `handler` (a [`Watch`]: the loop's
/// watches are all made here).
fn with_watch<T>(handler: &Handler, f: impl FnOnce(&mut Watch) -> T) -> Option<T> {
    let mut h = handler.borrow_mut();
    h.as_any()?.downcast_mut::<Watch>().map(f)
}

/// The requested events among those `r` reports (see the module's doc).
fn ready_set(r: Readiness, wanted: u8, fd: RawFd) -> u8 {
    let hangup = r.read_closed && r.write_closed;
    let broken = r.error || hangup;
    // mio's `readable` includes priority data: ask when it could be only that.
    let input = r.readable && (!r.priority || wanted & P == 0 || sys::has_input(fd));
    let mut got = 0;
    if input || broken {
        got |= R;
    }
    if r.writable || broken {
        got |= W;
    }
    if r.priority {
        got |= P;
    }
    if r.read_closed {
        got |= D;
    }
    got &= wanted;
    if got == 0 && broken { wanted } else { got }
}

/// The poll interests of a set of events (`d` comes with reading).
fn interest(wanted: u8) -> Interest {
    let mut all: Option<Interest> = None;
    for (bits, i) in [
        (R | D, Interest::READABLE),
        (W, Interest::WRITABLE),
        (P, Interest::PRIORITY),
    ] {
        if wanted & bits != 0 {
            all = Some(all.map_or(i, |a| a.add(i)));
        }
    }
    all.expect("at least one event")
}

/// The result of a wait that ended during the call.
enum Early {
    Ready(u8),
    Failed(i32),
}

/// ready-events | false, msg, code = system.awaitfd(fd, events)
fn awaitfd(lua: Lua) -> Result<Await, Error> {
    let fd = fd_arg(lua, 1)?;
    let wanted = events_arg(lua, 2)?;
    let sl = sys_loop(&lua);
    let watch = fd.and_then(|fd| sl.watcher(fd));
    if let Some(op) = watch
        .as_ref()
        .and_then(|h| with_watch(h, |w| w.op).flatten())
    {
        if awaiting::still_waits(sl, op) {
            return Err(Error::arg(1, "already in use"));
        }
        // Its coroutine was closed while it waited.
        awaiting::abandon(lua, op);
    }
    awaiting::require_coroutine(lua)?;
    // The continuation keeps the number (an `io` file may be closed meanwhile).
    lua.push_integer(fd.map_or(-1, i64::from));
    lua.replace(1);
    let id = awaiting::wait(lua, sl, awaiting::Kind::Descriptor, Wait::External, deliver)?;
    let early = match fd {
        Some(fd) => start(sl, fd, wanted, id, watch),
        None => Some(Early::Failed(libc::EBADF)),
    };
    if let Some(early) = early {
        sl.complete_later(id, Some(Box::new(early) as Outcome));
    }
    Ok(Await::Keep(id, 1, kfn!(awaitfd_k)))
}

/// Arms the watch of `fd` (`watch`, kept by the loop since an earlier
/// wait, or a new one) for the op `id`; the result if it ended already.
fn start(sl: &SysLoop, fd: RawFd, wanted: u8, id: OpId, watch: Option<Handler>) -> Option<Early> {
    let handler = watch.unwrap_or_else(|| {
        Rc::new(RefCell::new(Watch {
            fd,
            token: None,
            op: None,
            woken: false,
            wanted: 0,
            ready: 0,
        }))
    });
    with_watch(&handler, |w| {
        w.op = Some(id);
        w.woken = false;
        w.wanted = wanted;
        w.ready = 0;
    });
    match sl.watch_fd(fd, interest(wanted), handler.clone()) {
        Ok(token) => {
            with_watch(&handler, |w| w.token = Some(token));
            None
        }
        Err(e) => Some(match fail::code_of(&e) {
            // Not pollable: always ready to read and write.
            libc::EPERM if wanted & (R | W) != 0 => Early::Ready(wanted & (R | W)),
            code => Early::Failed(code),
        }),
    }
}

/// Pushes the text of a set of events, in `rwpd` order.
fn push_set(lua: Lua, set: u8) -> c_int {
    let mut text = [0u8; 4];
    let mut n = 0;
    for (c, bit) in CHARS {
        if set & bit != 0 {
            text[n] = c;
            n += 1;
        }
    }
    lua.push_bytes(&text[..n]);
    1
}

/// The `Deliver` of `awaitfd`: nothing for a wake-up by the poll (the
/// continuation takes the result from the watch), the early results.
fn deliver(co: Lua, outcome: Option<Outcome>) -> c_int {
    match outcome.and_then(|o| o.downcast::<Early>().ok()).map(|e| *e) {
        None => 0,
        Some(Early::Ready(set)) => push_set(co, set),
        Some(Early::Failed(code)) => fail::push(co, code),
    }
}

fn awaitfd_k(lua: Lua, ctx: KContext) -> Result<Await, Error> {
    let id = OpId::from_bits(ctx as u64);
    let resumed = awaiting::resumed(lua, 1, ctx);
    let fd = lua.to_integer(1).unwrap_or(-1) as RawFd;
    let sl = sys_loop(&lua);
    // The watch of this wait: (its token, what it found ready).
    let this = sl.watcher(fd).and_then(|h| {
        with_watch(&h, |w| {
            (w.op == Some(id)).then(|| {
                w.op = None;
                (w.token, w.ready)
            })
        })
        .flatten()
    });
    match resumed {
        Resumed::User(n) => {
            // Explicitly resumed: stop watching.
            if let Some((Some(token), _)) = this {
                sl.unwatch_fd(fd, token);
            }
            Ok(Await::Done(n))
        }
        Resumed::Loop => {
            let n = lua.top() - 2;
            if n > 0 {
                return Ok(Await::Done(n)); // an early result
            }
            Ok(Await::Done(match this {
                Some((_, ready)) if ready != 0 => push_set(lua, ready),
                _ => fail::push(lua, libc::EBADF),
            }))
        }
    }
}

/// The descriptor argument: an integer, or an open `io` file; `None` for
/// an integer that cannot be a descriptor (it fails like a closed one).
fn fd_arg(lua: Lua, i: c_int) -> Result<Option<RawFd>, Error> {
    const EXPECTED: &std::ffi::CStr = c"number or file";
    match lua.type_of(i) {
        LUA_TNUMBER => Ok(RawFd::try_from(lua.arg_integer(i)?)
            .ok()
            .filter(|&fd| fd >= 0)),
        LUA_TUSERDATA => match iofile::descriptor(lua, i, &sys_loop(&lua).io_metatable) {
            Some(Some(fd)) => Ok(Some(fd)),
            Some(None) => Err(Error::arg(i, "attempt to use a closed file")),
            None => Err(Error::Type(i, EXPECTED)),
        },
        _ => Err(Error::Type(i, EXPECTED)),
    }
}

/// The events argument: a non-empty string of `r`, `w`, `p`, `d`.
fn events_arg(lua: Lua, i: c_int) -> Result<u8, Error> {
    let text = lua.arg_bytes(i)?;
    if text.is_empty() {
        return Err(Error::arg(i, "no events"));
    }
    let mut set = 0;
    for &c in text {
        match CHARS.iter().find(|(ch, _)| *ch == c) {
            Some((_, bit)) => set |= bit,
            None => return Err(Error::mode_char(i, c)),
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(f: impl FnOnce(&mut Readiness)) -> Readiness {
        let mut r = Readiness::default();
        f(&mut r);
        r
    }

    #[test]
    fn results_are_the_requested_events_among_those_reported() {
        let readable = seen(|r| r.readable = true);
        assert_eq!(ready_set(readable, R | W, -1), R);
        assert_eq!(ready_set(readable, W | D, -1), 0);
        let writable = seen(|r| r.writable = true);
        assert_eq!(ready_set(writable, R | W | P | D, -1), W);
        // A peer that shut down its writing: readable (end of file) and `d`.
        let rdhup = seen(|r| {
            r.readable = true;
            r.read_closed = true;
        });
        assert_eq!(ready_set(rdhup, R | D, -1), R | D);
        assert_eq!(ready_set(rdhup, W, -1), 0);
    }

    #[test]
    fn hang_ups_and_errors_make_reads_and_writes_ready() {
        let hangup = seen(|r| {
            r.read_closed = true;
            r.write_closed = true;
        });
        assert_eq!(ready_set(hangup, R | W | D, -1), R | W | D);
        // Nothing requested matches: all requested are ready (never lost).
        let error = seen(|r| r.error = true);
        assert_eq!(ready_set(error, P, -1), P);
        assert_eq!(ready_set(error, R | P, -1), R);
    }

    #[test]
    fn priority_data_alone_is_not_readable() {
        // mio sets `readable` for priority data too: with both requested,
        // poll(2) decides (a closed descriptor has no input).
        let urgent = seen(|r| {
            r.readable = true;
            r.priority = true;
        });
        assert_eq!(ready_set(urgent, R | P, -1), P);
        assert_eq!(ready_set(urgent, P, -1), P);
        assert_eq!(ready_set(urgent, R, -1), R);
    }

    #[test]
    fn interests_of_events() {
        assert_eq!(interest(R), Interest::READABLE);
        assert_eq!(interest(D), Interest::READABLE);
        assert_eq!(interest(W | P), Interest::WRITABLE | Interest::PRIORITY);
    }
}
