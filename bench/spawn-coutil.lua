-- spawn, coutil: 2 000 runs of /bin/true through system.execute (string
-- form: the child inherits our standard streams), 16 at a time, from 16
-- coroutines that take the runs from a shared counter, under system.run().
-- Prints secs (from before the first execute to the end of the loop) and
-- ops (runs).
local system = require "coutil.system"

local RUNS, CONCURRENT = tonumber(arg[1]) or 2000, 16
local started, done = 0, 0
local failures = {}

local function worker()
	while started < RUNS do
		started = started + 1
		local what, status = system.execute("/bin/true")
		assert(what == "exit" and status == 0, "execute: " .. tostring(what) .. " " .. tostring(status))
		done = done + 1
	end
end

local t0 = system.nanosecs()
for _ = 1, CONCURRENT do
	coroutine.wrap(function()
		local ok, err = xpcall(worker, debug.traceback)
		if not ok then failures[#failures + 1] = err end
	end)()
end
system.run()
local secs = (system.nanosecs() - t0) / 1e9

if #failures > 0 then error(failures[1], 0) end
assert(done == RUNS, "runs lost")
print(string.format("secs %.6f", secs))
print("ops " .. RUNS)
