-- coutil.await.within (issue 15): a deadline interrupts the await the
-- coroutine is suspended in, whatever its kind, and nothing else.
local T = require "testlib"
local system = require "coutil.system"
local memory = require "coutil.memory"
local event = require "coutil.event"
local queued = require "coutil.queued"
local promise = require "coutil.promise"
local mutex = require "coutil.mutex"
local channel = require "coutil.channel"
local await = require "coutil.await"

local within = await.within
local TIMEDOUT = { false, "connection timed out", 110 }

-- Runs `f` inside a deadline of `secs` in a coroutine; returns within's
-- results and the seconds it took.
local function timed(secs, f, ...)
	local args = table.pack(...)
	return T.async(function()
		local t0 = system.time("updated")
		local res = table.pack(within(secs, f, table.unpack(args, 1, args.n)))
		res.elapsed = system.time("updated") - t0
		return res
	end)
end

local function timesout(res, atleast)
	T.same(TIMEDOUT, table.unpack(res, 1, res.n))
	assert(res.elapsed >= (atleast or 0.02) - 0.002, res.elapsed)
	assert(res.elapsed < 2, res.elapsed)
end

local function listener()
	local s = assert(system.socket("passive", "ipv4"))
	assert(s:bind(T.loopback.ipv4()))
	assert(s:listen(8))
	return s, s:getaddress()
end

local pair = T.tcppair

T.case("a deadline that does not pass returns f's results", function()
	local res = timed(1, function(a, b)
		system.suspend(0.01)
		return a, nil, b
	end, 1, 2)
	T.same({ 1, nil, 2, n = 3 }, table.unpack(res, 1, res.n))
	res = timed(1, function() end)
	assert(res.n == 0)
	res = timed(1 / 0, function() return "forever" end)
	T.same({ "forever" }, table.unpack(res, 1, res.n))
end)

T.case("timer: suspend returns the timeout and f goes on", function()
	local res = timed(0.02, function()
		local r = table.pack(system.suspend(10))
		return table.unpack(r, 1, r.n)
	end)
	timesout(res)
	res = timed(0.02, function()
		T.same(TIMEDOUT, system.suspend(10))
		return "went on"
	end)
	T.same({ "went on" }, table.unpack(res, 1, res.n))
end)

T.case("read: the timeout loses no data and the socket stays usable", function()
	local c, s = pair()
	local buf = memory.create(8)
	timesout(timed(0.02, s.read, s, buf))
	T.async(function()
		assert(c:write("late"))
		local n = assert(s:read(buf))
		T.same({ "late" }, buf:tostring(1, n))
	end)
	c:close()
	s:close()
end)

T.case("write: a write the peer does not drain times out", function()
	local c, s = pair()
	local big = memory.create(64 * 1024 * 1024)
	timesout(timed(0.05, c.write, c, big), 0.05)
	c:close()
	s:close()
end)

T.case("accept and connect time out", function()
	local l = listener()
	timesout(timed(0.02, l.accept, l))
	l:close()
	-- a listener whose backlog is full leaves further connects pending
	local full, a = assert(system.socket("passive", "ipv4")), nil
	assert(full:bind(T.loopback.ipv4()))
	assert(full:listen(0))
	a = full:getaddress()
	local socks = {}
	T.async(function()
		for i = 1, 8 do
			socks[i] = assert(system.socket("stream", "ipv4"))
			local res = table.pack(within(0.05, socks[i].connect, socks[i], a))
			if res[1] == false then
				T.same(TIMEDOUT, table.unpack(res, 1, res.n))
				socks.timedout = true
				break
			end
		end
	end)
	assert(socks.timedout, "no connect stayed pending")
	for _, s in ipairs(socks) do s:close() end
	full:close()
end)

T.case("process, signal and channel awaits time out", function()
	local t = { execfile = "sleep", arguments = { "10" } }
	local res = timed(0.02, system.execute, t)
	timesout(res)
	assert(system.emitsig(t.pid, "TERMINATE"))
	timesout(timed(0.02, system.awaitsig, "userdef1"))
	local ch = channel.create("await_within")
	timesout(timed(0.02, system.awaitch, ch, "in"))
	ch:close()
end)

T.case("file: an open that blocks in the pool times out; its result is not lost", function()
	local dir, name = T.tempdir("within")
	local fifo = name("fifo")
	assert(os.execute("mkfifo " .. fifo))
	timesout(timed(0.05, system.openfile, fifo, "r"), 0.05)
	-- unblock the pool's open: a writer appears and goes
	T.async(function()
		local w = assert(system.openfile(fifo, "w"))
		w:close()
	end)
	T.rmtree(dir)
end)

