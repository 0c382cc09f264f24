-- spec/threads.md §1 (independent states) and §3 across states: what a
-- fresh state offers, the copy of preload loaders, shared channel names,
-- standard streams, warnings and process exit with threads still waiting.
local T = require "testlib"
local system = require "coutil.system"
local channel = require "coutil.channel"
local stateco = require "coutil.coroutine"
local threads = require "coutil.threads"

-- Runs `chunk` in a new state coroutine with `...`; returns its results.
local function inside(chunk, ...)
	local co = assert(stateco.load(chunk))
	local res
	T.spawn(function(...) res = table.pack(system.resume(co, ...)) end, ...)
	system.run()
	co:close()
	return table.unpack(res, 1, res.n)
end

-- The command running this script, to run others in child processes.
local function interpreter()
	local i = -1
	while arg[i - 1] do i = i - 1 end
	return arg[i]
end

local function runchild(code)
	local path = os.tmpname()
	local file = assert(io.open(path, "w"))
	file:write(code)
	file:close()
	local proc = assert(io.popen(string.format("%q %q 2>&1", interpreter(), path)))
	local output = proc:read("a")
	local ok, how, status = proc:close()
	os.remove(path)
	return output, ok, how, status
end

T.case("only package is opened, without a package global", function()
	T.same({ true, true, true, true, true, true, true }, inside([[
		return package == nil, require ~= nil, print == nil, string == nil,
			coroutine == nil, _G == nil
	]]))
	T.same({ true, "function", "table", "table" }, inside([[
		require "_G"
		return type(require), type(require "package"), type(require("package").loaded)
	]]))
end)

