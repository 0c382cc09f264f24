//! The timer heap: due time in nanoseconds of the monotonic clock, ties in
//! arming order. Entries of cancelled or re-armed operations stay until
//! they surface (their stamp no longer matches), or until stale entries
//! outnumber live operations, when the heap is rebuilt without them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(u64, u64, u32, u32)>>,
    seq: u64,
}

impl Timers {
    pub fn push(&mut self, due: u64, index: u32, stamp: u32) {
        self.seq += 1;
        self.heap.push(Reverse((due, self.seq, index, stamp)));
    }

    /// The entry due at `now`, if any (possibly stale).
    pub fn pop_due(&mut self, now: u64) -> Option<(u32, u32)> {
        match self.heap.peek() {
            Some(Reverse((due, ..))) if *due <= now => {
                let Reverse((_, _, index, stamp)) = self.heap.pop()?;
                Some((index, stamp))
            }
            _ => None,
        }
    }

    /// Whether an entry (possibly stale) is due at `now`.
    #[inline]
    pub fn due(&self, now: u64) -> bool {
        self.heap
            .peek()
            .is_some_and(|Reverse((due, ..))| *due <= now)
    }

    pub fn next_due(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((due, ..))| *due)
    }

    /// Pops entries from the top while `live(index, stamp)` fails.
    pub fn drop_stale_top(&mut self, live: impl Fn(u32, u32) -> bool) {
        while let Some(Reverse((_, _, index, stamp))) = self.heap.peek() {
            if live(*index, *stamp) {
                break;
            }
            self.heap.pop();
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Keeps only the entries for which `live(index, stamp)` holds.
    pub fn retain(&mut self, live: impl Fn(u32, u32) -> bool) {
        self.heap
            .retain(|Reverse((_, _, index, stamp))| live(*index, *stamp));
    }
}