T.case("event, queued and promise waits time out; mutex.lock waits on", function()
	timesout(timed(0.02, event.await, "e"))
	timesout(timed(0.02, event.awaitany, "e", "f"))
	timesout(timed(0.02, queued.await, "q"))
	local p = promise.create()
	timesout(timed(0.02, p))
	assert(not event.pending("e") and not event.pending(p))
	-- mutex.lock waits again after any wake-up (spec coop.md), so a
	-- deadline does not make it fail: it returns once the lock is free
	local m = {}
	T.spawn(function()
		mutex.lock(m)
		system.suspend(0.05)
		mutex.unlock(m)
	end)
	local res = timed(0.01, function()
		mutex.lock(m)
		local own = mutex.ownlock(m)
		mutex.unlock(m)
		return own
	end)
	T.same({ true }, table.unpack(res, 1, res.n))
	assert(res.elapsed >= 0.045, res.elapsed)
end)

T.case("a plain coroutine.yield is never interrupted", function()
	local done
	local co = coroutine.create(function()
		done = table.pack(within(0.01, function()
			local got = coroutine.yield("plain")
			return got, system.suspend(5)
		end))
	end)
	T.track(co)
	T.spawn(function()
		T.same({ true, "plain" }, coroutine.resume(co))
		system.suspend(0.05) -- the deadline passes while co sits in a plain yield
		T.same({ true }, coroutine.resume(co, "resumed"))
	end)
	system.run()
	-- the next await after the deadline is interrupted
	T.same({ "resumed", false, "connection timed out", 110 }, table.unpack(done, 1, done.n))
end)

T.case("after the deadline every await of f times out, until within returns", function()
	local res = timed(0.02, function()
		local a = table.pack(system.suspend(5))
		local b = table.pack(system.suspend(5))
		return a[2], b[2]
	end)
	T.same({ "connection timed out", "connection timed out" }, table.unpack(res, 1, res.n))
	T.async(function() T.same({ true }, system.suspend(0.01)) end)
end)

T.case("deadlines nest: the earliest applies", function()
	local res = timed(1, function()
		local inner = table.pack(within(0.02, system.suspend, 5))
		return inner[2], system.suspend(0.01)
	end)
	T.same({ "connection timed out", true }, table.unpack(res, 1, res.n))
	assert(res.elapsed < 0.5)
	res = timed(0.02, function()
		return within(5, system.suspend, 5)
	end)
	timesout(res)
end)

T.case("an error in f propagates with the deadline removed", function()
	local err = T.raises("oops", T.async, function()
		within(0.02, function() error("oops") end)
	end)
	assert(err:find("oops"))
	local t = {}
	local ok, e = pcall(T.async, function() within(0.02, function() error(t) end) end)
	assert(not ok and e == t)
	-- no deadline is left: a later await completes normally
	T.async(function() T.same({ true }, system.suspend(0.04)) end)
end)

T.case("a coroutine abandoned inside within is collected once its deadline passed", function()
	local weak = setmetatable({}, { __mode = "k" })
	do
		local co = coroutine.create(function()
			within(0.02, coroutine.yield)
		end)
		assert(coroutine.resume(co))
		weak[co] = true
	end
	T.async(function() system.suspend(0.04) end)
	collectgarbage()
	collectgarbage()
	assert(next(weak) == nil, "the coroutine was kept")
end)

T.case("a pending deadline keeps system.run going; one whose within returned does not", function()
	local res
	T.spawn(function() res = table.pack(within(0.02, event.await, "nobody")) end)
	system.run()
	T.same(TIMEDOUT, table.unpack(res, 1, res.n))
	local t0 = system.time("updated")
	T.spawn(function() within(5, system.suspend, 0.01) end)
	system.run()
	assert(system.time("updated") - t0 < 1)
end)

T.case("bad arguments", function()
	T.async(function()
		T.raises("bad argument #1 to 'within' (number expected, got string)", within, "1", print)
		T.raises("bad argument #1 to 'within' (number expected, got no value)", within)
		T.raises("bad argument #1 to 'within' (out of range)", within, -1, print)
		T.raises("bad argument #1 to 'within' (out of range)", within, 0 / 0, print)
		T.raises("bad argument #2 to 'within' (function expected, got nil)", within, 1)
	end)
	T.same({ false, "unable to yield" }, T.unyieldable(within, 1, print))
end)

T.done()
