-- signals, luv: 10 000 round trips of SIGUSR1 to this process: one signal
-- handle started once (uv.new_signal():start("sigusr1", cb)), the callback
-- sends the next signal with uv.kill(uv.os_getpid(), "sigusr1"). Prints
-- secs (from the first kill to the end of the loop) and ops.
local uv = require "luv"

local TRIPS = tonumber(arg[1]) or 10000
local pid = uv.os_getpid()
local received = 0
local sig = uv.new_signal()
sig:start("sigusr1", function(name)
	received = received + 1
	if received < TRIPS then
		assert(uv.kill(pid, "sigusr1"))
	else
		sig:close()
	end
end)
local t0 = uv.hrtime()
assert(uv.kill(pid, "sigusr1"))
uv.run()
local secs = (uv.hrtime() - t0) / 1e9

assert(received == TRIPS, "signals lost")
print(string.format("secs %.6f", secs))
print("ops " .. TRIPS)
