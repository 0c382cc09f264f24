-- copy, coutil: copies $COUTIL_BENCH_DIR/src (prepared by bench/run, in the
-- page cache) to a new file of the same directory, from a coroutine under
-- system.run(), then removes the copy. Variant (the argument):
--   rw       file:read into a 1 MiB memory, file:write of what was read
--   rw~      the same with the blocking `~` mode
--   file     dst:write(src, 1, size): the kernel copies the byte range
--   file~    the same with the blocking `~` mode
-- The time covers opening both files, the copy and closing them; `rsecs`
-- and `wsecs` are the parts spent inside the read and write calls (rw).
local system = require "coutil.system"
local memory = require "coutil.memory" -- also "memory" in the coutil command

local variant = arg[1] or "rw"
local dir = assert(os.getenv("COUTIL_BENCH_DIR"), "COUTIL_BENCH_DIR not set")
local srcpath, dstpath = dir .. "/src", dir .. "/dst-coutil-" .. variant
local mode = variant:find("~", 1, true) and "~" or ""
local byfile = variant:match("^file") ~= nil
local size = system.fileinfo(srcpath, "~B")
os.remove(dstpath) -- left by an interrupted run, if any
local bufsize = 1 << 20

local secs, split
coroutine.wrap(function()
	local buf = not byfile and memory.create(bufsize) or nil
	local t0 = system.nanosecs()
	local src = assert(system.openfile(srcpath, "r" .. mode))
	local dst = assert(system.openfile(dstpath, "wN" .. mode, "rw"))
	local copied, rsecs, wsecs = 0, 0, 0
	local nanosecs = system.nanosecs
	if byfile then
		while copied < size do
			local n = assert(dst:write(src, copied + 1, size, nil, mode))
			assert(n > 0, "source ended early")
			copied = copied + n
		end
	else
		while true do
			local r0 = nanosecs()
			local n = assert(src:read(buf, 1, bufsize, nil, mode))
			local r1 = nanosecs()
			rsecs = rsecs + (r1 - r0)
			if n == 0 then break end
			local w = assert(dst:write(buf, 1, n, nil, mode))
			wsecs = wsecs + (nanosecs() - r1)
			assert(w == n, "short write")
			copied = copied + n
		end
	end
	assert(dst:close(mode))
	assert(src:close(mode))
	secs = (system.nanosecs() - t0) / 1e9
	assert(copied == size, "copied " .. copied .. " of " .. size)
	if not byfile then split = { rsecs / 1e9, wsecs / 1e9 } end
end)()
system.run()

assert(system.fileinfo(dstpath, "~B") == size)
assert(system.removefile(dstpath, "~"))
print(string.format("secs %.6f", assert(secs)))
print("bytes " .. size)
if split then
	print(string.format("rsecs %.6f", split[1]))
	print(string.format("wsecs %.6f", split[2]))
end
