-- timers, cqueues: 100 000 coroutines each in cqueues.sleep(1). Prints the
-- same values as timers-coutil.lua, but `setup` does not include arming:
-- cq:wrap only queues a coroutine, which starts in the loop's first step.
local cqueues = require "cqueues"

local n = 100000
local sleep = cqueues.sleep
local function sleeper() sleep(1) end

local cq = cqueues.new()
local t0 = cqueues.monotime()
for _ = 1, n do cq:wrap(sleeper) end
local setup = (cqueues.monotime() - t0)
assert(cq:loop())
local secs = cqueues.monotime() - t0

local status = io.open("/proc/self/status"):read("a")
print(string.format("secs %.6f", secs))
print(string.format("setup %.6f", setup))
print(string.format("over %.6f", secs - 1))
print("kib " .. status:match("VmHWM:%s*(%d+)"))
print("count " .. n)
