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

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use super::origin::{self, Code, Loader, Origin, Source};
use super::transfer::{self, Value};
use crate::lua::class::key;
use crate::lua::states::{OPEN_PACKAGE, OwnedState, STANDARD_LIBS};
use crate::lua::{
    LUA_OK, LUA_REGISTRYINDEX, LUA_TFUNCTION, LUA_TNIL, LUA_TSTRING, Lua, PRELOAD_TABLE, Ret,
};

/// An independent state and the thread that runs its chunk.
pub struct IndState {
    /// Closes the state when dropped.
    state: OwnedState,
    /// Anchored in the state's registry.
    co: Lua,
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
// pointers: the `Lua` handles taken from it are used while it is held)
// and is moved between threads as a whole, so at most one thread uses the
// state at any time. Its Origin is Send (plain data in Arcs).
unsafe impl Send for IndState {}

/// What `init` gets to set up a new state.
struct Setup<'a> {
    origin: &'a Origin,
    task: TaskLink,
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
        let state = OwnedState::new().ok_or_else(|| NO_MEMORY.to_vec())?;
        let main = state.lua();
        // A new state's main thread has room for `init`'s call and results.
        let setup = Setup { origin, task };
        if main.pcall_fn(init, &setup, 2) != LUA_OK {
            return Err(NO_MEMORY.to_vec());
        }
        let Some(co) = main.to_thread(-2) else {
            return Err(NO_MEMORY.to_vec()); // not reached: `init` returns it
        };
        let require = main.to_pointer(-1);
        main.set_top(0);
        Ok(IndState {
            state,
            co,
            origin: origin.clone(),
            require,
            loaded: None,
            task: !task.pool.is_null(),
        })
    }

    /// Pushes `args` on the thread that runs the chunk and resumes it:
    /// the status and the number of results, or `None` if the values do
    /// not fit on its stack.
    pub fn resume(&self, args: Vec<Value>) -> Option<(c_int, c_int)> {
        let nargs = args.len() as c_int;
        transfer::push(self.co, args).ok()?;
        // The holder of the IndState is the only user of the state; the
        // thread holds the chunk (or its yield) and the values.
        Some(self.co.resume_from_host(nargs))
    }

    /// The thread that runs the chunk.
    pub fn co(&self) -> Lua {
        self.co
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Puts the chunk on the (empty) stack of the thread that runs it.
    pub fn load(&mut self, code: &Arc<Code>) -> Result<(), Vec<u8>> {
        // The thread is ours and has room for two values (its stack is
        // empty); a binary load runs protected and pushes one value;
        // CHUNK_KEY exists in the registry, so setting it does not
        // allocate.
        let co = self.co;
        if self.loaded.as_ref().is_some_and(|c| Arc::ptr_eq(c, code)) {
            co.raw_get_ptr(LUA_REGISTRYINDEX, key(&CHUNK_KEY));
            return Ok(());
        }
        if co.load(code.bytes(), c"=?", Some(c"b")) != LUA_OK {
            co.set_top(0);
            return Err(NO_MEMORY.to_vec());
        }
        if self.task {
            co.push_value(-1);
            co.raw_set_ptr(LUA_REGISTRYINDEX, key(&CHUNK_KEY));
            self.loaded = Some(code.clone());
        }
        Ok(())
    }

    /// Stores the parking slot of the task about to run in this state.
    pub fn set_park(&self, park: *const c_void) {
        // A state whose task link was set at creation already has this
        // key, so no allocation.
        let main = self.state.lua();
        main.push_light(park as *mut c_void);
        main.raw_set_ptr(LUA_REGISTRYINDEX, key(&PARK_KEY));
    }

    /// Watches the chunk about to run for its first call.
    pub fn watch(&self) {
        self.co.watch_first_call();
    }

    /// After the watched chunk returned: can the state run another chunk
    /// as if new? Then it is made ready for [`load`](IndState::load). The
    /// kept chunk must also be as loaded: its first upvalue the globals,
    /// the others nil.
    pub fn pristine(&self) -> bool {
        if !self.co.end_watch() {
            return false;
        }
        // Reads our own state; `next` on the raw globals table does not
        // raise; the main thread's stack is empty between runs and always
        // has room for 3 values.
        let main = self.state.lua();
        main.push_globals();
        main.push_nil();
        let only_require = main.next(-2)
            && main.type_of(-2) == LUA_TSTRING
            && main.to_bytes(-2) == Some(b"require")
            && main.to_pointer(-1) == self.require
            && {
                main.pop(1);
                !main.next(-2)
            }
            && kept_chunk_fresh(main);
        main.set_top(0);
        self.co.set_top(0);
        only_require
    }
}

