//! [`Bytes`]: an owned, growable byte buffer in an aligned allocation.
//!
//! A `Vec<u8>` gets the allocator's alignment (16 bytes with glibc, whose
//! large blocks start 16 bytes past a page boundary), and the kernel copies
//! into or out of a destination that is not 64-byte aligned several times
//! slower on some machines. So every allocation here is aligned to
//! [`ALIGN`] bytes, and to [`PAGE`] bytes from [`PAGE_FROM`] bytes of
//! capacity on (like a buffer of `dd`). The alignment is a function of the
//! capacity only, so the layout of an allocation is always known from it.
//!
//! Growth is fallible ([`AllocError`], never an abort); an empty buffer
//! owns no allocation.
//!
//! [`Scratch`] is a `Bytes` for I/O jobs (data copied to write, bytes read
//! on a worker) that goes back to a small process-wide pool when dropped,
//! so a loop of reads or writes reuses the same already-mapped buffers:
//! glibc serves each large aligned allocation with a new `mmap` (its
//! dynamic threshold does not adapt to them), and the kernel then faults
//! every page in again at each operation.

use std::alloc::{self, Layout};
use std::fmt;
use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Mutex;

/// The alignment of every allocation.
pub const ALIGN: usize = 64;
/// The alignment of allocations of at least [`PAGE_FROM`] bytes.
pub const PAGE: usize = 4096;
/// The capacity from which allocations are page-aligned.
pub const PAGE_FROM: usize = 64 << 10;

/// An allocation failed (or its size is too large for any allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocError;

/// Bytes `0..len` of an allocation of `cap` bytes at `ptr` (aligned as
/// [`layout`] says), initialised; `cap == 0` means no allocation and a
/// dangling `ptr`.
pub struct Bytes {
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
}

// SAFETY: a `Bytes` owns its allocation exclusively, like a `Vec<u8>`.
unsafe impl Send for Bytes {}
// SAFETY: shared references only read the bytes.
unsafe impl Sync for Bytes {}

/// The layout of an allocation of `cap` bytes (`cap > 0`).
fn layout(cap: usize) -> Result<Layout, AllocError> {
    let align = if cap >= PAGE_FROM { PAGE } else { ALIGN };
    Layout::from_size_align(cap, align).map_err(|_| AllocError)
}

/// A new allocation of `cap > 0` bytes, zeroed or not.
fn allocate(cap: usize, zeroed: bool) -> Result<NonNull<u8>, AllocError> {
    let layout = layout(cap)?;
    // SAFETY: `layout` has a non-zero size.
    let p = unsafe {
        match zeroed {
            true => alloc::alloc_zeroed(layout),
            false => alloc::alloc(layout),
        }
    };
    NonNull::new(p).ok_or(AllocError)
}

impl Bytes {
    /// An empty buffer, without allocation.
    pub const fn new() -> Self {
        Bytes {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
        }
    }

    /// `n` zero bytes, with a capacity of exactly `n`.
    pub fn zeroed(n: usize) -> Result<Self, AllocError> {
        if n == 0 {
            return Ok(Self::new());
        }
        Ok(Bytes {
            ptr: allocate(n, true)?,
            len: n,
            cap: n,
        })
    }

    /// An empty buffer with room for exactly `n` bytes (uninitialised).
    pub fn with_capacity(n: usize) -> Result<Self, AllocError> {
        if n == 0 {
            return Ok(Self::new());
        }
        Ok(Bytes {
            ptr: allocate(n, false)?,
            len: 0,
            cap: n,
        })
    }

    /// A copy of `s`, with a capacity of exactly its length.
    pub fn copy_from(s: &[u8]) -> Result<Self, AllocError> {
        let mut b = Self::with_capacity(s.len())?;
        b.spare_capacity_mut().write_copy_of_slice(s);
        // SAFETY: the capacity is `s.len()`, and the bytes were just written.
        unsafe { b.set_len(s.len()) };
        Ok(b)
    }

