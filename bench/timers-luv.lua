-- timers, luv: 100 000 coroutines, each suspended on its own uv timer
-- (1 s) whose callback closes the timer and resumes the coroutine. Prints
-- the same values as timers-coutil.lua.
local uv = require "luv"

local n = 100000
local running, yield, resume = coroutine.running, coroutine.yield, coroutine.resume

local function sleep(secs)
	local co, timer = running(), uv.new_timer()
	timer:start(math.floor(secs * 1000), 0, function()
		timer:close()
		assert(resume(co))
	end)
	return yield()
end
local function sleeper() sleep(1) end

local t0 = uv.hrtime()
for _ = 1, n do coroutine.wrap(sleeper)() end
local setup = (uv.hrtime() - t0) / 1e9
uv.run()
local secs = (uv.hrtime() - t0) / 1e9

local status = io.open("/proc/self/status"):read("a")
print(string.format("secs %.6f", secs))
print(string.format("setup %.6f", setup))
print(string.format("over %.6f", secs - 1))
print("kib " .. status:match("VmHWM:%s*(%d+)"))
print("count " .. n)
