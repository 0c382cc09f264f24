//! The `false, message, code` failure triple of OS-level failures.
//!
//! Messages are libuv's `uv_strerror` texts, which Coutil scripts compare
//! against; `code` is the negated libuv error number: `errno` itself on
//! POSIX, and libuv's own numbers for errors that have no `errno`
//! (spec/README.md §4).

use std::ffi::c_int;
use std::io;

use super::Lua;

/// libuv's end-of-file pseudo error.
pub const EOF: i32 = 4095;
/// libuv's catch-all error.
pub const UNKNOWN: i32 = 4094;
/// First of libuv's getaddrinfo errors (`EAI_ADDRFAMILY`).
pub const EAI_BASE: i32 = 3000;

/// The error number of an `io::Error` as Coutil reports it.
pub fn code_of(e: &io::Error) -> i32 {
    if let Some(n) = e.raw_os_error() {
        return n;
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => EOF,
        io::ErrorKind::WouldBlock => libc::EAGAIN,
        io::ErrorKind::Interrupted => libc::EINTR,
        io::ErrorKind::InvalidInput => libc::EINVAL,
        io::ErrorKind::Unsupported => libc::ENOTSUP,
        io::ErrorKind::OutOfMemory => libc::ENOMEM,
        _ => UNKNOWN,
    }
}

/// Pushes `false, text, code` for error number `code`; returns 3.
pub fn push(lua: Lua, code: i32) -> c_int {
    lua.push_bool(false);
    lua.push_bytes(text(code).as_bytes());
    lua.push_integer(code as i64);
    3
}

/// Pushes the failure triple of an `io::Error`; returns 3.
pub fn push_io(lua: Lua, e: &io::Error) -> c_int {
    push(lua, code_of(e))
}

/// The C library's message for error number `code` (`strerror`), as the
/// auxiliary library's own messages have it (`cannot open f: No such file
/// or directory`), rather than libuv's.
pub fn c_text(code: i32) -> Vec<u8> {
    // SAFETY: strerror returns a NUL-terminated string, static in glibc
    // for every value (an "Unknown error" text for others), copied at once.
    unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) }
        .to_bytes()
        .to_vec()
}

