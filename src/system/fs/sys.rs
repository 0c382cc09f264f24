//! The OS calls of the file system area, as safe functions returning
//! `io::Result`; every `unsafe` block of the area is here.
//!
//! They run on worker threads (or inline in blocking mode) and only take
//! plain Rust data: paths as `CStr`, descriptors as `BorrowedFd`, owned
//! buffers or slices. Calls interrupted by a signal are retried.

use std::ffi::{CStr, CString, c_int};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::system::sigpipe::{is_epipe, no_sigpipe};

/// A path for the OS: the bytes of a Lua string, which must not contain a
/// zero byte (`invalid argument` otherwise, as the OS cannot see it).
pub fn cpath(path: &[u8]) -> io::Result<CString> {
    CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn err(code: c_int) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// Runs `f` until it does not fail with `EINTR`; `-1` means failure.
fn retry<T: PartialEq + From<i8>>(mut f: impl FnMut() -> T) -> io::Result<T> {
    loop {
        let r = f();
        if r != T::from(-1) {
            return Ok(r);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

pub fn open(path: &CStr, flags: c_int, perm: u32) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated; a returned descriptor is new and
    // owned by nobody else.
    let fd = retry(|| unsafe { libc::open(path.as_ptr(), flags, perm as libc::c_uint) })?;
    // SAFETY: see above.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Closes `fd`, reporting the error of `close(2)` (which drop ignores).
pub fn close(fd: OwnedFd) -> io::Result<()> {
    // SAFETY: we own the descriptor; it is closed once, here, and never
    // retried (Linux releases it even when close fails with EINTR).
    match unsafe { libc::close(fd.into_raw_fd()) } {
        -1 => match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::EINTR) => Ok(()),
            e => Err(e),
        },
        _ => Ok(()),
    }
}

/// Reads into `buf` at `offset`, or at the file position when `None`.
pub fn read(fd: BorrowedFd, buf: &mut [u8], offset: Option<u64>) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length, and the bytes the
    // kernel writes are initialised (the others keep their values).
    unsafe { read_raw(fd, buf.as_mut_ptr(), buf.len(), offset) }
}

/// [`read`] into uninitialised memory (e.g. the spare capacity of a new
/// buffer, so that it is not zeroed first): the first `n` bytes of `buf`
/// are initialised on return of `Ok(n)`.
pub fn read_uninit(
    fd: BorrowedFd,
    buf: &mut [MaybeUninit<u8>],
    offset: Option<u64>,
) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length; writing bytes into
    // MaybeUninit memory is always allowed.
    unsafe { read_raw(fd, buf.as_mut_ptr().cast(), buf.len(), offset) }
}

/// # Safety
/// `buf` must be valid for writes of `len` bytes.
unsafe fn read_raw(
    fd: BorrowedFd,
    buf: *mut u8,
    len: usize,
    offset: Option<u64>,
) -> io::Result<usize> {
    let fd = fd.as_raw_fd();
    let n = retry(|| {
        // SAFETY: the caller guarantees `buf` is valid for `len` bytes.
        unsafe {
            match offset {
                Some(off) => libc::pread(fd, buf.cast(), len, off as i64),
                None => libc::read(fd, buf.cast(), len),
            }
        }
    })?;
    Ok(n as usize)
}

/// Writes all of `data` at `offset` (or the file position); the count
/// written, or the error if nothing could be written. Never raises
/// `SIGPIPE` (see [`no_sigpipe`]).
pub fn write(fd: BorrowedFd, data: &[u8], offset: Option<u64>) -> io::Result<usize> {
    // A partial count may follow an EPIPE: always look for the signal.
    no_sigpipe(|| write_all(fd, data, offset), |_| true)
}

