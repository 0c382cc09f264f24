-- idle, luv, one idle handle per coroutine: each coroutine waits on its own
-- handle, started when it suspends and stopped by its callback, which
-- resumes the coroutine. This mirrors what a per-coroutine `suspend()`
-- does; idle-luv.lua is the batched variant (one handle for everybody).
local uv = require "luv"

local total = 1000000
local n = tonumber(arg[1]) or 1
local each = total // n
local running, yield, resume = coroutine.running, coroutine.yield, coroutine.resume

local function worker()
	local co = running()
	local idle = uv.new_idle()
	local function wake()
		idle:stop()
		assert(resume(co))
	end
	for _ = 1, each do
		idle:start(wake)
		yield()
	end
	idle:close()
end

local t0 = uv.hrtime()
for _ = 1, n do coroutine.wrap(worker)() end
uv.run()
print(string.format("secs %.6f", (uv.hrtime() - t0) / 1e9))
print("ops " .. n * each)
