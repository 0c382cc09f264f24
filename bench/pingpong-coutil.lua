-- pingpong, coutil: two tasks of a pool of 2 threads exchange a small
-- message back and forth N times (default 200 000) over two channel names,
-- "ping" one way and "pong" the other. MODE (the argument):
--   yield    the tasks call coroutine.yield(name, endpoint, ...): a waiting
--            task is suspended and its thread released (no module loaded);
--   awaitch  the tasks run one coroutine under system.run() calling
--            system.awaitch (the task keeps its thread, blocked in its loop).
-- Timed from before the first dostring to the return of pool:close().
local system = require "coutil.system"
local threads = require "coutil.threads"

local mode = arg[1] or "yield"
local n = tonumber(arg[2]) or 200000

local chunks = {
	yield = {
		[[
			require "_G"
			local yield, n = require("coroutine").yield, ...
			for i = 1, n do
				yield("bench-ping", "out", i)
				local _, v = yield("bench-pong", "in")
				assert(v == i)
			end
		]],
		[[
			require "_G"
			local yield, n = require("coroutine").yield, ...
			for _ = 1, n do
				local _, v = yield("bench-ping", "in")
				yield("bench-pong", "out", v)
			end
		]],
	},
	awaitch = {
		[[
			require "_G"
			local system, channel = require "coutil.system", require "coutil.channel"
			local co, n = require "coroutine", ...
			local ping, pong = channel.create("bench-ping"), channel.create("bench-pong")
			local awaitch = system.awaitch
			co.wrap(function()
				for i = 1, n do
					awaitch(ping, "out", i)
					local _, v = awaitch(pong, "in")
					assert(v == i)
				end
			end)()
			system.run()
		]],
		[[
			require "_G"
			local system, channel = require "coutil.system", require "coutil.channel"
			local co, n = require "coroutine", ...
			local ping, pong = channel.create("bench-ping"), channel.create("bench-pong")
			local awaitch = system.awaitch
			co.wrap(function()
				for _ = 1, n do
					local _, v = awaitch(ping, "in")
					awaitch(pong, "out", v)
				end
			end)()
			system.run()
		]],
	},
}
local pair = assert(chunks[mode], "mode: yield or awaitch")

local pool = threads.create(2)
local t0 = system.nanosecs()
assert(pool:dostring(pair[1], "=ping", "t", n))
assert(pool:dostring(pair[2], "=pong", "t", n))
pool:close()
local secs = (system.nanosecs() - t0) / 1e9
print(string.format("secs %.6f", secs))
print("ops " .. n)
