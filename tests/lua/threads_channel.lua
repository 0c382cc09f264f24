-- spec/threads.md §2 and §3: transferable values, coutil.channel and
-- system.awaitch within one state (across states: threads_states.lua).
local T = require "testlib"
local system = require "coutil.system"
local channel = require "coutil.channel"

local unyieldable = T.unyieldable

local function names()
	local list = {}
	for name in pairs(channel.getnames()) do list[#list + 1] = name end
	table.sort(list)
	return table.concat(list, ",")
end

T.case("create, getname and the object", function()
	for _, name in ipairs({ "", "\0", "a\0b", string.rep("\255x", 2048), "chan" }) do
		local ch = channel.create(name)
		T.same({ name }, channel.getname(ch))
		T.same({ name }, ch:getname())
		assert(tostring(ch):find("^coutil:channel: "), tostring(ch))
		ch:close()
	end
	T.raises("bad argument #1 to", channel.create)
	T.raises("(string expected, got no value)", channel.create)
	T.raises("(string expected, got table)", channel.create, {})
	T.raises("(coutil:channel expected, got table)", channel.getname, {})
end)

T.case("getnames: new table or update of the given one", function()
	T.same({ "" }, names())
	local a, b, b2 = channel.create("a"), channel.create("b"), channel.create("b")
	T.same({ "a,b" }, names())
	local t = { a = 1, c = 2, [1] = "x", b = false }
	T.same({ t }, channel.getnames(t))
	T.same({ true, true, nil, "x" }, t.a, t.b, t.c, t[1])
	b:close()
	T.same({ "a,b" }, names())
	b2:close()
	T.same({ "a" }, names())
	a:close()
	T.same({ "" }, names())
	T.raises("(table expected, got number)", channel.getnames, 1)
	T.same({ "" }, names()) -- nil is the no-argument form
end)

T.case("close: true, then false; closed objects raise", function()
	local ch = channel.create("c")
	T.same({ true }, channel.close(ch))
	T.same({ false }, ch:close())
	T.raises("closed channel", channel.getname, ch)
	T.raises("closed channel", channel.sync, ch)
	local msg
	T.spawn(function() msg = select(2, pcall(system.awaitch, ch)) end)
	assert(msg:find("closed channel", 1, true), msg)
	T.same({ "" }, names())
end)

T.case("collection and to-be-closed variables close channels", function()
	do
		local ch <close> = channel.create("tbc")
		T.same({ "tbc" }, names())
	end
	T.same({ "" }, names())
	channel.create("garbage")
	collectgarbage()
	collectgarbage()
	T.same({ "" }, names())
end)

T.case("sync without a peer returns false, 'empty'", function()
	local ch = channel.create("s")
	T.same({ false, "empty" }, ch:sync())
	T.same({ false, "empty" }, channel.sync(ch, "in", 1, 2))
	T.same({ false, "empty" }, channel.sync(ch, "any"))
end)

T.case("sync exchanges with a waiting coroutine, resumed later by run", function()
	local a, b = channel.create("x"), channel.create("x")
	local got
	T.spawn(function() got = table.pack(system.awaitch(a, "in", "from a", 1)) end)
	T.same({ true, "from a", 1 }, b:sync("out", "from b", nil, 2.5))
	assert(got == nil, "not resumed yet")
	T.same({ false }, system.run())
	T.same({ n = 4, true, "from b", nil, 2.5 }, table.unpack(got, 1, got.n))
	T.same({ false, "empty" }, b:sync("out"))
end)

T.case("awaitch matches an already waiting peer without yielding", function()
	local a, b = channel.create("y"), channel.create("y")
	local first, second, yielded
	T.spawn(function() first = table.pack(system.awaitch(a, nil, "A")) end)
	T.spawn(function()
		second = table.pack(system.awaitch(b, "any", "B1", "B2"))
		yielded = false
	end)
	T.same({ false }, yielded) -- returned within the spawn, before run
	T.same({ n = 2, true, "A" }, table.unpack(second, 1, second.n))
	system.run()
	T.same({ n = 3, true, "B1", "B2" }, table.unpack(first, 1, first.n))
end)

T.case("values keep their type and count, any number of them", function()
	local a, b = channel.create("v"), channel.create("v")
	local many = {}
	for i = 1, 250 do many[i] = (i % 3 == 0) and i or (i % 3 == 1 and i + 0.5 or tostring(i)) end
	many[100] = nil
	local big = string.rep("\0\1\2\255", 50000)
	local got
	T.spawn(function() got = table.pack(system.awaitch(a, "in")) end)
	T.same({ true }, b:sync("out", 1, 1.0, -0.0, math.maxinteger, math.mininteger, 1 / 0, false, big, nil))
	system.run()
	T.same({ n = 10, true, 1, 1.0, -0.0, math.maxinteger, math.mininteger, 1 / 0, false, big, nil },
		table.unpack(got, 1, got.n))
	assert(math.type(got[2]) == "integer" and math.type(got[3]) == "float")
	assert(1 / got[4] < 0, "negative zero kept")
	T.spawn(function() got = table.pack(system.awaitch(a, "in", table.unpack(many, 1, 250))) end)
	local res = table.pack(b:sync("out"))
	T.same({ n = 251, true, table.unpack(many, 1, 250) }, table.unpack(res, 1, res.n))
	system.run()
	T.same({ n = 1, true }, table.unpack(got, 1, got.n))
	local nan
	T.spawn(function() nan = select(2, system.awaitch(a)) end)
	b:sync(nil, 0 / 0)
	system.run()
	assert(nan ~= nan)
end)

T.case("values that cannot be transferred raise with their position", function()
	local ch = channel.create("t")
	T.raises("unable to transfer argument #3 (got table with function)", channel.sync, ch, nil, { print })
	T.raises("unable to transfer argument #5 (got function)", channel.sync, ch, "in", 1, 2, print)
	T.raises("unable to transfer argument #4 (got thread)", ch.sync, ch, "out", 1, coroutine.running())
	T.raises("unable to transfer argument #3 (got userdata)", ch.sync, ch, "out", io.stdout)
	local msgs = {}
	T.spawn(function()
		msgs[1] = select(2, pcall(system.awaitch, ch, "in", 1, ch))
		msgs[2] = select(2, pcall(system.awaitch, ch, "in", nil, { {}, { print } }))
	end)
	T.same({ "unable to transfer argument #4 (got userdata)", "unable to transfer argument #4 (got table with function)" },
		msgs[1], msgs[2])
	T.same({ "t" }, names()) -- the channel exists, nothing waits
	T.same({ false, "empty" }, ch:sync())
end)

T.case("bad endpoints raise without a function name", function()
	local ch = channel.create("e")
	T.same({ "bad argument #2 (invalid option 'inout')" },
		select(2, pcall(channel.sync, ch, "inout")))
	local msg
	T.spawn(function() msg = select(2, pcall(system.awaitch, ch, "IN")) end)
	T.same({ "bad argument #2 (invalid option 'IN')" }, msg)
	T.raises("bad argument #2 (string expected, got table)", channel.sync, ch, {})
end)

T.case("awaitch outside a coroutine raises unable to yield", function()
	local ch = channel.create("u")
	local ok, msg = unyieldable(system.awaitch, ch, "in")
	T.same({ false }, ok)
	assert(msg:find("unable to yield", 1, true), msg)
	T.same({ false, "empty" }, ch:sync())
end)

T.case("matching rules: FIFO, in/out, in/any, out/any, any/any, not in/in", function()
	local log = {}
	local function waiter(name, ep, id)
		local ch = channel.create(name)
		T.spawn(function()
			local _, peer = system.awaitch(ch, ep, id)
			log[#log + 1] = id .. "<" .. tostring(peer)
		end)
		return ch
	end
	local w1, w2 = waiter("m", "in", "w1"), waiter("m", "in", "w2")
	local ch = channel.create("m")
	T.same({ false, "empty" }, ch:sync("in", "x")) -- in/in
	T.same({ true, "w1" }, ch:sync("out", "o1")) -- oldest first
	T.same({ true, "w2" }, ch:sync("any", "a1"))
	T.same({ false, "empty" }, ch:sync("any"))
	local w3 = waiter("m", "out", "w3")
	T.same({ false, "empty" }, ch:sync("out"))
	T.same({ true, "w3" }, ch:sync("in", "i1"))
	local w4 = waiter("m", "any", "w4")
	T.same({ true, "w4" }, ch:sync("in", "i2"))
	local w5 = waiter("m", "any", "w5")
	T.same({ true, "w5" }, ch:sync("out", "o2"))
	local w6 = waiter("m", nil, "w6")
	T.same({ true, "w6" }, ch:sync(nil, "n1"))
	system.run()
	T.same({ "w1<o1,w2<a1,w3<i1,w4<i2,w5<o2,w6<n1" }, table.concat(log, ","))
	local _ = { w1, w2, w3, w4, w5, w6 }
end)

T.case("two awaiting coroutines of one state match each other", function()
	local a, b = channel.create("p"), channel.create("p")
	local ra, rb
	T.spawn(function() ra = table.pack(system.awaitch(a, "out", 1)) end)
	T.spawn(function() rb = table.pack(system.awaitch(b, "in", 2)) end)
	T.same({ n = 2, true, 1 }, table.unpack(rb, 1, rb.n))
	system.run()
	T.same({ n = 2, true, 2 }, table.unpack(ra, 1, ra.n))
end)

T.case("a pending awaitch makes its object in use", function()
	local a, a2 = channel.create("busy"), channel.create("busy")
	local co = T.spawn(function() return system.awaitch(a, "in") end)
	T.raises("in use", channel.close, a)
	local msg
	T.spawn(function() msg = select(2, pcall(system.awaitch, a, "in")) end)
	T.same({ "in use" }, msg)
	-- distinct objects of one name wait concurrently
	local other
	T.spawn(function() other = table.pack(system.awaitch(a2, "in", "second")) end)
	local b = channel.create("busy")
	T.same({ true }, b:sync("out", "one"))
	T.same({ true, "second" }, b:sync("out", "two"))
	system.run()
	T.same({ "dead" }, coroutine.status(co))
	T.same({ n = 2, true, "two" }, table.unpack(other, 1, other.n))
	T.same({ true }, a:close())
end)

-- behaviour-rules R6: sync has no "in use" check, unlike awaitch and close.
T.case("sync on the very object a coroutine waits on wakes that coroutine", function()
	local ch = channel.create("self-wake")
	local got
	T.spawn(function() got = table.pack(system.awaitch(ch, "out", "reply", 2)) end)
	T.same({ true, "reply", 2 }, ch:sync("in", "wake", nil, 3))
	assert(got == nil, "the waiter is only resumed by the loop")
	-- until then the object stays in use for close and awaitch
	T.raises("in use", channel.close, ch)
	local msg
	T.spawn(function() msg = select(2, pcall(system.awaitch, ch, "in")) end)
	T.same({ "in use" }, msg)
	T.same({ false, "empty" }, ch:sync("in")) -- the waiter was taken once
	T.same({ false }, system.run())
	T.same({ n = 4, true, "wake", nil, 3 }, table.unpack(got, 1, got.n))
	-- resumed: the object is free again, and the same works once more
	T.spawn(function() got = table.pack(system.awaitch(ch, "any")) end)
	T.same({ true }, channel.sync(ch, "any", "again"))
	system.run()
	T.same({ n = 2, true, "again" }, table.unpack(got, 1, got.n))
	T.same({ true }, ch:close())
end)

T.case("explicit resume removes the waiter", function()
	local a, b = channel.create("r"), channel.create("r")
	local res
	local co = T.spawn(function()
		res = table.pack(system.awaitch(a, "in", "lost"))
		res.again = table.pack(system.awaitch(a, "in", "kept"))
	end)
	coroutine.resume(co, "by", "hand")
	T.same({ n = 2, "by", "hand" }, table.unpack(res, 1, res.n))
	T.same({ true, "kept" }, b:sync("out", "new"))
	system.run()
	T.same({ n = 2, true, "new" }, table.unpack(res.again, 1, res.again.n))
	T.same({ false, "empty" }, b:sync())
	T.same({ true }, a:close())
end)

T.case("explicit resume after a match: the peer succeeded, values discarded", function()
	local a, b = channel.create("d"), channel.create("d")
	local res
	local co = T.spawn(function()
		res = table.pack(system.awaitch(a, "in", "mine"))
		res.again = table.pack(system.awaitch(a, "in", "again"))
		res.third = table.pack(system.awaitch(a, "in"))
	end)
	T.same({ true, "mine" }, b:sync("out", "discarded"))
	coroutine.resume(co, "hand")
	T.same({ n = 1, "hand" }, table.unpack(res, 1, res.n))
	-- the new awaitch works normally
	T.same({ true, "again" }, b:sync("out", "fresh"))
	-- armed in the closing phase, delivered in the next iteration
	while not res.again do T.same({ true }, system.run("step")) end
	T.same({ n = 2, true, "fresh" }, table.unpack(res.again, 1, res.again.n))
	T.same({ true }, b:sync("out", "last"))
	system.run()
	T.same({ n = 2, true, "last" }, table.unpack(res.third, 1, res.third.n))
end)

T.case("cancel and await again in a loop", function()
	local a, b = channel.create("loop"), channel.create("loop")
	local count = 0
	local co = T.spawn(function()
		while true do
			local ok, v = system.awaitch(a, "in")
			if ok == true then
				if v == "stop" then break end
				count = count + 1
			end
		end
	end)
	for i = 1, 200 do
		if i % 3 == 0 then
			T.same({ true }, b:sync("out", i))
		end
		coroutine.resume(co, "cancel")
		if i % 5 == 0 then system.run("ready") end
	end
	T.same({ true }, b:sync("out", "stop"))
	system.run()
	T.same({ "dead" }, coroutine.status(co))
	T.same({ 0 }, count) -- every matched value was discarded by a cancel
end)

T.case("a coroutine waiting forever is collectable with its channel", function()
	local weak = setmetatable({}, { __mode = "v" })
	do
		local ch = channel.create("forever")
		local co = coroutine.create(function() system.awaitch(ch, "in") end)
		coroutine.resume(co)
		coroutine.close(co)
		weak[1] = co
	end
	collectgarbage()
	collectgarbage()
	T.same({ false }, system.run())
	T.same({ "" }, names())
end)

T.case("a coroutine closed while it waits leaves the channel at once", function()
	local a, b = channel.create("closed-waiter"), channel.create("closed-waiter")
	local closed = {}
	local co = coroutine.create(function()
		local guard <close> = setmetatable({}, { __close = function() closed[#closed + 1] = "mine" end })
		system.awaitch(a, "in", "never")
	end)
	coroutine.resume(co)
	T.raises("in use", channel.close, a)
	T.same({ true }, coroutine.close(co))
	T.same({ "mine" }, table.unpack(closed))
	-- no peer can match the closed coroutine; its object is usable again
	T.same({ false, "empty" }, b:sync("out", "lost?"))
	local got
	T.spawn(function() got = table.pack(system.awaitch(a, "in", "back")) end)
	T.same({ true, "back" }, b:sync("out", "found"))
	system.run()
	T.same({ n = 2, true, "found" }, table.unpack(got, 1, got.n))
	T.same({ true }, a:close())
	T.same({ false }, system.run())
	-- the same inside a pool task, whose state coroutine waits
	local threads = require "coutil.threads"
	local pool = threads.create(1)
	assert(pool:dostring([[
		local system = require "coutil.system"
		local channel = require "coutil.channel"
		local coroutine = require "coroutine"
		local ch = channel.create("task-waiter")
		local co = coroutine.create(function() system.awaitch(ch, "in") end)
		coroutine.resume(co)
		coroutine.close(co)
		local report = channel.create("task-report")
		coroutine.wrap(function()
			system.awaitch(report, "out", ch:close(), channel.create("task-waiter"):sync("out"))
		end)()
		system.run()
	]]))
	local report = channel.create("task-report")
	local res
	T.spawn(function() res = table.pack(system.awaitch(report, "in")) end)
	system.run()
	T.same({ n = 4, true, true, false, "empty" }, table.unpack(res, 1, res.n))
	pool:close()
end)

T.done()
