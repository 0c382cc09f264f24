-- spec/behaviour-rules.md R1–R3 for sockets: every await suspends and the
-- loop delivers in libuv's order; closing; the order of argument checks.
local T = require "testlib"
local system = require "coutil.system"
local memory = require "coutil.memory"

local unyieldable = T.unyieldable
local tmppath = T.tmppath

-- Starts f in a coroutine; returns a probe telling whether the call
-- returned before the loop ran (`done`) and its results (`res`).
local function start(f, ...)
	local probe = {}
	T.spawn(function(...)
		probe.res = table.pack(f(...))
	end, ...)
	probe.early = probe.res ~= nil
	return probe
end

local function listener(domain)
	local s = assert(system.socket("passive", domain))
	local a = domain == "local" and tmppath() or T.loopback[domain]()
	assert(s:bind(a))
	assert(s:listen(8))
	return s, s:getaddress()
end

-- A connected pair (client, server) of `domain`, made by the loop.
local function pair(domain)
	local l, a = listener(domain)
	local c = assert(system.socket("stream", domain))
	local s
	T.spawn(function() s = assert(l:accept()) end)
	T.spawn(function() assert(c:connect(a)) end)
	system.run()
	l:close()
	return c, assert(s)
end

for _, domain in ipairs({ "ipv4", "local" }) do
	T.case(domain .. ": stream write and shutdown suspend; the loop delivers true", function()
		local c, s = pair(domain)
		local w = start(c.write, c, "abc")
		local h = start(c.shutdown, c)
		T.same({ false, false }, w.early, h.early)
		system.run()
		T.same({ true }, table.unpack(w.res, 1, w.res.n))
		T.same({ true }, table.unpack(h.res, 1, h.res.n))
		T.async(function() T.same({ "abc" }, T.readall(s)) end)
		c:close()
		s:close()
	end)

	T.case(domain .. ": read suspends with data, or end of file, already there", function()
		local c, s = pair(domain)
		T.async(function()
			assert(c:write("hello"))
			assert(c:shutdown())
		end)
		local buf = memory.create(8)
		local r = start(s.read, s, buf)
		T.same({ false }, r.early)
		system.run()
		T.same({ 5 }, table.unpack(r.res, 1, r.res.n))
		r = start(s.read, s, buf)
		T.same({ false }, r.early)
		system.run()
		T.same({ false, "end of file", 4095 }, table.unpack(r.res, 1, r.res.n))
		c:close()
		s:close()
	end)

	T.case(domain .. ": accept before the connect that completes in the same iteration", function()
		local l, a = listener(domain)
		local order = {}
		local accepted
		T.spawn(function()
			accepted = assert(l:accept())
			order[#order + 1] = "accept"
		end)
		local c = assert(system.socket("stream", domain))
		T.spawn(function()
			assert(c:connect(a))
			order[#order + 1] = "connect"
		end)
		T.same({ 0 }, #order)
		system.run()
		T.same({ "accept,connect" }, table.concat(order, ","))
		accepted:close()
		c:close()
		l:close()
	end)

	T.case(domain .. ": one loop step: request completions, then suspend(), then reads", function()
		local c, s = pair(domain)
		local order = {}
		T.spawn(function()
			assert(s:read(memory.create(4)))
			order[#order + 1] = "read"
		end)
		T.spawn(function()
			assert(c:write("data"))
			order[#order + 1] = "write"
		end)
		T.spawn(function()
			system.suspend()
			order[#order + 1] = "suspend"
		end)
		system.run("step")
		T.same({ "write,suspend,read" }, table.concat(order, ","))
		c:close()
		s:close()
	end)

	T.case(domain .. ": a writing coroutine lets the others run between its writes", function()
		local c, s = pair(domain)
		local trace = {}
		T.spawn(function()
			for i = 1, 3 do
				assert(c:write("x"))
				trace[#trace + 1] = "w" .. i
			end
		end)
		T.spawn(function()
			for i = 1, 3 do
				system.suspend()
				trace[#trace + 1] = "s" .. i
			end
		end)
		system.run()
		T.same({ "w1,s1,w2,s2,w3,s3" }, table.concat(trace, ","))
		c:close()
		s:close()
	end)

	T.case(domain .. ": an interrupted write returns the resume values; its bytes arrive", function()
		local c, s = pair(domain)
		local got, after
		local co = T.spawn(function()
			got = table.pack(c:write("ping"))
			coroutine.yield()
			after = "resumed again"
		end)
		T.same({ true }, coroutine.resume(co, "stop", nil))
		T.same({ n = 2, "stop", nil }, table.unpack(got, 1, got.n))
		local buf = memory.create(4)
		T.async(function() T.same({ 4 }, s:read(buf)) end)
		T.same({ "ping" }, buf:tostring())
		T.same({ n = 2, nil, "suspended" }, after, coroutine.status(co))
		coroutine.resume(co)
		c:close()
		s:close()
	end)

	T.case(domain .. ": closing with requests pending: the loop delivers their results", function()
		local c, s = pair(domain)
		local w = start(c.write, c, "data")
		local h = start(c.shutdown, c)
		c:close()
		T.same({ n = 2, nil, nil }, w.res, h.res) -- not resumed inside close
		system.run()
		T.same({ true }, table.unpack(w.res, 1, w.res.n)) -- handed to the OS already
		T.same({ false, "operation canceled", 125 }, table.unpack(h.res, 1, h.res.n))
		local l, a = listener(domain)
		local x = assert(system.socket("stream", domain))
		local k = start(x.connect, x, a)
		x:close()
		system.run()
		T.same({ false, "operation canceled", 125 }, table.unpack(k.res, 1, k.res.n))
		l:close()
		s:close()
	end)

	T.case(domain .. ": a second shutdown fails at once", function()
		local c, s = pair(domain)
		T.async(function()
			local first = start(c.shutdown, c)
			T.same({ false, "socket is not connected", 107 }, c:shutdown())
			system.suspend()
			T.same({ true }, table.unpack(first.res, 1, first.res.n))
			T.same({ false, "socket is not connected", 107 }, c:shutdown())
			T.same({ false, "broken pipe", 32 }, c:write("late"))
		end)
		c:close()
		s:close()
	end)

	T.case(domain .. ": a closed socket stays referenced until the loop ran", function()
		local weak = setmetatable({}, { __mode = "v" })
		local s = system.socket("stream", domain) -- strong until closed
		weak.s = s
		T.same({ true }, s:close())
		s = nil
		collectgarbage("collect")
		assert(weak.s ~= nil, "collected before the loop ran")
		T.same({ false }, system.run())
		collectgarbage("collect")
		collectgarbage("collect")
		T.same({ n = 1, nil }, weak.s)
	end)
end

T.case("local: connect results always come from the loop", function()
	local l, path = listener("local")
	for _, t in ipairs({
		{ path, true },
		{ path .. ".none", "no such file or directory" },
		{ "/dev/null", "connection refused" },
	}) do
		local s = assert(system.socket("stream", "local"))
		local r = start(s.connect, s, t[1])
		T.same({ false }, r.early)
		system.run()
		T.same({ t[2] }, r.res[1] == true and true or r.res[2])
		s:close()
	end
	l:close()
end)

T.case("ipv4: connect suspends; an interrupted one is waited for by the next", function()
	local l, a = listener("ipv4")
	local s = assert(system.socket("stream", "ipv4"))
	local second
	local co = T.spawn(function()
		s:connect(a) -- interrupted below
		second = table.pack(s:connect(a))
	end)
	coroutine.resume(co)
	T.same({ "suspended" }, coroutine.status(co))
	system.run()
	assert(second[1] == true or second[2] == "socket is already connected", tostring(second[2]))
	-- the OS refuses at once: no suspension
	T.async(function()
		T.same({ false, "socket is already connected", 106 }, s:connect(a))
	end)
	s:close()
	l:close()
	-- a refused connection comes from the loop
	local closed = assert(system.socket("passive", "ipv4"))
	assert(closed:bind(T.loopback.ipv4()))
	local where = closed:getaddress()
	closed:close()
	local r = assert(system.socket("stream", "ipv4"))
	local p = start(r.connect, r, where)
	T.same({ false }, p.early)
	system.run()
	T.same({ false, "connection refused", 111 }, table.unpack(p.res, 1, p.res.n))
	r:close()
end)

T.case("ipv4: accept returns at once only a connection the loop holds", function()
	local l, a = listener("ipv4")
	local clients = {}
	local function connect(n)
		for _ = 1, n do
			local c = assert(system.socket("stream", "ipv4"))
			clients[#clients + 1] = c
			T.spawn(function() assert(c:connect(a)) end)
		end
	end
	connect(3)
	system.run() -- the loop sees a connection while nobody accepts: it holds it
	local ok, first = unyieldable(l.accept, l)
	assert(ok, first)
	T.same({ "coutil:tcpactive" }, tostring(first):match("^[^:]+:[^:]+"))
	T.same({ false, "unable to yield" }, unyieldable(l.accept, l))
	local got = {}
	T.spawn(function()
		for i = 1, 2 do got[i] = assert(l:accept()) end
	end)
	T.same({ 0 }, #got) -- queued by the kernel only: they suspend
	system.run()
	T.same({ 2 }, #got)
	first:close()
	for _, s in ipairs(got) do s:close() end
	for _, c in ipairs(clients) do c:close() end
	l:close()
end)

for _, domain in ipairs({ "ipv4", "ipv6" }) do
	T.case(domain .. ": datagram write and read suspend", function()
		local rx = assert(system.socket("datagram", domain))
		assert(rx:bind(T.loopback[domain]()))
		local dst = rx:getaddress()
		local tx = assert(system.socket("datagram", domain))
		local w = start(tx.write, tx, "abc", 1, -1, dst)
		T.same({ false }, w.early)
		system.run()
		T.same({ true }, table.unpack(w.res, 1, w.res.n))
		local r = start(rx.read, rx, memory.create(8)) -- the datagram waits already
		T.same({ false }, r.early)
		system.run()
		T.same({ 3, false }, table.unpack(r.res, 1, r.res.n))
		-- interrupted: the resume's values, and the datagram still goes
		local co = T.spawn(function() return tx:write("defg", 1, -1, dst) end)
		T.same({ true, "cut" }, coroutine.resume(co, "cut"))
		r = start(rx.read, rx, memory.create(8))
		system.run()
		T.same({ 4, false }, table.unpack(r.res, 1, r.res.n))
		-- closing: a write handed to the OS completes
		w = start(tx.write, tx, "x", 1, -1, dst)
		tx:close()
		T.same({ n = 1, nil }, w.res)
		system.run()
		T.same({ true }, table.unpack(w.res, 1, w.res.n))
		rx:close()
	end)
end

T.case("never connected streams fail at once, as libuv", function()
	local buf = memory.create(4)
	T.async(function()
		local s = system.socket("stream", "local")
		T.same({ false, "bad file descriptor", 9 }, s:write("x"))
		T.same({ false, "socket is not connected", 107 }, s:read(buf))
		T.same({ false, "socket is not connected", 107 }, s:shutdown())
		T.same({ false, "bad file descriptor", 9 }, s:getaddress())
		s:close()
		local t = system.socket("stream", "ipv4")
		T.same({ false, "broken pipe", 32 }, t:write("x"))
		T.same({ false, "socket is not connected", 107 }, t:read(buf))
		T.same({ false, "socket is not connected", 107 }, t:shutdown())
		t:close()
	end)
end)

T.case("closing the state resumes a waiting read with false, closed", function()
	local l, path = listener("local")
	local out = tmppath()
	local child = T.luachild(string.format([[
		local report = io.open(%q, "w")
		local s = assert(system.socket("stream", "local"))
		coroutine.wrap(function()
			assert(s:connect(%q))
			local r = table.pack(s:read(memory.create(8)))
			report:write(tostring(r[1]), ",", tostring(r[2]))
			report:close()
		end)()
		system.run("step")
		system.run("ready")
		os.exit(0, true) -- closes the state with the read pending
	]], out, path))
	local conn
	T.spawn(function() conn = assert(l:accept()) end)
	local status
	T.spawn(function() status = table.pack(system.execute(arg[-1], "-e", child)) end)
	system.run()
	T.same({ "exit", 0 }, status[1], status[2])
	local f = assert(io.open(out))
	T.same({ "false,closed" }, f:read("a"))
	f:close()
	os.remove(out)
	conn:close()
	l:close()
end)

-- Checks that f(...), called where coroutines cannot yield, raises `text`.
local function raises_unyieldable(text, f, ...)
	local ok, msg = unyieldable(f, ...)
	assert(not ok, "error expected")
	assert(tostring(msg):find(text, 1, true), tostring(msg))
end

T.case("order of checks (R3)", function()
	local t = assert(system.socket("stream", "ipv4"))
	local u = assert(system.socket("datagram", "ipv4"))
	-- write, connect, shutdown: the object, then the coroutine
	raises_unyieldable("unable to yield", t.write, t, nil)
	raises_unyieldable("unable to yield", t.write, t, "x", 1.5)
	raises_unyieldable("unable to yield", t.connect, t, 123)
	raises_unyieldable("unable to yield", t.shutdown, t)
	raises_unyieldable("unable to yield", u.write, u)
	raises_unyieldable("coutil:tcpactive expected, got coutil:udp", t.write, u, "x")
	T.async(function()
		T.raises("bad argument #2 to '?' (string or memory expected, got nil)", t.write, t, nil)
		T.raises("bad argument #5 to '?' (coutil:netaddress expected, got no value)", u.write, u)
	end)
	-- read, accept: the arguments, then the reader, then the coroutine
	local r = assert(system.socket("datagram", "ipv4"))
	assert(r:bind(T.loopback.ipv4()))
	T.spawn(function() r:read(memory.create(8)) end)
	T.raises("bad argument #2 to '?' (memory expected, got no value)", r.read, r)
	T.raises("bad argument #1 to '?' (already in use)", r.read, r, memory.create(8))
	local p = assert(system.socket("passive", "ipv4"))
	T.raises("bad argument #1 to '?' (not listening)", p.accept, p)
	assert(p:bind(T.loopback.ipv4()))
	assert(p:listen(2))
	T.raises("bad argument #1 to '?' (already listening)", p.listen, p, -1)
	raises_unyieldable("unable to yield", p.accept, p)
	T.spawn(function() p:accept() end)
	T.raises("bad argument #1 to '?' (already in use)", p.accept, p)
	for _, s in ipairs({ t, u, r, p }) do s:close() end
	system.run()
end)

T.done()
