-- smallops, luv: the work of smallops-coutil.lua with luv's fs functions.
-- Variant (the argument):
--   callbacks  (default) 64 concurrent chains of callbacks: fs_open (flags
--              "wx") -> fs_write -> fs_close -> fs_stat -> fs_unlink -> the
--              next file, each call run on libuv's thread pool
--   sync       the same calls without callbacks (synchronous), one after
--              the other
-- With `@shm` appended, in $COUTIL_BENCH_SHM/small/ (a tmpfs).
local uv = require "luv"

local variant, where = (arg[1] or "callbacks"):match("^([^@]*)@?(.*)$")
local root = where == "shm" and "COUTIL_BENCH_SHM" or "COUTIL_BENCH_DIR"
local dir = assert(os.getenv(root), root .. " not set") .. "/small/f"

local total, nchains = 20000, 64
local data = string.rep("x", 100)
local perm = tonumber("600", 8)

local taken, done = 0, 0
local t0 = uv.hrtime()
if variant == "callbacks" then
	local function chain()
		if taken >= total then return end
		taken = taken + 1
		local path = dir .. taken
		assert(uv.fs_open(path, "wx", perm, function(err, fd)
			assert(not err, err)
			assert(uv.fs_write(fd, data, -1, function(err2, n)
				assert(not err2, err2)
				assert(n == 100)
				assert(uv.fs_close(fd, function(err3)
					assert(not err3, err3)
					assert(uv.fs_stat(path, function(err4, st)
						assert(not err4, err4)
						assert(st.size == 100)
						assert(uv.fs_unlink(path, function(err5)
							assert(not err5, err5)
							done = done + 1
							chain()
						end))
					end))
				end))
			end))
		end))
	end
	for _ = 1, nchains do chain() end
	uv.run()
elseif variant == "sync" then
	while taken < total do
		taken = taken + 1
		local path = dir .. taken
		local fd = assert(uv.fs_open(path, "wx", perm))
		assert(uv.fs_write(fd, data, -1) == 100)
		assert(uv.fs_close(fd))
		assert(assert(uv.fs_stat(path)).size == 100)
		assert(uv.fs_unlink(path))
		done = done + 1
	end
else
	error("unknown variant " .. variant)
end
local secs = (uv.hrtime() - t0) / 1e9
assert(done == total)
print(string.format("secs %.6f", secs))
print("ops " .. total * 5)
