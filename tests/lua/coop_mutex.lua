-- Tests of coutil.mutex (spec coop.md).

local T = require "testlib"
local event = require "coutil.event"
local mutex = require "coutil.mutex"

local pack, unpack = table.pack, table.unpack

local noyield = T.noyield

-- Spawns a coroutine that locks `e`, logs `name` (and whether it owns the
-- lock, in log[name]), then holds the lock until resumed once more.
local function locker(log, name, e)
	return T.spawn(function()
		local res = pack(mutex.lock(e))
		assert(res.n == 0)
		log[#log + 1] = name
		log[name] = mutex.ownlock(e)
		coroutine.yield()
		return mutex.unlock(e)
	end)
end

T.case("module has version", function()
	assert(mutex.version == "1.0 alpha")
end)

T.case("lock of a free value returns nothing and takes it", function()
	local e = {}
	assert(mutex.islocked(e) == false)
	assert(mutex.ownlock(e) == false)
	T.same({ n = 0 }, mutex.lock(e)) -- the running thread may be the main one
	assert(mutex.islocked(e) == true)
	assert(mutex.ownlock(e) == true)
	assert(mutex.unlock(e) == false) -- nobody awaited
	assert(mutex.islocked(e) == false)
	assert(mutex.ownlock(e) == false)
end)

T.case("lock(nil) raises table index is nil", function()
	T.raises("table index is nil", mutex.lock, nil)
	T.raises("table index is nil", mutex.lock)
	local co = T.spawn(function() T.raises("table index is nil", mutex.lock, nil) end)
	assert(coroutine.status(co) == "dead")
end)

T.case("islocked and ownlock of nil are false", function()
	assert(mutex.islocked(nil) == false)
	assert(mutex.ownlock(nil) == false)
	assert(mutex.islocked() == false)
	assert(mutex.ownlock() == false)
end)

T.case("nested lock raises", function()
	local e = {}
	mutex.lock(e)
	T.raises("nested lock", mutex.lock, e)
	assert(mutex.ownlock(e) == true)
	mutex.unlock(e)
	local co = T.spawn(function()
		mutex.lock(e)
		T.raises("nested lock", mutex.lock, e)
		mutex.unlock(e)
	end)
	assert(coroutine.status(co) == "dead")
	assert(mutex.islocked(e) == false)
end)

T.case("unlock of a lock not owned raises", function()
	local e = {}
	T.raises("lock not owned", mutex.unlock, e)
	T.raises("lock not owned", mutex.unlock, nil)
	T.raises("lock not owned", mutex.unlock)
	local log = {}
	local co = locker(log, "a", e)
	T.raises("lock not owned", mutex.unlock, e)
	assert(mutex.islocked(e) == true)
	assert(mutex.ownlock(e) == false)
	coroutine.resume(co)
	assert(mutex.islocked(e) == false)
end)

T.case("a coroutine owns a lock; others see it locked", function()
	local e, log = {}, {}
	local co = locker(log, "a", e)
	assert(log.a == true)
	assert(mutex.islocked(e) == true)
	assert(mutex.ownlock(e) == false)
	local inner = T.spawn(function()
		log.islocked, log.ownlock = mutex.islocked(e), mutex.ownlock(e)
	end)
	assert(coroutine.status(inner) == "dead")
	assert(log.islocked == true and log.ownlock == false)
	local _, res = coroutine.resume(co)
	assert(res == false)
	assert(mutex.islocked(e) == false)
end)

T.case("waiting lockers acquire in FIFO order", function()
	local e, log = {}, {}
	mutex.lock(e)
	local a = locker(log, "a", e)
	local b = locker(log, "b", e)
	local c = locker(log, "c", e)
	assert(#log == 0)
	assert(event.pending(e) == true)
	assert(mutex.unlock(e) == true)
	T.same({ "a" }, unpack(log))
	assert(log.a == true)
	assert(mutex.islocked(e) == true and mutex.ownlock(e) == false)
	local _, res = coroutine.resume(a)
	assert(res == true) -- unlock returned emitone's result
	T.same({ "a", "b" }, unpack(log))
	coroutine.resume(b)
	T.same({ "a", "b", "c" }, unpack(log))
	assert(log.b == true and log.c == true)
	local _, last = coroutine.resume(c)
	assert(last == false)
	assert(mutex.islocked(e) == false)
end)

T.case("the main chunk's thread may own a lock others wait for", function()
	local e, log = {}, {}
	mutex.lock(e)
	local co = locker(log, "a", e)
	assert(coroutine.status(co) == "suspended" and #log == 0)
	assert(mutex.ownlock(e) == true)
	assert(mutex.unlock(e) == true)
	assert(log.a == true)
	assert(mutex.ownlock(e) == false)
	coroutine.resume(co)
	assert(mutex.islocked(e) == false)
end)

T.case("locking a taken lock outside a coroutine raises unable to yield", function()
	local e, log = {}, {}
	local co = locker(log, "a", e)
	T.raises("unable to yield", noyield, mutex.lock, e)
	assert(mutex.ownlock(e) == false)
	coroutine.resume(co)
	assert(mutex.islocked(e) == false)
end)

T.case("spurious emissions do not give the lock", function()
	local e, log = {}, {}
	mutex.lock(e)
	local a = locker(log, "a", e)
	local b = locker(log, "b", e)
	assert(event.emitall(e, "spurious") == true)
	assert(#log == 0)
	assert(event.emitone(e) == true)
	assert(#log == 0)
	assert(event.pending(e) == true)
	assert(mutex.ownlock(e) == true)
	mutex.unlock(e)
	assert(#log == 1)
	local cos = { a = a, b = b }
	coroutine.resume(cos[log[1]]) -- whichever got it lets the other in
	assert(#log == 2 and log.a == true and log.b == true)
	coroutine.resume(cos[log[2]])
	assert(mutex.islocked(e) == false)
end)

T.case("spurious emitall keeps the lockers' order", function()
	local e, log = {}, {}
	mutex.lock(e)
	local a = locker(log, "a", e)
	local b = locker(log, "b", e)
	event.emitall(e)
	mutex.unlock(e)
	T.same({ "a" }, unpack(log))
	coroutine.resume(a)
	T.same({ "a", "b" }, unpack(log))
	coroutine.resume(b)
end)

T.case("explicit resume of a waiting locker does not give the lock", function()
	local e, log = {}, {}
	mutex.lock(e)
	local a = locker(log, "a", e)
	coroutine.resume(a, "wake")
	assert(#log == 0 and coroutine.status(a) == "suspended")
	mutex.unlock(e)
	assert(log.a == true)
	coroutine.resume(a)
	assert(mutex.islocked(e) == false)
end)

T.case("unlock may wake a plain event waiter; lockers keep waiting", function()
	local e, log = {}, {}
	mutex.lock(e)
	T.spawn(function()
		event.await(e)
		log[#log + 1] = "plain"
	end)
	local a = locker(log, "a", e)
	assert(mutex.unlock(e) == true)
	T.same({ "plain" }, unpack(log))
	assert(mutex.islocked(e) == false)
	assert(event.pending(e) == true)
	assert(event.emitone(e) == true) -- a later emission lets the locker in
	T.same({ "plain", "a" }, unpack(log))
	assert(log.a == true)
	coroutine.resume(a)
	assert(mutex.islocked(e) == false)
end)

T.case("a free lock is taken at once even with lockers waiting", function()
	local e, log = {}, {}
	mutex.lock(e)
	T.spawn(event.await, e)
	local a = locker(log, "a", e)
	mutex.unlock(e) -- wakes the plain waiter only
	local b = locker(log, "b", e)
	T.same({ "b" }, unpack(log))
	coroutine.resume(b) -- its unlock wakes a
	T.same({ "b", "a" }, unpack(log))
	coroutine.resume(a)
	assert(mutex.islocked(e) == false)
end)

T.case("locks are independent per value", function()
	local values = { "str", 1, true, false, print }
	for _, e in ipairs(values) do mutex.lock(e) end
	for _, e in ipairs(values) do
		assert(mutex.islocked(e) == true and mutex.ownlock(e) == true)
	end
	assert(mutex.islocked("other") == false)
	for _, e in ipairs(values) do assert(mutex.unlock(e) == false) end
	for _, e in ipairs(values) do assert(mutex.islocked(e) == false) end
end)

T.case("a lock does not keep its value alive", function()
	local weak = setmetatable({}, { __mode = "k" })
	do
		local e = {}
		weak[e] = true
		mutex.lock(e)
		local co = T.spawn(function() mutex.lock(e) end)
		weak[co] = true
	end
	for _ = 1, 4 do collectgarbage("collect") end
	assert(next(weak) == nil)
end)

T.done()
