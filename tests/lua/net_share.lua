-- spec/network.md §3: passing sockets over "share" streams (SCM_RIGHTS).
local T = require "testlib"
local system = require "coutil.system"
local memory = require "coutil.memory"

local settle = T.settle
local go = T.go
local tmppath = T.tmppath

local function listener(domain)
	if domain == "ipv4" then
		local s = assert(system.socket("passive", "ipv4"))
		assert(s:bind(system.address("ipv4", "127.0.0.1:0")))
		assert(s:listen(8))
		return s, s:getaddress()
	end
	local path = tmppath()
	local s = assert(system.socket("passive", domain))
	assert(s:bind(path))
	assert(s:listen(8))
	return s, path
end

local function pair(domain)
	local l, a = listener(domain)
	local c = assert(system.socket("stream", domain))
	assert(c:connect(a))
	local s = assert(l:accept())
	l:close()
	return c, s
end

-- Checks that `a` and `b` are the two ends of one connection.
local function talk(a, b)
	local buf = memory.create(8)
	assert(a:write("ping"))
	T.same({ 4 }, b:read(buf))
	T.same({ "ping" }, buf:tostring(1, 4))
	assert(b:write("pong"))
	T.same({ 4 }, a:read(buf))
	T.same({ "pong" }, buf:tostring(1, 4))
end

T.case("a TCP connection passed in both directions", function()
	go(function()
		local sc, ss = pair("share")
		assert(tostring(ss):find("^coutil:pipeshare: "))
		local tc, ts = pair("ipv4")
		-- client to server
		T.same({ true }, sc:write("a", 1, 1, ts))
		local buf = memory.create(4)
		local n, got = ss:read(buf)
		T.same({ 1, "a" }, n, buf:tostring(1, 1))
		assert(tostring(got):find("^coutil:tcpactive: "), tostring(got))
		T.same({ "ipv4" }, got:getdomain())
		T.same({ ts:getaddress("peer") }, got:getaddress("peer"))
		talk(tc, got)
		-- the sender's object is still open and usable
		talk(tc, ts)
		-- server to client, with data before and after
		T.same({ true }, ss:write("xyz", 1, -1, got))
		local got2
		n, got2 = sc:read(buf)
		T.same({ 3, "xyz" }, n, buf:tostring(1, 3))
		assert(tostring(got2):find("^coutil:tcpactive: "), tostring(got2))
		talk(tc, got2)
		-- plain reads return only the count
		assert(ss:write("plain"))
		T.same({ 4 }, sc:read(buf))
		T.same({ 1 }, sc:read(buf))
		for _, s in ipairs({ got, got2, ts, tc, sc, ss }) do s:close() end
	end)
end)

T.case("every kind of stream socket may be passed", function()
	go(function()
		local sc, ss = pair("share")
		local buf = memory.create(4)
		local function pass(sock, class, domain)
			assert(sc:write("!", 1, 1, sock))
			local n, got = ss:read(buf)
			T.same({ 1 }, n)
			assert(tostring(got):find("^coutil:" .. class .. ": "), class .. " expected, got " .. tostring(got))
			T.same({ domain }, got:getdomain())
			return got
		end
		local lc, ls = pair("local")
		local got = pass(lc, "pipeactive", "local")
		talk(got, ls)
		got:close()
		local tp = listener("ipv4")
		pass(tp, "tcpactive", "ipv4"):close()
		local pp = listener("local")
		pass(pp, "pipeactive", "local"):close()
		local other = system.socket("stream", "share")
		pass(other, "pipeactive", "local"):close()
		pass(ss, "pipeactive", "local"):close() -- even itself
		for _, s in ipairs({ lc, ls, tp, pp, other, sc, ss }) do s:close() end
	end)
end)

T.case("a passed socket keeps working after the sender closes its object", function()
	go(function()
		local sc, ss = pair("share")
		local tc, ts = pair("ipv4")
		local big = string.rep("q", 8 * 1024 * 1024)
		local wrote
		-- queued behind a large write: the descriptor travels with the data
		T.spawn(function() wrote = table.pack(sc:write(big, 1, -1, ts)) end)
		ts:close()
		local buf = memory.create(1024 * 1024)
		local total, got = 0, nil
		while total < #big do
			local n, sock = assert(ss:read(buf))
			if sock then
				assert(got == nil)
				got = sock
			end
			total = total + n
		end
		T.same({ #big }, total)
		assert(got, "no socket received")
		settle()
		T.same({ n = 1, true }, table.unpack(wrote, 1, wrote.n))
		talk(tc, got)
		for _, s in ipairs({ got, tc, sc, ss }) do s:close() end
	end)
end)

T.case("write argument errors on share streams", function()
	go(function()
		local sc, ss = pair("share")
		local udp = system.socket("datagram", "ipv4")
		T.raises("writable object expected", sc.write, sc, "x", 1, 1, udp)
		T.raises("writable object expected", sc.write, sc, "x", 1, 1, memory.create(1))
		T.raises("writable object expected", sc.write, sc, "x", 1, 1, "string")
		local closed = system.socket("stream", "ipv4")
		closed:close()
		T.raises("closed object", sc.write, sc, "x", 1, 1, closed)
		udp:close()
		-- a socket needs data to travel with
		local tc, ts = pair("ipv4")
		T.same({ false, "invalid argument", 22 }, sc:write("", 1, -1, ts))
		T.same({ false, "invalid argument", 22 }, sc:write("abc", 3, 2, ts))
		tc:close()
		ts:close()
		-- local (not share) streams ignore the extra argument
		local lc, ls = pair("local")
		T.same({ true }, lc:write("x", 1, 1, ls))
		T.same({ 1 }, ls:read(memory.create(1)))
		for _, s in ipairs({ lc, ls, sc, ss }) do s:close() end
	end)
end)

T.case("received sockets are closed by the collector", function()
	go(function()
		local sc, ss = pair("share")
		local tc, ts = pair("ipv4")
		assert(sc:write("a", 1, 1, ts))
		ts:close()
		local function receive() -- leaves no reference in this frame
			local n, got = ss:read(memory.create(1))
			T.same({ 1 }, n)
			assert(got)
		end
		receive()
		collectgarbage()
		collectgarbage()
		-- every descriptor of the server end is closed: the client sees the end
		T.same({ false, "end of file", 4095 }, tc:read(memory.create(1)))
		for _, s in ipairs({ tc, sc, ss }) do s:close() end
	end)
end)

T.done()
