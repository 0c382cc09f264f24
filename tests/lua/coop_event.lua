-- Tests of coutil.event (spec coop.md).

local T = require "testlib"
local event = require "coutil.event"

local pack, unpack = table.pack, table.unpack

local noyield = T.noyield

-- Spawns a coroutine that awaits with `await(...)` and then appends `name`
-- (a string) to `log` and stores the packed results in `log[name]`.
local function waiter(log, name, await, ...)
	return T.spawn(function(...)
		local res = pack(await(...))
		log[#log + 1] = name
		log[name] = res
	end, ...)
end

T.case("module has version", function()
	assert(event.version == "1.0 alpha")
end)

T.case("await outside a coroutine raises unable to yield", function()
	T.raises("unable to yield", noyield, event.await, {})
	T.raises("unable to yield", noyield, event.awaitany, {}, {})
	T.raises("unable to yield", noyield, event.awaitall, {}, {})
end)

T.case("unable to yield is checked before the arguments", function()
	T.raises("unable to yield", noyield, event.await, nil)
	T.raises("unable to yield", noyield, event.await)
	T.raises("unable to yield", noyield, event.awaitany)
	T.raises("unable to yield", noyield, event.awaitany, nil, nil)
	T.raises("unable to yield", noyield, event.awaitall)
end)

T.case("await(nil) raises table index is nil", function()
	local co = T.spawn(function()
		T.raises("table index is nil", event.await, nil)
		T.raises("table index is nil", event.await)
	end)
	assert(coroutine.status(co) == "dead")
end)

T.case("awaitany without non-nil values raises", function()
	local co = T.spawn(function()
		T.raises("non-nil value expected", event.awaitany)
		T.raises("non-nil value expected", event.awaitany, nil)
		T.raises("non-nil value expected", event.awaitany, nil, nil, nil)
	end)
	assert(coroutine.status(co) == "dead")
end)

T.case("awaitall without non-nil values returns true at once", function()
	local co, a, b = T.spawn(function()
		return event.awaitall(), event.awaitall(nil, nil)
	end)
	assert(coroutine.status(co) == "dead")
	assert(a == true and b == true)
end)

T.case("emit with nobody registered returns false", function()
	local e = {}
	assert(event.emitall(e) == false)
	assert(event.emitone(e, 1, 2) == false)
	assert(event.emitall() == false)
	assert(event.emitall(nil, 1) == false)
	assert(event.emitone() == false)
	assert(event.emitone(nil) == false)
end)

T.case("pending reflects registrations", function()
	local e = {}
	assert(event.pending(e) == false)
	assert(event.pending(nil) == false)
	assert(event.pending() == false)
	local co = T.spawn(event.await, e)
	assert(event.pending(e) == true)
	assert(event.emitall(e) == true)
	assert(event.pending(e) == false)
	assert(coroutine.status(co) == "dead")
end)

T.case("await returns the value and the extra values", function()
	local e, log = {}, {}
	waiter(log, "a", event.await, e)
	assert(event.emitall(e, 1, nil, "x", nil) == true)
	T.same({ n = 5, e, 1, nil, "x", nil }, unpack(log.a, 1, log.a.n))
end)

T.case("await returns only the value when no extra values", function()
	local e, log = {}, {}
	waiter(log, "a", event.await, e)
	assert(event.emitone(e) == true)
	T.same({ n = 1, e }, unpack(log.a, 1, log.a.n))
end)

T.case("any non-nil value is an event, even false", function()
	local values = { false, true, 0, 1.5, "str", print, coroutine.create(print) }
	for _, e in ipairs(values) do
		local log = {}
		waiter(log, "a", event.await, e)
		assert(event.pending(e) == true)
		assert(event.emitall(e, "v") == true)
		T.same({ e, "v" }, unpack(log.a, 1, log.a.n))
		assert(event.pending(e) == false)
	end
end)

T.case("emitall resumes in registration order", function()
	local e, log = {}, {}
	for i = 1, 5 do waiter(log, "w" .. i, event.await, e) end
	assert(event.emitall(e) == true)
	T.same({ "w1", "w2", "w3", "w4", "w5" }, unpack(log))
	assert(event.emitall(e) == false)
end)

T.case("emitone resumes only the oldest", function()
	local e, log = {}, {}
	for i = 1, 3 do waiter(log, "w" .. i, event.await, e) end
	assert(event.emitone(e, "x") == true)
	T.same({ "w1" }, unpack(log))
	T.same({ e, "x" }, unpack(log.w1, 1, log.w1.n))
	assert(event.pending(e) == true)
	assert(event.emitone(e) == true)
	assert(event.emitone(e) == true)
	T.same({ "w1", "w2", "w3" }, unpack(log))
	assert(event.emitone(e) == false)
end)

T.case("order follows registration for all await forms", function()
	local e, f, log = {}, {}, {}
	waiter(log, "await", event.await, e)
	waiter(log, "any", event.awaitany, f, e)
	waiter(log, "all", event.awaitall, e)
	waiter(log, "await2", event.await, e)
	assert(event.emitall(e) == true)
	T.same({ "await", "any", "all", "await2" }, unpack(log))
	assert(event.pending(f) == false)
end)

T.case("each resumed coroutine runs until it yields before the next", function()
	local e, log = {}, {}
	local a = T.spawn(function()
		event.await(e)
		log[#log + 1] = "a1"
		coroutine.yield()
		log[#log + 1] = "a2"
	end)
	waiter(log, "b", event.await, e)
	assert(event.emitall(e) == true) -- the emitter goes on while a is suspended
	T.same({ "a1", "b" }, unpack(log))
	coroutine.resume(a)
	assert(coroutine.status(a) == "dead")
end)

T.case("emitall does not resume a coroutine awaiting again", function()
	local e, count = {}, 0
	local co = T.spawn(function()
		while true do
			event.await(e)
			count = count + 1
		end
	end)
	assert(event.emitall(e) == true)
	assert(count == 1)
	assert(event.pending(e) == true)
	assert(event.emitall(e) == true)
	assert(count == 2)
	coroutine.close(co)
end)

T.case("emitall does not resume coroutines registered during it", function()
	local e, log = {}, {}
	T.spawn(function()
		event.await(e)
		log[#log + 1] = "a"
		waiter(log, "new", event.await, e)
	end)
	waiter(log, "b", event.await, e)
	assert(event.emitall(e) == true)
	T.same({ "a", "b" }, unpack(log))
	assert(event.pending(e) == true)
	assert(event.emitall(e) == true)
	T.same({ "a", "b", "new" }, unpack(log))
end)

T.case("emitone does not resume the coroutine it wakes twice", function()
	local e, count = {}, 0
	T.spawn(function()
		event.await(e)
		count = count + 1
		event.await(e)
		count = count + 1
	end)
	assert(event.emitone(e) == true)
	assert(count == 1)
	assert(event.emitone(e) == true)
	assert(count == 2)
	assert(event.emitone(e) == false)
end)

T.case("nested emitall sees only new registrations", function()
	local e, log = {}, {}
	T.spawn(function()
		event.await(e)
		log[#log + 1] = "a"
		waiter(log, "new", event.await, e)
		log.nested = event.emitall(e, "inner")
		log[#log + 1] = "a-end"
	end)
	waiter(log, "b", event.await, e)
	assert(event.emitall(e, "outer") == true)
	T.same({ "a", "new", "a-end", "b" }, unpack(log))
	assert(log.nested == true)
	T.same({ e, "inner" }, unpack(log.new, 1, log.new.n))
	T.same({ e, "outer" }, unpack(log.b, 1, log.b.n))
end)

T.case("nested emitall with no new registration returns false", function()
	local e, log = {}, {}
	T.spawn(function()
		event.await(e)
		log.nested = event.emitall(e)
	end)
	waiter(log, "b", event.await, e)
	assert(event.emitall(e) == true)
	assert(log.nested == false)
	assert(log.b ~= nil)
end)

T.case("a coroutine deregistered by another event is skipped", function()
	local e, f, log = {}, {}, {}
	T.spawn(function()
		event.await(e)
		log[#log + 1] = "a"
		event.emitall(f, "f")
	end)
	waiter(log, "b", event.awaitany, e, f)
	waiter(log, "c", event.await, e)
	assert(event.emitall(e) == true)
	T.same({ "a", "b", "c" }, unpack(log))
	T.same({ f, "f" }, unpack(log.b, 1, log.b.n)) -- woken by f, once
end)

T.case("a coroutine explicitly resumed before its turn is skipped", function()
	local e, log = {}, {}
	local b
	T.spawn(function()
		event.await(e)
		log[#log + 1] = "a"
		coroutine.resume(b, "explicit")
	end)
	b = waiter(log, "b", event.await, e)
	waiter(log, "c", event.await, e)
	assert(event.emitall(e) == true)
	T.same({ "a", "b", "c" }, unpack(log))
	T.same({ "explicit" }, unpack(log.b, 1, log.b.n))
end)

T.case("a skipped coroutine awaiting again is not resumed by the emission", function()
	local e, log = {}, {}
	local b
	T.spawn(function()
		event.await(e)
		coroutine.resume(b)
	end)
	b = T.spawn(function()
		event.await(e) -- ended by the explicit resume
		log[#log + 1] = "b1"
		event.await(e)
		log[#log + 1] = "b2"
	end)
	assert(event.emitall(e) == true)
	T.same({ "b1" }, unpack(log))
	assert(event.emitall(e) == true)
	T.same({ "b1", "b2" }, unpack(log))
end)

T.case("errors in resumed coroutines are ignored by emitall", function()
	local e, log = {}, {}
	local a = T.spawn(function() event.await(e) error("oops") end)
	waiter(log, "b", event.await, e)
	assert(event.emitall(e) == true)
	assert(coroutine.status(a) == "dead")
	assert(log.b ~= nil)
end)

T.case("errors in resumed coroutines are ignored by emitone", function()
	local e = {}
	local a = T.spawn(function() event.await(e) error({}) end)
	assert(event.emitone(e) == true)
	assert(coroutine.status(a) == "dead")
end)

T.case("awaitany returns the emitted value and extra values", function()
	local e, f, log = {}, {}, {}
	waiter(log, "a", event.awaitany, e, f)
	assert(event.pending(e) and event.pending(f))
	assert(event.emitone(f, nil, 2, nil) == true)
	T.same({ n = 4, f, nil, 2, nil }, unpack(log.a, 1, log.a.n))
	assert(event.pending(e) == false)
	assert(event.emitall(e) == false)
end)

T.case("awaitany ignores nils and duplicates", function()
	local e, f, log = {}, {}, {}
	waiter(log, "a", event.awaitany, nil, e, e, nil, f, e)
	assert(event.emitall(e, "x") == true)
	T.same({ e, "x" }, unpack(log.a, 1, log.a.n))
	assert(event.pending(e) == false and event.pending(f) == false)
	assert(event.emitall(e) == false)
	assert(event.emitall(f) == false)
end)

T.case("await is awaitany of one value", function()
	local e, log = {}, {}
	waiter(log, "a", event.await, e)
	waiter(log, "b", event.awaitany, e)
	event.emitall(e, 1)
	T.same({ e, 1 }, unpack(log.a, 1, log.a.n))
	T.same({ e, 1 }, unpack(log.b, 1, log.b.n))
end)

T.case("explicit resume of await returns no values", function()
	local e, log = {}, {}
	local co = waiter(log, "a", event.await, e)
	assert(coroutine.resume(co))
	T.same({ n = 0 }, unpack(log.a, 1, log.a.n))
	assert(event.pending(e) == false)
	assert(event.emitall(e) == false)
end)

T.case("explicit resume of await returns one value", function()
	local e, log = {}, {}
	local co = waiter(log, "a", event.await, e)
	assert(coroutine.resume(co, e))
	T.same({ n = 1, e }, unpack(log.a, 1, log.a.n))
	assert(event.pending(e) == false)
end)

T.case("explicit resume of await returns several values with nils", function()
	local e, log = {}, {}
	local co = waiter(log, "a", event.await, e)
	assert(coroutine.resume(co, nil, 1, nil, "x", nil))
	T.same({ n = 5, nil, 1, nil, "x", nil }, unpack(log.a, 1, log.a.n))
	assert(event.pending(e) == false)
end)

T.case("explicit resume of awaitany returns the values and deregisters all", function()
	local e, f, log = {}, {}, {}
	local co = waiter(log, "a", event.awaitany, e, f)
	assert(coroutine.resume(co, f, "fake"))
	T.same({ f, "fake" }, unpack(log.a, 1, log.a.n))
	assert(event.pending(e) == false and event.pending(f) == false)
	assert(event.emitall(e) == false and event.emitall(f) == false)
end)

T.case("explicit resume of awaitany with nothing", function()
	local e, f, log = {}, {}, {}
	local co = waiter(log, "a", event.awaitany, e, f)
	assert(coroutine.resume(co))
	T.same({ n = 0 }, unpack(log.a, 1, log.a.n))
	assert(event.pending(e) == false and event.pending(f) == false)
end)

T.case("explicitly resumed coroutine keeps others registered", function()
	local e, log = {}, {}
	local a = waiter(log, "a", event.await, e)
	waiter(log, "b", event.await, e)
	coroutine.resume(a, 1)
	assert(event.pending(e) == true)
	assert(event.emitall(e, 2) == true)
	T.same({ "a", "b" }, unpack(log))
	T.same({ e, 2 }, unpack(log.b, 1, log.b.n))
end)

T.case("await works again after an explicit resume", function()
	local e, log = {}, {}
	local co = T.spawn(function()
		log.first = pack(event.await(e))
		log.second = pack(event.awaitany(e))
		log.third = pack(event.awaitall(e))
	end)
	coroutine.resume(co, "r")
	assert(event.pending(e) == true)
	assert(event.emitall(e, "x") == true)
	assert(event.pending(e) == true)
	coroutine.resume(co, "s", "t")
	assert(coroutine.status(co) == "dead")
	T.same({ "r" }, unpack(log.first, 1, log.first.n))
	T.same({ e, "x" }, unpack(log.second, 1, log.second.n))
	T.same({ "s", "t" }, unpack(log.third, 1, log.third.n))
	assert(event.pending(e) == false)
end)

T.case("awaitall returns true when all values were emitted", function()
	local e, f, g, log = {}, {}, {}, {}
	waiter(log, "a", event.awaitall, e, nil, f, e, g)
	assert(event.emitall(f, "ignored") == true)
	assert(log.a == nil)
	assert(event.pending(f) == false)
	assert(event.pending(e) and event.pending(g))
	assert(event.emitall(e) == true)
	assert(event.emitall(e) == false) -- duplicates registered once
	assert(log.a == nil)
	assert(event.emitone(g) == true)
	T.same({ true }, unpack(log.a, 1, log.a.n))
end)

T.case("explicit resume of awaitall returns the values and deregisters", function()
	local e, f, log = {}, {}, {}
	local co = waiter(log, "a", event.awaitall, e, f)
	event.emitall(e)
	assert(coroutine.resume(co, nil, false, nil))
	T.same({ n = 3, nil, false, nil }, unpack(log.a, 1, log.a.n))
	assert(event.pending(e) == false and event.pending(f) == false)
	assert(event.emitall(f) == false)
end)

T.case("explicit resume of awaitall with nothing", function()
	local e, log = {}, {}
	local co = waiter(log, "a", event.awaitall, e)
	assert(coroutine.resume(co))
	T.same({ n = 0 }, unpack(log.a, 1, log.a.n))
	assert(event.pending(e) == false)
end)

T.case("a just-resumed coroutine is no longer registered", function()
	local e, f, log = {}, {}, {}
	T.spawn(function()
		event.awaitany(e, f)
		log.e, log.f = event.pending(e), event.pending(f)
	end)
	event.emitone(e)
	assert(log.e == false and log.f == false)
end)

T.case("emitone skips deregistered waiters", function()
	local e, f, log = {}, {}, {}
	local a = waiter(log, "a", event.await, e)
	waiter(log, "b", event.awaitany, e, f)
	waiter(log, "c", event.await, e)
	coroutine.resume(a)
	event.emitall(f)
	assert(event.emitone(e) == true)
	T.same({ "a", "b", "c" }, unpack(log))
	assert(event.emitone(e) == false)
end)

T.case("FIFO order holds after many deregistrations", function()
	local e, f, log = {}, {}, {}
	waiter(log, "w1", event.await, e)
	for i = 1, 100 do waiter(log, "x" .. i, event.awaitany, e, f) end
	waiter(log, "w2", event.await, e)
	assert(event.emitall(f) == true)
	for i = 1, 50 do waiter(log, "y" .. i, event.awaitany, e, f) end
	waiter(log, "w3", event.await, e)
	assert(event.emitall(f) == true)
	for i = 1, #log do log[i] = nil end
	assert(event.emitone(e) == true)
	assert(event.emitone(e) == true)
	assert(event.emitone(e) == true)
	assert(event.emitone(e) == false)
	T.same({ "w1", "w2", "w3" }, unpack(log))
end)

T.case("the emitter itself can be a coroutine", function()
	local e, log = {}, {}
	waiter(log, "a", event.await, e)
	local co, res = T.spawn(function() return event.emitall(e, 1) end)
	assert(res == true)
	assert(coroutine.status(co) == "dead")
	T.same({ e, 1 }, unpack(log.a, 1, log.a.n))
end)

T.case("a waiter reachable only through the event is collected with it", function()
	local weak = setmetatable({}, { __mode = "k" })
	do
		local e = {}
		local co = T.spawn(event.await, e)
		weak[co], weak[e] = true, true
		local co2 = T.spawn(event.awaitany, e, {})
		weak[co2] = true
		local co3 = T.spawn(event.awaitall, {}, e)
		weak[co3] = true
	end
	for _ = 1, 4 do collectgarbage("collect") end
	assert(next(weak) == nil)
end)

T.case("deregistered values are not kept alive", function()
	local weak = setmetatable({}, { __mode = "k" })
	local f = {}
	local co = T.spawn(function()
		local e = {}
		weak[e] = true
		event.awaitany(f, e) -- e stays referenced by this waiter only
	end)
	weak[co] = true
	co = nil
	for _ = 1, 4 do collectgarbage("collect") end
	-- the waiter is still reachable through f, so e too
	assert(next(weak) ~= nil)
	assert(event.emitall(f) == true)
	for _ = 1, 4 do collectgarbage("collect") end
	assert(next(weak) == nil)
end)

T.case("a waiter left on an unreachable value is collectable", function()
	local weak = setmetatable({}, { __mode = "k" })
	local e = {}
	local co = T.spawn(event.awaitall, e, {})
	weak[co] = true
	co = nil
	assert(event.emitall(e) == true)
	for _ = 1, 4 do collectgarbage("collect") end
	assert(next(weak) == nil)
end)

T.done()
