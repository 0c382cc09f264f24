//! How socket awaits wait and resume (see `netio` for the two kinds):
//! readiness waits ([`park`], [`retry`], with [`recheck`]) and requests
//! ([`write`], [`shutdown`]), with the `Deliver`s of socket ops.
//!
//! Every socket await yields keeping the socket object as its first stack
//! value, which keeps the socket alive while the coroutine waits and lets
//! the continuation find its `Core` again; the continuation detaches the
//! op from the socket when the await was cancelled by an explicit resume.

use std::ffi::c_int;
use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, RawFd};

use socket2::SockAddr;

use super::class;
use super::netio::{Payload, Reply, Request, Shared, Slot, Waiting};
use crate::lua::awaiting::{self, Await, Resumed, SysLoop};
use crate::lua::{Error, KContext, KFunction, Lua, fail};
use crate::memory::{self, range};
use crate::runtime::{Handler, OpId, Outcome, Readiness, Wait};
use crate::system::sys_loop;

/// Pushes the results of `reply`; returns their count.
pub fn push_reply(lua: Lua, reply: Reply) -> c_int {
    match reply {
        Reply::True => {
            lua.push_bool(true);
            1
        }
        Reply::Fail(code) => fail::push(lua, code),
        Reply::Closed => {
            lua.push_bool(false);
            lua.push_bytes(b"closed");
            2
        }
    }
}

/// The `Deliver` of every socket op: nothing for a readiness wake-up (the
/// continuation retries), the values of a [`Reply`] otherwise.
pub fn deliver_reply(co: Lua, outcome: Option<Outcome>) -> c_int {
    match outcome.and_then(|o| o.downcast::<Reply>().ok()) {
        Some(reply) => push_reply(co, *reply),
        None => 0,
    }
}

/// The `Deliver` of requests (`write`, `shutdown`): `true` when completed
/// without an outcome (a write the OS took during the call), the values of
/// a [`Reply`] otherwise.
pub fn deliver_request(co: Lua, outcome: Option<Outcome>) -> c_int {
    match outcome.and_then(|o| o.downcast::<Reply>().ok()) {
        Some(reply) => push_reply(co, *reply),
        None => push_reply(co, Reply::True),
    }
}

/// Raises `already in use` if a coroutine waits in `read` or `accept` of
/// the socket. A reader whose op is gone (its coroutine was closed with
/// `coroutine.close` and its wake-up delivered to nobody) is forgotten.
pub fn check_reader(sl: &SysLoop, core: &Shared) -> Result<(), Error> {
    let Some(w) = core.borrow().reader else {
        return Ok(());
    };
    if sl.waiter(w.op).is_some() {
        return Err(Error::arg(1, "already in use"));
    }
    core.borrow_mut().reader = None;
    Ok(())
}

/// Checks the arguments `buffer [, i [, j]]` (2 to 4) of a socket's
/// `read`: a memory and two integers (the range is checked against the
/// buffer when the bytes come).
pub fn read_args(lua: Lua) -> Result<(), Error> {
    memory::with_arg_buffer(lua, 2, |_| ())?;
    lua.opt_integer(3, 1)?;
    lua.opt_integer(4, -1)?;
    Ok(())
}

/// The checks of a `read` before it waits, after its arguments': nobody
/// reads the socket already and the caller can yield. Returns the loop.
pub fn start_read<'a>(lua: &'a Lua, core: &Shared) -> Result<&'a SysLoop, Error> {
    let sl = sys_loop(lua);
    check_reader(sl, core)?;
    awaiting::require_coroutine(*lua)?;
    Ok(sl)
}

/// Tries an operation now: `Some(n)` results pushed, `None` would block.
pub type Attempt = fn(Lua, &Shared) -> Result<Option<c_int>, Error>;

pub const READABLE: Readiness = Readiness {
    readable: true,
    writable: false,
    error: false,
    read_closed: false,
    write_closed: false,
    priority: false,
};

pub const WRITABLE: Readiness = Readiness {
    readable: false,
    writable: true,
    error: false,
    read_closed: false,
    write_closed: false,
    priority: false,
};

/// What the loop does after a wait is armed.
pub enum Then {
    /// Nothing: readiness will come from the poll.
    Wait,
    /// Runs the socket's handler with this readiness after its next poll
    /// (a readiness the edge-triggered poll will not report again).
    Recheck(Readiness),
    /// Runs the socket's handler with this readiness in its next pending
    /// phase.
    Pend(Readiness),
}

