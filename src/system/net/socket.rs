//! `system.socket` and what every socket class shares: the six classes
//! (and terminals, see `terminal`)
//! and their method tables, creation, `close` (also `__gc`, `__close`),
//! `getdomain`, `getaddress` and `bind`.
//!
//! A socket object is a userdata holding `Option<Shared>` (the [`Core`]
//! also registered as the loop's source handler); `close` takes it, so a
//! closed object raises `closed object`. All classes hold the same payload
//! and differ by metatable; methods are instantiated per class (`K`) so
//! that a bad self names the expected class. Awaits keep the object on
//! the coroutine's stack, which keeps a socket with a pending operation
//! alive; their continuations find it with [`kept`].

use std::cell::RefCell;
use std::ffi::{CStr, c_int, c_void};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

use mio::unix::SourceFd;
use socket2::{SockAddr, Socket, Type};

use super::netio::{Core, Domain, Shared};
use super::{address, options, passive, stream, terminal, udp};
use crate::lua::awaiting::{self, SysLoop, state_loop};
use crate::lua::{Error, Lua, Reg, Ret, class, fail, ffi};
use crate::runtime::OpId;
use crate::{afn, cfn};

pub const FUNCTIONS: &[Reg] = &[(c"socket", cfn!(socket))];

pub const UDP: u8 = 0;
pub const TCPACTIVE: u8 = 1;
pub const TCPPASSIVE: u8 = 2;
pub const PIPEACTIVE: u8 = 3;
pub const PIPESHARE: u8 = 4;
pub const PIPEPASSIVE: u8 = 5;
pub const TERMINAL: u8 = 6;

macro_rules! active_methods {
    ($k:ident) => {
        &[
            (c"close", cfn!(close::<$k>)),
            (c"getdomain", cfn!(getdomain::<$k>)),
            (c"getaddress", cfn!(getaddress::<$k>)),
            (c"bind", cfn!(bind::<$k>)),
            (c"setoption", cfn!(options::setoption::<$k>)),
            (c"connect", afn!(stream::connect::<$k>)),
            (c"write", afn!(stream::write::<$k>)),
            (c"read", afn!(stream::read::<$k>)),
            (c"shutdown", afn!(stream::shutdown::<$k>)),
        ]
    };
}

/// Class names and methods, by class index.
const CLASSES: [(&CStr, &[Reg]); 7] = [
    (
        c"coutil:udp",
        &[
            (c"close", cfn!(close::<UDP>)),
            (c"getdomain", cfn!(getdomain::<UDP>)),
            (c"getaddress", cfn!(getaddress::<UDP>)),
            (c"bind", cfn!(bind::<UDP>)),
            (c"setoption", cfn!(options::setoption::<UDP>)),
            (c"connect", cfn!(udp::connect)),
            (c"write", afn!(udp::write)),
            (c"read", afn!(udp::read)),
        ],
    ),
    (c"coutil:tcpactive", active_methods!(TCPACTIVE)),
    (
        c"coutil:tcppassive",
        &[
            (c"close", cfn!(close::<TCPPASSIVE>)),
            (c"getdomain", cfn!(getdomain::<TCPPASSIVE>)),
            (c"getaddress", cfn!(getaddress::<TCPPASSIVE>)),
            (c"bind", cfn!(bind::<TCPPASSIVE>)),
            (c"listen", cfn!(passive::listen::<TCPPASSIVE>)),
            (c"accept", afn!(passive::accept::<TCPPASSIVE>)),
        ],
    ),
    (c"coutil:pipeactive", active_methods!(PIPEACTIVE)),
    (c"coutil:pipeshare", active_methods!(PIPESHARE)),
    (
        c"coutil:pipepassive",
        &[
            (c"close", cfn!(close::<PIPEPASSIVE>)),
            (c"getdomain", cfn!(getdomain::<PIPEPASSIVE>)),
            (c"getaddress", cfn!(getaddress::<PIPEPASSIVE>)),
            (c"bind", cfn!(bind::<PIPEPASSIVE>)),
            (c"setoption", cfn!(options::setoption::<PIPEPASSIVE>)),
            (c"listen", cfn!(passive::listen::<PIPEPASSIVE>)),
            (c"accept", afn!(passive::accept::<PIPEPASSIVE>)),
        ],
    ),
    (
        c"coutil:terminal",
        &[
            (c"close", cfn!(close::<TERMINAL>)),
            (c"read", afn!(stream::read::<TERMINAL>)),
            (c"write", afn!(stream::write::<TERMINAL>)),
            (c"shutdown", afn!(stream::shutdown::<TERMINAL>)),
            (c"setmode", cfn!(terminal::setmode)),
            (c"winsize", cfn!(terminal::winsize)),
        ],
    ),
];

