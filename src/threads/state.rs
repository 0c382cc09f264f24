//! Independent states (spec threads.md §1): fresh Lua states in which
//! state coroutines and pool tasks run a chunk.
//!
//! A new state has only `package` opened, without a `package` global but
//! with the global `require`; `package.preload` holds the standard
//! libraries, every `coutil` module, and the creator's preload loaders
//! ([`Origin`]). Warnings start off (`lua::new_state`, in Lua 5.4 and
//! 5.5; turned on by `@on`). The chunk ([`Code`], compiled by the creator)
//! is loaded on a new thread of the state, which runs it as a coroutine.
//!
//! A pool task's state is *watched* while it runs: a call hook removes
//! itself at the first call made by the chunk. A chunk that returned
//! without calling anything and left the globals as they were cannot have
//! changed anything else a later chunk could see (no library is loaded,
//! no metatable set, no finalizer pending), so the state can run another
//! chunk of the same origin as if it were new ([`IndState::pristine`]).
//!
//! An [`IndState`] is owned by exactly one Rust value at a time and only
//! used by the thread that holds it; it closes the state when dropped.

use std::ffi::{CStr, c_int, c_void};
use std::sync::Arc;

use super::origin::{self, Code, Loader, Origin, Source};
use super::transfer::{self, Value};
use crate::lua::class::key;
use crate::lua::{CFunction, LUA_OK, LUA_REGISTRYINDEX, LUA_TFUNCTION, LUA_TSTRING, Lua, ffi};

/// An independent state and the thread that runs its chunk.
pub struct IndState {
    main: *mut ffi::lua_State,
    co: *mut ffi::lua_State,
    origin: Origin,
    /// The global `require` of a new state.
    require: *const c_void,
    /// A task state keeps its last chunk loaded (in its registry) to run
    /// it again.
    loaded: Option<Arc<Code>>,
    task: bool,
}

// SAFETY: a Lua state has no affinity to the OS thread that made it; an
// IndState is the only handle to its state (nothing else keeps the
// pointers) and is moved between threads as a whole, so at most one thread
// uses the state at any time. Its Origin is Send (plain data in Arcs).
unsafe impl Send for IndState {}

impl Drop for IndState {
    fn drop(&mut self) {
        // SAFETY: the state is ours alone (see above) and closed once.
        unsafe { ffi::lua_close(self.main) }
    }
}

struct Setup<'a> {
    origin: &'a Origin,
    task: TaskLink,
    co: *mut ffi::lua_State,
    require: *const c_void,
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
static CHUNK_KEY: u8 = 0;

