//! `system.execute` (spec/process.md §3): starts a program and waits for
//! its end.
//!
//! Starting: everything the child needs (argument and environment
//! vectors, the candidate paths of a `PATH` search, the descriptors of its
//! standard streams, all numbered 3 or more) is prepared before `clone`, so
//! the child only makes async-signal-safe calls: it restores the default
//! disposition of every signal, unblocks them, installs its streams with
//! `dup2`, clears `O_NONBLOCK` on descriptors 0–2 (as libuv), changes
//! directory and tries `execve` on each candidate. A
//! failure is written (its `errno`) to a close-on-exec *error pipe*; the
//! parent reads that pipe until it is closed, which tells an `exec` that
//! worked (nothing read) from one that did not (the `errno`, and the child
//! is reaped at once). Signals are blocked in the parent around `clone` so
//! that no handler of the library runs in the child.
//!
//! Blocking stdio: `O_NONBLOCK` belongs to the open file description,
//! which the child shares with us for every stream it inherits or gets
//! from an object. Where a description is non-blocking, sockets (which
//! cannot be reopened) are left shared: the child clears the flag and our
//! socket calls pass `MSG_DONTWAIT` (see `net/sys.rs`), so our objects
//! keep working. Pipes and terminals are reopened through `/proc/self/fd`
//! for the child (a description of its own, blocking). Other non-blocking
//! descriptions (no `/proc`, a pipe without reader, other file types) are
//! cleared by the child and set again here once the child has started.
//!
//! Waiting: the child is watched by the loop (see [`children`]), which
//! completes the waiting coroutine's `External` operation with the wait
//! status; an explicit resume only detaches the coroutine.

use std::ffi::{CString, c_char, c_int};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use super::children::{self, Ended};
use super::net::{class as net_class, share};
use super::process::{check_env, pack_table};
use super::signal;
use crate::lua::awaiting::{self, Await, Resumed, state_loop};
use crate::lua::class;
use crate::lua::{
    CFunction, Error, KContext, LUA_TBOOLEAN, LUA_TNIL, LUA_TNONE, LUA_TNUMBER, LUA_TSTRING,
    LUA_TTABLE, LUA_TUSERDATA, Lua, Reg, fail, ffi,
};
use crate::runtime::{OpId, Outcome, Wait};
use crate::system::errno::{errno, errno_location};
use crate::{afn, kfn};

pub const FUNCTIONS: &[Reg] = &[(c"execute", afn!(execute))];

const STREAMS: [&str; 3] = ["stdin", "stdout", "stderr"];

/// A standard stream of the child as the script gave it.
enum Spec {
    Inherit,
    Discard,
    /// The descriptor of an object on the stack (an `io` file or socket).
    Fd(RawFd),
    /// A new pipe; the parent's end replaces the field.
    Pipe {
        share: bool,
    },
}

/// `bad field <f> (<why>)`.
fn bad_field(field: &str, why: &str) -> Error {
    Error::msg(format!("bad field {field} ({why})"))
}

/// Layout of Lua's `luaL_Stream` (the userdata of an `io` file).
#[repr(C)]
struct LuaStream {
    f: *mut libc::FILE,
    closef: Option<CFunction>,
}

/// The descriptor of the open Lua `io` file at `i`, if it is one.
fn io_file(lua: Lua, i: c_int) -> Option<Option<RawFd>> {
    // SAFETY: luaL_testudata checks the metatable registered as "FILE*" by
    // Lua's io library, whose userdata are `luaL_Stream`s.
    unsafe {
        let p = ffi::luaL_testudata(lua.raw(), i, c"FILE*".as_ptr()) as *const LuaStream;
        let stream = p.as_ref()?;
        if stream.closef.is_none() || stream.f.is_null() {
            return Some(None);
        }
        let fd = libc::fileno(stream.f);
        Some((fd >= 0).then_some(fd))
    }
}

