-- spec/threads.md §4: coutil.coroutine (state coroutines) and system.resume.
local T = require "testlib"
local system = require "coutil.system"
local channel = require "coutil.channel"
local stateco = require "coutil.coroutine"
local memory = require "coutil.memory"

local unyieldable = T.unyieldable
local waitfor = T.waitfor

-- Resumes `co` from a new coroutine when it fails at once (no yield).
local function refused(co, ...)
	local res
	T.spawn(function(...) res = table.pack(system.resume(co, ...)) end, ...)
	return table.unpack(res, 1, res.n)
end

-- Resumes `co` with `...` from a new coroutine and runs the loop.
local function resume(co, ...)
	local res
	T.spawn(function(...) res = table.pack(system.resume(co, ...)) end, ...)
	system.run()
	return table.unpack(res, 1, res.n)
end

T.case("load: object, status and argument errors", function()
	local co = stateco.load("return 1")
	assert(tostring(co):find("^coutil:coroutine: "), tostring(co))
	T.same({ "suspended" }, stateco.status(co))
	T.same({ "suspended" }, co:status())
	T.raises("(string or memory expected, got no value)", stateco.load)
	T.raises("(string or memory expected, got table)", stateco.load, {})
	T.raises("bad argument #2 to", stateco.load, "x", {})
	T.raises("(string expected, got table)", stateco.load, "x", {})
	T.raises("(string expected, got boolean)", stateco.load, "x", "n", true)
	T.raises("(coutil:coroutine expected, got table)", stateco.status, {})
	T.raises("(coutil:coroutine expected, got no value)", stateco.close)
	T.same({ true }, co:close())
end)

T.case("load errors return false and the message", function()
	T.same({ false, [[[string "x="]:1: unexpected symbol near <eof>]] }, stateco.load("x="))
	T.same({ false, "chunk:1: unexpected symbol near <eof>" }, stateco.load("x=", "@chunk"))
	T.same({ false, "attempt to load a binary chunk (mode is 't')" },
		stateco.load(string.dump(function() end), "b", "t"))
	T.same({ false, "attempt to load a text chunk (mode is 'b')" }, stateco.load("return 1", "t", "b"))
	local co = stateco.load(string.dump(function(...) return "binary", ... end), "=b", "b")
	T.same({ true, "binary", 1 }, resume(co, 1))
	co = stateco.load(memory.create("return 'from memory'"), "=m", "t")
	T.same({ true, "from memory" }, resume(co))
end)

T.case("loadfile: from a file, errors, and mode", function()
	local path = os.tmpname()
	local file = assert(io.open(path, "w"))
	file:write("local a = ... return a * 2, 'file'")
	file:close()
	local co = stateco.loadfile(path)
	T.same({ true, 42, "file" }, resume(co, 21))
	T.same({ false, "attempt to load a text chunk (mode is 'b')" }, stateco.loadfile(path, "b"))
	T.same({ "dead" }, co:status())
	os.remove(path)
	local ok, msg = stateco.loadfile(path)
	T.same({ false }, ok)
	assert(msg:find("cannot open " .. path, 1, true), msg)
	T.raises("(string expected, got table)", stateco.loadfile, {})
	T.raises("(string expected, got table)", stateco.loadfile, path, {})
	co = stateco.loadfile() -- standard input (empty in the tests)
	T.same({ true }, resume(co))
end)

T.case("resume passes values in and out; yield suspends", function()
	local co = stateco.load([[
		local coroutine = require "coroutine"
		local a, b = ...
		local c, d = coroutine.yield(a + b, "yielded")
		local threads = require "coutil.threads"
		return c .. d, threads.create() == nil, math == nil
	]])
	local states = {}
	T.spawn(function()
		states[1] = co:status()
		local res = table.pack(system.resume(co, 1, 2))
		res.status = co:status()
		states[2] = res
		res = table.pack(system.resume(co, "x", "y"))
		res.status = co:status()
		states[3] = res
	end)
	system.run()
	T.same({ "suspended" }, states[1])
	T.same({ n = 3, true, 3, "yielded" }, table.unpack(states[2], 1, states[2].n))
	T.same({ "suspended" }, states[2].status)
	T.same({ n = 4, true, "xy", true, true }, table.unpack(states[3], 1, states[3].n))
	T.same({ "dead" }, states[3].status)
	T.same({ false, "cannot resume dead coroutine" }, resume(co))
	T.same({ true }, co:close())
end)

