-- spec/threads.md §5: coutil.threads pools and the life cycle of tasks.
local T = require "testlib"
local system = require "coutil.system"
local channel = require "coutil.channel"
local stateco = require "coutil.coroutine"
local threads = require "coutil.threads"
local memory = require "coutil.memory"

local waitfor = T.waitfor

-- Receives `count` messages sent by tasks to channel `name` with
-- coroutine.yield(name, "out", ...); returns them packed, in order.
local function receive(name, count)
	local ch = channel.create(name)
	local got = {}
	T.spawn(function()
		for i = 1, count do got[i] = table.pack(select(2, system.awaitch(ch, "in"))) end
	end)
	system.run()
	ch:close()
	return got
end

-- channel.sync on a temporary object of `name`.
local function sync(name, ...)
	local ch <close> = channel.create(name)
	return ch:sync(...)
end

local function idle(pool)
	waitfor(function() return pool:count("n") == 0 end)
end

T.case("create: threads started now, counts, errors", function()
	local pool = threads.create(3)
	assert(tostring(pool):find("^coutil:threads: "), tostring(pool))
	T.same({ 0, 0, 0, 0, 3, 3 }, pool:count("nrpsea"))
	T.same({ 3, 3, 0 }, threads.count(pool, "aen"))
	T.same({ true }, pool:close())
	-- more threads than all pools may have (4096): a failure, and the
	-- threads started meanwhile are gone
	T.same({ false, "resource temporarily unavailable", 11 }, threads.create(5000))
	local after = threads.create(4000)
	T.same({ 4000 }, after:count("a"))
	after:close()
	for _, size in ipairs({ 0, -1, -100 }) do
		local empty = threads.create(size)
		T.same({ 0, 0 }, empty:count("ea"))
		empty:close()
	end
	T.raises("(number expected, got string)", threads.create, "x")
	T.raises("(number has no integer representation)", threads.create, 1.5)
	T.same({ n = 1, nil }, threads.create())
	T.same({ n = 1, nil }, threads.create(nil))
end)

T.case("count options and errors", function()
	local pool = threads.create(1)
	T.same({ 1, 1, 0, 1 }, pool:count("aena"))
	T.same({}, pool:count(""))
	T.raises("bad option (got 'x')", pool.count, pool, "nx")
	T.raises("(string expected, got no value)", pool.count, pool)
	T.raises("(coutil:threads expected, got table)", threads.count, {}, "n")
	pool:close()
end)

T.case("closed pools raise closed threads", function()
	local pool = threads.create(1)
	T.same({ true }, threads.close(pool))
	for _, name in ipairs({ "resize", "count", "dostring", "dofile", "close" }) do
		T.raises("closed threads", pool[name], pool, "n")
	end
	do
		local tbc <close> = threads.create(1)
		T.same({ 1 }, tbc:count("a"))
	end
end)

T.case("dostring and dofile: load and transfer errors", function()
	local pool = threads.create(0)
	T.same({ false, [[[string "x="]:1: unexpected symbol near <eof>]] }, pool:dostring("x="))
	T.same({ false, "chunk:1: unexpected symbol near <eof>" }, pool:dostring("x=", "@chunk"))
	T.same({ false, "attempt to load a text chunk (mode is 'b')" }, pool:dostring("return", "c", "b"))
	T.same({ false, "unable to transfer argument #5 (got table with function)" },
		pool:dostring("return", "c", "t", { print }))
	T.same({ false, "unable to transfer argument #7 (got function)" },
		pool:dostring("return", "c", "t", 1, 2, print))
	T.same({ false, "unable to transfer argument #4 (got table with thread)" },
		pool:dofile("x.lua", "t", { coroutine.running() }))
	local ok, msg = pool:dofile("/no/such/file.lua")
	T.same({ false }, ok)
	assert(msg:find("cannot open /no/such/file.lua", 1, true), msg)
	T.raises("(string or memory expected, got no value)", pool.dostring, pool)
	T.raises("(string expected, got table)", pool.dostring, pool, "x", {})
	T.raises("(string expected, got table)", pool.dofile, pool, {})
	T.same({ 0 }, pool:count("n"))
	pool:close()
end)

