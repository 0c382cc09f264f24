-- speedup, coutil: CPU-bound work, 100 × (fill a 128 KiB memory with
-- system.random, blocking `~`, then count the byte values into a 256-entry
-- histogram in Lua). MODE[-1] (the argument):
--   one   the whole work in one coroutine of the main state;
--   pool  split across a pool of 2 threads, 2 tasks doing 50 each, each
--         sending its count back on a channel (the main state awaits both
--         under system.run()).
-- The count reads 8 bytes per memory.get call (`get(buf, i, i + 7)`), or
-- with `-1` one byte per call, `buf:get(j)`: the histogram of the README
-- of the original Coutil, whose time is mostly that call.
-- The same chunk does the work in both modes. Timed from before the work
-- (pool: the threads already started) to the last result.
local system = require "coutil.system"
local threads = require "coutil.threads"
local channel = require "coutil.channel"

local mode, per = (arg[1] or "one"):match("^(%a+)%-?(%d*)$")
per = tonumber(per) or 8
assert(per == 1 or per == 8, "bytes per call: 1 or 8")
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
if per == 1 then
	chunk = chunk:gsub("\t\tfor i = 1, size, 8 do.-\n\t\tend\n", [[
		for j = 1, size do
			local v = buf:get(j)
			hist[v] = hist[v] + 1
		end
]])
	assert(chunk:find("buf:get(j)", 1, true))
end

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
