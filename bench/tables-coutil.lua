-- tables, coutil: N transfers (default 2 000) of a table of 1 000 entries
-- (SHAPE flat: 500 floats in its array part and 500 string keys with
-- string values; nested: 100 subtables of 10 such entries) from one
-- coroutine to another of this state, through two channel objects of one
-- name (system.awaitch; the receiver is resumed by system.run).
-- Arguments: MODE[-SHAPE] (default copy-flat) and N. MODE:
--   copy       the table itself: Coutil copies it deeply (E4);
--   serialize  Lanes-style in pure Lua: the sender serializes the table
--              to a Lua constructor (string.format "%q" for every key and
--              value, exact for floats), sends the string, and the
--              receiver rebuilds the table with load();
--   floor      the integer 1: the cost of the exchange itself.
-- Timed from the first transfer to the last; `ops` is the number of
-- transfers. The receiver checks every 100th table it gets.
local system = require "coutil.system"
local channel = require "coutil.channel"

local mode, shape = (arg[1] or "copy"):match("^(%a+)%-?(%a*)$")
local n = tonumber(arg[2]) or 2000
if shape == "" then shape = "flat" end
assert(shape == "flat" or shape == "nested", "shape: flat or nested")

local function entries(t, count)
	for i = 1, count // 2 do t[i] = i * 1.5 end
	for i = 1, count // 2 do t["key" .. i] = "value number " .. i end
	return t
end

local data = {}
if shape == "flat" then
	entries(data, 1000)
else
	for i = 1, 100 do data["sub" .. i] = entries({}, 10) end
end

local format, concat, pairs, type = string.format, table.concat, pairs, type

-- Writes `t` as a Lua table constructor into `out` (a list of pieces).
local function write(t, out)
	out[#out + 1] = "{"
	for k, v in pairs(t) do
		out[#out + 1] = "["
		out[#out + 1] = format("%q", k)
		out[#out + 1] = "]="
		if type(v) == "table" then
			write(v, out)
		else
			out[#out + 1] = format("%q", v)
		end
		out[#out + 1] = ","
	end
	out[#out + 1] = "}"
end

local function serialize(t)
	local out = { "return " }
	write(t, out)
	return concat(out)
end

local function deserialize(s)
	return assert(load(s, "=table", "t", {}))()
end

local function check(t)
	if shape == "flat" then
		assert(t[500] == 750.0 and math.type(t[1]) == "float" and t.key500 == "value number 500")
	else
		assert(t.sub100[5] == 7.5 and t.sub1.key5 == "value number 5")
	end
end

local send, receive
if mode == "copy" then
	send = function() return data end
	receive = function(t) return t end
elseif mode == "serialize" then
	send = function() return serialize(data) end
	receive = deserialize
elseif mode == "floor" then
	send = function() return 1 end
	receive = function(v) return v end
else
	error("mode: copy, serialize or floor")
end

local awaitch = system.awaitch
local a, b = channel.create("bench-table"), channel.create("bench-table")
local t0 = system.nanosecs()
coroutine.wrap(function()
	for _ = 1, n do assert(awaitch(a, "out", send())) end
end)()
coroutine.wrap(function()
	for i = 1, n do
		local _, v = awaitch(b, "in")
		local t = receive(v)
		if i % 100 == 0 and mode ~= "floor" then check(t) end
	end
end)()
system.run()
print(string.format("secs %.6f", (system.nanosecs() - t0) / 1e9))
print("ops " .. n)
