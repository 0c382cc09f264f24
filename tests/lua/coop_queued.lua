-- Tests of coutil.queued (spec coop.md).

local T = require "testlib"
local event = require "coutil.event"
local queued = require "coutil.queued"

local pack, unpack = table.pack, table.unpack

local noyield = T.noyield

-- Spawns a coroutine that awaits with `await(...)` and then appends `name`
-- to `log` and stores the packed results in `log[name]`.
local function waiter(log, name, await, ...)
	return T.spawn(function(...)
		local res = pack(await(...))
		log[#log + 1] = name
		log[name] = res
	end, ...)
end

T.case("module has version and both names of isqueued", function()
	assert(queued.version == "1.0 alpha")
	assert(type(queued.isqueued) == "function")
	assert(type(queued.queued) == "function")
	assert(queued.pending == event.pending)
end)

T.case("emit with nobody awaiting stores one entry and returns false", function()
	local e = {}
	assert(queued.isqueued(e) == false)
	assert(queued.queued(e) == false)
	assert(queued.emitall(e, 1) == false)
	assert(queued.isqueued(e) == true)
	assert(queued.queued(e) == true)
	assert(queued.pending(e) == false)
	local co = T.spawn(function() return queued.await(e) end)
	assert(coroutine.status(co) == "dead")
	assert(queued.isqueued(e) == false)
end)

T.case("emitting nil stores nothing", function()
	assert(queued.emitall(nil, 1) == false)
	assert(queued.emitone() == false)
	assert(queued.isqueued(nil) == false)
	assert(queued.queued() == false)
end)

T.case("await consumes a stored entry without yielding", function()
	local e = {}
	queued.emitone(e, nil, "x", nil)
	local co, a, b, c, d = T.spawn(function() return queued.await(e) end)
	assert(coroutine.status(co) == "dead")
	T.same({ n = 4, e, nil, "x", nil }, a, b, c, d)
	assert(queued.isqueued(e) == false)
end)

T.case("await consumes a stored entry even outside coroutines", function()
	local e = {}
	queued.emitall(e, "v")
	local res
	noyield(function() res = pack(queued.await(e)) end)
	T.same({ e, "v" }, unpack(res, 1, res.n))
end)

T.case("await without stored entry raises unable to yield outside coroutines", function()
	T.raises("unable to yield", noyield, queued.await, {})
	T.raises("unable to yield", noyield, queued.await, nil)
	T.raises("unable to yield", noyield, queued.awaitany, {}, {})
	T.raises("unable to yield", noyield, queued.awaitany)
	T.raises("unable to yield", noyield, queued.awaitall, {})
	T.raises("unable to yield", noyield, queued.awaitall)
end)

T.case("awaitall outside a coroutine consumes nothing", function()
	local e = {}
	queued.emitall(e)
	T.raises("unable to yield", noyield, queued.awaitall, e)
	assert(queued.isqueued(e) == true)
	T.spawn(queued.await, e)
	assert(queued.isqueued(e) == false)
end)

T.case("argument errors inside a coroutine", function()
	local co = T.spawn(function()
		T.raises("table index is nil", queued.await, nil)
		T.raises("non-nil value expected", queued.awaitany, nil, nil)
	end)
	assert(coroutine.status(co) == "dead")
end)

T.case("stored entries are consumed in FIFO order, one per emission", function()
	local e, log = {}, {}
	queued.emitall(e, 1)
	queued.emitone(e, 2)
	queued.emitall(e, 3)
	T.spawn(function()
		for i = 1, 3 do log[i] = select(2, queued.await(e)) end
	end)
	T.same({ 1, 2, 3 }, unpack(log))
	assert(queued.isqueued(e) == false)
end)

T.case("entries are stored per value", function()
	local e, f = {}, {}
	queued.emitall(e, "e")
	queued.emitall(f, "f")
	local _, a, b = T.spawn(queued.await, f)
	T.same({ f, "f" }, a, b)
	assert(queued.isqueued(e) == true and queued.isqueued(f) == false)
	local _, c, d = T.spawn(queued.await, e)
	T.same({ e, "e" }, c, d)
end)

T.case("emit with a waiter resumes it and returns true", function()
	local e, log = {}, {}
	waiter(log, "a", queued.await, e)
	waiter(log, "b", queued.await, e)
	assert(queued.pending(e) == true)
	assert(queued.emitone(e, 1) == true)
	T.same({ "a" }, unpack(log))
	T.same({ e, 1 }, unpack(log.a, 1, log.a.n))
	assert(queued.emitall(e, 2) == true)
	T.same({ e, 2 }, unpack(log.b, 1, log.b.n))
	assert(queued.isqueued(e) == false)
	assert(queued.pending(e) == false)
end)

T.case("emitall with waiters stores nothing", function()
	local e, log = {}, {}
	waiter(log, "a", queued.await, e)
	waiter(log, "b", queued.await, e)
	assert(queued.emitall(e) == true)
	T.same({ "a", "b" }, unpack(log))
	assert(queued.isqueued(e) == false)
end)

T.case("coutil.event emissions wake queued waiters", function()
	local e, log = {}, {}
	waiter(log, "a", queued.await, e)
	assert(event.emitall(e, "x") == true)
	T.same({ e, "x" }, unpack(log.a, 1, log.a.n))
end)

T.case("queued emissions wake coutil.event waiters", function()
	local e, log = {}, {}
	waiter(log, "a", event.await, e)
	assert(queued.emitall(e, "x") == true)
	T.same({ e, "x" }, unpack(log.a, 1, log.a.n))
	assert(queued.isqueued(e) == false)
end)

T.case("coutil.event emissions are never stored", function()
	local e = {}
	assert(event.emitall(e) == false)
	assert(queued.isqueued(e) == false)
end)

T.case("awaitany consumes the first argument with a stored entry", function()
	local e, f, g = {}, {}, {}
	queued.emitall(g, "g")
	queued.emitall(f, "f1")
	queued.emitall(f, "f2")
	local co, a, b = T.spawn(queued.awaitany, e, nil, f, g)
	assert(coroutine.status(co) == "dead")
	T.same({ f, "f1" }, a, b)
	assert(queued.isqueued(f) and queued.isqueued(g))
	assert(event.pending(e) == false)
	local _, c, d = T.spawn(queued.awaitany, g, f)
	T.same({ g, "g" }, c, d)
end)

T.case("awaitany without entries awaits like event.awaitany", function()
	local e, f, log = {}, {}, {}
	waiter(log, "a", queued.awaitany, e, f)
	assert(queued.emitone(f, 1, nil) == true)
	T.same({ n = 3, f, 1, nil }, unpack(log.a, 1, log.a.n))
	assert(queued.pending(e) == false)
	assert(queued.emitall(e) == false) -- stored now
	assert(queued.isqueued(e) == true)
	T.spawn(queued.await, e)
end)

T.case("explicit resume of queued await returns the resume values", function()
	local e, log = {}, {}
	local co = waiter(log, "a", queued.await, e)
	coroutine.resume(co, nil, 2, nil)
	T.same({ n = 3, nil, 2, nil }, unpack(log.a, 1, log.a.n))
	assert(queued.pending(e) == false)
	local co2 = waiter(log, "b", queued.awaitany, e, {})
	coroutine.resume(co2)
	T.same({ n = 0 }, unpack(log.b, 1, log.b.n))
	assert(queued.pending(e) == false)
end)

T.case("awaitall consumes one entry per distinct value and awaits the rest", function()
	local e, f, g, log = {}, {}, {}, {}
	queued.emitall(e, 1)
	queued.emitall(e, 2)
	queued.emitall(f)
	waiter(log, "a", queued.awaitall, e, f, e, nil, g)
	assert(log.a == nil)
	assert(queued.isqueued(f) == false)
	assert(queued.isqueued(e) == true) -- only one of e's entries consumed
	assert(queued.pending(e) == false and queued.pending(f) == false)
	assert(queued.pending(g) == true)
	assert(queued.emitall(g) == true)
	T.same({ true }, unpack(log.a, 1, log.a.n))
	local _, x, y = T.spawn(queued.await, e)
	T.same({ e, 2 }, x, y)
end)

T.case("awaitall with all values stored returns true at once", function()
	local e, f = {}, {}
	queued.emitall(e)
	queued.emitall(f)
	local co, res = T.spawn(queued.awaitall, e, f)
	assert(coroutine.status(co) == "dead")
	assert(res == true)
	assert(queued.isqueued(e) == false and queued.isqueued(f) == false)
end)

T.case("explicit resume of queued awaitall returns the resume values", function()
	local e, f, log = {}, {}, {}
	local co = waiter(log, "a", queued.awaitall, e, f)
	coroutine.resume(co, "x", nil)
	T.same({ n = 2, "x", nil }, unpack(log.a, 1, log.a.n))
	assert(queued.pending(e) == false and queued.pending(f) == false)
end)

T.case("a resumed waiter awaiting again gets the next emission", function()
	local e, log = {}, {}
	T.spawn(function()
		log[1] = select(2, queued.await(e))
		log[2] = select(2, queued.await(e)) -- consumes the entry stored below
	end)
	assert(queued.emitall(e, "a") == true)
	assert(queued.pending(e) == true)
	assert(queued.emitall(e, "b") == true)
	T.same({ "a", "b" }, unpack(log))
	assert(queued.emitall(e, "c") == false)
	T.spawn(queued.await, e)
end)

T.case("stored entries do not keep the value alive", function()
	local weak = setmetatable({}, { __mode = "k" })
	do
		local e = {}
		weak[e] = true
		queued.emitall(e, e, "x") -- even if the entry references e
		assert(queued.isqueued(e))
	end
	for _ = 1, 4 do collectgarbage("collect") end
	assert(next(weak) == nil)
end)

T.case("a queued waiter reachable only through the event is collected", function()
	local weak = setmetatable({}, { __mode = "k" })
	do
		local e = {}
		local co = T.spawn(queued.await, e)
		weak[co], weak[e] = true, true
	end
	for _ = 1, 4 do collectgarbage("collect") end
	assert(next(weak) == nil)
end)

T.done()
