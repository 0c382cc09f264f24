-- Extension E6 (doc/manual.md, "Extensions"): system.socket("stream",
-- "pair"), the two ends of a pipe as coutil:pipeactive streams.
local T = require "testlib"
local system = require "coutil.system"
local memory = require "coutil.memory"

local go = T.go
local settle = T.settle
local unyieldable = T.unyieldable

local NOTSUP = { false, "operation not supported on socket", 95 }
local BADF = { false, "bad file descriptor", 9 }

T.case("pair: two ends, class, domain, methods", function()
	local rd, wr = system.socket("stream", "pair")
	for _, s in ipairs({ rd, wr }) do
		assert(tostring(s):find("^coutil:pipeactive: "), tostring(s))
		T.same({ "pair" }, s:getdomain())
		T.methods(s, { "close", "getdomain", "getaddress", "bind", "setoption", "connect", "write", "read", "shutdown" })
	end
	assert(rd ~= wr)
	T.same({ true }, rd:close())
	T.same({ true }, wr:close())
	T.raises("closed object", rd.getdomain, rd)
end)

T.case("pair: only with stream; bad options raise", function()
	T.same({ false, "socket type not supported", 3011 }, system.socket("datagram", "pair"))
	T.same({ false, "socket type not supported", 3011 }, system.socket("passive", "pair"))
	T.raises("invalid option 'pairs'", system.socket, "stream", "pairs")
	T.raises("bad argument #1", system.socket, "pair", "stream")
end)

T.case("pair: no address, no bind, no connect, no permission", function()
	local rd, wr = system.socket("stream", "pair")
	for _, s in ipairs({ rd, wr }) do
		T.same(NOTSUP, s:bind(T.tmppath()))
		T.same(NOTSUP, s:bind())
		T.same(NOTSUP, s:getaddress())
		T.same(NOTSUP, s:getaddress("peer"))
		T.raises("invalid option 'other'", s.getaddress, s, "other")
		T.same(NOTSUP, s:setoption("permission", "rw"))
		T.raises("unknown option (got 'x')", s.setoption, s, "permission", "x")
		T.raises("invalid option 'nodelay'", s.setoption, s, "nodelay", true)
		T.same({ false, "unable to yield" }, unyieldable(s.connect, s, "x"))
	end
	go(function()
		-- connect suspends (R1) and the loop delivers the failure
		local other = false
		T.spawn(function() other = true end)
		local done = false
		T.spawn(function()
			T.same(NOTSUP, rd:connect(T.tmppath()))
			T.same(NOTSUP, wr:connect())
			done = true
		end)
		assert(not done)
		settle()
		assert(done and other)
	end)
	rd:close()
	wr:close()
end)

T.case("pair: read, write, shutdown, end of file", function()
	go(function()
		local rd, wr = system.socket("stream", "pair")
		local buf = memory.create(16)
		T.same({ true }, wr:write("hello world", 7))
		T.same({ 5 }, rd:read(buf, 3, 7))
		T.same({ "world" }, buf:tostring(3, 7))
		T.same({ true }, wr:write(memory.create("again")))
		T.same({ true }, wr:shutdown())
		T.same({ 5 }, rd:read(buf))
		T.same({ "again" }, buf:tostring(1, 5))
		T.same({ false, "end of file", 4095 }, rd:read(buf))
		T.same({ false, "end of file", 4095 }, rd:read(buf))
		T.same({ false, "broken pipe", 32 }, wr:write("late"))
		T.same({ false, "socket is not connected", 107 }, wr:shutdown())
		rd:close()
		wr:close()
	end)
end)

T.case("pair: the wrong direction fails with bad file descriptor", function()
	go(function()
		local rd, wr = system.socket("stream", "pair")
		T.same(BADF, rd:write("x"))
		T.same(BADF, rd:shutdown())
		T.same(BADF, wr:read(memory.create(4)))
		-- argument errors come first, as for every socket
		T.raises("memory expected", wr.read, wr, "x")
		T.raises("memory expected", rd.write, rd)
		T.same({ true }, wr:write("ok"))
		T.same({ 2 }, rd:read(memory.create(4)))
		rd:close()
		wr:close()
	end)
end)

T.case("pair: shutdown waits for the queued writes", function()
	go(function()
		local rd, wr = system.socket("stream", "pair")
		local size = 1024 * 1024 -- more than a pipe holds
		local wrote, shut
		T.spawn(function() wrote = table.pack(wr:write(string.rep("x", size))) end)
		T.spawn(function() shut = table.pack(wr:shutdown()) end)
		local data = T.readall(rd)
		assert(#data == size and data == string.rep("x", size), #data)
		settle()
		T.same({ n = 1, true }, table.unpack(wrote, 1, wrote.n))
		T.same({ n = 1, true }, table.unpack(shut, 1, shut.n))
		rd:close()
		wr:close()
	end)
end)

T.case("pair: closing ends", function()
	go(function()
		local rd, wr = system.socket("stream", "pair")
		rd:close()
		T.same({ false, "broken pipe", 32 }, wr:write("nobody reads"))
		wr:close()
		rd, wr = system.socket("stream", "pair")
		wr:close()
		T.same({ false, "end of file", 4095 }, rd:read(memory.create(4)))
		local res
		T.spawn(function() res = table.pack(rd:read(memory.create(4))) end)
		T.raises("already in use", rd.read, rd, memory.create(4))
		rd:close()
		settle()
		T.same({ n = 2, false, "closed" }, table.unpack(res, 1, res.n))
	end)
end)

T.case("pair: cancelled reads lose no data", function()
	go(function()
		local rd, wr = system.socket("stream", "pair")
		local buf = memory.create("....")
		local res
		local co = T.spawn(function() res = table.pack(rd:read(buf)) end)
		T.spawn(function() assert(wr:write("data")) end)
		coroutine.resume(co, "stop")
		T.same({ n = 1, "stop" }, table.unpack(res, 1, res.n))
		settle()
		T.same({ "...." }, buf:tostring())
		T.same({ 4 }, rd:read(buf))
		T.same({ "data" }, buf:tostring())
		rd:close()
		wr:close()
	end)
end)

T.case("pair: ends as standard streams of execute", function()
	go(function()
		local inrd, inwr = system.socket("stream", "pair")
		local outrd, outwr = system.socket("stream", "pair")
		local status
		T.spawn(function()
			status = table.pack(system.execute { execfile = "cat", stdin = inrd, stdout = outwr })
		end)
		-- the child has its copies: ours would keep the pipes open
		inrd:close()
		outwr:close()
		local text = string.rep("pair test line\n", 1000)
		T.spawn(function()
			assert(inwr:write(text))
			assert(inwr:shutdown()) -- cat sees end of file and exits
		end)
		T.same({ text }, T.readall(outrd))
		settle()
		while not status do system.suspend(0.01) end
		T.same({ n = 2, "exit", 0 }, table.unpack(status, 1, status.n))
		inwr:close()
		outrd:close()
	end)
end)

T.done()
