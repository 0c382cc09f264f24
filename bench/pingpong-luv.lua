-- pingpong, luv: the same exchange as pingpong-coutil.lua between the main
-- loop and a thread (uv.new_thread) running its own loop, with two async
-- handles, one each way: the main side sends i to the thread's handle, the
-- thread sends it back to the main one's, N times (default 200 000).
-- luv hands a handle to another thread only for the duration of the
-- callback that receives it (it is unusable afterwards), so the thread
-- sends its own handle along with each reply and the main side answers
-- through it at once. Those per-callback copies of the handle make
-- lua5.4 abort at exit (`free(): invalid pointer`, in lua_close, after the
-- results are out, every run of 5 000 round trips or more), so the script
-- ends with os.exit without closing the state.
local uv = require "luv"

local n = math.tointeger(tonumber(arg[1])) or 200000
local t0, count = nil, 0
local tomain
tomain = uv.new_async(function(v, toth)
	if v == 0 then -- the thread is ready: start
		t0 = uv.hrtime()
		toth:send(1)
		return
	end
	count = count + 1
	assert(v == count)
	if count < n then
		toth:send(count + 1)
	else
		toth:send(0) -- end
		tomain:close()
	end
end)

local thread = uv.new_thread(function(tomain)
	local uv = require "luv"
	local mine
	mine = uv.new_async(function(v)
		if v == 0 then mine:close() else tomain:send(v, mine) end
	end)
	tomain:send(0, mine)
	uv.run()
end, tomain)
uv.run()
local secs = (uv.hrtime() - t0) / 1e9
thread:join()
print(string.format("secs %.6f", secs))
print("ops " .. n)
io.stdout:flush()
os.exit(0, false)
