-- spec/network.md §3: datagram sockets (coutil:udp) over IPv4 and IPv6.
local T = require "testlib"
local system = require "coutil.system"
local memory = require "coutil.memory"

local loopback = T.loopback

local unyieldable = T.unyieldable
local settle = T.settle
local go = T.go

local function bound(domain)
	local s = assert(system.socket("datagram", domain))
	assert(s:bind(loopback[domain]()))
	return s, s:getaddress()
end

for _, domain in ipairs({ "ipv4", "ipv6" }) do
	local addr = loopback[domain]
	local other = domain == "ipv4" and "ipv6" or "ipv4"

	T.case(domain .. ": class, domain and method set", function()
		local s = system.socket("datagram", domain)
		assert(tostring(s):find("^coutil:udp: "), tostring(s))
		T.same({ domain }, s:getdomain())
		T.methods(s, { "close", "getdomain", "getaddress", "bind", "setoption", "connect", "write", "read" })
		T.same({ true }, s:close())
		T.raises("closed object", s.getdomain, s)
		T.raises("closed object", s.close, s)
	end)

	T.case(domain .. ": bind and getaddress", function()
		local s = system.socket("datagram", domain)
		T.raises("wrong domain", s.bind, s, loopback[other]())
		T.raises("coutil:netaddress expected, got no value", s.bind, s)
		T.same({ true }, s:bind(addr()))
		local a = s:getaddress()
		assert(a.port > 0)
		local into = system.address(domain)
		T.same({ into }, s:getaddress("self", into))
		T.same({ a }, into)
		T.same({ false, "socket is not connected", 107 }, s:getaddress("peer"))
		local q = system.socket("datagram", domain)
		T.same({ false, "address already in use", 98 }, q:bind(a))
		T.same({ false, "invalid argument", 22 }, s:bind(addr()))
		q:close()
		s:close()
	end)

	T.case(domain .. ": datagrams, truncation, senders", function()
		go(function()
			local a, aaddr = bound(domain)
			local b, baddr = bound(domain)
			T.same({ true }, a:write("hello", 1, -1, baddr))
			local buf = memory.create(10)
			local from = system.address(domain)
			T.same({ 5, false }, b:read(buf, 1, -1, from))
			T.same({ "hello" }, buf:tostring(1, 5))
			T.same({ aaddr }, from)
			-- ranges; a datagram larger than the range is truncated
			T.same({ true }, a:write(memory.create("0123456789"), 3, 8, baddr))
			T.same({ 3, true }, b:read(buf, 8))
			T.same({ "234" }, buf:tostring(8, 10))
			-- empty datagrams
			T.same({ true }, a:write("", 1, -1, baddr))
			T.same({ 0, false }, b:read(buf))
			T.same({ true }, a:write("abc", 3, 2, baddr))
			T.same({ 0, false }, b:read(buf))
			-- an empty range still takes a datagram
			T.same({ true }, a:write("lost", 1, -1, baddr))
			T.same({ 0, true }, b:read(buf, 1, 0))
			-- one datagram per read
			assert(a:write("one", 1, -1, baddr))
			assert(a:write("two", 1, -1, baddr))
			T.same({ 3, false }, b:read(buf))
			T.same({ "one" }, buf:tostring(1, 3))
			T.same({ 3, false }, b:read(buf))
			T.same({ "two" }, buf:tostring(1, 3))
			a:close()
			b:close()
		end)
	end)

	T.case(domain .. ": argument errors", function()
		local s = system.socket("datagram", domain)
		T.async(function()
			T.raises("address expected, got no value", s.write, s, "x")
			T.raises("wrong domain", s.write, s, "x", 1, -1, loopback[other](9))
			-- R3: the destination of an unconnected socket comes first
			T.raises("bad argument #5 to '?' (coutil:netaddress expected, got no value)", s.write, s)
			T.raises("memory expected, got nil", s.write, s, nil, 1, -1, loopback[domain](9))
		end)
		-- outside a coroutine, before the other arguments
		T.same({ false, "unable to yield" }, unyieldable(s.write, s))
		T.raises("memory expected, got string", s.read, s, "x")
		T.raises("wrong domain", s.read, s, memory.create(1), 1, -1, loopback[other]())
		T.raises("coutil:netaddress expected, got string", s.read, s, memory.create(1), 1, -1, "x")
		T.raises("number has no integer representation", s.read, s, memory.create(1), 0.5)
		T.raises("wrong domain", s.connect, s, loopback[other](9))
		s:close()
	end)

	T.case(domain .. ": connect sets and clears the default peer", function()
		go(function()
			local a, aaddr = bound(domain)
			local b, baddr = bound(domain)
			T.same({ false, "socket is not connected", 107 }, a:connect())
			T.same({ true }, a:connect(baddr))
			T.same({ baddr }, a:getaddress("peer"))
			T.same({ false, "socket is already connected", 106 }, a:connect(baddr))
			-- the address of a connected socket's write is ignored
			T.same({ true }, a:write("to peer"))
			T.same({ true }, a:write("still to peer", 1, -1, aaddr))
			local buf = memory.create(20)
			local from = system.address(domain)
			T.same({ 7, false }, b:read(buf, 1, -1, from))
			T.same({ aaddr }, from)
			T.same({ 13, false }, b:read(buf))
			T.same({ "still to peer" }, buf:tostring(1, 13))
			T.same({ true }, a:connect(nil))
			T.same({ false, "socket is not connected", 107 }, a:getaddress("peer"))
			T.raises("address expected", a.write, a, "x")
			T.same({ true }, a:connect(baddr))
			T.same({ true }, a:connect())
			a:close()
			b:close()
		end)
	end)

	T.case(domain .. ": connection refused on a connected socket", function()
		go(function()
			local a = bound(domain)
			local port = (function()
				local b, baddr = bound(domain)
				b:close()
				return baddr.port
			end)()
			assert(a:connect(addr(port)))
			assert(a:write("anyone?"))
			settle()
			T.same({ false, "connection refused", 111 }, a:read(memory.create(8)))
			a:close()
		end)
	end)

	T.case(domain .. ": cancelled reads; one reader; close wakes the reader", function()
		go(function()
			local a, aaddr = bound(domain)
			local b, baddr = bound(domain)
			local buf = memory.create("....")
			local res
			local co = T.spawn(function() res = table.pack(b:read(buf)) end)
			T.raises("already in use", b.read, b, buf)
			assert(a:write("data", 1, -1, baddr))
			coroutine.resume(co, "no", "more")
			T.same({ n = 2, "no", "more" }, table.unpack(res, 1, res.n))
			settle()
			T.same({ "...." }, buf:tostring())
			T.same({ 4, false }, b:read(buf))
			T.same({ "data" }, buf:tostring())
			T.spawn(function() res = table.pack(b:read(buf)) end)
			b:close()
			settle()
			T.same({ n = 2, false, "closed" }, table.unpack(res, 1, res.n))
			T.raises("closed object", b.read, b, buf)
			T.raises("closed object", b.write, b, "x", 1, -1, aaddr)
			T.raises("closed object", b.connect, b)
			T.raises("closed object", b.setoption, b, "broadcast", true)
			a:close()
		end)
	end)

	T.case(domain .. ": many datagrams from many coroutines", function()
		go(function()
			local a = bound(domain)
			local b, baddr = bound(domain)
			local count = 200
			for i = 1, count do
				T.spawn(function() assert(a:write("#" .. i, 1, -1, baddr)) end)
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

	T.case(domain .. ": the collector closes sockets; a pending read keeps its socket", function()
		go(function()
			local port = (function() return bound(domain):getaddress().port end)()
			collectgarbage()
			collectgarbage()
			local again = system.socket("datagram", domain)
			T.same({ true }, again:bind(addr(port)))
			again:close()
			local a = bound(domain)
			local holder = {}
			local baddr
			holder.b, baddr = bound(domain)
			local res
			T.spawn(function() res = table.pack(holder.b:read(memory.create(8))) end)
			holder.b = nil
			collectgarbage()
			collectgarbage()
			assert(a:write("alive", 1, -1, baddr))
			settle()
			T.same({ n = 2, 5, false }, table.unpack(res, 1, res.n))
			a:close()
			do
				local t <close> = system.socket("datagram", domain)
				holder.t = t
			end
			T.raises("closed object", holder.t.getdomain, holder.t)
		end)
	end)

	T.case(domain .. ": await methods raise unable to yield outside coroutines", function()
		local s, saddr = bound(domain)
		for _, f in ipairs({
			function() return s:read(memory.create(4)) end,
			function() return s:write("x", 1, -1, saddr) end,
		}) do
			local ok, msg = unyieldable(f)
			assert(not ok and msg:find("unable to yield", 1, true), msg)
		end
		T.same({ true, true }, unyieldable(function() return s:connect(saddr) end)) -- not an await
		s:close()
	end)

	T.case(domain .. ": setoption", function()
		local s = system.socket("datagram", domain)
		assert(s:bind(domain == "ipv4" and system.address("ipv4", "0.0.0.0:0") or system.address("ipv6", "[::]:0")))
		local lo = domain == "ipv4" and "127.0.0.1" or "::1%lo"
		local group = domain == "ipv4" and "239.1.2.3" or "ff02::1:3"
		local ssm = domain == "ipv4" and "232.1.2.3" or "ff3e::1234"
		local source = domain == "ipv4" and "127.0.0.1" or "::1"
		T.same({ true }, s:setoption("broadcast", true))
		T.same({ true }, s:setoption("broadcast", false))
		T.same({ true }, s:setoption("mcastloop", true))
		T.same({ true }, s:setoption("mcastloop", false))
		T.same({ true }, s:setoption("mcastttl", 1))
		T.same({ true }, s:setoption("mcastttl", 255))
		T.raises("must be from 1 upto 255", s.setoption, s, "mcastttl", 0)
		T.raises("must be from 1 upto 255", s.setoption, s, "mcastttl", 256)
		T.raises("number expected, got no value", s.setoption, s, "mcastttl")
		T.same({ true }, s:setoption("mcastiface", lo))
		T.same({ true }, s:setoption("mcastiface", nil))
		T.same({ true }, s:setoption("mcastiface"))
		T.same({ false, "invalid argument", 22 }, s:setoption("mcastiface", "localhost"))
		T.same({ true }, s:setoption("mcastjoin", group))
		T.same({ true }, s:setoption("mcastleave", group))
		T.same({ false, "address not available", 99 }, s:setoption("mcastleave", group))
		T.same({ true }, s:setoption("mcastjoin", group, lo))
		T.same({ true }, s:setoption("mcastleave", group, lo))
		T.same({ true }, s:setoption("mcastjoin", ssm, nil, source))
		T.same({ true }, s:setoption("mcastleave", ssm, nil, source))
		T.same({ false, "invalid argument", 22 }, s:setoption("mcastjoin", "not.a.group"))
		T.same({ false, "invalid argument", 22 }, s:setoption("mcastjoin", group, "bad iface"))
		T.same({ false, "invalid argument", 22 }, s:setoption("mcastjoin", ssm, nil, "bad source"))
		-- A literal of the other family is not refused by us: the kernel
		-- answers (see the case on the family of the literal below).
		if domain == "ipv4" then
			T.same({ false, "protocol not available", 92 }, s:setoption("mcastjoin", "::1"))
		else
			T.same({ false, "invalid argument", 22 }, s:setoption("mcastjoin", "127.0.0.1"))
		end
		T.raises("string expected, got no value", s.setoption, s, "mcastjoin")
		T.raises("string expected, got no value", s.setoption, s)
		T.raises("invalid option 'nodelay'", s.setoption, s, "nodelay", true)
		T.raises("invalid option 'permission'", s.setoption, s, "permission", "r")
		s:close()
	end)
end

T.case("multicast options follow the family of the literal, not the socket's", function()
	-- An IPv6 socket takes IPv4 multicast options (Linux hands them to the
	-- IPv4 layer); an IPv4 socket refuses IPv6 ones.
	local s6 = system.socket("datagram", "ipv6")
	T.same({ true }, s6:setoption("mcastiface", "127.0.0.1"))
	T.same({ true }, s6:setoption("mcastjoin", "239.5.6.7", "127.0.0.1"))
	T.same({ true }, s6:setoption("mcastleave", "239.5.6.7", "127.0.0.1"))
	T.same({ false, "address not available", 99 }, s6:setoption("mcastleave", "239.5.6.7", "127.0.0.1"))
	T.same({ true }, s6:setoption("mcastjoin", "232.5.6.7", "127.0.0.1", "127.0.0.2"))
	T.same({ true }, s6:setoption("mcastleave", "232.5.6.7", "127.0.0.1", "127.0.0.2"))
	T.same({ true }, s6:setoption("mcastiface", "::1"))
	-- The interface and source must be of the group's family.
	T.same({ false, "invalid argument", 22 }, s6:setoption("mcastjoin", "239.5.6.7", "::1"))
	T.same({ false, "invalid argument", 22 }, s6:setoption("mcastjoin", "ff02::5:6", "127.0.0.1"))
	T.same({ false, "invalid argument", 22 }, s6:setoption("mcastjoin", "232.5.6.7", nil, "::1"))
	s6:close()
	local s4 = system.socket("datagram", "ipv4")
	for _, args in ipairs({
		{ "mcastiface", "::1" }, { "mcastjoin", "ff02::5:6" }, { "mcastleave", "ff02::5:6" },
		{ "mcastjoin", "ff3e::5:6", "::1", "::1" },
	}) do
		T.same({ false, "protocol not available", 92 }, s4:setoption(table.unpack(args)))
	end
	-- Neither literal: refused before the kernel sees anything.
	T.same({ false, "invalid argument", 22 }, s4:setoption("mcastiface", "lo"))
	T.same({ false, "invalid argument", 22 }, s4:setoption("mcastjoin", "localhost"))
	T.same({ true }, s4:setoption("mcastiface", "127.0.0.1"))
	s4:close()
	system.run()
end)

T.case("ipv4: multicast datagrams on the loopback interface", function()
	go(function()
		local r = system.socket("datagram", "ipv4")
		assert(r:bind(system.address("ipv4", "0.0.0.0:0")))
		local port = r:getaddress().port
		assert(r:setoption("mcastjoin", "239.7.7.7", "127.0.0.1"))
		local s = system.socket("datagram", "ipv4")
		assert(s:setoption("mcastiface", "127.0.0.1"))
		assert(s:setoption("mcastloop", true))
		assert(s:setoption("mcastttl", 1))
		T.same({ true }, s:write("group", 1, -1, system.address("ipv4", "239.7.7.7:" .. port)))
		local buf = memory.create(8)
		T.same({ 5, false }, r:read(buf))
		T.same({ "group" }, buf:tostring(1, 5))
		assert(r:setoption("mcastleave", "239.7.7.7", "127.0.0.1"))
		r:close()
		s:close()
	end)
end)

T.done()
