-- Prints the global `arg` (from its lowest index) and the script's `...`.
local low = 0
while arg[low - 1] ~= nil do low = low - 1 end
for i = low, #arg do print(i, arg[i]) end
print("...", select("#", ...), ...)
