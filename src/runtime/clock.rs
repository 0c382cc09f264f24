//! Clocks: the monotonic clock of timers and `nanosecs`, and wall time.

/// Nanoseconds of `CLOCK_MONOTONIC` (time since boot, never negative).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Seconds since the Unix epoch with microsecond precision.
pub fn epoch_secs() -> std::io::Result<f64> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    // SAFETY: `tv` is a valid out-pointer; a null time zone is allowed.
    if unsafe { libc::gettimeofday(&mut tv, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6)
}
