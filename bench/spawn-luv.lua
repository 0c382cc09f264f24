-- spawn, luv: 2 000 runs of /bin/true through uv.spawn, 16 at a time: 16
-- chains, each exit callback closes its handle and starts the next run. The
-- child inherits our standard streams (stdio = {0, 1, 2}), as with
-- system.execute's string form. Prints secs and ops (runs).
local uv = require "luv"

local RUNS, CONCURRENT = tonumber(arg[1]) or 2000, 16
local started, done = 0, 0

local function launch()
	if started >= RUNS then return end
	started = started + 1
	local handle
	handle = assert(uv.spawn("/bin/true", { args = {}, stdio = { 0, 1, 2 } }, function(code, signal)
		assert(code == 0 and signal == 0, "exit " .. code .. " signal " .. signal)
		handle:close()
		done = done + 1
		launch()
	end))
end

local t0 = uv.hrtime()
for _ = 1, CONCURRENT do launch() end
uv.run()
local secs = (uv.hrtime() - t0) / 1e9

assert(done == RUNS, "runs lost")
print(string.format("secs %.6f", secs))
print("ops " .. RUNS)
