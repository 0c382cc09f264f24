-- pipe, coutil: reads the 256 MiB a child writes to its stdout,
-- `dd if=/dev/zero bs=64k count=4096 status=none`, through a pipe of
-- system.execute (stdout = "r": a connected pair of local stream sockets),
-- into a 64 KiB memory, until end of file. One coroutine awaits the child,
-- another reads. Prints secs (from before execute to the end of the loop:
-- starting the child included, as in the native pipeline) and bytes.
local system = require "coutil.system"
local memory = require "coutil.memory"

local BLOCKS, BS = 4096, 65536
local failures = {}
local function spawn(f)
	coroutine.wrap(function()
		local ok, err = xpcall(f, debug.traceback)
		if not ok then failures[#failures + 1] = err end
	end)()
end

local t0 = system.nanosecs()
local t = {
	execfile = "dd",
	arguments = { "if=/dev/zero", "bs=" .. BS, "count=" .. BLOCKS, "status=none" },
	stdout = "r",
}
local total, status = 0, nil
spawn(function()
	local what, code = system.execute(t)
	status = tostring(what) .. " " .. tostring(code)
end)
assert(type(t.stdout) ~= "string", "execute did not start: " .. tostring(status))
spawn(function()
	local buf = memory.create(BS)
	local stream = t.stdout
	while true do
		local n, err = stream:read(buf)
		if not n then
			assert(err == "end of file", err)
			break
		end
		total = total + n
	end
	stream:close()
end)
system.run()
local secs = (system.nanosecs() - t0) / 1e9

if #failures > 0 then error(failures[1], 0) end
assert(status == "exit 0", "dd ended with " .. tostring(status))
assert(total == BLOCKS * BS, "read " .. total .. " bytes")
print(string.format("secs %.6f", secs))
print("bytes " .. total)
