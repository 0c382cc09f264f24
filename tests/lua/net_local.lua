-- spec/network.md §3: local sockets (coutil:pipeactive, coutil:pipeshare,
-- coutil:pipepassive) on paths in the temporary directory.
local T = require "testlib"
local system = require "coutil.system"
local memory = require "coutil.memory"

local methods = T.methods

local unyieldable = T.unyieldable
local settle = T.settle
local go = T.go
local tmppath = T.tmppath

local function exists(path)
	return os.rename(path, path) == true
end

local function listener(domain, backlog)
	local path = tmppath()
	local s = assert(system.socket("passive", domain))
	assert(s:bind(path))
	assert(s:listen(backlog or 8))
	return s, path
end

local function pair(domain)
	local l, path = listener(domain)
	local c = assert(system.socket("stream", domain))
	assert(c:connect(path))
	local s = assert(l:accept())
	l:close()
	return c, s
end

for _, domain in ipairs({ "local", "share" }) do
	local active = domain == "local" and "pipeactive" or "pipeshare"

	T.case(domain .. ": classes, domains and method sets", function()
		local s = system.socket("stream", domain)
		assert(tostring(s):find("^coutil:" .. active .. ": "), tostring(s))
		T.same({ domain }, s:getdomain())
		methods(s, { "close", "getdomain", "getaddress", "bind", "setoption", "connect", "write", "read", "shutdown" })
		local p = system.socket("passive", domain)
		assert(tostring(p):find("^coutil:pipepassive: "), tostring(p))
		T.same({ domain }, p:getdomain())
		methods(p, { "close", "getdomain", "getaddress", "bind", "setoption", "listen", "accept" })
		s:close()
		p:close()
	end)

	T.case(domain .. ": bind, getaddress and paths", function()
		local path = tmppath()
		local p = system.socket("passive", domain)
		-- as libuv: no descriptor before bind or connect
		T.same({ false, "bad file descriptor", 9 }, p:getaddress())
		T.raises("string expected, got no value", p.bind, p)
		T.raises("string expected, got table", p.bind, p, {})
		T.same({ true }, p:bind(path))
		assert(exists(path))
		T.same({ path }, p:getaddress())
		T.same({ path }, p:getaddress("self", "ignored"))
		T.same({ false, "socket is not connected", 107 }, p:getaddress("peer"))
		T.same({ false, "invalid argument", 22 }, p:bind(tmppath())) -- bound already
		local q = system.socket("passive", domain)
		T.same({ false, "address already in use", 98 }, q:bind(path))
		q:close()
		local long = system.socket("stream", domain)
		T.same({ false, "name too long", 36 }, long:bind(string.rep("x", 200)))
		long:close()
		-- closing removes the path, as libuv does
		p:close()
		assert(not exists(path))
		p = system.socket("passive", domain)
		T.same({ true }, p:bind(path))
		p:close()
	end)

	T.case(domain .. ": connect, accept, peers", function()
		go(function()
			local s = system.socket("stream", domain)
			local missing = tmppath()
			T.same({ false, "no such file or directory", 2 }, s:connect(missing))
			local bound = system.socket("passive", domain)
			local path = tmppath()
			assert(bound:bind(path))
			T.same({ false, "connection refused", 111 }, s:connect(path))
			bound:close()
			s:close()
			local l, lpath = listener(domain)
			T.raises("already listening", l.listen, l, 1)
			local c = system.socket("stream", domain)
			T.same({ true }, c:connect(lpath))
			local a = assert(l:accept())
			assert(tostring(a):find("^coutil:" .. active .. ": "), tostring(a))
			T.same({ domain }, a:getdomain())
			T.same({ lpath }, c:getaddress("peer"))
			T.same({ "" }, c:getaddress())
			T.same({ "" }, a:getaddress("peer"))
			T.same({ false, "socket is already connected", 106 }, c:connect(lpath))
			a:close()
			c:close()
			l:close()
		end)
		local s = system.socket("stream", domain)
		T.async(function() T.raises("string expected, got no value", s.connect, s) end)
		T.same({ false, "unable to yield" }, unyieldable(s.connect, s))
		s:close()
		local p = system.socket("passive", domain)
		T.raises("not listening", p.accept, p)
		T.raises("out of range", p.listen, p, -1)
		T.same({ false, "invalid argument", 22 }, p:listen(1)) -- not bound
		p:close()
	end)

	T.case(domain .. ": read, write, shutdown, end of file", function()
		go(function()
			local c, s = pair(domain)
			local buf = memory.create(16)
			T.same({ true }, c:write("hello world", 7))
			T.same({ 5 }, s:read(buf, 3, 7))
			T.same({ "world" }, buf:tostring(3, 7))
			T.same({ true }, s:write(memory.create("reply")))
			T.same({ 5 }, c:read(buf))
			T.same({ "reply" }, buf:tostring(1, 5))
			T.same({ true }, c:shutdown())
			T.same({ false, "end of file", 4095 }, s:read(buf))
			T.same({ false, "end of file", 4095 }, s:read(buf))
			T.same({ true }, s:write("still"))
			T.same({ 5 }, c:read(buf))
			s:close()
			T.same({ false, "end of file", 4095 }, c:read(buf))
			c:close()
		end)
	end)

	T.case(domain .. ": broken pipe does not kill the process", function()
		go(function()
			local c, s = pair(domain)
			s:close()
			T.same({ false, "broken pipe", 32 }, c:write("nobody reads"))
			T.same({ false, "broken pipe", 32 }, c:write("nobody reads"))
			c:close()
		end)
	end)

	T.case(domain .. ": cancelled reads lose no data; writes in order", function()
		go(function()
			local c, s = pair(domain)
			local buf = memory.create("....")
			local res
			local co = T.spawn(function() res = table.pack(s:read(buf)) end)
			T.raises("already in use", s.read, s, buf)
			-- the bytes are in the socket before the loop runs again
			T.spawn(function() assert(c:write("data")) end)
			coroutine.resume(co, nil, false)
			T.same({ n = 2, nil, false }, table.unpack(res, 1, res.n))
			settle()
			T.same({ "...." }, buf:tostring())
			T.same({ 4 }, s:read(buf))
			T.same({ "data" }, buf:tostring())
			local size = 1024 * 1024
			local results = {}
			for i, ch in ipairs({ "x", "y" }) do
				T.spawn(function() results[i] = table.pack(c:write(string.rep(ch, size))) end)
			end
			local big = memory.create(size)
			local got = {}
			local total = 0
			while total < 2 * size do
				local n = assert(s:read(big))
				got[#got + 1] = big:tostring(1, n)
				total = total + n
			end
			local data = table.concat(got)
			assert(data == string.rep("x", size) .. string.rep("y", size))
			settle()
			T.same({ n = 1, true }, table.unpack(results[1], 1, results[1].n))
			T.same({ n = 1, true }, table.unpack(results[2], 1, results[2].n))
			c:close()
			s:close()
		end)
	end)

	T.case(domain .. ": close wakes awaiters; closed objects raise", function()
		go(function()
			local c, s = pair(domain)
			local read, acc
			T.spawn(function() read = table.pack(s:read(memory.create(4))) end)
			s:close()
			local l = listener(domain)
			T.spawn(function() acc = table.pack(l:accept()) end)
			l:close()
			settle()
			T.same({ n = 2, false, "closed" }, table.unpack(read, 1, read.n))
			T.same({ n = 2, false, "closed" }, table.unpack(acc, 1, acc.n))
			T.raises("closed object", s.read, s, memory.create(1))
			T.raises("closed object", l.listen, l, 1)
			T.raises("closed object", s.setoption, s, "permission", "r")
			T.raises("closed object", l.getdomain, l)
			c:close()
		end)
	end)

	T.case(domain .. ": permission option", function()
		local path = tmppath()
		local p = system.socket("passive", domain)
		T.same({ false, "no such file or directory", 2 }, p:setoption("permission", "rw"))
		assert(p:bind(path))
		T.same({ true }, p:setoption("permission", "r"))
		T.same({ true }, p:setoption("permission", "w"))
		T.same({ true }, p:setoption("permission", "rw"))
		T.same({ true }, p:setoption("permission", "wr"))
		T.same({ false, "invalid argument", 22 }, p:setoption("permission", ""))
		T.raises("unknown option (got 'x')", p.setoption, p, "permission", "rx")
		T.raises("string expected, got no value", p.setoption, p, "permission")
		T.raises("invalid option 'nodelay'", p.setoption, p, "nodelay", true)
		T.raises("string expected, got no value", p.setoption, p)
		local f = io.popen("stat -c %A " .. path)
		local mode = f:read("l")
		f:close()
		T.same({ "srwxrwxrwx" }, (mode:gsub("[^rwxs-]", "")))
		p:close()
		local s = system.socket("stream", domain)
		T.same({ false, "no such file or directory", 2 }, s:setoption("permission", "r"))
		s:close()
	end)

	T.case(domain .. ": await methods raise unable to yield outside coroutines", function()
		local s = system.socket("stream", domain)
		local l, path = listener(domain)
		local buf = memory.create(4)
		for _, f in ipairs({
			function() return s:connect(path) end,
			function() return s:read(buf) end,
			function() return s:write("x") end,
			function() return s:shutdown() end,
			function() return l:accept() end,
		}) do
			local ok, msg = unyieldable(f)
			assert(not ok and msg:find("unable to yield", 1, true), msg)
		end
		s:close()
		l:close()
	end)

	T.case(domain .. ": the collector closes sockets and removes their paths", function()
		local path = (function() return select(2, listener(domain)) end)()
		collectgarbage()
		collectgarbage()
		assert(not exists(path))
		go(function()
			local s = system.socket("stream", domain)
			T.same({ false, "no such file or directory", 2 }, s:connect(path))
			s:close()
			local holder = {}
			local c
			c, holder.s = pair(domain)
			local res
			T.spawn(function() res = table.pack(holder.s:read(memory.create(8))) end)
			holder.s = nil
			collectgarbage()
			collectgarbage()
			assert(c:write("alive"))
			settle()
			T.same({ n = 1, 5 }, table.unpack(res, 1, res.n))
			c:close()
		end)
	end)
end

T.case("many concurrent local connections on one loop", function()
	local count = 200
	local finished = 0
	go(function()
		local l, path = listener("local", 1024)
		T.spawn(function()
			for _ = 1, count do
				local s = assert(l:accept())
				T.spawn(function()
					local buf = memory.create(64)
					local n = assert(s:read(buf))
					assert(s:write(buf, 1, n))
					s:close()
				end)
			end
			l:close()
		end)
		for i = 1, count do
			T.spawn(function()
				local c = system.socket("stream", "local")
				assert(c:connect(path))
				assert(c:write("#" .. i))
				local buf = memory.create(64)
				local n = assert(c:read(buf))
				T.same({ "#" .. i }, buf:tostring(1, n))
				c:close()
				finished = finished + 1
			end)
		end
	end)
	T.same({ count }, finished)
end)

T.case("a path with a NUL byte is refused, not cut", function()
	local dir = T.tempdir("coutil-nul")
	local p = system.socket("passive", "local")
	T.same({ false, "invalid argument", 22 }, p:bind(dir .. "/good\0/../evil"))
	T.same({ false, "bad file descriptor", 9 }, p:getaddress()) -- not bound
	p:close()
	T.async(function()
		local c = system.socket("stream", "local")
		T.same({ false, "invalid argument", 22 }, c:connect(dir .. "/x\0y"))
		c:close()
	end)
	T.same({ false }, exists(dir .. "/good"))
	T.rmtree(dir)
end)

T.case("close removes the socket's own file only, wherever the process is", function()
	local dir = T.tempdir("coutil-unlink")
	local back = assert(system.getdir())
	assert(system.makedir(dir .. "/a", "rwx", "~"))
	assert(system.makedir(dir .. "/b", "rwx", "~"))
	-- bound by a relative name; the directory changes before the close
	assert(system.setdir(dir .. "/a"))
	local p = system.socket("passive", "local")
	assert(p:bind("sock"))
	assert(system.setdir(dir .. "/b"))
	T.writefile("sock", "unrelated")
	p:close()
	T.same({ "file" }, system.fileinfo(dir .. "/b/sock", "~?"))
	T.same({ false }, exists(dir .. "/a/sock"))
	assert(system.setdir(back))
	-- its path now names another file: left alone
	local q = system.socket("passive", "local")
	assert(q:bind(dir .. "/a/again"))
	assert(system.removefile(dir .. "/a/again", "~"))
	T.writefile(dir .. "/a/again", "someone else's")
	q:close()
	T.same({ "file" }, system.fileinfo(dir .. "/a/again", "~?"))
	system.run()
	T.rmtree(dir)
end)

T.done()