/// libuv's message for error number `code`.
pub fn text(code: i32) -> &'static str {
    use libc::*;
    match code {
        self::EOF => "end of file",
        self::UNKNOWN => "unknown error",
        3000 => "address family not supported",
        3001 => "temporary failure",
        3002 => "bad ai_flags value",
        3003 => "request canceled",
        3004 => "permanent failure",
        3005 => "ai_family not supported",
        3006 => "out of memory",
        3007 => "no address",
        3008 => "unknown node or service",
        3009 => "argument buffer overflow",
        3010 => "service not available for socket type",
        3011 => "socket type not supported",
        3013 => "invalid value for hints",
        3014 => "resolved protocol is unknown",
        E2BIG => "argument list too long",
        EACCES => "permission denied",
        EADDRINUSE => "address already in use",
        EADDRNOTAVAIL => "address not available",
        EAFNOSUPPORT => "address family not supported",
        EAGAIN => "resource temporarily unavailable",
        EALREADY => "connection already in progress",
        EBADF => "bad file descriptor",
        EBUSY => "resource busy or locked",
        ECANCELED => "operation canceled",
        ECONNABORTED => "software caused connection abort",
        ECONNREFUSED => "connection refused",
        ECONNRESET => "connection reset by peer",
        EDESTADDRREQ => "destination address required",
        EEXIST => "file already exists",
        EFAULT => "bad address in system call argument",
        EFBIG => "file too large",
        EHOSTDOWN => "host is down",
        EHOSTUNREACH => "host is unreachable",
        EILSEQ => "illegal byte sequence",
        EINTR => "interrupted system call",
        EINVAL => "invalid argument",
        EIO => "i/o error",
        EISCONN => "socket is already connected",
        EISDIR => "illegal operation on a directory",
        ELOOP => "too many symbolic links encountered",
        EMFILE => "too many open files",
        EMLINK => "too many links",
        EMSGSIZE => "message too long",
        ENAMETOOLONG => "name too long",
        ENETDOWN => "network is down",
        ENETUNREACH => "network is unreachable",
        ENFILE => "file table overflow",
        ENOBUFS => "no buffer space available",
        ENODATA => "no data available",
        ENODEV => "no such device",
        ENOENT => "no such file or directory",
        ENOEXEC => "exec format error",
        ENOMEM => "not enough memory",
        ENONET => "machine is not on the network",
        ENOPROTOOPT => "protocol not available",
        ENOSPC => "no space left on device",
        ENOSYS => "function not implemented",
        ENOTCONN => "socket is not connected",
        ENOTDIR => "not a directory",
        ENOTEMPTY => "directory not empty",
        ENOTSOCK => "socket operation on non-socket",
        ENOTSUP => "operation not supported on socket",
        ENOTTY => "inappropriate ioctl for device",
        ENXIO => "no such device or address",
        EOVERFLOW => "value too large for defined data type",
        EPERM => "operation not permitted",
        EPIPE => "broken pipe",
        EPROTO => "protocol error",
        EPROTONOSUPPORT => "protocol not supported",
        EPROTOTYPE => "protocol wrong type for socket",
        ERANGE => "result too large",
        EREMOTEIO => "remote I/O error",
        EROFS => "read-only file system",
        ESHUTDOWN => "cannot send after transport endpoint shutdown",
        ESOCKTNOSUPPORT => "socket type not supported",
        ESPIPE => "invalid seek",
        ESRCH => "no such process",
        ETIMEDOUT => "connection timed out",
        ETXTBSY => "text file is busy",
        EXDEV => "cross-device link not permitted",
        EUNATCH => "protocol driver not attached",
        _ => "unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libuv's `UV_ERRNO_MAP` (uv.h) entries that are errno values on
    /// Linux, with their `uv_strerror` texts, in libuv's order.
    const LIBUV: &[(c_int, &str)] = &[
        (libc::E2BIG, "argument list too long"),
        (libc::EACCES, "permission denied"),
        (libc::EADDRINUSE, "address already in use"),
        (libc::EADDRNOTAVAIL, "address not available"),
        (libc::EAFNOSUPPORT, "address family not supported"),
        (libc::EAGAIN, "resource temporarily unavailable"),
        (libc::EALREADY, "connection already in progress"),
        (libc::EBADF, "bad file descriptor"),
        (libc::EBUSY, "resource busy or locked"),
        (libc::ECANCELED, "operation canceled"),
        (libc::ECONNABORTED, "software caused connection abort"),
        (libc::ECONNREFUSED, "connection refused"),
        (libc::ECONNRESET, "connection reset by peer"),
        (libc::EDESTADDRREQ, "destination address required"),
        (libc::EEXIST, "file already exists"),
        (libc::EFAULT, "bad address in system call argument"),
        (libc::EFBIG, "file too large"),
        (libc::EHOSTUNREACH, "host is unreachable"),
        (libc::EINTR, "interrupted system call"),
        (libc::EINVAL, "invalid argument"),
        (libc::EIO, "i/o error"),
        (libc::EISCONN, "socket is already connected"),
        (libc::EISDIR, "illegal operation on a directory"),
        (libc::ELOOP, "too many symbolic links encountered"),
        (libc::EMFILE, "too many open files"),
        (libc::EMSGSIZE, "message too long"),
        (libc::ENAMETOOLONG, "name too long"),
        (libc::ENETDOWN, "network is down"),
        (libc::ENETUNREACH, "network is unreachable"),
        (libc::ENFILE, "file table overflow"),
        (libc::ENOBUFS, "no buffer space available"),
        (libc::ENODEV, "no such device"),
        (libc::ENOENT, "no such file or directory"),
        (libc::ENOMEM, "not enough memory"),
        (libc::ENONET, "machine is not on the network"),
        (libc::ENOPROTOOPT, "protocol not available"),
        (libc::ENOSPC, "no space left on device"),
        (libc::ENOSYS, "function not implemented"),
        (libc::ENOTCONN, "socket is not connected"),
        (libc::ENOTDIR, "not a directory"),
        (libc::ENOTEMPTY, "directory not empty"),
        (libc::ENOTSOCK, "socket operation on non-socket"),
        (libc::ENOTSUP, "operation not supported on socket"),
        (libc::EOVERFLOW, "value too large for defined data type"),
        (libc::EPERM, "operation not permitted"),
        (libc::EPIPE, "broken pipe"),
        (libc::EPROTO, "protocol error"),
        (libc::EPROTONOSUPPORT, "protocol not supported"),
        (libc::EPROTOTYPE, "protocol wrong type for socket"),
        (libc::ERANGE, "result too large"),
        (libc::EROFS, "read-only file system"),
        (
            libc::ESHUTDOWN,
            "cannot send after transport endpoint shutdown",
        ),
        (libc::ESPIPE, "invalid seek"),
        (libc::ESRCH, "no such process"),
        (libc::ETIMEDOUT, "connection timed out"),
        (libc::ETXTBSY, "text file is busy"),
        (libc::EXDEV, "cross-device link not permitted"),
        (libc::ENXIO, "no such device or address"),
        (libc::EMLINK, "too many links"),
        (libc::EHOSTDOWN, "host is down"),
        (libc::EREMOTEIO, "remote I/O error"),
        (libc::ENOTTY, "inappropriate ioctl for device"),
        (libc::EILSEQ, "illegal byte sequence"),
        (libc::ESOCKTNOSUPPORT, "socket type not supported"),
        (libc::ENODATA, "no data available"),
        (libc::EUNATCH, "protocol driver not attached"),
        (libc::ENOEXEC, "exec format error"),
    ];

    #[test]
    fn every_errno_text_of_libuv() {
        for &(code, expected) in LIBUV {
            assert_eq!(text(code), expected, "errno {code}");
        }
        // Aliases of Linux: the same numbers, the same texts.
        assert_eq!(text(libc::EWOULDBLOCK), text(libc::EAGAIN));
        assert_eq!(text(libc::EOPNOTSUPP), text(libc::ENOTSUP));
        // Not in libuv's map.
        assert_eq!(text(libc::EDQUOT), "unknown error");
    }

    #[test]
    fn texts_relied_upon_by_scripts() {
        assert_eq!(text(libc::ENOENT), "no such file or directory");
        assert_eq!(text(libc::ECANCELED), "operation canceled");
        assert_eq!(text(EOF), "end of file");
        assert_eq!(text(3008), "unknown node or service");
        assert_eq!(code_of(&io::Error::from_raw_os_error(libc::EPIPE)), 32);
    }
}
