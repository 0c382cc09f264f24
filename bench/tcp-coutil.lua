-- tcp-upload, tcp-serial, tcp-multiplex, coutil: a server and its clients
-- in this process, on 127.0.0.1, one loop (system.run()), one coroutine per
-- connection end (two in multiplex: a writer and a reader). Mode (the
-- argument):
--   upload     64 clients each write 512 messages of 512 bytes; the server
--              reads them all
--   upload1    the native reference's upload: 1 client writes
--              2 × 64 × 512 = 65 536 messages
--   serial     64 clients each send a message and wait for the 5-byte reply
--              "reply", 512 times; the server replies to each full message
--   multiplex  as serial, but a writer coroutine sends all 512 messages
--              while a reader coroutine takes the replies, on both sides
--              (the server's reader wakes its writer, waiting on an event,
--              once per read that completed messages)
-- Every message and reply is its own write. Reads take what is there into a
-- 64 KiB buffer (libuv's and the native reference's size) and count the
-- bytes: a message counts once its 512 bytes are in, whatever pieces they
-- came in. Prints inner (seconds from before the listening socket to the
-- end of the loop: what the native reference times) and ops (messages
-- sent by the clients). bench/run times the whole process.
local system = require "coutil.system"
local memory = require "coutil.memory"
local event = require "coutil.event"

local mode = arg[1] or "serial"
local conns, msgs = 64, 512
if mode == "upload1" then conns, msgs = 1, 2 * 64 * 512 end
-- serial-within: serial with each round trip of the clients inside
-- coutil.await.within(5, ...), a deadline that never passes
local within = mode == "serial-within" and require("coutil.await").within
if within then mode = "serial" end
assert(mode == "upload" or mode == "upload1" or mode == "serial" or mode == "multiplex",
	"unknown mode " .. mode)
local upload = mode == "upload" or mode == "upload1"
local MSGSIZE, REPLY, BUFSIZE = 512, "reply", 65536
local RSIZE = #REPLY
local message = string.rep("x", MSGSIZE)

local failures = {}
local function spawn(f, ...)
	coroutine.wrap(function(...)
		local ok, err = xpcall(f, debug.traceback, ...)
		if not ok then failures[#failures + 1] = err end
	end)(...)
end

-- Closes `sock` when both of its coroutines are done (multiplex).
local function halfdone(state)
	state.halves = state.halves + 1
	if state.halves == 2 then state.sock:close() end
end

local served, replied = 0, 0 -- messages taken by the servers, replies taken by the clients

-- Reads messages until `msgs` are in; after each one, `onmessage()`, and
-- after each read that completed some, `onread(count)` (count so far).
local function readmessages(sock, onmessage, onread)
	local buf = memory.create(BUFSIZE)
	local got, count = 0, 0
	while count < msgs do
		local n = assert(sock:read(buf))
		got = got + n
		if got >= MSGSIZE then
			repeat
				got, count = got - MSGSIZE, count + 1
				if onmessage then onmessage() end
			until got < MSGSIZE
			if onread then onread(count) end
		end
	end
	assert(got == 0, "extra bytes")
	served = served + count
end

-- Reads replies until `msgs` are in; after each one, `onreply()`.
local function readreplies(sock, onreply)
	local buf = memory.create(BUFSIZE)
	local got, count = 0, 0
	while count < msgs do
		local n = assert(sock:read(buf))
		got = got + n
		while got >= RSIZE do
			got, count = got - RSIZE, count + 1
			if onreply then onreply() end
		end
	end
	assert(got == 0, "extra bytes")
	replied = replied + count
end

local serve, client
if upload then
	function serve(sock)
		readmessages(sock)
		sock:close()
	end
	function client(sock)
		for _ = 1, msgs do assert(sock:write(message)) end
		sock:close()
	end
elseif mode == "serial" then
	function serve(sock)
		readmessages(sock, function() assert(sock:write(REPLY)) end)
		sock:close()
	end
	function client(sock)
		local buf = memory.create(BUFSIZE)
		local function roundtrip()
			assert(sock:write(message))
			local got = 0
			repeat got = got + assert(sock:read(buf)) until got >= RSIZE
			assert(got == RSIZE, "extra bytes")
			replied = replied + 1
		end
		for _ = 1, msgs do
			if within then within(5, roundtrip) else roundtrip() end
		end
		sock:close()
	end
else -- multiplex
	function serve(sock)
		-- the reader counts the messages in; the writer sends one reply for
		-- each, and waits on `state` (an event) when it has caught up, until
		-- the reader has read more
		local state = { sock = sock, halves = 0, arrived = 0, waiting = false }
		spawn(function()
			local sent = 0
			while sent < msgs do
				if sent == state.arrived then
					state.waiting = true
					event.await(state)
				end
				assert(sock:write(REPLY))
				sent = sent + 1
			end
			halfdone(state)
		end)
		readmessages(sock, nil, function(count)
			state.arrived = count
			if state.waiting then
				state.waiting = false
				event.emitone(state)
			end
		end)
		halfdone(state)
	end
	function client(sock)
		local state = { sock = sock, halves = 0 }
		spawn(function()
			for _ = 1, msgs do assert(sock:write(message)) end
			halfdone(state)
		end)
		readreplies(sock)
		halfdone(state)
	end
end

local t0 = system.nanosecs()
local server = assert(system.socket("passive", "ipv4"))
assert(server:bind(system.address("ipv4", "127.0.0.1:0")))
assert(server:listen(128)) -- as Rust's TcpListener (the native reference)
local address = server:getaddress()

spawn(function()
	for _ = 1, conns do spawn(serve, assert(server:accept())) end
	server:close()
end)
for _ = 1, conns do
	spawn(function()
		local sock = assert(system.socket("stream", "ipv4"))
		assert(sock:connect(address))
		client(sock)
	end)
end
system.run()
local secs = (system.nanosecs() - t0) / 1e9

if #failures > 0 then error(failures[1], 0) end
assert(served == conns * msgs, "messages lost")
assert(upload or replied == conns * msgs, "replies lost")
print(string.format("inner %.6f", secs))
print("ops " .. conns * msgs)
