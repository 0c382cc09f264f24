-- spec/process.md §3: system.execute.
local T = require "testlib"
local system = require "coutil.system"
local memory = require "coutil.memory"

-- The interpreter running this script: `coutil` (absolute path) or
-- `lua5.4`, which finds coutil.so through the inherited LUA_CPATH.
local interp = arg[-1]
assert(type(interp) == "string", "no interpreter in arg[-1]")

local luachild = T.luachild

local unyieldable = T.unyieldable
local go = T.go

local readall = T.readall

local tmppath = T.tmppath

-- A connected pair of local stream sockets.
local function pair()
	local path = tmppath()
	local l = assert(system.socket("passive", "local"))
	assert(l:bind(path))
	assert(l:listen(1))
	local c = assert(system.socket("stream", "local"))
	assert(c:connect(path))
	local s = assert(l:accept())
	l:close()
	return c, s
end

-- Is `pid` a process (zombie or not)?
local function exists(pid)
	local f = io.open("/proc/" .. pid .. "/stat")
	if f then f:close() end
	return f ~= nil
end

T.case("outside a coroutine: unable to yield before argument checks", function()
	for _, args in ipairs { {}, { {} }, { "true" }, { 1, 2 } } do
		local ok, err = unyieldable(system.execute, table.unpack(args))
		assert(not ok and tostring(err):find("unable to yield", 1, true), tostring(err))
	end
end)

T.case("string form: exit status, PATH search, arguments", function()
	go(function()
		T.same({ "exit", 0 }, system.execute("true"))
		T.same({ "exit", 1 }, system.execute("false"))
		T.same({ "exit", 0 }, system.execute("/bin/true"))
		T.same({ "exit", 7 }, system.execute("sh", "-c", "exit 7"))
		-- numbers are arguments too ($0 is the first after the script)
		T.same({ "exit", 42 }, system.execute("sh", "-c", "exit $0", 42))
		T.same({ "exit", 255 }, system.execute("sh", "-c", "exit 255"))
	end)
end)

T.case("string form: bad arguments", function()
	go(function()
		T.raises("bad argument #1 to", system.execute, nil)
		T.raises("(string expected, got table)", system.execute, "sh", {})
		T.raises("bad argument #3", system.execute, "sh", "-c", true)
	end)
end)

T.case("cannot start: failure triple", function()
	go(function()
		T.same({ false, "no such file or directory", 2 }, system.execute("no-such-program-coutil"))
		T.same({ false, "no such file or directory", 2 }, system.execute("/nonexistent/program"))
		T.same({ false, "no such file or directory", 2 },
			system.execute { execfile = "true", runpath = "/nonexistent/dir" })
		T.same({ false, "permission denied", 13 }, system.execute("/etc/passwd"))
		-- regression: was "unknown error"; not run by a shell either
		local junk = tmppath()
		local f = assert(io.open(junk, "w"))
		f:write("\127ELF not really\n")
		f:close()
		assert(system.grantfile(junk, "rwx", "~"))
		T.same({ false, "exec format error", 8 }, system.execute(junk))
		T.same({ false, "exec format error", 8 }, system.execute { execfile = junk })
		os.remove(junk)
		local t = { execfile = "no-such-program-coutil", stdout = "r" }
		T.same({ false, "no such file or directory", 2 }, system.execute(t))
		T.same({ "r" }, t.stdout) -- not replaced on failure
		assert(t.pid == nil)
	end)
end)

