-- spec/stdio-info.md §2-§4: system.procinfo, the system.cpuinfo and
-- system.netinfo iterators, and system.random.
local T = require "testlib"
local system = require "coutil.system"
local memory = require "coutil.memory"

local unyieldable, async = T.unyieldable, T.async

local function shell(cmd)
	local f = assert(io.popen(cmd))
	local out = f:read("a")
	f:close()
	return (out:gsub("\n$", ""))
end

local function readfile(path)
	local f = io.open(path)
	if not f then return nil end
	local data = f:read("a")
	f:close()
	return data
end

local strings = "enThkvV$HU"
local integers = "ug=dmR<>ioPpSwxX#^bfMr"
local floats = "cs1lLt"

T.case("procinfo value types of every character", function()
	for c in strings:gmatch(".") do
		local v = system.procinfo(c)
		assert(type(v) == "string", c)
	end
	for c in integers:gmatch(".") do
		local v = system.procinfo(c)
		assert(math.type(v) == "integer", c)
		assert(v >= 0, c)
	end
	for c in floats:gmatch(".") do
		local v = system.procinfo(c)
		assert(type(v) == "number", c)
		assert(v >= 0, c)
	end
	local all = strings .. integers .. floats
	T.same({ #all }, select("#", system.procinfo(all)))
	T.same({ 0 }, select("#", system.procinfo("")))
end)

T.case("procinfo values match the system", function()
	local stat = readfile("/proc/self/stat")
	local pid, ppid = stat:match("^(%d+) %b() %a (%d+)")
	T.same({ tonumber(pid), tonumber(ppid) }, system.procinfo("#^"))
	T.same({ system.procinfo("#") }, system.procinfo("#")) -- repeats allowed
	local a, b = system.procinfo("##")
	T.same({ a }, b)
	T.same({ "Linux" }, system.procinfo("k"))
	T.same({ shell("uname -s") }, system.procinfo("k"))
	T.same({ shell("uname -n") }, system.procinfo("n"))
	T.same({ shell("uname -m") }, system.procinfo("h"))
	T.same({ shell("uname -r") }, system.procinfo("v"))
	T.same({ shell("uname -v") }, system.procinfo("V"))
	T.same({ tonumber(shell("id -u")), tonumber(shell("id -g")) }, system.procinfo("ug"))
	T.same({ shell("id -un") }, system.procinfo("U"))
	T.same({ os.getenv("HOME") }, system.procinfo("H"))
	local tmp = os.getenv("TMPDIR") or os.getenv("TMP") or os.getenv("TEMP") or "/tmp"
	if #tmp > 1 then tmp = tmp:gsub("/$", "") end
	T.same({ tmp }, system.procinfo("T"))
	local exe = system.procinfo("e")
	assert(exe:sub(1, 1) == "/", exe)
	assert(io.open(exe), exe)
	local shellpath = system.procinfo("$")
	assert(shellpath:sub(1, 1) == "/", shellpath)
end)

T.case("procinfo memory and time values", function()
	local total, free, limit, rss, maxrss = system.procinfo("bfMrR")
	assert(total > 0 and free > 0 and free <= total, free)
	assert(limit >= 0)
	assert(rss > 0 and rss % 4096 == 0, rss)
	assert(maxrss > 0 and maxrss % 1024 == 0, maxrss)
	local meminfo = readfile("/proc/meminfo")
	T.same({ tonumber(meminfo:match("MemTotal:%s*(%d+)")) * 1024 }, total)
	local uptime = tonumber(readfile("/proc/uptime"):match("^[%d.]+"))
	assert(math.abs(system.procinfo("t") - uptime) < 5, uptime)
	local loads = readfile("/proc/loadavg")
	local l1, l5, l15 = loads:match("^(%S+) (%S+) (%S+)")
	local a, b, c = system.procinfo("1lL")
	assert(math.abs(a - tonumber(l1)) < 1 and math.abs(b - tonumber(l5)) < 1
		and math.abs(c - tonumber(l15)) < 1)
	local user0 = system.procinfo("c")
	local t0 = os.clock()
	while os.clock() - t0 < 0.05 do end
	assert(system.procinfo("c") + system.procinfo("s") > user0)
end)

T.case("procinfo reads each value once per call", function()
	-- Values that move (uptime, CPU time, memory, resident size, page
	-- faults) are equal wherever their character repeats in one call.
	local moving = "tcsfrpxX"
	for _ = 1, 50 do
		local values = table.pack(system.procinfo(moving .. moving .. "tt"))
		for i = 1, #moving do
			T.same({ values[i] }, values[#moving + i])
		end
		T.same({ values[1], values[1] }, values[2 * #moving + 1], values[2 * #moving + 2])
	end
	-- The uptime is that of /proc/uptime: whole hundredths of a second.
	for _ = 1, 20 do
		local t = system.procinfo("t")
		assert(math.abs(t * 100 - math.floor(t * 100 + 0.5)) < 1e-6, t)
	end
	local before = tonumber(readfile("/proc/uptime"):match("^[%d.]+"))
	local t = system.procinfo("t")
	local after = tonumber(readfile("/proc/uptime"):match("^[%d.]+"))
	assert(before <= t and t <= after, t)
	-- A repeated bad character raises at its first occurrence.
	T.raises("(unknown mode char (got 'Z'))", system.procinfo, "tZtZ")
end)

T.case("procinfo bad arguments", function()
	T.raises("bad argument #1 to", system.procinfo, "eZ")
	T.raises("(unknown mode char (got 'Z'))", system.procinfo, "eZ")
	T.raises("(unknown mode char (got '\255'))", system.procinfo, "\255")
	T.raises("(unknown mode char (got '~'))", system.procinfo, "~")
	T.raises("(string expected, got no value)", system.procinfo)
	T.raises("(string expected, got table)", system.procinfo, {})
end)

local function cpucount()
	local n = 0
	for line in io.lines("/proc/stat") do
		if line:match("^cpu%d") then n = n + 1 end
	end
	return n
end

T.case("cpuinfo iterates over every CPU", function()
	local it, which, k, closing = system.cpuinfo("mcunsdi")
	assert(tostring(it):find("coutil:cpustats", 1, true), tostring(it))
	T.same({ "mcunsdi", 0, it }, which, k, closing)
	T.same({ cpucount() }, #it)
	local count = 0
	for i, m, c, u, n, s, d, idle in it, which, k, closing do
		count = count + 1
		T.same({ count }, i)
		assert(type(m) == "string" and #m > 0, m)
		for _, v in ipairs({ c, u, n, s, d, idle }) do
			assert(math.type(v) == "integer" and v >= 0, v)
		end
		assert(idle + u > 0)
	end
	T.same({ cpucount() }, count)
	T.raises("closed", function() return #it end)
	T.raises("closed", it, "m", 0)
end)

T.case("cpuinfo called by hand, repeats and explicit which", function()
	local it = system.cpuinfo()
	local n = #it
	assert(n >= 1)
	local i, m1, m2, c = it("mmc", 0)
	T.same({ 1, m1 }, i, m2)
	assert(math.type(c) == "integer")
	T.same({ n }, (it("i", n - 1)))
	T.same({}, it("m", n))
	T.same({}, it("m", -1))
	T.same({}, it("m", math.maxinteger))
	T.same({ 1 }, it("", 0))
	T.raises("(unknown mode char (got 'x'))", it, "mx", 0)
	T.raises("string expected", it, nil, 0)
	T.raises("number expected", it, "m")
	do
		local closing <close> = it
	end
	T.raises("closed", function() return #it end)
	T.raises("closed", it, "m", 0)
end)

T.case("cpuinfo loop with break closes the iterator", function()
	local f, w, k, c = system.cpuinfo("u")
	for i in f, w, k, c do
		T.same({ 1 }, i)
		break
	end
	T.raises("closed", function() return #f end)
end)

T.case("cpuinfo bad arguments", function()
	T.raises("bad argument #1 to", system.cpuinfo, "mZ")
	T.raises("(unknown mode char (got 'Z'))", system.cpuinfo, "mZ")
	T.raises("(string expected, got table)", system.cpuinfo, {})
end)

local function ifindex(name)
	local text = readfile("/sys/class/net/" .. name .. "/ifindex")
	return text and math.tointeger(tonumber(text))
end

T.case("netinfo all: every character", function()
	local it, which, k, closing = system.netinfo("all", "nidlmtbTB")
	assert(tostring(it):find("coutil:netifaces", 1, true), tostring(it))
	T.same({ "nidlmtbTB", 0, it }, which, k, closing)
	local count, loopback = 0, false
	for i, n, int, d, l, m, t, b, mt, mb in it, which, k, closing do
		count = count + 1
		T.same({ count }, i)
		assert(type(n) == "string" and #n > 0)
		assert(type(int) == "boolean")
		assert(d == "ipv4" or d == "ipv6", d)
		T.same({ d == "ipv4" and 4 or 16 }, #b)
		T.same({ #b }, #m)
		assert(math.type(l) == "integer" and l >= 0 and l <= 8 * #b, l)
		local bits = 0
		for byte in m:gmatch(".") do
			local v = byte:byte()
			while v > 0 do bits = bits + (v & 1) v = v >> 1 end
		end
		T.same({ l }, bits)
		assert(mt:match("^%x%x:%x%x:%x%x:%x%x:%x%x:%x%x$"), mt)
		T.same({ mt:lower() }, mt)
		T.same({ 6 }, #mb)
		T.same({ mt }, string.format("%02x:%02x:%02x:%02x:%02x:%02x", mb:byte(1, 6)))
		if system.address then
			T.same({ true }, system.address(d, t, 8080, "t") == system.address(d, b, 8080, "b"))
		end
		if n == "lo" and d == "ipv4" then
			loopback = true
			T.same({ true, "127.0.0.1", "\127\0\0\1", 8, "\255\0\0\0" }, int, t, b, l, m)
			T.same({ "00:00:00:00:00:00", "\0\0\0\0\0\0" }, mt, mb)
		end
		if n == "lo" and d == "ipv6" then
			T.same({ true, "::1", 128 }, int, t, l)
		end
	end
	assert(count > 0)
	assert(loopback, "no loopback interface")
	T.raises("closed", function() return #it end)
end)

T.case("netinfo all: by hand and closing", function()
	local it = system.netinfo("all")
	local n = #it
	assert(n >= 1)
	local i, name, name2 = it("nn", n - 1)
	T.same({ n, name }, i, name2)
	T.same({}, it("n", n))
	T.same({}, it("n", -1))
	T.raises("(unknown mode char (got 'x'))", it, "x", 0)
	do
		local closing <close> = it
	end
	T.raises("closed", function() return #it end)
	T.raises("closed", it, "n", 0)
	T.raises("(unknown mode char (got 'Z'))", system.netinfo, "all", "nZ")
end)

T.case("netinfo name and id", function()
	local lo = ifindex("lo")
	if lo then
		T.same({ "lo" }, system.netinfo("name", lo))
		T.same({ "lo" }, system.netinfo("id", lo))
	end
	T.same({ false, "no such device or address", 6 }, system.netinfo("name", 99999))
	T.same({ false, "no such device or address", 6 }, system.netinfo("id", 99999))
	T.raises("bad argument #2 to", system.netinfo, "name", 0)
	T.raises("(out of range)", system.netinfo, "name", 0)
	T.raises("(out of range)", system.netinfo, "id", -1)
	T.raises("(out of range)", system.netinfo, "name", 1 << 31)
	T.raises("(number expected, got no value)", system.netinfo, "name")
	T.raises("(number has no integer representation)", system.netinfo, "id", 1.5)
	T.raises("bad argument #1 to", system.netinfo, "other")
	T.raises("(invalid option 'other')", system.netinfo, "other")
	T.raises("(string expected, got no value)", system.netinfo)
end)

-- Number of bytes of `m` in i..j that differ from `byte`.
local function changed(m, i, j, byte)
	local n = 0
	for k = i, j do
		if memory.get(m, k) ~= byte then n = n + 1 end
	end
	return n
end

T.case("random in blocking mode fills the range", function()
	local m = memory.create(64)
	T.same({ m }, system.random(m, 1, -1, "~"))
	assert(changed(m, 1, 64, 0) > 32)
	m = memory.create(64)
	T.same({ m }, system.random(m, 5, 12, "~"))
	T.same({ 0, 0 }, changed(m, 1, 4, 0), changed(m, 13, 64, 0))
	assert(changed(m, 5, 12, 0) > 0)
	m = memory.create(16)
	T.same({ m }, system.random(m, -4, -1, "~"))
	T.same({ 0 }, changed(m, 1, 12, 0))
	T.same({ m }, system.random(m, 9, 8, "~")) -- empty range
	T.same({ m }, system.random(m, 100, 200, "~"))
	T.same({ m }, system.random(m, nil, nil, "~~"))
	local e = memory.create(0)
	T.same({ e }, system.random(e, 1, -1, "~"))
	-- runs outside coroutines
	local ok, r = unyieldable(system.random, m, 1, -1, "~")
	T.same({ true, m }, ok, r)
end)

T.case("random await fills the range", function()
	local m = memory.create(1 << 20)
	T.same({ m }, async(system.random, m))
	assert(changed(m, 1, 256, 0) > 128)
	m = memory.create(32)
	T.same({ m }, async(system.random, m, 9, 16))
	T.same({ 0, 0 }, changed(m, 1, 8, 0), changed(m, 17, 32, 0))
	assert(changed(m, 9, 16, 0) > 0)
	-- two calls give different bytes
	local a, b = memory.create(32), memory.create(32)
	async(system.random, a)
	async(system.random, b)
	assert(memory.tostring(a) ~= memory.tostring(b))
end)

T.case("random explicit resume leaves the buffer alone", function()
	local m = memory.create(64)
	local res
	local co = T.spawn(function() res = table.pack(system.random(m)) end)
	coroutine.resume(co, "stop", 2)
	T.same({ "stop", 2 }, table.unpack(res, 1, res.n))
	system.run()
	T.same({ 0 }, changed(m, 1, 64, 0))
end)

T.case("random into a memory resized while waiting", function()
	local m = memory.create()
	memory.resize(m, 64)
	local res
	T.spawn(function() res = table.pack(system.random(m, 1, 64)) end)
	memory.resize(m, 8)
	system.run()
	T.same({ m }, table.unpack(res, 1, res.n))
	T.same({ 8 }, #m)
end)

T.case("random bad arguments", function()
	local m = memory.create(8)
	local ok, msg = unyieldable(system.random, m)
	T.same({ false }, ok)
	assert(msg:find("unable to yield", 1, true), msg)
	T.same({ 0 }, changed(m, 1, 8, 0))
	T.raises("bad argument #4 to", system.random, m, 1, 8, "x")
	T.raises("(unknown mode char (got 'x'))", system.random, m, 1, 8, "~x")
	T.raises("(memory expected, got string)", system.random, "abc", 1, 3, "~")
	T.raises("(memory expected, got nil)", system.random, nil, 1, 3, "~")
	T.raises("(memory expected, got boolean)", system.random, true, 1, 3, "~")
	T.raises("(number expected, got table)", system.random, m, {}, 3, "~")
	T.raises("(number has no integer representation)", system.random, m, 1, 1.5, "~")
	T.raises("(string expected, got table)", system.random, m, 1, 3, {})
end)

T.done()
