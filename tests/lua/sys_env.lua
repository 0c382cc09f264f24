-- spec/process.md §2: priority, working directory, environment variables
-- and packed environments.
local T = require "testlib"
local system = require "coutil.system"

local self = system.procinfo("#")
local root = system.procinfo("u") == 0

-- Starts `sleep` in a child process; returns its pid and its pipe.
local function child()
	local f = assert(io.popen("echo $$; exec sleep 5"))
	return math.tointeger(tonumber(f:read("l"))), f
end

local function deadpid()
	local f = assert(io.popen("echo $$"))
	local pid = math.tointeger(tonumber(f:read("l")))
	f:close()
	return pid
end

local function shell(cmd)
	local f = assert(io.popen(cmd))
	local out = f:read("a")
	f:close()
	return out
end

local priorities = {
	highest = -20, high = -14, above = -7, normal = 0, below = 10, low = 19,
}

T.case("getpriority names the value", function()
	local name, value = system.getpriority(self)
	assert(math.type(value) == "integer" and value >= -20 and value <= 19, value)
	T.same({ name, value }, system.getpriority(0))
	if priorities[name] == nil then
		T.same({ "other" }, name)
	else
		T.same({ priorities[name] }, value)
	end
end)

T.case("setpriority of a child by names and numbers", function()
	local pid, f = child()
	for name, value in pairs(priorities) do
		if value >= 0 or root then
			T.same({ true }, system.setpriority(pid, name))
			T.same({ name, value }, system.getpriority(pid))
		end
	end
	T.same({ true }, system.setpriority(pid, 5))
	T.same({ "other", 5 }, system.getpriority(pid))
	T.same({ true }, system.setpriority(pid, 19))
	T.same({ "low", 19 }, system.getpriority(pid))
	local nice = shell("ps -o ni= -p " .. pid):match("%-?%d+")
	if nice then T.same({ "19" }, nice) end
	T.same({ true }, system.emitsig(pid, "TERMINATE"))
	f:close()
end)

T.case("setpriority of the process itself: lowering and raising", function()
	local _, before = system.getpriority(self)
	T.same({ true }, system.setpriority(self, "below"))
	T.same({ "below", 10 }, system.getpriority(self))
	T.same({ true }, system.setpriority(0, 12))
	T.same({ "other", 12 }, system.getpriority(self))
	if root then
		T.same({ true }, system.setpriority(self, "high"))
		T.same({ "high", -14 }, system.getpriority(self))
		T.same({ true }, system.setpriority(self, -20))
		T.same({ "highest", -20 }, system.getpriority(self))
		T.same({ true }, system.setpriority(self, before))
		T.same({ before }, select(2, system.getpriority(self)))
	else
		T.same({ false, "permission denied", 13 }, system.setpriority(self, "highest"))
	end
end)

T.case("priority failures and bad arguments", function()
	local pid = deadpid()
	T.same({ false, "no such process", 3 }, system.getpriority(pid))
	T.same({ false, "no such process", 3 }, system.setpriority(pid, 0))
	T.same({ false, "no such process", 3 }, system.setpriority(pid, "low"))
	T.raises("bad argument #2 to", system.setpriority, self, 20)
	T.raises("(out of range)", system.setpriority, self, 20)
	T.raises("(out of range)", system.setpriority, self, -21)
	T.raises("(out of range)", system.setpriority, self, math.mininteger)
	T.raises("(invalid option 'other')", system.setpriority, self, "other")
	T.raises("(invalid option 'lowest')", system.setpriority, self, "lowest")
	T.raises("(invalid option '10')", system.setpriority, self, "10")
	T.raises("(number has no integer representation)", system.setpriority, self, 1.5)
	T.raises("(string expected, got no value)", system.setpriority, self)
	T.raises("(string expected, got table)", system.setpriority, self, {})
	T.raises("bad argument #1 to", system.getpriority)
	T.raises("(number expected, got no value)", system.getpriority)
	T.raises("(number expected, got string)", system.getpriority, "self")
	T.raises("(number expected, got nil)", system.setpriority, nil, 0)
end)

