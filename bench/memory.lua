-- memory: the cost of one call of a coutil.memory function on a 1 KiB
-- memory, against the string function of the same shape on a 1 KiB string
-- (the floor: a C function of Lua's own library doing the same amount of
-- work). Arguments: OP-KIND [CALLS], KIND = memory or string; OP:
--   get1      b:get(j)                     s:byte(j)
--   get8      b:get(j, j + 7)              s:byte(j, j + 7)       (8 values)
--   set1      b:set(j, v)                  s.char(v)
--   set8      b:set(j, v, ..., v)          s.char(v, ..., v)      (8 values)
--   len       #b                           s:len()
--   tostring  b:tostring(j, j + 7)         s:sub(j, j + 7)
--   fill      b:fill(v, j, j + 7)          s:byte(j, j + 7)
-- `s.char` finds string.char through the string's metatable, as `b:set`
-- finds memory.set through the memory's. `#s` is a VM instruction, not a
-- call, so `#b` (a `__len` call) is compared with `s:len()`. Every variant
-- makes CALLS calls (default 5 000 000) in a numeric for loop over the
-- positions, round after round; `ops` is the number of calls.
local system = require "coutil.system"
local memory = require "coutil.memory"

local op, kind = (arg[1] or "get1-memory"):match("^(%w+)%-(%w+)$")
local calls = tonumber(arg[2]) or 5000000
local size = 1024

--          memory expression                 string expression                 step  results
local OPS = {
	get1 = { "b:get(j)", "s:byte(j)", 1, 1 },
	get8 = { "b:get(j, j + 7)", "s:byte(j, j + 7)", 8, 8 },
	set1 = { "b:set(j, v)", "s.char(v)", 1, 0 },
	set8 = { "b:set(j, v, v, v, v, v, v, v, v)", "s.char(v, v, v, v, v, v, v, v)", 8, 0 },
	len = { "#b", "s:len()", 1, 1 },
	tostring = { "b:tostring(j, j + 7)", "s:sub(j, j + 7)", 8, 1 },
	fill = { "b:fill(v, j, j + 7)", "s:byte(j, j + 7)", 8, 0 },
}
local spec = assert(OPS[op], "op: get1 get8 set1 set8 len tostring fill")
assert(kind == "memory" or kind == "string", "kind: memory or string")
local expr, step, nres = spec[kind == "memory" and 1 or 2], spec[3], spec[4]

-- The statement: results kept in locals (all of them), or a call statement.
local stmt
if nres == 0 and not expr:find("^#") then
	stmt = expr
else
	local names = {}
	for k = 1, math.max(nres, 1) do names[k] = "x" .. k end
	stmt = "local " .. table.concat(names, ", ") .. " = " .. expr
end
local code = string.format([[
local b, s, v, rounds, last, step = ...
for _ = 1, rounds do
	for j = 1, last, step do
		%s
	end
end
]], stmt)
local per = (size - step) // step + 1 -- calls per round
local rounds = (calls + per - 1) // per
local run = assert(load(code, "=" .. op, "t"))

local s = string.rep("abcdefgh", size // 8)
local b = memory.create(s)
local t0 = system.nanosecs()
run(b, s, 65, rounds, size - step + 1, step)
local secs = (system.nanosecs() - t0) / 1e9
print(string.format("secs %.6f", secs))
print("ops " .. rounds * per)