T.case("table form: bad fields raise exact texts", function()
	go(function()
		local x = system.execute
		T.raises("bad field execfile (must be a string)", x, {})
		T.raises("bad field execfile (must be a string)", x, { execfile = 1 })
		T.raises("bad field runpath (must be a string)", x, { execfile = "true", runpath = 1 })
		T.raises("(field 'arguments' must be a table)", x, { execfile = "true", arguments = "a" })
		local msg = T.raises("(field 'arguments' must be a table)", x, { execfile = "true", arguments = 1 })
		assert(msg:find("bad argument #1", 1, true), msg)
		T.raises("bad value #2 in field 'arguments' (must be a string)", x,
			{ execfile = "true", arguments = { "a", {} } })
		T.raises("bad value #1 in field 'arguments' (must be a string)", x,
			{ execfile = "true", arguments = { true } })
		T.raises("coutil:procesenv expected", x, { execfile = "true", environment = 1 })
		T.raises("coutil:procesenv expected", x, { execfile = "true", environment = io.stdout })
		T.raises("bad name 'A=B'", x, { execfile = "true", environment = { ["A=B"] = "x" } })
		-- regression: these said "bad name 'A' in environment (cannot contain '=')"
		local msg = T.raises("(environment value for 'A' must be a string, got boolean)", x,
			{ execfile = "true", environment = { A = true } })
		assert(msg:find("bad argument #1 to '", 1, true), msg)
		T.raises("(environment value for 'PATH' must be a string, got table)", x,
			{ execfile = "true", environment = { PATH = {} } })
		T.raises("bad argument #1 to", x, { execfile = "true", environment = { "x" } })
		T.raises("(environment name must be a string, got number)", x,
			{ execfile = "true", environment = { "x" } })
		T.raises("(environment name must be a string, got table)", x,
			{ execfile = "true", environment = { [{}] = "x" } })
		T.raises("bad field stdin (got true)", x, { execfile = "true", stdin = true })
		T.raises("bad field stdout (got true)", x, { execfile = "true", stdout = true })
		T.raises("unknown 'stdout' mode char (got 'x')", x, { execfile = "true", stdout = "rx" })
		T.raises("unknown 'stdin' mode char (got 'R')", x, { execfile = "true", stdin = "R" })
		T.raises("bad field stderr (invalid stream)", x, { execfile = "true", stderr = {} })
		T.raises("bad field stderr (invalid stream)", x, { execfile = "true", stderr = 1 })
		local p = assert(system.socket("passive", "ipv4"))
		T.raises("bad field stdin (invalid stream)", x, { execfile = "true", stdin = p })
		p:close()
		local s = assert(system.socket("stream", "local"))
		s:close()
		T.raises("bad field stdout (invalid stream)", x, { execfile = "true", stdout = s })
		local f = io.tmpfile()
		f:close()
		T.raises("bad field stdout (invalid stream)", x, { execfile = "true", stdout = f })
		-- other arguments are ignored
		T.same({ "exit", 0 }, x({ execfile = "true" }, {}, 1))
	end)
end)

T.case("table form: arguments, environment, runpath", function()
	go(function()
		local t = {
			execfile = "sh",
			arguments = { "-c", 'printf "%s|" "$@"', "x", "a", 1, "b\0c", "" },
			stdout = "r",
		}
		T.same({ "exit", 0 }, system.execute(t))
		T.same({ "a|1|b||" }, readall(t.stdout))
		t.stdout:close()

		t = { execfile = "/usr/bin/env", environment = { FOO = "bar" }, stdout = "r" }
		T.same({ "exit", 0 }, system.execute(t))
		T.same({ "FOO=bar\n" }, readall(t.stdout))
		t.stdout:close()

		t = { execfile = "/usr/bin/env", environment = system.packenv { X = 1 }, stdout = "r" }
		T.same({ "exit", 0 }, system.execute(t))
		T.same({ "X=1\n" }, readall(t.stdout))
		t.stdout:close()

		t = { execfile = "/usr/bin/env", environment = {}, stdout = "r" }
		T.same({ "exit", 0 }, system.execute(t))
		T.same({ "" }, readall(t.stdout))
		t.stdout:close()

		-- PATH of the given environment is searched
		t = { execfile = "sh", environment = { PATH = "/nonexistent" } }
		T.same({ false, "no such file or directory", 2 }, system.execute(t))

		t = { execfile = "pwd", runpath = "/", stdout = "r" }
		T.same({ "exit", 0 }, system.execute(t))
		T.same({ "/\n" }, readall(t.stdout))
		t.stdout:close()
	end)
end)

T.case("pipes in every direction", function()
	go(function()
		local t = { execfile = "cat", stdin = "w", stdout = "r" }
		local done
		T.spawn(function() done = table.pack(system.execute(t)) end)
		assert(tostring(t.stdin):find("coutil:pipeactive", 1, true), tostring(t.stdin))
		assert(tostring(t.stdout):find("coutil:pipeactive", 1, true), tostring(t.stdout))
		T.same({ "local" }, t.stdin:getdomain())
		assert(t.stdin:write("hello "))
		assert(t.stdin:write(memory.create("world")))
		assert(t.stdin:shutdown())
		T.same({ "hello world" }, readall(t.stdout))
		while not done do system.suspend(0.01) end
		T.same({ "exit", 0 }, table.unpack(done, 1, done.n))
		t.stdin:close()
		t.stdout:close()

		t = { execfile = "sh", arguments = { "-c", "echo out; echo err >&2" }, stdout = "r", stderr = "r" }
		T.spawn(function() done = table.pack(system.execute(t)) end)
		T.same({ "out\n" }, readall(t.stdout))
		T.same({ "err\n" }, readall(t.stderr))
		t.stdout:close()
		t.stderr:close()

		-- "s": share domain
		t = { execfile = "true", stdin = "ws" }
		T.same({ "exit", 0 }, system.execute(t))
		assert(tostring(t.stdin):find("coutil:pipeshare", 1, true), tostring(t.stdin))
		T.same({ "share" }, t.stdin:getdomain())
		t.stdin:close()
	end)
end)