/// Has the loop run the socket's handler as `then` says.
pub fn schedule(sl: &SysLoop, core: &Shared, then: Then) {
    let handler: Handler = core.clone();
    match then {
        Then::Wait => {}
        Then::Recheck(r) => sl.recheck(handler, r),
        Then::Pend(r) => sl.pend_source(handler, r),
    }
}

/// [`park`]s the running coroutine as the reader of `core`, continuing in
/// `k`: the read is tried again in the next iteration's rechecks when the
/// socket may have data left (`may_read`: the edge-triggered poll would
/// not report it again), else when the poll reports it readable.
pub fn park_reader(
    lua: Lua,
    sl: &SysLoop,
    core: &Shared,
    keep: c_int,
    k: KFunction,
) -> Result<Await, Error> {
    let then = if core.borrow().may_read {
        Then::Recheck(READABLE)
    } else {
        Then::Wait
    };
    park(lua, sl, core, keep, (Slot::Reader, k), then)
}

/// Makes the running coroutine wait for readiness in `slot` and continue
/// in `k`, keeping the first `keep` arguments; then has the loop do `then`.
pub fn park(
    lua: Lua,
    sl: &SysLoop,
    core: &Shared,
    keep: c_int,
    (slot, k): (Slot, KFunction),
    then: Then,
) -> Result<Await, Error> {
    let kind = match slot {
        Slot::Connector => awaiting::Kind::Connect,
        Slot::Reader if core.borrow().listening => awaiting::Kind::Accept,
        Slot::Reader => awaiting::Kind::Read,
    };
    let id = awaiting::wait(lua, sl, kind, Wait::External, deliver_reply)?;
    *core.borrow_mut().slot(slot) = Some(Waiting {
        op: id,
        woken: false,
    });
    if !matches!(then, Then::Wait) {
        schedule(sl, core, then);
    }
    Ok(Await::Keep(id, keep, k))
}

/// The body of a readiness wait's continuation `k` (the socket is the
/// first kept value): returns the explicit resume's values, the reply of
/// `close` or of the handler, or tries `attempt`, waiting again if it
/// would block.
pub fn retry(
    lua: Lua,
    ctx: KContext,
    keep: c_int,
    slot: Slot,
    attempt: Attempt,
    k: KFunction,
) -> Result<Await, Error> {
    let id = OpId::from_bits(ctx as u64);
    let resumed = awaiting::resumed(lua, keep, ctx);
    let core = class::kept(lua);
    if let Some(core) = &core {
        let mut c = core.borrow_mut();
        let w = c.slot(slot);
        if w.is_some_and(|w| w.op == id) {
            *w = None;
        }
    }
    match resumed {
        Resumed::User(n) => Ok(Await::Done(n)),
        Resumed::Loop => {
            let n = lua.top() - keep - 1;
            if n > 0 {
                return Ok(Await::Done(n));
            }
            let Some(core) = core else {
                // Closed after the wake-up.
                let reply = match slot {
                    Slot::Reader => Reply::Closed,
                    Slot::Connector => Reply::Fail(libc::ECANCELED),
                };
                return Ok(Await::Done(push_reply(lua, reply)));
            };
            match attempt(lua, &core)? {
                Some(n) => Ok(Await::Done(n)),
                None => park(lua, sys_loop(&lua), &core, keep, (slot, k), Then::Wait),
            }
        }
    }
}

/// How far a send of a memory's or string's bytes went, in its borrow.
enum Sent {
    /// Everything (also nothing to send).
    All,
    /// The OS took what it could: the rest, copied, with the descriptor
    /// to pass if none was sent yet.
    Rest(Vec<u8>, Option<RawFd>),
    Failed(io::Error),
}

