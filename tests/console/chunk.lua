-- Loads the console as a plain chunk (spec console.md §5), as a thread pool
-- task would: arguments as `...`, program name from the chunk source.
local console = assert(loadfile("../../src/lua/console.lua"))
print("status", console("-e", "print('inner', arg[-4], arg[-1])", "-W", "args.lua", 7))
print("status", console("-e", "error('inner failure')"))
