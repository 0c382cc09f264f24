-- coutil.await: deadlines on any await (within), the first or all of
-- several activities (any, all), buffered readers over streams (reader)
-- and a view of what waits (stats). Called with the module's native
-- functions (src/await_lib) as its argument.
local natives = ...

-- Independent states (coutil.threads) start without standard globals:
-- take what this module uses from `require`.
require "_G" -- the basic functions (error, select, ...)
local coroutine = require "coroutine"
local debug = require "debug"
local table = require "table"
local event = require "coutil.event"
local system = require "coutil.system"

local create, resume, status = coroutine.create, coroutine.resume, coroutine.status
local close, running, yield = coroutine.close, coroutine.running, coroutine.yield
local isyieldable = coroutine.isyieldable
local getinfo, gethook, sethook = debug.getinfo, debug.gethook, debug.sethook
local pack, unpack = table.pack, table.unpack
local error, select, setmetatable, getmetatable = error, select, setmetatable, getmetatable
local type, pcall = type, pcall
local emitall, waitany = event.emitall, getmetatable(event).coutil_internal.waitany
local suspend = system.suspend
local stop, stopnext = natives.stop, natives.stopnext

local await = {}

-- What an await interrupted by a deadline returns (libuv's ETIMEDOUT).
local TIMEDOUT, ETIMEDOUT = "connection timed out", 110

-- Raises `bad argument` as luaL_typeerror words it, at `level` (1 is the
-- caller of this function).
local function argerror(level, i, name, expected, value)
	local got = type(value)
	local mt = getmetatable(value)
	if type(mt) == "table" and type(mt.__name) == "string" then got = mt.__name end
	error(("bad argument #%d to '%s' (%s expected, got %s)")
		:format(i, name, expected, got), level + 1)
end

local function checkcallable(level, i, name, f)
	if type(f) == "function" then return end
	local mt = getmetatable(f)
	if type(mt) == "table" and mt.__call ~= nil then return end
	argerror(level + 1, i, name, "function", f)
end

-- Whether `co` is suspended in an await function: a yield made by C code
-- other than coroutine.yield (Lua code cannot yield by itself; a coroutine
-- stopped by `stop` sits in a Lua function).
local function inawait(co)
	if status(co) ~= "suspended" then return false end
	local info = getinfo(co, 0, "fS")
	return info ~= nil and info.what == "C" and info.func ~= yield
end

-- Ends coroutine `co` made by `any`/`all`: an await it is suspended in is
-- cancelled as by an explicit resume, then its to-be-closed variables run.
-- A coroutine in the middle of resuming others (status "normal") stops at
-- its next Lua instruction and is closed after the current iteration.
local function finish(co)
	local st = status(co)
	if st == "suspended" then
		if inawait(co) then stop(co) end
		close(co)
	elseif st == "normal" then
		stopnext(co)
		resume(create(function()
			repeat suspend() until status(co) ~= "normal"
			if status(co) == "suspended" then close(co) end
		end))
	end
end

---------------------------------------------------------------- within

-- The watchdog of one `within` call, in its own coroutine: `ref[1]` is the
-- guarded coroutine (a weak reference: a collected coroutine ends the
-- watch), `d.done` is set when `within` returns.
local weak = { __mode = "v" }

local function rehook(co, d)
	-- a plain yield: wait until `co` runs again, then check each iteration
	local old = pack(gethook(co))
	sethook(co, function()
		if old[1] ~= nil then sethook(unpack(old, 1, old.n)) else sethook() end
		emitall(d)
	end, "", 1)
	d.hooked = old
	waitany(d)
	d.hooked = nil
end

local function watch(ref, seconds, d)
	suspend(seconds)
	while not d.done do
		local co = ref[1]
		if co == nil or status(co) == "dead" then return end
		if inawait(co) then
			resume(co, false, TIMEDOUT, ETIMEDOUT)
		elseif status(co) == "suspended" then
			rehook(co, d)
		end
		if d.done then return end
		suspend()
	end
end

-- `within`'s to-be-closed value: ends the watch when `within` returns,
-- raises or is closed.
local unwatch = { __close = function(d)
	d.done = true
	local dog = d.dog
	if status(dog) == "suspended" then resume(dog) end
	local old = d.hooked
	if old ~= nil then -- the guarded coroutine is running: put its hook back
		if old[1] ~= nil then sethook(unpack(old, 1, old.n)) else sethook() end
	end
end }

function await.within(seconds, f, ...)
	if type(seconds) ~= "number" then argerror(2, 1, "within", "number", seconds) end
	if seconds ~= seconds or seconds < 0 then
		error("bad argument #1 to 'within' (out of range)", 2)
	end
	checkcallable(2, 2, "within", f)
	if not isyieldable() then error("unable to yield", 2) end
	if seconds == 1/0 then return f(...) end
	local d = setmetatable({ done = false }, unwatch)
	local dog = create(watch)
	d.dog = dog
	resume(dog, setmetatable({ (running()) }, weak), seconds, d)
	local _ <close> = d
	return f(...)
end

---------------------------------------------------------------- any, all

-- One call of `any` or `all`: `set.cos[i]` runs the i-th function; the
-- calling coroutine waits on `set` (an event) until `set.over`.
local function started(name, ...)
	local n = select("#", ...)
	for i = 1, n do checkcallable(3, i, name, (select(i, ...))) end
	if not isyieldable() then error("unable to yield", 3) end
	return n
end

local function closeall(set, except)
	local cos = set.cos
	for i = 1, #cos do
		if i ~= except then finish(cos[i]) end
	end
end

-- Waits until `set.over`; an explicit resume closes every function's
-- coroutine and its values are returned (as by any await).
local function settle(set, ...)
	if set.over then return true end
	set.waiting = true
	local r = pack(waitany(set))
	set.waiting = false
	if set.over then return true end -- emitted (or resumed after the end)
	closeall(set)
	return false, unpack(r, 2, r.n)
end

local function run(set, i, f)
	set.cos[i] = create(function()
		set.report(set, i, pcall(f))
	end)
	resume(set.cos[i])
end

local function endany(set, i, ...)
	if set.over then return end
	set.over = true
	set.winner = i
	set.results = pack(...)
	if set.waiting then emitall(set) end
end

local function outcome(set)
	local r = set.results
	if not r[1] then error(r[2], 0) end
	return set.winner, unpack(r, 2, r.n)
end

function await.any(...)
	local n = started("any", ...)
	local set = { cos = {}, report = endany, over = false }
	for i = 1, n do
		run(set, i, (select(i, ...)))
		if set.over then break end
	end
	local emitted = pack(settle(set))
	if not emitted[1] then return unpack(emitted, 2, emitted.n) end
	closeall(set, set.winner)
	return outcome(set)
end

local function endall(set, i, ok, ...)
	if set.over then return end
	if not ok then
		set.over, set.winner, set.results = true, i, pack(ok, ...)
	else
		set.all[i] = pack(...)
		set.left = set.left - 1
		set.over = set.left == 0
	end
	if set.over and set.waiting then emitall(set) end
end

function await.all(...)
	local n = started("all", ...)
	local set = { cos = {}, report = endall, over = n == 0, all = {}, left = n }
	for i = 1, n do
		run(set, i, (select(i, ...)))
		if set.over then break end
	end
	local emitted = pack(settle(set))
	if not emitted[1] then return unpack(emitted, 2, emitted.n) end
	if set.results ~= nil then
		closeall(set, set.winner)
		outcome(set)
	end
	return unpack(set.all, 1, n)
end

---------------------------------------------------------------- reader

-- src/lua/coutil/reader.lua, called with its native helpers
-- (src/await_lib/reader.rs).
local loadreader, scan = natives.reader()
await.reader = loadreader(scan)

return await
