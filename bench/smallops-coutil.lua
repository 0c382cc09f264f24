-- smallops, coutil: 20 000 times (create a file with openfile "wN",
-- write 100 bytes, close it, get its size with fileinfo "B", remove it),
-- taken by 64 coroutines from a shared counter, under system.run(), in
-- $COUTIL_BENCH_DIR/small/ (made empty by bench/run). Variant (the
-- argument): `await` (default) or `~` (every call blocking; the
-- coroutines then run one after the other, without yielding); with `@shm`
-- appended, in $COUTIL_BENCH_SHM/small/ instead (a tmpfs).
local system = require "coutil.system"

local variant, where = (arg[1] or "await"):match("^([^@]*)@?(.*)$")
assert(variant == "await" or variant == "~", "unknown variant " .. variant)
local m = variant == "~" and "~" or ""
local root = where == "shm" and "COUTIL_BENCH_SHM" or "COUTIL_BENCH_DIR"
local dir = assert(os.getenv(root), root .. " not set") .. "/small/f"

local total, ncos = 20000, 64
local data = string.rep("x", 100)
local openfile, fileinfo, removefile = system.openfile, system.fileinfo, system.removefile
local openmode, infomode = m .. "wN", m .. "B"

local taken, done = 0, 0
local function worker()
	while taken < total do
		taken = taken + 1
		local path = dir .. taken
		local file = assert(openfile(path, openmode, "rw"))
		assert(file:write(data, 1, -1, nil, m) == 100)
		assert(file:close(m))
		assert(fileinfo(path, infomode) == 100)
		assert(removefile(path, m))
		done = done + 1
	end
end

local t0 = system.nanosecs()
for _ = 1, ncos do coroutine.wrap(worker)() end
system.run()
local secs = (system.nanosecs() - t0) / 1e9
assert(done == total)
print(string.format("secs %.6f", secs))
print("ops " .. total * 5)