T.case("getdir and setdir", function()
	local dir = system.getdir()
	assert(type(dir) == "string" and dir:sub(1, 1) == "/", dir)
	T.same({ dir }, shell("pwd -P"):match("^(.-)\n$"))
	T.same({ true }, system.setdir("/"))
	T.same({ "/" }, system.getdir())
	T.same({ "/\n" }, shell("pwd"))
	local tmp = system.maketemp and system.maketemp("/tmp/coutil-env-", "~")
	if tmp then
		T.same({ true }, system.setdir(tmp))
		T.same({ tmp }, system.getdir())
		T.same({ true }, system.setdir(".."))
		T.same({ "/tmp" }, system.getdir())
		assert(system.removefile(tmp, "~d"))
	end
	T.same({ false, "no such file or directory", 2 }, system.setdir("/no/such/dir"))
	T.same({ false, "not a directory", 20 }, system.setdir("/etc/passwd"))
	T.same({ "/tmp" }, tmp and system.getdir() or "/tmp")
	T.same({ true }, system.setdir(dir))
	T.same({ dir }, system.getdir())
	T.raises("bad argument #1 to", system.setdir)
	T.raises("(string expected, got no value)", system.setdir)
	T.raises("(string expected, got table)", system.setdir, {})
end)

T.case("getenv forms", function()
	local all = system.getenv()
	assert(type(all) == "table")
	local count = 0
	for name, value in pairs(all) do
		count = count + 1
		assert(type(name) == "string" and type(value) == "string")
		T.same({ value }, os.getenv(name))
		T.same({ value }, system.getenv(name))
	end
	assert(count > 0)
	assert(all.PATH and all.PATH == os.getenv("PATH"))
	local t = { other = 1, PATH = false }
	T.same({ t }, system.getenv(t))
	T.same({ 1, os.getenv("PATH") }, t.other, t.PATH)
	T.same({ false, "no such file or directory", 2 }, system.getenv("COUTIL_NO_SUCH_VAR"))
	T.same({ false, "no such file or directory", 2 }, system.getenv(""))
	T.same({ false, "no such file or directory", 2 }, system.getenv("PATH=x"))
	T.same({ false, "no such file or directory", 2 }, system.getenv(12345))
	T.raises("bad argument #1 to", system.getenv, true)
	T.raises("(string expected, got boolean)", system.getenv, true)
	T.raises("(string expected, got function)", system.getenv, print)
end)

T.case("setenv sets, replaces and deletes", function()
	local name = "COUTIL_TEST_VAR"
	T.same({ true }, system.setenv(name, "value 1"))
	T.same({ "value 1" }, system.getenv(name))
	T.same({ "value 1" }, os.getenv(name))
	T.same({ "value 1\n" }, shell("echo \"$" .. name .. "\""))
	T.same({ "value 1" }, system.getenv()[name])
	T.same({ true }, system.setenv(name, 42))
	T.same({ "42" }, os.getenv(name))
	T.same({ true }, system.setenv(name, 1.5))
	T.same({ "1.5" }, os.getenv(name))
	T.same({ true }, system.setenv(name, ""))
	T.same({ "" }, system.getenv(name))
	T.same({ true }, system.setenv(name, "a=b=c"))
	T.same({ "a=b=c" }, system.getenv(name))
	T.same({ true }, system.setenv(name, nil))
	T.same({ n = 1 }, os.getenv(name))
	T.same({ false, "no such file or directory", 2 }, system.getenv(name))
	T.same({ n = 1 }, system.getenv()[name])
	T.same({ true }, system.setenv(name)) -- deleting a missing variable
	T.same({ true }, system.setenv(name, nil))
end)

T.case("getenv of a name with '=' answers as C getenv and os.getenv", function()
	-- glibc compares the whole "NAME=value" text: "NAME=pre" matches a value
	-- that starts with "pre=", and gives what follows that '='.
	local name = "COUTIL_TEST_EQ"
	T.same({ true }, system.setenv(name, "key=val=ue"))
	T.same({ "val=ue" }, system.getenv(name .. "=key"))
	T.same({ "ue" }, system.getenv(name .. "=key=val"))
	T.same({ os.getenv(name .. "=key") }, system.getenv(name .. "=key"))
	T.same({ false, "no such file or directory", 2 }, system.getenv(name .. "=ke"))
	T.same({ false, "no such file or directory", 2 }, system.getenv(name .. "=key=val=ue"))
	T.same({ false, "no such file or directory", 2 }, system.getenv(name .. "=other"))
	T.same({ "val=ue" }, system.getenv(name .. "=key\0ignored")) -- cut at "\0"
	-- setenv never creates such a name, nor changes the variable through one.
	T.same({ false, "invalid argument", 22 }, system.setenv(name .. "=key", "x"))
	T.same({ false, "invalid argument", 22 }, system.setenv(name .. "=key"))
	T.same({ "key=val=ue" }, system.getenv(name))
	T.same({ true }, system.setenv(name, nil))
	T.same({ false, "no such file or directory", 2 }, system.getenv(name .. "=key"))
end)

