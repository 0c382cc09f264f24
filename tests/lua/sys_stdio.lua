-- spec/stdio-info.md §1: system.stdin, system.stdout, system.stderr and
-- coutil:terminal. Most cases run a child interpreter with the streams
-- under test and check what it reports.
local T = require "testlib"
local system = require "coutil.system"
local memory = require "coutil.memory"

local interp = arg[-1]
assert(type(interp) == "string", "no interpreter in arg[-1]")

local luachild = T.luachild

local go = T.go

local readall = T.readall

local tmppath = T.tmppath

-- Runs the child `code` with the fields of `t` (stdout "r" unless given);
-- returns its exit results and its whole stdout.
local function run(code, t)
	t = t or {}
	t.execfile, t.arguments = interp, { "-e", luachild(code) }
	if t.stdout == nil then t.stdout = "r" end
	local done
	T.spawn(function() done = table.pack(system.execute(t)) end)
	local out = ""
	if type(t.stdout) == "userdata" and tostring(t.stdout):find("pipe") then
		out = readall(t.stdout)
		t.stdout:close()
	end
	while not done do system.suspend(0.01) end
	return done, out, t
end

local function class(obj)
	return tostring(obj):match("^(coutil:%a+)") or tostring(obj)
end

T.case("fields are made once, on first access", function()
	local a, b = system.stdout, system.stdout
	assert(a == b)
	assert(system.stderr == system.stderr)
	assert(system.nosuchfield == nil)
	for _, name in ipairs { "stdin", "stdout", "stderr" } do
		local s = system[name]
		assert(s == nil or class(s):find("^coutil:"), tostring(s))
	end
end)

T.case("a 'w' stdin and 'r' stdout: local stream objects", function()
	go(function()
		local t = { stdin = "w" }
		local done
		local co = T.spawn(function()
			done = table.pack(run([[
				local buf = memory.create(64)
				local n = assert(system.stdin:read(buf))
				assert(system.stdout:write("[" .. buf:tostring(1, n) .. "]"))
				assert(system.stdout:write(tostring(system.stdin):match("^coutil:%a+")))
				assert(system.stdout:write(" " .. tostring(system.stdout):match("^coutil:%a+")))
			]], t))
		end)
		while type(t.stdin) ~= "userdata" do system.suspend(0.01) end
		assert(t.stdin:write("ping"))
		while not done do system.suspend(0.01) end
		T.same({ "exit", 0 }, table.unpack(done[1], 1, 2))
		T.same({ "[ping]coutil:pipeshare coutil:pipeshare" }, done[2])
		t.stdin:close()
		assert(coroutine.status(co) == "dead")
	end)
end)

T.case("a regular file as stdin and stdout: coutil:file", function()
	go(function()
		local inpath, outpath = tmppath(), tmppath()
		local f = assert(io.open(inpath, "w"))
		f:write("file data")
		f:close()
		local fin, fout = assert(io.open(inpath)), assert(io.open(outpath, "w"))
		local done = run([[
			local buf = memory.create(64)
			local n = assert(system.stdin:read(buf))
			assert(system.stdout:write(tostring(system.stdin):match("^coutil:%a+") .. " " .. buf:tostring(1, n)))
			system.stdout:close()
			io.write(" after close")
		]], { stdin = fin, stdout = fout })
		fin:close()
		fout:close()
		T.same({ "exit", 0 }, table.unpack(done, 1, 2))
		f = assert(io.open(outpath))
		T.same({ "coutil:file file data after close" }, f:read("a"))
		f:close()
		os.remove(inpath)
		os.remove(outpath)
	end)
end)

T.case("pipes: coutil:pipeactive, O_NONBLOCK kept private", function()
	go(function()
		local code = luachild [[
			local i, o = system.stdin, system.stdout
			-- the data comes late: a shared O_NONBLOCK would make io.read fail
			local data = io.read("a")
			io.write(tostring(i):match("^coutil:%a+"), " ", tostring(o):match("^coutil:%a+"), " ", tostring(data))
			io.flush()
			assert(o:write(" via object"))
		]]
		local script = tmppath()
		local f = assert(io.open(script, "w"))
		f:write(code)
		f:close()
		local t = {
			execfile = "sh",
			arguments = { "-c", "(sleep 0.2; printf abc) | \"$0\" \"$1\" | cat", interp, script },
			stdout = "r",
		}
		local done
		T.spawn(function() done = table.pack(system.execute(t)) end)
		local out = readall(t.stdout)
		t.stdout:close()
		while not done do system.suspend(0.01) end
		os.remove(script)
		T.same({ "exit", 0 }, table.unpack(done, 1, done.n))
		T.same({ "coutil:pipeactive coutil:pipeactive abc via object" }, out)
	end)
end)

