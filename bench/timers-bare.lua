-- timers, baseline: 100 000 coroutines suspended with a bare
-- coroutine.yield (no timer, no loop), then resumed to finish. The
-- argument names a module to load first, so the baseline
-- includes the fixed memory of the library the compared script loads.
-- Prints the peak RSS (VmHWM) in KiB.
local module = arg[1]
if module and module ~= "" then require(module) end

local n = 100000
local yield = coroutine.yield
local function sleeper() yield() end

local cos = {}
for i = 1, n do
	cos[i] = coroutine.wrap(sleeper)
	cos[i]()
end
for i = 1, n do cos[i]() end

local status = io.open("/proc/self/status"):read("a")
print("kib " .. status:match("VmHWM:%s*(%d+)"))
print("count " .. n)