const STANDARD: &[(&CStr, CFunction)] = &[
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

/// Makes an independent state of `creator` with `source` loaded, or
/// returns the load error message.
pub fn create(creator: Lua, source: Source) -> Result<IndState, Vec<u8>> {
    let (code, origin) = origin::prepare(creator, source)?;
    let mut state = IndState::new(&origin, TaskLink::NONE)?;
    state.load(&code)?;
    Ok(state)
}

const NO_MEMORY: &[u8] = b"not enough memory";

impl IndState {
    /// A new state inheriting `origin`, with `task` stored for
    /// [`task_pool`] and [`task_park`]; its chunk is loaded by [`load`].
    ///
    /// [`load`]: IndState::load
    pub fn new(origin: &Origin, task: TaskLink) -> Result<IndState, Vec<u8>> {
        crate::pin_library();
        let mut setup = Setup {
            origin,
            task,
            co: std::ptr::null_mut(),
            require: std::ptr::null(),
        };
        // SAFETY: a new state used only here; `init` runs protected and
        // only reads `setup` through the light userdata, which outlives the
        // call.
        unsafe {
            let l = crate::lua::new_state();
            if l.is_null() {
                return Err(NO_MEMORY.to_vec());
            }
            let mut state = IndState {
                main: l,
                co: std::ptr::null_mut(),
                origin: origin.clone(),
                require: std::ptr::null(),
                loaded: None,
                task: !task.pool.is_null(),
            };
            ffi::lua_pushcfunction(l, init);
            ffi::lua_pushlightuserdata(l, &mut setup as *mut Setup as *mut c_void);
            if ffi::lua_pcall(l, 1, 0, 0) != LUA_OK {
                return Err(NO_MEMORY.to_vec());
            }
            state.co = setup.co;
            state.require = setup.require;
            Ok(state)
        }
    }

    /// Pushes `args` on the thread that runs the chunk and resumes it:
    /// the status and the number of results, or `None` if the values do
    /// not fit on its stack.
    pub fn resume(&self, args: Vec<Value>) -> Option<(c_int, c_int)> {
        let co = self.co();
        let nargs = args.len() as c_int;
        transfer::push(co, args).ok()?;
        let mut nres = 0;
        // SAFETY: the holder of the IndState is the only user of the
        // state; the thread holds the chunk (or its yield) and the values.
        let status = unsafe { ffi::lua_resume(co.raw(), std::ptr::null_mut(), nargs, &mut nres) };
        Some((status, nres))
    }

    /// The thread that runs the chunk.
    pub fn co(&self) -> Lua {
        // SAFETY: the thread is anchored in the registry of the live state.
        unsafe { Lua::from_raw(self.co) }
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Puts the chunk on the (empty) stack of the thread that runs it.
    pub fn load(&mut self, code: &Arc<Code>) -> Result<(), Vec<u8>> {
        let bytes = code.bytes();
        // SAFETY: the thread is ours and has room for two values (its
        // stack is empty); a binary load runs protected and pushes one
        // value; CHUNK_KEY exists in the registry, so setting it does not
        // allocate.
        unsafe {
            if self.loaded.as_ref().is_some_and(|c| Arc::ptr_eq(c, code)) {
                ffi::lua_rawgetp(self.co, LUA_REGISTRYINDEX, key(&CHUNK_KEY));
                return Ok(());
            }
            let status = ffi::luaL_loadbufferx(
                self.co,
                bytes.as_ptr().cast(),
                bytes.len(),
                c"=?".as_ptr(),
                c"b".as_ptr(),
            );
            if status != LUA_OK {
                ffi::lua_settop(self.co, 0);
                return Err(NO_MEMORY.to_vec());
            }
            if self.task {
                ffi::lua_pushvalue(self.co, -1);
                ffi::lua_rawsetp(self.co, LUA_REGISTRYINDEX, key(&CHUNK_KEY));
                self.loaded = Some(code.clone());
            }
        }
        Ok(())
    }

    /// Stores the parking slot of the task about to run in this state.
    pub fn set_park(&self, park: *const c_void) {
        // SAFETY: registry write with a private key; a state whose task
        // link was set at creation already has this key, so no allocation.
        unsafe {
            ffi::lua_pushlightuserdata(self.main, park as *mut c_void);
            ffi::lua_rawsetp(self.main, LUA_REGISTRYINDEX, key(&PARK_KEY));
        }
    }

    /// Watches the chunk about to run for its first call.
    pub fn watch(&self) {
        // SAFETY: sets a hook on our own thread.
        unsafe { ffi::lua_sethook(self.co, Some(first_call), ffi::LUA_MASKCALL, 0) }
    }

    /// After the watched chunk returned: can the state run another chunk
    /// as if new? Then it is made ready for [`load`](IndState::load). The
    /// kept chunk must also be as loaded: its first upvalue the globals,
    /// the others nil.
    pub fn pristine(&self) -> bool {
        let l = self.main;
        // SAFETY: reads our own state; lua_next on the raw globals table
        // does not raise; the main thread's stack is empty between runs
        // and always has room for 3 values.
        unsafe {
            let ours = ffi::lua_gethook(self.co)
                .is_some_and(|h| std::ptr::fn_addr_eq(h, first_call as ffi::lua_Hook));
            if !ours {
                return false;
            }
            ffi::lua_sethook(self.co, None, 0, 0);
            ffi::lua_rawgeti(l, LUA_REGISTRYINDEX, ffi::LUA_RIDX_GLOBALS);
            ffi::lua_pushnil(l);
            let only_require = ffi::lua_next(l, -2) != 0
                && ffi::lua_type(l, -2) == LUA_TSTRING
                && Lua::from_raw(l).to_bytes(-2) == Some(b"require")
                && ffi::lua_topointer(l, -1) == self.require
                && {
                    ffi::lua_pop(l, 1);
                    ffi::lua_next(l, -2) == 0
                }
                && kept_chunk_fresh(l);
            ffi::lua_settop(l, 0);
            ffi::lua_settop(self.co, 0);
            only_require
        }
    }
}

/// Is the chunk kept in `l`'s registry as loaded, its first upvalue the
/// globals table (at stack index 1), the others nil?
///
/// # Safety
/// `l` is the main thread of an independent state, with the globals at 1
/// and room for 2 more values.
unsafe fn kept_chunk_fresh(l: *mut ffi::lua_State) -> bool {
    // SAFETY: reads of the registry and of the function's upvalues.
    unsafe {
        ffi::lua_rawgetp(l, LUA_REGISTRYINDEX, key(&CHUNK_KEY));
        if ffi::lua_type(l, -1) != LUA_TFUNCTION {
            return true;
        }
        let chunk = ffi::lua_gettop(l);
        for n in 1.. {
            if ffi::lua_getupvalue(l, chunk, n).is_null() {
                break;
            }
            let fresh = if n == 1 {
                ffi::lua_rawequal(l, -1, 1) != 0
            } else {
                ffi::lua_isnil(l, -1) != 0
            };
            ffi::lua_pop(l, 1);
            if !fresh {
                return false;
            }
        }
        true
    }
}

/// The call hook of [`IndState::watch`]: removes itself at the first call
/// other than the chunk's own start.
unsafe extern "C-unwind" fn first_call(l: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) {
    // SAFETY: Lua calls the hook with a valid state and activation record;
    // lua_getstack only fills `caller`.
    unsafe {
        let mut caller = std::mem::MaybeUninit::<ffi::lua_Debug>::zeroed();
        if (*ar).event == ffi::LUA_HOOKTAILCALL || ffi::lua_getstack(l, 1, caller.as_mut_ptr()) != 0
        {
            ffi::lua_sethook(l, None, 0, 0);
        }
    }
}

fn registry_pointer(lua: Lua, k: &'static u8) -> *const c_void {
    // SAFETY: registry read with a private key.
    unsafe {
        ffi::lua_rawgetp(lua.raw(), LUA_REGISTRYINDEX, key(k));
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

unsafe extern "C-unwind" fn init(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by lua_pcall in `IndState::new` with the Setup
    // pointer; every value below is plain data or borrowed from `setup`,
    // so a memory error longjmp skips no destructor.
    unsafe {
        let setup = &mut *(ffi::lua_touserdata(l, 1) as *mut Setup);
        let loaders = &setup.origin.preload.loaders;
        // The preload table made at its final size, before `package`
        // (which takes the one in the registry).
        let size = STANDARD.len() + crate::MODULES.len() + loaders.len();
        ffi::lua_createtable(l, 0, size as c_int);
        ffi::lua_setfield(l, LUA_REGISTRYINDEX, ffi::LUA_PRELOAD_TABLE);
        ffi::luaL_requiref(l, c"package".as_ptr(), ffi::luaopen_package, 0);
        ffi::lua_settop(l, 0);
        ffi::luaL_getsubtable(l, LUA_REGISTRYINDEX, ffi::LUA_PRELOAD_TABLE);
        for (name, f) in STANDARD.iter().chain(crate::MODULES) {
            ffi::lua_pushcfunction(l, *f);
            ffi::lua_setfield(l, 1, name.as_ptr());
        }
        for (name, loader) in loaders {
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
                    if status != LUA_OK {
                        ffi::lua_settop(l, 1);
                        continue;
                    }
                }
            }
            ffi::lua_rawset(l, 1);
        }
        ffi::lua_settop(l, 0);
        super::set_domain(Lua::from_raw(l), setup.origin.domain);
        ffi::lua_getglobal(l, c"require".as_ptr());
        setup.require = ffi::lua_topointer(l, -1);
        ffi::lua_settop(l, 0);
        let co = ffi::lua_newthread(l);
        ffi::luaL_ref(l, LUA_REGISTRYINDEX);
        let link = setup.task;
        for (k, p) in [
            (&POOL_KEY, link.pool),
            (&PARK_KEY, link.park),
            (&BODY_KEY, co as *const c_void),
        ] {
            if !p.is_null() {
                ffi::lua_pushlightuserdata(l, p as *mut c_void);
                ffi::lua_rawsetp(l, LUA_REGISTRYINDEX, key(k));
            }
        }
        ffi::lua_pushboolean(l, 0);
        ffi::lua_rawsetp(l, LUA_REGISTRYINDEX, key(&CHUNK_KEY));
        setup.co = co;
    }
    0
}
