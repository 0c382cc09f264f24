-- seed-todo.md E3: threads.preloadclibs([enable]), native loaders stored in
-- package.preload so that independent states created afterwards inherit
-- them. The native module used is Debian's luv (lua-luv); the cases that
-- need it are skipped with a message when it is absent.
local T = require "testlib"
local system = require "coutil.system"
local channel = require "coutil.channel"
local stateco = require "coutil.coroutine"
local threads = require "coutil.threads"

-- The coutil command only adds Debian's module directories when LUA_CPATH
-- is not set, and the tests set it: look there too, in the directory of
-- the running Lua release only (a luv.so built for 5.4 cannot load in 5.5).
local release = _VERSION:match("%d+%.%d+")
for _, dir in ipairs { "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib" } do
	if package.searchpath("luv", package.cpath) then break end
	package.cpath = package.cpath .. ";" .. dir .. "/lua/" .. release .. "/?.so"
end
local LUV = package.searchpath("luv", package.cpath)
if not LUV then
	io.stderr:write("SKIPPED (luv cases): luv.so not found in package.cpath (apt-get install lua-luv)\n")
end

-- Resumes `co` with `...` from a new coroutine and runs the loop.
local function resume(co, ...)
	local res
	T.spawn(function(...) res = table.pack(system.resume(co, ...)) end, ...)
	system.run()
	return table.unpack(res, 1, res.n)
end

-- Runs `chunk` as a task of a new pool; returns the values it sends on the
-- channel "preload.result" (endpoint "out").
local function task(chunk, ...)
	local pool = threads.create(1)
	assert(pool:dostring(chunk, "=task", "t", ...))
	local res
	T.spawn(function() res = table.pack(system.awaitch(channel.create("preload.result"), "in")) end)
	system.run()
	pool:close()
	return table.unpack(res, 2, res.n)
end

-- A task chunk that requires `name` with no C path and reports the result.
local REQUIRE = [[
	local pcall = require("_G").pcall
	require("package").cpath = ""
	local ok, mod = pcall(require, ...)
	local text = ok and (mod.version_string and mod.version_string() or "loaded") or mod
	require("coroutine").yield("preload.result", "out", ok, text)
]]

-- First, before this state loads luv: a state that stored the loader
-- closes (and unloads its libraries) while another state still uses it.
T.case("a stored loader outlives the state that loaded its library", function()
	if not LUV then return end
	local maker = stateco.load([[
		local threads = require "coutil.threads"
		assert = require("_G").assert
		require("package").cpath = ...
		assert(threads.preloadclibs(true) == false)
		local luv = require "luv"
		assert(require("package").preload.luv)
		-- created afterwards: inherits the loader; returned (moved) to the
		-- resumer, while this state closes
		return require("coutil.coroutine").load[=[
			require("package").cpath = ""
			local luv = require "luv"
			return luv.version_string(), require("_G").type(luv.hrtime())
		]=], luv.version_string()
	]])
	local ok, user, version = resume(maker, package.cpath)
	T.same({ true, "dead" }, ok, maker:status())
	T.same({ true, version, "number" }, resume(user))
end)

T.case("default, previous setting and bad arguments", function()
	T.same({ false }, threads.preloadclibs())
	T.same({ false }, threads.preloadclibs(nil))
	T.same({ false }, threads.preloadclibs(false))
	T.same({ false }, threads.preloadclibs(true))
	T.same({ true }, threads.preloadclibs())
	T.same({ true }, threads.preloadclibs(true))
	T.same({ true }, threads.preloadclibs(false))
	T.same({ false }, threads.preloadclibs())
	T.raises("bad argument #1 to 'preloadclibs' (boolean expected, got number)",
		function() threads.preloadclibs(1) end)
	T.raises("bad argument #1 to 'preloadclibs' (boolean expected, got string)",
		function() threads.preloadclibs("true") end)
	T.raises("(boolean expected, got table)", threads.preloadclibs, {})
	T.raises("(boolean expected, got function)", threads.preloadclibs, print)
	T.same({ false }, threads.preloadclibs())
	-- not a pool method
	local pool = threads.create(0)
	T.same({ n = 1, nil }, pool.preloadclibs)
	pool:close()
end)

T.case("the setting is per state; searchers wrapped and put back", function()
	local before = {}
	for i, f in ipairs(package.searchers) do before[i] = f end
	T.same({ false }, threads.preloadclibs(true))
	assert(#package.searchers == #before)
	local changed = 0
	for i, f in ipairs(package.searchers) do
		assert(type(f) == "function")
		if f ~= before[i] then changed = changed + 1 end
	end
	assert(changed > 0, "no searcher wrapped")
	-- new states start with the original behaviour
	T.same({ false, false }, task([[
		local threads = require "coutil.threads"
		require("coroutine").yield("preload.result", "out", threads.preloadclibs(), threads.preloadclibs())
	]]))
	T.same({ true }, threads.preloadclibs(false))
	for i, f in ipairs(package.searchers) do assert(f == before[i], "searcher " .. i .. " not put back") end
end)

T.case("Lua modules and failed searches store nothing", function()
	local dir = T.tempdir("preload")
	T.writefile(dir .. "/preloadmod.lua", "return { name = ... }")
	local path = package.path
	package.path = dir .. "/?.lua;" .. path
	threads.preloadclibs(true)
	local ok, mod = pcall(require, "preloadmod")
	package.path = path
	T.same({ true, "preloadmod" }, ok, mod.name)
	T.same({ n = 1, nil }, package.preload.preloadmod)
	local ok, err = pcall(require, "no.such.module.anywhere")
	T.same({ n = 2, false, nil }, ok, package.preload["no.such.module.anywhere"])
	assert(err:find("module 'no.such.module.anywhere' not found", 1, true), err)
	-- Coutil's own modules are preloaded in new states anyway
	package.loaded["coutil.channel"] = nil
	assert(require("coutil.channel"))
	T.same({ n = 1, nil }, package.preload["coutil.channel"])
	T.same({ true }, threads.preloadclibs(false))
	package.loaded.preloadmod = nil
	T.rmtree(dir)
end)

T.case("native loads are inherited by tasks and state coroutines", function()
	if not LUV then return end
	package.preload.luv, package.loaded.luv = nil, nil
	-- without the loader, a state with no C path cannot find luv
	local ok, err = task(REQUIRE, "luv")
	T.same({ false }, ok)
	assert(err:find("module 'luv' not found", 1, true), err)
	T.same({ false }, threads.preloadclibs(true))
	local luv = require "luv"
	T.same({ "function" }, type(package.preload.luv))
	T.same({ true, luv.version_string() }, task(REQUIRE, "luv"))
	local co = stateco.load([[
		require("package").cpath = ""
		local luv = require(...)
		return luv.version_string()
	]])
	T.same({ true, luv.version_string() }, resume(co, "luv"))
	-- disabled: what was stored stays
	T.same({ true }, threads.preloadclibs(false))
	T.same({ true, luv.version_string() }, task(REQUIRE, "luv"))
end)

T.done()
