//! Starting the child: everything it needs (argument and environment
//! vectors, the candidate paths of a `PATH` search, the descriptors of its
//! standard streams, all numbered 3 or more) is prepared before `clone`,
//! so the child only makes async-signal-safe calls: it restores the
//! default disposition of every signal, unblocks them, enters a new
//! session or process group if asked, installs its streams with `dup2`,
//! clears `O_NONBLOCK` on descriptors 0–2 (as libuv), changes directory,
//! changes its group and user ids if asked (in libuv's order) and tries
//! `execve` on each candidate. A failure is
//! written (its `errno`) to a close-on-exec *error pipe*; the parent reads
//! that pipe until it is closed, which tells an `exec` that worked
//! (nothing read) from one that did not (the `errno`, and the child is
//! reaped at once). Signals are blocked in the parent around `clone` so
//! that no handler of the library runs in the child.

use std::ffi::{CString, c_char, c_int};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use super::stdio::dup_high;
use crate::system::errno::{errno, errno_location};

/// What the child is made of; built before `clone`.
pub struct Plan {
    /// Paths to try, in order (a `PATH` search gives several).
    pub candidates: Vec<CString>,
    pub argv: Vec<CString>,
    /// `None`: the parent's environment.
    pub env: Option<Vec<CString>>,
    pub cwd: Option<CString>,
    /// Fields `uid` and `gid`: the ids to run with.
    pub uid: Option<libc::uid_t>,
    pub gid: Option<libc::gid_t>,
    pub group: Group,
}

/// The process group of the child (fields `pgroup` and `detach`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Group {
    /// The caller's group and session.
    Inherit,
    /// A new group led by the child (`setpgid(0, 0)`), in our session.
    Leader,
    /// A new session (`setsid`), hence also a new group, without a
    /// controlling terminal.
    Session,
}

/// The candidate paths of `file`: itself if it has a `/`, else each
/// directory of `PATH` (of the child's environment when given).
pub fn candidates(file: &CString, env: Option<&[CString]>) -> Vec<CString> {
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
pub fn spawn(plan: &Plan, stdio: &[Option<OwnedFd>; 3]) -> Result<libc::pid_t, c_int> {
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
    // SAFETY: async-signal-safe calls only (sigaction, sigprocmask,
    // setpgid, setsid, dup2, fcntl, chdir, the raw system calls of
    // `setid`, execve, write, _exit) on memory prepared before the fork.
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
        // Before `clone` returns in the parent (CLONE_VFORK), so a signal
        // to the group cannot come before the group exists.
        let grouped = match plan.group {
            Group::Inherit => 0,
            Group::Leader => libc::setpgid(0, 0),
            Group::Session => libc::setsid(),
        };
        if grouped < 0 {
            fail(*errno_location());
        }
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
        if plan.uid.is_some() || plan.gid.is_some() {
            // As libuv: drop the supplementary groups when we may (root
            // becoming another user must not keep root's groups); failing
            // without the privilege is expected.
            setid::groups_none();
        }
        if let Some(gid) = plan.gid
            && setid::gid(gid) != 0
        {
            fail(*errno_location());
        }
        if let Some(uid) = plan.uid
            && setid::uid(uid) != 0
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

/// Raw credential system calls for the child. NOTE: not the libc
/// functions: glibc's `setuid`, `setgid` and `setgroups` apply the change
/// to every thread of the process, by signalling the threads it lists;
/// the child shares our memory (CLONE_VM), so it would see the parent's
/// threads and signal them. The system calls change the calling process
/// only, which here is the child alone: call them only there.
mod setid {
    use std::ffi::c_long;

    // 32-bit x86 and ARM have 16-bit `setuid`; their 32-bit calls have
    // other names.
    #[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
    use libc::{SYS_setgid as SETGID, SYS_setgroups as SETGROUPS, SYS_setuid as SETUID};
    #[cfg(any(target_arch = "x86", target_arch = "arm"))]
    use libc::{SYS_setgid32 as SETGID, SYS_setgroups32 as SETGROUPS, SYS_setuid32 as SETUID};

    /// `setgroups(0, NULL)`; its failure is ignored.
    pub fn groups_none() {
        // SAFETY: no pointer is read for an empty list.
        unsafe { libc::syscall(SETGROUPS, 0 as c_long, std::ptr::null::<libc::gid_t>()) };
    }

    /// `setgid(gid)`: 0, or -1 with `errno` set.
    pub fn gid(gid: libc::gid_t) -> c_long {
        // SAFETY: integers only.
        unsafe { libc::syscall(SETGID, gid as c_long) }
    }

    /// `setuid(uid)`: 0, or -1 with `errno` set.
    pub fn uid(uid: libc::uid_t) -> c_long {
        // SAFETY: integers only.
        unsafe { libc::syscall(SETUID, uid as c_long) }
    }
}
