-- tcp-10k, coutil: N echo connections (the first argument, default 10 000)
-- open at once on one loop, server and clients in this process, on
-- 127.0.0.1. Setup: one coroutine connects the clients one after the other
-- (so the listen backlog never overflows) while the server accepts each
-- into an echo coroutine (read up to 512 bytes into its own 512-byte
-- buffer, write them back, until end of file). Then every client, in its
-- own coroutine with its own 512-byte buffer, sends a 512-byte message and
-- reads until its 512 bytes are back, M times (the second argument,
-- default 10), and closes. Needs 2 N + about 10 open files.
-- Prints: setup (seconds to open the N connections), echo (seconds from
-- then until the last client is done), ops (N × M round trips), kib (peak
-- RSS, VmHWM, at the end), kibconn ((kib − the VmHWM before listening) ÷ N:
-- both ends of a connection, with their coroutines and buffers).
local system = require "coutil.system"
local memory = require "coutil.memory"

local N = tonumber(arg[1]) or 10000
local M = tonumber(arg[2]) or 10
local SIZE = 512
local message = string.rep("x", SIZE)

local function vmhwm()
	local f = assert(io.open("/proc/self/status"))
	local kib = tonumber(f:read("a"):match("VmHWM:%s*(%d+)"))
	f:close()
	return kib
end

local failures = {}
local function spawn(f, ...)
	coroutine.wrap(function(...)
		local ok, err = xpcall(f, debug.traceback, ...)
		if not ok then failures[#failures + 1] = err end
	end)(...)
end

local echoed, done = 0, 0
local t0, t1, t2

local function echo(sock)
	local buf = memory.create(SIZE)
	while true do
		local n = sock:read(buf)
		if not n then break end -- end of file
		assert(sock:write(buf, 1, n))
		echoed = echoed + n
	end
	sock:close()
end

local function client(sock)
	local buf = memory.create(SIZE)
	for _ = 1, M do
		assert(sock:write(message))
		local got = 0
		repeat got = got + assert(sock:read(buf, got + 1)) until got == SIZE
	end
	sock:close()
	done = done + 1
	if done == N then t2 = system.nanosecs() end
end

local kib0 = vmhwm()
t0 = system.nanosecs()
local server = assert(system.socket("passive", "ipv4"))
assert(server:bind(system.address("ipv4", "127.0.0.1:0")))
assert(server:listen(1024))
local address = server:getaddress()

spawn(function()
	for _ = 1, N do
		local sock, err = server:accept()
		if not sock then error("accept: " .. tostring(err)) end
		spawn(echo, sock)
	end
	server:close()
end)
spawn(function()
	local socks = {}
	for i = 1, N do
		local sock, err = system.socket("stream", "ipv4")
		if not sock then error("socket " .. i .. ": " .. tostring(err)) end
		assert(sock:connect(address))
		socks[i] = sock
	end
	t1 = system.nanosecs()
	for i = 1, N do
		spawn(client, socks[i])
		socks[i] = nil
	end
end)
system.run()
local t3 = system.nanosecs()

if #failures > 0 then error(failures[1], 0) end
assert(done == N and echoed == N * M * SIZE, "messages lost")
local kib = vmhwm()
print(string.format("inner %.6f", (t3 - t0) / 1e9))
print(string.format("setup %.6f", (t1 - t0) / 1e9))
print(string.format("echo %.6f", (t2 - t1) / 1e9))
print("ops " .. N * M)
print("kib " .. kib)
print(string.format("kibconn %.3f", (kib - kib0) / N))
print("conns " .. N)
