-- pooltasks, luv: the same N tiny tasks (default 100 000) with
-- `uv.new_work(fn, after)` and `work:queue(i)`: fn computes i + 1 on
-- libuv's thread pool (run with UV_THREADPOOL_SIZE=2; bench/run sets it),
-- `after` counts the results in the main loop. Timed from before the first
-- queue to the end of uv.run() (all `after` callbacks done).
local uv = require "luv"

local n = math.tointeger(tonumber(arg[1])) or 100000
local done = 0
local work = uv.new_work(function(i)
	local r = i + 1
	return r
end, function()
	done = done + 1
end)
local t0 = uv.hrtime()
for i = 1, n do
	assert(work:queue(i))
end
uv.run()
local secs = (uv.hrtime() - t0) / 1e9
assert(done == n, done)
print(string.format("secs %.6f", secs))
print("ops " .. n)
