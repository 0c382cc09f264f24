-- spec/files.md §3: system.openfile and the coutil:file methods, in both
-- modes, with buffers, offsets, file-to-file copies, cancellation and
-- concurrency.
local T = require "testlib"
local system = require "coutil.system"
local memory = require "coutil.memory"

local unyieldable, async = T.unyieldable, T.async
local modes = T.modes

local base, newpath = T.tempdir("coutil-fs-file-")
local writefile = T.writefile

local function readfile(path)
	local f = assert(io.open(path, "rb"))
	local data = f:read("a")
	f:close()
	return data
end

local rmtree = T.rmtree

local function fails(text, code, ok, msg, errno)
	if ok ~= false or msg ~= text or (code and errno ~= code) then
		error(string.format("failure %q expected, got %s, %s, %s", text, tostring(ok), tostring(msg), tostring(errno)), 2)
	end
end

-- Checks that f(...) raises `bad argument #n to '<name>' (<text>)`.
local function argerror(n, text, f, ...)
	local msg = T.raises("(" .. text .. ")", f, ...)
	assert(msg:find("bad argument #" .. n .. " to '", 1, true), msg)
end

-- Number of open descriptors of this process.
local function fdcount()
	local n = 0
	for _ in system.listdir("/proc/self/fd", "~") do n = n + 1 end
	return n
end

-- Runs the loop until the process has `n` descriptors (results of
-- cancelled operations are dropped when the loop receives them).
local function settle(n)
	for _ = 1, 200 do
		collectgarbage("collect")
		if fdcount() == n then break end
		T.spawn(system.suspend, 0.005)
		system.run()
	end
	T.same({ n }, fdcount())
end

local function open(path, mode, perm) return assert(system.openfile(path, "~" .. (mode or ""), perm)) end

T.case("openfile opens for reading by default", function()
	modes(function(call, tilde)
		local p = writefile(newpath(), "contents")
		local f = call(system.openfile, p, tilde ~= "" and tilde or nil)
		assert(tostring(f):find("coutil:file: ", 1, true), tostring(f))
		local b = memory.create(20)
		T.same({ 8 }, call(f.read, f, b, 1, -1, nil, tilde))
		T.same({ "contents" }, b:tostring(1, 8))
		fails("bad file descriptor", 9, call(f.write, f, "x", 1, -1, nil, tilde))
		T.same({ true }, call(f.close, f, tilde))
		fails("no such file or directory", 2, call(system.openfile, newpath(), tilde))
		fails("no such file or directory", 2, call(system.openfile, newpath(), tilde .. "rw"))
		local ok, msg = call(system.openfile, base, tilde .. "w")
		assert(ok == false and msg:find("directory", 1, true), msg)
	end)
end)