/// The stream field at `i` named `field`.
fn arg_stream(lua: Lua, i: c_int, field: &str) -> Result<Spec, Error> {
    match lua.type_of(i) {
        LUA_TNONE | LUA_TNIL => Ok(Spec::Inherit),
        LUA_TBOOLEAN => {
            // SAFETY: reads a boolean stack value.
            if unsafe { ffi::lua_toboolean(lua.raw(), i) } != 0 {
                Err(bad_field(field, "got true"))
            } else {
                Ok(Spec::Discard)
            }
        }
        LUA_TSTRING => {
            let mut share = false;
            for &c in lua.to_bytes(i).unwrap_or_default() {
                match c {
                    b'r' | b'w' => {}
                    b's' => share = true,
                    _ => {
                        let mut text = format!("unknown '{field}' mode char (got '").into_bytes();
                        text.push(c);
                        text.extend_from_slice(b"')");
                        return Err(Error::Msg(text.into()));
                    }
                }
            }
            Ok(Spec::Pipe { share })
        }
        LUA_TUSERDATA => {
            if let Some(fd) = io_file(lua, i) {
                return fd
                    .map(Spec::Fd)
                    .ok_or_else(|| bad_field(field, "invalid stream"));
            }
            match net_class::any(lua, i) {
                Some(Some(core)) => {
                    let c = core.borrow();
                    match c.kind {
                        net_class::TCPACTIVE | net_class::PIPEACTIVE | net_class::PIPESHARE => {
                            Ok(Spec::Fd(c.raw()))
                        }
                        _ => Err(bad_field(field, "invalid stream")),
                    }
                }
                _ => Err(bad_field(field, "invalid stream")),
            }
        }
        _ => Err(bad_field(field, "invalid stream")),
    }
}

/// What the child is made of; built before `clone`.
struct Plan {
    /// Paths to try, in order (a `PATH` search gives several).
    candidates: Vec<CString>,
    argv: Vec<CString>,
    /// `None`: the parent's environment.
    env: Option<Vec<CString>>,
    cwd: Option<CString>,
}

/// The candidate paths of `file`: itself if it has a `/`, else each
/// directory of `PATH` (of the child's environment when given).
fn candidates(file: &CString, env: Option<&[CString]>) -> Vec<CString> {
    let bytes = file.as_bytes();
    if bytes.contains(&b'/') || bytes.is_empty() {
        return vec![file.clone()];
    }
    let from_env = env.and_then(|vars| {
        vars.iter()
            .find_map(|v| v.as_bytes().strip_prefix(b"PATH=").map(<[u8]>::to_vec))
    });
    let path = match from_env {
        Some(p) => p,
        None => match std::env::var_os("PATH") {
            Some(p) => p.as_bytes().to_vec(),
            None => b"/usr/local/bin:/usr/bin:/bin".to_vec(),
        },
    };
    path.split(|&b| b == b':')
        .map(|dir| {
            let mut full = if dir.is_empty() {
                b".".to_vec()
            } else {
                dir.to_vec()
            };
            full.push(b'/');
            full.extend_from_slice(bytes);
            crate::lua::c_string(&full)
        })
        .collect()
}

/// A close-on-exec duplicate of `fd` numbered 3 or more (so that `dup2`
/// onto 0–2 in the child never overwrites another source).
fn dup_high(fd: RawFd) -> Result<OwnedFd, c_int> {
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor we own.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        Err(errno())
    } else {
        // SAFETY: `new` was just created and is owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(new) })
    }
}

