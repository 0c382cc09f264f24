//! The `coutil` command's host: makes the state, opens the libraries,
//! adds the library's searcher and the system's module directories, and
//! runs the console chunk with the command line (`src/bin/coutil.rs` only
//! reads the command line and calls [`run`]).

use std::ffi::{CStr, CString, c_int};

use crate::lua::states::OwnedState;
use crate::lua::{Error, LUA_OK, LUA_REGISTRYINDEX, LUA_TBOOLEAN, LUA_TNUMBER, Lua, Ret, modules};

/// What the command runs with.
pub struct Command<'a> {
    /// The command line, `argv[0]` first.
    pub args: &'a [CString],
    /// `-E`: ignore `LUA_PATH`, `LUA_CPATH` and `LUA_INIT`.
    pub noenv: bool,
    /// Directories appended to a field of `package` (`path`, `cpath`),
    /// each a `;`-separated list of templates.
    pub paths: &'a [(&'static CStr, String)],
}

/// Runs the console chunk as the `coutil` command; returns the exit status
/// it asks for (a number, or 1 for `false`), or 1 after printing an error
/// the console did not handle itself.
pub fn run(command: &Command) -> i32 {
    // `pool:dofile(arg[-1])` and `coroutine.loadfile(arg[-1])` load the
    // command's chunk (the library itself knows no command).
    crate::threads::set_command_chunk(super::command_chunk);
    let Some(state) = OwnedState::new() else {
        eprintln!("coutil: cannot create state: not enough memory");
        return 1;
    };
    let lua = state.lua();
    // Everything that allocates runs protected; it leaves the message
    // handler, the console chunk and its argument (stack 1, 2, 3).
    let ok = lua.pcall_fn(setup, command, 3) == LUA_OK && lua.pcall_handled(1, 1, 1) == LUA_OK;
    if !ok {
        let text = lua.to_bytes(-1).map_or_else(
            || "(error object is not a string)".into(),
            String::from_utf8_lossy,
        );
        eprintln!("coutil: {text}");
        return 1;
    }
    // The console returns the exit status (true/false or a number).
    match lua.type_of(-1) {
        LUA_TNUMBER => lua.to_integer(-1).unwrap_or(1) as i32,
        LUA_TBOOLEAN if !lua.to_boolean(-1) => 1,
        _ => 0,
    }
}

fn setup(lua: Lua, command: &Command) -> Ret {
    if command.noenv {
        lua.push_bool(true);
        lua.set_field(LUA_REGISTRYINDEX, c"LUA_NOENV");
    }
    lua.open_libs();
    modules::add_searcher(lua, &crate::MODULES);
    for (field, extra) in command.paths {
        lua.push_globals();
        lua.get_field(-1, c"package");
        lua.get_field(-1, field);
        lua.push_bytes(b";");
        lua.push_bytes(extra.as_bytes());
        lua.concat(3);
        lua.set_field(-2, field);
        lua.pop(2);
    }
    lua.push_traceback_handler();
    if lua.load(super::CHUNK.as_bytes(), c"=coutil", Some(c"t")) != LUA_OK {
        return Err(Error::Value); // the message, on top
    }
    // One table argument, argv[0] at index 0: a command line cannot
    // produce a table, so the console knows it runs as the command rather
    // than as a chunk loaded with plain arguments.
    lua.new_table(command.args.len() as c_int, 1);
    for (i, a) in command.args.iter().enumerate() {
        lua.push_bytes(a.as_bytes());
        lua.raw_set_index(-2, i as i64);
    }
    Ok(3)
}
