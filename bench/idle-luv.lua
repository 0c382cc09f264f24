-- idle, luv: the same work as idle-coutil.lua. One idle handle whose
-- callback resumes every coroutine waiting in a list; a coroutine
-- "suspends" by putting itself in the list and yielding.
local uv = require "luv"

local total = 1000000
local n = tonumber(arg[1]) or 1
local each = total // n
local running, yield, resume = coroutine.running, coroutine.yield, coroutine.resume

local idle = uv.new_idle()
local waiting, nwaiting = {}, 0
local spare = {}

local function tick()
	-- swap lists: coroutines resumed here wait for the next iteration
	local list, count = waiting, nwaiting
	waiting, nwaiting, spare = spare, 0, list
	for i = 1, count do
		local co = list[i]
		list[i] = nil
		assert(resume(co))
	end
	if nwaiting == 0 then idle:close() end
end
idle:start(tick)

local function suspend()
	nwaiting = nwaiting + 1
	waiting[nwaiting] = running()
	return yield()
end

local function worker()
	for _ = 1, each do suspend() end
end

local t0 = uv.hrtime()
for _ = 1, n do coroutine.wrap(worker)() end
uv.run()
print(string.format("secs %.6f", (uv.hrtime() - t0) / 1e9))
print("ops " .. n * each)