T.case("setenv of long values and names", function()
	local name = "COUTIL_LONG_" .. string.rep("N", 300)
	local value = string.rep("0123456789", 10000)
	T.same({ true }, system.setenv(name, value))
	T.same({ value }, system.getenv(name))
	T.same({ value }, os.getenv(name))
	T.same({ true }, system.setenv(name, nil))
	T.same({ n = 1 }, os.getenv(name))
end)

T.case("setenv failures and bad arguments", function()
	T.same({ false, "invalid argument", 22 }, system.setenv("A=B", "x"))
	T.same({ false, "invalid argument", 22 }, system.setenv("A=B"))
	T.same({ false, "invalid argument", 22 }, system.setenv("", "x"))
	T.same({ n = 1 }, os.getenv("A"))
	T.raises("bad argument #2 to", system.setenv, "COUTIL_X", {})
	T.raises("(string expected, got table)", system.setenv, "COUTIL_X", {})
	T.raises("(string expected, got boolean)", system.setenv, "COUTIL_X", false)
	T.raises("bad argument #1 to", system.setenv)
	T.raises("(string expected, got no value)", system.setenv)
	T.raises("(string expected, got table)", system.setenv, {}, "x")
end)

T.case("packenv and indexing", function()
	local env = system.packenv({ A = "1", B = 2, EMPTY = "", EQ = "x=y", Z = "a\0b", ["N\0M"] = "v" })
	assert(tostring(env):find("coutil:procesenv", 1, true), tostring(env))
	T.same({ "1", "2", "", "x=y", "a" }, env.A, env.B, env.EMPTY, env.EQ, env.Z)
	T.same({ "v" }, env.N)
	T.same({ n = 1 }, env.C)
	T.same({ n = 1 }, env[1])
	T.same({ n = 1 }, env.a)
	T.raises("cannot contain '='", function() return env["A=1"] end)
	T.raises("(string expected, got table)", function() return env[{}] end)
	local empty = system.packenv({})
	T.same({ n = 1 }, empty.A)
	T.same({ 0 }, next(system.unpackenv(empty)) == nil and 0 or 1)
end)

T.case("packenv bad arguments", function()
	T.raises("bad argument #1 to", system.packenv)
	T.raises("(table expected, got no value)", system.packenv)
	T.raises("(table expected, got string)", system.packenv, "A=1")
	T.raises("bad name 'A=B' in environment (cannot contain '=')", system.packenv, { ["A=B"] = "1" })
	-- the real problem, not "bad name 'A' ... (cannot contain '=')"
	T.raises("bad argument #1 to", system.packenv, { A = true })
	T.raises("(environment value for 'A' must be a string, got boolean)", system.packenv, { A = true })
	T.raises("(environment value for 'A' must be a string, got table)", system.packenv, { A = {} })
	T.raises("(environment name must be a string, got number)", system.packenv, { "x" })
	T.raises("(environment name must be a string, got boolean)", system.packenv, { [true] = "x" })
	T.same({ "2.5" }, system.packenv({ N = 2.5 }).N) -- numbers are strings here
end)

T.case("unpackenv", function()
	local vars = { A = "1", B = "two", C = "" }
	local env = system.packenv(vars)
	local t = system.unpackenv(env)
	local count = 0
	for k, v in pairs(t) do
		count = count + 1
		T.same({ vars[k] }, v)
	end
	T.same({ 3 }, count)
	local into = { A = "old", X = "kept" }
	T.same({ into }, system.unpackenv(env, into))
	T.same({ "1", "two", "", "kept" }, into.A, into.B, into.C, into.X)
	T.same({ "2" }, system.unpackenv(system.packenv({ N = 2 })).N)
	T.same({ "1" }, system.unpackenv(env, nil).A)
	T.raises("bad argument #2 to", system.unpackenv, env, 1)
	T.raises("(table expected, got number)", system.unpackenv, env, 1)
	T.raises("bad argument #1 to", system.unpackenv, {})
	T.raises("(coutil:procesenv expected, got table)", system.unpackenv, {})
	T.raises("(coutil:procesenv expected, got no value)", system.unpackenv)
end)

T.case("a packed environment round trip with the whole environment", function()
	local env = system.packenv(system.getenv())
	local back = system.unpackenv(env)
	for name, value in pairs(system.getenv()) do
		T.same({ value }, env[name])
		T.same({ value }, back[name])
	end
end)

T.done()
