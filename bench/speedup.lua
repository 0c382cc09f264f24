-- speedup, coutil: CPU-bound work, 100 × (fill a 128 KiB memory with
-- system.random, blocking `~`, then count the byte values into a 256-entry
-- histogram in Lua, 8 bytes per memory.get call). MODE (the argument):
--   one   the whole work in one coroutine of the main state;
--   pool  split across a pool of 2 threads, 2 tasks doing 50 each, each
--         sending its count back on a channel (the main state awaits both
--         under system.run()).
-- The same chunk does the work in both modes. Timed from before the work
-- (pool: the threads already started) to the last result.
local system = require "coutil.system"
local threads = require "coutil.threads"
local channel = require "coutil.channel"

local mode = arg[1] or "one"
local total, size = 100, 131072

local chunk = [[
	require "_G"
	local system, memory = require "coutil.system", require "coutil.memory"
	local count, size, reply = ...
	local buf, get, random = memory.create(size), memory.get, system.random
	local hist = {}
	for v = 0, 255 do hist[v] = 0 end
	for _ = 1, count do
		random(buf, 1, -1, "~")
		for i = 1, size, 8 do
			local a, b, c, d, e, f, g, h = get(buf, i, i + 7)
			hist[a] = hist[a] + 1; hist[b] = hist[b] + 1
			hist[c] = hist[c] + 1; hist[d] = hist[d] + 1
			hist[e] = hist[e] + 1; hist[f] = hist[f] + 1
			hist[g] = hist[g] + 1; hist[h] = hist[h] + 1
		end
	end
	local sum = 0
	for v = 0, 255 do sum = sum + hist[v] end
	if reply then require("coroutine").yield(reply, "out", sum) end
	return sum
]]

local t0, got
if mode == "one" then
	local work = assert(load(chunk, "=work", "t"))
	t0 = system.nanosecs()
	coroutine.wrap(function() got = work(total, size) end)()
else
	assert(mode == "pool", "mode: one or pool")
	local pool = threads.create(2)
	local results = channel.create("bench-speedup")
	t0 = system.nanosecs()
	for _ = 1, 2 do
		assert(pool:dostring(chunk, "=work", "t", total // 2, size, "bench-speedup"))
	end
	got = 0
	coroutine.wrap(function()
		for _ = 1, 2 do got = got + select(2, system.awaitch(results, "in")) end
	end)()
	system.run()
	pool:close()
end
local secs = (system.nanosecs() - t0) / 1e9
assert(got == total * size, got)
print(string.format("secs %.6f", secs))
print("ops " .. total)