T.case("discard streams", function()
	go(function()
		local t = {
			execfile = "sh",
			arguments = { "-c", "cat; echo out; echo err >&2" },
			stdin = false, stdout = false, stderr = "r",
		}
		T.same({ "exit", 0 }, system.execute(t))
		T.same({ "err\n" }, readall(t.stderr))
		t.stderr:close()
	end)
end)

T.case("a Lua io file as stream", function()
	go(function()
		local path = tmppath()
		local f = assert(io.open(path, "w"))
		T.same({ "exit", 0 }, system.execute { execfile = "sh", arguments = { "-c", "echo in file" }, stdout = f })
		f:close()
		f = assert(io.open(path))
		T.same({ "in file\n" }, f:read("a"))
		f:close()
		f = assert(io.open(path))
		local t = { execfile = "cat", stdin = f, stdout = "r" }
		T.same({ "exit", 0 }, system.execute(t))
		T.same({ "in file\n" }, readall(t.stdout))
		t.stdout:close()
		f:close()
		os.remove(path)
	end)
end)

T.case("a connected stream socket as stream", function()
	go(function()
		local a, b = pair()
		T.same({ "exit", 0 }, system.execute { execfile = "sh", arguments = { "-c", "echo via socket" }, stdout = a })
		a:close() -- the child's copy is gone too: b reads end of file
		T.same({ "via socket\n" }, readall(b))
		b:close()
	end)
end)

T.case("a child reads our non-blocking socket as a blocking stdin", function()
	go(function()
		local a, b = pair()
		-- The child reads before we write: with a non-blocking descriptor
		-- its read would fail at once (EAGAIN) and it would exit with 3.
		local code = "os.exit(io.stdin:read(5) == 'later' and 0 or 3)"
		local done
		T.spawn(function()
			done = table.pack(system.execute { execfile = interp, arguments = { "-e", code }, stdin = a })
		end)
		system.suspend(0.2)
		assert(b:write("later"))
		while not done do system.suspend(0.01) end
		T.same({ "exit", 0 }, table.unpack(done, 1, done.n))
		-- The child and `a` share the socket's status flags, and the child
		-- made it blocking; our reads and writes on `a` still never block
		-- the loop: the timer below fires while the read waits for data
		-- that a new child sends only later.
		local fired = false
		T.spawn(function() system.suspend(0.05) fired = true end)
		local t = { execfile = "sh", arguments = { "-c", "sleep 0.3; printf more" }, stdout = b }
		T.spawn(function() done = table.pack(system.execute(t)) end)
		local buf = memory.create(8)
		T.same({ 4 }, a:read(buf))
		T.same({ "more", true }, buf:tostring(1, 4), fired)
		-- A write larger than the socket buffers, read by a child that starts
		-- late: the write waits, other coroutines run meanwhile.
		local started = system.nanosecs()
		local ticked
		T.spawn(function() system.suspend(0.05) ticked = system.nanosecs() end)
		done = nil
		t = { execfile = "sh", arguments = { "-c", "sleep 1; cat >/dev/null" }, stdin = b }
		T.spawn(function() done = table.pack(system.execute(t)) end)
		T.same({ true }, a:write(string.rep("x", 8 << 20)))
		assert(ticked and ticked - started < 0.6e9, "the loop was blocked by the write")
		a:close()
		while not done do system.suspend(0.01) end
		T.same({ "exit", 0 }, table.unpack(done, 1, done.n))
		b:close()
	end)
end)

T.case("a child reads our non-blocking pipe as a blocking stdin", function()
	-- The middle child's system.stdin is a pipe, which it reads
	-- non-blocking on a description of its own; the grandchild, reading
	-- before the data comes, gets the pipe blocking (C stdio gives up on
	-- EAGAIN), and the middle child's object stays non-blocking (its timer
	-- fires while it waits).
	go(function()
		-- The middle child reports on its stderr (errors in its coroutines
		-- after the first suspension are only warnings).
		local code = "local interp = " .. string.format("%q", interp) .. " " .. luachild [[
			local t = { execfile = interp, stdin = system.stdin,
			            arguments = { "-e", "os.exit(io.read('l') == 'later' and 0 or 3)" } }
			local status, n = system.execute(t)
			local fired = false
			coroutine.wrap(function() system.suspend(0.05) fired = true end)()
			local buf = memory.create(8)
			local got = system.stdin:read(buf)
			io.stderr:write(status, " ", n, " ", buf:tostring(1, got or 0), " ", tostring(fired))
		]]
		local t = {
			execfile = "sh",
			arguments = { "-c", '(sleep 0.5; echo later; sleep 0.3; echo more) | "$0" -e "$1"', interp, code },
			stderr = "r",
		}
		local done
		T.spawn(function() done = table.pack(system.execute(t)) end)
		T.same({ "exit 0 more\n true" }, readall(t.stderr))
		t.stderr:close()
		while not done do system.suspend(0.01) end
		T.same({ "exit", 0 }, table.unpack(done, 1, done.n))
	end)