T.case("load copies a memory chunk: compiling may run finalizers (regression: parsed unmapped bytes)", function()
	-- 40 MiB: an allocation of its own (mmap), unmapped when freed.
	local m = memory.create()
	memory.resize(m, 40 << 20, " ")
	memory.fill(m, "return 'whole' --", 1, 17)
	local ok, co = T.finalizing(function() memory.resize(m, 0) end, function() return stateco.load(m) end)
	T.same({ true, 0 }, ok, memory.len(m))
	T.same({ true, "whole" }, resume(co))
end)

T.case("many values in and out", function()
	local args = {}
	for i = 1, 230 do args[i] = i % 2 == 0 and i or tostring(i) end
	local co = stateco.load("return ...")
	local res = table.pack(resume(co, table.unpack(args, 1, 230)))
	T.same({ n = 231, true, table.unpack(args, 1, 230) }, table.unpack(res, 1, res.n))
end)

T.case("transfer failures return false and leave co unchanged", function()
	local co = stateco.load("require('coroutine').yield(...) return { require }")
	T.same({ false, "unable to transfer argument #2 (got table with function)" }, resume(co, { print }))
	T.same({ false, "unable to transfer argument #4 (got function)" }, resume(co, 1, 2, print))
	T.same({ "suspended" }, co:status())
	T.same({ true, 1 }, resume(co, 1))
	T.same({ false, "unable to transfer return value #1 (got table with function)" }, resume(co))
	T.same({ "dead" }, co:status())
	T.same({ true }, co:close())
	co = stateco.load("require('coroutine').yield(1, 2, require)")
	T.same({ false, "unable to transfer return value #3 (got function)" }, resume(co))
	T.same({ "suspended" }, co:status())
end)

T.case("errors of the chunk are returned and kill co", function()
	local co = stateco.load("require '_G' local x = ...\nerror('Oops!')", "@bytecodes")
	T.same({ false, "bytecodes:2: Oops!" }, resume(co))
	T.same({ "dead" }, co:status())
	T.same({ false, "bytecodes:2: Oops!" }, co:close())
	T.same({ true }, co:close())
	co = stateco.load("require '_G' error(true)")
	T.same({ false, true }, resume(co))
	T.same({ false, true }, co:close())
	co = stateco.load("require '_G' error({ print })")
	T.same({ false, "unable to transfer error (got table with function)" }, resume(co))
	T.same({ false, "unable to transfer error (got table with function)" }, co:close())
	T.same({ "dead" }, co:status())
	T.same({ false, "cannot resume dead coroutine" }, resume(co))
end)

T.case("resume outside a coroutine raises; co unchanged", function()
	local co = stateco.load("return 1")
	local ok, msg = unyieldable(system.resume, co)
	T.same({ false }, ok)
	assert(msg:find("unable to yield", 1, true), msg)
	T.same({ "suspended" }, co:status())
	T.raises("(coutil:coroutine expected, got nil)", function()
		local r
		T.spawn(function() r = table.pack(pcall(system.resume, nil)) end)
		error(r[2], 0)
	end)
end)