/// Is the chunk kept in `main`'s registry as loaded, its first upvalue
/// the globals table (at stack index 1), the others nil? `main` is the
/// main thread of an independent state, with the globals at 1 and room
/// for 2 more values.
fn kept_chunk_fresh(main: Lua) -> bool {
    main.raw_get_ptr(LUA_REGISTRYINDEX, key(&CHUNK_KEY));
    if main.type_of(-1) != LUA_TFUNCTION {
        return true;
    }
    let chunk = main.top();
    for n in 1.. {
        if !main.get_upvalue(chunk, n) {
            break;
        }
        let fresh = if n == 1 {
            main.raw_equal(-1, 1)
        } else {
            main.type_of(-1) == LUA_TNIL
        };
        main.pop(1);
        if !fresh {
            return false;
        }
    }
    true
}

fn registry_pointer(lua: Lua, k: &'static u8) -> *const c_void {
    lua.raw_get_ptr(LUA_REGISTRYINDEX, key(k));
    let p = lua.to_userdata(-1);
    lua.pop(1);
    p
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

/// Sets up a new state, protected (see `IndState::new`); returns the
/// thread that will run the chunk and the global `require`. Every value
/// here is plain data or borrowed from `setup`, so a memory error's
/// longjmp skips no destructor.
fn init(lua: Lua, setup: &Setup) -> Ret {
    let loaders = &setup.origin.preload.loaders;
    // The preload table made at its final size, before `package` (which
    // takes the one in the registry).
    let size = STANDARD_LIBS.len() + crate::MODULES.len() + loaders.len();
    lua.new_table(0, size as c_int);
    lua.set_field(LUA_REGISTRYINDEX, PRELOAD_TABLE);
    lua.require_lib(c"package", OPEN_PACKAGE, false);
    lua.set_top(0);
    lua.get_subtable(LUA_REGISTRYINDEX, PRELOAD_TABLE);
    for (name, f) in STANDARD_LIBS.iter().chain(crate::MODULES) {
        lua.push_cfunction(*f);
        lua.set_field(1, name);
    }
    for (name, loader) in loaders {
        lua.push_bytes(name);
        match loader {
            Loader::Native(f) => lua.push_cfunction(*f),
            Loader::Dumped(code) => {
                if lua.load(code, c"=(preload)", Some(c"b")) != LUA_OK {
                    lua.set_top(1);
                    continue;
                }
            }
        }
        lua.raw_set(1);
    }
    lua.set_top(0);
    super::set_domain(lua, setup.origin.domain);
    // The thread, anchored in the registry, stays at 1 as a result.
    let co = lua.new_thread();
    lua.push_value(-1);
    lua.reference();
    let link = setup.task;
    for (k, p) in [
        (&POOL_KEY, link.pool),
        (&PARK_KEY, link.park),
        (&BODY_KEY, co.raw() as *const c_void),
    ] {
        if !p.is_null() {
            lua.push_light(p as *mut c_void);
            lua.raw_set_ptr(LUA_REGISTRYINDEX, key(k));
        }
    }
    lua.push_bool(false);
    lua.raw_set_ptr(LUA_REGISTRYINDEX, key(&CHUNK_KEY));
    // The other result: the global `require` (the globals have no
    // metatable yet).
    lua.push_globals();
    lua.get_field(-1, c"require");
    lua.remove(-2);
    Ok(2)
}