end)

T.case("passing a socket to a child over a 'ws' stdin", function()
	go(function()
		local code = luachild [[
			local buf = memory.create(8)
			local n, sock = system.stdin:read(buf)
			assert(n == 1 and sock, tostring(n) .. " " .. tostring(sock))
			assert(sock:write("got:" .. buf:tostring(1, 1)))
			sock:close()
		]]
		local t = { execfile = interp, arguments = { "-e", code }, stdin = "ws" }
		local done
		T.spawn(function() done = table.pack(system.execute(t)) end)
		local a, b = pair()
		assert(t.stdin:write("x", 1, 1, a))
		a:close()
		T.same({ "got:x" }, readall(b))
		b:close()
		while not done do system.suspend(0.01) end
		T.same({ "exit", 0 }, table.unpack(done, 1, done.n))
		t.stdin:close()
	end)
end)

T.case("pid set before suspending; killed child gives the signal", function()
	go(function()
		local t = { execfile = "sleep", arguments = { "10" } }
		local done
		T.spawn(function() done = table.pack(system.execute(t)) end)
		assert(math.type(t.pid) == "integer" and t.pid > 0, tostring(t.pid))
		assert(exists(t.pid))
		T.same({ true }, system.emitsig(t.pid, "TERMINATE"))
		while not done do system.suspend(0.01) end
		T.same({ "TERMINATE", 9 }, table.unpack(done, 1, done.n))
		assert(not exists(t.pid), "child not reaped")

		t = { execfile = "sleep", arguments = { "10" } }
		T.spawn(function() done = table.pack(system.execute(t)) end)
		T.same({ true }, system.emitsig(t.pid, "terminate"))
		done = nil
		while not done do system.suspend(0.01) end
		T.same({ "terminate", 15 }, table.unpack(done, 1, done.n))
		T.same({ "userdef1", 10 }, system.execute("sh", "-c", "kill -USR1 $$"))
	end)
end)

T.case("signals this process ignores are at their default in the child", function()
	-- The middle child starts ignoring SIGHUP (as under nohup); a child it
	-- starts through io.popen keeps ignoring it, one it executes does not.
	go(function()
		local code = luachild [[
			local f = assert(io.popen("echo $$; exec sleep 5"))
			local pid = math.tointeger(tonumber(f:read("l")))
			system.emitsig(pid, "hangup")
			system.suspend(0.1)
			local stat = io.open("/proc/" .. pid .. "/stat"):read("a")
			local survived = stat:match("%) (%a)") ~= "Z" -- not a zombie
			system.emitsig(pid, "TERMINATE")
			f:close()
			local t = { execfile = "sleep", arguments = { "5" } }
			coroutine.wrap(function() system.suspend(0.1) system.emitsig(t.pid, "hangup") end)()
			local name, signo = system.execute(t)
			io.stderr:write(tostring(survived), " ", name, " ", signo)
		]]
		local t = { execfile = "sh", arguments = { "-c", 'trap "" HUP; exec "$0" -e "$1"', interp, code }, stderr = "r" }
		local done
		T.spawn(function() done = table.pack(system.execute(t)) end)
		T.same({ "true hangup 1" }, readall(t.stderr))
		t.stderr:close()
		while not done do system.suspend(0.01) end
		T.same({ "exit", 0 }, table.unpack(done, 1, done.n))
	end)
end)

T.case("child closing its pipes early", function()
	go(function()
		local t = {
			execfile = "sh",
			arguments = { "-c", "exec 1>&- 0<&-; sleep 0.2; exit 3" },
			stdin = "w", stdout = "r",
		}
		local done
		T.spawn(function() done = table.pack(system.execute(t)) end)
		T.same({ "" }, readall(t.stdout)) -- end of file while it runs
		assert(not done)
		while not done do system.suspend(0.01) end
		T.same({ "exit", 3 }, table.unpack(done, 1, done.n))
		-- writing to the closed pipe fails instead of killing us
		local ok, err = t.stdin:write("x")
		T.same({ false, "broken pipe" }, ok, err)
		t.stdin:close()
		t.stdout:close()
	end)
end)

