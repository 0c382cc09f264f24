-- Stress: N echo connections at once over loopback TCP (N = arg[1],
-- default 2000), each sending messages of varying sizes that the server
-- echoes; every byte is checked. Needs 2 descriptors per connection.
local system = require "coutil.system"
local memory = require "coutil.memory"

local count = tonumber(arg[1]) or 2000
local rounds = 4
local failures = {}
local function spawn(f)
	coroutine.wrap(function()
		local ok, err = xpcall(f, debug.traceback)
		if not ok then failures[#failures + 1] = err end
	end)()
end

-- The message of connection `c`, round `r`: 1 to 9000 bytes, distinct.
local function message(c, r)
	local size = 1 + (c * 7919 + r * 104729) % 9000
	local seed = string.format("<%d:%d>", c, r)
	return (seed:rep(size // #seed + 1)):sub(1, size)
end

local server = assert(system.socket("passive", "ipv4"))
assert(server:bind(system.address("ipv4", "127.0.0.1:0")))
assert(server:listen(count))
local address = server:getaddress()

spawn(function()
	for _ = 1, count do
		local s = assert(server:accept())
		spawn(function()
			local buf = memory.create(4096)
			while true do
				local n, err = s:read(buf)
				if not n then
					assert(err == "end of file", err)
					break
				end
				assert(s:write(buf, 1, n))
			end
			s:close()
		end)
	end
	server:close()
end)

local done = 0
for c = 1, count do
	spawn(function()
		local s = assert(system.socket("stream", "ipv4"))
		assert(s:connect(address))
		local buf = memory.create(16384)
		for r = 1, rounds do
			local msg = message(c, r)
			assert(s:write(msg))
			local got = 0
			while got < #msg do
				local n = assert(s:read(buf, got + 1, #msg))
				got = got + n
			end
			assert(buf:tostring(1, #msg) == msg, "corrupted echo")
		end
		assert(s:shutdown())
		local n, err = s:read(buf)
		assert(n == false and err == "end of file", "extra bytes")
		s:close()
		done = done + 1
	end)
end

system.run()
if #failures > 0 then error(failures[1], 0) end
assert(done == count, "connections lost: " .. done .. " of " .. count)
print("echo", count, "connections ok")
