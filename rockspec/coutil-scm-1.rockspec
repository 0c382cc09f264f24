-- Coutil from a checkout of its sources: in the checkout's top directory,
--   luarocks --lua-version 5.4 make --local rockspec/coutil-scm-1.rockspec
-- builds with cargo (the Rust toolchain must be installed) and installs
-- coutil.so for lua5.4 (stripped), memory.lua (`require "memory"` gives
-- `coutil.memory` from it) and the `coutil` command (stripped).
rockspec_format = "3.0"
package = "coutil"
version = "scm-1"
source = {
	-- `luarocks make` builds the checkout it runs in; this URL is not used.
	url = "git+file:///coutil",
}
description = {
	summary = "Multithreading and non-blocking OS access for Lua 5.4",
	detailed = [[
Coroutines that await timers, sockets, files, processes and signals
without blocking each other, system threads running independent Lua
states that talk through channels, and the `coutil` command (Lua with
the library built in). Written in Rust, a drop-in replacement for the
C library over libuv.]],
	license = "MIT",
}
dependencies = {
	"lua >= 5.4, < 5.5",
}
build = {
	type = "command",
	-- NOTE: `$(NAME)` is a LuaRocks variable here, not shell syntax.
	build_command = [[
command -v cargo >/dev/null 2>&1 || { echo "coutil: cargo not found: building Coutil needs the Rust toolchain (rustup, or the system's cargo package)" >&2; exit 1; }
cargo build --release --lib --no-default-features --features module --target-dir target/module &&
cargo build --release --bin coutil
]],
	install_command = [[
install -d "$(LIBDIR)" "$(LUADIR)" "$(BINDIR)" &&
install -m 644 target/module/release/libcoutil.so "$(LIBDIR)/coutil.so" &&
strip --strip-unneeded "$(LIBDIR)/coutil.so" &&
install -m 644 rockspec/memory.lua "$(LUADIR)/memory.lua" &&
install -m 755 target/release/coutil "$(BINDIR)/coutil" &&
strip "$(BINDIR)/coutil"
]],
}