T.case("dostring copies a memory chunk: compiling may run finalizers (regression: parsed unmapped bytes)", function()
	local pool = threads.create(0)
	-- 40 MiB: an allocation of its own (mmap), unmapped when freed.
	local m = memory.create()
	memory.resize(m, 40 << 20, " ")
	memory.fill(m, "local x = 'whole' --", 1, 20)
	T.same({ true, true }, T.finalizing(function() memory.resize(m, 0) end, function() return pool:dostring(m) end))
	T.same({ 0 }, memory.len(m))
	T.same({ 1 }, pool:count("n"))
	pool:close()
end)

T.case("tasks run with their values and end; dofile too", function()
	local pool = threads.create(2)
	T.same({ true }, pool:dostring([[
		local a, b, c = ...
		require("coroutine").yield("results", "out", "dostring", a + b, c, math == nil)
	]], "=task", "t", 1, 2.5, "three"))
	local path = os.tmpname()
	local file = assert(io.open(path, "w"))
	file:write("require('coroutine').yield('results', 'out', 'dofile', ...)")
	file:close()
	T.same({ true }, pool:dofile(path, "t", 4, nil, 6))
	local got = receive("results", 2)
	table.sort(got, function(a, b) return a[1] < b[1] end)
	T.same({ n = 4, "dofile", 4, nil, 6 }, table.unpack(got[1], 1, got[1].n))
	T.same({ n = 4, "dostring", 3.5, "three", true }, table.unpack(got[2], 1, got[2].n))
	os.remove(path)
	idle(pool)
	T.same({ 0, 0, 0, 0 }, pool:count("nrps"))
	pool:close()
end)

T.case("yielding a channel name: results and errors of the yield", function()
	local pool = threads.create(1)
	pool:dostring([[
		local coroutine = require "coroutine"
		local res1 = { coroutine.yield("rpc", "in", "req") }
		local res2 = { coroutine.yield("rpc", "inout") }
		local res3 = { coroutine.yield("rpc", nil, 1, { require }) }
		local res4 = { coroutine.yield("rpc", "any") }
		coroutine.yield("rpc", "out", res1[1], res1[2], res1[3], res2[1], res2[2], res3[1], res3[2], res4[1], res4[2])
	]])
	local ch = channel.create("rpc")
	local got = {}
	T.spawn(function()
		got[1] = table.pack(system.awaitch(ch, "out", "reply", 7))
		got[2] = table.pack(system.awaitch(ch, "out", "fourth"))
		got[3] = table.pack(system.awaitch(ch, "in"))
	end)
	system.run()
	T.same({ n = 2, true, "req" }, table.unpack(got[1], 1, got[1].n))
	T.same({ n = 1, true }, table.unpack(got[2], 1, got[2].n))
	T.same({ n = 10, true, true, "reply", 7, false, "bad argument #2 (invalid option 'inout')",
		false, "unable to transfer argument #4 (got table with function)", true, "fourth" }, table.unpack(got[3], 1, got[3].n))
	idle(pool)
	pool:close()
end)

T.case("suspended tasks release their thread; other yields re-queue", function()
	local pool = threads.create(1)
	pool:dostring('require("coroutine").yield("park", "in")')
	waitfor(function() return pool:count("s") == 1 end)
	pool:dostring([[
		local coroutine = require "coroutine"
		local n = 0
		for i = 1, 3 do n = n + require("table").pack(coroutine.yield(i)).n end
		coroutine.yield("results", "out", "requeued", n)
	]])
	local got = receive("results", 1)
	T.same({ n = 2, "requeued", 0 }, table.unpack(got[1], 1, got[1].n))
	-- the sender ends after the exchange, on its own thread
	waitfor(function() return pool:count("n") == 1 end)
	T.same({ 1, 1, 0, 0 }, pool:count("nsrp"))
	T.same({ true }, channel.getnames().park)
	T.same({ true }, sync("park", "out"))
	idle(pool)
	T.same({ n = 1, nil }, channel.getnames().park)
	pool:close()
end)

