//! Independent states (spec threads.md §1): fresh Lua states in which
//! state coroutines and pool tasks run a chunk.
//!
//! A new state has only `package` opened, without a `package` global but
//! with the global `require`; `package.preload` holds the standard
//! libraries, every `coutil` module, and a copy of the creator's preload
//! loaders (C functions shared: a C function pointer is valid in every
//! state of the process; Lua functions re-loaded from their `lua_dump`).
//! Warnings start off (`luaL_newstate`'s handler, turned on by `@on`).
//! The chunk is loaded on a new thread of the state, which runs it as a
//! coroutine.
//!
//! An [`IndState`] is owned by exactly one Rust value at a time and only
//! used by the thread that holds it; it closes the state when dropped.

use std::ffi::{CStr, CString, c_int, c_void};

use crate::lua::{Lua, ffi};

/// An independent state and the thread that runs its chunk.
pub struct IndState {
    main: *mut ffi::lua_State,
    co: *mut ffi::lua_State,
}

// SAFETY: a Lua state has no affinity to the OS thread that made it; an
// IndState is the only handle to its state (nothing else keeps the
// pointers) and is moved between threads as a whole, so at most one thread
// uses the state at any time.
unsafe impl Send for IndState {}

impl IndState {
    /// The thread that runs the chunk.
    pub fn co(&self) -> Lua {
        // SAFETY: the thread is anchored in the registry of the live state.
        unsafe { Lua::from_raw(self.co) }
    }
}

impl Drop for IndState {
    fn drop(&mut self) {
        // SAFETY: the state is ours alone (see above) and closed once.
        unsafe { ffi::lua_close(self.main) }
    }
}

/// Where the chunk comes from.
pub enum Source<'a> {
    Text {
        chunk: &'a [u8],
        name: CString,
        mode: Option<CString>,
    },
    /// A file (`None`: standard input), as `luaL_loadfilex`.
    File {
        path: Option<CString>,
        mode: Option<CString>,
    },
}

/// A loader copied from the creator's `package.preload`.
enum Loader {
    Native(ffi::lua_CFunction),
    Dumped(Vec<u8>),
}

struct Setup<'a> {
    loaders: Vec<(Vec<u8>, Loader)>,
    domain: u64,
    task: TaskLink,
    source: Source<'a>,
    co: *mut ffi::lua_State,
    error: Option<Vec<u8>>,
}

/// What a task state knows of its task: raw pointers to its pool and its
/// parking slot, both kept alive by the task as long as its state lives.
#[derive(Clone, Copy)]
pub struct TaskLink {
    pub pool: *const c_void,
    pub park: *const c_void,
}

impl TaskLink {
    /// Not a task (state coroutines).
    pub const NONE: TaskLink = TaskLink {
        pool: std::ptr::null(),
        park: std::ptr::null(),
    };
}

static POOL_KEY: u8 = 0;
static PARK_KEY: u8 = 0;
static BODY_KEY: u8 = 0;

const STANDARD: &[(&CStr, ffi::lua_CFunction)] = &[
    (c"_G", ffi::luaopen_base),
    (c"coroutine", ffi::luaopen_coroutine),
    (c"table", ffi::luaopen_table),
    (c"io", ffi::luaopen_io),
    (c"os", ffi::luaopen_os),
    (c"string", ffi::luaopen_string),
    (c"math", ffi::luaopen_math),
    (c"utf8", ffi::luaopen_utf8),
    (c"debug", ffi::luaopen_debug),
];

/// Makes an independent state of `creator` with `source` loaded. `task`
/// is stored for [`task_pool`] and [`task_park`]. A load error returns its
/// message.
pub fn create(creator: Lua, source: Source, task: TaskLink) -> Result<IndState, Vec<u8>> {
    crate::pin_library();
    let mut setup = Setup {
        loaders: loaders_of(creator),
        domain: super::domain_of(creator),
        task,
        source,
        co: std::ptr::null_mut(),
        error: None,
    };
    // SAFETY: a new state used only here; `init` runs protected and only
    // reads `setup` through the light userdata, which outlives the call.
    unsafe {
        let l = ffi::luaL_newstate();
        if l.is_null() {
            return Err(b"not enough memory".to_vec());
        }
        let mut state = IndState {
            main: l,
            co: std::ptr::null_mut(),
        };
        ffi::lua_pushcfunction(l, init);
        ffi::lua_pushlightuserdata(l, &mut setup as *mut Setup as *mut c_void);
        if ffi::lua_pcall(l, 1, 0, 0) != ffi::LUA_OK {
            return Err(b"not enough memory".to_vec());
        }
        if let Some(e) = setup.error {
            return Err(e);
        }
        state.co = setup.co;
        Ok(state)
    }
}

fn registry_pointer(lua: Lua, key: &'static u8) -> *const c_void {
    // SAFETY: registry read with a private key.
    unsafe {
        ffi::lua_rawgetp(
            lua.raw(),
            ffi::LUA_REGISTRYINDEX,
            key as *const u8 as *const c_void,
        );
        let p = ffi::lua_touserdata(lua.raw(), -1);
        ffi::lua_pop(lua.raw(), 1);
        p
    }
}

