-- seed-todo.md E4: resizable memories and state coroutines that are not
-- running move between states on every transfer path (channels, task
-- yields, dostring/dofile arguments, system.resume arguments, yields and
-- returns), all or nothing; tables are copied deeply.
local T = require "testlib"
local system = require "coutil.system"
local channel = require "coutil.channel"
local stateco = require "coutil.coroutine"
local threads = require "coutil.threads"
local memory = require "coutil.memory"

-- A resizable memory holding `s`.
local function mem(s)
	local m = memory.create()
	m:resize(#s, s)
	return m
end

-- Resumes `co` with `...` from a new coroutine and runs the loop.
local function resume(co, ...)
	local res
	T.spawn(function(...) res = table.pack(system.resume(co, ...)) end, ...)
	system.run()
	return table.unpack(res, 1, res.n)
end

-- A peer waiting on channel `name` ("in"); returns a function giving what
-- it received (after system.run).
local function receiver(name)
	local got
	T.spawn(function() got = table.pack(system.awaitch(channel.create(name), "in")) end)
	return function() return table.unpack(got, 1, got.n) end
end

T.case("a memory moves through sync and awaitch; the source is left empty", function()
	local m = mem("contents")
	local got = receiver("moves.mem")
	T.same({ true }, channel.create("moves.mem"):sync("out", m))
	system.run()
	local ok, r = got()
	T.same({ true, "resizable", "contents" }, ok, memory.type(r), r:tostring())
	assert(r ~= m)
	T.same({ "resizable", 0, "" }, memory.type(m), #m, m:tostring())
	m:resize(3, "x") -- still resizable
	T.same({ "xxx" }, m:tostring())
	-- the waiting side moves when it is matched
	local sent = mem("waiting")
	local res
	T.spawn(function() res = table.pack(system.awaitch(channel.create("moves.w"), "out", sent)) end)
	T.same({ 0 }, #sent) -- taken by the call, held by the waiter
	local ok2, r2 = channel.create("moves.w"):sync("in")
	T.same({ true, "waiting", 0 }, ok2, r2:tostring(), #sent)
	system.run()
	T.same({ n = 1, true }, table.unpack(res, 1, res.n))
end)

T.case("the same memory given twice arrives as one object", function()
	local m = mem("twice")
	local got = receiver("moves.twice")
	channel.create("moves.twice"):sync("out", m, 1, m)
	system.run()
	local ok, a, one, b = got()
	T.same({ true, 1, "twice" }, ok, one, a:tostring())
	assert(rawequal(a, b))
	T.same({ 0 }, #m)
end)

T.case("fixed and other memories, and other userdata, do not move", function()
	local ch = channel.create("moves.none")
	local fixed = memory.create("fixed")
	T.raises("unable to transfer argument #3 (got userdata)", ch.sync, ch, nil, fixed)
	local other = mem("closed")
	getmetatable(other).__close(other)
	T.same({ "other" }, memory.type(other))
	T.raises("unable to transfer argument #4 (got userdata)", ch.sync, ch, nil, 1, other)
	T.raises("unable to transfer argument #3 (got userdata)", ch.sync, ch, nil, ch)
	T.same({ "fixed" }, fixed:tostring())
end)

T.case("a failed transfer moves nothing", function()
	local ch = channel.create("moves.atomic")
	local m, co = mem("kept"), stateco.load("return ...")
	T.raises("unable to transfer argument #5 (got function)", ch.sync, ch, nil, m, co, print)
	T.raises("unable to transfer argument #5 (got table with thread)", ch.sync, ch, nil, co, m,
		{ coroutine.running() })
	T.same({ "kept", "suspended" }, m:tostring(), co:status())
	-- no peer: sync gives everything back
	T.same({ false, "empty" }, ch:sync(nil, m, co, m))
	T.same({ "kept", "suspended" }, m:tostring(), co:status())
	-- a load error gives dostring's values back
	local pool = threads.create(0)
	local ok, msg = pool:dostring("x=", "=bad", "t", m, co)
	T.same({ false, "bad:1: unexpected symbol near <eof>" }, ok, msg)
	ok, msg = pool:dofile("/no/such/file.lua", "t", m, co)
	T.same({ false }, ok)
	T.same({ "kept", "suspended" }, m:tostring(), co:status())
	pool:close()
	-- a transfer error of system.resume
	local other = stateco.load("return ...")
	T.same({ false, "unable to transfer argument #4 (got function)" }, resume(other, m, co, print))
	T.same({ "kept", "suspended", "suspended" }, m:tostring(), co:status(), other:status())
	T.same({ true, "kept" }, (function(ok, r) return ok, r:tostring() end)(resume(co, m)))
end)

T.case("an awaitch that stops waiting unmatched gives its objects back", function()
	local m, co = mem("back"), stateco.load("return 'co', ...")
	local waiter = T.spawn(function() return system.awaitch(channel.create("moves.cancel"), "out", m, co) end)
	T.same({ 0, "dead" }, #m, co:status())
	coroutine.resume(waiter, "cancelled")
	T.same({ "back", "suspended" }, m:tostring(), co:status())
	-- closed while waiting
	waiter = T.spawn(function() return system.awaitch(channel.create("moves.cancel"), "out", m, co) end)
	T.same({ 0, "dead" }, #m, co:status())
	coroutine.close(waiter)
	T.same({ "back", "suspended" }, m:tostring(), co:status())
	-- a source changed meanwhile keeps what it holds; the moved bytes go
	waiter = T.spawn(function() return system.awaitch(channel.create("moves.cancel"), "out", m) end)
	m:resize(2, "!")
	coroutine.resume(waiter)
	T.same({ "!!" }, m:tostring())
	-- matched, then resumed explicitly before the loop delivered: moved
	waiter = T.spawn(function() return system.awaitch(channel.create("moves.cancel"), "out", m) end)
	local ok, r = channel.create("moves.cancel"):sync("in")
	coroutine.resume(waiter)
	T.same({ true, "!!", 0 }, ok, r:tostring(), #m)
	system.run()
	T.same({ true, "co" }, resume(co))
end)

T.case("state coroutines move; the source behaves as closed", function()
	local co = stateco.load("local c = require('coroutine') local n = c.yield('first', ...) return 'second', n")
	T.same({ true, "first", 1 }, resume(co, 1))
	local got = receiver("moves.co")
	T.same({ true }, channel.create("moves.co"):sync("out", co))
	system.run()
	local ok, moved = got()
	T.same({ true, "suspended" }, ok, moved:status())
	assert(moved ~= co)
	T.same({ "dead", true, "dead" }, co:status(), co:close(), co:status())
	T.same({ false, "cannot resume dead coroutine" }, resume(co))
	T.same({ true, "second", 2 }, resume(moved, 2)) -- kept its stack
	-- dead ones move too, with their error
	local failed = stateco.load("require('_G').error('Oops!', 0)")
	T.same({ false, "Oops!" }, resume(failed))
	got = receiver("moves.co")
	channel.create("moves.co"):sync("out", failed)
	system.run()
	ok, moved = got()
	T.same({ "dead", "dead" }, moved:status(), failed:status())
	T.same({ true }, failed:close())
	T.same({ false, "Oops!" }, moved:close())
end)

T.case("running state coroutines do not move", function()
	local co = stateco.load("return (require('coroutine').yield())")
	local ch = channel.create("moves.running")
	T.same({ true }, resume(co))
	-- the one being resumed counts as running
	T.same({ false, "unable to transfer argument #3 (running coroutine)" }, resume(co, 1, co))
	local waiting
	T.spawn(function() waiting = table.pack(system.resume(co, "x")) end)
	T.same({ "running" }, co:status())
	T.raises("unable to transfer argument #4 (running coroutine)", ch.sync, ch, nil, 1, co)
	local other = stateco.load("return ...")
	T.same({ false, "unable to transfer argument #2 (running coroutine)" },
		(function() local r T.spawn(function() r = table.pack(system.resume(other, co)) end) return table.unpack(r, 1, r.n) end)())
	system.run()
	T.same({ n = 2, true, "x" }, table.unpack(waiting, 1, waiting.n))
	T.same({ true }, resume(other))
end)

T.case("through system.resume: arguments, yields and returns", function()
	local inner = stateco.load("return 'inner', ...")
	local outer = stateco.load([[
		local coroutine = require "coroutine"
		local system = require "coutil.system"
		local m, co, t = ...
		local res
		coroutine.wrap(function() res = { system.resume(co, m:tostring(), t.k[1]) } end)()
		system.run()
		local memory = require "memory"
		local made = memory.create()
		made:resize(3, "abc")
		local back = coroutine.yield(res[1], res[2], res[3], res[4], made, m, co, { made = true })
		return back:tostring(), #m, made:tostring()
	]])
	local m = mem("arg")
	local ok, r1, r2, r3, r4, made, m2, co2, t = resume(outer, m, inner, { k = { "deep" } })
	T.same({ true, true, "inner", "arg", "deep" }, ok, r1, r2, r3, r4)
	T.same({ "abc", "arg", "dead", true }, made:tostring(), m2:tostring(), co2:status(), t.made)
	T.same({ 0, "dead" }, #m, inner:status())
	T.same({ true, "abc", 0, "" }, resume(outer, made))
	T.same({ 0 }, #made)
end)

T.case("through tasks: dostring arguments and channel yields", function()
	local pool = threads.create(1)
	local m, co = mem("to task"), stateco.load("return 'ran in', ...")
	assert(pool:dostring([[
		local coroutine = require "coroutine"
		local system = require "coutil.system"
		local m, co, t = ...
		local res
		coroutine.wrap(function() res = { system.resume(co, "task") } end)()
		system.run()
		local memory = require "memory"
		local out = memory.create()
		out:resize(#m + 5, m)
		out:set(#m + 1, 33, 33, 33, 33, 33)
		coroutine.yield("moves.task", "out", out, res[2], res[3], t[1][1], out)
	]], "=task", "t", m, co, { { "nested" } }))
	T.same({ 0, "dead" }, #m, co:status())
	local got = receiver("moves.task")
	system.run()
	local ok, out, a, b, c, again = got()
	T.same({ true, "to task!!!!!", "ran in", "task", "nested" }, ok, out:tostring(), a, b, c)
	assert(rawequal(out, again))
	T.same({ "resizable" }, memory.type(out))
	-- one object given twice to a task waiting in a yield
	local twice = mem("twice")
	assert(pool:dostring([[
		local coroutine = require "coroutine"
		local _, a, b = coroutine.yield("moves.twice.task", "in")
		coroutine.yield("moves.twice.task", "out", a == b, a:tostring())
	]]))
	local res
	T.spawn(function()
		local ch = channel.create("moves.twice.task")
		assert(system.awaitch(ch, "out", twice, twice))
		res = table.pack(system.awaitch(ch, "in"))
	end)
	system.run()
	T.same({ n = 3, true, true, "twice" }, table.unpack(res, 1, res.n))
	T.waitfor(function() return pool:count("n") == 0 end)
	pool:close()
end)

T.case("tables are copied deeply", function()
	local shared = { "shared" }
	local t = { 1, 2.0, "three", [4.5] = true, [false] = "no", k = { 1, { 2, { 3 } } },
		a = shared, b = shared, [shared] = "as key", [math.maxinteger] = math.mininteger }
	setmetatable(t, { __index = function() return "meta" end })
	local got = receiver("moves.tables")
	channel.create("moves.tables"):sync("out", t, t, {})
	system.run()
	local ok, c, again, empty = got()
	T.same({ true }, ok)
	assert(c ~= t and rawequal(c, again) and next(empty) == nil)
	T.same({ n = 1, nil }, getmetatable(c))
	T.same({ 1, 2.0, "three", true, "no", math.mininteger }, c[1], c[2], c[3], c[4.5], c[false], c[math.maxinteger])
	T.same({ "integer", "float" }, math.type(c[1]), math.type(c[2]))
	T.same({ 3 }, c.k[2][2][1])
	assert(c.a ~= shared and rawequal(c.a, c.b))
	T.same({ "as key" }, c[c.a])
	local n = 0
	for _ in pairs(c) do n = n + 1 end
	T.same({ 10 }, n)
end)

T.case("tables that cannot be copied", function()
	local ch = channel.create("moves.badtables")
	T.raises("unable to transfer argument #3 (got table with function)", ch.sync, ch, nil, { f = print })
	T.raises("unable to transfer argument #4 (got table with function)", ch.sync, ch, nil, 1, { [print] = 1 })
	T.raises("unable to transfer argument #3 (got table with userdata)", ch.sync, ch, nil, { { io.stdout } })
	T.raises("unable to transfer argument #3 (got table with userdata)", ch.sync, ch, nil, { mem("x") })
	T.raises("unable to transfer argument #3 (got table with thread)", ch.sync, ch, nil, { coroutine.running() })
	local cycle = { {} }
	cycle[1][1] = cycle
	T.raises("unable to transfer argument #3 (got table with cycle)", ch.sync, ch, nil, cycle)
	local self = {}
	self.self = self
	T.raises("unable to transfer argument #3 (got table with cycle)", ch.sync, ch, nil, self)
	local function nest(depth)
		local t = {}
		for _ = 2, depth do t = { t } end
		return t
	end
	T.same({ false, "empty" }, ch:sync(nil, nest(100)))
	T.raises("unable to transfer argument #3 (got table too deep)", ch.sync, ch, nil, nest(101))
	local co = stateco.load("return { require }")
	T.same({ false, "unable to transfer return value #1 (got table with function)" }, resume(co))
	co = stateco.load("require('_G').error({ code = 42, { 'nested' } })")
	local ok, err = resume(co)
	T.same({ false, 42, "nested" }, ok, err.code, err[1][1])
	ok, err = co:close()
	T.same({ false, 42 }, ok, err.code)
end)

T.done()
