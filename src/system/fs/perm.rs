//! Permission strings and numbers (spec files.md §1) and the
//! `system.filebits` table.
//!
//! A `perm` argument is an integer of mode bits, or a string whose
//! characters each set one bit; the same characters are the boolean
//! information characters of `fileinfo` and `file:info`. The values are the
//! platform's, from `libc`.

use std::borrow::Cow;
use std::ffi::{CStr, c_int};

use crate::lua::{Error, LUA_TSTRING, Lua};

/// Permission characters and their bits.
pub const CHARS: &[(u8, u32)] = &[
    (b'U', libc::S_ISUID),
    (b'G', libc::S_ISGID),
    (b'S', libc::S_ISVTX),
    (b'r', libc::S_IRUSR),
    (b'w', libc::S_IWUSR),
    (b'x', libc::S_IXUSR),
    (b'R', libc::S_IRGRP),
    (b'W', libc::S_IWGRP),
    (b'X', libc::S_IXGRP),
    (b'4', libc::S_IROTH),
    (b'2', libc::S_IWOTH),
    (b'1', libc::S_IXOTH),
];

/// The bit of permission character `c`.
pub fn bit(c: u8) -> Option<u32> {
    CHARS.iter().find(|&&(k, _)| k == c).map(|&(_, b)| b)
}

/// `unknown <what> char (got '<c>')`, the raw byte kept.
fn unknown_char(what: &[u8], c: u8) -> Vec<u8> {
    let mut text = b"unknown ".to_vec();
    text.extend_from_slice(what);
    text.extend_from_slice(b" char (got '");
    text.push(c);
    text.extend_from_slice(b"')");
    text
}

/// The largest permission integer: every bit of [`CHARS`].
pub const PERM_MAX: i64 = 0o7777;

/// The `perm` argument at `arg`: a string of permission characters or an
/// integer from 0 to [`PERM_MAX`] (`number expected` otherwise, `out of
/// range` outside it: the OS would silently keep only some bits).
pub fn arg_perm(lua: Lua, arg: c_int) -> Result<u32, Error> {
    if lua.type_of(arg) == LUA_TSTRING {
        let mut perm = 0;
        for &c in lua.arg_bytes(arg)? {
            match bit(c) {
                Some(b) => perm |= b,
                None => return Err(Error::Arg(arg, Cow::Owned(unknown_char(b"perm", c)))),
            }
        }
        Ok(perm)
    } else {
        match lua.arg_integer(arg)? {
            perm @ 0..=PERM_MAX => Ok(perm as u32),
            _ => Err(Error::arg(arg, "out of range")),
        }
    }
}

/// The arguments of `grantfile` and `file:grant` (spec R3): the `perm` at
/// `arg` first, then the mode at `arg + 1`, which only takes `~` and whose
/// other characters raise a plain `unknown mode char` error (no `bad
/// argument` prefix). Returns the bits and whether the call blocks.
pub fn arg_grant(lua: Lua, arg: c_int) -> Result<(u32, bool), Error> {
    let perm = arg_perm(lua, arg)?;
    let mode = lua.opt_bytes(arg + 1)?.unwrap_or_default();
    if let Some(&c) = mode.iter().find(|&&c| c != b'~') {
        return Err(Error::Msg(Cow::Owned(unknown_char(b"mode", c))));
    }
    Ok((perm, mode.contains(&b'~')))
}

const FILEBITS: &[(&CStr, u32)] = &[
    (c"setuid", libc::S_ISUID),
    (c"setgid", libc::S_ISGID),
    (c"sticky", libc::S_ISVTX),
    (c"ruser", libc::S_IRUSR),
    (c"wuser", libc::S_IWUSR),
    (c"xuser", libc::S_IXUSR),
    (c"rgroup", libc::S_IRGRP),
    (c"wgroup", libc::S_IWGRP),
    (c"xgroup", libc::S_IXGRP),
    (c"rother", libc::S_IROTH),
    (c"wother", libc::S_IWOTH),
    (c"xother", libc::S_IXOTH),
    (c"type", libc::S_IFMT),
    (c"socket", libc::S_IFSOCK),
    (c"link", libc::S_IFLNK),
    (c"file", libc::S_IFREG),
    (c"block", libc::S_IFBLK),
    (c"directory", libc::S_IFDIR),
    (c"character", libc::S_IFCHR),
    (c"pipe", libc::S_IFIFO),
];

/// Sets `filebits` in the module table on top of the stack.
pub fn set_filebits(lua: Lua) {
    lua.push_functions(&[], false);
    for (name, value) in FILEBITS {
        lua.push_integer(*value as i64);
        lua.set_field(-2, name);
    }
    lua.set_field(-2, c"filebits");
}
