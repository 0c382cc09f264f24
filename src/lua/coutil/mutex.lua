-- coutil.mutex: locks keyed by any non-nil value, owned by the running
-- coroutine (or the main thread), waited for through coutil.event.

-- Independent states (coutil.threads) start without standard globals:
-- take what this module uses from `require`.
require "_G" -- the basic functions (error, select, ...)
local coroutine = require "coroutine"
local event = require "coutil.event"

local running = coroutine.running
local error, setmetatable = error, setmetatable

local mutex = { version = "1.0 alpha" }

-- owners[e] = owning thread; weak keys so a lock does not keep `e` alive.
local owners = setmetatable({}, { __mode = "k" })

function mutex.lock(e)
	if e == nil then error("table index is nil", 2) end
	local co = running()
	if owners[e] == co then error("nested lock", 2) end
	-- Any emission on `e` wakes us (unlock, or a stray event.emit*), so
	-- re-check each time. Lockers register in arrival order and unlock
	-- wakes the oldest, which gives FIFO acquisition.
	while owners[e] ~= nil do event.await(e) end
	owners[e] = co
end

function mutex.unlock(e)
	if e == nil or owners[e] ~= running() then error("lock not owned", 2) end
	owners[e] = nil
	return event.emitone(e)
end

function mutex.islocked(e)
	return e ~= nil and owners[e] ~= nil
end

function mutex.ownlock(e)
	return e ~= nil and owners[e] == running()
end

return mutex
