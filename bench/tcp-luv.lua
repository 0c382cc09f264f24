-- tcp-upload, tcp-serial, tcp-multiplex, luv (for reference): the same
-- workloads as tcp-coutil.lua (same modes and output), with luv's callbacks
-- (uv.new_tcp, bind, listen, accept, connect, read_start, write) and no
-- coroutines, in one uv.run(). libuv reads into 64 KiB buffers; the read
-- callbacks count the bytes, a message counts once its 512 bytes are in.
-- serial: the client writes its next message in the read callback that
-- completes the reply; multiplex: the client writes all its messages at
-- once (libuv queues what the socket does not take) and the server writes
-- a reply for each message as it completes. A connection is closed once
-- its last read is in and its last write callback has run.
local uv = require "luv"

local mode = arg[1] or "serial"
local conns, msgs = 64, 512
if mode == "upload1" then conns, msgs = 1, 2 * 64 * 512 end
assert(mode == "upload" or mode == "upload1" or mode == "serial" or mode == "multiplex",
	"unknown mode " .. mode)
local upload = mode == "upload" or mode == "upload1"
local MSGSIZE, REPLY = 512, "reply"
local RSIZE = #REPLY
local message = string.rep("x", MSGSIZE)

local served, replied = 0, 0

-- Closes `handle` once its `nwrites` write callbacks have run and, if
-- `reading`, `read()` was called.
local function closer(handle, nwrites, reading)
	local state = { writes = nwrites, reading = reading }
	function state.check()
		if state.writes == 0 and not state.reading then handle:close() end
	end
	function state.wrote(err)
		assert(not err, err)
		state.writes = state.writes - 1
		state.check()
	end
	function state.read()
		state.reading = false
		state.check()
	end
	return state
end

-- Starts reading `handle`, counting units of `size` bytes; calls
-- `onunit()` after each, and `ondone()` after `msgs` of them.
local function count(handle, size, onunit, ondone)
	local got, units = 0, 0
	assert(handle:read_start(function(err, data)
		assert(not err, err)
		assert(data, "unexpected end of file")
		got = got + #data
		while got >= size do
			got, units = got - size, units + 1
			if onunit then onunit() end
		end
		if units == msgs then
			assert(got == 0, "extra bytes")
			handle:read_stop()
			ondone()
		end
	end))
end

local function serve(conn)
	if upload then
		count(conn, MSGSIZE, nil, function()
			served = served + msgs
			conn:close()
		end)
	else
		local c = closer(conn, msgs, true)
		count(conn, MSGSIZE, function() assert(conn:write(REPLY, c.wrote)) end, function()
			served = served + msgs
			c.read()
		end)
	end
end

local function client(sock)
	if upload then
		local c = closer(sock, msgs, false)
		for _ = 1, msgs do assert(sock:write(message, c.wrote)) end
	elseif mode == "serial" then
		local c = closer(sock, msgs, true)
		local sent = 1
		assert(sock:write(message, c.wrote))
		count(sock, RSIZE, function()
			if sent < msgs then
				sent = sent + 1
				assert(sock:write(message, c.wrote))
			end
		end, function()
			replied = replied + msgs
			c.read()
		end)
	else -- multiplex
		local c = closer(sock, msgs, true)
		for _ = 1, msgs do assert(sock:write(message, c.wrote)) end
		count(sock, RSIZE, nil, function()
			replied = replied + msgs
			c.read()
		end)
	end
end

local t0 = uv.hrtime()
local server = uv.new_tcp()
assert(server:bind("127.0.0.1", 0))
local accepted = 0
assert(server:listen(128, function(err)
	assert(not err, err)
	local conn = uv.new_tcp()
	assert(server:accept(conn))
	accepted = accepted + 1
	if accepted == conns then server:close() end
	serve(conn)
end))
local port = server:getsockname().port

for _ = 1, conns do
	local sock = uv.new_tcp()
	assert(sock:connect("127.0.0.1", port, function(err)
		assert(not err, err)
		client(sock)
	end))
end
uv.run()
local secs = (uv.hrtime() - t0) / 1e9

assert(served == conns * msgs, "messages lost")
assert(upload or replied == conns * msgs, "replies lost")
print(string.format("inner %.6f", secs))
print("ops " .. conns * msgs)