fn write_all(fd: BorrowedFd, data: &[u8], mut offset: Option<u64>) -> io::Result<usize> {
    let fd = fd.as_raw_fd();
    let mut done = 0;
    loop {
        let rest = &data[done..];
        let r = retry(|| {
            // SAFETY: `rest` is valid for reads of its length.
            unsafe {
                match offset {
                    Some(off) => libc::pwrite(fd, rest.as_ptr().cast(), rest.len(), off as i64),
                    None => libc::write(fd, rest.as_ptr().cast(), rest.len()),
                }
            }
        });
        match r {
            Ok(n) => {
                done += n as usize;
                offset = offset.map(|o| o + n as u64);
                if n == 0 || done == data.len() {
                    return Ok(done);
                }
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => return Ok(done),
        }
    }
}

/// Copies up to `len` bytes of `src`, from `offset` (its position is then
/// kept) or from its position, to the position of `dst`, stopping at the
/// end of `src`. Uses `copy_file_range` (done in the kernel, possibly
/// sharing blocks) and falls back to a read/write loop where the kernel
/// cannot copy between these files.
pub fn copy(
    src: BorrowedFd,
    mut offset: Option<u64>,
    dst: BorrowedFd,
    len: u64,
) -> io::Result<u64> {
    let mut done = 0u64;
    while done < len {
        let chunk = (len - done).min(1 << 30) as usize;
        let mut off = offset.unwrap_or(0) as i64;
        let off_in = match offset {
            Some(_) => &mut off as *mut i64,
            None => std::ptr::null_mut(),
        };
        let r = no_sigpipe(
            || {
                retry(|| {
                    // SAFETY: `off_in` is null or points to `off`, alive here.
                    unsafe {
                        libc::copy_file_range(
                            src.as_raw_fd(),
                            off_in,
                            dst.as_raw_fd(),
                            std::ptr::null_mut(),
                            chunk,
                            0,
                        )
                    }
                })
            },
            is_epipe,
        );
        match r {
            // Some special files (procfs...) report 0 to this call: check
            // with a plain read before taking it as the end of the file.
            Ok(0) if done == 0 => return copy_loop(src, offset, dst, len),
            Ok(0) => return Ok(done),
            Ok(n) => {
                done += n as u64;
                offset = offset.map(|o| o + n as u64);
            }
            // Not possible between these files (other file systems,
            // special files, an appending destination, old kernels...).
            Err(_) if done == 0 => return copy_loop(src, offset, dst, len),
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn copy_loop(
    src: BorrowedFd,
    mut offset: Option<u64>,
    dst: BorrowedFd,
    len: u64,
) -> io::Result<u64> {
    let mut buf = vec![0u8; len.min(1 << 16) as usize];
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(buf.len() as u64) as usize;
        let n = read(src, &mut buf[..want], offset)?;
        if n == 0 {
            break;
        }
        let w = write(dst, &buf[..n], None)?;
        done += w as u64;
        offset = offset.map(|o| o + w as u64);
        if w < n {
            break;
        }
    }
    Ok(done)
}

/// Makes `dst` share the blocks of `src` (copy-on-write), if the file
/// system can.
pub fn clone(src: BorrowedFd, dst: BorrowedFd) -> io::Result<()> {
    // SAFETY: FICLONE takes the source descriptor as its integer argument.
    retry(|| unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) })?;
    Ok(())
}

fn check(r: io::Result<c_int>) -> io::Result<()> {
    r.map(drop)
}

pub fn ftruncate(fd: BorrowedFd, size: i64) -> io::Result<()> {
    // SAFETY: plain call on a descriptor we borrow.
    check(retry(|| unsafe { libc::ftruncate(fd.as_raw_fd(), size) }))
}

pub fn fsync(fd: BorrowedFd, data_only: bool) -> io::Result<()> {
    // SAFETY: plain calls on a descriptor we borrow.
    check(retry(|| unsafe {
        if data_only {
            libc::fdatasync(fd.as_raw_fd())
        } else {
            libc::fsync(fd.as_raw_fd())
        }
    }))
}

/// The calls that act on a file given either by path or by descriptor.
#[derive(Clone, Copy)]
pub enum At<'a> {
    Path(&'a CStr, bool),
    Fd(BorrowedFd<'a>),
}

impl At<'_> {
    /// `dirfd`, `path` and `flags` for the `*at` calls: a path (the flag
    /// set when it must not follow a final symbolic link) or a descriptor.
    fn args(self, nofollow_flag: c_int) -> (RawFd, *const libc::c_char, c_int) {
        match self {
            At::Path(p, nofollow) => (
                libc::AT_FDCWD,
                p.as_ptr(),
                if nofollow { nofollow_flag } else { 0 },
            ),
            At::Fd(fd) => (fd.as_raw_fd(), c"".as_ptr(), libc::AT_EMPTY_PATH),
        }
    }
}

/// Sets access and modification times (`UTIME_NOW` for the current time).
pub fn utimens(at: At, times: &[libc::timespec; 2]) -> io::Result<()> {
    // SAFETY: `times` points to two timespecs; paths are NUL-terminated.
    check(retry(|| unsafe {
        match at {
            At::Fd(fd) => libc::futimens(fd.as_raw_fd(), times.as_ptr()),
            At::Path(..) => {
                let (dir, p, flags) = at.args(libc::AT_SYMLINK_NOFOLLOW);
                libc::utimensat(dir, p, times.as_ptr(), flags)
            }
        }
    }))
}

/// Sets the owner; `u32::MAX` (-1) keeps a value.
pub fn chown(at: At, uid: u32, gid: u32) -> io::Result<()> {
    let (dir, p, flags) = at.args(libc::AT_SYMLINK_NOFOLLOW);
    // SAFETY: `p` is NUL-terminated (empty with AT_EMPTY_PATH).
    check(retry(|| unsafe { libc::fchownat(dir, p, uid, gid, flags) }))
}

pub fn chmod(at: At, perm: u32) -> io::Result<()> {
    // SAFETY: plain calls; paths are NUL-terminated.
    check(retry(|| unsafe {
        match at {
            At::Fd(fd) => libc::fchmod(fd.as_raw_fd(), perm),
            At::Path(p, _) => libc::chmod(p.as_ptr(), perm),
        }
    }))
}

macro_rules! path_call {
    ($(#[$m:meta])* $name:ident($($a:ident),*) => $call:expr) => {
        $(#[$m])*
        pub fn $name($($a: &CStr),*) -> io::Result<()> {
            // SAFETY: the paths are NUL-terminated strings.
            check(retry(|| unsafe { $call }))
        }
    };
}

path_call!(link(from, to) => libc::link(from.as_ptr(), to.as_ptr()));
path_call!(symlink(target, path) => libc::symlink(target.as_ptr(), path.as_ptr()));
path_call!(rename(from, to) => libc::rename(from.as_ptr(), to.as_ptr()));
path_call!(unlink(path) => libc::unlink(path.as_ptr()));
path_call!(rmdir(path) => libc::rmdir(path.as_ptr()));

pub fn mkdir(path: &CStr, perm: u32) -> io::Result<()> {
    // SAFETY: the path is NUL-terminated.
    check(retry(|| unsafe { libc::mkdir(path.as_ptr(), perm) }))
}

/// Fills `buf` with random bytes from the kernel.
pub fn random(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: `rest` is valid for writes of its length.
        let n = retry(|| unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) })?;
        done += n as usize;
    }
    Ok(())
}

