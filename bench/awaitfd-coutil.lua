-- awaitfd, coutil: round trips of one byte over FIFOs (named pipes, made
-- in a new temporary directory), waiting with system.awaitfd(file, "r").
--   awaitfd-coutil.lua pingpong [trips]: two coroutines of this process,
--     the echo waits on FIFO a, reads the byte and writes one to b; the
--     other writes to a, waits on b and reads (100 000 trips);
--   awaitfd-coutil.lua child [trips]: one coroutine writes to a, and a
--     `cat <a >b` process echoes it back through b (20 000 trips).
-- Bytes are read and written with Lua's io library (the same calls as
-- awaitfd-luv.lua), so only the waiting differs. Prints secs (from the
-- first write to the end of the loop) and ops (round trips).
local system = require "coutil.system"

local mode = arg[1] or "pingpong"
assert(mode == "pingpong" or mode == "child", "mode: pingpong or child")
local TRIPS = tonumber(arg[2]) or (mode == "child" and 20000 or 100000)
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir " .. dir .. " && mkfifo " .. dir .. "/a " .. dir .. "/b"))

local files = {}
local function open(path, how)
	local f = assert(io.open(path, how))
	if how == "w" then f:setvbuf("no") end -- each write a write(2)
	files[#files + 1] = f
	return f
end

local trips = 0
local failures = {}
local function spawn(f)
	coroutine.wrap(function()
		local ok, err = xpcall(f, debug.traceback)
		if not ok then failures[#failures + 1] = err end
	end)()
end

local out, back -- the writer's FIFO a, and b where the echo comes back
if mode == "pingpong" then
	-- "r+" opens a FIFO without waiting for a writer
	local ard, awr = open(dir .. "/a", "r+"), open(dir .. "/a", "w")
	local brd, bwr = open(dir .. "/b", "r+"), open(dir .. "/b", "w")
	out, back = awr, brd
	spawn(function() -- the echo
		for _ = 1, TRIPS do
			assert(system.awaitfd(ard, "r") == "r")
			assert(ard:read(1) == "x")
			bwr:write("x")
		end
	end)
else
	assert(os.execute("cat <" .. dir .. "/a >" .. dir .. "/b &"))
	out, back = open(dir .. "/a", "w"), open(dir .. "/b", "r")
end
local t0 = system.nanosecs()
spawn(function()
	for _ = 1, TRIPS do
		out:write("x")
		assert(system.awaitfd(back, "r") == "r")
		assert(back:read(1) == "x")
		trips = trips + 1
	end
end)
system.run()
local secs = (system.nanosecs() - t0) / 1e9

for _, f in ipairs(files) do f:close() end
os.execute("rm -r " .. dir)
if #failures > 0 then error(failures[1], 0) end
assert(trips == TRIPS, "round trips lost")
print(string.format("secs %.6f", secs))
print("ops " .. TRIPS)
