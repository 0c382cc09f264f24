-- udp: 64 client sockets each send a 512-byte datagram to one server
-- socket and wait for its 5-byte reply, 512 times; the server (one
-- coroutine) reads each datagram with its sender's address and writes the
-- reply there. All in this process on 127.0.0.1, one loop. Prints secs
-- (from before the first socket to the end of the loop) and ops (round
-- trips).
local system = require "coutil.system"
local memory = require "coutil.memory"

local conns, msgs = 64, 512
local MSGSIZE, REPLY = 512, "reply"
local message = string.rep("x", MSGSIZE)
local failures = {}
local function spawn(f)
	coroutine.wrap(function()
		local ok, err = xpcall(f, debug.traceback)
		if not ok then failures[#failures + 1] = err end
	end)()
end

local t0 = system.nanosecs()
local server = assert(system.socket("datagram", "ipv4"))
assert(server:bind(system.address("ipv4", "127.0.0.1:0")))
local address = server:getaddress()
local replied = 0

spawn(function()
	local buf = memory.create(2048)
	local from = system.address("ipv4")
	for _ = 1, conns * msgs do
		assert(assert(server:read(buf, 1, -1, from)) == MSGSIZE)
		assert(server:write(REPLY, 1, -1, from))
	end
	server:close()
end)
for _ = 1, conns do
	spawn(function()
		local sock = assert(system.socket("datagram", "ipv4"))
		assert(sock:bind(system.address("ipv4", "127.0.0.1:0")))
		assert(sock:connect(address))
		local buf = memory.create(64)
		for _ = 1, msgs do
			assert(sock:write(message))
			assert(assert(sock:read(buf)) == #REPLY)
			replied = replied + 1
		end
		sock:close()
	end)
end
system.run()
local secs = (system.nanosecs() - t0) / 1e9
if #failures > 0 then error(failures[1], 0) end
assert(replied == conns * msgs, "replies lost")
print(string.format("secs %.6f", secs))
print("ops " .. conns * msgs)