T.case("preload holds the standard libraries; only _G sets globals", function()
	T.same({ true, true, "function", "table", "nil", _VERSION }, inside([[
		local g = require "_G"
		local s = require "string"
		return rawequal(g, _ENV), type(print), type(s), type(string), _VERSION
	]]))
	T.same({ true, "coroutine,debug,io,math,os,string,table,utf8,_G" }, inside([[
		local preload = require("package").preload
		require "_G"
		local names = {}
		for _, name in ipairs { "coroutine", "debug", "io", "math", "os", "string", "table", "utf8", "_G" } do
			if type(preload[name]) == "function" then names[#names + 1] = name end
		end
		return require("table").concat(names, ",")
	]]))
end)

T.case("every coutil module and memory load with empty package paths", function()
	T.same({ true, 13 }, inside([[
		local package = require "package"
		package.path, package.cpath = "", ""
		require "_G" -- for ipairs and type below
		local count = 0
		for _, name in ipairs { "coutil.system", "coutil.channel", "coutil.coroutine",
			"coutil.threads", "coutil.event", "coutil.queued", "coutil.mutex",
			"coutil.promise", "coutil.spawn", "coutil.memory", "memory" } do
			if type(require(name)) == "table" then count = count + 1 end
		end
		if require "memory" == require "coutil.memory" then count = count + 1 end
		if require("coutil.system").run() == false then count = count + 1 end
		return count
	]]))
end)

T.case("the creator's preload loaders are copied at creation", function()
	local preload = package.preload
	local up = 42
	preload["test.lua"] = function(name, extra) return "lua:" .. name .. ":" .. tostring(extra) end
	preload["test.upvalue"] = function() return up end
	preload["test.native"] = string.upper
	preload["test.notfunction"] = "ignored"
	preload[1] = function() end
	-- a C closure would run without its upvalues: skipped
	preload["test.closure"] = string.gmatch("abc", "b")
	local co = assert(stateco.load([[
		local preload = require("package").preload
		require "_G"
		local upvalue = require "test.upvalue"
		return require "test.lua", type(upvalue), upvalue == _ENV, require "test.native",
			preload["test.notfunction"], preload[1], preload["test.later"], preload["test.closure"]
	]]))
	preload["test.later"] = function() end
	local res
	T.spawn(function() res = table.pack(system.resume(co)) end)
	system.run()
	T.same({ n = 9, true, "lua:test.lua::preload:", "table", true, "TEST.NATIVE", nil, nil, nil, nil },
		table.unpack(res, 1, res.n))
	for _, name in ipairs { "test.lua", "test.upvalue", "test.native", "test.notfunction", "test.later",
		"test.closure" } do
		preload[name] = nil
	end
	preload[1] = nil
	local _ = up
end)

T.case("independent states of independent states inherit the copies", function()
	package.preload["test.nested"] = function() return "nested" end
	T.same({ true, true, "nested" }, inside([[
		local system = require "coutil.system"
		local stateco = require "coutil.coroutine"
		local co = stateco.load('return require "test.nested"')
		local res
		local coroutine = require "coroutine"
		coroutine.wrap(function() res = { system.resume(co) } end)()
		system.run()
		return res[1], res[2]
	]]))
	package.preload["test.nested"] = nil
end)

T.case("channel names are shared with independent states, recursively", function()
	local a = channel.create("shared name")
	T.same({ true, true, false }, inside([[
		local channel = require "coutil.channel"
		local names = channel.getnames()
		return names["shared name"], names["other"] ~= nil
	]]))
	local nested = [[
		local system = require "coutil.system"
		local stateco = require "coutil.coroutine"
		local co = stateco.load('return require("coutil.channel").getnames()["shared name"]')
		local res
		require("coroutine").wrap(function() res = { system.resume(co) } end)()
		system.run()
		return res[2]
	]]
	T.same({ true, true }, inside(nested))
	a:close()
	T.same({ n = 2, true, nil }, inside(nested))
	-- names created in another state exist while their objects do
	local co = assert(stateco.load([[
		local channel = require "coutil.channel"
		local ch = channel.create("made inside")
		require("coroutine").yield()
		ch:close()
	]]))
	local step = function() T.spawn(function() system.resume(co) end) system.run() end
	step()
	T.same({ true }, channel.getnames()["made inside"])
	step()
	T.same({ n = 1, nil }, channel.getnames()["made inside"])
	co:close()
end)

T.case("coroutines of different states exchange through channels", function()
	local ch = channel.create("cross")
	local co = assert(stateco.load([[
		local system = require "coutil.system"
		local channel = require "coutil.channel"
		local ch = channel.create("cross")
		local res, more
		-- await functions yield the running coroutine: in the chunk's own
		-- body that is the state coroutine, so use one of the state's
		require("coroutine").wrap(function()
			res = { system.awaitch(ch, "in", "from state", 1.5, 7) }
			more = { system.awaitch(ch, "in", "second from state") }
		end)()
		system.run()
		return res[1], res[2], res[3], more[1], more[2]
	]]))
	local res, got
	T.spawn(function() res = table.pack(system.resume(co)) end)
	T.spawn(function()
		got = table.pack(system.awaitch(ch, "out", "from main", nil, 3))
		got.more = table.pack(system.awaitch(ch, "out", "second"))
	end)
	system.run()
	T.same({ n = 4, true, "from state", 1.5, 7 }, table.unpack(got, 1, got.n))
	assert(math.type(got[3]) == "float" and math.type(got[4]) == "integer")
	T.same({ n = 2, true, "second from state" }, table.unpack(got.more, 1, got.more.n))
	T.same({ n = 6, true, true, "from main", nil, true, "second" }, table.unpack(res, 1, res.n))
end)

T.case("a state coroutine syncs with a waiting coroutine of the creator", function()
	local ch = channel.create("waiting main")
	local got
	T.spawn(function() got = table.pack(system.awaitch(ch, "any", "hello")) end)
	T.same({ true, true, "hello" }, inside([[
		local ch = require("coutil.channel").create("waiting main")
		return ch:sync("any", "world")
	]]))
	T.same({ n = 2, true, "world" }, table.unpack(got, 1, got.n))
end)

T.case("standard streams are shared; warnings start off", function()
	local output, ok = runchild([[
		local threads = require "coutil.threads"
		local stateco = require "coutil.coroutine"
		local system = require "coutil.system"
		io.stdout:setvbuf("no")
		local pool = threads.create(1)
		pool:dostring('require("io").stdout:write("task out\\n") error("silent")')
		pool:dostring('require("io").stderr:write("task err\\n") require "_G" warn "@on" error("loud")', "@chunk.lua")
		pool:dostring('warn "@on" error("no warn function")')
		pool:dostring('require "_G" warn "@on" error(setmetatable({}, { __tostring = function() return "obj" end }))')
		pool:close()
		local co = stateco.load('require("io").write("co out\\n") require "_G" warn "x" warn "@on" warn "shown"')
		coroutine.wrap(function() system.resume(co) end)()
		system.run()
	]])
	T.same({ true }, ok)
	local expected = "task out\ntask err\nLua warning: [coutil] threads: chunk.lua:1: loud\n"
		.. "Lua warning: [coutil] threads: (error object is not a string)\n"
		.. "co out\nLua warning: shown\n"
	T.same({ expected }, output)
end)

T.case("a process exits with tasks and coroutines still waiting on channels", function()
	local output, ok = runchild([[
		local threads = require "coutil.threads"
		local channel = require "coutil.channel"
		local system = require "coutil.system"
		local pool = threads.create(2)
		pool:dostring('require("coroutine").yield("never", "in")')
		pool:dostring('require("coroutine").yield("never", "in")')
		pool:dostring('local c = require "coutil.channel" while true do end', "@busy")
		local ch = channel.create("never")
		coroutine.wrap(function() system.awaitch(ch, "in") end)()
		while pool:count("s") < 2 do system.suspend(0.001, "~") end
		pool:resize(0)
		io.write("exiting")
		os.exit(true)
	]])
	T.same({ "exiting", true }, output, ok)
	output, ok = runchild([[
		local threads = require "coutil.threads"
		local pool = threads.create(1)
		pool:dostring('require("coroutine").yield("never", "in")')
		while pool:count("s") < 1 do require("coutil.system").suspend(0.001, "~") end
		pool:resize(0)
		io.write("closing the state")
	]])
	T.same({ "closing the state", true }, output, ok)
end)

T.case("a pool stuck in an endless task does not stop another pool", function()
	local output, ok = runchild([[
		local threads = require "coutil.threads"
		local channel = require "coutil.channel"
		local system = require "coutil.system"
		local stuck, working = threads.create(1), threads.create(1)
		stuck:dostring("while true do end", "@endless")
		while stuck:count("r") < 1 do system.suspend(0.001, "~") end
		for i = 1, 50 do
			working:dostring('require("coroutine").yield("work", "out", ...)', "@work", "t", i)
		end
		local ch = channel.create("work")
		local sum = 0
		coroutine.wrap(function()
			for _ = 1, 50 do sum = sum + select(2, system.awaitch(ch, "in")) end
		end)()
		system.run()
		working:close()
		io.write(sum, " ", stuck:count("r"))
		os.exit(true)
	]])
	T.same({ "1275 1", true }, output, ok)
end)

T.done()
