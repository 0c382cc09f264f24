//! The OS calls of the file system area, as safe functions returning
//! `io::Result`: here those on descriptors and their contents, in
//! `meta.rs` those on paths and on what the OS knows of a file. Every
//! `unsafe` block of the area is in these two files.
//!
//! They run on worker threads (or inline in blocking mode) and only take
//! plain Rust data: paths as `CStr`, descriptors as `BorrowedFd`, owned
//! buffers or slices. Calls interrupted by a signal are retried.

use std::ffi::{CStr, CString, c_int};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

use crate::system::sigpipe::{is_epipe, no_sigpipe};

mod meta;

pub use meta::*;

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
