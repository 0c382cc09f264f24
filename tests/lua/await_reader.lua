-- coutil.await.reader (issue 15): buffered reading of lines, counts,
-- delimited items and whole streams over any object with the stream
-- sockets' read(buffer, i, j): TCP streams, pipes of execute, system.stdin
-- (a pipe, a terminal), files; items split across reads, end of stream,
-- failures, cancellation.
local T = require "testlib"
local system = require "coutil.system"
local memory = require "coutil.memory"
local await = require "coutil.await"

local reader = await.reader

local interp = arg[-1]
assert(type(interp) == "string", "no interpreter in arg[-1]")

local pair = T.tcppair

-- Writes each piece of `pieces` to `s` in its own coroutine, with a pause
-- between pieces (so that each arrives in a read of its own), then closes
-- `s` unless `keep`.
local function sendslowly(s, pieces, keep)
	T.spawn(function()
		for _, piece in ipairs(pieces) do
			assert(s:write(piece))
			T.settle()
		end
		if not keep then s:close() end
	end)
end

-- Calls `f(r)` for each item until it returns nil; returns the items.
local function collect(f, r, ...)
	local items = {}
	while true do
		local item, err, code = f(r, ...)
		if item == nil then break end
		assert(item ~= false, err)
		items[#items + 1] = item
		assert(err == nil and code == nil)
	end
	return items
end

-- A stream made in Lua: `read` returns the results listed in `script`
-- one after the other; a string result is copied into the buffer.
local function fakestream(script)
	local k = 0
	return {
		read = function(_, buf, i, j)
			k = k + 1
			local step = script[k] or { false, "end of file", 4095 }
			if type(step) == "string" then
				assert(#step <= j - i + 1, "piece larger than the room")
				memory.fill(buf, step, i, i + #step - 1)
				return #step
			end
			return table.unpack(step, 1, step.n or #step)
		end,
	}
end

T.case("bad arguments", function()
	local c, s = pair()
	local l = assert(system.socket("passive", "ipv4"))
	T.raises("bad argument #1 to 'reader' (stream expected, got no value)", reader)
	T.raises("bad argument #1 to 'reader' (stream expected, got nil)", reader, nil)
	T.raises("bad argument #1 to 'reader' (stream expected, got number)", reader, 42)
	T.raises("bad argument #1 to 'reader' (stream expected, got table)", reader, {})
	T.raises("bad argument #1 to 'reader' (stream expected, got table)", reader, { read = 1 })
	T.raises("bad argument #1 to 'reader' (stream expected, got coutil:tcppassive)", reader, l)
	T.raises("bad argument #1 to 'reader' (stream expected, got memory)", reader, memory.create(1))
	T.raises("bad argument #2 to 'reader' (number expected, got string)", reader, s, "8")
	T.raises("bad argument #2 to 'reader' (number has no integer representation)", reader, s, 1.5)
	T.raises("bad argument #2 to 'reader' (out of range)", reader, s, 0)
	T.raises("bad argument #2 to 'reader' (out of range)", reader, s, -8)
	local r = reader(s)
	assert(tostring(r):find("^coutil:reader"))
	T.raises("bad argument #1 to 'read' (number expected, got no value)", r.read, r)
	T.raises("bad argument #1 to 'read' (number expected, got string)", r.read, r, "1")
	T.raises("bad argument #1 to 'read' (number has no integer representation)", r.read, r, 0.5)
	T.raises("bad argument #1 to 'read' (out of range)", r.read, r, -1)
	T.raises("bad argument #1 to 'upto' (string expected, got no value)", r.upto, r)
	T.raises("bad argument #1 to 'upto' (string expected, got number)", r.upto, r, 10)
	T.raises("bad argument #1 to 'upto' (empty delimiter)", r.upto, r, "")
	-- a table with a callable read is a stream
	assert(reader({ read = setmetatable({}, { __call = function() return false, "end of file", 4095 end }) }))
	-- outside a coroutine: the stream's own error
	local ok, err = T.unyieldable(r.line, r)
	assert(not ok and err:find("unable to yield", 1, true), err)
	-- and the reader is still usable
	sendslowly(c, { "fine\n" })
	T.async(function() T.same({ "fine" }, r:line()) end)
	s:close()
	l:close()
end)

T.case("lines split across reads; \\r\\n, empty lines, a last line without newline", function()
	local c, s = pair()
	sendslowly(c, { "hel", "lo\nwor", "ld\r", "\n\n", "a\rb\n", "x", "y", "z\nlast" })
	T.async(function()
		local r = reader(s, 4) -- smaller than most lines: the buffer grows
		T.same({ "hello", "world", "", "a\rb", "xyz", "last" }, table.unpack(collect(r.line, r)))
		-- end of stream: nil from then on, for every method
		for _ = 1, 3 do
			T.same({ nil, n = 1 }, r:line())
			T.same({ nil, n = 1 }, r:read(1))
			T.same({ nil, n = 1 }, r:read(0))
			T.same({ nil, n = 1 }, r:upto("x"))
			T.same({ nil, n = 1 }, r:all())
		end
	end)
	s:close()
end)

T.case("keep_eol: the end of line kept, only with true", function()
	local c, s = pair()
	sendslowly(c, { "a\nb\r", "\nc\n", "\nlast" })
	T.async(function()
		local r = reader(s)
		T.same({ "a\n" }, r:line(true))
		T.same({ "b\r\n" }, r:line(true))
		T.same({ "c" }, r:line(1)) -- not true: stripped
		T.same({ "\n" }, r:line(true))
		T.same({ "last" }, r:line(true)) -- no end of line to keep
		T.same({ nil, n = 1 }, r:line(true))
	end)
	s:close()
end)

T.case("the generic for: for line in r.line, r", function()
	local c, s = pair()
	sendslowly(c, { "one\ntwo\r\n", "three\n" })
	T.async(function()
		local r, lines = reader(s), {}
		for line in r.line, r do lines[#lines + 1] = line end
		T.same({ "one", "two", "three" }, table.unpack(lines))
	end)
	s:close()
end)

T.case("read(n): exactly n bytes across reads, short at the end", function()
	local c, s = pair()
	sendslowly(c, { "ab", "c", "defgh", "ij", "klmnopqrstuvwxyz", "12" })
	T.async(function()
		local r = reader(s, 4)
		T.same({ "" }, r:read(0))
		T.same({ "abc" }, r:read(3))
		T.same({ "d" }, r:read(1))
		T.same({ "efghij" }, r:read(6)) -- more than the buffer
		T.same({ "" }, r:read(0))
		T.same({ "klmnopqrstuvwxyz" }, r:read(16))
		T.same({ "12" }, r:read(5)) -- short: the stream ended
		T.same({ nil, n = 1 }, r:read(5))
		T.same({ nil, n = 1 }, r:read(0))
	end)
	s:close()
end)

T.case("upto: a multi-byte delimiter split across reads, keep", function()
	local c, s = pair()
	sendslowly(c, { "one--", "END--two-", "-E", "ND", "--", "--END--thr", "ee--EN:-", "-END--", "tail-" })
	T.async(function()
		local r, d = reader(s, 4), "--END--"
		T.same({ "one" }, r:upto(d))
		T.same({ "two--END--" }, r:upto(d, true))
		T.same({ "" }, r:upto(d))
		T.same({ "three--EN" }, r:upto(":"))
		T.same({ "" }, r:upto(d))
		T.same({ "tail-" }, r:upto(d)) -- the rest at the end
		T.same({ nil, n = 1 }, r:upto(d))
	end)
	s:close()
end)

T.case("all(): the rest of the stream, however long; nil once taken", function()
	local c, s = pair()
	local big = string.rep("0123456789abcdef", 4096)
	sendslowly(c, { "first\n", "x", big, "y" })
	T.async(function()
		local r = reader(s, 16)
		T.same({ "first" }, r:line())
		T.same({ "x" .. big .. "y" }, r:all())
		T.same({ nil, n = 1 }, r:all())
		T.same({ nil, n = 1 }, r:line())
	end)
	s:close()
	-- an empty stream
	c, s = pair()
	c:close()
	T.async(function() T.same({ nil, n = 1 }, reader(s):all()) end)
	s:close()
end)

T.case("methods mixed; data after a grown buffer shrank", function()
	local c, s = pair()
	local long = string.rep("L", 1000)
	sendslowly(c, { "head:", "12345" .. long .. "\nitem;", "rest\nmore" })
	T.async(function()
		local r = reader(s, 8)
		T.same({ "head" }, r:upto(":"))
		T.same({ "12345" }, r:read(5))
		T.same({ long }, r:line())
		T.same({ "item" }, r:upto(";"))
		T.same({ "rest\nmore" }, r:all())
	end)
	s:close()
end)

T.case("a line longer than the limit: ENOBUFS, the data kept", function()
	local c, s = pair()
	local chunk = string.rep("z", 65536)
	T.spawn(function()
		for _ = 1, 16 do assert(c:write(chunk)) end -- 1 MiB without newline
		assert(c:write("tail\nnext\n"))
		c:close()
	end)
	T.async(function()
		local r = reader(s)
		T.same({ false, "no buffer space available", 105 }, r:line())
		T.same({ false, "no buffer space available", 105 }, r:upto("tail"))
		local got = assert(r:read(1 << 20))
		assert(got == string.rep("z", 1 << 20))
		T.same({ "tail" }, r:line())
		T.same({ "next" }, r:line())
		T.same({ nil, n = 1 }, r:line())
	end)
	s:close()
	-- a larger size is the limit
	c, s = pair()
	T.spawn(function()
		for _ = 1, 20 do assert(c:write(chunk)) end
		assert(c:write("\n"))
		c:close()
	end)
	T.async(function()
		local r = reader(s, 2 << 20)
		T.same({ #chunk * 20 }, #r:line())
	end)
	s:close()
end)

T.case("a pipe of system.execute", function()
	T.async(function()
		local t = { execfile = "sh", arguments = { "-c", "printf 'one\\ntwo'; sleep 0.05; printf ' halves\\nthree'" },
			stdout = "r" }
		local done
		T.spawn(function() done = table.pack(system.execute(t)) end)
		local r = reader(t.stdout)
		T.same({ "one", "two halves", "three" }, table.unpack(collect(r.line, r)))
		t.stdout:close()
		while not done do system.suspend(0.01) end
		T.same({ "exit", 0 }, table.unpack(done, 1, 2))
	end)
end)

T.case("system.stdin of a child: a pipe, lines split across writes", function()
	T.async(function()
		local t = { execfile = interp, stdin = "w", stdout = "r", arguments = { "-e", T.luachild [[
			local await = require "coutil.await"
			local r = await.reader(system.stdin)
			local out = {}
			for line in r.line, r do out[#out + 1] = "[" .. line .. "]" end
			out[#out + 1] = tostring(r:line())
			assert(system.stdout:write(table.concat(out, ",")))
		]] } }
		local done
		T.spawn(function() done = table.pack(system.execute(t)) end)
		while type(t.stdin) ~= "userdata" do system.suspend(0.01) end
		local stdin = t.stdin
		for _, piece in ipairs { "fir", "st\nsec", "ond\r\n", "\nlast" } do
			assert(stdin:write(piece))
			system.suspend(0.02)
		end
		stdin:close()
		local out = T.readall(t.stdout)
		t.stdout:close()
		while not done do system.suspend(0.01) end
		T.same({ "exit", 0 }, table.unpack(done, 1, 2))
		T.same({ "[first],[second],[],[last],nil" }, out)
	end)
end)

-- A real terminal: the child runs under `script`, which gives it a
-- pseudo-terminal as its standard streams (as in sys_stdio.lua). Two lines
-- typed at once: canonical mode hands one line per read, and the second
-- one comes with no new readiness edge.
local function hasscript()
	local f = io.popen("command -v script 2>/dev/null")
	local path = f:read("a")
	f:close()
	return path ~= ""
end

if hasscript() then
	T.case("system.stdin of a child: a terminal", function()
		T.async(function()
			local script = T.tmppath()
			T.writefile(script, T.luachild [[
				local await = require "coutil.await"
				local r = await.reader(system.stdin)
				io.write("READY\n")
				io.flush()
				local line, second = r:line(), r:line()
				io.write("\nRESULT:", tostring(system.stdin):match("^coutil:%a+"), ",", tostring(line),
					",", tostring(second), "\n")
			]])
			local t = {
				execfile = "script",
				arguments = { "-qec", "'" .. interp .. "' '" .. script .. "'", "/dev/null" },
				stdin = "w", -- kept open: see sys_stdio.lua
				stdout = "r",
			}
			local done
			T.spawn(function() done = table.pack(system.execute(t)) end)
			-- the terminal's output until the child is ready, then the rest
			local seen = {}
			local out = await.within(30, function()
				local r = reader(t.stdout)
				repeat
					local line = r:line()
					seen[#seen + 1] = tostring(line)
				until line == nil or line:find("READY", 1, true)
				assert(t.stdin:write("typed "))
				system.suspend(0.05)
				assert(t.stdin:write("line\nsecond line\n"))
				return r:all()
			end)
			t.stdin:close()
			t.stdout:close()
			while not done do system.suspend(0.01) end
			os.remove(script)
			assert(type(out) == "string", "no output from the child: " .. table.concat(seen, "|"))
			T.same({ "coutil:terminal,typed line,second line" }, out:match("RESULT:([^\r\n]*)"))
			T.same({ "exit", 0 }, table.unpack(done, 1, 2))
		end)
	end)
else
	print("SKIPPED: terminal case (the 'script' command is missing)")
end

T.case("a file: its read returns 0 at the end", function()
	local path = T.writefile(T.tmppath(), "alpha\nbeta\ngamma")
	T.async(function()
		local f = assert(system.openfile(path, "r"))
		local r = reader(f, 4)
		T.same({ "alpha", "beta", "gamma" }, table.unpack(collect(r.line, r)))
		T.same({ nil, n = 1 }, r:all())
		f:close()
	end)
	os.remove(path)
end)

T.case("failures pass through, the buffered data kept", function()
	T.async(function()
		local r = reader(fakestream { "par", { false, "connection reset by peer", 104 }, "tial\nnext",
			{ false, "connection reset by peer", 104 } })
		T.same({ false, "connection reset by peer", 104 }, r:line())
		T.same({ "partial" }, r:line())
		T.same({ false, "connection reset by peer", 104 }, r:read(5))
		T.same({ "next" }, r:read(4))
		T.same({ nil, n = 1 }, r:read(1))
	end)
end)

T.case("a closed stream: false, closed", function()
	local c, s = pair()
	T.async(function()
		-- closed while the reader waits
		local r = reader(s)
		assert(c:write("partial"))
		T.spawn(function()
			T.settle()
			s:close()
		end)
		T.same({ false, "closed" }, r:line())
		-- closed before the call: the stream's `read` raises, the reader returns
		T.same({ false, "closed" }, r:line())
		T.same({ false, "closed" }, r:all())
		-- what was buffered can still be taken
		T.same({ "partial" }, r:read(7))
	end)
	c:close()
	-- a file closed before the call
	local path = T.writefile(T.tmppath(), "data")
	T.async(function()
		local f = assert(system.openfile(path, "r"))
		f:close()
		T.same({ false, "closed" }, reader(f):line())
	end)
	os.remove(path)
end)

T.case("cancellation by an explicit resume: nothing buffered is lost", function()
	local c, s = pair()
	local r = reader(s, 4)
	local results = {}
	local co = T.spawn(function()
		results[1] = table.pack(r:line())
		results[2] = table.pack(r:line())
		results[3] = table.pack(r:upto("##"))
		results[4] = table.pack(r:upto("##"))
		results[5] = table.pack(r:read(6))
		results[6] = table.pack(r:read(6))
		results[7] = table.pack(r:all())
		results[8] = table.pack(r:all())
	end)
	local function check(k, ...)
		local got = results[k]
		assert(got, "no results " .. k)
		T.same(table.pack(...), table.unpack(got, 1, got.n))
	end
	T.async(function()
		assert(c:write("abc")) -- buffered, no end of line yet
		T.settle()
		coroutine.resume(co, "x", nil, 3) -- cancels line()
		check(1, "x", nil, 3)
		assert(c:write("def\nit"))
		T.settle()
		check(2, "abcdef")
		coroutine.resume(co) -- cancels upto(), no values
		check(3)
		assert(c:write("em##12"))
		T.settle()
		check(4, "item")
		coroutine.resume(co, false, "gone", 1) -- cancels read(6), "12" buffered
		check(5, false, "gone", 1)
		assert(c:write("3456"))
		T.settle()
		check(6, "123456")
		assert(c:write("the rest"))
		T.settle()
		coroutine.resume(co, "stop") -- cancels all()
		check(7, "stop")
		c:close()
		T.settle()
		check(8, "the rest")
	end)
	assert(coroutine.status(co) == "dead")
	s:close()
end)

T.case("a deadline (await.within) interrupts a read, the data kept", function()
	local c, s = pair()
	T.async(function()
		local r = reader(s)
		assert(c:write("slow"))
		T.same({ false, "connection timed out", 110 }, await.within(0.05, r.line, r))
		assert(c:write(" line\n"))
		T.same({ "slow line" }, await.within(1, r.line, r))
	end)
	c:close()
	s:close()
end)

T.case("a reader in a loser of await.any: closed at once, the reader usable", function()
	local c, s = pair()
	T.async(function()
		local r = reader(s)
		assert(c:write("half "))
		T.same({ 2, "late" }, await.any(
			function() return r:line() end,
			function() system.suspend(0.05) return "late" end))
		assert(c:write("and half\n"))
		T.same({ "half and half" }, r:line())
	end)
	c:close()
	s:close()
end)

T.case("one coroutine at a time", function()
	local c, s = pair()
	local r = reader(s)
	local first
	T.spawn(function() first = r:line() end)
	T.async(function()
		T.raises("reader already in use", r.line, r)
		T.raises("reader already in use", r.read, r, 1)
		assert(c:write("ok\n"))
		T.settle()
		assert(first == "ok")
	end)
	c:close()
	s:close()
end)

T.done()
