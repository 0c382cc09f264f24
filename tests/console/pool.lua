-- Runs the console itself in pool tasks (spec console.md §5):
-- pool:dofile(arg[-1], ...) with arg[-1] the coutil command.
local pool = threads.create(2)
for i = 1, 3 do assert(pool:dofile(arg[-1], "t", "pool-worker.lua", i)) end
local results = channel.create("console-pool")
local got = {}
for _ = 1, 3 do
	local _, n, script, command, globals = system.awaitch(results, "in")
	got[n] = string.format("%d %s %s %s", n, script, command == arg[-1], globals)
end
for i = 1, 3 do print(got[i]) end
pool:close()
print(pcall(pool.count, pool, "n") == false and "closed")