T.case("close: suspended, running, and to-be-closed", function()
	local co = stateco.load("require('coroutine').yield()")
	T.same({ true }, resume(co))
	T.same({ true }, stateco.close(co))
	T.same({ "dead" }, co:status())
	T.same({ true }, co:close())
	T.same({ false, "cannot resume dead coroutine" }, resume(co))
	local gate = channel.create("close gate")
	co = stateco.load([[
		local system = require "coutil.system"
		local ch = require("coutil.channel").create("close gate")
		require("coroutine").wrap(function() system.awaitch(ch) end)()
		system.run()
	]])
	local res
	T.spawn(function() res = table.pack(system.resume(co)) end)
	T.raises("cannot close a running coroutine", co.close, co)
	T.same({ false, "cannot resume running coroutine" }, refused(co))
	waitfor(function() return gate:sync() end)
	system.run()
	T.same({ n = 1, true }, table.unpack(res, 1, res.n))
	T.same({ "dead" }, co:status())
	do
		local tbc <close> = stateco.load("return")
	end
end)

T.case("explicit resume of the awaiter leaves co running, then resumable", function()
	local gate = channel.create("gate")
	local co = stateco.load([[
		local system = require "coutil.system"
		local ch = require("coutil.channel").create("gate")
		require("coroutine").wrap(function() system.awaitch(ch) end)()
		system.run()
		local again = require("coroutine").yield("dropped")
		return "second", again
	]])
	local res
	local waiter = T.spawn(function() res = table.pack(system.resume(co, "first")) end)
	T.same({ "running" }, co:status())
	coroutine.resume(waiter, "by", "hand")
	T.same({ n = 2, "by", "hand" }, table.unpack(res, 1, res.n))
	T.same({ "running" }, co:status())
	T.same({ false, "cannot resume running coroutine" }, refused(co))
	waitfor(function() return gate:sync() end)
	waitfor(function() return co:status() ~= "running" end)
	T.same({ "suspended" }, co:status())
	T.same({ false }, system.run())
	T.same({ true, "second", "again" }, resume(co, "again"))
end)

-- behaviour-rules R6: the end of a resume is seen by the resumer's state
-- only when its loop delivers it, however long ago the chunk stopped.
T.case("co stays running until the loop delivers its results", function()
	local co = stateco.load([[
		local coroutine = require "coroutine"
		local marker = require("coutil.channel").create("stateco: yielding")
		coroutine.yield("yielded", 1)
		return "returned", 2
	]])
	local res
	T.spawn(function() res = table.pack(system.resume(co)) end)
	waitfor(function() return channel.getnames()["stateco: yielding"] end)
	-- the chunk yields right after making its marker: give it time to stop
	-- (the checks must hold whether it has stopped or not)
	system.suspend(0.05, "~")
	T.same({ "running" }, co:status())
	T.raises("cannot close a running coroutine", stateco.close, co)
	T.same({ false, "cannot resume running coroutine" }, refused(co))
	assert(res == nil, "no delivery without the loop")
	T.same({ false }, system.run())
	T.same({ n = 3, true, "yielded", 1 }, table.unpack(res, 1, res.n))
	T.same({ "suspended" }, co:status())
	-- the end of the chunk: its state is closed at once (the marker's name
	-- vanishes), yet co is dead only once the results are delivered
	res = nil
	T.spawn(function() res = table.pack(system.resume(co)) end)
	waitfor(function() return not channel.getnames()["stateco: yielding"] end)
	T.same({ "running" }, co:status())
	T.raises("cannot close a running coroutine", co.close, co)
	T.same({ false, "cannot resume running coroutine" }, refused(co))
	assert(res == nil, "no delivery without the loop")
	T.same({ false }, system.run())
	T.same({ n = 3, true, "returned", 2 }, table.unpack(res, 1, res.n))
	T.same({ "dead" }, co:status())
	T.same({ true }, co:close())
end)

