//! The socket classes (a leaf of `net`: every socket file uses it, it uses
//! none of them): their indices and names, and how a socket object is made
//! and recognised.
//!
//! A socket object is a userdata holding `Option<Shared>` (the [`Core`]
//! also registered as the loop's source handler); `close` takes it, so a
//! closed object raises `closed object`. All classes hold the same payload
//! and differ by metatable, stored in the registry under a key of the
//! class and made when `coutil.system` opens (`socket::register`). Methods
//! are instantiated per class (`K`) so that a bad self names the expected
//! class; they are closures with the loop and their class's metatable as
//! upvalues, so neither is looked up when they run.

use std::cell::RefCell;
use std::ffi::{CStr, c_int, c_void};
use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use mio::unix::SourceFd;
use socket2::Socket;

use super::netio::{Core, Domain, PipeEnd, Shared};
use crate::lua::awaiting::state_loop;
use crate::lua::tally::Tally;
use crate::lua::{Error, Lua, class};

pub const UDP: u8 = 0;
pub const TCPACTIVE: u8 = 1;
pub const TCPPASSIVE: u8 = 2;
pub const PIPEACTIVE: u8 = 3;
pub const PIPESHARE: u8 = 4;
pub const PIPEPASSIVE: u8 = 5;
pub const TERMINAL: u8 = 6;
pub const PIPEDGRAM: u8 = 7;
pub const COUNT: usize = 8;

/// The `__name`s, by class index.
pub const NAMES: [&CStr; COUNT] = [
    c"coutil:udp",
    c"coutil:tcpactive",
    c"coutil:tcppassive",
    c"coutil:pipeactive",
    c"coutil:pipeshare",
    c"coutil:pipepassive",
    c"coutil:terminal",
    c"coutil:pipedgram",
];

/// Registry keys of the classes' metatables.
static KEYS: [u8; COUNT] = [0; COUNT];

pub fn key(kind: u8) -> *const c_void {
    &KEYS[kind as usize] as *const u8 as *const c_void
}

/// Registers `sock` (non-blocking) with the state's loop and pushes it as
/// an object of class `kind`; `open` for a stream that is connected
/// already (accepted, or made from a descriptor).
pub fn push(
    lua: Lua,
    sock: Socket,
    kind: u8,
    domain: Domain,
    is_socket: bool,
    open: bool,
) -> io::Result<()> {
    push_with(lua, sock, kind, domain, is_socket, open, |_| {})
}

/// Like [`push`], with `setup` completing the new core first.
fn push_with(
    lua: Lua,
    sock: Socket,
    kind: u8,
    domain: Domain,
    is_socket: bool,
    open: bool,
    setup: impl FnOnce(&mut Core),
) -> io::Result<()> {
    let raw = sock.as_raw_fd();
    let mut core = Core::new(sock, kind, domain, is_socket, open);
    core.terminal = kind == TERMINAL;
    core.tally = Some(Tally::new(lua, NAMES[kind as usize]));
    setup(&mut core);
    let core: Shared = Rc::new(RefCell::new(core));
    let token = state_loop(&lua).register_handler(&mut SourceFd(&raw), core.clone())?;
    core.borrow_mut().token = Some(token);
    // SAFETY: objects with a socket class's metatable all hold an
    // Option<Shared>, made here.
    unsafe { class::push_keyed(lua, core, key(kind)) };
    Ok(())
}

/// Registers one end of a `"pair"` (a pipe end) and pushes it as a
/// connected `coutil:pipeactive` stream of domain `"pair"`.
pub fn push_pair_end(lua: Lua, fd: Socket, end: PipeEnd) -> io::Result<()> {
    push_with(lua, fd, PIPEACTIVE, Domain::Pair, false, true, |core| {
        core.pipe_end = Some(end)
    })
}

/// Runs `f` on the slot of the object at `i` if it has class `kind`.
fn with_slot<R>(
    lua: Lua,
    i: c_int,
    kind: u8,
    f: impl FnOnce(&mut Option<Shared>) -> R + Send,
) -> Option<R> {
    // SAFETY: as in `push`.
    unsafe { class::with_keyed(lua, i, key(kind), f) }
}

/// The socket at `i` of any class: `Some(None)` when it is closed.
pub fn any(lua: Lua, i: c_int) -> Option<Option<Shared>> {
    (0..COUNT as u8).find_map(|k| with_slot(lua, i, k, |s| s.clone()))
}

/// Takes the socket out of the object at `i`, of any class: `None` if it
/// is closed or no socket.
pub fn take(lua: Lua, i: c_int) -> Option<Shared> {
    (0..COUNT as u8).find_map(|k| with_slot(lua, i, k, Option::take))?
}

/// The open socket kept as first value by an await's continuation.
pub fn kept(lua: Lua) -> Option<Shared> {
    // SAFETY: socket awaits keep their own `self` at index 1, checked to
    // be a socket object before they yielded; the slot is private to the
    // yielded C frame. So no class lookup is needed on this hot path.
    unsafe { class::with_unchecked::<Shared, _>(lua, 1, |s| s.clone()) }?
}

/// Runs `f` on the slot of the method's self (argument 1) if it is of the
/// method's class.
fn with_self<R>(lua: Lua, f: impl FnOnce(&mut Option<Shared>) -> R + Send) -> Option<R> {
    // SAFETY: socket methods are made by `socket::register` with
    // `class::make_metatable`; their objects hold an Option<Shared>.
    unsafe { class::with_method_self(lua, f) }
}

/// Takes the socket out of the method's self (argument 1) if it is of the
/// method's class and open.
pub fn take_self(lua: Lua) -> Option<Shared> {
    with_self(lua, Option::take)?
}

/// The method's self (argument 1) of class `K`, open.
pub fn this<const K: u8>(lua: Lua) -> Result<Shared, Error> {
    match with_self(lua, |s| s.clone()) {
        Some(Some(core)) => Ok(core),
        Some(None) => Err(Error::arg(1, "closed object")),
        None => Err(Error::Type(1, NAMES[K as usize])),
    }
}
