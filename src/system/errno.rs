//! The calling thread's `errno`, for the OS wrappers of `coutil.system`.

use std::ffi::c_int;

/// The last OS error number of this thread.
pub fn errno() -> c_int {
    // NOTE: always `Some` on POSIX; EINVAL only satisfies the type.
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EINVAL)
}

/// The address of this thread's `errno`; async-signal-safe, so also usable
/// in signal handlers and in a child before `exec`.
pub fn errno_location() -> *mut c_int {
    // SAFETY: returns the calling thread's errno address.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    unsafe {
        libc::__errno_location()
    }
    // SAFETY: as above.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    unsafe {
        libc::__error()
    }
}