/// The pool of the task whose state is `lua`'s, or null.
pub fn task_pool(lua: Lua) -> *const c_void {
    registry_pointer(lua, &POOL_KEY)
}

/// The parking slot of the task whose state is `lua`'s, or null.
pub fn task_park(lua: Lua) -> *const c_void {
    registry_pointer(lua, &PARK_KEY)
}

/// Is `lua` the thread running the chunk of an independent state?
pub fn is_body(lua: Lua) -> bool {
    registry_pointer(lua, &BODY_KEY) == lua.raw() as *const c_void
}

unsafe extern "C-unwind" fn writer(
    _l: *mut ffi::lua_State,
    p: *const c_void,
    size: usize,
    ud: *mut c_void,
) -> c_int {
    // SAFETY: `ud` is the Vec given to lua_dump below; `p` points to
    // `size` bytes.
    unsafe {
        let buf = &mut *(ud as *mut Vec<u8>);
        buf.extend_from_slice(std::slice::from_raw_parts(p as *const u8, size));
    }
    0
}

/// The string-keyed function entries of `creator`'s `package.preload`.
fn loaders_of(creator: Lua) -> Vec<(Vec<u8>, Loader)> {
    let l = creator.raw();
    let mut loaders = Vec::new();
    if creator.check_stack(4).is_err() {
        return loaders;
    }
    // SAFETY: raw reads of the registry's preload table (lua_getfield on
    // the registry and lua_next with raw keys do not raise); lua_dump only
    // calls `writer`, which appends to a Vec of ours.
    unsafe {
        if ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_PRELOAD_TABLE) == ffi::LUA_TTABLE {
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, -2) != 0 {
                if ffi::lua_type(l, -2) == ffi::LUA_TSTRING
                    && ffi::lua_type(l, -1) == ffi::LUA_TFUNCTION
                {
                    let name = creator.to_bytes(-2).unwrap_or_default().to_vec();
                    if ffi::lua_iscfunction(l, -1) != 0 {
                        if let Some(f) = ffi::lua_tocfunction(l, -1) {
                            loaders.push((name, Loader::Native(f)));
                        }
                    } else {
                        let mut code = Vec::new();
                        let data = &mut code as *mut Vec<u8> as *mut c_void;
                        if ffi::lua_dump(l, writer, data, 0) == 0 {
                            loaders.push((name, Loader::Dumped(code)));
                        }
                    }
                }
                ffi::lua_pop(l, 1);
            }
        }
        ffi::lua_pop(l, 1);
    }
    loaders
}

unsafe extern "C-unwind" fn init(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by lua_pcall in `create` with the Setup pointer; every
    // value below is plain data or borrowed from `setup`, so a memory error
    // longjmp skips no destructor.
    unsafe {
        let setup = &mut *(ffi::lua_touserdata(l, 1) as *mut Setup);
        ffi::luaL_requiref(l, c"package".as_ptr(), ffi::luaopen_package, 0);
        ffi::lua_settop(l, 0);
        ffi::luaL_getsubtable(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_PRELOAD_TABLE);
        for (name, f) in STANDARD.iter().chain(crate::MODULES) {
            ffi::lua_pushcfunction(l, *f);
            ffi::lua_setfield(l, 1, name.as_ptr());
        }
        for (name, loader) in &setup.loaders {
            ffi::lua_pushlstring(l, name.as_ptr().cast(), name.len());
            match loader {
                Loader::Native(f) => ffi::lua_pushcfunction(l, *f),
                Loader::Dumped(code) => {
                    let status = ffi::luaL_loadbufferx(
                        l,
                        code.as_ptr().cast(),
                        code.len(),
                        c"=(preload)".as_ptr(),
                        c"b".as_ptr(),
                    );
                    if status != ffi::LUA_OK {
                        ffi::lua_settop(l, 1);
                        continue;
                    }
                }
            }
            ffi::lua_rawset(l, 1);
        }
        ffi::lua_settop(l, 0);
        super::set_domain(Lua::from_raw(l), setup.domain);
        let co = ffi::lua_newthread(l);
        ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
        let link = setup.task;
        for (key, p) in [
            (&POOL_KEY, link.pool),
            (&PARK_KEY, link.park),
            (&BODY_KEY, co as *const c_void),
        ] {
            if !p.is_null() {
                ffi::lua_pushlightuserdata(l, p as *mut c_void);
                ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, key as *const u8 as *const c_void);
            }
        }
        let status = match &setup.source {
            Source::Text { chunk, name, mode } => ffi::luaL_loadbufferx(
                l,
                chunk.as_ptr().cast(),
                chunk.len(),
                name.as_ptr(),
                mode.as_ref().map_or(std::ptr::null(), |m| m.as_ptr()),
            ),
            Source::File { path, mode } => ffi::luaL_loadfilex(
                l,
                path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
                mode.as_ref().map_or(std::ptr::null(), |m| m.as_ptr()),
            ),
        };
        if status == ffi::LUA_OK {
            ffi::lua_xmove(l, co, 1);
            setup.co = co;
        } else {
            let msg = Lua::from_raw(l)
                .to_bytes(-1)
                .unwrap_or(b"(error object is not a string)");
            setup.error = Some(msg.to_vec());
        }
    }
    0
}
