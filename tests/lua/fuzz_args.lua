-- Bad input never crashes (design §8): every function and method of the
-- library called with random arguments (a fixed seed, so a failure can be
-- replayed), each call in a coroutine closed afterwards if it waits. Only
-- raising, failing or succeeding is allowed; the loop must end idle.
-- Left out: what acts on the process or the machine (emitsig,
-- setpriority, setdir, setenv, execute, halt, run; the path functions
-- that write run in a temporary directory only), name resolution, and the
-- blocking mode "~" (a blocking suspend(2^53) would never return).
local T = require "testlib"
local system = require "coutil.system"
local memory = require "memory"
local channel = require "coutil.channel"
local stateco = require "coutil.coroutine"
local threads = require "coutil.threads"

local ROUNDS = tonumber(os.getenv("COUTIL_FUZZ_ROUNDS")) or 200

local seed = 20261130
local function rand(n)
	seed = (seed * 1103515245 + 12345) % 2147483648
	return seed % n + 1
end

local values = { true, false, 0, -1, 1, 3, 2 ^ 31, -2 ^ 31, 2 ^ 53, math.huge, -math.huge, 0 / 0, 1.5,
	math.mininteger, math.maxinteger, "", "abc", "\0", string.rep("x", 300), "r", "w", "s", "a", "b",
	"*", "4", "in", "out", "any", "raw", "ipv4", "ipv6", "local", "share", "pair", "stream", "datagram", "passive",
	"127.0.0.1", "::1", "localhost", {}, { 1, 2 }, function() end, string.len, coroutine.create(function() end),
	io.stdout, memory.create(16), memory.create(0) }

-- Calls f with `n` random arguments after `first` (if any) in a coroutine;
-- closes the coroutine if the call waits.
local function call(f, n, first)
	local args, base = {}, 0
	if first ~= nil then args[1], base = first, 1 end
	for i = 1, n do args[base + i] = values[rand(#values + 1)] end -- nil too
	-- not tracked: random calls may leave a coroutine referenced (a mutex
	-- it locked, say), which is no leak
	local co = coroutine.create(function() return f(table.unpack(args, 1, base + n)) end)
	coroutine.resume(co)
	if coroutine.status(co) == "suspended" then coroutine.close(co) end
end

local function fuzz(functions, objects)
	for _ = 1, ROUNDS do
		for _, f in ipairs(functions) do call(f, rand(5) - 1) end
		for _, o in ipairs(objects) do
			for name, m in pairs(getmetatable(o).__index) do
				if name ~= "close" then call(m, rand(4) - 1, o) end
			end
		end
	end
end

local function functions(module, skip)
	local list = {}
	for name, f in pairs(module) do
		if type(f) == "function" and not (skip and skip[name]) then list[#list + 1] = f end
	end
	table.sort(list, function(a, b) return tostring(a) < tostring(b) end)
	return list
end

T.case("memory, channels, state coroutines and pools", function()
	local pool = threads.create(1)
	local ch = channel.create("fuzz")
	local co = stateco.load("return ...")
	local objects = { memory.create(32), ch, co, pool }
	for _, o in ipairs(objects) do values[#values + 1] = o end
	local list = functions(memory)
	for _, mod in ipairs { channel, stateco, threads } do
		for _, f in ipairs(functions(mod, { close = true })) do list[#list + 1] = f end
	end
	fuzz(list, objects)
	for _ = 1, #objects do values[#values] = nil end
	-- resizing at random may have left the pool empty: let it end
	pool:resize(1)
	T.waitfor(function() return pool:count("n") == 0 end)
	pool:close()
	ch:close()
	stateco.close(co)
end)

T.case("the cooperative modules", function()
	local list = {}
	for _, name in ipairs { "coutil.event", "coutil.queued", "coutil.promise", "coutil.mutex", "coutil.spawn" } do
		for _, f in ipairs(functions(require(name))) do list[#list + 1] = f end
	end
	fuzz(list, {})
end)

T.case("system functions, sockets and files in a temporary directory", function()
	local dir = T.tempdir("fuzz")
	local back = assert(system.getdir())
	assert(system.setdir(dir))
	local objects = {}
	for _, kind in ipairs { "stream", "datagram", "passive" } do
		for _, domain in ipairs { "ipv4", "ipv6", "local", "share", "pair" } do
			local s, other = system.socket(kind, domain)
			if s then objects[#objects + 1] = s end
			if s and other then objects[#objects + 1] = other end
		end
	end
	objects[#objects + 1] = assert(system.openfile("file", "~wN", "rw"))
	for _, o in ipairs(objects) do values[#values + 1] = o end
	-- (findaddr and nameaddr would send random names to a resolver, which
	-- can take seconds each to give up without a network)
	local skip = { emitsig = true, setpriority = true, setdir = true, setenv = true, execute = true,
		halt = true, run = true, printall = true, findaddr = true, nameaddr = true }
	local ok, err = pcall(fuzz, functions(system, skip), objects)
	for _, o in ipairs(objects) do
		values[#values] = nil
		pcall(o.close, o, "~")
	end
	assert(system.setdir(back))
	T.rmtree(dir)
	assert(ok, err)
end)

T.done()
