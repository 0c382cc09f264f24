-- Stress: life cycles of sockets, files, processes and channels, N times
-- (N = arg[1], default 20000; processes every 10th iteration). After a
-- warm-up (arg[3], default N/4 iterations) the open descriptors must stay
-- the same and the resident memory may grow by less than 1 byte per
-- iteration (plus `slack` bytes, arg[2], default 0: reduced runs allow a
-- few pages of allocator noise). Resident memory grows for about the
-- first 4000 iterations (the allocator's arenas of the worker threads
-- filling up), then stays flat.
local system = require "coutil.system"
local memory = require "coutil.memory"
local channel = require "coutil.channel"

local count = tonumber(arg[1]) or 20000
local slack = tonumber(arg[2]) or 0
local path = os.tmpname()

local function descriptors()
	local n = 0
	for _ in system.listdir("/proc/self/fd", "~") do n = n + 1 end
	return n
end

local function rss()
	collectgarbage("collect")
	collectgarbage("collect")
	local f = assert(io.open("/proc/self/statm"))
	local pages = f:read("n") and f:read("n")
	f:close()
	return pages * 4096
end

local function once(i)
	-- a connected pair of local streams, a message each way
	local l = assert(system.socket("passive", "local"))
	local name = path .. ".sock"
	os.remove(name)
	assert(l:bind(name))
	assert(l:listen(1))
	local c = assert(system.socket("stream", "local"))
	local s
	coroutine.wrap(function() s = assert(l:accept()) end)()
	assert(c:connect(name))
	l:close()
	local buf = memory.create(16)
	assert(c:write("ping"))
	assert(s:read(buf) == 4)
	assert(s:write("pong"))
	assert(c:read(buf) == 4)
	c:close()
	s:close()
	-- a file written and read back
	local f = assert(system.openfile(path, "wtn", "rw"))
	assert(f:write("data") == 4)
	assert(f:close())
	f = assert(system.openfile(path, "r"))
	assert(f:read(buf) == 4)
	assert(f:close())
	-- a channel matched with itself
	local ch = channel.create("soak")
	local got
	coroutine.wrap(function() got = select(2, system.awaitch(ch, "in")) end)()
	assert(channel.sync(ch, "out", i))
	while got == nil do system.suspend() end -- delivered by the poll phase
	assert(got == i)
	ch:close()
	-- a process, now and then
	if i % 10 == 0 then assert(system.execute("/bin/true") == "exit") end
end

local fds, mem
local ok, err = false, "did not finish"
coroutine.wrap(function()
	warn("@on") -- errors of coroutines the loop resumes are warnings
	local warm = tonumber(arg[3]) or count // 4
	for i = 1, count do
		once(i)
		if i == warm then fds, mem = descriptors(), rss() end
	end
	local after = count - warm
	local grown = rss() - mem
	local fdsnow = descriptors()
	ok, err = true, nil
	if fdsnow ~= fds then
		ok, err = false, string.format("descriptors: %d after warm-up, %d at the end", fds, fdsnow)
	elseif grown >= after + slack then
		ok, err = false, string.format("memory grew by %d bytes in %d iterations", grown, after)
	end
	print(string.format("soak %d iterations: %d descriptors, memory grew by %d bytes", count, fdsnow, grown))
end)()
system.run()
os.remove(path)
os.remove(path .. ".sock")
assert(ok, err)
