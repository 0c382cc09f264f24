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

use std::ffi::{CStr, c_int};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;

use crate::lua::{LUA_ERRFILE, LUA_SIGNATURE, Lua};

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
    if c == Some(LUA_SIGNATURE[0]) {
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
/// Needs a free stack slot.
fn error(lua: Lua, what: &str, path: &CStr, err: Option<i32>) -> c_int {
    let mut msg = format!("cannot {what} ").into_bytes();
    msg.extend_from_slice(path.to_bytes());
    if let Some(e) = err.filter(|&e| e != 0) {
        msg.extend_from_slice(b": ");
        msg.extend_from_slice(&crate::lua::fail::c_text(e));
    }
    lua.push_bytes(&msg);
    LUA_ERRFILE
}

/// `luaL_loadfilex(path, mode)` with a close-on-exec descriptor: pushes
/// the compiled chunk or an error message and returns the status. Needs
/// a free stack slot. Memory errors of Lua are raised, as by
/// `luaL_loadfilex`.
pub fn load(lua: Lua, path: &CStr, mode: Option<&CStr>) -> c_int {
    let os_path = std::ffi::OsStr::from_bytes(path.to_bytes());
    let mut file = match std::fs::File::open(os_path) {
        Ok(file) => file,
        Err(e) => return error(lua, "open", path, e.raw_os_error()),
    };
    let mut data = Vec::new();
    if let Err(e) = file.read_to_end(&mut data) {
        // NOTE: Lua 5.5 clears `errno` before it reports a read error.
        let err = if cfg!(feature = "lua55") {
            None
        } else {
            e.raw_os_error()
        };
        return error(lua, "read", path, err);
    }
    drop(file);
    let chunk = chunk_of(&data);
    // `@path`, with no NUL inside (it comes from a CStr).
    let name = crate::lua::c_string(&[b"@", path.to_bytes()].concat());
    lua.load(&chunk, &name, mode)
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use super::*;
    use crate::lua::{LUA_OK, TestState};

    /// Status and message or dump of the chunk at the top, popped.
    fn outcome(lua: Lua, status: c_int) -> (c_int, Vec<u8>) {
        let bytes = if status == LUA_OK {
            lua.dump(false)
        } else {
            lua.to_bytes(-1).unwrap_or(b"?").to_vec()
        };
        lua.set_top(0);
        (status, bytes)
    }

    #[test]
    fn loads_as_lua_does() {
        let dir = std::env::temp_dir().join(format!("coutil-loadfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let state = TestState::with_libs();
        let lua = state.lua();
        let code = b"return string.dump(function() return 6 end)";
        assert_eq!(lua.load(code, c"=test", Some(c"t")), LUA_OK);
        assert_eq!(lua.pcall(0, 1), LUA_OK);
        let binary = lua.to_bytes(-1).unwrap().to_vec();
        lua.set_top(0);
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
                let theirs = lua.load_file(Some(&cpath), mode);
                let theirs = outcome(lua, theirs);
                let ours = load(lua, &cpath, mode);
                let ours = outcome(lua, ours);
                assert_eq!(
                    (ours.0, String::from_utf8_lossy(&ours.1)),
                    (theirs.0, String::from_utf8_lossy(&theirs.1)),
                    "{}",
                    path.display()
                );
            }
        }
        drop(state);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
