-- Extension E5 (doc/manual.md, "Extensions"): local datagram sockets,
-- system.socket("datagram", "local") → coutil:pipedgram, named by paths.
local T = require "testlib"
local system = require "coutil.system"
local memory = require "coutil.memory"

local unyieldable = T.unyieldable
local settle = T.settle
local go = T.go
local tmppath = T.tmppath

local function exists(path)
	return os.rename(path, path) == true
end

local function bound()
	local s = assert(system.socket("datagram", "local"))
	local path = tmppath()
	assert(s:bind(path))
	return s, path
end

T.case("local datagram: class, domain and method set", function()
	local s = system.socket("datagram", "local")
	assert(tostring(s):find("^coutil:pipedgram: "), tostring(s))
	T.same({ "local" }, s:getdomain())
	T.methods(s, { "close", "getdomain", "getaddress", "bind", "setoption", "connect", "write", "read" })
	T.same({ true }, s:close())
	T.raises("closed object", s.getdomain, s)
	T.raises("closed object", s.close, s)
	-- "share" datagrams are still not supported
	T.same({ false, "socket type not supported", 3011 }, system.socket("datagram", "share"))
end)

T.case("local datagram: bind, getaddress, paths", function()
	local s = system.socket("datagram", "local")
	-- as local streams: no address before bind or connect
	T.same({ false, "bad file descriptor", 9 }, s:getaddress())
	T.raises("string expected, got no value", s.bind, s)
	T.raises("string expected, got table", s.bind, s, {})
	T.same({ false, "invalid argument", 22 }, s:bind("with\0nul"))
	T.same({ false, "name too long", 36 }, s:bind(string.rep("x", 200)))
	local path = tmppath()
	T.same({ true }, s:bind(path))
	assert(exists(path))
	T.same({ path }, s:getaddress())
	T.same({ path }, s:getaddress("self"))
	T.same({ false, "socket is not connected", 107 }, s:getaddress("peer"))
	T.raises("invalid option 'other'", s.getaddress, s, "other")
	T.same({ false, "invalid argument", 22 }, s:bind(tmppath())) -- bound already
	local q = system.socket("datagram", "local")
	T.same({ false, "address already in use", 98 }, q:bind(path))
	q:close()
	T.same({ true }, s:setoption("permission", "rw"))
	T.raises("unknown option (got 'x')", s.setoption, s, "permission", "x")
	T.raises("invalid option 'broadcast'", s.setoption, s, "broadcast", true)
	-- closing removes the path, as for local streams
	s:close()
	assert(not exists(path))
end)

T.case("local datagram: datagrams, truncation, senders", function()
	go(function()
		local a, apath = bound()
		local b, bpath = bound()
		T.same({ true }, a:write("hello", 1, -1, bpath))
		local buf = memory.create(10)
		T.same({ 5, false, apath }, b:read(buf))
		T.same({ "hello" }, buf:tostring(1, 5))
		-- ranges; a datagram larger than the range is truncated
		T.same({ true }, a:write(memory.create("0123456789"), 3, 8, bpath))
		T.same({ 3, true, apath }, b:read(buf, 8))
		T.same({ "234" }, buf:tostring(8, 10))
		-- empty datagrams
		T.same({ true }, a:write("", 1, -1, bpath))
		T.same({ 0, false, apath }, b:read(buf))
		-- one datagram per read, in order
		assert(a:write("one", 1, -1, bpath))
		assert(a:write("two", 1, -1, bpath))
		T.same({ 3, false, apath }, b:read(buf))
		T.same({ "one" }, buf:tostring(1, 3))
		T.same({ 3, false, apath }, b:read(buf))
		T.same({ "two" }, buf:tostring(1, 3))
		-- an unnamed sender
		local u = system.socket("datagram", "local")
		T.same({ true }, u:write("anon", 1, -1, bpath))
		T.same({ n = 3, 4, false, nil }, b:read(buf))
		-- failures of the destination, delivered by the loop
		T.same({ false, "no such file or directory", 2 }, u:write("x", 1, -1, tmppath()))
		T.same({ false, "invalid argument", 22 }, u:write("x", 1, -1, "bad\0path"))
		T.same({ false, "name too long", 36 }, u:write("x", 1, -1, string.rep("x", 200)))
		u:close()
		a:close()
		b:close()
	end)
end)

T.case("local datagram: connect sets and clears the default peer", function()
	go(function()
		local a, apath = bound()
		local b, bpath = bound()
		T.same({ false, "socket is not connected", 107 }, a:connect())
		T.same({ false, "no such file or directory", 2 }, a:connect(tmppath()))
		T.same({ false, "invalid argument", 22 }, a:connect("bad\0path"))
		T.raises("string expected, got table", a.connect, a, {})
		T.same({ true }, a:connect(bpath))
		T.same({ bpath }, a:getaddress("peer"))
		T.same({ false, "socket is already connected", 106 }, a:connect(bpath))
		-- the path of a connected socket's write is ignored
		T.same({ true }, a:write("to peer"))
		T.same({ true }, a:write("still to peer", 1, -1, apath))
		local buf = memory.create(20)
		T.same({ 7, false, apath }, b:read(buf))
		T.same({ 13, false, apath }, b:read(buf))
		T.same({ "still to peer" }, buf:tostring(1, 13))
		T.same({ true }, a:connect(nil))
		T.same({ false, "socket is not connected", 107 }, a:getaddress("peer"))
		T.raises("string expected, got no value", a.write, a, "x")
		T.same({ true }, a:connect(bpath))
		T.same({ true }, a:connect())
		-- connected without a name: it has an address now (unnamed)
		local c = system.socket("datagram", "local")
		T.same({ true }, c:connect(bpath))
		T.same({ "" }, c:getaddress())
		T.same({ bpath }, c:getaddress("peer"))
		T.same({ true }, c:write("from c"))
		T.same({ n = 3, 6, false, nil }, b:read(buf))
		-- a connected socket whose peer went away
		b:close()
		T.same({ false, "connection refused", 111 }, c:write("gone"))
		c:close()
		a:close()
	end)
end)