/// What `stat` tells of a file (from `statx`, which also has the birth
/// time; `fstatat` where `statx` is unavailable).
#[derive(Default)]
pub struct Stat {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub ino: u64,
    pub dev: u64,
    pub rdev: u64,
    pub nlink: u64,
    pub size: u64,
    pub blocks: u64,
    pub blksize: u64,
    pub atime: f64,
    pub ctime: f64,
    pub mtime: f64,
    pub btime: f64,
}

pub fn stat(at: At) -> io::Result<Stat> {
    let (dir, p, flags) = at.args(libc::AT_SYMLINK_NOFOLLOW);
    // SAFETY: `sx` is plain data the kernel fills; `p` is NUL-terminated.
    let mut sx: libc::statx = unsafe { std::mem::zeroed() };
    let mask = libc::STATX_BASIC_STATS | libc::STATX_BTIME;
    // SAFETY: see above.
    match retry(|| unsafe { libc::statx(dir, p, flags, mask, &mut sx) }) {
        Ok(_) => {
            let time = |t: libc::statx_timestamp| t.tv_sec as f64 + t.tv_nsec as f64 / 1e9;
            Ok(Stat {
                mode: sx.stx_mode.into(),
                uid: sx.stx_uid,
                gid: sx.stx_gid,
                ino: sx.stx_ino,
                dev: libc::makedev(sx.stx_dev_major, sx.stx_dev_minor),
                rdev: libc::makedev(sx.stx_rdev_major, sx.stx_rdev_minor),
                nlink: sx.stx_nlink.into(),
                size: sx.stx_size,
                blocks: sx.stx_blocks,
                blksize: sx.stx_blksize.into(),
                atime: time(sx.stx_atime),
                ctime: time(sx.stx_ctime),
                mtime: time(sx.stx_mtime),
                btime: if sx.stx_mask & libc::STATX_BTIME != 0 {
                    time(sx.stx_btime)
                } else {
                    0.0
                },
            })
        }
        // Kernels before 4.11, or sandboxes that refuse the call.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
            // SAFETY: as above, with the `stat` struct.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: see above.
            retry(|| unsafe { libc::fstatat(dir, p, &mut st, flags) })?;
            let time = |s: i64, ns: i64| s as f64 + ns as f64 / 1e9;
            Ok(Stat {
                mode: st.st_mode,
                uid: st.st_uid,
                gid: st.st_gid,
                ino: st.st_ino,
                dev: st.st_dev,
                rdev: st.st_rdev,
                nlink: st.st_nlink as u64,
                size: st.st_size as u64,
                blocks: st.st_blocks as u64,
                blksize: st.st_blksize as u64,
                atime: time(st.st_atime, st.st_atime_nsec),
                ctime: time(st.st_ctime, st.st_ctime_nsec),
                mtime: time(st.st_mtime, st.st_mtime_nsec),
                btime: 0.0,
            })
        }
        Err(e) => Err(e),
    }
}

