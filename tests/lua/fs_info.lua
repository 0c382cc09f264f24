-- spec/files.md §4: the information characters of system.fileinfo and
-- file:info, their types and values, mode errors and raised failures.
local T = require "testlib"
local system = require "coutil.system"
local memory = require "coutil.memory"

local unyieldable, async = T.unyieldable, T.async
local modes = T.modes

local base, newpath = T.tempdir("coutil-fs-info-")
local writefile = T.writefile
local rmtree = T.rmtree

local STAT = "?M_ug#Dd*BbivasmcUGSrwxRWX421"
local FS = "@NIAFfTt"
local ALL = STAT .. "p=" .. FS

local TYPES = {
	["?"] = "string", p = "string", ["@"] = "string",
	a = "float", s = "float", m = "float", c = "float",
	U = "boolean", G = "boolean", S = "boolean", r = "boolean", w = "boolean", x = "boolean",
	R = "boolean", W = "boolean", X = "boolean", ["4"] = "boolean", ["2"] = "boolean", ["1"] = "boolean",
}
local function typeof(v)
	if math.type(v) then return math.type(v) end
	return type(v)
end
local FSNAMES = {}
for name in ([[adfs affs afs anonymous autofs bdevfs befs bfs binfmtfs bpf btrfs
	cgroup cgroup2 cifs coda coh cramfs debugfs devfs devpts ecryptfs efivarfs efs
	ext4 ext2_old ext f2fs fuse hfs hostfs hpfs hugetlbfs isofs jffs2 jfs minix
	minix+ minix2 minix2+ minix3 mqueue msdos mtd ncp nfs nilfs nsfs ntfs_sb ocfs2
	openprom overlayfs pipefs proc pstorefs qnx4 qnx6 ramfs reiserfs romfs
	securityfs selinux smack smb2 smb sockfs squashfs sysfs sysv2 sysv4 tmpfs
	tracefs udf ufs usbdevice v9fs vxfs xenfs xenix xfs xiafs unknown]]):gmatch("%S+") do
	FSNAMES[name] = true
end

local file = writefile(newpath("file"), string.rep("x", 100000))
local link = newpath("link")
assert(system.linkfile(file, link, "~s"))

T.case("every character yields its type", function()
	modes(function(call, tilde)
		for c in ALL:gmatch(".") do
			local v = call(system.fileinfo, file, tilde .. c)
			local expected = TYPES[c] or (c == "=" and "nil" or "integer")
			T.same({ expected }, typeof(v))
		end
		T.same({ "string" }, typeof(call(system.fileinfo, link, tilde .. "=")))
		local f = assert(system.openfile(file, "~r"))
		for c in STAT:gmatch(".") do
			T.same({ TYPES[c] or "integer" }, typeof(call(f.info, f, tilde .. c)))
		end
		f:close("~")
	end)
end)

