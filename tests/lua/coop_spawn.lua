-- Tests of coutil.spawn (spec coop.md).

local T = require "testlib"
local spawn = require "coutil.spawn"

local pack, unpack = table.pack, table.unpack

-- Text by which debug.traceback names a Lua function called from C.
local function tracename(f)
	local info = debug.getinfo(f, "S")
	return info.short_src .. ":" .. info.linedefined .. ">"
end

local function yielder(...)
	coroutine.yield()
	return ...
end

T.case("catch starts the coroutine at once and returns it when it yields", function()
	local log = {}
	local C = T.track(spawn.catch(print, function()
		log.co = coroutine.running()
		coroutine.yield("ignored")
		log.resumed = true
	end))
	assert(type(C) == "thread" and coroutine.status(C) == "suspended")
	assert(log.co == C)
	assert(coroutine.resume(C))
	assert(log.resumed and coroutine.status(C) == "dead")
end)

T.case("catch returns only the coroutine, dead if f ends", function()
	local res = pack(spawn.catch(print, function() return 1, 2 end))
	assert(res.n == 1)
	T.track(res[1])
	assert(coroutine.status(res[1]) == "dead")
end)

T.case("catch passes the extra arguments unchanged", function()
	local got
	local t = {}
	T.track(spawn.catch(print, function(...) got = pack(...) end, nil, 1, t, nil, nil))
	T.same({ n = 5, nil, 1, t, nil, nil }, unpack(got, 1, got.n))
	T.track(spawn.catch(print, function(...) got = pack(...) end))
	T.same({ n = 0 }, unpack(got, 1, got.n))
end)

T.case("catch results are xpcall's on success", function()
	local C = T.track(spawn.catch(print, yielder, 1, nil, "x", nil))
	T.same({ n = 6, true, true, 1, nil, "x", nil }, coroutine.resume(C))
end)

T.case("catch runs h in C with the raised string, results are xpcall's", function()
	local got
	local C
	C = T.track(spawn.catch(function(...)
		got = pack(...)
		assert(coroutine.running() == C)
		return "handled", "dropped"
	end, function()
		coroutine.yield()
		error("oops")
	end))
	T.same({ true, false, "handled" }, coroutine.resume(C))
	assert(got.n == 1)
	assert(got[1]:find("oops", 1, true))
	assert(got[1]:find("coop_spawn.lua:%d+: oops$")) -- error's position prefix
end)

T.case("catch passes any raised value unchanged", function()
	local values = { {}, 42, false, true, print, "plain" }
	for _, v in ipairs(values) do
		local got
		T.track(spawn.catch(function(...) got = pack(...) end, error, v, 0))
		T.same({ v }, unpack(got, 1, got.n))
	end
	local got
	T.track(spawn.catch(function(...) got = pack(...) end, error))
	T.same({ n = 1, nil }, unpack(got, 1, got.n))
end)

T.case("catch handler runs at the error point", function()
	local trace
	local function deepest() error("deep") end
	local function f() deepest() end
	T.track(spawn.catch(function(e) trace = debug.traceback(e) end, f))
	assert(trace:find("deep", 1, true))
	assert(trace:find("deepest", 1, true))
	assert(trace:find(tracename(f), 1, true))
end)

T.case("catch with f yielding, the handler is still in force later", function()
	local count = 0
	local C = T.track(spawn.catch(function(e) count = count + 1 return e end, function()
		coroutine.yield(1)
		coroutine.yield(2)
		error("late", 0)
	end))
	T.same({ true, 2 }, coroutine.resume(C))
	T.same({ true, false, "late" }, coroutine.resume(C))
	assert(count == 1)
end)

T.case("catch: an error in h gives error in error handling", function()
	local C = T.track(spawn.catch(function() error("again") end, function()
		coroutine.yield()
		error("first")
	end))
	local res = pack(coroutine.resume(C))
	assert(res.n == 3 and res[1] == true and res[2] == false)
	assert(tostring(res[3]):find("error in error handling", 1, true))
	assert(coroutine.status(C) == "dead")
end)

T.case("catch: f == nil is a call error handed to h", function()
	local got
	local C = T.track(spawn.catch(function(e) got = e end, nil, 1))
	assert(coroutine.status(C) == "dead")
	assert(tostring(got):find("attempt to call a nil value", 1, true))
end)

