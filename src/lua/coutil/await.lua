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
local close, yield = coroutine.close, coroutine.yield
local isyieldable = coroutine.isyieldable
local getinfo, gethook, sethook = debug.getinfo, debug.gethook, debug.sethook
local pack, unpack = table.pack, table.unpack
local error, select, setmetatable, getmetatable = error, select, setmetatable, getmetatable
local type, pcall, pairs = type, pcall, pairs
local emitall, waitany = event.emitall, getmetatable(event).coutil_internal.waitany
local suspend, time = system.suspend, system.time
local stop, stopnext, sleep, hold, enter = natives.stop, natives.stopnext, natives.sleep, natives.hold, natives.enter

local await = {}

-- What an await interrupted by a deadline returns (libuv's ETIMEDOUT).
local TIMEDOUT, ETIMEDOUT = "connection timed out", 110

local weak = { __mode = "v" }

-- Raises `bad argument` as luaL_typeerror words it, at `level` (1 is the
-- caller of this function).
local function argerror(level, i, name, expected, value, absent)
	local got = absent and "no value" or type(value)
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
			sethook(co) -- the stopping hook, which would stop its closing too
			if status(co) == "suspended" then close(co) end
		end))
	end
end

---------------------------------------------------------------- within

-- Each `within` call makes a deadline entry `e` (its to-be-closed value),
-- an array for speed: { coroutine, deadline (loop time), queue or false,
-- previous entry or false, next entry or false }. Pending entries wait in
-- one doubly linked FIFO queue per duration, whose deadlines are
-- therefore in order: a call appends, a returning call unlinks its entry.
-- One keeper coroutine per state sleeps until the earliest head, with a
-- timer that keeps `system.run` going only while deadlines are pending (a
-- deadline may be all that ends an event wait, but one whose `within`
-- returned must not delay the end of `run`). A passed deadline leaves its
-- queue and gets a watchdog coroutine (only then), which interrupts the
-- guarded coroutine's awaits until `within` returns; from then on the
-- coroutine is held weakly, so one abandoned inside `within` is collected
-- once its deadline passed.
local CO, AT, Q, PREV, NEXT = 1, 2, 3, 4, 5
local spare = {} -- entries of returned calls, for reuse
local queues = {} -- duration -> { head = e or false, tail = e or false }
-- e -> { weak coroutine, watchdog = co, done = b, hooked = t }; weak keys:
-- an entry whose coroutine was collected goes with its watchdog
local watched = setmetatable({}, { __mode = "k" })
local keeper, target, dirty -- the keeper, when it wakes, entries added meanwhile
local pending = 0 -- entries in queues
local sleeping = {} -- the keeper's timer (see natives.sleep)

local function unlink(q, e)
	local p, n = e[PREV], e[NEXT]
	if p then p[NEXT] = n else q.head = n end
	if n then n[PREV] = p else q.tail = p end
	e[Q] = false
	pending = pending - 1
	if pending == 0 then hold(sleeping, false) end
end

-- Waits until the plain yield `co` sits in ends: its next instruction
-- wakes us (a hook, its previous one put back at once).
local function nextrun(co, w)
	local old = pack(gethook(co))
	sethook(co, function()
		if old[1] ~= nil then sethook(unpack(old, 1, old.n)) else sethook() end
		emitall(w)
	end, "", 1)
	w.hooked = old
	waitany(w)
	w.hooked = nil
end

-- The watchdog of a passed deadline.
local function watching(w)
	while not w.done do
		local co = w[1]
		if co == nil or status(co) == "dead" then return end
		if inawait(co) then
			resume(co, false, TIMEDOUT, ETIMEDOUT)
		elseif status(co) == "suspended" then
			nextrun(co, w)
		end
		if w.done then return end
		suspend()
	end
end

local function watch(e, w)
	watching(w)
	watched[e] = nil
end

