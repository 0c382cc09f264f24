//! `memory.pack` and `memory.unpack`: the `string.pack` format language,
//! implemented here over the bytes in place rather than by calling
//! `string.pack`, because `pack` must stop at the first item that does not
//! fit (returning the values left) and `unpack` should not copy the memory
//! into a string. Options, sizes, alignment and error texts follow Lua 5.4's
//! `string.pack`/`string.unpack`; alignment is relative to the start of the
//! memory (as `string.unpack` with an initial position), so packing at 1
//! gives the bytes of `string.pack`.

use std::ffi::{c_int, c_long, c_short};

use super::{range, raw_bytes, with_arg_buffer, with_arg_bytes, with_buffer};
use crate::lua::{Error, Lua, Ret};

/// Bytes of a Lua integer.
const SZINT: usize = 8;
/// Largest size of an integral option (`i16`).
const MAXINTSIZE: usize = 16;
/// Default maximum alignment for `!` (that of double, pointers, integers).
const MAXALIGN: usize = 8;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Opt {
    Int,
    Uint,
    Float,
    Double,
    Char,
    Str,
    Zstr,
    Padding,
    PadAlign,
    Nop,
}

/// A format being read, with its current endianness and maximum alignment.
struct Format<'a> {
    fmt: &'a [u8],
    at: usize,
    /// The argument holding the format, for argument errors.
    arg: c_int,
    little: bool,
    maxalign: usize,
}

/// One item: its option, size and the padding before it.
struct Item {
    opt: Opt,
    size: usize,
    pad: usize,
}

impl<'a> Format<'a> {
    fn new(fmt: &'a [u8], arg: c_int) -> Self {
        Format {
            fmt,
            at: 0,
            arg,
            little: cfg!(target_endian = "little"),
            maxalign: 1,
        }
    }

    fn done(&self) -> bool {
        self.at >= self.fmt.len()
    }

    fn peek(&self) -> Option<u8> {
        self.fmt.get(self.at).copied()
    }

    /// An optional decimal count, or `default`.
    fn num(&mut self, default: i64) -> i64 {
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return default;
        }
        let mut a: i64 = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            a = a * 10 + i64::from(c - b'0');
            self.at += 1;
            if a > (i64::from(i32::MAX) - 9) / 10 {
                break;
            }
        }
        a
    }

    /// A count of bytes for an integral option, in `1..=16`.
    fn int_size(&mut self, default: usize) -> Result<usize, Error> {
        let n = self.num(default as i64);
        if n <= 0 || n > MAXINTSIZE as i64 {
            return Err(Error::msg(format!(
                "integral size ({n}) out of limits [1,{MAXINTSIZE}]"
            )));
        }
        Ok(n as usize)
    }

    /// Reads one option and its size.
    fn option(&mut self) -> Result<(Opt, usize), Error> {
        let c = self.fmt[self.at];
        self.at += 1;
        let int_size = std::mem::size_of::<c_int>();
        Ok(match c {
            b'b' => (Opt::Int, 1),
            b'B' => (Opt::Uint, 1),
            b'h' => (Opt::Int, std::mem::size_of::<c_short>()),
            b'H' => (Opt::Uint, std::mem::size_of::<c_short>()),
            b'l' => (Opt::Int, std::mem::size_of::<c_long>()),
            b'L' => (Opt::Uint, std::mem::size_of::<c_long>()),
            b'j' => (Opt::Int, SZINT),
            b'J' => (Opt::Uint, SZINT),
            b'T' => (Opt::Uint, std::mem::size_of::<usize>()),
            b'f' => (Opt::Float, 4),
            b'n' | b'd' => (Opt::Double, 8),
            b'i' => (Opt::Int, self.int_size(int_size)?),
            b'I' => (Opt::Uint, self.int_size(int_size)?),
            b's' => (Opt::Str, self.int_size(std::mem::size_of::<usize>())?),
            b'c' => match self.num(-1) {
                -1 => return Err(Error::msg("missing size for format option 'c'")),
                n => (Opt::Char, n as usize),
            },
            b'z' => (Opt::Zstr, 0),
            b'x' => (Opt::Padding, 1),
            b'X' => (Opt::PadAlign, 0),
            b' ' => (Opt::Nop, 0),
            b'<' => {
                self.little = true;
                (Opt::Nop, 0)
            }
            b'>' => {
                self.little = false;
                (Opt::Nop, 0)
            }
            b'=' => {
                self.little = cfg!(target_endian = "little");
                (Opt::Nop, 0)
            }
            b'!' => {
                self.maxalign = self.int_size(MAXALIGN)?;
                (Opt::Nop, 0)
            }
            c => {
                let mut text = b"invalid format option '".to_vec();
                text.extend_from_slice(&[c, b'\'']);
                return Err(Error::Msg(text.into()));
            }
        })
    }

    /// Reads the next item, to be placed at byte offset `offset`.
    fn item(&mut self, offset: usize) -> Result<Item, Error> {
        let (opt, size) = self.option()?;
        let mut align = size;
        if opt == Opt::PadAlign {
            let next = if self.done() {
                None
            } else {
                Some(self.option()?)
            };
            match next {
                Some((o, a)) if o != Opt::Char && a != 0 => align = a,
                _ => return Err(Error::arg(self.arg, "invalid next option for option 'X'")),
            }
        }
        let mut pad = 0;
        if align > 1 && opt != Opt::Char {
            let align = align.min(self.maxalign);
            if !align.is_power_of_two() {
                return Err(Error::arg(
                    self.arg,
                    "format asks for alignment not power of 2",
                ));
            }
            pad = (align - (offset & (align - 1))) & (align - 1);
        }
        Ok(Item { opt, size, pad })
    }
}