T.case("openfile mode characters", function()
	modes(function(call, tilde)
		local p = writefile(newpath(), "0123456789")
		local b = memory.create(20)
		-- w: write only
		local f = call(system.openfile, p, tilde .. "w")
		T.same({ 3 }, call(f.write, f, "abc", 1, -1, nil, tilde))
		fails("bad file descriptor", 9, call(f.read, f, b, 1, -1, nil, tilde))
		f:close("~")
		T.same({ "abc3456789" }, readfile(p))
		-- rw: both, in any order
		f = call(system.openfile, p, "w" .. tilde .. "r")
		T.same({ 2 }, call(f.write, f, "AB", 1, -1, nil, tilde))
		T.same({ 8 }, call(f.read, f, b, 1, -1, nil, tilde))
		T.same({ "c3456789" }, b:tostring(1, 8))
		f:close("~")
		-- a: appends (and writes)
		f = call(system.openfile, p, tilde .. "a")
		T.same({ 3 }, call(f.write, f, "xyz", 1, -1, nil, tilde))
		fails("bad file descriptor", 9, call(f.read, f, b, 1, -1, nil, tilde))
		f:close("~")
		T.same({ "ABc3456789xyz" }, readfile(p))
		f = call(system.openfile, p, tilde .. "ra")
		T.same({ 1 }, call(f.write, f, "!", 1, -1, 0, tilde)) -- appends despite the offset
		T.same({ 5 }, call(f.read, f, b, 1, 5, nil, tilde))
		T.same({ "ABc34" }, b:tostring(1, 5))
		f:close("~")
		T.same({ "ABc3456789xyz!" }, readfile(p))
		-- t: truncates (and writes)
		f = call(system.openfile, p, tilde .. "t")
		T.same({ 0 }, system.fileinfo(p, "~B"))
		T.same({ 2 }, call(f.write, f, "ok", 1, -1, nil, tilde))
		f:close("~")
		T.same({ "ok" }, readfile(p))
		-- f: synchronized writes (and writes)
		f = call(system.openfile, p, tilde .. "f")
		T.same({ 2 }, call(f.write, f, "OK", 1, -1, nil, tilde))
		f:close("~")
		T.same({ "OK" }, readfile(p))
		-- x: close-on-exec
		f = call(system.openfile, p, tilde .. "rx")
		T.same({ 2 }, call(f.read, f, b, 1, -1, nil, tilde))
		f:close("~")
		-- n: create if missing, with permissions
		local q = newpath()
		f = call(system.openfile, q, tilde .. "wn", "rw")
		T.same({ "file", 384 }, system.fileinfo(q, "~?"), system.fileinfo(q, "~M") & 4095)
		T.same({ 4 }, call(f.write, f, "made", 1, -1, nil, tilde))
		f:close("~")
		f = call(system.openfile, q, tilde .. "rn", "rwx") -- exists: opens, perm unused
		T.same({ 384 }, system.fileinfo(q, "~M") & 4095)
		f:close("~")
		-- the permissions apply to later opens only
		local r = newpath()
		f = call(system.openfile, r, tilde .. "rwn", 0)
		T.same({ 3 }, call(f.write, f, "abc", 1, -1, nil, tilde))
		T.same({ 0 }, system.fileinfo(r, "~M") & 4095)
		f:close("~")
		-- N: create, fail if existing
		fails("file already exists", 17, call(system.openfile, q, tilde .. "N", 448))
		local s = newpath()
		f = call(system.openfile, s, "N" .. tilde .. "w", "rwx")
		T.same({ 448 }, system.fileinfo(s, "~M") & 4095)
		f:close("~")
	end)
	local p = newpath()
	argerror(3, "number expected, got no value", system.openfile, p, "~n")
	argerror(3, "unknown perm char (got 'z')", system.openfile, p, "~N", "rz")
	-- without n/N, perm is ignored even when invalid
	fails("no such file or directory", 2, system.openfile(p, "~r", {}))
	for _, c in ipairs({ "b", "c", "+", "R", "\255" }) do
		local ok, msg = unyieldable(system.openfile, p, "r" .. c)
		assert(not ok and msg:find("unknown mode char (got '" .. c .. "')", 1, true), msg)
	end
	local ok, msg = unyieldable(system.openfile, p)
	assert(not ok and msg:find("unable to yield", 1, true), msg)
	argerror(1, "string expected, got nil", system.openfile, nil, "~")
end)

T.case("read fills buffer ranges; offsets keep the file position", function()
	modes(function(call, tilde)
		local f = open(writefile(newpath(), "abcdefghij"), "r")
		local b = memory.create(6)
		T.same({ 3 }, call(f.read, f, b, 2, 4, nil, tilde))
		T.same({ "\0abc\0\0" }, b:tostring())
		T.same({ 2 }, call(f.read, f, b, -2, nil, nil, tilde))
		T.same({ "\0abcde" }, b:tostring())
		T.same({ 6 }, call(f.read, f, b, nil, nil, 0, tilde)) -- at 0, position kept
		T.same({ "abcdef" }, b:tostring())
		T.same({ 5 }, call(f.read, f, b, 1, 5, nil, tilde)) -- continues at 5
		T.same({ "fghijf" }, b:tostring())
		T.same({ 0 }, call(f.read, f, b, nil, nil, nil, tilde)) -- end of file
		T.same({ 2 }, call(f.read, f, b, 1, 2, 8, tilde))
		T.same({ "ijhijf" }, b:tostring())
		T.same({ 0 }, call(f.read, f, b, 1, -1, 100, tilde))
		T.same({ 0 }, call(f.read, f, b, 4, 3, 0, tilde)) -- empty range
		T.same({ 0 }, call(f.read, f, b, 1, 3, -1, tilde)) -- negative: file position (the end)
		f:close("~")
	end)
	local f = open(newpath(), "rwN", "rw")
	argerror(2, "memory expected, got string", f.read, f, "string", 1, -1, 0, "~")
	argerror(2, "memory expected, got nil", f.read, f, nil, 1, -1, 0, "~")
	argerror(5, "number has no integer representation", f.read, f, memory.create(1), 1, 1, 0.5, "~")
	f:close("~")
end)

