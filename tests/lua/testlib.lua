-- Shared helpers for the Lua test scripts (tests/lua/*.lua).
--
-- Every case runs through `T.case`, which ends it with the two checks of
-- design §8: the leak check (coroutines made with `T.spawn` are all
-- collectable after a full GC) and the idle check (`system.run()` has
-- nothing left to do and returns false).
--
-- Environment:
--   COUTIL_TEST_GC=1        aggressive collector (collect at every step)
--   TESTLIB_NOSYSTEM=1      allow running without coutil.system (only used
--                           while developing the pure-Lua modules)

local T = {}

local ok, system = pcall(require, "coutil.system")
if not ok then
	if os.getenv("TESTLIB_NOSYSTEM") ~= "1" then error(system, 0) end
	system = nil
end
T.system = system

if os.getenv("COUTIL_TEST_GC") == "1" then
	-- a pause of 1%: a new cycle starts as soon as one ends (in 5.4, 0
	-- leaves the pause unchanged; the step multiplier stays the default)
	if _VERSION == "Lua 5.4" then
		collectgarbage("incremental", 1, 100)
	else -- 5.5 sets the parameters apart ("incremental" takes none)
		collectgarbage("incremental")
		collectgarbage("param", "pause", 0)
	end
	collectgarbage("restart")
end

local spawned = setmetatable({}, { __mode = "k" })
local passed, failed = 0, 0
local current

-- Creates a coroutine tracked by the leak check and resumes it at once
-- with `...`; raises if the first resume fails. Returns the coroutine.
function T.spawn(f, ...)
	local co = coroutine.create(f)
	spawned[co] = current or true
	local res = table.pack(coroutine.resume(co, ...))
	if not res[1] then error(res[2], 2) end
	return co, table.unpack(res, 2, res.n)
end

-- Registers a coroutine made elsewhere (e.g. by spawn.catch) in the leak check.
function T.track(co)
	spawned[co] = current or true
	return co
end

local function fullgc()
	for _ = 1, 3 do collectgarbage("collect") end
end

-- Checks that calling f(...) raises an error whose message contains `text`
-- (plain search). Returns the message.
function T.raises(text, f, ...)
	local res = table.pack(pcall(f, ...))
	if res[1] then
		error(string.format("error expected containing %q, got success", text), 2)
	end
	local msg = tostring(res[2])
	if not string.find(msg, text, 1, true) then
		error(string.format("error expected containing %q, got %q", text, msg), 2)
	end
	return msg
end

-- The number of values in `expected`: its field `n`, else its largest
-- integer key, so that `{ a, nil, b }` is three values (`#` gives 3 in
-- Lua 5.4, a border before the nil in 5.5).
local function count(expected)
	if expected.n then return expected.n end
	local n = #expected
	for k in pairs(expected) do
		if math.type(k) == "integer" and k > n then n = k end
	end
	return n
end

-- Calls f() with a garbage object whose finalizer is `fin`, under a
-- collector that runs a whole cycle, finalizers included, at each check
-- (every allocation of a Lua object): the first check inside f runs
-- `fin`, e.g. to resize a memory that f is using. Fails unless `fin` ran
-- during the call; returns pcall's results. Then the default collector.
function T.finalizing(fin, f)
	local ran = false
	local mt = { __gc = function() fin() ran = true end }
	collectgarbage()
	local restore
	if _VERSION == "Lua 5.4" then
		collectgarbage("incremental", 1, 1000, 40) -- (a pause of 0 changes nothing)
		restore = function() collectgarbage("incremental", 200, 100, 13) end
	else -- 5.5 sets the parameters apart; a step multiplier of 0 makes
		-- every step a full collection
		collectgarbage("incremental")
		local pause = collectgarbage("param", "pause", 0)
		local stepmul = collectgarbage("param", "stepmul", 0)
		restore = function()
			collectgarbage("param", "pause", pause)
			collectgarbage("param", "stepmul", stepmul)
		end
	end
	collectgarbage()
	setmetatable({}, mt)
	local results = table.pack(pcall(f))
	restore()
	if not ran then error("the finalizer did not run during the call", 2) end
	return table.unpack(results, 1, results.n)
end

-- Checks that the values `...` equal the expected ones, in number and value.
function T.same(expected, ...)
	local got = table.pack(...)
	local function show(t)
		local s = {}
		for i = 1, t.n do s[i] = tostring(t[i]) end
		return "(" .. table.concat(s, ", ") .. ")"
	end
	local n = count(expected)
	local ok = got.n == n
	if ok then
		for i = 1, n do
			if got[i] ~= expected[i] then ok = false break end
		end
	end
	if not ok then
		error("expected " .. show({ n = n, table.unpack(expected, 1, n) }) .. ", got " .. show(got), 2)
	end
end

-- Calls f(...) where coroutines cannot yield (a sort comparator is a C
-- boundary), whatever thread runs the test's main chunk; returns pcall's
-- results.
function T.unyieldable(f, ...)
	local args, res = table.pack(...), nil
	table.sort({ 1, 2 }, function() res = table.pack(pcall(f, table.unpack(args, 1, args.n))) return false end)
	return table.unpack(res, 1, res.n)
end

-- Runs f(...) in a new coroutine and the loop until it ends; returns its
-- results or raises its error.
function T.async(f, ...)
	local res
	T.spawn(function(...) res = table.pack(pcall(f, ...)) end, ...)
	system.run()
	assert(res, "the coroutine did not finish")
	if not res[1] then error(res[2], 0) end
	return table.unpack(res, 2, res.n)
end

-- Runs f(...) in a tracked coroutine, then the loop; raises f's error (with
-- its traceback), or an error if the coroutine did not finish.
function T.go(f, ...)
	local ok, err = false, "coroutine did not finish"
	T.spawn(function(...)
		local res = table.pack(xpcall(f, debug.traceback, ...))
		ok, err = res[1], res[2]
	end, ...)
	system.run()
	if not ok then error(err, 0) end
end

-- Calls f(...) where coroutines cannot yield, letting its errors through.
function T.noyield(f, ...)
	local args = table.pack(...)
	table.sort({ 1, 2 }, function() f(table.unpack(args, 1, args.n)) return false end)
end

-- Inside a coroutine: lets the loop deliver the I/O that is ready now (a
-- fresh loop time makes the timer due only after the next poll).
function T.settle()
	system.time("updated")
	system.suspend(0.01)
end

-- Blocks the whole state until cond() holds.
function T.waitfor(cond)
	while not cond() do system.suspend(0.001, "~") end
end

-- Runs body(call, tilde) in blocking mode, then as await functions.
function T.modes(body)
	body(function(f, ...) return f(...) end, "~")
	body(T.async, "")
end

-- A fresh path name (nothing is created there).
function T.tmppath()
	local path = os.tmpname()
	os.remove(path)
	return path
end

-- Makes a temporary directory named from `prefix`; returns its path and a
-- function giving new unused paths inside it.
function T.tempdir(prefix)
	local tmp = os.getenv("TMPDIR") or "/tmp"
	local base = assert(system.maketemp(tmp .. "/" .. prefix, "~"))
	local count = 0
	return base, function(name)
		count = count + 1
		return string.format("%s/%s%d", base, name or "p", count)
	end
end

function T.writefile(path, data)
	local f = assert(io.open(path, "wb"))
	f:write(data)
	f:close()
	return path
end

-- Removes a file or a whole directory tree.
function T.rmtree(path)
	if system.fileinfo(path, "~l?") == "directory" then
		for name in system.listdir(path, "~") do T.rmtree(path .. "/" .. name) end
		assert(system.removefile(path, "~d"))
	else
		assert(system.removefile(path, "~"))
	end
end

-- Loopback addresses of each IP domain, with `port` (default 0).
T.loopback = system and {
	ipv4 = function(port) return system.address("ipv4", "127.0.0.1:" .. (port or 0)) end,
	ipv6 = function(port) return system.address("ipv6", "[::1]:" .. (port or 0)) end,
}

-- A connected TCP pair (client, server) on 127.0.0.1, made by the loop
-- (call it outside any coroutine).
function T.tcppair()
	local l = assert(system.socket("passive", "ipv4"))
	assert(l:bind(T.loopback.ipv4()))
	assert(l:listen(8))
	local c = assert(system.socket("stream", "ipv4"))
	local s
	T.spawn(function() s = assert(l:accept()) end)
	T.spawn(function() assert(c:connect(l:getaddress())) end)
	system.run()
	l:close()
	return c, assert(s)
end

local SOCKET_METHODS = { "close", "getdomain", "getaddress", "bind", "setoption", "connect",
	"write", "read", "shutdown", "listen", "accept" }

-- Checks that socket `obj` has exactly the methods listed in `expected`
-- among all the methods of socket classes.
function T.methods(obj, expected)
	local want = {}
	for _, m in ipairs(expected) do want[m] = true end
	for _, m in ipairs(SOCKET_METHODS) do
		if want[m] then
			assert(type(obj[m]) == "function", m .. " missing")
		else
			assert(obj[m] == nil, m .. " should be nil")
		end
	end
end

-- Lua code for a child interpreter (the one running this script, arg[-1]:
-- `coutil`, or `lua5.4` finding coutil.so through the inherited LUA_CPATH):
-- `body` runs in a coroutine with `system` and `memory`, driven by
-- system.run.
function T.luachild(body)
	return "local system = require 'coutil.system' "
		.. "local memory = require 'coutil.memory' "
		.. "local function main() " .. body .. "\nend "
		.. "if coroutine.isyieldable() then main() "
		.. "else coroutine.wrap(main)() system.run() end"
end

-- Reads everything from stream socket `s` until end of file.
function T.readall(s)
	local buf = require("coutil.memory").create(4096)
	local parts = {}
	while true do
		local n, err = s:read(buf)
		if not n then
			assert(err == "end of file", err)
			break
		end
		parts[#parts + 1] = buf:tostring(1, n)
	end
	return table.concat(parts)
end

-- Runs one named case: body, then the leak check and the idle check.
-- Strict mode (debug builds, with coutil.testing): a case fails when a
-- coroutine resumed by the loop raised an error it did not expect (such
-- errors are only warnings). A case expecting some calls T.looperrors(n).
local has_testing, testing = pcall(require, "coutil.testing")
local expected_errors = 0

function T.looperrors(n)
	expected_errors = expected_errors + n
end

function T.case(name, body)
	current = name
	expected_errors = 0
	local errors = has_testing and testing.looperrors() or 0
	local ok, err = xpcall(body, debug.traceback)
	if ok then
		if system then
			-- idle check: nothing may be left pending in the loop
			local pending = system.run()
			if pending ~= false then
				ok, err = false, "idle check: system.run() returned " .. tostring(pending)
			end
		end
	end
	if ok and has_testing then
		local raised = testing.looperrors() - errors
		if raised ~= expected_errors then
			ok, err = false, string.format(
				"strict mode: %d error(s) raised by coroutines the loop resumed, %d expected"
				.. " (see the warnings)", raised, expected_errors)
		end
	end
	if ok then
		fullgc()
		for co, case in pairs(spawned) do
			if case == name then
				ok, err = false, "leak check: a coroutine of this case is still alive ("
					.. coroutine.status(co) .. ")"
				break
			end
		end
	end
	current = nil
	if ok then
		passed = passed + 1
	else
		failed = failed + 1
		io.stderr:write("FAIL ", name, ": ", tostring(err), "\n")
	end
end

-- Prints the plain summary line and exits with the right status.
function T.done()
	print(string.format("%d passed, %d failed", passed, failed))
	os.exit(failed == 0 and 0 or 1)
end

return T