/// Sends the bytes `r` of the string or memory at `arg` after the requests
/// queued before, as `write` does: the loop delivers `true` once the OS
/// took everything, or a failure. The bytes are read in a scoped borrow
/// after `awaiting::wait` (a C API call) and what the OS did not take is
/// copied into the queue, so no slice of a memory outlives this call;
/// `r` is clipped to the bytes, in case the memory changed meanwhile.
pub fn write(
    lua: Lua,
    sl: &SysLoop,
    core: &Shared,
    (arg, r): (c_int, Range<usize>),
    fd: Option<RawFd>,
    to: Option<SockAddr>,
) -> Result<Await, Error> {
    let id = wait_request(lua, sl)?;
    if !core.borrow().queue.is_empty() {
        let rest = memory::with_bytes(lua, arg, |b| range::part(b, r).to_vec());
        return queue_rest(sl, core, id, rest.unwrap_or_default(), fd, to);
    }
    let sender = core.borrow().sender();
    let to_ref = to.as_ref();
    let sent = memory::with_bytes(lua, arg, move |bytes| {
        let bytes = range::part(bytes, r);
        let mut sent = 0;
        match sender.send_all(bytes, &mut sent, fd, to_ref) {
            Ok(true) => Sent::All,
            Ok(false) => Sent::Rest(bytes[sent..].to_vec(), fd.filter(|_| sent == 0)),
            Err(e) => Sent::Failed(e),
        }
    });
    let outcome = match sent.unwrap_or(Sent::All) {
        Sent::All => None,
        Sent::Failed(e) => failure(fail::code_of(&e)),
        Sent::Rest(rest, fd) => return queue_rest(sl, core, id, rest, fd, to),
    };
    complete_request(sl, id, outcome)
}

/// A request that fails before reaching the OS (e.g. a datagram's path
/// that cannot be an address): it still suspends, and the loop delivers
/// the failure in its pending phase, as one the OS reported (R1).
pub fn fail_later(lua: Lua, sl: &SysLoop, code: i32) -> Result<Await, Error> {
    let id = wait_request(lua, sl)?;
    complete_request(sl, id, failure(code))
}

/// Arms a request of the calling coroutine (write, shutdown), delivered
/// by [`deliver_request`] and continued by [`request_k`].
fn wait_request(lua: Lua, sl: &SysLoop) -> Result<OpId, Error> {
    awaiting::wait(
        lua,
        sl,
        awaiting::Kind::Write,
        Wait::External,
        deliver_request,
    )
}

/// The await of request `id`, suspended until its delivery.
fn requested(id: OpId) -> Await {
    Await::Keep(id, 1, crate::kfn!(request_k))
}

/// The await of request `id`, delivered with `outcome` (`None`: success)
/// in the loop's next pending phase.
fn complete_request(sl: &SysLoop, id: OpId, outcome: Option<Outcome>) -> Result<Await, Error> {
    sl.complete_later(id, outcome);
    Ok(requested(id))
}

/// The outcome of a request that failed with `code`.
fn failure(code: i32) -> Option<Outcome> {
    Some(Box::new(Reply::Fail(code)))
}

/// Queues what `write` could not send now for the handler.
fn queue_rest(
    sl: &SysLoop,
    core: &Shared,
    id: OpId,
    rest: Vec<u8>,
    fd: Option<RawFd>,
    to: Option<SockAddr>,
) -> Result<Await, Error> {
    let passed = match fd {
        Some(raw) => {
            // SAFETY: `raw` is the descriptor of an open socket object
            // given as argument, alive during this call.
            let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) };
            match borrowed.as_fd().try_clone_to_owned() {
                Ok(owned) => Some(owned),
                Err(e) => return complete_request(sl, id, failure(fail::code_of(&e))),
            }
        }
        None => None,
    };
    let what = Payload::Data {
        bytes: rest,
        sent: 0,
        fd: passed,
        to,
    };
    core.borrow_mut()
        .queue
        .push_back(Request { op: Some(id), what });
    Ok(requested(id))
}

/// Ends the writing direction after the queued writes: the handler does
/// it in the loop (in the next pending phase when nothing is queued), so
/// that a `close` before cancels it.
pub fn shutdown(lua: Lua, sl: &SysLoop, core: &Shared) -> Result<Await, Error> {
    let id = wait_request(lua, sl)?;
    let idle = {
        let mut c = core.borrow_mut();
        c.shut = true;
        let idle = c.queue.is_empty();
        c.queue.push_back(Request {
            op: Some(id),
            what: Payload::Shutdown,
        });
        idle
    };
    if idle {
        schedule(sl, core, Then::Pend(WRITABLE));
    }
    Ok(requested(id))
}

/// Continuation of a request: its reply, or the values of an explicit
/// resume (a queued request stays queued without its op).
fn request_k(lua: Lua, ctx: KContext) -> Result<Await, Error> {
    let id = OpId::from_bits(ctx as u64);
    match awaiting::resumed(lua, 1, ctx) {
        Resumed::Loop => Ok(Await::Done(lua.top() - 2)),
        Resumed::User(n) => {
            if let Some(core) = class::kept(lua) {
                let mut c = core.borrow_mut();
                if let Some(req) = c.queue.iter_mut().find(|r| r.op == Some(id)) {
                    req.op = None;
                }
            }
            Ok(Await::Done(n))
        }
    }
}
