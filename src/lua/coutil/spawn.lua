-- coutil.spawn: run a function in a new coroutine under a message handler.
-- The library keeps no reference to the coroutines it creates.

-- Independent states (coutil.threads) start without standard globals:
-- take what this module uses from `require`.
require "_G" -- the basic functions (error, select, ...)
local coroutine = require "coroutine"
local create, resume = coroutine.create, coroutine.resume
local xpcall = xpcall

local spawn = {}

-- `catch` and `trap` never raise: a failure of the first run is left for
-- whoever inspects the (then dead) coroutine.
local function start(body, ...)
	local co = create(body)
	resume(co, ...)
	return co
end

function spawn.catch(h, f, ...)
	return start(function(...) return xpcall(f, h, ...) end, ...)
end

local function trapped(h, ok, ...)
	if ok then return h(true, ...) end -- errors here are C's own errors
	-- failure was already handled by the message handler: end with no results
end

function spawn.trap(h, f, ...)
	return start(function(...)
		local handling = false
		local function handler(err)
			-- An error raised by `h` re-enters this handler; Lua would keep
			-- calling `h` until the C stack overflows. Call it once and let
			-- its error end xpcall, whose failure is then ignored.
			if not handling then
				handling = true
				h(false, err)
			end
			return err
		end
		return trapped(h, xpcall(f, handler, ...))
	end, ...)
end

return spawn
