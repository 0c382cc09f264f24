//! What an independent state takes from the state that creates it (spec
//! threads.md §1): the chunk, compiled by the creator so that load errors
//! are reported at once, and the creator's `package.preload` loaders.
//!
//! Both are plain Rust data ([`Code`], [`Origin`]) so that the state can be
//! built later on another thread (pool tasks are built by the worker that
//! runs them). Both are cached in the creator's registry: text chunks by
//! their bytes, name and mode (a pool commonly runs one chunk many times),
//! and the preload copy until the preload table changes. The check for a
//! change walks the table and compares every loader's name and function
//! by address; the cache keeps those names and functions alive, so an
//! address seen before cannot come back as another value.

use std::ffi::{CString, c_int};
use std::sync::Arc;

use super::matcher::Domain;
use crate::lua::class::{self, Class, Object};
use crate::lua::{
    CFunction, LUA_OK, LUA_REGISTRYINDEX, LUA_TFUNCTION, LUA_TSTRING, LUA_TTABLE, Lua,
    PRELOAD_TABLE,
};

/// A compiled main chunk: the `lua_dump` of the creator's load.
pub struct Code(Box<[u8]>);

impl Code {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Where the chunk comes from (names and modes end at their first NUL,
/// as Lua reads them).
pub enum Source<'a> {
    Text {
        chunk: &'a [u8],
        name: &'a [u8],
        mode: Option<&'a [u8]>,
    },
    /// A file (`None`: standard input), as `luaL_loadfilex`.
    File {
        path: Option<CString>,
        mode: Option<CString>,
    },
}

/// A loader copied from the creator's `package.preload`.
pub enum Loader {
    /// A C function: its pointer is valid in every state of the process.
    Native(CFunction),
    /// A Lua function, re-loaded from its dump.
    Dumped(Box<[u8]>),
}

/// The creator's string-keyed preload functions.
pub struct Preload {
    pub loaders: Vec<(Box<[u8]>, Loader)>,
}

/// What a new state inherits besides its chunk.
#[derive(Clone)]
pub struct Origin {
    pub preload: Arc<Preload>,
    /// Channel names are shared within a domain.
    pub domain: Domain,
}

impl Origin {
    /// Would a state made for `self` be the same as one made for `other`?
    pub fn same(&self, other: &Origin) -> bool {
        Arc::ptr_eq(&self.preload, &other.preload) && self.domain == other.domain
    }
}

/// Text chunks kept compiled per creator state.
const CHUNKS: usize = 8;

struct Compiled {
    chunk: Box<[u8]>,
    name: Box<[u8]>,
    mode: Option<Box<[u8]>>,
    code: Arc<Code>,
}

/// The caches of a creator state, in its registry.
struct Cache {
    /// Addresses of the names and functions of the preload copy, in
    /// table order.
    marks: Vec<(usize, usize)>,
    origin: Option<Origin>,
    /// The state's channel domain.
    domain: Option<Domain>,
    /// Most recently used first.
    chunks: Vec<Compiled>,
}

impl Object for Cache {
    const CLASS: &'static Class = &Class {
        name: c"coutil:origins",
        methods: &[],
        meta: &[],
    };

    crate::class_key!();
}

static CACHE_KEY: class::KeptKey<Cache> = class::KeptKey::new();
static ANCHOR_KEY: u8 = 0;

/// Runs `f` on the cache of `lua`'s state, made on first use.
fn with_cache<R>(lua: Lua, f: impl FnOnce(&mut Cache) -> R + Send) -> R {
    let make = || Cache {
        marks: Vec::new(),
        origin: None,
        domain: None,
        chunks: Vec::new(),
    };
    class::with_kept(lua, &CACHE_KEY, make, f)
}

/// The dump of the Lua function on top of `lua`'s stack.
fn dump(lua: Lua) -> Box<[u8]> {
    lua.dump(false).into_boxed_slice()
}

/// What a new state made now by `lua`'s state for `source` is made of:
/// the compiled chunk and the origin; or the load error message.
pub fn prepare(lua: Lua, source: Source) -> Result<(Arc<Code>, Origin), Vec<u8>> {
    if lua.check_stack(5).is_err() {
        return Err(b"not enough memory".to_vec());
    }
    Ok((compile(lua, source)?, origin(lua)))
}