const META: &[Reg] = &[(c"__gc", cfn!(gc)), (c"__close", cfn!(tbc_close))];

/// sock | false, msg, code = system.socket(type, domain)
fn socket(lua: Lua) -> Ret {
    let ty = lua.arg_option(1, &["stream", "passive", "datagram"], None)?;
    let domain = [Domain::Ipv4, Domain::Ipv6, Domain::Local, Domain::Share]
        [lua.arg_option(2, &["ipv4", "ipv6", "local", "share"], None)?];
    let kind = match (ty, domain) {
        (0, Domain::Local) => PIPEACTIVE,
        (0, Domain::Share) => PIPESHARE,
        (0, _) => TCPACTIVE,
        (1, Domain::Local | Domain::Share) => PIPEPASSIVE,
        (1, _) => TCPPASSIVE,
        (_, Domain::Local | Domain::Share) => return Ok(fail::push(lua, fail::EAI_BASE + 11)),
        _ => UDP,
    };
    let family = match domain {
        Domain::Ipv4 => socket2::Domain::IPV4,
        Domain::Ipv6 => socket2::Domain::IPV6,
        _ => socket2::Domain::UNIX,
    };
    let ty = if kind == UDP {
        Type::DGRAM
    } else {
        Type::STREAM
    };
    // Non-blocking and close-on-exec from the start.
    match Socket::new(family, ty.nonblocking(), None) {
        Ok(sock) => match push_new(lua, sock, kind, domain, true, false) {
            Ok(()) => Ok(1),
            Err(e) => Ok(fail::push_io(lua, &e)),
        },
        Err(e) => Ok(fail::push_io(lua, &e)),
    }
}

/// Registers `sock` (non-blocking) with the state's loop and pushes it as
/// an object of class `kind`; `open` for a stream that is connected
/// already (accepted, or made from a descriptor).
pub fn push_new(
    lua: Lua,
    sock: Socket,
    kind: u8,
    domain: Domain,
    is_socket: bool,
    open: bool,
) -> io::Result<()> {
    let raw = sock.as_raw_fd();
    let core = Core::new(sock, kind, domain, is_socket, open);
    let core: Shared = Rc::new(RefCell::new(core));
    let sl = state_loop(lua);
    let token = sl.register_handler(&mut SourceFd(&raw), core.clone())?;
    core.borrow_mut().token = Some(token);
    let l = lua.raw();
    let (name, methods) = CLASSES[kind as usize];
    // SAFETY: the block is sized and aligned for Option<Shared> (a
    // pointer) and initialised before the metatable is set; the metatable
    // is ours (luaL_newmetatable under the class name). The methods get
    // two upvalues: the loop (see `system::sys_loop`), which outlives
    // every socket, and the metatable (see `this`).
    unsafe {
        let p = ffi::lua_newuserdatauv(l, size_of::<Option<Shared>>(), 0) as *mut Option<Shared>;
        p.write(Some(core));
        if ffi::luaL_newmetatable(l, name.as_ptr()) != 0 {
            class::register_key(lua, class_key(kind));
            ffi::lua_createtable(l, 0, methods.len() as c_int);
            for (name, f) in methods {
                ffi::lua_pushlightuserdata(l, sl as *const SysLoop as *mut c_void);
                ffi::lua_pushvalue(l, -3);
                ffi::lua_pushcclosure(l, *f, 2);
                ffi::lua_setfield(l, -2, name.as_ptr());
            }
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
            for (key, f) in META {
                ffi::lua_pushcfunction(l, *f);
                ffi::lua_setfield(l, -2, key.as_ptr());
            }
        }
        ffi::lua_setmetatable(l, -2);
    }
    Ok(())
}

/// Registry keys of the classes' metatables (see `class::test_key`).
static KEYS: [u8; CLASSES.len()] = [0; CLASSES.len()];

fn class_key(kind: u8) -> *const c_void {
    &KEYS[kind as usize] as *const u8 as *const c_void
}

fn slot<'a>(lua: Lua, i: c_int, kind: u8) -> Option<&'a mut Option<Shared>> {
    let p = class::test_key(lua, i, class_key(kind));
    // SAFETY: the metatable is a socket class's, and userdata with it are
    // only made by `push_new`, holding an Option<Shared>.
    unsafe { (p as *mut Option<Shared>).as_mut() }
}