/// What `statfs` tells of the file system holding a path.
pub struct StatFs {
    pub kind: i64,
    pub bsize: i64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
}

pub fn statfs(path: &CStr) -> io::Result<StatFs> {
    // SAFETY: `st` is plain data the kernel fills; the path is
    // NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    retry(|| unsafe { libc::statfs(path.as_ptr(), &mut st) })?;
    Ok(StatFs {
        kind: st.f_type as i64,
        bsize: st.f_bsize as i64,
        blocks: st.f_blocks,
        bfree: st.f_bfree,
        bavail: st.f_bavail,
        files: st.f_files,
        ffree: st.f_ffree,
    })
}

fn os_path(path: &CStr) -> &std::path::Path {
    std::ffi::OsStr::from_bytes(path.to_bytes()).as_ref()
}

/// The canonical absolute path.
pub fn realpath(path: &CStr) -> io::Result<Vec<u8>> {
    Ok(std::fs::canonicalize(os_path(path))?
        .into_os_string()
        .into_vec())
}

/// The target of a symbolic link; `None` if `path` is not one.
pub fn readlink(path: &CStr) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read_link(os_path(path)) {
        Ok(target) => Ok(Some(target.into_os_string().into_vec())),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The entries of a directory (without `.` and `..`): name and type name.
pub fn read_dir(path: &CStr) -> io::Result<Vec<(Vec<u8>, &'static str)>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(os_path(path))? {
        let entry = entry?;
        // The type comes from the directory entry when the file system
        // gives it, else from `lstat`; a file removed meanwhile is unknown.
        let kind = match entry.file_type() {
            Ok(t) => type_name(std_mode(t)),
            Err(_) => "unknown",
        };
        entries.push((entry.file_name().into_vec(), kind));
    }
    Ok(entries)
}

fn std_mode(t: std::fs::FileType) -> u32 {
    use std::os::unix::fs::FileTypeExt;
    match () {
        _ if t.is_file() => libc::S_IFREG,
        _ if t.is_dir() => libc::S_IFDIR,
        _ if t.is_symlink() => libc::S_IFLNK,
        _ if t.is_socket() => libc::S_IFSOCK,
        _ if t.is_block_device() => libc::S_IFBLK,
        _ if t.is_char_device() => libc::S_IFCHR,
        _ if t.is_fifo() => libc::S_IFIFO,
        _ => 0,
    }
}

/// The type name of the type bits of `mode`.
pub fn type_name(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "file",
        libc::S_IFDIR => "directory",
        libc::S_IFLNK => "link",
        libc::S_IFSOCK => "socket",
        libc::S_IFBLK => "block",
        libc::S_IFCHR => "character",
        libc::S_IFIFO => "pipe",
        _ => "unknown",
    }
}

/// `EISDIR` when `fd` is a directory.
pub fn stat_not_dir(fd: BorrowedFd) -> io::Result<Stat> {
    let st = stat(At::Fd(fd))?;
    if st.mode & libc::S_IFMT == libc::S_IFDIR {
        return Err(err(libc::EISDIR));
    }
    Ok(st)
}
