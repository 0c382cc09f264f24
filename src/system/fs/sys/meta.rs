//! The OS calls of the file system area that act on paths and on what
//! the OS knows of a file (times, owner, permissions, status, directory
//! entries, links), as safe functions returning `io::Result`; the calls
//! on open descriptors' contents are in `mod.rs`.

use std::ffi::{CStr, c_int};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use super::{check, err, retry};

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
