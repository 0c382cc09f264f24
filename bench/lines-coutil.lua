-- lines, coutil: receives the lines of the file $COUTIL_BENCH_LINES (1 M
-- short lines) over a TCP connection on 127.0.0.1 from a sender process
-- (`cat` into bash's /dev/tcp, so every row has the same sender) and
-- splits them. Variant (the argument, default reader):
--   reader  `await.reader(sock):line()` until nil
--   split   a plain-Lua splitter over `sock:read(buf)` into an 8 KiB
--           memory: `buf:tostring(1, n)` appended to the unread rest,
--           then `string.find(chunk, "\n", pos, true)` and `string.sub`
--           per line, behind a `line()` function as a user would write it
--   naive   the splitter the manual's cookbook had before coutil.await:
--           the unread rest kept as a string, `string.sub` of the rest
--           after each line (what users wrote from the manual)
-- Prints secs (from the first line returned to the end of the stream) and
-- ops (the lines after the first one); checks the count of lines and bytes.
local system = require "coutil.system"
local memory = require "coutil.memory"
local await = require "coutil.await"

local variant = arg[1] or "reader"
local path = assert(os.getenv("COUTIL_BENCH_LINES"), "COUTIL_BENCH_LINES not set")
local f = assert(io.open(path, "rb"))
local size = f:seek("end")
f:close()

local l = assert(system.socket("passive", "ipv4"))
assert(l:bind(system.address("ipv4", "127.0.0.1:0")))
assert(l:listen(1))
local sender = assert(io.popen(("exec bash -c 'exec cat -- \"$0\" >/dev/tcp/127.0.0.1/%d' '%s'")
	:format(l:getaddress().port, path)))

local lines, bytes, t0, t1 = 0, 0, nil, nil
local failure
coroutine.wrap(function()
	local ok, err = xpcall(function()
		local s = assert(l:accept())
		l:close()
		-- The lines come from `line(state)`, in a generic `for`.
		local line, state
		if variant == "reader" then
			state = await.reader(s)
			line = state.line
		elseif variant == "split" then
			local buf = memory.create(8192)
			local find, sub, tostr = string.find, string.sub, memory.tostring
			local chunk, pos = "", 1
			line = function()
				while true do
					local e = find(chunk, "\n", pos, true)
					if e then
						local text = sub(chunk, pos, e - 1)
						pos = e + 1
						return text
					end
					local n, err = s:read(buf)
					if not n then
						assert(err == "end of file", err)
						if pos > #chunk then return nil end
						local text = sub(chunk, pos)
						chunk, pos = "", 1
						return text
					end
					chunk, pos = sub(chunk, pos) .. tostr(buf, 1, n), 1
				end
			end
		elseif variant == "naive" then
			local buffer, pending = memory.create(4096), ""
			line = function()
				while true do
					local newline = pending:find("\n", 1, true)
					if newline then
						local text = pending:sub(1, newline - 1)
						pending = pending:sub(newline + 1)
						return text
					end
					local n = s:read(buffer)
					if not n then
						local text = pending ~= "" and pending or nil
						pending = ""
						return text
					end
					pending = pending .. buffer:tostring(1, n)
				end
			end
		else
			error("unknown variant " .. variant)
		end
		local first = line(state)
		t0 = system.nanosecs()
		lines, bytes = 1, #first + 1
		for s in line, state do
			lines = lines + 1
			bytes = bytes + #s + 1
		end
		t1 = system.nanosecs()
		s:close()
	end, debug.traceback)
	if not ok then failure = err end
end)()
system.run()
sender:close()
if failure then error(failure, 0) end
assert(bytes == size, ("%d bytes in %d lines, %d expected"):format(bytes, lines, size))
print(string.format("secs %.6f", (t1 - t0) / 1e9))
print("ops " .. lines - 1)
