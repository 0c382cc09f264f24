-- spec/network.md §2: system.findaddr, system.nameaddr and the
-- coutil:netaddrlist object. Only names that resolve offline are used:
-- `localhost` (from /etc/hosts, which may or may not list ::1), literals,
-- the loopback (nil name), the wildcard "*" and services of /etc/services.
local T = require "testlib"
local system = require "coutil.system"

local unyieldable = T.unyieldable

-- Runs f in a tracked coroutine and the loop; returns f's results.
local function async(f, ...)
	local res
	T.spawn(function(...) res = table.pack(f(...)) end, ...)
	T.same({ false }, system.run())
	assert(res, "coroutine did not finish")
	return table.unpack(res, 1, res.n)
end

-- The entries of a list as strings "<address> <domain> <socktype>", from
-- its current entry to the last one.
local function entries(list)
	local out = {}
	repeat
		local addr = list:getaddress()
		assert(addr.type == list:getdomain())
		out[#out + 1] = tostring(addr) .. " " .. list:getdomain() .. " " .. tostring(list:getsocktype())
	until not list:next()
	return out
end

local function set(t)
	local s = {}
	for _, v in ipairs(t) do s[v] = true end
	return s
end

local function sorted(t)
	table.sort(t)
	return table.concat(t, ", ")
end

local hosts = io.open("/etc/hosts"):read("a")
local v6localhost = hosts:match("\n%s*::1%s[^\n]*localhost") ~= nil
	or hosts:match("^%s*::1%s[^\n]*localhost") ~= nil

T.case("await functions raise unable to yield outside coroutines, before checking arguments", function()
	local calls = {
		function() return system.findaddr("localhost", "http") end,
		function() return system.findaddr() end,
		function() return system.findaddr("*", nil, "x") end,
		function() return system.nameaddr(80) end,
		function() return system.nameaddr() end,
		function() return system.nameaddr(70000, "x") end,
	}
	for _, f in ipairs(calls) do
		local ok, msg = unyieldable(f)
		assert(not ok and msg:find("unable to yield", 1, true), msg)
	end
end)

T.case("findaddr localhost: IPv4 loopback, and ::1 when configured", function()
	local list = async(system.findaddr, "localhost", "http")
	T.same({ "coutil:netaddrlist" }, getmetatable(list).__name)
	assert(tostring(list):find("coutil:netaddrlist", 1, true))
	local all = entries(list)
	local found = set(all)
	assert(found["127.0.0.1:80 ipv4 stream"], sorted(all))
	for e in pairs(found) do
		assert(e:match("^127%.0%.0%.1:80 ipv4 ") or e:match("^%[::1%]:80 ipv6 "), e)
		assert(e:match(" stream$") or e:match(" datagram$"), e)
	end
	list = async(system.findaddr, "localhost", "http", "4")
	T.same({ "127.0.0.1:80 ipv4 stream" }, table.unpack(entries(list)))
	if v6localhost then
		list = async(system.findaddr, "localhost", "http", "6")
		T.same({ "[::1]:80 ipv6 stream" }, table.unpack(entries(list)))
	else
		T.same({ false, "unknown node or service", 3008 }, async(system.findaddr, "localhost", "http", "6"))
	end
	list = async(system.findaddr, "localhost", "http", "6m")
	local e = entries(list)
	T.same({ 1 }, #e)
	assert(e[1] == "[::ffff:127.0.0.1]:80 ipv6 stream" or e[1] == "[::1]:80 ipv6 stream", e[1])
end)

T.case("findaddr with a nil name gives the loopback", function()
	T.same({ "127.0.0.1:80 ipv4 stream" }, table.unpack(entries(async(system.findaddr, nil, "http", "4"))))
	T.same({ "[::1]:22 ipv6 stream" }, table.unpack(entries(async(system.findaddr, nil, "ssh", "6"))))
	T.same({ "127.0.0.1:22 ipv4 stream, [::1]:22 ipv6 stream" },
		sorted(entries(async(system.findaddr, nil, "ssh", "46"))))
	T.same({ "127.0.0.1:53 ipv4 datagram" }, table.unpack(entries(async(system.findaddr, nil, "domain", "4d"))))
	T.same({ "127.0.0.1:53 ipv4 stream" }, table.unpack(entries(async(system.findaddr, nil, "domain", "4s"))))
	T.same({ "127.0.0.1:53 ipv4 datagram, 127.0.0.1:53 ipv4 stream" },
		sorted(entries(async(system.findaddr, nil, "domain", "4sd"))))
end)

T.case("findaddr '*' gives wildcard addresses for passive use", function()
	local e = entries(async(system.findaddr, "*", 54321, "46"))
	local found = set(e)
	for _, want in ipairs { "0.0.0.0:54321 ipv4 datagram", "0.0.0.0:54321 ipv4 passive",
		"[::]:54321 ipv6 datagram", "[::]:54321 ipv6 passive" } do
		assert(found[want], want .. " not in " .. sorted(e))
	end
	for _, entry in ipairs(e) do -- entries of other socket types are left out
		assert(entry:match(" datagram$") or entry:match(" passive$"), entry)
	end
	T.same({ "0.0.0.0:54321 ipv4 passive" }, table.unpack(entries(async(system.findaddr, "*", "54321", "4s"))))
	T.same({ "[::]:53 ipv6 datagram" }, table.unpack(entries(async(system.findaddr, "*", "domain", "6d"))))
	-- the default families are those configured locally
	for _, entry in ipairs(entries(async(system.findaddr, "*", 54321))) do
		assert(entry:match("^0%.0%.0%.0:54321 ") or entry:match("^%[::%]:54321 "), entry)
	end
end)

T.case("findaddr lists only stream and datagram entries, even without service", function()
	-- With neither service nor socket type the resolver also answers raw
	-- socket entries; the list has none of them, before or after reset.
	for _, args in ipairs { { "127.0.0.1", nil, "4" }, { "localhost", 0, "4" }, { "::1", nil, "6n" } } do
		local list = async(system.findaddr, table.unpack(args, 1, 3))
		local first = entries(list)
		T.same({ true }, #first >= 2)
		local types = {}
		for _, entry in ipairs(first) do
			local t = entry:match(" (%a+)$")
			types[t] = (types[t] or 0) + 1
		end
		T.same({ 1, 1 }, types.stream, types.datagram)
		T.same({ 2 }, #first)
		list:reset()
		T.same({ table.concat(first, ", ") }, table.concat(entries(list), ", "))
		list:close()
	end
end)

T.case("findaddr services: names, numbers, numeric strings, absent", function()
	local function first(...)
		local list = async(system.findaddr, ...)
		return tostring(list:getaddress())
	end
	T.same({ "127.0.0.1:22" }, first("127.0.0.1", "ssh", "4"))
	T.same({ "127.0.0.1:8080" }, first("127.0.0.1", 8080, "4"))
	T.same({ "127.0.0.1:8080" }, first("127.0.0.1", "8080", "4"))
	T.same({ "127.0.0.1:0" }, first("127.0.0.1", nil, "4"))
	T.same({ "127.0.0.1:0" }, first("127.0.0.1"))
	T.same({ "127.0.0.1:65535" }, first("localhost", 65535, "4"))
	T.same({ "[::1]:0" }, first("::1", nil, "6"))
	T.same({ "[::ffff:127.0.0.1]:7" }, first("::ffff:127.0.0.1", 7, "6"))
	local ok, msg, code = async(system.findaddr, "localhost", "no-such-service")
	T.same({ false, "string" }, ok, type(msg))
	assert(code == 3010 or code == 3008, code)
end)

T.case("findaddr numeric mode and failures", function()
	T.same({ "192.168.0.1:80 ipv4 stream" },
		table.unpack(entries(async(system.findaddr, "192.168.0.1", 80, "ns"))))
	T.same({ "[1::f]:80 ipv6 datagram" }, table.unpack(entries(async(system.findaddr, "1::F", 80, "6nd"))))
	T.same({ false, "unknown node or service", 3008 }, async(system.findaddr, "localhost", 80, "n"))
	T.same({ false, "unknown node or service", 3008 }, async(system.findaddr, "", 80))
	T.same({ false, "address family not supported", 3000 }, async(system.findaddr, "::1", 80, "4"))
end)

T.case("findaddr argument errors", function()
	local function bad(text, ...)
		local args = table.pack(...)
		T.spawn(function() T.raises(text, system.findaddr, table.unpack(args, 1, args.n)) end)
	end
	bad("bad argument #1 to 'coutil.system.findaddr' (name or service must be provided)")
	bad("bad argument #1 to 'coutil.system.findaddr' (name or service must be provided)", nil, nil, "4")
	bad("bad argument #2 to 'coutil.system.findaddr' (service must be provided for '*')", "*")
	bad("bad argument #2 to 'coutil.system.findaddr' (service must be provided for '*')", "*", nil, "s")
	bad("bad argument #3 to 'coutil.system.findaddr' (unknown mode char (got 'x'))", "localhost", 80, "x")
	bad("unknown mode char (got '~')", "localhost", 80, "~")
	bad("unknown mode char (got '\255')", "localhost", 80, "4\255")
	bad("bad argument #3 to 'coutil.system.findaddr' ('m' is invalid for IPv4)", "localhost", 80, "4m")
	bad("('m' is invalid for IPv4)", "localhost", 80, "m4")
	bad("bad argument #1 to 'coutil.system.findaddr' (string expected, got table)", {}, 80)
	bad("bad argument #2 to 'coutil.system.findaddr' (string expected, got boolean)", "localhost", true)
	bad("bad argument #3 to 'coutil.system.findaddr' (string expected, got table)", "localhost", 80, {})
	bad("bad argument #2 to 'coutil.system.findaddr' (invalid port)", "localhost", 65536)
	bad("(invalid port)", "localhost", -1)
	bad("(number has no integer representation)", "localhost", 1.5)
	T.same({ false }, system.run())
end)

T.case("list navigation: next, reset, getaddress, getdomain, getsocktype", function()
	local function describe(list)
		return tostring(list:getaddress()) .. " " .. list:getdomain() .. " " .. list:getsocktype()
	end
	local list = async(system.findaddr, nil, "domain", "46")
	local all = entries(list)
	T.same({ 4 }, #all) -- ::1 and 127.0.0.1, each datagram and stream
	-- next on the last entry does not move
	T.same({ all[4] }, describe(list))
	T.same({ false }, list:next())
	T.same({ all[4] }, describe(list))
	T.same({}, list:reset())
	for i = 1, #all do
		T.same({ all[i] }, describe(list))
		T.same({ i < #all }, list:next())
	end
	list:reset()
	T.same({ all[1] }, describe(list))
	list:reset()
	T.same({ all[1] }, describe(list))
end)

T.case("getaddress writes into an address of the same family", function()
	local list = async(system.findaddr, "127.0.0.1", 22, "4s")
	local a = system.address("ipv4", "1.2.3.4:5")
	T.same({ a }, list:getaddress(a))
	assert(rawequal(list:getaddress(a), a))
	T.same({ "127.0.0.1:22" }, tostring(a))
	local b = list:getaddress(nil)
	assert(b == a and not rawequal(a, b))
	local c = system.address("ipv6")
	T.raises("bad argument #1 to 'getaddress' (wrong domain)", function() list:getaddress(c) end)
	T.raises("(wrong domain)", list.getaddress, list, c)
	T.same({ "[::]:0" }, tostring(c))
	T.raises("coutil:netaddress expected, got string", function() list:getaddress("127.0.0.1:22") end)
	T.raises("coutil:netaddress expected, got boolean", function() list:getaddress(true) end)
end)

T.case("close and closed lists", function()
	local list = async(system.findaddr, "127.0.0.1", 22)
	T.same({ true }, list:close())
	for _, method in ipairs { "next", "reset", "getaddress", "getdomain", "getsocktype", "close" } do
		T.raises("closed coutil:netaddrlist", list[method], list)
	end
	T.raises("coutil:netaddrlist expected, got table", list.next, {})
	T.raises("coutil:netaddrlist expected, got no value", list.getdomain)
	local mt = getmetatable(list)
	T.same({ "function", "function" }, type(mt.__gc), type(mt.__close))
	mt.__close(list) -- closing again by __close is silent
	mt.__gc(list)
	mt.__gc({})
end)

T.case("lists support to-be-closed variables and collection", function()
	local kept
	async(function()
		local list <close> = system.findaddr("127.0.0.1", 22)
		kept = list
		T.same({ "ipv4" }, list:getdomain())
	end)
	T.raises("closed coutil:netaddrlist", kept.getdomain, kept)
	local weak = setmetatable({}, { __mode = "k" })
	async(function()
		for _ = 1, 50 do weak[system.findaddr("localhost", "http")] = true end
	end)
	collectgarbage() collectgarbage()
	assert(next(weak) == nil)
end)

T.case("nameaddr of an address gives host and service names", function()
	T.same({ "localhost", "ssh" }, async(system.nameaddr, system.address("ipv4", "127.0.0.1:22")))
	T.same({ "localhost", "http" }, async(system.nameaddr, system.address("ipv4", "127.0.0.1:80"), "l"))
	T.same({ "localhost", "domain" }, async(system.nameaddr, system.address("ipv4", "127.0.0.1:53"), "d"))
	T.same({ "localhost", "ssh" }, async(system.nameaddr, system.address("ipv4", "127.0.0.1:22"), "liua"))
	local host, service = async(system.nameaddr, system.address("ipv4", "127.0.0.1:0"))
	T.same({ "localhost", "0" }, host, service)
end)

T.case("nameaddr of a port gives the service name", function()
	T.same({ "http" }, async(system.nameaddr, 80))
	T.same({ "ssh" }, async(system.nameaddr, 22.0))
	T.same({ "domain" }, async(system.nameaddr, 53, "d"))
	T.same({ "discard" }, async(system.nameaddr, 9, "d"))
	-- no name: the number
	local name = async(system.nameaddr, 0)
	T.same({ "0" }, name)
end)

T.case("nameaddr of a host name gives its canonical name", function()
	T.same({ "localhost" }, async(system.nameaddr, "localhost"))
	T.same({ "127.0.0.1" }, async(system.nameaddr, "127.0.0.1"))
	T.same({ false, "unknown node or service", 3008 }, async(system.nameaddr, ""))
	T.same({ false, "unknown node or service", 3008 }, async(system.nameaddr, "local\0host"))
end)

T.case("nameaddr argument errors", function()
	local function bad(text, ...)
		local args = table.pack(...)
		T.spawn(function() T.raises(text, system.nameaddr, table.unpack(args, 1, args.n)) end)
	end
	bad("bad argument #1 to 'coutil.system.nameaddr' (invalid port)", 65536)
	bad("bad argument #1 to 'coutil.system.nameaddr' (invalid port)", -1)
	bad("(number has no integer representation)", 8.5)
	bad("bad argument #1 to 'coutil.system.nameaddr' (string expected, got no value)")
	bad("(string expected, got table)", {})
	bad("(string expected, got boolean)", false)
	bad("bad argument #2 to 'coutil.system.nameaddr' (unknown mode char (got 'x'))", 80, "x")
	bad("unknown mode char (got '4')", system.address("ipv4"), "4")
	bad("unknown mode char (got '~')", "localhost", "~")
	bad("(string expected, got table)", 80, {})
	T.same({ false }, system.run())
end)

T.case("explicit resume cancels a lookup; the coroutine can await again", function()
	for _, f in ipairs { function() return system.findaddr("localhost", "http") end,
		function() return system.nameaddr(system.address("ipv4", "127.0.0.1:22")) end,
		function() return system.nameaddr(80) end } do
		local got
		local co = T.spawn(function() got = table.pack(f()) end)
		coroutine.resume(co, 1, nil, "three", nil)
		T.same({ n = 4, 1, nil, "three", nil }, table.unpack(got, 1, got.n))
		T.same({ false }, system.run())
		got = nil
		co = T.spawn(function() got = table.pack(f()) end)
		coroutine.resume(co)
		T.same({ n = 0 }, table.unpack(got, 1, got.n))
	end
	local results = {}
	local co = T.spawn(function()
		for i = 1, 3 do results[i] = system.nameaddr(80) end
	end)
	coroutine.resume(co, "a")
	coroutine.resume(co, "b")
	system.run()
	T.same({ "a", "b", "http" }, table.unpack(results))
end)

T.case("many concurrent lookups", function()
	local count = 0
	for i = 1, 100 do
		T.spawn(function()
			local list = assert(system.findaddr(nil, i, "4"))
			T.same({ "127.0.0.1:" .. i }, tostring(list:getaddress()))
			T.same({ "localhost" }, (system.nameaddr(list:getaddress())))
			count = count + 1
		end)
	end
	system.run()
	T.same({ 100 }, count)
end)

T.case("extra arguments are ignored", function()
	T.same({ "http" }, async(system.nameaddr, 80, "", "extra"))
	T.same({ "127.0.0.1:22" }, tostring(async(system.findaddr, "127.0.0.1", 22, "4s", "extra"):getaddress()))
end)

T.done()