/// Writes the `size` low bytes of `n` (sign-extended past 8 bytes).
fn put_int(out: &mut [u8], n: u64, little: bool, negative: bool) {
    let size = out.len();
    for k in 0..size {
        let b = match k {
            0..SZINT => (n >> (8 * k)) as u8,
            _ if negative => 0xff,
            _ => 0,
        };
        out[if little { k } else { size - 1 - k }] = b;
    }
}

/// Reads an integer of `s.len()` bytes.
fn get_int(s: &[u8], little: bool, signed: bool) -> Result<i64, Error> {
    let size = s.len();
    let at = |k: usize| s[if little { k } else { size - 1 - k }];
    let limit = size.min(SZINT);
    let mut res: u64 = 0;
    for k in (0..limit).rev() {
        res = (res << 8) | u64::from(at(k));
    }
    if size < SZINT {
        if signed {
            let mask = 1u64 << (size * 8 - 1);
            res = (res ^ mask).wrapping_sub(mask);
        }
    } else if size > SZINT {
        let fill = if !signed || (res as i64) >= 0 {
            0
        } else {
            0xff
        };
        if (limit..size).any(|k| at(k) != fill) {
            return Err(Error::msg(format!(
                "{size}-byte integer does not fit into Lua Integer"
            )));
        }
    }
    Ok(res as i64)
}

fn put_float(out: &mut [u8], bytes: &[u8], little: bool) {
    out.copy_from_slice(bytes);
    if little != cfg!(target_endian = "little") {
        out.reverse();
    }
}

fn get_bytes<const N: usize>(s: &[u8], little: bool) -> [u8; N] {
    let mut b: [u8; N] = s.try_into().expect("sized by the format");
    if little != cfg!(target_endian = "little") {
        b.reverse();
    }
    b
}

/// What an item writes, checked before it is placed.
enum Value<'a> {
    None,
    Int(u64, bool),
    Float(f32),
    Double(f64),
    Bytes(&'a [u8]),
}