T.case("local datagram: argument errors and their order", function()
	local s = system.socket("datagram", "local")
	T.async(function()
		T.raises("string expected, got no value", s.write, s, "x")
		-- R3: the destination of an unconnected socket comes first
		T.raises("bad argument #5 to '?' (string expected, got no value)", s.write, s)
		T.raises("memory expected, got nil", s.write, s, nil, 1, -1, tmppath())
		T.raises("number has no integer representation", s.write, s, "x", 0.5, -1, tmppath())
	end)
	-- outside a coroutine, before the other arguments
	T.same({ false, "unable to yield" }, unyieldable(s.write, s))
	T.raises("memory expected, got string", s.read, s, "x")
	T.raises("number has no integer representation", s.read, s, memory.create(1), 0.5)
	-- read: its arguments first, then the coroutine
	local ok, msg = unyieldable(s.read, s)
	assert(not ok and msg:find("memory expected, got no value", 1, true), msg)
	ok, msg = unyieldable(s.read, s, memory.create(1))
	assert(not ok and msg:find("unable to yield", 1, true), msg)
	T.same({ true, true }, unyieldable(function() return s:connect(nil) or true end)) -- not an await
	s:close()
	T.raises("closed object", s.write, s)
	T.raises("closed object", s.read, s)
end)

T.case("local datagram: awaits suspend (R1)", function()
	go(function()
		local a, apath = bound()
		local b, bpath = bound()
		local order = {}
		T.spawn(function()
			order[#order + 1] = "write"
			assert(a:write("x", 1, -1, bpath))
			order[#order + 1] = "written"
		end)
		T.spawn(function() order[#order + 1] = "other" end)
		T.same({ "write", "other" }, table.unpack(order))
		settle()
		T.same({ "write", "other", "written" }, table.unpack(order))
		-- a datagram waits already: read still suspends
		local got
		T.spawn(function() got = table.pack(b:read(memory.create(4))) end)
		assert(got == nil)
		settle()
		T.same({ n = 3, 1, false, apath }, table.unpack(got, 1, got.n))
		a:close()
		b:close()
	end)
end)

T.case("local datagram: cancelled reads; one reader; close wakes the reader", function()
	go(function()
		local a, apath = bound()
		local b, bpath = bound()
		local buf = memory.create("....")
		local res
		local co = T.spawn(function() res = table.pack(b:read(buf)) end)
		T.raises("already in use", b.read, b, buf)
		assert(a:write("data", 1, -1, bpath))
		coroutine.resume(co, "no", "more")
		T.same({ n = 2, "no", "more" }, table.unpack(res, 1, res.n))
		settle()
		T.same({ "...." }, buf:tostring())
		T.same({ 4, false, apath }, b:read(buf))
		T.same({ "data" }, buf:tostring())
		T.spawn(function() res = table.pack(b:read(buf)) end)
		b:close()
		settle()
		T.same({ n = 2, false, "closed" }, table.unpack(res, 1, res.n))
		T.raises("closed object", b.read, b, buf)
		T.raises("closed object", b.write, b, "x", 1, -1, apath)
		T.raises("closed object", b.connect, b)
		T.raises("closed object", b.setoption, b, "permission", "r")
		a:close()
	end)
end)

T.case("local datagram: many datagrams from many coroutines", function()
	go(function()
		local a = bound()
		local b, bpath = bound()
		local count = 1000 -- more than a receiver's queue holds (net.unix.max_dgram_qlen)
		for i = 1, count do
			T.spawn(function() assert(a:write("#" .. i, 1, -1, bpath)) end)
		end
		local seen = {}
		local buf = memory.create(16)
		for _ = 1, count do
			local n = assert(b:read(buf))
			seen[buf:tostring(1, n)] = true
		end
		for i = 1, count do assert(seen["#" .. i], i) end
		a:close()
		b:close()
	end)
end)

T.case("local datagram: the collector closes sockets; a pending read keeps its socket", function()
	go(function()
		local path = (function()
			local s, p = bound()
			return p
		end)()
		collectgarbage()
		collectgarbage()
		assert(not exists(path))
		local a, apath = bound()
		local holder = {}
		local bpath
		holder.b, bpath = bound()
		local res
		T.spawn(function() res = table.pack(holder.b:read(memory.create(8))) end)
		holder.b = nil
		collectgarbage()
		collectgarbage()
		assert(a:write("alive", 1, -1, bpath))
		settle()
		T.same({ n = 3, 5, false, apath }, table.unpack(res, 1, res.n))
		a:close()
	end)
end)

T.done()