T.case("an awaiter that gives up frees co without the loop", function()
	local co = stateco.load([[
		local coroutine = require "coroutine"
		local marker = require("coutil.channel").create("stateco: given up")
		local n = 0
		while true do n = n + 1 coroutine.yield(n) end
	]])
	-- resumed by hand: co is resumable as soon as its chunk stopped (at
	-- once if it had), no delivery needed
	local res
	local waiter = T.spawn(function() res = table.pack(system.resume(co)) end)
	waitfor(function() return channel.getnames()["stateco: given up"] end)
	system.suspend(0.05, "~")
	coroutine.resume(waiter, "gave up")
	T.same({ n = 1, "gave up" }, table.unpack(res, 1, res.n))
	waitfor(function() return co:status() ~= "running" end)
	T.same({ "suspended" }, co:status())
	-- closed while it waits: the same
	waiter = T.spawn(function() system.resume(co) end)
	T.same({ "running" }, co:status())
	T.same({ true }, coroutine.close(waiter))
	waitfor(function() return co:status() ~= "running" end)
	T.same({ "suspended" }, co:status())
	T.same({ false }, system.run())
	-- the dropped results were 1 and 2
	T.same({ true, 3 }, resume(co))
	T.same({ true }, co:close())
end)

T.case("an unreferenced running co completes and delivers its results", function()
	local res
	T.spawn(function() res = table.pack(system.resume(stateco.load("return ...", "=x"), 1, 2)) end)
	collectgarbage()
	collectgarbage()
	system.run()
	T.same({ n = 3, true, 1, 2 }, table.unpack(res, 1, res.n))
end)

T.case("a collected running co is closed when it stops", function()
	local gate = channel.create("gc gate")
	local waiter = T.spawn(function()
		system.resume(stateco.load([[
			local system = require "coutil.system"
			local ch = require("coutil.channel").create("gc gate")
			local alive = require("coutil.channel").create("gc alive")
			require("coroutine").wrap(function() system.awaitch(ch) end)()
			system.run()
			require("coroutine").yield()
		]]))
	end)
	waitfor(function() return channel.getnames()["gc alive"] end)
	coroutine.resume(waiter) -- the awaiter forgets co
	collectgarbage()
	collectgarbage()
	T.same({ true }, channel.getnames()["gc alive"])
	waitfor(function() return gate:sync() end)
	waitfor(function() return not channel.getnames()["gc alive"] end)
end)

T.case("resume, cancel, resume another and cancel again before the loop runs", function()
	local co1, co2 = stateco.load("return 1"), stateco.load("return 2")
	local res = {}
	local waiter = T.spawn(function()
		res[1] = table.pack(system.resume(co1))
		res[2] = table.pack(system.resume(co2)) -- started in the closing phase
		res[3] = true
	end)
	coroutine.resume(waiter, "c1")
	T.same({ "running" }, co2:status())
	coroutine.resume(waiter, "c2") -- cancelled before it started
	T.same({ n = 1, "c1" }, table.unpack(res[1], 1, res[1].n))
	T.same({ n = 1, "c2" }, table.unpack(res[2], 1, res[2].n))
	T.same({ false }, system.run())
	waitfor(function() return co1:status() ~= "running" and co2:status() ~= "running" end)
	T.same({ "dead", "suspended" }, co1:status(), co2:status())
	T.same({ true, 2 }, resume(co2))
end)

T.case("state coroutines cancelled and resumed in loops", function()
	local co = stateco.load([[
		local coroutine = require "coroutine"
		local n = 0
		while true do n = n + 1 coroutine.yield(n) end
	]])
	local last = 0
	for i = 1, 300 do
		local res
		local waiter = T.spawn(function() res = table.pack(system.resume(co)) end)
		if i % 2 == 0 then
			coroutine.resume(waiter, "cancel")
			T.same({ n = 1, "cancel" }, table.unpack(res, 1, res.n))
			waitfor(function() return co:status() ~= "running" end)
		else
			system.run()
			T.same({ true }, res[1])
			assert(res[2] > last)
			last = res[2]
		end
	end
	T.same({ false }, system.run())
	T.same({ true, 301 }, resume(co))
	T.same({ true }, co:close())
end)

T.done()