T.case("SIGPIPE kills a child writing to a closed pipe", function()
	go(function()
		local t = { execfile = "sh", arguments = { "-c", "sleep 0.1; while :; do echo x; done" }, stdout = "r" }
		local done
		T.spawn(function() done = table.pack(system.execute(t)) end)
		t.stdout:close()
		while not done do system.suspend(0.01) end
		T.same({ "brokenpipe", 13 }, table.unpack(done, 1, done.n))
	end)
end)

T.case("explicit resume stops waiting; the child is still reaped", function()
	go(function()
		local t = { execfile = "sleep", arguments = { "0.3" } }
		local co = T.spawn(function() return system.execute(t) end)
		local pid = t.pid
		assert(exists(pid))
		T.same({ true, "stop", nil, 3 }, coroutine.resume(co, "stop", nil, 3))
		T.same({ "dead" }, coroutine.status(co))
		assert(exists(pid), "the child must not be killed")
		-- the coroutine may await again at once
		T.same({ "exit", 0 }, system.execute("true"))
		for _ = 1, 200 do
			if not exists(pid) then break end
			system.suspend(0.01)
		end
		assert(not exists(pid), "child left a zombie")
	end)
end)

T.case("resume then await again in the same coroutine", function()
	local res
	local co = T.spawn(function()
		local first = table.pack(system.execute("sleep", "0.2"))
		res = table.pack(first[1], system.execute("sh", "-c", "exit 5"))
	end)
	coroutine.resume(co, "cancelled")
	system.run()
	T.same({ "cancelled", "exit", 5 }, table.unpack(res, 1, res.n))
end)

T.case("closed coroutine: child still reaped", function()
	local t = { execfile = "sleep", arguments = { "0.2" } }
	local co = T.spawn(function() system.execute(t) end)
	local pid = t.pid
	coroutine.close(co)
	system.run()
	go(function()
		for _ = 1, 200 do
			if not exists(pid) then break end
			system.suspend(0.01)
		end
	end)
	assert(not exists(pid), "child left a zombie")
end)