/// The socket at `i` of any class: `Some(None)` when it is closed.
pub fn any(lua: Lua, i: c_int) -> Option<Option<Shared>> {
    (0..CLASSES.len() as u8).find_map(|k| slot(lua, i, k).map(|s| s.clone()))
}

/// The open socket kept as first value by an await's continuation.
pub fn kept(lua: Lua) -> Option<Shared> {
    // SAFETY: socket awaits keep their own `self` at index 1, checked to be
    // a socket object (made by `push_new`, holding an Option<Shared>)
    // before they yielded; the slot is private to the yielded C frame. So
    // no class lookup is needed on this hot path.
    unsafe {
        (ffi::lua_touserdata(lua.raw(), 1) as *mut Option<Shared>)
            .as_ref()?
            .clone()
    }
}

/// The slot of the method's self (argument 1) if it is of the method's
/// class, whose metatable is the method's second upvalue: compared by
/// identity, with no registry lookup.
fn self_slot<'a>(lua: Lua) -> Option<&'a mut Option<Shared>> {
    let l = lua.raw();
    // SAFETY: methods of socket classes are closures made by `push_new`
    // with the class metatable as second upvalue; a userdata with that
    // metatable was made by `push_new`, holding an Option<Shared>.
    unsafe {
        let p = ffi::lua_touserdata(l, 1) as *mut Option<Shared>;
        if p.is_null() || ffi::lua_getmetatable(l, 1) == 0 {
            return None;
        }
        let same = ffi::lua_rawequal(l, -1, ffi::lua_upvalueindex(2)) != 0;
        ffi::lua_pop(l, 1);
        if same { p.as_mut() } else { None }
    }
}

/// The method's self (argument 1) of class `K`, open.
pub fn this<const K: u8>(lua: Lua) -> Result<Shared, Error> {
    match self_slot(lua) {
        Some(Some(core)) => Ok(core.clone()),
        Some(None) => Err(Error::arg(1, "closed object")),
        None => Err(Error::Type(1, CLASSES[K as usize].0)),
    }
}

/// Closes a socket taken out of its object: removes it from the loop,
/// wakes its awaiters (`false, "closed"` for a reader, `operation
/// canceled` for requests) and closes the descriptor. Returns the
/// operations it completed.
pub fn shut(lua: Lua, core: &Shared) -> Vec<OpId> {
    let (fd, token, mut done, bound) = {
        let mut c = core.borrow_mut();
        let (fd, token, done) = c.close();
        (fd, token, done, c.bound_file.take())
    };
    // NOTE: this also runs from `__gc`, which may run while the loop is
    // in use: the driver then skips both (see `Driver::deregister`).
    let sl = state_loop(lua);
    if let (Some(fd), Some(token)) = (&fd, token) {
        sl.deregister(&mut SourceFd(&fd.as_raw_fd()), token);
    }
    let completed = sl.complete_closed(done.drain());
    drop(fd);
    if let Some(bound) = bound {
        bound.remove();
    }
    completed
}

/// true = sock:close()
///
/// The object stays referenced until the next `system.run` finished the
/// close (R2): what it cancelled is delivered by that run.
fn close<const K: u8>(lua: Lua) -> Ret {
    this::<K>(lua)?;
    if let Some(core) = self_slot(lua).and_then(Option::take) {
        shut(lua, &core);
        awaiting::keep_until_closed(lua, 1);
    }
    lua.push_bool(true);
    Ok(1)
}

/// `__close`: closes the socket if it is still open, as `close`.
fn tbc_close(lua: Lua) -> Ret {
    let core = (0..CLASSES.len() as u8).find_map(|k| slot(lua, 1, k).map(Option::take));
    if let Some(Some(core)) = core {
        shut(lua, &core);
        awaiting::keep_until_closed(lua, 1);
    }
    Ok(0)
}

/// `__gc`: closes the socket if it is still open. A coroutine waiting on
/// it keeps it alive, so waiters are only met here when the state closes:
/// they are resumed at once (a reader with `false, "closed"`), while the
/// objects made before the socket are still usable by their cleanup.
fn gc(lua: Lua) -> Ret {
    let core = (0..CLASSES.len() as u8).find_map(|k| slot(lua, 1, k).map(Option::take));
    if let Some(Some(core)) = core {
        let completed = shut(lua, &core);
        awaiting::deliver_now(lua, &completed);
    }
    Ok(0)
}

/// domain = sock:getdomain()
fn getdomain<const K: u8>(lua: Lua) -> Ret {
    let domain = this::<K>(lua)?.borrow().domain;
    lua.push_bytes(domain.name().as_bytes());
    Ok(1)
}