T.case("write sends string and memory ranges; offsets keep the position", function()
	modes(function(call, tilde)
		local p = newpath()
		local f = open(p, "rwN", "rw")
		T.same({ 3 }, call(f.write, f, "abcdef", 4, nil, nil, tilde))
		T.same({ 2 }, call(f.write, f, memory.create("xyz"), -2, nil, nil, tilde))
		T.same({ 2 }, call(f.write, f, 123, 2, 3, nil, tilde))
		T.same({ "defyz23" }, readfile(p))
		T.same({ 2 }, call(f.write, f, "AB", 1, -1, 0, tilde)) -- at 0, position kept
		T.same({ 1 }, call(f.write, f, "!", 1, -1, nil, tilde))
		T.same({ "ABfyz23!" }, readfile(p))
		T.same({ 0 }, call(f.write, f, "abc", 3, 2, nil, tilde))
		T.same({ 1 }, call(f.write, f, "Z", 1, -1, 10, tilde))
		T.same({ "ABfyz23!\0\0Z" }, readfile(p))
		local big = string.rep("0123456789", 100000)
		T.same({ #big }, call(f.write, f, big, 1, -1, 0, tilde))
		T.same({ true }, readfile(p) == big)
		f:close("~")
	end)
	local f = open(newpath(), "wN", "rw")
	argerror(2, "string or memory expected, got table", f.write, f, {}, 1, -1, 0, "~")
	argerror(2, "string or memory expected, got nil", f.write, f, nil, 1, -1, 0, "~")
	f:close("~")
end)

T.case("write copies a range of another file", function()
	modes(function(call, tilde)
		local src = open(writefile(newpath(), "0123456789"), "r")
		local p = newpath()
		local dst = open(p, "wN", "rw")
		T.same({ 3 }, call(dst.write, dst, src, 3, 5, nil, tilde))
		T.same({ 10 }, call(dst.write, dst, src, 1, 10, 99, tilde)) -- offset ignored
		T.same({ 2 }, call(dst.write, dst, src, 9, 20, nil, tilde)) -- stops at the end
		T.same({ 0 }, call(dst.write, dst, src, 20, 30, nil, tilde))
		T.same({ "234012345678989" }, readfile(p))
		-- the source position is kept
		local b = memory.create(2)
		T.same({ 2 }, src:read(b, 1, -1, nil, "~"))
		T.same({ "01" }, b:tostring())
		-- a large copy
		local big = string.rep("abcdefgh", 200000)
		local bigsrc = open(writefile(newpath(), big), "r")
		local q = newpath()
		local bigdst = open(q, "wN", "rw")
		T.same({ #big - 1 }, call(bigdst.write, bigdst, bigsrc, 2, -1 + #big + 1, nil, tilde))
		T.same({ true }, readfile(q) == big:sub(2))
		-- an appending destination
		local r = writefile(newpath(), "start:")
		local app = open(r, "a")
		T.same({ 4 }, call(app.write, app, src, 1, 4, nil, tilde))
		T.same({ "start:0123" }, readfile(r))
		-- a source not open for reading
		local wo = open(newpath(), "wN", "rw")
		fails("bad file descriptor", 9, call(dst.write, dst, wo, 1, 1, nil, tilde))
		for _, f in ipairs({ src, dst, bigsrc, bigdst, app, wo }) do f:close("~") end
	end)
	local src, dst = open(writefile(newpath(), "x"), "r"), open(newpath(), "wN", "rw")
	argerror(3, "number expected, got nil", dst.write, dst, src, nil, nil, nil, "~")
	argerror(4, "number expected, got nil", dst.write, dst, src, 1, nil, nil, "~")
	argerror(3, "invalid range", dst.write, dst, src, 3, 2, nil, "~")
	argerror(3, "invalid range", dst.write, dst, src, 0, 2, nil, "~")
	src:close("~")
	T.raises("closed file", dst.write, dst, src, 1, 1, nil, "~")
	dst:close("~")
end)

T.case("a full device: writes fail with no space left on device", function()
	modes(function(call, tilde)
		local full = open("/dev/full", "w")
		fails("no space left on device", 28, call(full.write, full, "data", 1, -1, nil, tilde))
		fails("no space left on device", 28, call(full.write, full, memory.create(4096), 1, -1, 0, tilde))
		local src = open(writefile(newpath(), "0123456789"), "r")
		fails("no space left on device", 28, call(full.write, full, src, 1, 10, nil, tilde))
		-- nothing was lost on the reading side
		local b = memory.create(10)
		T.same({ 10 }, call(src.read, src, b, 1, -1, nil, tilde))
		T.same({ "0123456789" }, b:tostring())
		src:close("~")
		full:close("~")
	end)
end)

-- SIGPIPE (13) in this thread's /proc status: pending (own, shared),
-- blocked, ignored, as a string to compare.
local function sigpipe_bits()
	local f = assert(io.open("/proc/thread-self/status"))
	local status = f:read("a")
	f:close()
	local bits = {}
	for _, k in ipairs({ "SigPnd", "ShdPnd", "SigBlk", "SigIgn" }) do
		local hex = assert(status:match(k .. ":%s*(%x+)"), k)
		bits[#bits + 1] = k .. "=" .. tostring(tonumber(hex:sub(-4), 16) & 0x1000 ~= 0)
	end
	return table.concat(bits, " ")
end

T.case("regression: a write to a FIFO whose reader left fails, in any host", function()
	-- lua5.4 keeps SIGPIPE's default action (terminate): the process used
	-- to die there with status 141.
	modes(function(call, tilde)
		local fifo = newpath()
		assert(os.execute("mkfifo " .. fifo))
		local before = sigpipe_bits()
		local reader = assert(io.popen("head -c 1 " .. fifo)) -- reads 1 byte, leaves
		local f = open(fifo, "w") -- waits for the reader
		T.same({ 1 }, call(f.write, f, "x", 1, -1, nil, tilde))
		T.same({ "x" }, reader:read("a"))
		reader:close()
		fails("broken pipe", 32, call(f.write, f, "more", 1, -1, nil, tilde))
		fails("broken pipe", 32, call(f.write, f, memory.create(70000), 1, -1, nil, tilde))
		local src = open(writefile(newpath(), "0123456789"), "r")
		fails("broken pipe", 32, call(f.write, f, src, 1, 10, nil, tilde))
		src:close("~")
		f:close("~")
		-- nothing left pending, the mask and the disposition as they were
		T.same({ before }, sigpipe_bits())
	end)
end)

T.case("worker threads block SIGPIPE", function()
	T.async(system.fileinfo, base, "?") -- a job: workers exist now
	local workers = 0
	for tid in system.listdir("/proc/self/task", "~") do
		local f = io.open("/proc/self/task/" .. tid .. "/status")
		local status = f and f:read("a") or ""
		if f then f:close() end
		if status:match("^Name:%s*(%S+)") == "coutil-worker" then
			workers = workers + 1
			local hex = assert(status:match("SigBlk:%s*(%x+)"))
			assert(tonumber(hex:sub(-4), 16) & 0x1000 ~= 0, "SigBlk " .. hex)
		end
	end
	assert(workers > 0, "no worker thread found")
end)

T.case("resize truncates and extends with zeros", function()
	modes(function(call, tilde)
		local p = writefile(newpath(), "0123456789")
		local f = open(p, "rw")
		T.same({ true }, call(f.resize, f, 4, tilde))
		T.same({ "0123" }, readfile(p))
		T.same({ true }, call(f.resize, f, 6, tilde))
		T.same({ "0123\0\0" }, readfile(p))
		fails("invalid argument", 22, call(f.resize, f, -1, tilde))
		f:close("~")
		f = open(p, "r")
		fails("invalid argument", 22, call(f.resize, f, 1, tilde))
		argerror(2, "number expected, got nil", f.resize, f, nil, "~")
		f:close("~")
	end)
end)

T.case("flush syncs data and metadata", function()
	modes(function(call, tilde)
		local f = open(newpath(), "wN", "rw")
		f:write("data", 1, -1, nil, "~")
		T.same({ true }, call(f.flush, f, tilde))
		T.same({ true }, call(f.flush, f, tilde .. "d"))
		T.same({ true }, call(f.flush, f, "d" .. tilde))
		f:close("~")
	end)
	local f = open(newpath(), "wN", "rw")
	T.raises("unknown mode char (got 'x')", f.flush, f, "~x")
	local msg = T.raises("unknown mode char (got 'f')", f.flush, f, "f")
	assert(msg:find("bad argument #", 1, true), msg)
	f:close("~")
end)

T.case("touch sets the times of the file", function()
	modes(function(call, tilde)
		local p = writefile(newpath(), "")
		local f = open(p, "r")
		T.same({ true }, call(f.touch, f, tilde .. "am", 10.5, 20.75))
		T.same({ 10.5, 20.75 }, f:info("~am"))
		T.same({ true }, call(f.touch, f, tilde .. "b", 30))
		T.same({ 30, 30 }, system.fileinfo(p, "~am"))
		T.same({ true }, call(f.touch, f, tilde .. "ma", 1, 2))
		T.same({ 2, 1 }, f:info("~am"))
		T.same({ true }, call(f.touch, f, tilde))
		local a, m = f:info("~am")
		assert(math.abs(a - os.time()) < 10 and math.abs(m - os.time()) < 10)
		if tilde == "" then
			T.same({ true }, async(f.touch, f, "m", 5))
			T.same({ true }, async(f.touch, f))
		end
		f:close("~")
	end)
	local f = open(writefile(newpath(), ""), "r")
	T.raises("unknown mode char (got 'l')", f.touch, f, "~l")
	T.raises("'~' must be in the begin of 'mode'", f.touch, f, "a~", 1)
	argerror(3, "invalid time", f.touch, f, "~a", -1)
	argerror(4, "number expected, got string", f.touch, f, "~ab", 1, "x")
	f:close("~")
end)

T.case("own and grant change the owner and the permissions", function()
	modes(function(call, tilde)
		local p = writefile(newpath(), "")
		local f = open(p, "r")
		T.same({ true }, call(f.grant, f, "rwR", tilde))
		T.same({ 416 }, f:info("~M") & 4095)
		T.same({ true }, call(f.grant, f, 4095, tilde))
		T.same({ 4095 }, system.fileinfo(p, "~M") & 4095)
		local uid, gid = f:info("~ug")
		if uid == 0 then
			T.same({ true }, call(f.own, f, 123, 456, tilde))
			T.same({ 123, 456 }, f:info("~ug"))
			T.same({ true }, call(f.own, f, -1, 789, tilde))
			T.same({ 123, 789 }, f:info("~ug"))
			T.same({ true }, call(f.own, f, uid, -1, tilde))
			T.same({ uid, 789 }, f:info("~ug"))
		else
			T.same({ true }, call(f.own, f, -1, -1, tilde))
			print("SKIPPED: file:own success cases need root")
		end
		f:close("~")
	end)
	local f = open(writefile(newpath(), ""), "r")
	argerror(2, "number expected, got nil", f.own, f, nil, nil, "~")
	argerror(3, "number expected, got nil", f.own, f, 1, nil, "~")
	argerror(2, "unknown perm char (got '8')", f.grant, f, "8", "~")
	argerror(2, "number expected, got nil", f.grant, f, nil, "~")
	for _, perm in ipairs({ -1, 4096, 1 << 40 }) do
		argerror(2, "out of range", f.grant, f, perm, "~")
	end
	T.same({ true }, f:own(-1, (1 << 32) - 1, "~")) -- the OS's "unchanged"
	for _, id in ipairs({ (1 << 32) + 1234, -2 }) do
		argerror(2, "out of range", f.own, f, id, -1, "~")
		argerror(3, "out of range", f.own, f, -1, id, "~")
	end
	T.raises("unknown mode char (got 'l')", f.own, f, 1, 1, "l")
	T.raises("unknown mode char (got 'l')", f.grant, f, 1, "~l")
	f:close("~")
end)

T.case("file:grant checks perm and mode before the coroutine and the file", function()
	local f = open(writefile(newpath(), ""), "r")
	local function first(text, ...)
		local ok, msg = unyieldable(f.grant, ...)
		assert(not ok and msg:find(text, 1, true), msg)
		return msg
	end
	-- Called through pcall, the method has no name and `self` counts.
	first("bad argument #2 to '?' (number expected, got no value)", f)
	first("bad argument #2 to '?' (unknown perm char (got '0'))", f, "rw0", "q")
	local msg = first("unknown mode char (got 'q')", f, "rw", "~q")
	assert(not msg:find("bad argument", 1, true), msg)
	first("unable to yield", f, 0)
	first("unable to yield", "not a file", "rw")
	T.same({ true }, f:close("~"))
	-- A closed file: still perm, mode and coroutine first.
	first("unknown perm char (got 'Z')", f, "Z")
	first("unknown mode char (got 'q')", f, 0, "q")
	first("unable to yield", f, 0)
	T.raises("closed file", f.grant, f, 0, "~")
	argerror(1, "coutil:file expected, got string", f.grant, "x", 0, "~")
end)

T.case("closed files raise closed file from every method", function()
	modes(function(call, tilde)
		local f = open(newpath(), "rwN", "rw")
		T.same({ true }, call(f.close, f, tilde))
		local b = memory.create(1)
		for _, args in ipairs({
			{ "close" }, { "read", b }, { "write", "x" }, { "resize", 0 }, { "flush" },
			-- grant checks the coroutine before the file: outside one, the
			-- closed file shows only in blocking mode.
			{ "touch" }, { "own", -1, -1 }, { "grant", 0, "~" }, { "info", "?" },
		}) do
			T.raises("closed file", f[args[1]], f, table.unpack(args, 2))
			T.raises("closed file", f[args[1]], f, table.unpack(args, 2))
		end
	end)
	local f = open(newpath(), "rwN", "rw")
	local bad = setmetatable({}, { __index = { read = f.read } })
	local msg = T.raises("calling 'read' on bad self (coutil:file expected, got table)",
		function() return bad:read(memory.create(1)) end)
	msg = T.raises("bad argument #1 to 'read' (coutil:file expected, got memory)",
		function() return f.read(memory.create(1)) end)
	local ok
	ok, msg = unyieldable(f.close, f)
	assert(not ok and msg:find("unable to yield", 1, true), msg)
	T.same({ true }, f:close("~"))
	T.raises("unknown mode char (got 'x')", f.close, open(newpath(), "rwN", "rw"), "x")
end)

T.case("collection and to-be-closed variables close files", function()
	collectgarbage("collect")
	local before = fdcount()
	do
		local f <close> = open(newpath(), "rwN", "rw")
		T.same({ before + 1 }, fdcount())
	end
	T.same({ before }, fdcount())
	for _ = 1, 10 do open(newpath(), "rwN", "rw") end
	for _ = 1, 3 do collectgarbage("collect") end
	T.same({ before }, fdcount())
	local f = open(newpath(), "rwN", "rw")
	f:close("~")
	do local _ <close> = f end -- closing a closed file is fine
	-- a file collected while a job uses its descriptor
	local p = writefile(newpath(), "still readable")
	local b = memory.create(14)
	local res
	T.spawn(function()
		local g = open(p, "r")
		res = table.pack(g:read(b))
	end)
	for _ = 1, 3 do collectgarbage("collect") end
	system.run()
	T.same({ 14, "still readable" }, res[1], b:tostring())
	for _ = 1, 3 do collectgarbage("collect") end
	T.same({ before }, fdcount())
end)

T.case("closing a file while a job uses it", function()
	collectgarbage("collect")
	local before = fdcount()
	local p = writefile(newpath(), string.rep("x", 1 << 20))
	local f = open(p, "r")
	local b = memory.create(1 << 20)
	local got, closed
	T.spawn(function() got = f:read(b) end)
	T.spawn(function() closed = f:close() end)
	system.run()
	T.same({ 1 << 20, true }, got, closed)
	T.same({ before }, fdcount())
end)

T.case("explicit resume cancels every file await", function()
	collectgarbage("collect")
	local before = fdcount()
	local p = writefile(newpath(), "0123456789")
	local f = open(p, "rw")
	local b = memory.create(10)
	local other = open(writefile(newpath(), "abc"), "r")
	local calls = {
		{ system.openfile, p }, { system.openfile, newpath(), "wN", "rw" },
		{ f.read, f, b }, { f.read, f, b, 1, -1, 0 }, { f.write, f, "X", 1, -1, 20 },
		{ f.write, f, other, 1, 3 }, { f.resize, f, 10 }, { f.flush, f }, { f.touch, f },
		{ f.own, f, -1, -1 }, { f.grant, f, "rw" }, { f.info, f, "?B" },
	}
	for _, c in ipairs(calls) do
		local res, after
		local co = T.spawn(function()
			res = table.pack(c[1](table.unpack(c, 2)))
			after = table.pack(f:info("?"))
		end)
		coroutine.resume(co, "cancelled", nil)
		T.same({ "cancelled", nil, n = 2 }, table.unpack(res, 1, res.n))
		system.run()
		T.same({ "dead", "file" }, coroutine.status(co), after[1])
	end
	-- a cancelled read leaves the buffer alone
	T.same({ string.rep("\0", 10) }, b:tostring())
	-- a cancelled close still closes
	local g = open(p, "r")
	local co = T.spawn(function() g:close() end)
	coroutine.resume(co)
	T.raises("closed file", g.read, g, b)
	system.run()
	f:close("~")
	other:close("~")
	-- the file opened by the cancelled openfile is closed when the loop
	-- receives the discarded result
	settle(before)
end)

T.case("many concurrent operations on one file", function()
	local p = newpath()
	local f = open(p, "rwN", "rw")
	local n, done = 200, 0
	for i = 1, n do
		T.spawn(function()
			local data = string.format("%04d", i)
			assert(f:write(data, 1, -1, (i - 1) * 4) == 4)
			local b = memory.create(4)
			assert(f:read(b, 1, -1, (i - 1) * 4) == 4)
			assert(b:tostring() == data, b:tostring())
			done = done + 1
		end)
	end
	system.run()
	T.same({ n, n * 4 }, done, f:info("~B"))
	local expected = {}
	for i = 1, n do expected[i] = string.format("%04d", i) end
	T.same({ table.concat(expected) }, readfile(p))
	f:close("~")
end)

T.case("a memory resized while a read waits", function()
	local p = writefile(newpath(), "0123456789")
	local f = open(p, "r")
	local m = memory.create()
	memory.resize(m, 10)
	local got
	T.spawn(function() got = f:read(m, 3, 10) end)
	memory.resize(m, 5)
	system.run()
	T.same({ 3, "\0\0" .. "012" }, got, m:tostring())
	f:close("~")
end)

T.case("file operations as an unprivileged user", function()
	local interp = arg and arg[-1]
	if system.fileinfo(base, "~u") ~= 0 then
		print("SKIPPED: not root, cannot switch to an unprivileged user")
		return
	elseif not interp or not os.execute("command -v setpriv >/dev/null 2>&1") then
		print("SKIPPED: setpriv or the interpreter path is not available")
		return
	end
	local d = newpath()
	assert(system.makedir(d, "rwxRX41", "~"))
	assert(system.grantfile(base, "rwxRX41", "~"))
	local secret = writefile(d .. "/secret", "x")
	assert(system.grantfile(secret, "rw", "~"))
	local public = writefile(d .. "/public", "y")
	assert(system.grantfile(public, "rwR4", "~"))
	local script = writefile(d .. "/child.lua", string.format([[
		local system = require "coutil.system"
		local function show(...) print(select("#", ...), ...) end
		show(system.openfile(%q, "~r"))
		show(system.openfile(%q, "~w"))
		show(system.openfile(%q, "~wn", 420))
		local f = assert(system.openfile(%q, "~r"))
		show(f:own(0, 0, "~"))
		show(f:grant(511, "~"))
		show(f:touch("~b", 1))
		coroutine.wrap(function() show(f:own(-1, 0)) end)()
		system.run()
		f:close("~")
	]], secret, public, d .. "/new", public))
	assert(system.grantfile(script, "rwR4", "~"))
	local cmd = string.format("setpriv --reuid=65534 --regid=65534 --clear-groups %q %q 2>&1", interp, script)
	local pipe = assert(io.popen(cmd))
	local out = pipe:read("a")
	pipe:close()
	local lines = {}
	for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
	local denied = "3\tfalse\tpermission denied\t13"
	local notpermitted = "3\tfalse\toperation not permitted\t1"
	T.same({ denied, denied, denied, notpermitted, notpermitted, notpermitted, notpermitted, n = 7 },
		table.unpack(lines, 1, 7))
	assert(#lines == 7, out)
end)

rmtree(base)
T.done()
