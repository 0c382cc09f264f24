-- coutil.await.stats and waiting (issue 15): what every coroutine waits
-- for, open objects by class, loop iterations, pending deadlines.
local T = require "testlib"
local system = require "coutil.system"
local memory = require "coutil.memory"
local channel = require "coutil.channel"
local await = require "coutil.await"

local function waiting() return await.stats().waiting end

T.case("every kind is reported, zero when nobody waits", function()
	local w = waiting()
	for _, kind in ipairs({ "timer", "idle", "read", "write", "connect", "accept", "process",
		"signal", "channel", "file", "dns", "coroutine", "fd", "other" }) do
		assert(w[kind] == 0, kind)
	end
	assert(math.type(await.stats().iterations) == "integer")
	assert(await.stats().deadlines == 0)
	assert(await.waiting()() == nil)
end)

T.case("waits are counted when armed and uncounted when delivered or cancelled", function()
	local timer = T.spawn(function() system.suspend(5) end)
	T.spawn(function() system.suspend() end)
	T.spawn(function() system.awaitsig("userdef2") end)
	local ch = channel.create("await_stats")
	local chco = T.spawn(function() system.awaitch(ch, "in") end)
	local t = { execfile = "sleep", arguments = { "5" } }
	T.spawn(function() system.execute(t) end)
	local w = waiting()
	T.same({ 1, 1, 1, 1, 1 }, w.timer, w.idle, w.signal, w.channel, w.process)
	local seen = {}
	for co, kind in await.waiting() do
		assert(type(co) == "thread")
		seen[kind] = (seen[kind] or 0) + 1
	end
	T.same({ 1, 1, 1, 1, 1 }, seen.timer, seen.idle, seen.signal, seen.channel, seen.process)
	coroutine.resume(timer) -- explicit resume: no longer waiting
	assert(waiting().timer == 0)
	system.run("step") -- the idle wait is delivered
	assert(waiting().idle == 0)
	assert(system.emitsig(t.pid, "TERMINATE"))
	assert(system.emitsig(system.procinfo("#"), "userdef2"))
	coroutine.resume(chco)
	ch:close()
	T.async(function() system.suspend(0.05) end)
	w = waiting()
	T.same({ 0, 0, 0 }, w.signal, w.process, w.channel)
end)

T.case("sockets: accept, connect, read and write; files and dns", function()
	local l = assert(system.socket("passive", "ipv4"))
	assert(l:bind(T.loopback.ipv4()))
	assert(l:listen(4))
	local s
	T.spawn(function() s = l:accept() end)
	assert(waiting().accept == 1)
	local c = assert(system.socket("stream", "ipv4"))
	T.spawn(function() assert(c:connect(l:getaddress())) end)
	assert(waiting().connect == 1)
	system.run()
	T.spawn(function() s:read(memory.create(4)) end)
	assert(waiting().read == 1)
	T.spawn(function() system.findaddr("localhost") end)
	T.spawn(function() system.fileinfo(".", "M") end)
	local w = waiting()
	T.same({ 1, 1, 0, 0 }, w.dns, w.file, w.accept, w.connect)
	T.spawn(function() assert(c:write("x")) end)
	assert(waiting().write == 1)
	system.run()
	w = waiting()
	T.same({ 0, 0, 0, 0 }, w.read, w.write, w.dns, w.file)
	c:close()
	s:close()
	l:close()
end)

T.case("open objects by class", function()
	local function objects(name) return await.stats().objects[name] or 0 end
	local base = objects("coutil:tcpactive")
	local u = assert(system.socket("datagram", "ipv4"))
	local a = assert(system.socket("stream", "ipv4"))
	assert(objects("coutil:udp") >= 1 and objects("coutil:tcpactive") == base + 1)
	a:close()
	assert(objects("coutil:tcpactive") == base)
	local path = T.tmppath()
	local f = assert(system.openfile(path, "wN~", system.filebits.ruser | system.filebits.wuser))
	assert(objects("coutil:file") == 1)
	f:close("~")
	assert(objects("coutil:file") == 0)
	do local g = assert(system.openfile(path, "r~")) end
	collectgarbage()
	collectgarbage()
	assert(objects("coutil:file") == 0) -- collected: closed
	u:close()
	os.remove(path)
end)

T.case("iterations and pending deadlines", function()
	local before = await.stats().iterations
	T.async(function()
		await.within(5, function()
			assert(await.stats().deadlines == 1)
			system.suspend()
			system.suspend()
		end)
	end)
	assert(await.stats().iterations >= before + 2)
	assert(await.stats().deadlines == 0)
end)

T.done()
