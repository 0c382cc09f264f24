-- tcp-10k, luv (for reference): the same workload and output as
-- tcp10k-coutil.lua, with luv's callbacks in one uv.run(). Setup: each
-- connect callback starts the next connect; the server's listen callback
-- accepts each connection and starts reading it (every read is written
-- back; end of file closes it). Then every client writes a 512-byte
-- message and, in its read callback, writes the next one once 512 bytes
-- are back, M times, and closes.
local uv = require "luv"

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

local echoed, done = 0, 0
local t0, t1, t2

local function echo(conn)
	assert(conn:read_start(function(err, data)
		assert(not err, err)
		if data then
			assert(conn:write(data))
			echoed = echoed + #data
		else -- end of file
			conn:close()
		end
	end))
end

local function client(sock)
	local got, count = 0, 0
	assert(sock:write(message))
	assert(sock:read_start(function(err, data)
		assert(not err, err)
		assert(data, "unexpected end of file")
		got = got + #data
		if got >= SIZE then
			assert(got == SIZE, "extra bytes")
			got, count = 0, count + 1
			if count < M then
				assert(sock:write(message))
			else
				sock:read_stop()
				sock:close()
				done = done + 1
				if done == N then t2 = uv.hrtime() end
			end
		end
	end))
end

local kib0 = vmhwm()
t0 = uv.hrtime()
local server = uv.new_tcp()
assert(server:bind("127.0.0.1", 0))
local accepted = 0
assert(server:listen(1024, function(err)
	assert(not err, err)
	local conn = uv.new_tcp()
	assert(server:accept(conn))
	accepted = accepted + 1
	if accepted == N then server:close() end
	echo(conn)
end))
local port = server:getsockname().port

local socks = {}
local function connect(i)
	local sock = assert(uv.new_tcp())
	assert(sock:connect("127.0.0.1", port, function(err)
		assert(not err, err)
		socks[i] = sock
		if i < N then return connect(i + 1) end
		t1 = uv.hrtime()
		for j = 1, N do
			client(socks[j])
			socks[j] = nil
		end
	end))
end
connect(1)
uv.run()
local t3 = uv.hrtime()

assert(done == N and echoed == N * M * SIZE, "messages lost")
local kib = vmhwm()
print(string.format("inner %.6f", (t3 - t0) / 1e9))
print(string.format("setup %.6f", (t1 - t0) / 1e9))
print(string.format("echo %.6f", (t2 - t1) / 1e9))
print("ops " .. N * M)
print("kib " .. kib)
print(string.format("kibconn %.3f", (kib - kib0) / N))
print("conns " .. N)