T.case("a TCP socket as stdin: coutil:tcpactive", function()
	go(function()
		local l = assert(system.socket("passive", "ipv4"))
		assert(l:bind(system.address("ipv4", "127.0.0.1:0")))
		assert(l:listen(1))
		local c = assert(system.socket("stream", "ipv4"))
		assert(c:connect(l:getaddress()))
		local s = assert(l:accept())
		l:close()
		assert(c:write("hi"))
		local done, out = run([[
			local buf = memory.create(8)
			local n = assert(system.stdin:read(buf))
			assert(system.stdin:write("echo:" .. buf:tostring(1, n)))
			assert(system.stdout:write(tostring(system.stdin):match("^coutil:%a+") .. " " .. system.stdin:getdomain()))
		]], { stdin = s })
		T.same({ "exit", 0 }, table.unpack(done, 1, 2))
		T.same({ "coutil:tcpactive ipv4" }, out)
		local buf = memory.create(16)
		local n = assert(c:read(buf))
		T.same({ "echo:hi" }, buf:tostring(1, n))
		c:close()
		s:close()
	end)
end)

T.case("unsupported descriptor: nil and a warning", function()
	go(function()
		local t = { stdin = false, stderr = "r" }
		local done
		local err
		t.execfile, t.arguments = interp, { "-e", luachild [[
			warn("@on")
			io.write(tostring(system.stdin), " ", tostring(system.stdin))
		]] }
		t.stdout = "r"
		T.spawn(function() done = table.pack(system.execute(t)) end)
		local out = readall(t.stdout)
		err = readall(t.stderr)
		t.stdout:close()
		t.stderr:close()
		while not done do system.suspend(0.01) end
		T.same({ "exit", 0 }, table.unpack(done, 1, done.n))
		T.same({ "nil nil" }, out)
		local _, count = err:gsub("%[coutil%] stdin: unsupported file type", "")
		T.same({ 1 }, count) -- warned once
	end)
end)

-- A real terminal: the child runs under `script`, which gives it a
-- pseudo-terminal as its standard streams.
local function hasscript()
	local f = io.popen("command -v script 2>/dev/null")
	local path = f:read("a")
	f:close()
	return path ~= ""
end

if hasscript() then
	T.case("a terminal: coutil:terminal with setmode and winsize", function()
		go(function()
			local code = luachild [[
				local t = system.stdin
				local function stty() -- the terminal's settings, as stty sees them
					local p = io.popen("stty -g")
					local settings = p:read("a")
					p:close()
					return settings
				end
				local before = stty()
				local out = { tostring(t):match("^coutil:%a+"), tostring(t.winsize ~= nil) }
				local w, h = t:winsize()
				out[#out + 1] = math.type(w) .. "/" .. math.type(h)
				out[#out + 1] = tostring(t:setmode("raw"))
				out[#out + 1] = tostring(t:setmode("binary"))
				out[#out + 1] = tostring(t:setmode("normal"))
				local ok, err = pcall(t.setmode, t, "bad")
				out[#out + 1] = tostring(ok) .. ":" .. tostring(err:match("invalid option '[^']*'"))
				out[#out + 1] = tostring(system.stdout:write("[W]"))
				out[#out + 1] = tostring(system.stdout:write(memory.create("[M]"), 2, 2))
				-- a read waiting when the terminal is closed
				local got
				local reader = coroutine.create(function(...) got = table.pack(t:read(...)) end)
				coroutine.resume(reader, memory.create(4))
				out[#out + 1] = tostring(select(2, pcall(t.read, t, memory.create(4))))
				-- a changed mode is restored by close
				t:setmode("raw")
				out[#out + 1] = tostring(stty() ~= before)
				out[#out + 1] = tostring(t:close())
				out[#out + 1] = tostring(stty() == before)
				-- shutdown: no half-close, later writes fail
				local o = system.stdout
				out[#out + 1] = table.concat({ tostring(o:shutdown()), select(2, o:write("x")),
					(select(2, o:shutdown())) }, ":")
				system.suspend(0.05)
				out[#out + 1] = got and tostring(got[1]) .. ":" .. tostring(got[2]) or "reader pending"
				out[#out + 1] = tostring(select(2, pcall(t.close, t))):match("closed object")
				out[#out + 1] = tostring(select(2, pcall(t.winsize, t))):match("closed object")
				out[#out + 1] = tostring(system.stdin == t)
				io.write("\nRESULT:", table.concat(out, ","), "\n")
			]]
			local script = tmppath()
			local f = assert(io.open(script, "w"))
			f:write(code)
			f:close()
			local t = {
				execfile = "script",
				arguments = { "-qec", "'" .. interp .. "' '" .. script .. "'", "/dev/null" },
				-- NOTE: a pipe kept open: at the end of its input `script`
				-- sends an EOF character to the terminal, which the child's
				-- pending read could receive, depending on timing.
				stdin = "w",
				stdout = "r",
			}
			local done
			T.spawn(function() done = table.pack(system.execute(t)) end)
			local out = readall(t.stdout)
			t.stdin:close()
			t.stdout:close()
			while not done do system.suspend(0.01) end
			os.remove(script)
			local result = out:match("RESULT:([^\r\n]*)")
			assert(result, "no result from the child: " .. out)
			T.same({
				"coutil:terminal,true,integer/integer,true,true,true,"
				.. "false:invalid option 'bad',true,true,bad argument #1 to '?' (already in use),true,true,true,"
				.. "true:broken pipe:socket is not connected,"
				.. "false:closed,closed object,closed object,true"
			}, result)
			assert(out:find("[W]M", 1, true), out)
			T.same({ "exit", 0 }, table.unpack(done, 1, done.n))
		end)
	end)
else
	print("SKIPPED: terminal case (the 'script' command is missing)")
end

T.done()
