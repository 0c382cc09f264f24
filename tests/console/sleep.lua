-- Top-level await: the script body runs in the console's coroutine.
local before = system.time("updated")
print("suspend", system.suspend(0.05))
print("waited", system.time("updated") - before >= 0.04)
