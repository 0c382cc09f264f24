-- spec/files.md §1-2: permissions, system.filebits and the path functions
-- (linkfile, copyfile, movefile, removefile, makedir, maketemp, listdir,
-- touchfile, ownfile, grantfile), in both modes, with cancellation.
local T = require "testlib"
local system = require "coutil.system"

local unyieldable, async = T.unyieldable, T.async
local modes = T.modes

local base, newpath = T.tempdir("coutil-fs-path-")
local writefile = T.writefile

local function readfile(path)
	local f = io.open(path, "rb")
	if f == nil then return nil end
	local data = f:read("a")
	f:close()
	return data
end

local function exists(path)
	return (pcall(system.fileinfo, path, "~l?"))
end

-- Checks that f(...) raises `bad argument #n to '<name>' (<text>)`; the
-- name may be qualified when pcall hides the call info.
local function argerror(n, text, f, ...)
	local msg = T.raises("(" .. text .. ")", f, ...)
	assert(msg:find("bad argument #" .. n .. " to '", 1, true), msg)
end

local rmtree = T.rmtree

local function perm(path) return system.fileinfo(path, "~lM") & 4095 end

local function fails(text, code, ok, msg, errno)
	if ok ~= false or msg ~= text or (code and errno ~= code) then
		error(string.format("failure %q expected, got %s, %s, %s", text, tostring(ok), tostring(msg), tostring(errno)), 2)
	end
end

T.case("filebits has the POSIX values", function()
	local b = system.filebits
	T.same({ 2048, 1024, 512 }, b.setuid, b.setgid, b.sticky)
	T.same({ 256, 128, 64 }, b.ruser, b.wuser, b.xuser)
	T.same({ 32, 16, 8 }, b.rgroup, b.wgroup, b.xgroup)
	T.same({ 4, 2, 1 }, b.rother, b.wother, b.xother)
	T.same({ 61440, 49152, 40960, 32768 }, b.type, b.socket, b.link, b.file)
	T.same({ 24576, 16384, 8192, 4096 }, b.block, b.directory, b.character, b.pipe)
end)

T.case("every await function raises unable to yield outside a coroutine", function()
	local p = newpath()
	local calls = {
		{ system.linkfile, p, p .. "x" }, { system.copyfile, p, p .. "x" },
		{ system.movefile, p, p .. "x" }, { system.removefile, p },
		{ system.makedir, p, 511 }, { system.maketemp, p }, { system.maketemp, p, "fo" },
		{ system.listdir, base }, { system.touchfile, p }, { system.ownfile, p, 0, 0 },
		{ system.grantfile, p, 420 }, { system.fileinfo, p, "?" }, { system.openfile, p },
	}
	for _, c in ipairs(calls) do
		local ok, msg = unyieldable(table.unpack(c))
		assert(not ok and msg:find("unable to yield", 1, true), msg)
	end
	assert(not exists(p))
end)

T.case("bad mode characters raise, before the coroutine check", function()
	local p = newpath()
	local function bad(c, f, ...)
		local ok, msg = unyieldable(f, ...)
		assert(not ok and msg:find("unknown mode char (got '" .. c .. "')", 1, true), msg)
	end
	bad("x", system.linkfile, p, p, "x")
	bad("\255", system.linkfile, p, p, "s\255")
	bad("d", system.copyfile, p, p, "d")
	bad("s", system.movefile, p, p, "s")
	bad("l", system.removefile, p, "l")
	bad("d", system.makedir, p, 511, "d")
	bad("x", system.maketemp, p, "x")
	bad("d", system.listdir, p, "d")
	bad("x", system.touchfile, p, "x")
	bad("a", system.ownfile, p, 0, 0, "a")
	bad("l", system.grantfile, p, 420, "l")
	local ok, msg = unyieldable(system.ownfile, p, 0, 0, "~x")
	assert(not ok and msg:find("bad argument #4", 1, true), msg)
end)

T.case("a later prefix char raises", function()
	local p = newpath()
	T.raises("'~' must be in the begin of 'mode'", system.maketemp, p, "f~")
	T.raises("'~' must be in the begin of 'mode'", system.touchfile, p, "a~", 1)
	T.raises("'l' must be in the begin of 'mode'", system.touchfile, p, "~al", 1)
	assert(not exists(p))
end)

