-- awaitfd, luv: the round trips of awaitfd-coutil.lua (same modes and
-- FIFOs) with luv's poll handles: one uv.new_poll() per FIFO read by this
-- process, started once for "r" (libuv keeps it registered,
-- level-triggered, between callbacks); the callback reads the byte and
-- writes the next one. The handles poll descriptors of their own on the
-- FIFOs (uv.fs_open), since luv takes no Lua io file; bytes are read and
-- written with Lua's io library as in awaitfd-coutil.lua. Prints secs
-- (from the first write to the end of the loop) and ops.
local uv = require "luv"

local mode = arg[1] or "pingpong"
assert(mode == "pingpong" or mode == "child", "mode: pingpong or child")
local TRIPS = tonumber(arg[2]) or (mode == "child" and 20000 or 100000)
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir " .. dir .. " && mkfifo " .. dir .. "/a " .. dir .. "/b"))

local files, fds = {}, {}
local function open(path, how)
	local f = assert(io.open(path, how))
	if how == "w" then f:setvbuf("no") end
	files[#files + 1] = f
	return f
end
local function poll(path, callback)
	local fd = assert(uv.fs_open(path, "r", 0))
	fds[#fds + 1] = fd
	local p = uv.new_poll(fd)
	p:start("r", function(err, events)
		assert(not err and events == "r", err)
		callback()
	end)
	return p
end

local trips = 0
local out, back, echo
if mode == "pingpong" then
	local ard, awr = open(dir .. "/a", "r+"), open(dir .. "/a", "w")
	local brd, bwr = open(dir .. "/b", "r+"), open(dir .. "/b", "w")
	out, back = awr, brd
	echo = poll(dir .. "/a", function()
		assert(ard:read(1) == "x")
		bwr:write("x")
	end)
else
	assert(os.execute("cat <" .. dir .. "/a >" .. dir .. "/b &"))
	out, back = open(dir .. "/a", "w"), open(dir .. "/b", "r")
end
local waiter
waiter = poll(dir .. "/b", function()
	assert(back:read(1) == "x")
	trips = trips + 1
	if trips < TRIPS then
		out:write("x")
	else
		waiter:close()
		if echo then echo:close() end
	end
end)
local t0 = uv.hrtime()
out:write("x")
uv.run()
local secs = (uv.hrtime() - t0) / 1e9

for _, f in ipairs(files) do f:close() end
for _, fd in ipairs(fds) do uv.fs_close(fd) end
os.execute("rm -r " .. dir)
assert(trips == TRIPS, "round trips lost")
print(string.format("secs %.6f", secs))
print("ops " .. TRIPS)