/// The address object at `i` for a socket of `domain`, copied.
pub fn ip_arg(lua: Lua, i: c_int, domain: Domain) -> Result<SocketAddr, Error> {
    let addr = *address::check(lua, i)?;
    match (addr, domain) {
        (SocketAddr::V4(_), Domain::Ipv4) | (SocketAddr::V6(_), Domain::Ipv6) => Ok(addr),
        _ => Err(Error::arg(i, "wrong domain")),
    }
}

/// The address argument `i` of `bind`/`connect`: an address object of
/// the socket's family, or a path for local sockets (whose conversion may
/// fail, e.g. a path too long).
pub fn target(lua: Lua, i: c_int, domain: Domain) -> Result<io::Result<SockAddr>, Error> {
    if domain.is_ip() {
        return Ok(Ok(SockAddr::from(ip_arg(lua, i, domain)?)));
    }
    let path = lua.arg_bytes(i)?;
    if path.contains(&0) {
        // As the file functions: a path is never silently cut.
        return Ok(Err(io::Error::from_raw_os_error(libc::EINVAL)));
    }
    Ok(SockAddr::unix(std::ffi::OsStr::from_bytes(path))
        .map_err(|_| io::Error::from_raw_os_error(libc::ENAMETOOLONG)))
}

/// The file a local socket bound, removed when the socket is closed (as
/// libuv does), but only if it is still that socket: its absolute path
/// (the working directory may change meanwhile) and identity.
pub struct BoundFile {
    path: std::path::PathBuf,
    dev: u64,
    ino: u64,
}

impl BoundFile {
    fn of(path: &std::path::Path) -> Option<BoundFile> {
        use std::os::unix::fs::MetadataExt;
        let path = std::env::current_dir().ok()?.join(path);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        Some(BoundFile {
            dev: meta.dev(),
            ino: meta.ino(),
            path,
        })
    }

    fn remove(self) {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && meta.file_type().is_socket()
            && meta.dev() == self.dev
            && meta.ino() == self.ino
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The path of a local socket address ("" if unnamed; abstract names
/// start with a NUL byte).
pub fn path_of(addr: &SockAddr) -> Vec<u8> {
    if let Some(p) = addr.as_pathname() {
        p.as_os_str().as_bytes().to_vec()
    } else if let Some(name) = addr.as_abstract_namespace() {
        let mut v = vec![0];
        v.extend_from_slice(name);
        v
    } else {
        Vec::new()
    }
}

/// true | false, msg, code = sock:bind(address | path)
fn bind<const K: u8>(lua: Lua) -> Ret {
    let core = this::<K>(lua)?;
    let domain = core.borrow().domain;
    let addr = match target(lua, 2, domain)? {
        Ok(addr) => addr,
        Err(e) => return Ok(fail::push_io(lua, &e)),
    };
    let result = {
        let c = core.borrow();
        if K == TCPACTIVE || K == TCPPASSIVE {
            // As libuv: a restarted server can bind while old connections linger.
            let _ = c.sock().set_reuse_address(true);
        }
        c.sock().bind(&addr)
    };
    match result {
        Ok(()) => {
            if !domain.is_ip() {
                let mut c = core.borrow_mut();
                c.path = Some(path_of(&addr));
                c.bound_file = addr.as_pathname().and_then(BoundFile::of);
            }
            lua.push_bool(true);
            Ok(1)
        }
        Err(e) => Ok(fail::push_io(lua, &e)),
    }
}

/// address | path | false, msg, code = sock:getaddress([site [, address]])
fn getaddress<const K: u8>(lua: Lua) -> Ret {
    let core = this::<K>(lua)?;
    let peer = lua.arg_option(2, &["self", "peer"], Some(0))? == 1;
    let domain = core.borrow().domain;
    let into = domain.is_ip() && !lua.is_none_or_nil(3);
    if into {
        ip_arg(lua, 3, domain)?;
    }
    let result = {
        let c = core.borrow();
        if !domain.is_ip() && !c.open && c.path.is_none() {
            // As libuv, whose local sockets get a descriptor only when
            // bound or connected.
            Err(io::Error::from_raw_os_error(libc::EBADF))
        } else if peer {
            c.sock().peer_addr()
        } else {
            c.sock().local_addr()
        }
    };
    let addr = match result {
        Ok(addr) => addr,
        Err(e) => return Ok(fail::push_io(lua, &e)),
    };
    match addr.as_socket() {
        Some(sa) if into => {
            *address::check(lua, 3)? = sa;
            lua.push_value(3);
        }
        Some(sa) => address::push(lua, sa),
        None => lua.push_bytes(&path_of(&addr)),
    }
    Ok(1)
}
