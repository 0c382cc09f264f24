-- pooltasks, coutil: N tiny tasks (default 100 000) on a pool of 2 threads,
-- each `pool:dostring(chunk, name, "t", i)` with a chunk that only does
-- `local i = ...; local r = i + 1`. Timed from before the first dostring
-- to the return of pool:close() (all tasks done).
local system = require "coutil.system"
local threads = require "coutil.threads"

local n = tonumber(arg[1]) or 100000
local chunk = "local i = ... local r = i + 1"
local pool = threads.create(2)
local dostring = pool.dostring
local t0 = system.nanosecs()
for i = 1, n do
	assert(dostring(pool, chunk, "=tiny", "t", i))
end
pool:close()
print(string.format("secs %.6f", (system.nanosecs() - t0) / 1e9))
print("ops " .. n)
