-- timers, coutil: 100 000 coroutines each in system.suspend(1) under
-- system.run(). Prints (see README.md) secs: wall time from the first spawn
-- to the end of the loop; setup: time to spawn them all (each arms its
-- timer); over: secs - 1; kib: the process's peak RSS (VmHWM); count.
local system = require "coutil.system"

local n = 100000
local suspend = system.suspend
local function sleeper() suspend(1) end

local t0 = system.nanosecs()
for _ = 1, n do coroutine.wrap(sleeper)() end
local setup = (system.nanosecs() - t0) / 1e9
system.run()
local secs = (system.nanosecs() - t0) / 1e9

local status = io.open("/proc/self/status"):read("a")
print(string.format("secs %.6f", secs))
print(string.format("setup %.6f", setup))
print(string.format("over %.6f", secs - 1))
print("kib " .. status:match("VmHWM:%s*(%d+)"))
print("count " .. n)
