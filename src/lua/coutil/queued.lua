-- coutil.queued: like coutil.event, but an emission nobody awaits is stored
-- and consumed by a later await as if emitted right after it began.
-- Registrations are coutil.event's own, so both modules wake each other's
-- waiters.

-- Independent states (coutil.threads) start without standard globals:
-- take what this module uses from `require`.
require "_G" -- the basic functions (error, select, ...)
local coroutine = require "coroutine"
local table = require "table"
local event = require "coutil.event"
local await, awaitany, awaitall = event.await, event.awaitany, event.awaitall

local pack, unpack, select = table.pack, table.unpack, select
local error, setmetatable = error, setmetatable
local isyieldable = coroutine.isyieldable

local queued = { version = "1.0 alpha" }

-- stored[e] = FIFO of packed extra values of emissions on `e`. Weak keys
-- (an ephemeron table) so stored entries do not keep `e` alive.
local stored = setmetatable({}, { __mode = "k" })

local function store(e, ...)
	local fifo = stored[e]
	if fifo == nil then
		fifo = { first = 1, last = 0 }
		stored[e] = fifo
	end
	fifo.last = fifo.last + 1
	fifo[fifo.last] = pack(...)
end

-- Removes and returns the oldest entry stored for `e`, or nil.
local function take(e)
	local fifo = e ~= nil and stored[e]
	if not fifo then return nil end
	local entry = fifo[fifo.first]
	fifo[fifo.first] = nil
	fifo.first = fifo.first + 1
	if fifo.first > fifo.last then stored[e] = nil end
	return entry
end

-- `emit` returns true iff someone was registered on `e` (as `pending`).
local function emitter(emit)
	return function(e, ...)
		if emit(e, ...) then return true end
		if e ~= nil then store(e, ...) end
		return false
	end
end

queued.emitall = emitter(event.emitall)
queued.emitone = emitter(event.emitone)

-- A stored entry is returned without yielding, so (by choice) this path
-- works outside coroutines too.
function queued.await(e)
	if e ~= nil and stored[e] then
		local entry = take(e)
		return e, unpack(entry, 1, entry.n)
	end
	return await(e)
end

function queued.awaitany(...)
	for i = 1, select("#", ...) do
		local e = select(i, ...)
		local entry = take(e)
		if entry then return e, unpack(entry, 1, entry.n) end
	end
	return awaitany(...)
end

function queued.awaitall(...)
	-- checked here so nothing is consumed by a call that cannot complete
	if not isyieldable() then error("unable to yield", 2) end
	local values, seen = {}, {}
	for i = 1, select("#", ...) do
		local e = select(i, ...)
		if e ~= nil and not seen[e] then
			seen[e] = true
			values[#values + 1] = e
		end
	end
	local rest = {}
	for i = 1, #values do
		if take(values[i]) == nil then rest[#rest + 1] = values[i] end
	end
	return awaitall(unpack(rest))
end

function queued.isqueued(e)
	return e ~= nil and stored[e] ~= nil
end
queued.queued = queued.isqueued -- the original's name

queued.pending = event.pending

return queued
