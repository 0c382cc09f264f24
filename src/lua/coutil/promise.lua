-- coutil.promise: promises are functions; calling one returns its results,
-- awaiting an event on the promise itself while it is unfulfilled.

-- Independent states (coutil.threads) start without standard globals:
-- take what this module uses from `require`.
require "_G" -- the basic functions (error, select, ...)
local table = require "table"
local event = require "coutil.event"

local pack, unpack, select = table.pack, table.unpack, select

-- event's hidden core of awaitany: reports whether the await ended by an
-- emission, which the public functions cannot tell apart from an explicit
-- resume whose first value happens to be the awaited value.
local waitany = getmetatable(event).coutil_internal.waitany

local promise = { version = "1.0 alpha" }

local function noemitted(emitted, ...)
	if emitted then return select(2, ...) end -- drop the promise itself
	return ...
end

function promise.create()
	local results -- latest fulfil values (packed); nil while unfulfilled
	local p
	function p(probe)
		if probe then return results ~= nil end
		if results ~= nil then return unpack(results, 1, results.n) end
		return noemitted(waitany(p))
	end
	local function fulfil(...)
		local first = results == nil
		results = pack(...)
		if first then event.emitall(p, ...) end
		return first
	end
	return p, fulfil
end

function promise.onlypending(...)
	local found = {}
	for i = 1, select("#", ...) do
		local p = select(i, ...)
		if p == nil then break end
		if not p(true) then found[#found + 1] = p end
	end
	return unpack(found)
end

function promise.pickready(...)
	for i = 1, select("#", ...) do
		local p = select(i, ...)
		if p == nil then break end
		if p(true) then return p end
	end
end

function promise.awaitall(...)
	return event.awaitall(promise.onlypending(...))
end

function promise.awaitany(...)
	local p = promise.pickready(...)
	if p ~= nil then return p, p() end
	local pending = pack(promise.onlypending(...))
	while true do
		local res = pack(waitany(unpack(pending, 1, pending.n)))
		if not res[1] then return unpack(res, 2, res.n) end -- explicit resume
		p = res[2]
		-- a stray emission on an unfulfilled promise is not an answer
		if p(true) then return p, p() end
	end
end

return promise
