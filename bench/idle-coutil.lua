-- idle, coutil: 1 000 000 system.suspend() calls in total, spread over N
-- coroutines (the argument, default 1), under system.run().
local system = require "coutil.system"

local total = 1000000
local n = tonumber(arg[1]) or 1
local each = total // n
local suspend = system.suspend

local function worker()
	for _ = 1, each do suspend() end
end

local t0 = system.nanosecs()
for _ = 1, n do coroutine.wrap(worker)() end
system.run()
print(string.format("secs %.6f", (system.nanosecs() - t0) / 1e9))
print("ops " .. n * each)
