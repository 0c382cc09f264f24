-- Extension E7 (doc/manual.md, "Extensions"): system.awaitfd(fd, events),
-- on descriptors that are not the library's: FIFOs and pipes opened with
-- Lua's io library.
local T = require "testlib"
local system = require "coutil.system"

local go = T.go
local settle = T.settle
local unyieldable = T.unyieldable

local dir = assert(system.maketemp((os.getenv("TMPDIR") or "/tmp") .. "/awaitfd", "~"))
local count = 0

-- A new FIFO: its read end ("r+": opens without a writer and never sees
-- end of file) and an unbuffered write end.
local function fifo()
	count = count + 1
	local path = dir .. "/f" .. count
	assert(os.execute("mkfifo " .. path))
	local rd = assert(io.open(path, "r+"))
	local wr = assert(io.open(path, "w"))
	wr:setvbuf("no")
	return rd, wr, path
end

local function closeall(...)
	for _, f in ipairs({ ... }) do f:close() end
end

T.case("awaitfd: readable, writable, results in rwpd order", function()
	go(function()
		local rd, wr = fifo()
		T.same({ "w" }, system.awaitfd(wr, "w"))
		T.same({ "w" }, system.awaitfd(wr, "dpwr")) -- a write end is never readable
		T.same({ "w" }, system.awaitfd(rd, "rw")) -- "r+": also a writer
		local got
		T.spawn(function() got = table.pack(system.awaitfd(rd, "r")) end)
		settle()
		assert(got == nil)
		wr:write("x")
		settle()
		T.same({ n = 1, "r" }, table.unpack(got, 1, got.n))
		T.same({ "rw" }, system.awaitfd(rd, "wrrw"))
		-- nothing was read: still readable at the next wait (no edge lost)
		T.same({ "r" }, system.awaitfd(rd, "r"))
		assert(rd:read(1) == "x")
		closeall(rd, wr)
	end)
end)

