//! Position rules shared by every Coutil function that takes data or
//! buffers (spec `memory.md` §1): 1-based positions, negative ones counted
//! from the end, start positions clipped below at 1 and end positions
//! clipped to the length, so any pair of integers makes a valid (possibly
//! empty) range and no check can fail.

use std::ffi::c_int;
use std::ops::Range;

use crate::lua::{Error, Lua};

/// A start position `i` for data of length `len`: at least 1, possibly past
/// the end (`len + 1` or more) when the range is empty.
pub fn start(i: i64, len: usize) -> i64 {
    let len = len as i64;
    if i > 0 {
        i
    } else if i == 0 || i < -len {
        1
    } else {
        len + i + 1
    }
}

/// An end position `j` for data of length `len`: in `0..=len`.
pub fn end(j: i64, len: usize) -> i64 {
    let len = len as i64;
    if j > len {
        len
    } else if j >= 0 {
        j
    } else if j < -len {
        0
    } else {
        len + j + 1
    }
}

/// The byte indices of positions `i..=j` (already normalised by [`start`]
/// and [`end`]); empty when `i > j`.
pub fn span(i: i64, j: i64) -> Range<usize> {
    if i > j {
        0..0
    } else {
        (i - 1) as usize..j as usize
    }
}

/// `r` cut to data of length `len` (an empty range if it starts past
/// the end): for a range computed before the data could change.
pub fn clip(r: Range<usize>, len: usize) -> Range<usize> {
    r.start.min(len)..r.end.min(len)
}

/// The bytes `r` of `b`, [`clip`]ped.
pub fn part(b: &[u8], r: Range<usize>) -> &[u8] {
    &b[clip(r, b.len())]
}

/// The bytes `r` of `b` to write, [`clip`]ped.
pub fn part_mut(b: &mut [u8], r: Range<usize>) -> &mut [u8] {
    let r = clip(r, b.len());
    &mut b[r]
}

/// The range given by the optional arguments `ia` (default 1) and `ja`
/// (default -1) for data of length `len`.
pub fn arg_span(lua: Lua, len: usize, ia: c_int, ja: c_int) -> Result<Range<usize>, Error> {
    let i = start(lua.opt_integer(ia, 1)?, len);
    let j = end(lua.opt_integer(ja, -1)?, len);
    Ok(span(i, j))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts() {
        assert_eq!([5, 1, 1, 1, 3].map(|i| start(i, 3)), [5, 1, 1, 1, 3]);
        assert_eq!(
            [0, -1, -3, -4, i64::MIN].map(|i| start(i, 3)),
            [1, 3, 1, 1, 1]
        );
        assert_eq!(start(-1, 0), 1);
    }

    #[test]
    fn ends() {
        assert_eq!(
            [9, 3, 2, 0, -1, -3, -4, i64::MIN].map(|j| end(j, 3)),
            [3, 3, 2, 0, 3, 1, 0, 0]
        );
        assert_eq!(end(-1, 0), 0);
    }

    #[test]
    fn spans() {
        assert_eq!(span(1, 3), 0..3);
        assert_eq!(span(2, 2), 1..2);
        assert_eq!(span(3, 2), 0..0);
        assert_eq!(span(9, 3), 0..0);
    }
}
