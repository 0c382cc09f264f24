-- Tests of coutil.promise (spec coop.md).

local T = require "testlib"
local event = require "coutil.event"
local promise = require "coutil.promise"

local pack, unpack = table.pack, table.unpack

local noyield = T.noyield

-- Spawns a coroutine that calls `await(...)` and then appends `name` to
-- `log` and stores the packed results in `log[name]`.
local function waiter(log, name, await, ...)
	return T.spawn(function(...)
		local res = pack(await(...))
		log[#log + 1] = name
		log[name] = res
	end, ...)
end

T.case("module has version", function()
	assert(promise.version == "1.0 alpha")
end)

T.case("create returns a callable promise and a fulfil function", function()
	local p, fulfil = promise.create()
	assert(type(fulfil) == "function")
	assert(p(true) == false)
	assert(fulfil() == true)
	assert(p(true) == true)
end)

T.case("fulfilled promise returns the results, nils included", function()
	local p, fulfil = promise.create()
	fulfil(nil, 1, nil, "x", nil)
	T.same({ n = 5, nil, 1, nil, "x", nil }, p())
	T.same({ n = 5, nil, 1, nil, "x", nil }, p()) -- every time
	local p2, fulfil2 = promise.create()
	fulfil2()
	T.same({ n = 0 }, p2())
end)

T.case("fulfilled promise works outside coroutines", function()
	local p, fulfil = promise.create()
	fulfil("v")
	local res
	noyield(function() res = pack(p()) end)
	T.same({ "v" }, unpack(res, 1, res.n))
end)

T.case("fulfil replaces results; only the first call returns true", function()
	local p, fulfil = promise.create()
	assert(fulfil(1, 2) == true)
	T.same({ 1, 2 }, p())
	assert(fulfil("a") == false)
	T.same({ "a" }, p())
	assert(fulfil() == false)
	T.same({ n = 0 }, p())
end)

T.case("awaiting an unfulfilled promise outside a coroutine raises", function()
	local p = promise.create()
	T.raises("unable to yield", noyield, p)
	T.raises("unable to yield", noyield, p, false)
end)

T.case("probe never suspends", function()
	local p, fulfil = promise.create()
	local co, a, b = T.spawn(function() return p(true), p(1) end)
	assert(coroutine.status(co) == "dead")
	assert(a == false and b == false)
	noyield(function() a = p("probe") end)
	assert(a == false)
	fulfil(nil)
	assert(p(true) == true and p({}) == true)
end)

T.case("fulfil resumes the awaiting coroutines in order with its values", function()
	local p, fulfil = promise.create()
	local log = {}
	waiter(log, "a", p)
	waiter(log, "b", p, false) -- a false probe awaits too
	assert(event.pending(p) == true)
	assert(fulfil(1, nil) == true)
	T.same({ "a", "b" }, unpack(log))
	T.same({ n = 2, 1, nil }, unpack(log.a, 1, log.a.n))
	T.same({ n = 2, 1, nil }, unpack(log.b, 1, log.b.n))
	assert(event.pending(p) == false)
end)

T.case("fulfil emits on the promise with event.emitall", function()
	local p, fulfil = promise.create()
	local log = {}
	waiter(log, "a", event.await, p)
	fulfil("x", "y")
	T.same({ p, "x", "y" }, unpack(log.a, 1, log.a.n))
end)

T.case("later fulfil calls emit nothing", function()
	local p, fulfil = promise.create()
	local log = {}
	fulfil()
	waiter(log, "a", event.await, p) -- waits for a future explicit emission
	assert(fulfil("again") == false)
	assert(log.a == nil)
	assert(event.emitall(p, "explicit") == true)
	T.same({ p, "explicit" }, unpack(log.a, 1, log.a.n))
end)

T.case("an emission on an unfulfilled promise returns its extra values", function()
	local p, fulfil = promise.create()
	local log = {}
	T.spawn(function()
		log.first = pack(p())
		log.second = pack(p()) -- still unfulfilled: awaits again
	end)
	assert(event.emitall(p, "x", nil) == true)
	T.same({ n = 2, "x", nil }, unpack(log.first, 1, log.first.n))
	assert(p(true) == false)
	assert(log.second == nil)
	assert(event.pending(p) == true)
	fulfil("done")
	T.same({ "done" }, unpack(log.second, 1, log.second.n))
end)

T.case("an explicit resume returns the resume values", function()
	local p, fulfil = promise.create()
	local log = {}
	local a = waiter(log, "a", p)
	local b = waiter(log, "b", p)
	local c = waiter(log, "c", p)
	coroutine.resume(a)
	coroutine.resume(b, p, 1) -- even the promise as first value
	coroutine.resume(c, nil, nil)
	T.same({ n = 0 }, unpack(log.a, 1, log.a.n))
	T.same({ p, 1 }, unpack(log.b, 1, log.b.n))
	T.same({ n = 2, nil, nil }, unpack(log.c, 1, log.c.n))
	assert(p(true) == false)
	assert(event.pending(p) == false)
	assert(fulfil() == true)
end)

T.case("a waiter calling fulfil again does not stop the emission", function()
	local p, fulfil = promise.create()
	local log = {}
	T.spawn(function()
		log.a = pack(p())
		log.again = fulfil("second")
	end)
	waiter(log, "b", p)
	fulfil("first")
	assert(log.again == false)
	T.same({ "first" }, unpack(log.a, 1, log.a.n))
	T.same({ "first" }, unpack(log.b, 1, log.b.n))
	T.same({ "second" }, p())
end)

T.case("onlypending returns the unfulfilled ones in order", function()
	local a, fa = promise.create()
	local b = promise.create()
	local c = promise.create()
	local d = promise.create()
	fa()
	T.same({ b, c }, promise.onlypending(a, b, c))
	T.same({ b }, promise.onlypending(b, nil, c, d))
	T.same({ n = 0 }, promise.onlypending(a))
	T.same({ n = 0 }, promise.onlypending())
	T.same({ n = 0 }, promise.onlypending(nil, b))
end)

T.case("pickready returns the first fulfilled one or nothing", function()
	local a = promise.create()
	local b, fb = promise.create()
	local c, fc = promise.create()
	T.same({ n = 0 }, promise.pickready(a, b, c))
	fc()
	fb()
	T.same({ b }, promise.pickready(a, b, c))
	T.same({ c }, promise.pickready(c, b))
	T.same({ n = 0 }, promise.pickready(a, nil, b))
	T.same({ n = 0 }, promise.pickready())
end)

T.case("awaitall returns true at once when all are fulfilled", function()
	local a, fa = promise.create()
	local b, fb = promise.create()
	fa()
	fb()
	local co, res = T.spawn(promise.awaitall, a, b)
	assert(coroutine.status(co) == "dead")
	assert(res == true)
end)

T.case("awaitall awaits every unfulfilled promise", function()
	local a, fa = promise.create()
	local b, fb = promise.create()
	local c, fc = promise.create()
	local d = promise.create()
	local log = {}
	fb()
	waiter(log, "w", promise.awaitall, a, b, c, nil, d)
	fc()
	assert(log.w == nil)
	fa()
	T.same({ true }, unpack(log.w, 1, log.w.n))
	assert(event.pending(d) == false) -- ignored after nil
end)

T.case("awaitall explicit resume returns the resume values", function()
	local a = promise.create()
	local log = {}
	local co = waiter(log, "w", promise.awaitall, a)
	coroutine.resume(co, nil, "x")
	T.same({ n = 2, nil, "x" }, unpack(log.w, 1, log.w.n))
	assert(event.pending(a) == false)
end)

T.case("awaitall outside a coroutine raises", function()
	local a = promise.create()
	T.raises("unable to yield", noyield, promise.awaitall, a)
end)

T.case("awaitany returns a fulfilled promise first, at once", function()
	local a = promise.create()
	local b, fb = promise.create()
	local c, fc = promise.create()
	fc("c")
	fb("b", nil)
	T.same({ n = 3, b, "b", nil }, promise.awaitany(a, b, c))
	T.same({ n = 2, "b", nil }, promise.awaitany(a, b, c)())
	T.same({ c, "c" }, promise.awaitany(c, b))
end)

T.case("awaitany awaits and returns the fulfilled promise and its results", function()
	local a = promise.create()
	local b, fb = promise.create()
	local log = {}
	waiter(log, "w", promise.awaitany, a, b)
	assert(event.pending(a) and event.pending(b))
	fb(1, nil, 3)
	T.same({ n = 4, b, 1, nil, 3 }, unpack(log.w, 1, log.w.n))
	assert(event.pending(a) == false)
end)

T.case("awaitany result can be called", function()
	local a, fa = promise.create()
	local b = promise.create()
	local log = {}
	T.spawn(function() log.res = pack(promise.awaitany(a, b)()) end)
	fa("x")
	T.same({ "x" }, unpack(log.res, 1, log.res.n))
end)

T.case("awaitany ignores promises after the first nil", function()
	local a, fa = promise.create()
	local b, fb = promise.create()
	fb()
	local log = {}
	waiter(log, "w", promise.awaitany, a, nil, b)
	assert(log.w == nil and event.pending(b) == false)
	fa()
	T.same({ a }, unpack(log.w, 1, log.w.n))
end)

T.case("awaitany keeps waiting after a stray emission", function()
	local a, fa = promise.create()
	local b = promise.create()
	local log = {}
	waiter(log, "w", promise.awaitany, a, b)
	event.emitall(b, "stray")
	assert(log.w == nil)
	fa("ok")
	T.same({ a, "ok" }, unpack(log.w, 1, log.w.n))
end)

T.case("awaitany explicit resume returns the resume values", function()
	local a = promise.create()
	local b = promise.create()
	local log = {}
	local co = waiter(log, "w", promise.awaitany, a, b)
	coroutine.resume(co, a, nil)
	T.same({ n = 2, a, nil }, unpack(log.w, 1, log.w.n))
	assert(event.pending(a) == false and event.pending(b) == false)
end)

T.case("awaitany outside a coroutine raises when none is fulfilled", function()
	local a = promise.create()
	T.raises("unable to yield", noyield, promise.awaitany, a)
end)

T.case("an awaiter of an unreachable promise is collected with it", function()
	local weak = setmetatable({}, { __mode = "k" })
	do
		local p, fulfil = promise.create()
		weak[p], weak[fulfil] = true, true
		weak[T.spawn(p)] = true
		weak[T.spawn(promise.awaitany, p)] = true
		weak[T.spawn(promise.awaitall, p)] = true
	end
	for _ = 1, 4 do collectgarbage("collect") end
	assert(next(weak) == nil)
end)

T.done()