local function expire(q, e)
	unlink(q, e)
	local w = setmetatable({ e[CO], done = false }, weak)
	e[CO] = false
	w.watchdog = create(watch)
	watched[e] = w
	resume(w.watchdog, e, w)
end

local function keep()
	while true do
		local now = time()
		repeat
			dirty = false
			target = nil
			for seconds, q in pairs(queues) do
				local e = q.head
				while e and e[AT] <= now do
					expire(q, e)
					e = q.head
				end
				if not e then
					queues[seconds] = nil
				elseif target == nil or e[AT] < target then
					target = e[AT]
				end
			end
		until not dirty
		if target == nil then
			keeper = nil
			return
		end
		sleep(target - now, sleeping, pending > 0) -- or resumed for an earlier deadline
	end
end

local finished = { __close = function(e)
	local q = e[Q]
	if q then -- pending: leave the queue
		local p, n = e[PREV], e[NEXT]
		if p then p[NEXT] = n else q.head = n end
		if n then n[PREV] = p else q.tail = p end
		pending = pending - 1
		if pending == 0 then hold(sleeping, false) end
		e[CO], e[Q], e[PREV], e[NEXT] = false, false, false, false
		spare[#spare + 1] = e
		return
	end
	local w = watched[e] -- passed: stop its watchdog
	if w == nil then return end
	watched[e] = nil
	w.done = true
	local dog = w.watchdog
	if status(dog) == "suspended" then resume(dog) end
	local old = w.hooked
	if old ~= nil then -- the guarded coroutine runs: put its hook back
		if old[1] ~= nil then sethook(unpack(old, 1, old.n)) else sethook() end
	end
end }

function await.within(seconds, f, ...)
	local e = enter(seconds, f, finished, spare)
	if e then
		local q = queues[seconds]
		if q == nil then
			q = { head = false, tail = false }
			queues[seconds] = q
		end
		local tail = q.tail
		e[Q], e[PREV] = q, tail
		if tail then tail[NEXT] = e else q.head = e end
		q.tail = e
		pending = pending + 1
		if pending == 1 then hold(sleeping, true) end
		if keeper == nil then
			keeper = create(keep)
			resume(keeper)
		elseif target == nil or e[AT] < target then
			dirty = true
			if status(keeper) == "suspended" then resume(keeper) end
		end
		local _ <close> = e
		return f(...)
	end
	-- not the common case: bad arguments, no coroutine, no limit, or a
	-- callable object
	if type(seconds) ~= "number" then
		argerror(2, 1, "within", "number", seconds, seconds == nil and f == nil and select("#", ...) == 0)
	end
	if seconds ~= seconds or seconds < 0 then
		error("bad argument #1 to 'within' (out of range)", 2)
	end
	checkcallable(2, 2, "within", f)
	if not isyieldable() then error("unable to yield", 2) end
	if seconds == 1 / 0 then return f(...) end
	-- a callable object
	return await.within(seconds, function(...) return f(...) end, ...)
end

---------------------------------------------------------------- stats

-- The counters of this state: coroutines waiting by kind of operation,
-- open objects by class, loop iterations, and the `within` calls whose
-- deadline has not passed.
function await.stats()
	local t = natives.stats()
	t.deadlines = pending
	return t
end

-- for co, kind in await.waiting() do ... end: the coroutines waiting in
-- loop operations now (a snapshot taken by the call).
function await.waiting()
	local list, i = natives.waiting(), -1
	return function()
		i = i + 2
		return list[i], list[i + 1]
	end
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
local function settle(set)
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

-- Starts the functions `...` (n of them) in `set` until it is over, then
-- returns what `settle` returns.
local function runall(set, n, ...)
	for i = 1, n do
		run(set, i, (select(i, ...)))
		if set.over then break end
	end
	return settle(set)
end

function await.any(...)
	local n = started("any", ...)
	local set = { cos = {}, report = endany, over = false }
	local emitted = pack(runall(set, n, ...))
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
	local emitted = pack(runall(set, n, ...))
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