T.case("catch never raises because of f or h", function()
	local C = T.track(spawn.catch())
	assert(type(C) == "thread" and coroutine.status(C) == "dead")
	local called = false
	C = T.track(spawn.catch(nil, function() called = true end))
	assert(coroutine.status(C) == "dead" and called == false)
	C = T.track(spawn.catch("nohandler", error, "x"))
	assert(coroutine.status(C) == "dead")
	C = T.track(spawn.catch(function() error("h") end, error, "x"))
	assert(coroutine.status(C) == "dead")
end)

T.case("catch keeps no reference to the coroutine", function()
	local weak = setmetatable({}, { __mode = "k" })
	weak[T.track(spawn.catch(print, coroutine.yield))] = true
	for _ = 1, 4 do collectgarbage("collect") end
	assert(next(weak) == nil)
end)

T.case("trap calls h(true, results...) in C on success", function()
	local got, where
	local C
	C = T.track(spawn.trap(function(...)
		got = pack(...)
		where = coroutine.running()
	end, function(...) return ... end, nil, 2, nil))
	assert(coroutine.status(C) == "dead")
	assert(where == C)
	T.same({ n = 4, true, nil, 2, nil }, unpack(got, 1, got.n))
	T.track(spawn.trap(function(...) got = pack(...) end, function() end))
	T.same({ n = 1, true }, unpack(got, 1, got.n))
end)

T.case("trap starts at once and returns only C when f yields", function()
	local got
	local res = pack(spawn.trap(function(...) got = pack(...) end, yielder, "a", nil))
	assert(res.n == 1)
	local C = T.track(res[1])
	assert(coroutine.status(C) == "suspended" and got == nil)
	assert(coroutine.resume(C))
	T.same({ n = 3, true, "a", nil }, unpack(got, 1, got.n))
end)

T.case("trap: an error in h after success is C's error", function()
	local C = T.track(spawn.trap(function() error("in h", 0) end, yielder))
	T.same({ false, "in h" }, coroutine.resume(C))
	assert(coroutine.status(C) == "dead")
end)

T.case("trap itself never raises an error of h", function()
	local C = T.track(spawn.trap(function() error("in h") end, function() end))
	assert(coroutine.status(C) == "dead")
	C = T.track(spawn.trap(nil, function() end))
	assert(coroutine.status(C) == "dead")
	C = T.track(spawn.trap())
	assert(coroutine.status(C) == "dead")
end)

T.case("trap calls h(false, err) with exactly two arguments on failure", function()
	local values = { "msg", {}, 0, false }
	for _, v in ipairs(values) do
		local got
		T.track(spawn.trap(function(...) got = pack(...) end, error, v, 0))
		T.same({ n = 2, false, v }, unpack(got, 1, got.n))
	end
	local got
	T.track(spawn.trap(function(...) got = pack(...) end, error))
	T.same({ n = 2, false, nil }, unpack(got, 1, got.n))
end)

T.case("trap failure: h runs at the error point and C ends with no results", function()
	local trace
	local C
	local function deepest() coroutine.yield() error("deep") end
	local function f() deepest() end
	C = T.track(spawn.trap(function(ok, e)
		assert(ok == false and coroutine.running() == C)
		trace = debug.traceback(e)
		return "dropped"
	end, f))
	T.same({ true }, coroutine.resume(C))
	assert(coroutine.status(C) == "dead")
	assert(trace:find("deepest", 1, true))
	assert(trace:find(tracename(f), 1, true))
end)

T.case("trap failure: errors in h are swallowed", function()
	local count = 0
	local C = T.track(spawn.trap(function()
		count = count + 1
		error("in h")
	end, function() coroutine.yield() error("in f") end))
	T.same({ true }, coroutine.resume(C))
	assert(coroutine.status(C) == "dead")
	assert(count == 1)
end)

T.case("trap: f == nil is a failure handed to h", function()
	local got
	T.track(spawn.trap(function(...) got = pack(...) end, nil))
	assert(got.n == 2 and got[1] == false)
	assert(tostring(got[2]):find("attempt to call a nil value", 1, true))
end)

T.case("trap keeps no reference to the coroutine", function()
	local weak = setmetatable({}, { __mode = "k" })
	weak[T.track(spawn.trap(print, coroutine.yield))] = true
	for _ = 1, 4 do collectgarbage("collect") end
	assert(next(weak) == nil)
end)

T.done()