    /// The number of bytes the allocation holds.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The uninitialised bytes after the length, up to the capacity.
    pub fn spare_capacity_mut(&mut self) -> &mut [MaybeUninit<u8>] {
        // SAFETY: bytes `len..cap` belong to the allocation (for `cap == 0`
        // the slice is empty and the dangling pointer is aligned), and
        // MaybeUninit needs no initialisation.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.ptr.as_ptr().add(self.len).cast::<MaybeUninit<u8>>(),
                self.cap - self.len,
            )
        }
    }

    /// Sets the length.
    ///
    /// # Safety
    /// `n <= capacity()` and bytes `0..n` must be initialised.
    pub unsafe fn set_len(&mut self, n: usize) {
        debug_assert!(n <= self.cap);
        self.len = n;
    }

    /// Shortens to `n` bytes (no effect if already shorter); keeps the
    /// capacity.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// Resizes to `n` bytes, new ones set to `value`. Growing past the
    /// capacity at least doubles it (amortised growth, as `Vec`).
    pub fn resize(&mut self, n: usize, value: u8) -> Result<(), AllocError> {
        if n <= self.len {
            self.truncate(n);
            return Ok(());
        }
        if n > self.cap {
            let cap = n.max(self.cap.saturating_mul(2));
            // Doubling may overflow the limits when `n` itself does not.
            if self.reallocate(cap).is_err() {
                self.reallocate(n)?;
            }
        }
        let grow = n - self.len;
        self.spare_capacity_mut()[..grow].fill(MaybeUninit::new(value));
        // SAFETY: `n <= cap` and bytes `len..n` were just written.
        unsafe { self.set_len(n) };
        Ok(())
    }

    /// Lowers the capacity to the length (frees the allocation when
    /// empty). If the smaller allocation fails, the buffer is unchanged.
    pub fn shrink_to_fit(&mut self) {
        if self.cap > self.len {
            let _ = self.reallocate(self.len);
        }
    }

    /// Moves the bytes to an allocation of `cap >= len` bytes.
    fn reallocate(&mut self, cap: usize) -> Result<(), AllocError> {
        debug_assert!(cap >= self.len);
        if cap == self.cap {
            return Ok(());
        }
        if cap == 0 {
            // Dropping the old value frees its allocation.
            *self = Self::new();
            return Ok(());
        }
        let new = layout(cap)?;
        let ptr = match self.cap {
            0 => allocate(cap, false)?,
            _ => {
                let old = layout(self.cap)?;
                if old.align() == new.align() {
                    // SAFETY: the block was allocated with `old`; `cap` is
                    // non-zero and `new` (same alignment) is valid. Realloc
                    // keeps the alignment of the layout and the first
                    // `min(old, new)` bytes, thus the initialised prefix.
                    let p = unsafe { alloc::realloc(self.ptr.as_ptr(), old, cap) };
                    NonNull::new(p).ok_or(AllocError)?
                } else {
                    // The alignment changes: a new block, the prefix
                    // copied, the old block freed.
                    let p = allocate(cap, false)?;
                    // SAFETY: both blocks hold at least `len` bytes and are
                    // distinct; the old one was allocated with `old`.
                    unsafe {
                        std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), p.as_ptr(), self.len);
                        alloc::dealloc(self.ptr.as_ptr(), old);
                    }
                    p
                }
            }
        };
        self.ptr = ptr;
        self.cap = cap;
        Ok(())
    }
}

/// The capacities the pool keeps: smaller buffers are cheap to allocate,
/// larger ones are not kept.
const POOL_CAPS: std::ops::RangeInclusive<usize> = PAGE_FROM..=4 << 20;
/// How many buffers the pool keeps, at most.
const POOL_COUNT: usize = 4;

/// Free scratch buffers (empty, capacities in [`POOL_CAPS`]).
static POOL: Mutex<Vec<Bytes>> = Mutex::new(Vec::new());

fn pool() -> std::sync::MutexGuard<'static, Vec<Bytes>> {
    // The pool is valid whatever a panicking holder did: take it anyway.
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A [`Bytes`] that returns to a small process-wide pool when dropped
/// (if its capacity is in the pool's range and the pool is not full), for
/// buffers made and dropped at each I/O operation.
#[derive(Debug, Default)]
pub struct Scratch(Bytes);