T.case("many arguments and concurrent children", function()
	go(function()
		local args = { "-c", 'echo $#' }
		for i = 1, 5000 do args[#args + 1] = tostring(i) end
		local t = { execfile = "sh", arguments = args, stdout = "r" }
		T.same({ "exit", 0 }, system.execute(t))
		T.same({ "4999\n" }, readall(t.stdout))
		t.stdout:close()
		local results = {}
		for i = 1, 10 do
			T.spawn(function() results[i] = table.pack(system.execute("sh", "-c", "exit " .. i)) end)
		end
		for i = 1, 10 do
			while not results[i] do system.suspend(0.01) end
			T.same({ "exit", i }, table.unpack(results[i], 1, 2))
		end
	end)
end)

T.case("regression: children inherit no descriptor of the library", function()
	-- The descriptors a child sees (`ls` adds its own directory, 3).
	local function listing()
		local t = { execfile = "ls", arguments = { "/proc/self/fd" }, stdout = "r" }
		T.same({ "exit", 0 }, system.execute(t))
		local names = {}
		for name in readall(t.stdout):gmatch("%d+") do names[#names + 1] = tonumber(name) end
		t.stdout:close()
		table.sort(names)
		return table.concat(names, " ")
	end
	go(function()
		local before = listing() -- the host's own inherited ones, if any
		-- one descriptor of each kind the library opens, kept open
		local p = tmppath()
		local temp, tempfile = assert(system.maketemp(tmppath(), "fo"))
		local files = {
			assert(system.openfile(p, "~wN", "rw")), -- without `x`
			assert(system.openfile(p, "r")),
			assert(system.openfile(p, "~wrx")),
			tempfile,
		}
		local c, s = pair()
		local l = assert(system.socket("passive", "ipv4"))
		assert(l:bind(system.address("ipv4", "127.0.0.1", 0)))
		assert(l:listen(1))
		local u = assert(system.socket("datagram", "ipv4"))
		local sleeping = { execfile = "sleep", arguments = { "5" }, stdin = "w", stdout = "r" }
		local slept
		T.spawn(function() slept = table.pack(system.execute(sleeping)) end)
		local signalled
		local waiting = T.spawn(function() signalled = system.awaitsig("userdef2") end)
		local after = listing()
		coroutine.resume(waiting, "done")
		T.same({ "done" }, signalled)
		T.same({ true }, system.emitsig(sleeping.pid, "terminate"))
		while not slept do system.suspend(0.01) end
		T.same({ "terminate", 15 }, table.unpack(slept, 1, slept.n))
		sleeping.stdin:close()
		sleeping.stdout:close()
		for _, f in ipairs(files) do f:close("~") end
		for _, sock in ipairs({ c, s, l, u }) do sock:close() end
		os.remove(p)
		os.remove(temp)
		T.same({ before }, after)
	end)
end)

-- Extensions (spec/seed-todo.md E2): uid, gid, pgroup, detach.

-- Name, state, parent, process group and session of process `pid` (nil
-- if none).
local function procstat(pid)
	local f = io.open("/proc/" .. pid .. "/stat")
	if not f then return nil end
	local stat = f:read("a") -- nil if the process was reaped since the open
	f:close()
	if not stat then return nil end
	local comm, state, ppid, pgrp, sid = stat:match("%((.*)%) (%S+) (%d+) (%d+) (%d+)")
	return { comm = comm, state = state, ppid = tonumber(ppid), pgrp = tonumber(pgrp), sid = tonumber(sid) }
end

-- Reads stream socket `s` up to the first end of line; returns the line.
local function readline(s)
	local buf, line = memory.create(1), {}
	repeat
		assert(s:read(buf) == 1)
		line[#line + 1] = buf:tostring()
	until line[#line] == "\n"
	return table.concat(line, "", 1, #line - 1)
end

-- The results of a command: its standard output and how it ended.
local function output(t)
	t.stdout = "r"
	local how = table.pack(system.execute(t))
	local out = how[1] and readall(t.stdout)
	if how[1] then t.stdout:close() end
	return out, table.unpack(how, 1, how.n)
end

-- This process's user and group ids (by `id`, which knows them).
local function ids()
	local uid, gid
	go(function()
		uid = math.tointeger(tonumber((output { execfile = "id", arguments = { "-u" } })))
		gid = math.tointeger(tonumber((output { execfile = "id", arguments = { "-g" } })))
	end)
	return uid, gid
end
local myuid, mygid = ids()
local NOBODY = 65534

-- Waits until process `pid` is gone (a zombie too, unless `reaped`, else
-- up to 3 s more); returns the state of the zombie left, if any.
local function ended(pid, reaped)
	local st
	for _ = 1, 300 do
		st = procstat(pid)
		if not st or (st.state == "Z" and not reaped) then return st end
		system.suspend(0.01)
	end
	assert(st.state == "Z", "process " .. pid .. " still runs")
	return st
end

T.case("uid, gid, pgroup, detach: bad values raise exact texts", function()
	go(function()
		local x = system.execute
		for _, field in ipairs { "uid", "gid" } do
			for _, bad in ipairs { "0", 1.5, true, {}, io.stdout, 0 / 0 } do
				T.raises("bad field " .. field .. " (must be an integer)", x, { execfile = "true", [field] = bad })
			end
			for _, bad in ipairs { -1, 1 << 32, (1 << 32) - 1, math.mininteger, 2 ^ 53 } do
				T.raises("bad field " .. field .. " (out of range)", x, { execfile = "true", [field] = bad })
			end
		end
		for _, field in ipairs { "pgroup", "detach" } do
			for _, bad in ipairs { 1, "true", {}, io.stdout } do
				T.raises("bad field " .. field .. " (must be a boolean)", x, { execfile = "true", [field] = bad })
			end
		end
		-- fields are checked in order (the new ones last), before anything
		-- is created
		T.raises("bad field stdout (got true)", x, { execfile = "true", stdout = true, uid = "x" })
		T.raises("bad field uid (must be an integer)", x, { execfile = "true", uid = "x", gid = "x" })
		T.raises("bad field gid (must be an integer)", x, { execfile = "true", gid = "x", pgroup = 1 })
		T.raises("bad field pgroup (must be a boolean)", x, { execfile = "true", pgroup = 1, detach = 1 })
		local t = { execfile = "true", stdout = "r", detach = 0 }
		T.raises("bad field detach (must be a boolean)", x, t)
		T.same({ "r" }, t.stdout)
		assert(t.pid == nil)
		-- absent or false: as without them; integral floats are integers
		T.same({ "exit", 0 }, x { execfile = "true", pgroup = false, detach = false })
		T.same({ "exit", 0 }, x { execfile = "true", uid = myuid + 0.0, gid = mygid + 0.0 })
	end)
end)

T.case("uid and gid: the caller's own ids work", function()
	go(function()
		T.same({ myuid .. "\n" .. mygid .. "\n", "exit", 0 },
			output { execfile = "sh", arguments = { "-c", "id -u; id -g" }, uid = myuid, gid = mygid })
		T.same({ myuid .. "\n", "exit", 0 }, output { execfile = "id", arguments = { "-u" }, uid = myuid })
		T.same({ mygid .. "\n", "exit", 0 }, output { execfile = "id", arguments = { "-g" }, gid = mygid })
	end)
end)

T.case("uid and gid (root only): the child runs as nobody", function()
	if myuid ~= 0 then
		print("SKIPPED: not root")
		return
	end
	go(function()
		-- without the supplementary groups of root
		T.same({ NOBODY .. "\n" .. NOBODY .. "\n" .. NOBODY .. "\n", "exit", 0 }, output {
			execfile = "sh", arguments = { "-c", "id -u; id -g; id -G" }, uid = NOBODY, gid = NOBODY })
		T.same({ "0\n" .. NOBODY .. "\n", "exit", 0 },
			output { execfile = "sh", arguments = { "-c", "id -u; id -g" }, gid = NOBODY })
		T.same({ NOBODY .. "\n0\n0\n", "exit", 0 },
			output { execfile = "sh", arguments = { "-c", "id -u; id -g; id -G" }, uid = NOBODY })
		-- the supplementary groups are dropped (this process may have none:
		-- give some to a child interpreter when setpriv(1) is there)
		local code = luachild [[
			io.stdout:setvbuf("no")
			print(system.execute { execfile = "id", arguments = { "-G" } })
			print(system.execute { execfile = "id", arguments = { "-G" }, uid = 65534, gid = 65534 })
			print(system.execute { execfile = "id", arguments = { "-G" }, gid = 0 })
		]]
		local out, how = output { execfile = "setpriv", arguments = { "--groups", "4,5", interp, "-e", code } }
		if how then
			T.same({ "0 4 5\nexit\t0\n65534\nexit\t0\n0\nexit\t0\n" }, out)
		else
			print("SKIPPED: no setpriv to test supplementary groups")
		end
		-- the program is found and started as the new user
		local dir = T.tmppath()
		assert(system.makedir(dir, "rwx", "~"))
		local script = T.writefile(dir .. "/script", "#!/bin/sh\nexit 4\n")
		assert(system.grantfile(script, "rwx", "~"))
		T.same({ false, "permission denied", 13 }, system.execute { execfile = script, uid = NOBODY, gid = NOBODY })
		T.same({ "exit", 4 }, system.execute { execfile = script })
		os.remove(script)
		assert(system.removefile(dir, "~d"))
	end)
end)

-- Runs `code` as the interpreter's chunk with the ids given; returns its
-- standard output and how it ended.
local function luaas(uid, gid, code)
	return output { execfile = interp, arguments = { "-e", luachild(code) }, uid = uid, gid = gid }
end

T.case("uid and gid without the privilege: operation not permitted", function()
	-- Run as nobody when we are root (and nobody may run this interpreter
	-- and library), else as ourselves.
	local code = [[
		local uid, gid = %d, %d
		local function show(...)
			local t = table.pack(...)
			for i = 1, t.n do t[i] = tostring(t[i]) end
			return table.concat(t, " ", 1, t.n)
		end
		print(show(system.execute { execfile = "true", uid = 0 }))
		print(show(system.execute { execfile = "true", gid = 0 }))
		local t = { execfile = "true", uid = 0, gid = gid, stdout = "r" }
		print(show(system.execute(t)), t.stdout, t.pid)
		print(show(system.execute { execfile = "true", uid = uid, gid = gid }))
	]]
	local uid, gid = myuid, mygid
	go(function()
		if myuid == 0 then
			local how, status = system.execute { execfile = interp, arguments = { "-e", "require 'coutil.system'" },
				uid = NOBODY, gid = NOBODY, stderr = false }
			if how ~= "exit" or status ~= 0 then
				print("SKIPPED: nobody cannot run " .. interp .. " with coutil")
				return
			end
			uid, gid = NOBODY, NOBODY
		elseif mygid == 0 then
			print("SKIPPED: group root without user root")
			return
		end
		local failure = "false operation not permitted 1"
		T.same({ table.concat({ failure, failure, failure .. "\tr\tnil", "exit 0", "" }, "\n"), "exit", 0 },
			output { execfile = interp, arguments = { "-e", luachild(code:format(uid, gid)) }, uid = uid, gid = gid })
	end)
end)

T.case("pgroup: a signal to the group reaches the grandchildren", function()
	go(function()
		local mine = procstat(system.procinfo("#"))
		-- The shell reports its background child's pid, then waits for it;
		-- on SIGTERM it reports how that child ended.
		local t = {
			execfile = "sh",
			arguments = { "-c", "trap 'wait $p; echo $?; exit 3' TERM; "
				.. "sleep 30 >/dev/null & p=$!; echo $p; wait $p" },
			stdout = "r", stderr = false, pgroup = true, -- (sh says "Terminated")
		}
		local done
		T.spawn(function() done = table.pack(system.execute(t)) end)
		local grandchild = math.tointeger(tonumber(readline(t.stdout)))
		-- Until it runs `sleep`, it is a copy of the shell, whose trap
		-- would take the signal.
		while procstat(grandchild).comm ~= "sleep" do system.suspend(0.01) end
		local child, sleeper = procstat(t.pid), procstat(grandchild)
		T.same({ t.pid, mine.sid }, child.pgrp, child.sid)
		T.same({ t.pid, mine.sid, t.pid }, sleeper.pgrp, sleeper.sid, sleeper.ppid)
		T.same({ true }, system.emitsig(-t.pid, 0))
		T.same({ true }, system.emitsig(-t.pid, "terminate"))
		T.same({ "143\n" }, readall(t.stdout)) -- 128 + SIGTERM
		t.stdout:close()
		while not done do system.suspend(0.01) end
		T.same({ "exit", 3 }, table.unpack(done, 1, done.n))
		assert(not exists(grandchild), "grandchild left")
		-- without pgroup the child is in our group: there is no group of
		-- its own to signal
		t = { execfile = "sleep", arguments = { "30" } }
		done = nil
		T.spawn(function() done = table.pack(system.execute(t)) end)
		T.same({ mine.pgrp, mine.sid }, procstat(t.pid).pgrp, procstat(t.pid).sid)
		T.same({ false, "no such process", 3 }, system.emitsig(-t.pid, "terminate"))
		T.same({ true }, system.emitsig(t.pid, "terminate"))
		while not done do system.suspend(0.01) end
		T.same({ "terminate", 15 }, table.unpack(done, 1, done.n))
	end)
end)

T.case("detach: the child leads a new session and group", function()
	go(function()
		local mine = procstat(system.procinfo("#"))
		for _, pgroup in ipairs { false, true } do -- pgroup adds nothing
			local t = { execfile = "sleep", arguments = { "30" }, detach = true, pgroup = pgroup }
			local done
			T.spawn(function() done = table.pack(system.execute(t)) end)
			local st = procstat(t.pid)
			T.same({ t.pid, t.pid, system.procinfo("#") }, st.pgrp, st.sid, st.ppid)
			assert(st.sid ~= mine.sid)
			T.same({ true }, system.emitsig(-t.pid, "TERMINATE"))
			while not done do system.suspend(0.01) end
			T.same({ "TERMINATE", 9 }, table.unpack(done, 1, done.n))
			assert(not exists(t.pid), "child not reaped")
		end
	end)
end)

T.case("detach: the child outlives its state, which still reaps it", function()
	-- A state coroutine starts a detached sleep, stops waiting for it and
	-- is closed with it running: the process-wide reaper reaps it.
	local stateco = require "coutil.coroutine"
	local co = stateco.load [[
		local system = require "coutil.system"
		local coroutine = require "coroutine"
		local t = { execfile = "sleep", arguments = { "30" }, detach = true }
		local waiting = coroutine.create(function() return system.execute(t) end)
		coroutine.resume(waiting)
		coroutine.resume(waiting, "stop") -- the child keeps running
		return t.pid
	]]
	go(function()
		local ok, pid = system.resume(co)
		assert(ok == true and math.type(pid) == "integer", tostring(pid))
		T.same({ "dead" }, co:status())
		T.same({ true }, co:close())
		system.suspend(0.1)
		local st = procstat(pid)
		T.same({ "S", pid }, st.state, st.sid)
		T.same({ true }, system.emitsig(pid, "terminate"))
		assert(ended(pid, true) == nil, "zombie left")
	end)
end)

T.case("detach: the child outlives the process that started it", function()
	-- A child interpreter starts a detached sleep, stops waiting for it
	-- and exits: the sleep runs on, reparented.
	local code = luachild [[
		local t = { execfile = "sleep", arguments = { "30" }, detach = true,
		            stdin = false, stdout = false, stderr = false }
		local waiting = coroutine.create(function() return system.execute(t) end)
		coroutine.resume(waiting)
		print(t.pid)
		coroutine.resume(waiting, "stop")
	]]
	go(function()
		local out, how, status = output { execfile = interp, arguments = { "-e", code } }
		T.same({ "exit", 0 }, how, status)
		local pid = math.tointeger(tonumber(out))
		system.suspend(0.1)
		local st = procstat(pid)
		assert(st and st.state ~= "Z", "the detached child did not survive")
		T.same({ pid }, st.sid)
		assert(st.ppid ~= system.procinfo("#"))
		T.same({ true }, system.emitsig(pid, "terminate"))
		-- Its reaping is now the job of its new parent (init, or a
		-- subreaper), which some containers' init does not do.
		st = ended(pid)
		assert(st == nil or st.ppid ~= system.procinfo("#"))
	end)
end)

T.done()
