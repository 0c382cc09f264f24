//! `luaL_loadfilex` for a named file, with a close-on-exec descriptor.
//!
//! Lua opens the file with `fopen(path, "r")`, which is not close-on-exec:
//! a process started meanwhile by another thread (a pool task running
//! `system.execute`) would inherit it, and the library promises that its
//! descriptors are close-on-exec. So `pool:dofile` and
//! `coroutine.loadfile` read the file themselves (`std` opens with
//! `O_CLOEXEC`) and give Lua what its file reader would have: the same
//! chunk name (`@path`), the same treatment of a leading UTF-8 BOM and of
//! a first line starting with `#` (replaced by an empty line, so line
//! numbers stay right; dropped before a binary chunk), and the same error
//! messages (`cannot open <path>: <strerror>`, `cannot read ...`). The
//! tests compare both loaders on such files.

use std::ffi::{CStr, c_char, c_int};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;

use crate::lua::ffi;

/// A cursor with C's `getc` semantics: `None` at the end, which it does
/// not pass.
struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn getc(&mut self) -> Option<u8> {
        let c = self.data.get(self.at).copied();
        if c.is_some() {
            self.at += 1;
        }
        c
    }

    /// lauxlib's `skipBOM`: a partial BOM loses the bytes read after its
    /// first one, as there.
    fn skip_bom(&mut self) -> Option<u8> {
        let c = self.getc();
        if c == Some(0xEF) && self.getc() == Some(0xBB) && self.getc() == Some(0xBF) {
            self.getc()
        } else {
            c
        }
    }

    /// lauxlib's `skipcomment`: the first character after a BOM and a
    /// first `#` line, and whether there was such a line.
    fn skip_comment(&mut self) -> (Option<u8>, bool) {
        let c = self.skip_bom();
        if c != Some(b'#') {
            return (c, false);
        }
        loop {
            match self.getc() {
                None | Some(b'\n') => break,
                Some(_) => {}
            }
        }
        (self.getc(), true)
    }
}

/// The bytes Lua's file reader hands to `lua_load` for file `data`.
fn chunk_of(data: &[u8]) -> Vec<u8> {
    let mut cur = Cursor { data, at: 0 };
    let mut chunk = Vec::with_capacity(data.len() + 1);
    let (mut c, comment) = cur.skip_comment();
    if comment {
        chunk.push(b'\n');
    }
    if c == Some(ffi::LUA_SIGNATURE[0]) {
        // A binary chunk: read again from the start, without the newline.
        chunk.clear();
        cur = Cursor { data, at: 0 };
        c = cur.skip_comment().0;
    }
    chunk.extend(c);
    chunk.extend_from_slice(&data[cur.at..]);
    chunk
}

/// Pushes `cannot <what> <path>[: <strerror>]`; returns `LUA_ERRFILE`.
///
/// # Safety
/// `l` must be a valid state with a free stack slot.
unsafe fn error(l: *mut ffi::lua_State, what: &str, path: &CStr, err: Option<i32>) -> c_int {
    let mut msg = format!("cannot {what} ").into_bytes();
    msg.extend_from_slice(path.to_bytes());
    if let Some(e) = err.filter(|&e| e != 0) {
        msg.extend_from_slice(b": ");
        // SAFETY: strerror returns a NUL-terminated string, static in
        // glibc for every value (an "Unknown error" text for others).
        msg.extend_from_slice(unsafe { CStr::from_ptr(libc::strerror(e)) }.to_bytes());
    }
    // SAFETY: as promised by the caller.
    unsafe { ffi::lua_pushlstring(l, msg.as_ptr().cast(), msg.len()) };
    ffi::LUA_ERRFILE
}