impl Scratch {
    /// An empty buffer with room for at least `n` bytes (uninitialised):
    /// the smallest pooled one that fits, else a new one of exactly `n`.
    pub fn with_capacity(n: usize) -> Result<Self, AllocError> {
        if POOL_CAPS.contains(&n) {
            let mut pool = pool();
            let best = (pool.iter().enumerate())
                .filter(|(_, b)| b.capacity() >= n)
                .min_by_key(|(_, b)| b.capacity())
                .map(|(k, _)| k);
            if let Some(k) = best {
                return Ok(Scratch(pool.swap_remove(k)));
            }
        }
        Bytes::with_capacity(n).map(Scratch)
    }

    /// A copy of `s`.
    pub fn copy_from(s: &[u8]) -> Result<Self, AllocError> {
        let mut b = Self::with_capacity(s.len())?;
        b.spare_capacity_mut()[..s.len()].write_copy_of_slice(s);
        // SAFETY: the buffer was empty, with a capacity of at least
        // `s.len()`, and its first `s.len()` bytes were just written.
        unsafe { b.set_len(s.len()) };
        Ok(b)
    }
}

impl Deref for Scratch {
    type Target = Bytes;

    fn deref(&self) -> &Bytes {
        &self.0
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut Bytes {
        &mut self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if POOL_CAPS.contains(&self.0.capacity()) {
            let mut b = std::mem::take(&mut self.0);
            b.truncate(0);
            let mut pool = pool();
            if pool.len() < POOL_COUNT {
                pool.push(b);
                return;
            }
            // Dropped (freed) after unlocking.
            drop(pool);
        }
    }
}

impl Drop for Bytes {
    fn drop(&mut self) {
        if self.cap > 0
            && let Ok(layout) = layout(self.cap)
        {
            // SAFETY: a non-zero capacity means the block was allocated with
            // `layout(cap)` (which was valid then, so it still is).
            unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}

impl Default for Bytes {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: bytes `0..len` are initialised and owned (for `len == 0`
        // the dangling pointer is non-null and aligned for u8).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for Bytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bytes")
            .field("len", &self.len)
            .field("cap", &self.cap)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aligned(b: &Bytes) -> bool {
        let align = if b.capacity() >= PAGE_FROM {
            PAGE
        } else {
            ALIGN
        };
        b.capacity() == 0 || (b.as_ptr() as usize).is_multiple_of(align)
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|k| (k * 7 + k / 251) as u8).collect()
    }

    #[test]
    fn empty_has_no_allocation() {
        for b in [
            Bytes::new(),
            Bytes::zeroed(0).unwrap(),
            Bytes::with_capacity(0).unwrap(),
            Bytes::copy_from(&[]).unwrap(),
        ] {
            assert_eq!((b.len(), b.capacity()), (0, 0));
            assert!(b.is_empty());
        }
        let mut b = Bytes::new();
        assert!(b.spare_capacity_mut().is_empty());
        b.resize(0, 1).unwrap();
        b.shrink_to_fit();
        assert_eq!(b.capacity(), 0);
    }

    #[test]
    fn zeroed_and_copied() {
        for n in [1, 15, 64, 1000, PAGE_FROM - 1, PAGE_FROM, 1 << 20] {
            let b = Bytes::zeroed(n).unwrap();
            assert_eq!((b.len(), b.capacity()), (n, n));
            assert!(b.iter().all(|&x| x == 0));
            assert!(aligned(&b), "zeroed({n})");
            let p = pattern(n);
            let c = Bytes::copy_from(&p).unwrap();
            assert_eq!(&c[..], &p[..]);
            assert!(aligned(&c), "copy_from({n})");
        }
    }

    #[test]
    fn alignment() {
        let at = |b: Bytes, align: usize| (b.as_ptr() as usize).is_multiple_of(align);
        assert!(at(Bytes::zeroed(1).unwrap(), ALIGN));
        assert!(at(Bytes::copy_from(&[1; 100]).unwrap(), ALIGN));
        assert!(at(Bytes::zeroed(1 << 20).unwrap(), PAGE));
        assert!(at(Bytes::with_capacity(PAGE_FROM).unwrap(), PAGE));
    }

    #[test]
    fn resize_keeps_prefix_and_alignment() {
        let sizes = [
            0,
            1,
            100,
            63,
            5000,
            PAGE_FROM - 1,
            PAGE_FROM,
            PAGE_FROM + 1,
            3 << 20,
            70_000,
            10,
            PAGE_FROM * 2,
            0,
            40,
        ];
        let full = pattern(3 << 20);
        let mut b = Bytes::new();
        let mut len = 0;
        for n in sizes {
            if n > len {
                b.resize(n, 0xAB).unwrap();
                assert_eq!(&b[..len], &full[..len], "prefix after growing to {n}");
                assert!(b[len..].iter().all(|&x| x == 0xAB));
                b[len..].copy_from_slice(&full[len..n]);
            } else {
                b.resize(n, 0).unwrap();
                if b.capacity() / 2 > n {
                    b.shrink_to_fit();
                    assert_eq!(b.capacity(), n);
                }
            }
            len = n;
            assert_eq!(b.len(), n);
            assert!(b.capacity() >= n);
            assert_eq!(&b[..], &full[..n], "contents at {n}");
            assert!(aligned(&b), "alignment at {n} (cap {})", b.capacity());
        }
    }

    #[test]
    fn growth_is_amortised() {
        let mut b = Bytes::new();
        let mut reallocs = 0;
        let mut cap = 0;
        for n in 1..=100_000 {
            b.resize(n, n as u8).unwrap();
            if b.capacity() != cap {
                reallocs += 1;
                cap = b.capacity();
            }
        }
        assert!(reallocs < 30, "{reallocs} reallocations");
        assert!(b.iter().enumerate().all(|(k, &x)| x == (k + 1) as u8));
    }

    #[test]
    fn spare_capacity() {
        let mut b = Bytes::with_capacity(10).unwrap();
        assert_eq!(b.len(), 0);
        let spare = b.spare_capacity_mut();
        assert_eq!(spare.len(), 10);
        for (k, x) in spare[..4].iter_mut().enumerate() {
            x.write(k as u8 + 1);
        }
        // SAFETY: the first 4 bytes were just written.
        unsafe { b.set_len(4) };
        assert_eq!(&b[..], &[1, 2, 3, 4]);
        assert_eq!(b.spare_capacity_mut().len(), 6);
        b.truncate(2);
        assert_eq!(&b[..], &[1, 2]);
        assert_eq!(b.capacity(), 10);
    }

    #[test]
    fn scratch_buffers_are_reused() {
        // Other tests may use the pool meanwhile: look for our own buffer.
        let n = PAGE_FROM + 4321;
        let mut s = Scratch::with_capacity(n).unwrap();
        assert!(s.is_empty() && s.capacity() >= n);
        assert!((s.as_ptr() as usize).is_multiple_of(PAGE));
        s.resize(10, 7).unwrap();
        let p = s.as_ptr();
        drop(s);
        let mut found = false;
        let mut held = Vec::new();
        for _ in 0..POOL_COUNT {
            let s = Scratch::with_capacity(n).unwrap();
            assert!(s.is_empty(), "pooled buffers come back empty");
            found |= s.as_ptr() == p;
            held.push(s);
        }
        assert!(found, "the dropped buffer was not reused");
        // Small and huge buffers are never pooled.
        let c = Scratch::copy_from(b"hello").unwrap();
        assert_eq!(&c[..], b"hello");
        assert_eq!(c.capacity(), 5);
        drop(c);
        assert!(pool().iter().all(|b| POOL_CAPS.contains(&b.capacity())));
        let big = Scratch::copy_from(&pattern(5 << 20)).unwrap();
        assert_eq!(&big[..], &pattern(5 << 20)[..]);
        drop(big);
        drop(held);
        let pool = pool();
        assert!(pool.len() <= POOL_COUNT);
        assert!(
            pool.iter()
                .all(|b| b.is_empty() && POOL_CAPS.contains(&b.capacity()))
        );
    }

    #[test]
    fn too_large_fails() {
        assert_eq!(Bytes::zeroed(usize::MAX).unwrap_err(), AllocError);
        assert_eq!(
            Bytes::with_capacity(isize::MAX as usize).unwrap_err(),
            AllocError
        );
        let mut b = Bytes::copy_from(b"abc").unwrap();
        assert_eq!(b.resize(usize::MAX, 0), Err(AllocError));
        assert_eq!(&b[..], b"abc");
    }
}