T.case("pending tasks and re-queued yields are counted", function()
	local pool = threads.create(0)
	for _ = 1, 3 do pool:dostring("return") end
	T.same({ 3, 3, 0, 0, 0, 0 }, pool:count("npsrea"))
	T.same({ true }, pool:resize(1))
	idle(pool)
	T.same({ 1, 1 }, pool:count("ea"))
	pool:close()
end)

-- behaviour-rules R6: the end of a task and the start of the next pending
-- one are one step, whatever the task did (returned, or got suspended).
T.case("counts never show a free thread between two tasks", function()
	local pool = threads.create(1)
	local gate = channel.create("count gate")
	-- holds the only thread until the gate is closed
	pool:dostring([[
		local channel = require "coutil.channel"
		while channel.getnames()["count gate"] do end
	]])
	local tasks = 300
	for i = 1, tasks do
		pool:dostring([[
			local i = ...
			local s = require("string").rep("x", i)
			if i % 3 == 0 then require("coroutine").yield("count parked", "out", #s) end
		]], "=counted", "t", i)
	end
	waitfor(function() return pool:count("r") == 1 end)
	gate:close()
	local looks, wrong = 0, nil
	while true do
		local n, r, p, s = pool:count("nrps")
		looks = looks + 1
		if p > 0 and r ~= 1 then wrong = wrong or ("n=%d r=%d p=%d s=%d"):format(n, r, p, s) end
		if n == s then break end
	end
	assert(wrong == nil, wrong)
	assert(looks > 1)
	local parked = tasks // 3
	T.same({ parked, parked, 0, 0 }, pool:count("nsrp"))
	local sum = 0
	for _ = 1, parked do
		local ok, len = sync("count parked", "in")
		T.same({ true }, ok)
		sum = sum + len
	end
	T.same({ 3 * parked * (parked + 1) // 2 }, sum)
	idle(pool)
	pool:close()
end)

T.case("resize: on demand, all now, and down when free", function()
	local pool = threads.create(0)
	T.same({ true }, pool:resize(3))
	T.same({ 3, 0 }, pool:count("ea"))
	pool:dostring('require("coroutine").yield("resize", "in")')
	waitfor(function() return pool:count("s") == 1 end)
	assert(pool:count("a") >= 1)
	T.same({ true }, threads.resize(pool, 4, true))
	T.same({ 4, 4 }, pool:count("ea"))
	T.same({ true }, pool:resize(1))
	waitfor(function() return pool:count("a") == 1 end)
	T.raises("size cannot be negative", pool.resize, pool, -1)
	T.raises("(number expected, got no value)", pool.resize, pool)
	T.same({ true }, pool:resize(0))
	waitfor(function() return pool:count("a") == 0 end)
	-- a suspended task stays matchable without threads; it then waits
	T.same({ true }, sync("resize", "out"))
	T.same({ 1, 1, 0 }, pool:count("npa"))
	pool:resize(1)
	idle(pool)
	pool:close()
end)

T.case("close waits for the tasks, or discards them without threads", function()
	local pool = threads.create(2)
	pool:dostring([[
		local system = require "coutil.system"
		system.suspend(0.05, "~")
		require("coroutine").yield("closing", "out", "finished")
	]])
	local ch = channel.create("closing")
	local got
	T.spawn(function() got = table.pack(system.awaitch(ch, "in")) end)
	system.run()
	T.same({ n = 2, true, "finished" }, table.unpack(got, 1, got.n))
	T.same({ true }, pool:close()) -- nothing left: returns at once
	pool = threads.create(0)
	pool:dostring('require("coroutine").yield("discarded", "out")')
	T.same({ 1 }, pool:count("p"))
	T.same({ true }, pool:close())
	T.same({ false, "empty" }, sync("discarded", "in"))
end)

-- behaviour-rules R6: a suspended task survives the close of its pool as
-- a match partner; the first match then discards it (nothing can run it).
T.case("a task suspended on a channel outlives its closed pool, once", function()
	local names = channel.getnames
	local pool = threads.create(1)
	pool:dostring([[
		local coroutine = require "coroutine"
		local alive = require("coutil.channel").create("outlived: alive")
		coroutine.yield("outlived", "in", "last words", 7)
		coroutine.yield("outlived", "in", "never said")
	]])
	waitfor(function() return pool:count("s") == 1 end)
	T.same({ true }, pool:resize(0))
	waitfor(function() return pool:count("a") == 0 end)
	T.same({ true }, pool:close())
	-- still waiting, with its state: both names exist
	T.same({ true, true }, names().outlived, names()["outlived: alive"])
	T.same({ false, "empty" }, sync("outlived", "in")) -- in/in: no match
	T.same({ true, "last words", 7 }, sync("outlived", "out", "unheard"))
	-- discarded during that sync: its state is closed, its names are gone
	T.same({ n = 2, nil, nil }, names().outlived, names()["outlived: alive"])
	T.same({ false, "empty" }, sync("outlived", "out"))
	-- the same for a task parked by system.run while awaitch waits
	pool = threads.create(1)
	pool:dostring([[
		local system = require "coutil.system"
		local ch = require("coutil.channel").create("outlived: parked")
		require("coroutine").wrap(function() system.awaitch(ch, "in", "from its loop") end)()
		system.run()
	]])
	waitfor(function() return pool:count("s") == 1 end)
	T.same({ true }, pool:resize(0))
	waitfor(function() return pool:count("a") == 0 end)
	T.same({ true }, pool:close())
	T.same({ true }, names()["outlived: parked"])
	T.same({ true, "from its loop" }, sync("outlived: parked", "out"))
	T.same({ n = 1, nil }, names()["outlived: parked"])
	T.same({ false, "empty" }, sync("outlived: parked", "out"))
end)

T.case("a collected pool keeps running; its suspended tasks stay matchable", function()
	do
		local pool = threads.create(1)
		pool:dostring('require("coroutine").yield("orphan", "in") require("coroutine").yield("orphan", "out", "done")')
		waitfor(function() return pool:count("s") == 1 end)
	end
	collectgarbage()
	collectgarbage()
	T.same({ true }, sync("orphan", "out"))
	local got = receive("orphan", 1)
	T.same({ n = 1, "done" }, table.unpack(got[1], 1, got[1].n))
end)

T.case("a task gets its own pool; closing that reference only invalidates it", function()
	local pool = threads.create(1)
	pool:dostring([[
		local coroutine = require "coroutine"
		local threads = require "coutil.threads"
		require "_G"
		local own = threads.create()
		local counts = { own:count("ae") }
		own:dostring('require("coroutine").yield("own", "out", "child task")')
		local closed = own:close()
		local again = threads.create()
		coroutine.yield("own", "out", counts[1], counts[2], closed,
			pcall(own.count, own, "n") == false, again:count("e"))
	]])
	local got = receive("own", 2)
	table.sort(got, function(a, b) return a.n < b.n end)
	T.same({ n = 1, "child task" }, table.unpack(got[1], 1, got[1].n))
	T.same({ n = 5, 1, 1, true, true, 1 }, table.unpack(got[2], 1, got[2].n))
	idle(pool)
	pool:close()
end)

T.case("tasks use system.run, state coroutines and pools of their own", function()
	local pool = threads.create(2)
	pool:dostring([[
		local coroutine = require "coroutine"
		local system = require "coutil.system"
		local stateco = require "coutil.coroutine"
		local threads = require "coutil.threads"
		require "_G"
		local co = stateco.load("return 'from co', threads == nil", "=co")
		local res
		coroutine.wrap(function()
			system.suspend(0.001)
			res = { system.resume(co, 1) }
		end)()
		local pending = system.run()
		local inner = threads.create(1)
		inner:dostring('require("coroutine").yield("inner", "out", "from inner pool")')
		local ch = require("coutil.channel").create("inner")
		local msg
		coroutine.wrap(function() msg = select(2, system.awaitch(ch, "in")) end)()
		system.run()
		inner:close()
		coroutine.yield("tasks", "out", pending, res[1], res[2], res[3], msg)
	]])
	local got = receive("tasks", 1)
	T.same({ n = 5, false, true, "from co", true, "from inner pool" }, table.unpack(got[1], 1, got[1].n))
	idle(pool)
	pool:close()
end)

T.case("system.run in a task releases the thread while only awaitch waits", function()
	local pool = threads.create(1) -- one thread: the waker must run on it too
	pool:dostring([[
		local system = require "coutil.system"
		local channel = require "coutil.channel"
		local coroutine = require "coroutine"
		local got = {}
		for i = 1, 3 do
			coroutine.wrap(function()
				local ch = channel.create("parked")
				local _, v = system.awaitch(ch, "in", i)
				got[#got + 1] = v
				if i == 2 then system.suspend(0.01) end -- a timer: no parking
			end)()
		end
		local pending = system.run()
		coroutine.yield("parked result", "out", pending, got[1], got[2], got[3])
	]])
	waitfor(function() return pool:count("s") == 1 end)
	T.same({ 1, 0, 0, 1 }, pool:count("nrps"))
	pool:dostring([[
		local coroutine = require "coroutine"
		local sum = 0
		for i = 1, 3 do
			local _, v = coroutine.yield("parked", "out", i * 10)
			sum = sum + v
		end
		coroutine.yield("parked result", "out", "waker", sum)
	]])
	local got = receive("parked result", 2)
	table.sort(got, function(a, b) return tostring(a[1]) < tostring(b[1]) end)
	T.same({ n = 4, false, 10, 20, 30 }, table.unpack(got[1], 1, got[1].n))
	T.same({ n = 2, "waker", 6 }, table.unpack(got[2], 1, got[2].n))
	idle(pool)
	pool:close()
end)

T.case("a state coroutine and the main state see no pool of their own", function()
	local co = stateco.load('return require("coutil.threads").create() == nil')
	local res
	T.spawn(function() res = table.pack(system.resume(co)) end)
	system.run()
	T.same({ n = 2, true, true }, table.unpack(res, 1, res.n))
end)

T.case("task errors end the task; the pool goes on", function()
	local pool = threads.create(1)
	pool:dostring("error('Oops!')")
	pool:dostring("require '_G' error({})")
	pool:dostring('require("coroutine").yield("after", "out", "still working")')
	local got = receive("after", 1)
	T.same({ n = 1, "still working" }, table.unpack(got[1], 1, got[1].n))
	idle(pool)
	pool:close()
end)

T.case("regression: a task writing to a pipe whose reader left gets EPIPE", function()
	-- lua5.4 keeps SIGPIPE's default action, and the task's thread used to
	-- take it (the process died with status 141)
	local pool = threads.create(1)
	T.same({ true }, pool:dostring([[
		local io, os = require "io", require "os"
		local f = io.popen("exec head -c 1 >/dev/null", "w")
		local ok, msg, code
		for _ = 1, 1000 do -- until the reader, gone after 1 byte, is noticed
			ok, msg, code = f:write("x")
			if ok then ok, msg, code = f:flush() end
			if not ok then break end
			os.execute("sleep 0.01")
		end
		f:close()
		require("coroutine").yield("epipe", "out", ok, code)
	]]))
	local got = receive("epipe", 1)
	T.same({ n = 2, nil, 32 }, table.unpack(got[1], 1, got[1].n))
	idle(pool)
	pool:close()
end)

-- A task that makes no call and leaves the globals alone may leave its
-- state to the next task of its thread; whatever a task does, the next one
-- must find a new state.
T.case("every task gets a fresh state, even after tasks that made no call", function()
	local pool = threads.create(1)
	local report = [[
		local coroutine = require "coroutine"
		coroutine.yield("fresh", "out", leaked == nil, require("debug").gethook())
	]]
	local chunk = [[
		local mode = ...
		if mode == "global" then leaked = true return end
		if mode == "env" then _ENV = { leaked = true } return end
		if mode == "loop" then local n = 0 for i = 1, 1000 do n = n + i end return n end
		local coroutine = require "coroutine"
		coroutine.yield("fresh", "out", leaked == nil, require("debug").gethook())
	]]
	for _, mode in ipairs { "loop", "global", "loop", "env", "loop", "report" } do
		assert(pool:dostring(chunk, "=fresh", "t", mode))
		assert(pool:dostring(report, "=report"))
	end
	-- a binary chunk whose second upvalue a task changes without a call
	local later
	local function upvalues(mode)
		local req = require
		if mode == "set" then later = true return end
		req("coroutine").yield("fresh", "out", later == nil, req("debug").gethook())
	end
	local dumped = string.dump(upvalues)
	for _, mode in ipairs { "set", "report", "set", "set", "report" } do
		assert(pool:dostring(dumped, "=upvalues", "b", mode))
	end
	local got = receive("fresh", 9)
	for i = 1, 9 do T.same({ n = 2, true, nil }, table.unpack(got[i], 1, got[i].n)) end
	idle(pool)
	pool:close()
	local _ = later
end)

T.case("chunks are compiled per name and mode; the preload copy follows changes", function()
	local pool = threads.create(1)
	local chunk = [[
		local name = ...
		local ok, loaded = require("_G").pcall(require, "test.changing")
		require("coroutine").yield("compiled", "out", require("debug").getinfo(1, "S").source,
			ok and loaded or "missing")
	]]
	local preload = package.preload
	preload["test.changing"] = function() return "first" end
	assert(pool:dostring(chunk, "=one", "t"))
	assert(pool:dostring(chunk, "=one", "t"))
	preload["test.changing"] = function() return "second" end
	assert(pool:dostring(chunk, "=two", "t"))
	preload["test.changing"] = string.upper
	assert(pool:dostring(chunk, "=one", "bt"))
	preload["test.changing"] = nil
	assert(pool:dostring(chunk, "=three"))
	local got = receive("compiled", 5)
	T.same({ n = 2, "=one", "first" }, table.unpack(got[1], 1, got[1].n))
	T.same({ n = 2, "=one", "first" }, table.unpack(got[2], 1, got[2].n))
	T.same({ n = 2, "=two", "second" }, table.unpack(got[3], 1, got[3].n))
	T.same({ n = 2, "=one", "TEST.CHANGING" }, table.unpack(got[4], 1, got[4].n))
	T.same({ n = 2, "=three", "missing" }, table.unpack(got[5], 1, got[5].n))
	local binary = string.dump(function() end)
	T.same({ true }, pool:dostring(binary, "=bin", "b"))
	T.same({ false, "attempt to load a binary chunk (mode is 't')" }, pool:dostring(binary, "=bin", "t"))
	T.same({ false, [[[string "return +"]:1: unexpected symbol near '+']] },
		pool:dostring("return +"))
	T.same({ false, [[[string "return +"]:1: unexpected symbol near '+']] },
		pool:dostring("return +"))
	idle(pool)
	pool:close()
end)

T.done()