/// `luaL_loadfilex(l, path, mode)` with a close-on-exec descriptor: pushes
/// the compiled chunk or an error message and returns the status.
///
/// # Safety
/// `l` must be a valid state with a free stack slot; `mode` null or a
/// NUL-terminated string. Memory errors of Lua are raised, as by
/// `luaL_loadfilex`.
pub unsafe fn load(l: *mut ffi::lua_State, path: &CStr, mode: *const c_char) -> c_int {
    let os_path = std::ffi::OsStr::from_bytes(path.to_bytes());
    let mut file = match std::fs::File::open(os_path) {
        Ok(file) => file,
        // SAFETY: as promised by the caller.
        Err(e) => return unsafe { error(l, "open", path, e.raw_os_error()) },
    };
    let mut data = Vec::new();
    if let Err(e) = file.read_to_end(&mut data) {
        // NOTE: Lua 5.5 clears `errno` before it reports a read error.
        let err = if cfg!(feature = "lua55") {
            None
        } else {
            e.raw_os_error()
        };
        // SAFETY: as promised by the caller.
        return unsafe { error(l, "read", path, err) };
    }
    drop(file);
    let chunk = chunk_of(&data);
    let mut name = b"@".to_vec();
    name.extend_from_slice(path.to_bytes());
    name.push(0);
    // SAFETY: `chunk` and `name` outlive the call, `name` ends with its
    // only NUL (it comes from a CStr); `mode` as promised by the caller.
    unsafe {
        ffi::luaL_loadbufferx(
            l,
            chunk.as_ptr().cast(),
            chunk.len(),
            name.as_ptr().cast(),
            mode,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use super::*;
    use crate::lua::{LUA_OK, Lua};

    /// Status and message or dump of the chunk at the top, popped.
    unsafe fn outcome(l: *mut ffi::lua_State, status: c_int) -> (c_int, Vec<u8>) {
        // SAFETY: the value at the top is the load's result.
        unsafe {
            let bytes = if status == LUA_OK {
                unsafe extern "C-unwind" fn writer(
                    _: *mut ffi::lua_State,
                    p: *const std::ffi::c_void,
                    n: usize,
                    ud: *mut std::ffi::c_void,
                ) -> c_int {
                    if p.is_null() {
                        return 0; // Lua 5.5's end of the dump
                    }
                    // SAFETY: `ud` is the Vec below, `p` has `n` bytes.
                    unsafe {
                        let out = &mut *(ud as *mut Vec<u8>);
                        out.extend_from_slice(std::slice::from_raw_parts(p.cast::<u8>(), n));
                    }
                    0
                }
                let mut out = Vec::new();
                ffi::lua_dump(l, writer, (&mut out as *mut Vec<u8>).cast(), 0);
                out
            } else {
                Lua::from_raw(l).to_bytes(-1).unwrap_or(b"?").to_vec()
            };
            ffi::lua_settop(l, 0);
            (status, bytes)
        }
    }

    #[test]
    fn loads_as_lua_does() {
        let dir = std::env::temp_dir().join(format!("coutil-loadfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // SAFETY: a new state used by this test only, closed at the end.
        unsafe {
            let l = ffi::luaL_newstate();
            ffi::luaL_openlibs(l);
            let status =
                ffi::luaL_loadstring(l, c"return string.dump(function() return 6 end)".as_ptr());
            assert_eq!(status, LUA_OK);
            ffi::lua_call(l, 0, 1);
            let binary = Lua::from_raw(l).to_bytes(-1).unwrap().to_vec();
            ffi::lua_settop(l, 0);
            let mut contents: Vec<Vec<u8>> = [
                &b"return 1"[..],
                b"#!/usr/bin/lua\nreturn 2",
                b"\xEF\xBB\xBFreturn 3",
                b"\xEF\xBB\xBF#c\nreturn 4",
                b"\xEF\xBBx return 5",
                b"\xEFreturn 5",
                b"#only a comment",
                b"#",
                b"",
                b"\n\nx = = 1",
                b"#c\nx = = 1",
            ]
            .iter()
            .map(|c| c.to_vec())
            .collect();
            contents.push(binary.clone());
            contents.push([&b"#!/x\n"[..], &binary].concat());
            contents.push([&b"\xEF\xBB\xBF#!/x\n"[..], &binary].concat());
            let mut paths = Vec::new();
            for (i, data) in contents.iter().enumerate() {
                let path = dir.join(format!("chunk{i}.lua"));
                std::fs::write(&path, data).unwrap();
                paths.push(path);
            }
            paths.push(dir.join("missing.lua"));
            paths.push(dir.clone());
            for path in &paths {
                let cpath = CString::new(path.as_os_str().as_bytes()).unwrap();
                for mode in [None, Some(c"t"), Some(c"b")] {
                    let mode = mode.map_or(std::ptr::null(), |m| m.as_ptr());
                    let theirs = ffi::luaL_loadfilex(l, cpath.as_ptr(), mode);
                    let theirs = outcome(l, theirs);
                    let ours = load(l, &cpath, mode);
                    let ours = outcome(l, ours);
                    assert_eq!(
                        (ours.0, String::from_utf8_lossy(&ours.1)),
                        (theirs.0, String::from_utf8_lossy(&theirs.1)),
                        "{}",
                        path.display()
                    );
                }
            }
            ffi::lua_close(l);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
