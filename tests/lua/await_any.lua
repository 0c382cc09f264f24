-- coutil.await.any and all (issue 15): the first (or all) of several
-- functions, each in its own coroutine; the others are closed at once.
local T = require "testlib"
local system = require "coutil.system"
local memory = require "coutil.memory"
local event = require "coutil.event"
local await = require "coutil.await"

local any, all, within = await.any, await.all, await.within

local pair = T.tcppair

-- A to-be-closed value that records its closing in `log`.
local function closer(log, name)
	return setmetatable({}, { __close = function(_, err) log[#log + 1] = name .. ":" .. tostring(err) end })
end

T.case("any returns the index of the first to return and its results", function()
	T.async(function()
		T.same({ 2, "fast", nil, n = 3 }, any(
			function() system.suspend(0.2) return "slow" end,
			function() system.suspend(0.01) return "fast", nil end))
		T.same({ 1 }, any(function() end, function() system.suspend(1) end))
	end)
end)

T.case("a function returning at once wins; the later ones never start", function()
	local started = false
	T.async(function()
		T.same({ 1, "now" }, any(function() return "now" end, function() started = true end))
	end)
	assert(not started)
end)

T.case("losers are closed at once: their awaits cancelled, their to-be-closed variables run", function()
	local log = {}
	local c, s = pair()
	local buf = memory.create(4)
	T.async(function()
		local t0 = system.time("updated")
		T.same({ 3, "won" }, any(
			function() local _ <close> = closer(log, "timer") system.suspend(5) end,
			function() local _ <close> = closer(log, "read") s:read(buf) log[#log + 1] = "read returned" end,
			function() system.suspend(0.01) return "won" end))
		assert(system.time("updated") - t0 < 1)
		T.same({ "timer:nil", "read:nil" }, table.unpack(log))
		-- nothing of the cancelled read is lost: the socket stays usable
		assert(c:write("data"))
		local n = assert(s:read(buf))
		T.same({ "data" }, buf:tostring(1, n))
	end)
	c:close()
	s:close()
end)

T.case("winner and losers finishing in the same iteration: one result, losers closed", function()
	local log = {}
	T.async(function()
		local res = table.pack(any(
			function() local _ <close> = closer(log, "a") system.suspend(0.01) return "a" end,
			function() local _ <close> = closer(log, "b") system.suspend(0.01) return "b" end))
		T.same({ 1, "a" }, table.unpack(res, 1, res.n))
		system.suspend(0.02)
	end)
	T.same({ "a:nil", "b:nil" }, table.unpack(log))
	-- event waits on the same emission
	log = {}
	T.async(function()
		T.spawn(function() system.suspend(0.01) event.emitall("go", 1) end)
		T.same({ 1, "go", 1 }, any(
			function() return event.await("go") end,
			function() local _ <close> = closer(log, "b") return event.await("go") end))
		assert(not event.pending("go"))
	end)
	T.same({ "b:nil" }, table.unpack(log))
end)

T.case("an error propagates after the others are closed", function()
	local log = {}
	local err = T.raises("boom", T.async, function()
		any(function() local _ <close> = closer(log, "x") system.suspend(1) end,
			function() system.suspend(0.01) error("boom") end)
	end)
	assert(err:find("boom"))
	T.same({ "x:nil" }, table.unpack(log))
	local t = {}
	local ok, e = pcall(T.async, function() all(function() error(t) end) end)
	assert(not ok and e == t)
end)

T.case("an explicit resume of any closes all its functions and returns the resume values", function()
	local log, co = {}, nil
	T.spawn(function()
		co = coroutine.running()
		log.res = table.pack(any(
			function() local _ <close> = closer(log, "1") system.suspend(5) end,
			function() local _ <close> = closer(log, "2") event.await("never") end))
	end)
	T.spawn(function() system.suspend(0.01) coroutine.resume(co, "stop", 7) end)
	system.run()
	T.same({ "stop", 7 }, table.unpack(log.res, 1, log.res.n))
	T.same({ "1:nil", "2:nil" }, table.unpack(log))
	assert(not event.pending("never"))
end)

T.case("within around any: the deadline ends it, the functions are closed", function()
	local log = {}
	T.async(function()
		local res = table.pack(within(0.02, any,
			function() local _ <close> = closer(log, "1") system.suspend(5) end,
			function() local _ <close> = closer(log, "2") system.suspend(5) end))
		T.same({ false, "connection timed out", 110 }, table.unpack(res, 1, res.n))
	end)
	T.same({ "1:nil", "2:nil" }, table.unpack(log))
end)

T.case("a loser that resumed the winner is closed once it gets control back", function()
	local log = {}
	T.async(function()
		T.same({ 1, "woken" }, any(
			function() event.await("wake") return "woken" end,
			function()
				local _ <close> = closer(log, "emitter")
				system.suspend(0.01)
				event.emitall("wake") -- the winner ends inside this call
				log[#log + 1] = "ran on"
				system.suspend(5)
			end))
		system.suspend(0.02)
	end)
	T.same({ "emitter:nil" }, table.unpack(log))
end)

T.case("all returns one table of results per function", function()
	T.async(function()
		local a, b, c = all(
			function() system.suspend(0.02) return 1 end,
			function() return 2, nil end,
			function() system.suspend(0.01) end)
		T.same({ 1, n = 1 }, table.unpack(a, 1, a.n))
		T.same({ 2, nil, n = 2 }, table.unpack(b, 1, b.n))
		assert(a.n == 1 and b.n == 2 and c.n == 0)
		T.same({}, all())
	end)
end)

T.case("bad arguments and no coroutine", function()
	T.async(function()
		T.raises("bad argument #2 to 'any' (function expected, got number)", any, print, 1)
		T.raises("bad argument #1 to 'all' (function expected, got nil)", all, nil)
	end)
	T.same({ false, "unable to yield" }, T.unyieldable(any, print))
	T.same({ false, "unable to yield" }, T.unyieldable(all, print))
end)

T.done()