T.case("all characters at once equal one by one", function()
	modes(function(call, tilde)
		for _, p in ipairs({ file, link, base, "/dev/null" }) do
			for _, prefix in ipairs({ "", "l" }) do
				local all = table.pack(call(system.fileinfo, p, prefix .. tilde .. ALL))
				T.same({ #ALL }, all.n)
				for i = 1, #ALL do
					local c = ALL:sub(i, i)
					local one = call(system.fileinfo, p, tilde .. prefix .. c)
					-- free space may change, and reading a link (`p`, `=`) sets its
					-- access time
					if not ("AFfa"):find(c, 1, true) then
						assert(one == all[i], string.format("%s %q: %s ~= %s", p, c, tostring(one), tostring(all[i])))
					end
				end
			end
		end
		local f = assert(system.openfile(file, "~r"))
		local all = table.pack(call(f.info, f, tilde .. STAT))
		T.same({ #STAT }, all.n)
		for i = 1, #STAT do
			T.same({ all[i] }, call(f.info, f, tilde .. STAT:sub(i, i)))
			T.same({ all[i] }, system.fileinfo(file, "~" .. STAT:sub(i, i)))
		end
		T.same({ 100000, 100000, "file", 100000 }, call(f.info, f, tilde .. "BB?B"))
		T.same({ n = 0 }, call(f.info, f, tilde))
		T.same({ n = 0 }, call(system.fileinfo, file, tilde))
		f:close("~")
	end)
end)

T.case("types, modes and permission bits", function()
	local bits = system.filebits
	local dir = newpath("dir")
	assert(system.makedir(dir, "rwxR", "~"))
	local cases = {
		{ file, "", "file", bits.file }, { dir, "", "directory", bits.directory },
		{ link, "", "file", bits.file }, { link, "l", "link", bits.link },
		{ "/dev/null", "", "character", bits.character },
	}
	local fifo = newpath("fifo")
	if os.execute("mkfifo " .. fifo .. " 2>/dev/null") then
		cases[#cases + 1] = { fifo, "", "pipe", bits.pipe }
	else
		print("SKIPPED: mkfifo is not available for the pipe type")
	end
	local block
	for name, type in system.listdir("/dev", "~") do
		if type == "block" then block = "/dev/" .. name break end
	end
	if block then
		cases[#cases + 1] = { block, "", "block", bits.block }
	else
		print("SKIPPED: no block device in /dev")
	end
	for _, c in ipairs(cases) do
		local path, prefix, name, bit = table.unpack(c)
		local kind, mode = system.fileinfo(path, "~" .. prefix .. "?M")
		T.same({ name, bit }, kind, mode & bits.type)
	end
	local chars = { U = bits.setuid, G = bits.setgid, S = bits.sticky, r = bits.ruser, w = bits.wuser,
		x = bits.xuser, R = bits.rgroup, W = bits.wgroup, X = bits.xgroup, ["4"] = bits.rother,
		["2"] = bits.wother, ["1"] = bits.xother }
	for _, perm in ipairs({ 0, 4095, 420, 448, 2560, 1365, 2730 }) do
		assert(system.grantfile(file, perm, "~"))
		T.same({ perm }, system.fileinfo(file, "~M") & 4095)
		for c, bit in pairs(chars) do
			T.same({ perm & bit ~= 0 }, system.fileinfo(file, "~" .. c))
		end
	end
	assert(system.grantfile(file, "rw", "~"))
	-- a link's own permission bits are all set on Linux
	T.same({ 511 }, system.fileinfo(link, "~lM") & 4095)
end)

T.case("owners, devices, links, sizes and times", function()
	local p = writefile(newpath(), "12345")
	local hard = newpath()
	assert(system.linkfile(p, hard, "~"))
	local u, g, ino, dev, rdev, nlink, size = system.fileinfo(p, "~ug#Dd*B")
	T.same({ u, g, ino, dev, rdev, 2, 5 }, system.fileinfo(hard, "~ug#Dd*B"))
	T.same({ 0, 0, 0 }, rdev, system.fileinfo(p, "~_"), system.fileinfo(p, "~v"))
	T.same({ dev }, system.fileinfo(base, "~D"))
	assert(ino > 0 and dev > 0)
	local f = assert(system.openfile(p, "~r"))
	T.same({ u, g, ino, dev, 2, 5 }, f:info("~ug#D*B"))
	f:close("~")
	-- /dev/null is device 1:3
	T.same({ 259 }, system.fileinfo("/dev/null", "~d"))
	-- blocks and block size
	local blocks, iosize = system.fileinfo(file, "~bi")
	assert(blocks * 512 >= 100000 and iosize > 0, blocks)
	-- times
	assert(system.touchfile(p, "~am", 1234.5, 5678.25))
	local a, s, m, c = system.fileinfo(p, "~asmc")
	T.same({ 1234.5, 5678.25 }, a, m)
	assert(math.abs(s - os.time()) < 60, s)
	assert(c == 0 or math.abs(c - os.time()) < 60, c)
	-- the link count of a directory
	local d = newpath()
	assert(system.makedir(d, "rwx", "~"))
	assert(system.makedir(d .. "/sub", "rwx", "~"))
	local links = system.fileinfo(d, "~*")
	assert(links == 3 or links == 1, links) -- btrfs counts 1 for directories
end)

T.case("canonical paths and link targets", function()
	local real = system.fileinfo(base, "~p")
	assert(real:sub(1, 1) == "/")
	local d = newpath("d")
	assert(system.makedir(d, "rwx", "~"))
	local name = file:match("[^/]+$")
	T.same({ real .. "/" .. name }, system.fileinfo(d .. "/../" .. name, "~p"))
	T.same({ real .. "/" .. name }, system.fileinfo(base .. "/./" .. name, "~p"))
	T.same({ real .. "/" .. name }, system.fileinfo(link, "~p"))
	T.same({ real .. "/" .. name }, system.fileinfo(link, "~lp"))
	local rel = newpath()
	assert(system.linkfile("../relative/target", rel, "~s"))
	T.same({ "../relative/target", "link" }, system.fileinfo(rel, "~l=?"))
	T.same({ "../relative/target" }, system.fileinfo(rel, "~="))
	T.same({ n = 1 }, system.fileinfo(file, "~="))
	T.same({ n = 1 }, system.fileinfo(base, "~l="))
	T.raises("no such file or directory", system.fileinfo, rel, "~p")
	T.raises("no such file or directory", system.fileinfo, rel, "~?")
end)

T.case("file-system values", function()
	modes(function(call, tilde)
		for _, p in ipairs({ base, "/proc", "/dev/null", "/" }) do
			local name, kind, bsize, avail, free, files, blocks, inodes = call(system.fileinfo, p, tilde .. FS)
			assert(FSNAMES[name], name)
			assert(kind ~= 0 and bsize >= 0 and avail <= free and free <= blocks and files <= inodes,
				string.format("%s: %s %d %d %d %d %d %d %d", p, name, kind, bsize, avail, free, files, blocks, inodes))
		end
		T.same({ "proc", 0x9fa0 }, call(system.fileinfo, "/proc", tilde .. "@N"))
		local name, kind = call(system.fileinfo, base, tilde .. "@N")
		if kind == 0xef53 then T.same({ "ext4" }, name) end
		if kind == 0x01021994 then T.same({ "tmpfs" }, name) end
		local f = assert(system.openfile(file, "~r"))
		for c in ("p=" .. FS):gmatch(".") do
			T.raises("unknown mode char (got '" .. c .. "')", f.info, f, tilde .. c)
		end
		f:close("~")
	end)
end)

T.case("mode errors", function()
	local f = assert(system.openfile(file, "~r"))
	T.raises("'~' must be in the begin of 'mode'", system.fileinfo, file, "?~")
	T.raises("'l' must be in the begin of 'mode'", system.fileinfo, file, "~?l")
	T.raises("'~' must be in the begin of 'mode'", f.info, f, "B~")
	T.raises("unknown mode char (got 'l')", f.info, f, "~l?")
	T.same({ "link", "file" }, system.fileinfo(link, "l~?"), system.fileinfo(link, "~~?"))
	for _, c in ipairs({ "z", "o", "\255", "Z", " " }) do
		T.raises("unknown mode char (got '" .. c .. "')", system.fileinfo, file, "~" .. c)
		T.raises("unknown mode char (got '" .. c .. "')", f.info, f, "~" .. c)
	end
	local msg = T.raises("string expected, got no value", system.fileinfo, file)
	assert(msg:find("bad argument #2", 1, true), msg)
	T.raises("string expected, got no value", f.info, f)
	T.raises("string expected, got boolean", system.fileinfo, true, "~?")
	-- the mode is checked before the coroutine
	local ok
	ok, msg = unyieldable(system.fileinfo, file, "y")
	assert(not ok and msg:find("unknown mode char", 1, true), msg)
	ok, msg = unyieldable(system.fileinfo, file, "?")
	assert(not ok and msg:find("unable to yield", 1, true), msg)
	ok, msg = unyieldable(f.info, f, "?")
	assert(not ok and msg:find("unable to yield", 1, true), msg)
	f:close("~")
	T.raises("closed file", f.info, f, "~?")
end)

T.case("failures are raised in both modes", function()
	modes(function(call, tilde)
		local missing = newpath()
		T.raises("no such file or directory", call, system.fileinfo, missing, tilde .. "?")
		T.raises("no such file or directory", call, system.fileinfo, missing, tilde .. "p")
		T.raises("no such file or directory", call, system.fileinfo, missing, tilde .. "@")
		T.raises("no such file or directory", call, system.fileinfo, missing, tilde .. "=")
		T.raises("not a directory", call, system.fileinfo, file .. "/x", tilde .. "B")
		local msg = T.raises("no such file or directory", call, system.fileinfo, missing, tilde .. "l?")
		T.same({ "no such file or directory" }, msg)
	end)
end)

T.case("explicit resume cancels fileinfo and file:info", function()
	local f = assert(system.openfile(file, "~r"))
	for _, c in ipairs({ { system.fileinfo, file, ALL }, { system.fileinfo, newpath(), "?" }, { f.info, f, STAT } }) do
		local res, after
		local co = T.spawn(function()
			res = table.pack(c[1](table.unpack(c, 2)))
			after = table.pack(system.fileinfo(file, "B?"))
		end)
		coroutine.resume(co, 1, 2, 3)
		T.same({ 1, 2, 3 }, table.unpack(res, 1, res.n))
		system.run()
		T.same({ "dead", 100000, "file" }, coroutine.status(co), after[1], after[2])
	end
	f:close("~")
end)

T.case("many concurrent fileinfo calls", function()
	local n, done = 100, 0
	local expected = table.pack(system.fileinfo(file, "~" .. STAT .. "p=@"))
	for _ = 1, n do
		T.spawn(function()
			local got = table.pack(system.fileinfo(file, STAT .. "p=@"))
			for i = 1, expected.n do
				local c = (STAT .. "p=@"):sub(i, i)
				if c ~= "a" then assert(got[i] == expected[i], c) end
			end
			local raised = pcall(system.fileinfo, base .. "/missing", "?")
			assert(raised == false)
			done = done + 1
		end)
	end
	system.run()
	T.same({ n }, done)
end)

rmtree(base)
T.done()