/// A connected pair of local stream sockets, close-on-exec: the parent's
/// end and the child's end (numbered 3 or more).
fn socket_pair() -> Result<(OwnedFd, OwnedFd), c_int> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` has room for the two new descriptors.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(errno());
    }
    // SAFETY: both descriptors were just created and are ours.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((a, dup_high(b.as_raw_fd())?))
}

fn null_device() -> Result<OwnedFd, c_int> {
    // SAFETY: opens a path with a constant NUL-terminated name.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: just opened, ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    dup_high(fd.as_raw_fd())
}

/// A new blocking, close-on-exec description (numbered 3 or more) of the
/// pipe or terminal `fd` (of status `flags`), through `/proc/self/fd`.
fn reopen_blocking(fd: RawFd, flags: c_int) -> Option<OwnedFd> {
    let path = CString::new(format!("/proc/self/fd/{fd}")).ok()?;
    // SAFETY: opens a NUL-terminated path. `O_NONBLOCK` keeps the open of
    // a pipe's writing end from waiting for a reader (it fails instead).
    let new = unsafe {
        libc::open(
            path.as_ptr(),
            (flags & libc::O_ACCMODE) | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if new < 0 {
        return None;
    }
    // SAFETY: just opened, ours.
    let new = unsafe { OwnedFd::from_raw_fd(new) };
    // SAFETY: fcntl on our own descriptor.
    unsafe {
        let own = libc::fcntl(new.as_raw_fd(), libc::F_GETFL);
        if own < 0 || libc::fcntl(new.as_raw_fd(), libc::F_SETFL, own & !libc::O_NONBLOCK) < 0 {
            return None;
        }
    }
    dup_high(new.as_raw_fd()).ok()
}

/// Whether `st` is a pipe, or a terminal that a new open does not
/// replace (a pseudo-terminal master through `ptmx` would be a new one).
fn reopenable(fd: RawFd, st: &libc::stat) -> bool {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => true,
        libc::S_IFCHR => {
            let ptmx = libc::makedev(5, 2);
            // SAFETY: isatty only queries the descriptor.
            st.st_rdev != ptmx && unsafe { libc::isatty(fd) } == 1
        }
        _ => false,
    }
}

/// Gives the child blocking standard streams without making ours
/// blocking (see the module doc). `stdio[k]` is the source of stream `k`
/// (`None`: our descriptor `k`); a non-blocking pipe or terminal gets a
/// reopened source. Returns the descriptors (alive until the child has
/// started) whose status flags must be set back after the start.
fn unshare_nonblocking(stdio: &mut [Option<OwnedFd>; 3]) -> Vec<(RawFd, c_int)> {
    let mut restore = Vec::new();
    for (k, source) in stdio.iter_mut().enumerate() {
        let fd = source.as_ref().map_or(k as RawFd, |f| f.as_raw_fd());
        // SAFETY: fcntl and fstat only query the descriptor (which may be
        // closed: then there is nothing to do).
        let (flags, st) = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || flags & libc::O_NONBLOCK == 0 || libc::fstat(fd, &mut st) != 0 {
                continue;
            }
            (flags, st)
        };
        if st.st_mode & libc::S_IFMT == libc::S_IFSOCK {
            continue;
        }
        if reopenable(fd, &st)
            && let Some(new) = reopen_blocking(fd, flags)
        {
            *source = Some(new);
            continue;
        }
        restore.push((fd, flags));
    }
    restore
}

/// Null-terminated pointer array of `strings` (which must outlive it).
fn pointers(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

unsafe extern "C" {
    static mut environ: *const *const c_char;
}

/// Starts the child; its standard streams are `stdio` (`None`: inherited).
fn spawn(plan: &Plan, stdio: &[Option<OwnedFd>; 3]) -> Result<libc::pid_t, c_int> {
    let argv = pointers(&plan.argv);
    let envp = plan.env.as_deref().map(pointers);
    let mut pipe = [0 as c_int; 2];
    // SAFETY: `pipe` has room for the two new descriptors.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(errno());
    }
    // SAFETY: both just created, ours.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
    let high = dup_high(wr.as_raw_fd());
    drop(wr);
    let wr = high?;
    let sources: [RawFd; 3] =
        std::array::from_fn(|i| stdio[i].as_ref().map_or(-1, |f| f.as_raw_fd()));
    let wr_raw = wr.as_raw_fd();
    // SAFETY: sigset manipulation on locals; the mask is restored below.
    let old_mask = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    };
    // The child shares our memory and runs on its own stack until it execs
    // or exits (CLONE_VM | CLONE_VFORK, as posix_spawn does): no page
    // tables are copied, which made `fork` most of the parent's cost.
    let mut start = ChildStart {
        plan,
        argv: &argv,
        envp: envp.as_deref(),
        sources: &sources,
        report: wr_raw,
    };
    let mut stack = vec![0u8; 64 * 1024];
    // SAFETY: the stack grows down from the end of `stack` (16-byte aligned
    // below), which outlives the child's use of it: with CLONE_VFORK we are
    // suspended until the child execs or exits. `start` is only read by
    // the child meanwhile. The child only makes async-signal-safe calls.
    let pid = unsafe {
        let top = stack.as_mut_ptr().add(stack.len()) as usize & !15;
        libc::clone(
            child_main,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&mut start as *mut ChildStart).cast(),
        )
    };
    let fork_errno = errno();
    drop(stack);
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut()) };
    drop(wr);
    if pid < 0 {
        return Err(fork_errno);
    }
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reads into a local buffer from our pipe.
        let n = unsafe {
            libc::read(
                rd.as_raw_fd(),
                buf[got..].as_mut_ptr().cast(),
                buf.len() - got,
            )
        };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    if got == 0 {
        return Ok(pid);
    }
    // The exec failed: the child exits at once; reap it.
    let mut status = 0;
    // SAFETY: waits for our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 && errno() == libc::EINTR {}
    Err(if got == 4 {
        c_int::from_ne_bytes(buf)
    } else {
        libc::EINVAL
    })
}

/// What the child of [`spawn`] needs, passed through `clone`.
struct ChildStart<'a> {
    plan: &'a Plan,
    argv: &'a [*const c_char],
    envp: Option<&'a [*const c_char]>,
    sources: &'a [RawFd; 3],
    report: RawFd,
}

extern "C" fn child_main(arg: *mut libc::c_void) -> c_int {
    // SAFETY: `arg` is the ChildStart that `spawn` keeps alive while it is
    // suspended by CLONE_VFORK.
    unsafe {
        let s = &*(arg as *const ChildStart);
        child(s.plan, s.argv, s.envp, s.sources, s.report)
    }
}

/// The child's side of [`spawn`]: never returns.
unsafe fn child(
    plan: &Plan,
    argv: &[*const c_char],
    envp: Option<&[*const c_char]>,
    sources: &[RawFd; 3],
    report: RawFd,
) -> ! {
    // SAFETY: async-signal-safe calls only (sigaction, sigprocmask, dup2,
    // fcntl, chdir, execve, write, _exit) on memory prepared before the
    // fork.
    unsafe {
        let fail = |e: c_int| -> ! {
            let bytes = e.to_ne_bytes();
            libc::write(report, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(127)
        };
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut action.sa_mask);
        for signo in 1..libc::SIGRTMAX() {
            if signo != libc::SIGKILL && signo != libc::SIGSTOP {
                libc::sigaction(signo, &action, std::ptr::null_mut());
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        for (target, &src) in sources.iter().enumerate() {
            if src >= 0 && libc::dup2(src, target as c_int) < 0 {
                fail(*errno_location());
            }
            // Blocking stdio, as libuv gives it (failures ignored, as
            // there: a closed descriptor stays closed).
            let flags = libc::fcntl(target as c_int, libc::F_GETFL);
            if flags >= 0 && flags & libc::O_NONBLOCK != 0 {
                libc::fcntl(target as c_int, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
        }
        if let Some(cwd) = &plan.cwd
            && libc::chdir(cwd.as_ptr()) != 0
        {
            fail(*errno_location());
        }
        let env = match envp {
            Some(e) => e.as_ptr(),
            None => environ,
        };
        let mut error = libc::ENOENT;
        let mut denied = false;
        for path in &plan.candidates {
            libc::execve(path.as_ptr(), argv.as_ptr(), env);
            error = *errno_location();
            match error {
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR => {}
                _ => break,
            }
        }
        if denied && matches!(error, libc::ENOENT | libc::ENOTDIR) {
            error = libc::EACCES;
        }
        fail(error)
    }
}

// ---------------------------------------------------------------------
// The Lua function

/// Index of the first field pushed by the table form.
const FIELDS: c_int = 2;
const FIELD_NAMES: [&std::ffi::CStr; 7] = [
    c"execfile",
    c"runpath",
    c"arguments",
    c"environment",
    c"stdin",
    c"stdout",
    c"stderr",
];

/// What/status | false, msg, code = system.execute(cmd, ...)
fn execute(lua: Lua) -> Result<Await, Error> {
    awaiting::require_coroutine(lua)?;
    let table = lua.type_of(1) == LUA_TTABLE;
    let (plan, specs) = if table {
        parse_table(lua)?
    } else {
        parse_args(lua)?
    };
    // From here on, failures are returned, not raised.
    let mut stdio: [Option<OwnedFd>; 3] = [None, None, None];
    let mut parents: [Option<(OwnedFd, bool)>; 3] = [None, None, None];
    for (i, spec) in specs.iter().enumerate() {
        let made = match spec {
            Spec::Inherit => continue,
            Spec::Discard => null_device(),
            Spec::Fd(fd) => dup_high(*fd),
            Spec::Pipe { share } => socket_pair().map(|(parent, child)| {
                parents[i] = Some((parent, *share));
                child
            }),
        };
        match made {
            Ok(fd) => stdio[i] = Some(fd),
            Err(e) => return Ok(Await::Done(fail::push(lua, e))),
        }
    }
    let restore = unshare_nonblocking(&mut stdio);
    let started = spawn(&plan, &stdio);
    for (fd, flags) in restore {
        // SAFETY: `fd` is ours or in `stdio`, still open; sets back the
        // status flags that the child cleared.
        unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
    }
    let pid = match started {
        Ok(pid) => pid,
        Err(e) => return Ok(Await::Done(fail::push(lua, e))),
    };
    drop(stdio);
    drop(plan);
    let child = match children::adopt(lua, pid) {
        Ok(child) => child,
        Err(e) => return Ok(Await::Done(fail::push_io(lua, &e))),
    };
    if table {
        lua.check_stack(4)?;
        for (i, parent) in parents.into_iter().enumerate() {
            if let Some((fd, share)) = parent {
                if let Err(e) = share::push_fd_as(lua, fd, share) {
                    drop(child);
                    return Ok(Await::Done(fail::push_io(lua, &e)));
                }
                // SAFETY: a raw set into the table at 1 (no metamethod).
                unsafe { rawset::set(lua, STREAMS[i]) };
            }
        }
        lua.push_integer(pid as i64);
        // SAFETY: as above.
        unsafe { rawset::set(lua, "pid") };
    }
    let id = awaiting::wait(lua, state_loop(lua), Wait::External, deliver)?;
    child.borrow_mut().waiter = Some(id);
    Ok(Await::Keep(id, 0, kfn!(execute_k)))
}

mod rawset {
    use super::*;

    /// Sets `t[name]` of the table at 1 to the value on top, raw.
    pub unsafe fn set(lua: Lua, name: &str) {
        // SAFETY: the caller has the table at 1 and a value on top; two
        // extra slots are checked by the caller.
        unsafe {
            lua.push_bytes(name.as_bytes());
            ffi::lua_insert(lua.raw(), -2);
            ffi::lua_rawset(lua.raw(), 1);
        }
    }
}

/// The table form: fields pushed at 2..8, then checked in order.
fn parse_table(lua: Lua) -> Result<(Plan, [Spec; 3]), Error> {
    lua.set_top(1);
    lua.check_stack(FIELD_NAMES.len() as c_int + 4)?;
    for name in FIELD_NAMES {
        // SAFETY: reads a field of the table at 1 (may run metamethods,
        // before any Rust value with a destructor exists).
        unsafe { ffi::lua_getfield(lua.raw(), 1, name.as_ptr()) };
    }
    let file = match lua.type_of(FIELDS) {
        LUA_TSTRING => crate::lua::c_string(lua.to_bytes(FIELDS).unwrap_or_default()),
        _ => return Err(bad_field("execfile", "must be a string")),
    };
    let cwd = match lua.type_of(FIELDS + 1) {
        LUA_TNIL => None,
        LUA_TSTRING => Some(crate::lua::c_string(
            lua.to_bytes(FIELDS + 1).unwrap_or_default(),
        )),
        _ => return Err(bad_field("runpath", "must be a string")),
    };
    let mut argv = vec![file.clone()];
    let at = FIELDS + 2;
    match lua.type_of(at) {
        LUA_TNIL => {}
        LUA_TTABLE => {
            let len = lua.raw_len(at) as i64;
            for i in 1..=len {
                lua.raw_get_index(at, i);
                let ok = matches!(lua.type_of(-1), LUA_TSTRING | LUA_TNUMBER);
                if !ok {
                    lua.set_top(FIELDS + FIELD_NAMES.len() as c_int - 1);
                    return Err(Error::msg(format!(
                        "bad value #{i} in field 'arguments' (must be a string)"
                    )));
                }
                argv.push(crate::lua::c_string(lua.to_bytes(-1).unwrap_or_default()));
                lua.set_top(-2);
            }
        }
        _ => return Err(Error::arg(1, "field 'arguments' must be a table")),
    }
    let at = FIELDS + 3;
    let env = match lua.type_of(at) {
        LUA_TNIL => None,
        LUA_TTABLE => Some(pack_table(lua, at, 1)?.vars),
        LUA_TUSERDATA if class::test::<super::process::PackedEnv>(lua, at).is_some() => {
            Some(check_env(lua, at)?.vars.clone())
        }
        _ => {
            return Err(bad_field(
                "environment",
                &format!("coutil:procesenv expected, got {}", lua.type_name(at)),
            ));
        }
    };
    let mut specs = [Spec::Inherit, Spec::Inherit, Spec::Inherit];
    for (k, field) in STREAMS.iter().enumerate() {
        specs[k] = arg_stream(lua, FIELDS + 4 + k as c_int, field)?;
    }
    let plan = Plan {
        candidates: candidates(&file, env.as_deref()),
        argv,
        env,
        cwd,
    };
    Ok((plan, specs))
}

/// The string form: `execute(path, ...)`.
fn parse_args(lua: Lua) -> Result<(Plan, [Spec; 3]), Error> {
    let file = crate::lua::c_string(lua.arg_bytes(1)?);
    let mut argv = vec![file.clone()];
    for i in 2..=lua.top() {
        argv.push(crate::lua::c_string(lua.arg_bytes(i)?));
    }
    let plan = Plan {
        candidates: candidates(&file, None),
        argv,
        env: None,
        cwd: None,
    };
    Ok((plan, [Spec::Inherit, Spec::Inherit, Spec::Inherit]))
}

/// Continuation: the child's end, or the values of an explicit resume
/// (the child keeps running and is still reaped by the loop).
fn execute_k(lua: Lua, ctx: KContext) -> Result<Await, Error> {
    let id = OpId::from_bits(ctx as u64);
    let resumed = awaiting::resumed(lua, 0, ctx);
    for child in &children::children(lua).list {
        let mut c = child.borrow_mut();
        if c.waiter == Some(id) {
            c.waiter = None;
        }
    }
    children::sweep(lua);
    match resumed {
        Resumed::User(n) => Ok(Await::Done(n)),
        Resumed::Loop => Ok(Await::Done(lua.top() - 1)),
    }
}

fn deliver(co: Lua, outcome: Option<Outcome>) -> c_int {
    let ended = match outcome.map(|o| o.downcast::<Ended>()) {
        Some(Ok(ended)) => *ended,
        _ => return fail::push(co, libc::ECANCELED),
    };
    match ended {
        Ok(status) if libc::WIFEXITED(status) => {
            co.push_bytes(b"exit");
            co.push_integer(libc::WEXITSTATUS(status) as i64);
            2
        }
        Ok(status) if libc::WIFSIGNALED(status) => {
            let signo = libc::WTERMSIG(status);
            co.push_bytes(signal::name_of(signo).unwrap_or("signal").as_bytes());
            co.push_integer(signo as i64);
            2
        }
        Ok(_) => fail::push(co, fail::UNKNOWN),
        Err(e) => fail::push(co, e),
    }
}
