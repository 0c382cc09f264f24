-- spec/threads.md under load: many messages between threads, pools
-- resized while tasks run, thousands of short tasks, state coroutines
-- cancelled and resumed in loops.
local T = require "testlib"
local system = require "coutil.system"
local channel = require "coutil.channel"
local stateco = require "coutil.coroutine"
local threads = require "coutil.threads"

-- The full size asked for: a pool of 8 threads running 4 producers and 4
-- consumers that exchange 8 x 100 000 messages (about 6 s in a debug
-- build); COUTIL_STRESS_N=<n> runs 8 x n instead.
local N = tonumber(os.getenv("COUTIL_STRESS_N")) or 100000

local waitfor = T.waitfor

-- Collects `count` messages of channel `name` in the main state.
local function receive(name, count, each)
	local ch = channel.create(name)
	T.spawn(function()
		for _ = 1, count do each(select(2, system.awaitch(ch, "in"))) end
	end)
	system.run()
	ch:close()
end

T.case("8 threads exchange messages, each value counted exactly once", function()
	local pool = threads.create(8)
	local producer = [[
		local id, n = ...
		local yield = require("coroutine").yield
		for i = 1, n do yield("stress", "out", id * n + i, "payload") end
		yield("stress report", "out", "produced", id, n)
	]]
	local consumer = [[
		local id = ...
		local yield = require("coroutine").yield
		require "_G"
		local count, sum, squares = 0, 0, 0
		while true do
			local ok, v, extra = yield("stress", "in")
			if v == nil then break end
			assert(ok == true and extra == "payload")
			count, sum, squares = count + 1, sum + v, squares + v * v
		end
		yield("stress report", "out", "consumed", id, count, sum, squares)
	]]
	for id = 0, 3 do
		assert(pool:dostring(producer, "=producer", "t", id, 2 * N))
		assert(pool:dostring(consumer, "=consumer", "t", id))
	end
	local produced, counts = 0, {}
	receive("stress report", 4, function(what, _, n)
		assert(what == "produced")
		produced = produced + n
	end)
	T.same({ 8 * N }, produced)
	-- one end marker per consumer, sent from the main state
	local stop = channel.create("stress")
	T.spawn(function() for _ = 1, 4 do system.awaitch(stop, "out", nil) end end)
	local total, sum, squares = 0, 0, 0
	receive("stress report", 4, function(what, id, count, s, q)
		assert(what == "consumed")
		counts[id + 1] = count
		total, sum, squares = total + count, sum + s, squares + q
	end)
	stop:close()
	local m = 8 * N
	T.same({ m, m * (m + 1) // 2, m * (m + 1) * (2 * m + 1) // 6 }, total, sum, squares)
	for id = 1, 4 do assert(counts[id] > 0, "every consumer took part") end
	waitfor(function() return pool:count("n") == 0 end)
	pool:close()
end)

T.case("main coroutines and tasks exchange in both directions", function()
	local pool = threads.create(4)
	local M = N // 20
	for id = 1, 4 do
		pool:dostring([[
			local id, m = ...
			local yield = require("coroutine").yield
			local sum = 0
			for i = 1, m do
				local ok, v = yield("both", "in", id)
				sum = sum + v
			end
			yield("both report", "out", sum)
		]], "=both", "t", id, M)
	end
	local seen = {}
	for c = 1, 4 do
		T.spawn(function()
			local ch <close> = channel.create("both") -- one object per awaiter
			for _ = 1, M do
				local _, id = system.awaitch(ch, "out", c)
				seen[id] = (seen[id] or 0) + 1
			end
		end)
	end
	system.run()
	local sum = 0
	receive("both report", 4, function(s) sum = sum + s end)
	T.same({ M, M, M, M }, seen[1], seen[2], seen[3], seen[4])
	T.same({ M * 10 }, sum) -- 4 tasks x M values, 1+2+3+4 = 10
	waitfor(function() return pool:count("n") == 0 end)
	pool:close()
end)

T.case("pools resized up and down while tasks run", function()
	local pool = threads.create(2)
	local tasks = 64
	for id = 1, tasks do
		pool:dostring([[
			local id = ...
			local yield = require("coroutine").yield
			local n = 0
			for i = 1, 200 do n = n + i yield() end -- re-queued each time
			yield("resized", "out", id, n)
		]], "=resized", "t", id)
	end
	local sizes = { 0, 8, 1, 3, 0, 6, 2, 5 }
	local got, sum = 0, 0
	local ch = channel.create("resized")
	T.spawn(function()
		while got < tasks do
			local _, _, n = system.awaitch(ch, "in")
			got, sum = got + 1, sum + n
		end
	end)
	local i = 0
	while got < tasks do
		i = i + 1
		local size = sizes[i % #sizes + 1]
		assert(pool:resize(size, i % 3 == 0))
		local e, a = pool:count("ea")
		assert(e == size)
		if i % 3 == 0 then assert(a >= size) end
		if size == 0 then pool:resize(1) end
		system.run("ready")
		system.suspend(0.002, "~")
	end
	ch:close()
	T.same({ tasks, tasks * 20100 }, got, sum)
	waitfor(function() return pool:count("n") == 0 end)
	pool:resize(0)
	waitfor(function() return pool:count("a") == 0 end)
	pool:close()
end)

T.case("thousands of short tasks", function()
	local pool = threads.create(4)
	local count = 3000
	for i = 1, count do
		if i % 2 == 0 then
			assert(pool:dostring("return ...", "=short", "t", i))
		else
			assert(pool:dostring('require("coroutine").yield("short", "out", ...)', "=short", "t", i))
		end
	end
	local sum = 0
	receive("short", count // 2, function(i) sum = sum + i end)
	T.same({ (count // 2) ^ 2 }, sum)
	waitfor(function() return pool:count("n") == 0 end)
	T.same({ 0, 0, 0, 0 }, pool:count("nrps"))
	pool:close()
end)

T.case("thousands of tasks mixing traceless ones and ones leaving traces", function()
	-- Traceless tasks may leave their state to the next task of a thread;
	-- every task checks that it sees a new state and reports it.
	local pool = threads.create(2)
	local count = 4000
	local chunk = [[
		local i, mode = ...
		if mode == 0 then local x = i * 2 return x end -- no call: traceless
		if mode == 1 then seen = i return end -- a global
		if mode == 2 then _ENV = nil return end -- the chunk's upvalue
		local fresh = seen == nil and require("debug").gethook() == nil
		require("coroutine").yield("mixed", "out", fresh and i or -i)
	]]
	local reports = 0
	for i = 1, count do
		local mode = i % 4
		if mode == 3 then reports = reports + 1 end
		assert(pool:dostring(chunk, "=mixed", "t", i, mode))
	end
	local sum, bad = 0, 0
	receive("mixed", reports, function(i)
		if i < 0 then bad = bad + 1 end
		sum = sum + math.abs(i)
	end)
	T.same({ 0 }, bad)
	T.same({ reports * (3 + 4 * reports - 1) // 2 }, sum) -- 3 + 7 + 11 + ...
	waitfor(function() return pool:count("n") == 0 end)
	pool:close()
end)

T.case("many state coroutines cancelled and resumed in loops", function()
	local cos = {}
	for i = 1, 8 do
		cos[i] = stateco.load([[
			local n = 0
			local yield = require("coroutine").yield
			while true do n = n + 1 yield(n) end
		]])
	end
	local finished = 0
	for round = 1, 60 do
		for i, co in ipairs(cos) do
			if co:status() == "suspended" then
				local res
				local waiter = T.spawn(function() res = { system.resume(co) } end)
				if (round + i) % 3 == 0 then
					coroutine.resume(waiter, "cancelled")
				end
			end
		end
		system.run()
	end
	for _, co in ipairs(cos) do
		waitfor(function() return co:status() ~= "running" end)
		local res
		T.spawn(function() res = { system.resume(co) } end)
		system.run()
		assert(res[1] == true and res[2] > 1, tostring(res[2]))
		finished = finished + 1
		co:close()
	end
	T.same({ 8 }, finished)
end)

T.done()
