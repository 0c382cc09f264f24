-- udp, luv (for reference): the same workload as udp-coutil.lua with luv's
-- callbacks: each client sends its next datagram from the receive
-- callback of the previous reply; the server replies from its receive
-- callback to the sender's address.
local uv = require "luv"

local conns, msgs = 64, 512
local MSGSIZE, REPLY = 512, "reply"
local message = string.rep("x", MSGSIZE)

local t0 = uv.hrtime()
local server = uv.new_udp()
assert(server:bind("127.0.0.1", 0))
local port = server:getsockname().port
local served, replied = 0, 0

assert(server:recv_start(function(err, data, addr)
	assert(not err, err)
	if not data then return end
	assert(#data == MSGSIZE)
	served = served + 1
	local last = served == conns * msgs
	if last then server:recv_stop() end
	assert(server:send(REPLY, addr.ip, addr.port, function(e)
		assert(not e, e)
		if last then server:close() end
	end))
end))
for _ = 1, conns do
	local sock = uv.new_udp()
	assert(sock:bind("127.0.0.1", 0))
	local sent = 1
	assert(sock:recv_start(function(err, data)
		assert(not err, err)
		if not data then return end
		assert(#data == #REPLY)
		replied = replied + 1
		if sent == msgs then
			sock:recv_stop()
			sock:close()
		else
			sent = sent + 1
			assert(sock:send(message, "127.0.0.1", port, function(e) assert(not e, e) end))
		end
	end))
	assert(sock:send(message, "127.0.0.1", port, function(e) assert(not e, e) end))
end
uv.run()
local secs = (uv.hrtime() - t0) / 1e9
assert(replied == conns * msgs, "replies lost")
print(string.format("secs %.6f", secs))
print("ops " .. conns * msgs)