T.case("permission strings and numbers", function()
	local p = writefile(newpath(), "")
	local b = system.filebits
	local chars = {
		U = b.setuid, G = b.setgid, S = b.sticky, r = b.ruser, w = b.wuser, x = b.xuser,
		R = b.rgroup, W = b.wgroup, X = b.xgroup, ["4"] = b.rother, ["2"] = b.wother, ["1"] = b.xother,
	}
	for c, bit in pairs(chars) do
		T.same({ true }, system.grantfile(p, c, "~"))
		T.same({ bit }, perm(p))
		T.same({ true }, system.fileinfo(p, "~" .. c))
	end
	T.same({ true }, system.grantfile(p, "rwR4", "~"))
	T.same({ 420 }, perm(p))
	T.same({ true }, system.grantfile(p, "", "~"))
	T.same({ 0 }, perm(p))
	T.same({ true }, system.grantfile(p, 493, "~"))
	T.same({ 493 }, perm(p))
	argerror(2, "unknown perm char (got 'z')", system.grantfile, p, "rwz", "~")
	argerror(2, "number expected, got nil", system.grantfile, p, nil, "~")
	T.raises("number expected, got boolean", system.grantfile, p, true, "~")
	argerror(2, "unknown perm char (got '7')", system.makedir, p, "7", "~")
	T.same({ 493 }, perm(p))
end)

