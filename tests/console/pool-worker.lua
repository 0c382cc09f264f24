-- A script run by the console in a pool task (see pool.lua).
local n = ...
local globals = system and channel and threads and stateco and event and spawn and memory
	and string and table and debug and io and os and math and utf8 and coroutine and "globals"
system.suspend(0.01) -- the console runs system.run in the task's state
local results = channel.create("console-pool")
system.awaitch(results, "out", n, arg[0], arg[-1], globals)
