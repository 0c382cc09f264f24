-- moves, coutil: N transfers (default 1 000) of one value through channels
-- (spec seed-todo.md E4: a resizable memory moves, its bytes are not
-- copied). The argument is WHERE-VALUE[-N]:
--   WHERE  state    two coroutines of this state, each with its own channel
--                   object of one name, pass the value back and forth
--                   (system.awaitch; the waiting side is resumed by
--                   system.run): no thread switch, the cost of the transfer;
--          threads  the main chunk and a task of a pool of 1 thread pass it
--                   back and forth (system.awaitch here, coroutine.yield of
--                   a channel name in the task): two thread wake-ups per
--                   round trip;
--   VALUE  int      the integer 1 (the cost of the exchange itself);
--          mem0     an empty resizable memory;
--          mem64    a 64 MiB resizable memory;
--          str64    a 64 MiB string (copied at each transfer; use a small N).
-- Timed from the first transfer to the last; `ops` is the number of
-- transfers (moves). The value is checked at the end (length and bytes).
local system = require "coutil.system"
local channel = require "coutil.channel"
local threads = require "coutil.threads"
local memory = require "coutil.memory"

local where, kind, count = (arg[1] or "state-mem64"):match("^(%a+)%-(%w+)%-?(%d*)$")
assert(where == "state" or where == "threads", "mode: state-VALUE[-N] or threads-VALUE[-N]")
local n = tonumber(count) or 1000
assert(n % 2 == 0, "an even number of transfers (round trips)")

local SIZE = 64 << 20
local value
if kind == "int" then
	value = 1
elseif kind == "mem0" then
	value = memory.create()
elseif kind == "mem64" then
	value = memory.create()
	value:resize(SIZE, "0123456789abcdef")
elseif kind == "str64" then
	value = string.rep("0123456789abcdef", SIZE // 16)
else
	error("value: int, mem0, mem64 or str64")
end

local awaitch = system.awaitch
local secs
if where == "state" then
	local a, b = channel.create("bench-move"), channel.create("bench-move")
	local t0 = system.nanosecs()
	coroutine.wrap(function()
		local v = value
		for _ = 1, n // 2 do
			assert(awaitch(a, "out", v))
			local _
			_, v = awaitch(a, "in")
		end
		value = v
	end)()
	coroutine.wrap(function()
		for _ = 1, n // 2 do
			local _, v = awaitch(b, "in")
			assert(awaitch(b, "out", v))
		end
	end)()
	system.run()
	secs = (system.nanosecs() - t0) / 1e9
else
	local pool = threads.create(1)
	assert(pool:dostring([[
		local yield, n = require("coroutine").yield, ...
		for _ = 1, n do
			local _, v = yield("bench-move-to", "in")
			yield("bench-move-back", "out", v)
		end
	]], "=mover", "t", n // 2))
	local to, back = channel.create("bench-move-to"), channel.create("bench-move-back")
	local t0
	coroutine.wrap(function()
		local v = value
		t0 = system.nanosecs()
		for _ = 1, n // 2 do
			assert(awaitch(to, "out", v))
			local _
			_, v = awaitch(back, "in")
		end
		secs = (system.nanosecs() - t0) / 1e9
		value = v
	end)()
	system.run()
	pool:close()
end

if kind == "mem64" then
	assert(memory.type(value) == "resizable" and #value == SIZE)
	assert(value:tostring(SIZE - 15) == "0123456789abcdef")
elseif kind == "str64" then
	assert(#value == SIZE)
end
print(string.format("secs %.6f", secs))
print("ops " .. n)
