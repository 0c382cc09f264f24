-- coutil.event: coroutines await events emitted on arbitrary non-nil values.
--
-- Each value has a FIFO list of registration records `{ co = <coroutine>,
-- list = <its list> }`; a record whose `co` is nil is deregistered. A record
-- belongs to one await call, so a coroutine that awaits again gets fresh
-- records and stale ones from an earlier await can never wake it.

local coroutine = coroutine
local isyieldable, running = coroutine.isyieldable, coroutine.running
local resume, yield = coroutine.resume, coroutine.yield
local pack, unpack, select = table.pack, table.unpack, select
local error, setmetatable = error, setmetatable

local event = { version = "1.0 alpha" }

-- First resume value passed by emitters. Nobody else can pass it, so an
-- awaiting coroutine can tell an emission from an explicit resume.
local EMITTED = {}

-- lists[e] = registrations on `e`. Weak keys with strong values make this an
-- ephemeron table: a waiter reachable only through `e` is collected with it.
-- Only lists with live records are kept here, so pending() is a lookup.
local lists = setmetatable({}, { __mode = "k" })

-- Rebuilds a list without its dead records; keeps memory bounded when
-- coroutines keep deregistering (e.g. awaitany woken by another value)
-- behind an old waiter that is never woken.
local function compact(list)
	local j = 0
	for i = list.first, list.last do
		local rec = list[i]
		list[i] = nil
		if rec.co ~= nil then
			j = j + 1
			list[j] = rec
		end
	end
	list.first, list.last = 1, j
end

local function register(e, co)
	local list = lists[e]
	if list == nil then
		list = { e = e, first = 1, last = 0, live = 0 }
		lists[e] = list
	end
	local rec = { co = co, list = list }
	list.last = list.last + 1
	list[list.last] = rec
	list.live = list.live + 1
	return rec
end

-- Idempotent: records are cancelled both by emitters and by the awaiter.
local function cancel(rec)
	if rec.co == nil then return end
	rec.co = nil
	local list = rec.list
	list.live = list.live - 1
	-- a list detached by emitall is only being iterated: leave it alone
	if lists[list.e] == list then
		if list.live == 0 then
			lists[list.e] = nil
		elseif list.last - list.first > 2 * list.live + 16 then
			compact(list)
		end
	end
end

local function cancelall(recs)
	for i = 1, #recs do cancel(recs[i]) end
end

-- Also run by `coroutine.close` on a waiting coroutine, so a closed
-- coroutine does not stay registered.
local closer = { __close = cancelall }

-- `level` as in `error`, counted from the function calling checkyield.
local function checkyield(level)
	if not isyieldable() then error("unable to yield", level + 1) end
end

-- Returns the distinct non-nil values among `...`, in order. Done before any
-- registration so an invalid key (NaN) cannot leave half a registration.
local function distinct(...)
	local values, seen = {}, {}
	for i = 1, select("#", ...) do
		local e = select(i, ...)
		if e ~= nil and not seen[e] then
			seen[e] = true
			values[#values + 1] = e
		end
	end
	return values
end

local function registerall(values)
	local co, recs = running(), setmetatable({}, closer)
	for i = 1, #values do recs[i] = register(values[i], co) end
	return recs
end

local function anyresult(recs, ...)
	cancelall(recs)
	if ... == EMITTED then return true, select(2, ...) end
	return false, ...
end

-- Core of awaitany; the leading boolean tells an emission (`true, ek,
-- extra...`) from an explicit resume (`false, values...`). Shared with
-- coutil.promise, which needs that distinction.
local function waitany(...)
	checkyield(3) -- blame the caller of our caller (the user)
	local values = distinct(...)
	if #values == 0 then error("non-nil value expected", 3) end
	local recs <close> = registerall(values)
	return anyresult(recs, yield())
end

function event.awaitany(...)
	return select(2, waitany(...))
end

function event.await(e)
	checkyield(2)
	if e == nil then error("table index is nil", 2) end
	return select(2, waitany(e))
end

function event.awaitall(...)
	checkyield(2)
	local recs <close> = registerall(distinct(...))
	while true do
		local left = false
		for i = 1, #recs do
			if recs[i].co ~= nil then left = true break end
		end
		if not left then return true end
		-- an emitter already removed the record it resumes us for, so only an
		-- explicit resume needs handling here
		local res = pack(yield())
		if res[1] ~= EMITTED then
			cancelall(recs)
			return unpack(res, 1, res.n)
		end
	end
end

-- Errors of the resumed coroutine are deliberately ignored.
local function wake(rec, e, ...)
	local co = rec.co
	cancel(rec)
	resume(co, EMITTED, e, ...)
end

function event.emitall(e, ...)
	if e == nil then return false end
	local list = lists[e]
	if list == nil then return false end
	-- Detach the list: registrations made from now on (even by a coroutine
	-- resumed here) form a new list, seen only by later or nested emissions.
	lists[e] = nil
	for i = list.first, list.last do
		local rec = list[i]
		-- skip records deregistered before their turn
		if rec.co ~= nil then wake(rec, e, ...) end
	end
	return true
end

function event.emitone(e, ...)
	if e == nil then return false end
	local list = lists[e]
	if list == nil then return false end
	-- attached lists always hold a live record; drop dead ones before it
	local i = list.first
	while list[i].co == nil do
		list[i] = nil
		i = i + 1
	end
	local rec = list[i]
	list[i] = nil
	list.first = i + 1
	wake(rec, e, ...)
	return true
end

function event.pending(e)
	return e ~= nil and lists[e] ~= nil
end

-- Not part of the API: a hidden channel for sibling modules, kept out of
-- the module table so it does not show up as a function of the module.
return setmetatable(event, { coutil_internal = { waitany = waitany } })
