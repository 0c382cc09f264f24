-- idle, cqueues: the same work as idle-coutil.lua; a coroutine suspends
-- with cqueues.sleep(0), the equivalent of system.suspend() (= suspend(0)).
local cqueues = require "cqueues"

local total = 1000000
local n = tonumber(arg[1]) or 1
local each = total // n
local sleep = cqueues.sleep

local function worker()
	for _ = 1, each do sleep(0) end
end

local cq = cqueues.new()
local t0 = cqueues.monotime()
for _ = 1, n do cq:wrap(worker) end
assert(cq:loop())
print(string.format("secs %.6f", cqueues.monotime() - t0))
print("ops " .. n * each)
