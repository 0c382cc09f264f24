-- copy, luv (for reference): the same copy as copy-coutil.lua, with luv's
-- callback functions, one chain of callbacks. Variant (the argument):
--   rw        uv.fs_read of 1 MiB (a new Lua string each time), uv.fs_write
--   sendfile  uv.fs_sendfile(dst, src, offset, size): libuv copies in the
--             kernel (copy_file_range, else sendfile)
local uv = require "luv"

local variant = arg[1] or "rw"
local dir = assert(os.getenv("COUTIL_BENCH_DIR"), "COUTIL_BENCH_DIR not set")
local srcpath, dstpath = dir .. "/src", dir .. "/dst-luv-" .. variant
local size = assert(uv.fs_stat(srcpath)).size
os.remove(dstpath) -- left by an interrupted run, if any
local bufsize = 1 << 20

local t0, secs = uv.hrtime(), nil
local rsecs, wsecs = 0, 0 -- rw: from each call to its callback
local copied = 0
local src, dst

local function finish()
	assert(uv.fs_close(dst, function(err)
		assert(not err, err)
		assert(uv.fs_close(src, function(err2)
			assert(not err2, err2)
			secs = (uv.hrtime() - t0) / 1e9
		end))
	end))
end

local step
if variant == "rw" then
	function step()
		local r0 = uv.hrtime()
		assert(uv.fs_read(src, bufsize, -1, function(err, data)
			local r1 = uv.hrtime()
			rsecs = rsecs + (r1 - r0)
			assert(not err, err)
			if #data == 0 then return finish() end
			assert(uv.fs_write(dst, data, -1, function(err2, n)
				wsecs = wsecs + (uv.hrtime() - r1)
				assert(not err2, err2)
				assert(n == #data, "short write")
				copied = copied + n
				step()
			end))
		end))
	end
elseif variant == "sendfile" then
	function step()
		if copied >= size then return finish() end
		assert(uv.fs_sendfile(dst, src, copied, size - copied, function(err, n)
			assert(not err, err)
			assert(n > 0, "source ended early")
			copied = copied + n
			step()
		end))
	end
else
	error("unknown variant " .. variant)
end

assert(uv.fs_open(srcpath, "r", 0, function(err, fd)
	assert(not err, err)
	src = fd
	assert(uv.fs_open(dstpath, "wx", tonumber("600", 8), function(err2, fd2)
		assert(not err2, err2)
		dst = fd2
		step()
	end))
end))
uv.run()

assert(copied == size, "copied " .. copied .. " of " .. size)
assert(uv.fs_stat(dstpath).size == size)
assert(uv.fs_unlink(dstpath))
print(string.format("secs %.6f", assert(secs)))
print("bytes " .. size)
if variant == "rw" then
	print(string.format("rsecs %.6f", rsecs / 1e9))
	print(string.format("wsecs %.6f", wsecs / 1e9))
end
