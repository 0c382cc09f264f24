-- signals, coutil: 10 000 round trips of SIGUSR1 to this process. A waiter
-- coroutine loops on system.awaitsig("userdef1"); an emitter coroutine
-- sends each signal with system.emitsig(own pid, "userdef1") once the
-- waiter awaits again (it sets a flag just before awaitsig, which subscribes
-- before yielding; the emitter checks it after each system.suspend()),
-- since a signal that arrives while nobody awaits it is not remembered (and
-- SIGUSR1 would kill the process). Prints secs (from the first emitsig to
-- the end of the loop) and ops (round trips).
local system = require "coutil.system"

local TRIPS = tonumber(arg[1]) or 10000
local pid = system.procinfo("#")
local armed, received = false, 0
local failures = {}
local function spawn(f)
	coroutine.wrap(function()
		local ok, err = xpcall(f, debug.traceback)
		if not ok then failures[#failures + 1] = err end
	end)()
end

spawn(function()
	for _ = 1, TRIPS do
		armed = true
		assert(system.awaitsig("userdef1") == "userdef1")
		received = received + 1
	end
end)
local t0 = system.nanosecs()
spawn(function()
	for _ = 1, TRIPS do
		while not armed do system.suspend() end
		armed = false
		assert(system.emitsig(pid, "userdef1"))
	end
end)
system.run()
local secs = (system.nanosecs() - t0) / 1e9

if #failures > 0 then error(failures[1], 0) end
assert(received == TRIPS, "signals lost")
print(string.format("secs %.6f", secs))
print("ops " .. TRIPS)