/// ok, i, ... = memory.pack(m, fmt, i, ...)
pub fn pack(lua: Lua) -> Ret {
    let len = with_arg_buffer(lua, 1, |b| b.len())?;
    let mut f = Format::new(lua.arg_bytes(2)?, 2);
    let i = range::start(lua.arg_integer(3)?, len);
    let mut pos = usize::try_from(i - 1).unwrap_or(usize::MAX);
    let mut arg = 3;
    let mut fitted = true;
    while !f.done() {
        let item = f.item(pos)?;
        let k = arg + 1;
        // Strings are fetched first: their size depends on them.
        let (extra, text) = match item.opt {
            Opt::Str => {
                let s = lua.arg_bytes(k)?;
                if item.size < SZINT && s.len() as u64 >= 1u64 << (item.size * 8) {
                    return Err(Error::arg(k, "string length does not fit in given size"));
                }
                (s.len(), s)
            }
            Opt::Zstr => {
                let s = lua.arg_bytes(k)?;
                if s.contains(&0) {
                    return Err(Error::arg(k, "string contains zeros"));
                }
                (s.len() + 1, s)
            }
            _ => (0, &[][..]),
        };
        let need = item
            .pad
            .checked_add(item.size)
            .and_then(|n| n.checked_add(extra));
        if need
            .and_then(|n| pos.checked_add(n))
            .is_none_or(|end| end > len)
        {
            fitted = false;
            break;
        }
        let value = match item.opt {
            Opt::Int => {
                let n = lua.arg_integer(k)?;
                if item.size < SZINT {
                    let lim = 1i64 << (item.size * 8 - 1);
                    if !(-lim..lim).contains(&n) {
                        return Err(Error::arg(k, "integer overflow"));
                    }
                }
                Value::Int(n as u64, n < 0)
            }
            Opt::Uint => {
                let n = lua.arg_integer(k)?;
                if item.size < SZINT && n as u64 >= 1u64 << (item.size * 8) {
                    return Err(Error::arg(k, "unsigned overflow"));
                }
                Value::Int(n as u64, false)
            }
            Opt::Float => Value::Float(lua.arg_number(k)? as f32),
            Opt::Double => Value::Double(lua.arg_number(k)?),
            Opt::Char => {
                let s = lua.arg_bytes(k)?;
                if s.len() > item.size {
                    return Err(Error::arg(k, "string longer than given size"));
                }
                Value::Bytes(s)
            }
            Opt::Str | Opt::Zstr => Value::Bytes(text),
            Opt::Padding | Opt::PadAlign | Opt::Nop => Value::None,
        };
        // Fetched after the values: converting a number may run Lua code.
        let (little, item_ref) = (f.little, &item);
        let written = with_buffer(lua, 1, move |data| {
            let item = item_ref;
            let Some(out) = data.get_mut(pos..pos + item.pad + item.size + extra) else {
                return false;
            };
            let (padding, out) = out.split_at_mut(item.pad);
            padding.fill(0);
            match value {
                Value::None => out.fill(0),
                Value::Int(n, negative) => put_int(out, n, little, negative),
                Value::Float(x) => put_float(out, &x.to_ne_bytes(), little),
                Value::Double(x) => put_float(out, &x.to_ne_bytes(), little),
                Value::Bytes(s) => {
                    let (head, tail) = match item.opt {
                        Opt::Str => {
                            let (head, tail) = out.split_at_mut(item.size);
                            put_int(head, s.len() as u64, little, false);
                            (tail, &mut [][..])
                        }
                        _ => out.split_at_mut(s.len()),
                    };
                    head[..s.len()].copy_from_slice(s);
                    tail.fill(0);
                }
            }
            true
        });
        if written != Some(true) {
            break;
        }
        pos += item.pad + item.size + extra;
        if !matches!(item.opt, Opt::Padding | Opt::PadAlign | Opt::Nop) {
            arg = k;
        }
    }
    let rest = (lua.top() - arg).max(0);
    lua.check_stack(rest + 2)?;
    lua.push_bool(fitted && f.done());
    lua.push_integer(pos as i64 + 1);
    for k in arg + 1..arg + 1 + rest {
        lua.push_value(k);
    }
    Ok(rest + 2)
}

/// ..., i = memory.unpack(m, fmt [, i])
pub fn unpack(lua: Lua) -> Ret {
    let ld = with_arg_bytes(lua, 1, <[u8]>::len)?;
    let mut f = Format::new(lua.arg_bytes(2)?, 2);
    let i = range::start(lua.opt_integer(3, 1)?, ld);
    let mut pos = match usize::try_from(i - 1) {
        Ok(pos) if pos <= ld => pos,
        _ => return Err(Error::arg(3, "initial position out of string")),
    };
    let short = || Error::arg(1, "data string too short");
    let mut n = 0;
    while !f.done() {
        let item = f.item(pos)?;
        if item.pad + item.size > ld - pos {
            return Err(short());
        }
        pos += item.pad;
        lua.check_stack(2)
            .map_err(|_| Error::msg("stack overflow (too many results)"))?;
        // Fetched again for each item: pushing a string may run Lua code.
        // SAFETY: only read until one push, which copies a string before
        // it can run Lua code (`get_int` and the checks run none).
        let data = unsafe { raw_bytes(&lua, 1) }.unwrap_or_default();
        let here = data.get(pos..pos + item.size).ok_or_else(short)?;
        match item.opt {
            Opt::Int | Opt::Uint => {
                lua.push_integer(get_int(here, f.little, item.opt == Opt::Int)?)
            }
            Opt::Float => lua.push_number(f32::from_ne_bytes(get_bytes(here, f.little)).into()),
            Opt::Double => lua.push_number(f64::from_ne_bytes(get_bytes(here, f.little))),
            Opt::Char => lua.push_bytes(here),
            Opt::Str => {
                let len = get_int(here, f.little, false)? as u64;
                let from = pos + item.size;
                if len > (ld - from) as u64 {
                    return Err(short());
                }
                lua.push_bytes(data.get(from..from + len as usize).ok_or_else(short)?);
                pos += len as usize;
            }
            Opt::Zstr => {
                let rest = data.get(pos..).unwrap_or_default();
                let Some(len) = rest.iter().position(|&b| b == 0) else {
                    return Err(Error::arg(1, "unfinished string for format 'z'"));
                };
                lua.push_bytes(&rest[..len]);
                pos += len + 1;
            }
            Opt::Padding | Opt::PadAlign | Opt::Nop => n -= 1,
        }
        n += 1;
        pos += item.size;
    }
    lua.push_integer(pos as i64 + 1);
    Ok(n + 1)
}