T.case("awaitfd: always suspends; the loop delivers", function()
	go(function()
		local rd, wr = fifo()
		wr:write("ready")
		local order = {}
		T.spawn(function()
			order[#order + 1] = "wait"
			T.same({ "r" }, system.awaitfd(rd, "r"))
			order[#order + 1] = "ready"
		end)
		T.spawn(function() order[#order + 1] = "other" end)
		T.same({ "wait", "other" }, table.unpack(order))
		settle()
		T.same({ "wait", "other", "ready" }, table.unpack(order))
		assert(rd:read(5) == "ready")
		closeall(rd, wr)
	end)
end)

T.case("awaitfd: integers, several descriptors at once", function()
	go(function()
		local files, done = {}, {}
		for i = 1, 8 do
			local rd, wr = fifo()
			files[i] = { rd, wr }
			T.spawn(function() done[i] = system.awaitfd(rd, "r") end)
		end
		for i = 8, 1, -2 do files[i][2]:write("x") end
		settle()
		for i = 1, 8 do assert(done[i] == (i % 2 == 0 and "r" or nil), i) end
		for i = 1, 8, 2 do files[i][2]:write("x") end
		settle()
		for i = 1, 8 do
			T.same({ "r" }, done[i])
			closeall(table.unpack(files[i]))
		end
	end)
end)

T.case("awaitfd: one waiter per descriptor; explicit resume stops it", function()
	go(function()
		local rd, wr = fifo()
		local res
		local co = T.spawn(function() res = table.pack(system.awaitfd(rd, "r")) end)
		T.raises("bad argument #1 to 'awaitfd' (already in use)", function() return system.awaitfd(rd, "r") end)
		-- another descriptor of the same pipe is another watch
		T.same({ "w" }, system.awaitfd(wr, "w"))
		coroutine.resume(co, "stop", nil)
		T.same({ n = 2, "stop", nil }, table.unpack(res, 1, res.n))
		wr:write("x")
		settle()
		T.same({ n = 2, "stop", nil }, table.unpack(res, 1, res.n))
		-- a new wait works, and sees the byte written meanwhile
		T.same({ "r" }, system.awaitfd(rd, "r"))
		assert(rd:read(1) == "x")
		-- a coroutine closed while it waits does not hold the descriptor
		co = T.spawn(function() system.awaitfd(rd, "r") end)
		coroutine.close(co)
		wr:write("y")
		T.same({ "r" }, system.awaitfd(rd, "r"))
		closeall(rd, wr)
	end)
end)

T.case("awaitfd: hang-ups and errors", function()
	go(function()
		-- a pipe from a child that exits: end of file is ready to read,
		-- and the peer is gone
		local out = assert(io.popen("exit 0", "r"))
		T.same({ "rd" }, system.awaitfd(out, "rd"))
		T.same({ "d" }, system.awaitfd(out, "d"))
		out:close()
		-- a pipe to a child that exits: writing fails at once (ready)
		local input = assert(io.popen("exit 0", "w"))
		system.suspend(0.05)
		T.same({ "w" }, system.awaitfd(input, "w"))
		pcall(input.close, input)
	end)
end)

T.case("awaitfd: files that cannot be polled are ready to read and write", function()
	go(function()
		local path = dir .. "/regular"
		local f = assert(io.open(path, "w+"))
		T.same({ "rw" }, system.awaitfd(f, "rwpd"))
		T.same({ "r" }, system.awaitfd(f, "r"))
		T.same({ "w" }, system.awaitfd(f, "w"))
		T.same({ false, "operation not permitted", 1 }, system.awaitfd(f, "p"))
		T.same({ false, "operation not permitted", 1 }, system.awaitfd(f, "pd"))
		f:close()
		os.remove(path)
	end)
end)

T.case("awaitfd: descriptors that are not open fail", function()
	go(function()
		local rd, wr = fifo()
		T.same({ false, "bad file descriptor", 9 }, system.awaitfd(-1, "r"))
		T.same({ false, "bad file descriptor", 9 }, system.awaitfd(math.maxinteger, "r"))
		T.same({ false, "bad file descriptor", 9 }, system.awaitfd(1 << 40, "w"))
		T.same({ false, "bad file descriptor", 9 }, system.awaitfd(65535, "w"))
		-- failures suspend too
		local done = false
		T.spawn(function()
			T.same({ false, "bad file descriptor", 9 }, system.awaitfd(-1, "r"))
			done = true
		end)
		assert(not done)
		settle()
		assert(done)
		closeall(rd, wr)
	end)
end)

T.case("awaitfd: closed and reused descriptors", function()
	go(function()
		-- a watched descriptor closed, its number reused by another file
		for _ = 1, 3 do
			local rd, wr = fifo()
			wr:write("x")
			T.same({ "r" }, system.awaitfd(rd, "r"))
			closeall(rd, wr)
		end
		local rd, wr = fifo()
		local got
		T.spawn(function() got = system.awaitfd(rd, "r") end)
		settle()
		assert(got == nil) -- not the readiness of an earlier file
		wr:write("x")
		settle()
		assert(got == "r")
		closeall(rd, wr)
		-- the number of a closed watched descriptor taken by a socket of
		-- the library: the socket is not disturbed
		for _ = 1, 3 do
			rd, wr = fifo()
			wr:write("x")
			T.same({ "r" }, system.awaitfd(rd, "r"))
			closeall(rd, wr)
			local a, b = system.socket("stream", "pair")
			local buf = require("coutil.memory").create(4)
			T.spawn(function() assert(b:write("ok")) end)
			T.same({ 2 }, a:read(buf))
			a:close()
			b:close()
		end
		-- closed while a coroutine waits, the number taken by a socket:
		-- the waiter gets "bad file descriptor"
		rd, wr = fifo()
		local res
		T.spawn(function() res = table.pack(system.awaitfd(rd, "r")) end)
		closeall(rd, wr)
		local sockets = {}
		for i = 1, 4 do sockets[i] = system.socket("datagram", "local") end
		settle()
		T.same({ n = 3, false, "bad file descriptor", 9 }, table.unpack(res, 1, res.n))
		for _, s in ipairs(sockets) do s:close() end
	end)
end)

T.case("awaitfd: argument errors and their order", function()
	local rd, wr = fifo()
	T.async(function()
		T.raises("bad argument #2 to 'awaitfd' (no events)", function() return system.awaitfd(rd, "") end)
		T.raises("bad argument #2 to 'awaitfd' (unknown mode char (got 'x'))",
			function() return system.awaitfd(rd, "rx") end)
		T.raises("unknown mode char (got 'R')", system.awaitfd, rd, "R")
		T.raises("unknown mode char (got '\255')", system.awaitfd, rd, "\255")
		T.raises("bad argument #2 to 'awaitfd' (string expected, got no value)",
			function() return system.awaitfd(rd) end)
		T.raises("bad argument #1 to 'awaitfd' (number or file expected, got table)",
			function() return system.awaitfd({}, "r") end)
		T.raises("number or file expected, got no value", system.awaitfd)
		T.raises("number or file expected, got string", system.awaitfd, "3", "r")
		T.raises("number has no integer representation", system.awaitfd, 1.5, "r")
		-- after an io file was recognised (its metatable is remembered)
		local buf = require("coutil.memory").create(4)
		T.raises("bad argument #1 to 'awaitfd' (number or file expected, got memory)",
			function() return system.awaitfd(buf, "r") end)
		T.raises("number or file expected, got FILE*", system.awaitfd, setmetatable({}, getmetatable(rd)), "r")
		local closed = io.open(dir .. "/closed", "w")
		closed:close()
		T.raises("bad argument #1 to 'awaitfd' (attempt to use a closed file)",
			function() return system.awaitfd(closed, "r") end)
		-- the descriptor comes first
		T.raises("number or file expected", system.awaitfd, {}, "")
	end)
	-- arguments, then the waiter, then the coroutine
	T.same({ false, "unable to yield" }, unyieldable(system.awaitfd, rd, "r"))
	local ok, msg = unyieldable(system.awaitfd, rd, "q")
	assert(not ok and msg:find("unknown mode char (got 'q')", 1, true), msg)
	go(function()
		local co = T.spawn(function() system.awaitfd(rd, "r") end)
		ok, msg = unyieldable(system.awaitfd, rd, "r")
		assert(not ok and msg:find("already in use", 1, true), msg)
		coroutine.resume(co)
	end)
	closeall(rd, wr)
	os.remove(dir .. "/closed")
end)

T.case("awaitfd: the collector and waiting coroutines", function()
	go(function()
		local rd, wr = fifo()
		local res
		-- nothing but the loop references the waiting coroutine
		T.spawn(function() res = system.awaitfd(rd, "r") end)
		collectgarbage()
		collectgarbage()
		wr:write("x")
		settle()
		T.same({ "r" }, res)
		closeall(rd, wr)
	end)
end)

T.case("cleanup", function()
	T.rmtree(dir)
end)

T.done()
