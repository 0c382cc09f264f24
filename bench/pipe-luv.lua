-- pipe, luv: the same child as pipe-coutil.lua, its stdout a uv.new_pipe()
-- read with read_start (libuv reads 64 KiB at a time) until end of file.
-- Prints secs (from before spawn to the end of the loop) and bytes.
local uv = require "luv"

local BLOCKS, BS = 4096, 65536
local t0 = uv.hrtime()
local out = uv.new_pipe(false)
local total, status = 0, nil
local handle
handle = assert(uv.spawn("dd", {
	args = { "if=/dev/zero", "bs=" .. BS, "count=" .. BLOCKS, "status=none" },
	stdio = { 0, out, 2 },
}, function(code, signal)
	status = code .. " " .. signal
	handle:close()
end))
out:read_start(function(err, data)
	assert(not err, err)
	if data then
		total = total + #data
	else
		out:close()
	end
end)
uv.run()
local secs = (uv.hrtime() - t0) / 1e9

assert(status == "0 0", "dd ended with " .. tostring(status))
assert(total == BLOCKS * BS, "read " .. total .. " bytes")
print(string.format("secs %.6f", secs))
print("bytes " .. total)
