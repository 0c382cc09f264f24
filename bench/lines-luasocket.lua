-- lines, LuaSocket: as lines-coutil.lua, with LuaSocket's blocking
-- `client:receive("*l")` (Debian `lua-socket`) until it fails with
-- "closed". Prints secs (from the first line returned to the end of the
-- stream) and ops (the lines after the first one).
local socket = require "socket"

local path = assert(os.getenv("COUTIL_BENCH_LINES"), "COUTIL_BENCH_LINES not set")
local f = assert(io.open(path, "rb"))
local size = f:seek("end")
f:close()

local l = assert(socket.bind("127.0.0.1", 0))
local _, port = l:getsockname()
local sender = assert(io.popen(("exec bash -c 'exec cat -- \"$0\" >/dev/tcp/127.0.0.1/%d' '%s'")
	:format(port, path)))
local c = assert(l:accept())
l:close()
c:settimeout(nil)
local first = assert(c:receive("*l"))
local t0 = socket.gettime()
local lines, bytes = 1, #first + 1
while true do
	local s, err = c:receive("*l")
	if not s then
		assert(err == "closed", err)
		break
	end
	lines = lines + 1
	bytes = bytes + #s + 1
end
local t1 = socket.gettime()
c:close()
sender:close()
assert(bytes == size, ("%d bytes in %d lines, %d expected"):format(bytes, lines, size))
print(string.format("secs %.6f", t1 - t0))
print("ops " .. lines - 1)
