-- idle, floor: the coroutine switches of idle-coutil.lua without any loop:
-- the main chunk resumes N coroutines round-robin, each yielding 1 000 000/N
-- times. No scheduler can do a suspend for less. coutil.system is only
-- loaded for its clock.
local system = require "coutil.system"

local total = 1000000
local n = tonumber(arg[1]) or 1
local each = total // n
local yield, resume = coroutine.yield, coroutine.resume

local function worker()
	for _ = 1, each do yield() end
end

local t0 = system.nanosecs()
local cos = {}
for i = 1, n do cos[i] = coroutine.create(worker) end
for _ = 0, each do -- the first round starts them
	for i = 1, n do resume(cos[i]) end
end
print(string.format("secs %.6f", (system.nanosecs() - t0) / 1e9))
print("ops " .. n * each)