T.case("maketemp makes a private directory with a random name", function()
	modes(function(call, tilde)
		local prefix = base .. "/tmpdir-"
		local a = call(system.maketemp, prefix, tilde)
		local b = call(system.maketemp, prefix, tilde .. tilde)
		assert(a ~= b)
		for _, d in ipairs({ a, b }) do
			T.same({ #prefix + 6 }, #d)
			T.same({ prefix }, d:sub(1, #prefix))
			assert(d:sub(-6):match("^[%w]+$"), d)
		end
		T.same({ "directory" }, system.fileinfo(a, "~?"))
		T.same({ 448 }, perm(a))
		fails("no such file or directory", 2, call(system.maketemp, base .. "/missing/x", tilde))
		rmtree(a)
		rmtree(b)
	end)
end)

T.case("maketemp files: every f/o order", function()
	modes(function(call, tilde)
		local prefix = base .. "/tmpfile-"
		local p = call(system.maketemp, prefix, tilde .. "f")
		assert(type(p) == "string" and #p == #prefix + 6)
		T.same({ "file", 384, 0 }, system.fileinfo(p, "~?"), perm(p), system.fileinfo(p, "~B"))
		local f = call(system.maketemp, prefix, tilde .. "o")
		assert(tostring(f):find("coutil:file", 1, true))
		T.same({ 3 }, f:write("abc", 1, -1, nil, "~"))
		f:close("~")
		local p1, f1 = call(system.maketemp, prefix, tilde .. "fo")
		local f2, p2 = call(system.maketemp, prefix, tilde .. "of")
		assert(type(p1) == "string" and type(p2) == "string" and p1 ~= p2)
		assert(tostring(f1):find("coutil:file") and tostring(f2):find("coutil:file"))
		T.same({ 2 }, f1:write("hi", 1, -1, nil, "~"))
		T.same({ "hi" }, readfile(p1))
		local r = table.pack(call(system.maketemp, prefix, tilde .. "foof"))
		T.same({ 4 }, r.n)
		assert(type(r[1]) == "string" and rawequal(r[1], r[4]))
		assert(rawequal(r[2], r[3]) and tostring(r[2]):find("coutil:file"))
		T.same({ "file" }, system.fileinfo(r[1], "~?"))
		local many = table.pack(call(system.maketemp, prefix, tilde .. "ooffoo"))
		T.same({ 6 }, many.n)
		assert(rawequal(many[1], many[6]) and rawequal(many[3], many[4]))
		for _, x in ipairs({ f1, f2, r[2], many[1] }) do T.same({ true }, x:close("~")) end
		fails("no such file or directory", 2, call(system.maketemp, base .. "/missing/x", tilde .. "fo"))
	end)
	T.same({ true }, system.maketemp(base .. "/a", "~~~f") ~= nil)
	argerror(1, "too long", system.maketemp, string.rep("x", 250), "~")
	T.raises("string expected, got nil", system.maketemp, nil, "~")
	T.raises("unknown mode char (got 'd')", system.maketemp, base .. "/x", "~fd")
end)

T.case("linkfile: hard and symbolic links", function()
	modes(function(call, tilde)
		local target = writefile(newpath(), "data")
		local hard, soft = newpath(), newpath()
		T.same({ true }, call(system.linkfile, target, hard, tilde))
		T.same({ 2, "data" }, system.fileinfo(hard, "~*"), readfile(hard))
		T.same({ system.fileinfo(target, "~#") }, system.fileinfo(hard, "~#"))
		T.same({ true }, call(system.linkfile, target, soft, tilde .. "s"))
		T.same({ "link", target }, system.fileinfo(soft, "~l?="))
		T.same({ "data" }, readfile(soft))
		for _, m in ipairs({ "d", "j", "sd" }) do
			local p = newpath()
			T.same({ true }, call(system.linkfile, target, p, m .. tilde))
			T.same({ "link" }, system.fileinfo(p, "~l?"))
		end
		fails("file already exists", 17, call(system.linkfile, target, hard, tilde))
		fails("file already exists", 17, call(system.linkfile, target, soft, tilde .. "s"))
		fails("no such file or directory", 2, call(system.linkfile, newpath(), newpath(), tilde))
		local dangling = newpath()
		T.same({ true }, call(system.linkfile, newpath(), dangling, "s" .. tilde))
		T.same({ "link" }, system.fileinfo(dangling, "~l?"))
	end)
end)

T.case("copyfile copies contents and permissions, overwriting by default", function()
	modes(function(call, tilde)
		local src = writefile(newpath(), string.rep("0123456789", 10000))
		system.grantfile(src, "rwx", "~")
		local dst = newpath()
		T.same({ true }, call(system.copyfile, src, dst, tilde))
		T.same({ true }, readfile(src) == readfile(dst))
		T.same({ 448 }, perm(dst))
		writefile(dst, "old contents longer than nothing")
		T.same({ true }, call(system.copyfile, writefile(newpath(), "new"), dst, tilde))
		T.same({ "new" }, readfile(dst))
		fails("file already exists", 17, call(system.copyfile, src, dst, tilde .. "n"))
		T.same({ "new" }, readfile(dst))
		local fresh = newpath()
		T.same({ true }, call(system.copyfile, src, fresh, "n" .. tilde))
		T.same({ true }, readfile(src) == readfile(fresh))
		-- the same file: nothing is lost
		T.same({ true }, call(system.copyfile, src, src, tilde))
		T.same({ 100000 }, system.fileinfo(src, "~B"))
		local ok, msg = call(system.copyfile, base, newpath(), tilde)
		assert(ok == false and msg:find("directory", 1, true), msg)
		fails("no such file or directory", 2, call(system.copyfile, newpath(), newpath(), tilde))
		fails("no such file or directory", 2, call(system.copyfile, src, base .. "/missing/x", tilde))
	end)
end)

T.case("copyfile with copy-on-write", function()
	local fstype = system.fileinfo(base, "~@")
	local cow = fstype == "btrfs" or fstype == "xfs"
	modes(function(call, tilde)
		local src = writefile(newpath(), string.rep("cow", 1000))
		local dst = writefile(newpath(), string.rep("x", 10000))
		T.same({ true }, call(system.copyfile, src, dst, tilde .. "c"))
		T.same({ true }, readfile(src) == readfile(dst))
		local forced = newpath()
		local ok, msg, code = call(system.copyfile, src, forced, tilde .. "C")
		if ok then
			T.same({ true }, readfile(src) == readfile(forced))
		else
			assert(not cow, "copy-on-write failed on " .. fstype .. ": " .. tostring(msg))
			assert(type(msg) == "string" and math.type(code) == "integer")
			assert(not exists(forced), "a failed copy leaves no new file")
			print("NOTE: copy-on-write not supported on " .. fstype .. ": " .. msg)
		end
		ok = call(system.copyfile, src, dst, tilde .. "Cn")
		T.same({ false }, ok)
	end)
end)

T.case("movefile renames", function()
	modes(function(call, tilde)
		local a, b = writefile(newpath(), "moved"), newpath()
		T.same({ true }, call(system.movefile, a, b, tilde))
		T.same({ false, "moved" }, exists(a), readfile(b))
		fails("no such file or directory", 2, call(system.movefile, a, newpath(), tilde))
		local d = newpath()
		assert(system.makedir(d, "rwx", "~"))
		fails("not a directory", 20, call(system.movefile, d, b, tilde))
		local d2 = newpath()
		T.same({ true }, call(system.movefile, d, d2, tilde))
		T.same({ "directory" }, system.fileinfo(d2, "~?"))
	end)
end)

T.case("removefile removes files and, with d, empty directories", function()
	modes(function(call, tilde)
		local p = writefile(newpath(), "x")
		T.same({ true }, call(system.removefile, p, tilde))
		T.same({ false }, exists(p))
		fails("no such file or directory", 2, call(system.removefile, p, tilde))
		fails("no such file or directory", 2, call(system.removefile, p, tilde .. "d"))
		local d = newpath()
		assert(system.makedir(d, "rwx", "~"))
		local ok, msg = call(system.removefile, d, tilde)
		assert(ok == false and msg:find("directory", 1, true), msg)
		local inner = writefile(d .. "/inner", "")
		fails("directory not empty", 39, call(system.removefile, d, "d" .. tilde))
		fails("not a directory", 20, call(system.removefile, inner, "d" .. tilde))
		assert(system.removefile(inner, "~"))
		T.same({ true }, call(system.removefile, d, tilde .. "d"))
		T.same({ false }, exists(d))
		-- a symbolic link to a directory is removed as a file
		local target = newpath()
		assert(system.makedir(target, "rwx", "~"))
		local link = newpath()
		assert(system.linkfile(target, link, "~s"))
		T.same({ true }, call(system.removefile, link, tilde))
		T.same({ "directory" }, system.fileinfo(target, "~?"))
	end)
end)

T.case("makedir creates directories with permissions", function()
	modes(function(call, tilde)
		local d = newpath()
		T.same({ true }, call(system.makedir, d, "rwx", tilde))
		T.same({ "directory", 448 }, system.fileinfo(d, "~?"), perm(d))
		fails("file already exists", 17, call(system.makedir, d, 448, tilde))
		local d2 = newpath()
		T.same({ true }, call(system.makedir, d2, 320, tilde))
		T.same({ 320 }, perm(d2))
		fails("no such file or directory", 2, call(system.makedir, newpath() .. "/x/y", 448, tilde))
		fails("not a directory", 20, call(system.makedir, writefile(newpath(), "") .. "/x", 448, tilde))
	end)
end)

T.case("touchfile sets access and modification times", function()
	modes(function(call, tilde)
		local p = writefile(newpath(), "")
		T.same({ true }, call(system.touchfile, p, tilde .. "am", 1000.5, 2000.25))
		T.same({ 1000.5, 2000.25 }, system.fileinfo(p, "~am"))
		T.same({ true }, call(system.touchfile, p, tilde .. "b", 3000))
		T.same({ 3000, 3000 }, system.fileinfo(p, "~am"))
		T.same({ true }, call(system.touchfile, p, tilde .. "m", 42))
		local a, m = system.fileinfo(p, "~am")
		assert(math.abs(a - os.time()) < 10 and m == 42, a)
		T.same({ true }, call(system.touchfile, p, tilde .. "a", 7))
		a, m = system.fileinfo(p, "~am")
		assert(a == 7 and math.abs(m - os.time()) < 10, m)
		T.same({ true }, call(system.touchfile, p, tilde .. "ma", 1, 2))
		T.same({ 2, 1 }, system.fileinfo(p, "~am"))
		T.same({ true }, call(system.touchfile, p, tilde))
		a, m = system.fileinfo(p, "~am")
		assert(math.abs(a - os.time()) < 10 and math.abs(m - os.time()) < 10)
		if tilde == "" then T.same({ true }, async(system.touchfile, p)) end
		fails("no such file or directory", 2, call(system.touchfile, newpath(), tilde .. "b", 1))
		-- `l` sets the times of the link itself
		local link = newpath()
		assert(system.linkfile(p, link, "~s"))
		T.same({ true }, call(system.touchfile, link, (tilde == "" and "l" or "l~") .. "b", 55))
		T.same({ 55, 55 }, system.fileinfo(link, "~lam"))
		assert(system.fileinfo(p, "~m") ~= 55)
		T.same({ true }, call(system.touchfile, link, tilde .. "b", 66))
		T.same({ 66, 55 }, system.fileinfo(p, "~m"), system.fileinfo(link, "~lm"))
	end)
	local p = writefile(newpath(), "")
	argerror(3, "invalid time", system.touchfile, p, "~a", -1)
	argerror(4, "invalid time", system.touchfile, p, "~am", 1, -0.5)
	T.raises("invalid time", system.touchfile, p, "~b", 0 / 0)
	argerror(3, "number expected, got no value", system.touchfile, p, "~a")
	T.raises("number expected, got table", system.touchfile, p, "~m", {})
end)

T.case("ownfile changes owners (as root)", function()
	local p = writefile(newpath(), "")
	local uid, gid = system.fileinfo(p, "~ug")
	if uid ~= 0 then
		print("SKIPPED: ownfile success cases need root")
		return
	end
	modes(function(call, tilde)
		T.same({ true }, call(system.ownfile, p, 65534, 65533, tilde))
		T.same({ 65534, 65533 }, system.fileinfo(p, "~ug"))
		T.same({ true }, call(system.ownfile, p, -1, 65532, tilde))
		T.same({ 65534, 65532 }, system.fileinfo(p, "~ug"))
		T.same({ true }, call(system.ownfile, p, 65531, -1, tilde))
		T.same({ 65531, 65532 }, system.fileinfo(p, "~ug"))
		local link = newpath()
		assert(system.linkfile(p, link, "~s"))
		T.same({ true }, call(system.ownfile, link, 1, 2, tilde .. "l"))
		T.same({ 1, 2 }, system.fileinfo(link, "~lug"))
		T.same({ 65531, 65532 }, system.fileinfo(p, "~ug"))
		T.same({ true }, call(system.ownfile, link, uid, gid, tilde))
		T.same({ uid, gid }, system.fileinfo(p, "~ug"))
		T.same({ 1, 2 }, system.fileinfo(link, "~lug"))
		fails("no such file or directory", 2, call(system.ownfile, newpath(), 0, 0, tilde))
	end)
	argerror(2, "number expected, got nil", system.ownfile, p, nil, nil, "~")
	argerror(3, "number expected, got string", system.ownfile, p, 1, "x", "~")
	T.raises("number has no integer representation", system.ownfile, p, 1.5, 1, "~")
end)

T.case("regression: ids and permissions out of range raise instead of wrapping", function()
	local p = writefile(newpath(), "")
	T.same({ true }, system.grantfile(p, 4095, "~")) -- every bit: the largest
	for _, perm in ipairs({ -1, 4096, 1 << 40, math.mininteger, math.maxinteger }) do
		argerror(2, "out of range", system.grantfile, p, perm, "~")
		argerror(2, "out of range", system.makedir, newpath(), perm, "~")
		argerror(3, "out of range", system.openfile, newpath(), "~wN", perm)
	end
	T.same({ 4095 }, system.fileinfo(p, "~M") & 4095)
	-- (uid_t)-1 means "unchanged" to the OS too
	T.same({ true }, system.ownfile(p, -1, (1 << 32) - 1, "~"))
	for _, id in ipairs({ (1 << 32) + 1234, 1 << 32, -2, math.mininteger }) do
		argerror(2, "out of range", system.ownfile, p, id, -1, "~")
		argerror(3, "out of range", system.ownfile, p, -1, id, "~")
	end
	-- checked before the path is used
	argerror(2, "out of range", system.ownfile, newpath(), (1 << 32) + 1234, 0, "~")
end)

T.case("grantfile sets permissions", function()
	modes(function(call, tilde)
		local p = writefile(newpath(), "")
		T.same({ true }, call(system.grantfile, p, "rw", tilde))
		T.same({ 384 }, perm(p))
		T.same({ true }, call(system.grantfile, p, 4095, tilde))
		T.same({ 4095 }, perm(p))
		T.same({ true }, call(system.grantfile, p, "rwxRWX421USG", tilde))
		T.same({ 4095 }, perm(p))
		fails("no such file or directory", 2, call(system.grantfile, newpath(), 0, tilde))
	end)
end)

T.case("grantfile checks perm, then mode, then the coroutine, then the path", function()
	local p = writefile(newpath(), "")
	-- Every case is a call where nothing can yield, so the coroutine check
	-- would fail too: the first error met must be the one shown.
	local function first(text, ...)
		local ok, msg = unyieldable(system.grantfile, ...)
		assert(not ok and msg:find(text, 1, true), msg)
		return msg
	end
	first("bad argument #2 to 'coutil.system.grantfile' (number expected, got no value)", p)
	first("bad argument #2 to 'coutil.system.grantfile' (unknown perm char (got '?'))", p, "r?", "x")
	first("bad argument #2 to 'coutil.system.grantfile' (number expected, got nil)", {}, nil, "x")
	-- The mode error comes without a `bad argument` prefix.
	local msg = first("unknown mode char (got 'x')", {}, "rw", "x")
	assert(not msg:find("bad argument", 1, true), msg)
	first("unable to yield", {}, 420)
	first("unable to yield", nil, "rw", "")
	-- Blocking: only then the path.
	argerror(1, "string expected, got table", system.grantfile, {}, 420, "~")
	T.same({ 420 }, perm(p))
end)

T.case("listdir iterates names and types", function()
	local d = newpath()
	assert(system.makedir(d, "rwx", "~"))
	writefile(d .. "/file", "")
	assert(system.makedir(d .. "/dir", "rwx", "~"))
	assert(system.linkfile(d .. "/file", d .. "/link", "~s"))
	local expected = { file = "file", dir = "directory", link = "link" }
	modes(function(call, tilde)
		local seen, n = {}, 0
		local res = table.pack(call(system.listdir, d, tilde))
		T.same({ 4 }, res.n)
		assert(tostring(res[1]):find("coutil:dirlist", 1, true))
		T.same({ n = 2 }, res[2], res[3])
		assert(rawequal(res[1], res[4]))
		for name, type in res[1] do
			n = n + 1
			seen[name] = type
		end
		T.same({ 3 }, n)
		for name, type in pairs(expected) do T.same({ type }, seen[name]) end
		T.raises("closed", res[1])
		-- closing before the end
		local list = call(system.listdir, d, tilde)
		T.same({ true }, list() ~= nil)
		do local _ <close> = list end
		T.raises("closed", list)
		for name in call(system.listdir, d, tilde) do
			if name then break end -- the for loop closes the list
		end
		-- an empty directory
		local empty = newpath()
		assert(system.makedir(empty, "rwx", "~"))
		for _ in call(system.listdir, empty, tilde) do error("unexpected entry") end
		-- failures are raised
		T.raises("not a directory", call, system.listdir, d .. "/file", tilde)
		T.raises("no such file or directory", call, system.listdir, newpath(), tilde)
	end)
	local got = {}
	for name, type in system.listdir("/dev", "~") do got[name] = type end
	T.same({ "character" }, got.null)
end)

T.case("operations as an unprivileged user fail with permission errors", function()
	local interp = arg and arg[-1]
	local uid = system.fileinfo(base, "~u")
	if uid ~= 0 then
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
	local private = newpath()
	assert(system.makedir(private, "rwx", "~"))
	assert(system.grantfile(secret, "rw", "~"))
	local script = writefile(d .. "/child.lua", string.format([[
		local system = require "coutil.system"
		local d = %q
		local function show(...) print(select("#", ...), ...) end
		show(system.makedir(d .. "/new", 448, "~"))
		show(system.copyfile(d .. "/secret", d .. "/copy", "~"))
		show(system.removefile(d .. "/secret", "~"))
		show(system.ownfile(d .. "/secret", 0, 0, "~"))
		show(system.grantfile(d .. "/secret", 511, "~"))
		show(system.touchfile(d .. "/secret", "~b", 1))
		show(system.linkfile(d .. "/secret", d .. "/link", "~s"))
		show(system.maketemp(d .. "/tmp", "~"))
		coroutine.wrap(function() show(system.movefile(d .. "/secret", d .. "/moved")) end)()
		system.run()
		show(pcall(system.listdir, %q, "~"))
	]], d, private))
	assert(system.grantfile(script, "rwR4", "~"))
	local cmd = string.format("setpriv --reuid=65534 --regid=65534 --clear-groups %q %q 2>&1", interp, script)
	local pipe = assert(io.popen(cmd))
	local out = pipe:read("a")
	pipe:close()
	local lines = {}
	for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
	local denied = "3\tfalse\tpermission denied\t13"
	local notpermitted = "3\tfalse\toperation not permitted\t1"
	T.same({ denied, denied, denied, notpermitted, notpermitted, notpermitted, denied, denied, denied },
		table.unpack(lines, 1, 9))
	assert(lines[10] and lines[10]:find("permission denied", 1, true), out)
	T.same({ "x" }, readfile(secret))
end)

T.case("explicit resume cancels every path await", function()
	local src = writefile(newpath(), "data")
	local dir = newpath()
	assert(system.makedir(dir, "rwx", "~"))
	local calls = {
		{ system.linkfile, src, newpath() }, { system.copyfile, src, newpath() },
		{ system.movefile, writefile(newpath(), ""), newpath() },
		{ system.removefile, writefile(newpath(), "") }, { system.makedir, newpath(), 448 },
		{ system.maketemp, dir .. "/c" }, { system.maketemp, dir .. "/c", "fo" },
		{ system.listdir, dir }, { system.touchfile, src }, { system.ownfile, src, -1, -1 },
		{ system.grantfile, src, 420 }, { system.fileinfo, src, "?B" },
	}
	for _, c in ipairs(calls) do
		local res, after
		local co = T.spawn(function()
			res = table.pack(c[1](table.unpack(c, 2)))
			after = table.pack(system.fileinfo(src, "B"))
		end)
		T.same({ "suspended" }, coroutine.status(co))
		coroutine.resume(co, "cancelled", nil, 3)
		T.same({ "cancelled", nil, 3, n = 3 }, table.unpack(res, 1, res.n))
		T.same({ "suspended" }, coroutine.status(co))
		T.same({ false }, system.run())
		T.same({ "dead", 4 }, coroutine.status(co), after[1])
	end
	-- the cancelled jobs finished in the background: both temporary files
	local n
	for _ = 1, 500 do
		n = 0
		for _ in system.listdir(dir, "~") do n = n + 1 end
		if n == 2 then break end
		system.suspend(0.01, "~")
	end
	T.same({ 2 }, n)
end)

T.case("a coroutine cancelled at every await can wait again", function()
	local p = writefile(newpath(), "x")
	local results = {}
	local co = T.spawn(function()
		for i = 1, 3 do
			results[i] = table.pack(system.grantfile(p, "rw"))
		end
		results[4] = table.pack(system.grantfile(p, "rwx"))
	end)
	coroutine.resume(co, "a")
	coroutine.resume(co, "b")
	coroutine.resume(co)
	system.run()
	T.same({ "a", n = 1 }, table.unpack(results[1], 1, results[1].n))
	T.same({ "b" }, table.unpack(results[2], 1, results[2].n))
	T.same({ 0 }, results[3].n)
	T.same({ true }, table.unpack(results[4], 1, results[4].n))
	T.same({ 448 }, perm(p))
end)

T.case("many concurrent path operations", function()
	local d = newpath()
	assert(system.makedir(d, "rwx", "~"))
	local done = 0
	for i = 1, 100 do
		T.spawn(function()
			local p = d .. "/f" .. i
			local f = assert(system.openfile(p, "wN", "rw"))
			assert(f:write(string.rep(string.char(i), i)) == i)
			assert(f:close())
			assert(system.copyfile(p, p .. ".copy"))
			assert(system.movefile(p .. ".copy", p .. ".moved"))
			assert(system.fileinfo(p .. ".moved", "B") == i)
			assert(system.removefile(p))
			done = done + 1
		end)
	end
	system.run()
	T.same({ 100 }, done)
	local n = 0
	for name in system.listdir(d, "~") do
		assert(name:match("^f%d+%.moved$"), name)
		n = n + 1
	end
	T.same({ 100 }, n)
end)

rmtree(base)
T.done()