/// Compiles `source` in `lua`'s state, or returns the load error message.
fn compile(lua: Lua, source: Source) -> Result<Arc<Code>, Vec<u8>> {
    // `pool:dofile(arg[-1], ...)` in the command: the console chunk.
    if let Source::File {
        path: Some(path),
        mode,
    } = &source
        && let Some(chunk) = super::command_chunk(path.as_bytes())
    {
        let name = [b"@", path.as_bytes()].concat();
        let mode = mode.as_ref().map(|m| m.as_bytes());
        return compile(
            lua,
            Source::Text {
                chunk,
                name: &name,
                mode,
            },
        );
    }
    if let Source::Text { chunk, name, mode } = &source {
        let hit = with_cache(lua, |cache| {
            let i = cache.chunks.iter().position(|c| {
                c.chunk[..] == chunk[..] && c.name[..] == name[..] && c.mode.as_deref() == *mode
            })?;
            cache.chunks[..=i].rotate_right(1);
            Some(cache.chunks[0].code.clone())
        });
        if let Some(code) = hit {
            return Ok(code);
        }
    }
    // The loads run protected and push one value.
    let status = match &source {
        Source::Text { chunk, name, mode } => lua.load(
            chunk,
            &crate::lua::c_string(name),
            mode.map(crate::lua::c_string).as_deref(),
        ),
        Source::File {
            path: Some(path),
            mode,
        } => super::loadfile::load(lua, path, mode.as_deref()),
        Source::File { path: None, mode } => lua.load_file(None, mode.as_deref()),
    };
    let result = if status == LUA_OK {
        Ok(Arc::new(Code(dump(lua))))
    } else {
        let msg = lua
            .to_bytes(-1)
            .unwrap_or(b"(error object is not a string)");
        Err(msg.to_vec())
    };
    lua.set_top(lua.top() - 1);
    if let (Ok(code), Source::Text { chunk, name, mode }) = (&result, source) {
        let compiled = Compiled {
            chunk: chunk.into(),
            name: name.into(),
            mode: mode.map(Into::into),
            code: code.clone(),
        };
        with_cache(lua, |cache| {
            cache.chunks.truncate(CHUNKS - 1);
            cache.chunks.insert(0, compiled);
        });
    }
    result
}

/// Calls `each(name, function)` for the string-keyed functions of the
/// table on top of `lua`'s stack, in table order; stops when it returns
/// false.
fn walk(lua: Lua, mut each: impl FnMut(c_int, c_int) -> bool) {
    // `next` with the raw keys it returns does not raise; the callback
    // gets the stack indices of the key and the value.
    lua.push_nil();
    while lua.next(-2) {
        if lua.type_of(-2) == LUA_TSTRING
            && lua.type_of(-1) == LUA_TFUNCTION
            && !each(lua.top() - 1, lua.top())
        {
            lua.pop(2);
            return;
        }
        lua.pop(1);
    }
}

fn address(lua: Lua, i: c_int) -> usize {
    lua.to_pointer(i) as usize
}

/// What a state made now by `lua`'s state inherits from it.
///
/// NOTE: the marks are compared out of the cache (taken, then put back:
/// the walk makes C API calls, which no borrow of the cache may span);
/// `walk` raises no error, so they are always put back.
fn origin(lua: Lua) -> Origin {
    let domain = match with_cache(lua, |cache| cache.domain) {
        Some(domain) => domain,
        None => {
            let domain = super::domain_of(lua);
            with_cache(lua, |cache| cache.domain = Some(domain));
            domain
        }
    };
    // Not raw, but the registry has no metatable.
    lua.get_field(LUA_REGISTRYINDEX, PRELOAD_TABLE);
    let is_table = lua.type_of(-1) == LUA_TTABLE;
    let (cached, marks) = with_cache(lua, |cache| {
        (cache.origin.clone(), std::mem::take(&mut cache.marks))
    });
    let mut same = false;
    if cached.is_some() {
        let mut seen = 0;
        same = is_table;
        if is_table {
            walk(lua, |k, v| {
                same = marks.get(seen) == Some(&(address(lua, k), address(lua, v)));
                seen += 1;
                same
            });
        }
        same = same && seen == marks.len();
    }
    with_cache(lua, |cache| cache.marks = marks);
    if let (true, Some(origin)) = (same, cached) {
        lua.set_top(lua.top() - 1);
        return origin;
    }
    // First a new table anchors every name and function of the copy
    // (stack: preload, anchor); a memory error there (the only error a
    // raw set into a new table raises) skips no Rust value.
    lua.new_table(0, 0);
    if is_table {
        lua.push_nil();
        while lua.next(-3) {
            lua.push_value(-2);
            lua.insert(-2);
            lua.raw_set(-4);
        }
    }
    // Then the marks in the preload table's order, and the copy, without
    // any allocation in Lua. The preload table again (stack space checked
    // in `prepare`):
    let mut marks = Vec::new();
    lua.push_value(-2);
    if is_table {
        walk(lua, |k, v| {
            marks.push((address(lua, k), address(lua, v)));
            true
        });
    }
    lua.set_top(lua.top() - 1);
    let mut loaders = Vec::new();
    walk(lua, |k, v| {
        // The value at `v` is a Lua or C function; the dump of a Lua
        // function does not allocate in Lua.
        let loader = match lua.to_cfunction(v) {
            // A C closure with upvalues cannot work without them: skipped.
            Some(_) if lua.get_upvalue(v, 1) => {
                lua.pop(1);
                None
            }
            Some(f) if lua.is_cfunction(v) => Some(Loader::Native(f)),
            _ => {
                lua.push_value(v);
                let code = dump(lua);
                lua.pop(1);
                Some(Loader::Dumped(code))
            }
        };
        if let Some(loader) = loader {
            loaders.push((lua.to_bytes(k).unwrap_or_default().into(), loader));
        }
        true
    });
    // The anchor replaces the previous one (stack: preload, anchor).
    lua.raw_set_ptr(LUA_REGISTRYINDEX, class::key(&ANCHOR_KEY));
    lua.pop(1);
    let origin = Origin {
        preload: Arc::new(Preload { loaders }),
        domain,
    };
    let kept = origin.clone();
    with_cache(lua, |cache| {
        cache.marks = marks;
        cache.origin = Some(kept);
    });
    origin
}
