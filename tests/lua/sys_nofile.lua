-- Running out of descriptors (spec/README.md §4, issue "descriptor
-- exhaustion"): every await function returns `false, "too many open
-- files", 24` instead of raising, and no coroutine is lost: later awaits
-- of the same coroutine are resumed. Each case runs in a child interpreter
-- under `ulimit -n`, which fills its descriptors before the loop made its
-- poll, so the first call needing a worker or the poll meets EMFILE.
local T = require "testlib"
local system = require "coutil.system"

local luachild = T.luachild

-- Runs `body` (Lua code, see T.luachild; `fill()` and `free()` are
-- defined) in a child limited to 64 descriptors; returns its output and
-- exit status.
local function limited(body)
	local code = luachild([[
		local held = {}
		function fill()
			while true do
				local f = io.open("/dev/null")
				if not f then break end
				held[#held + 1] = f
			end
		end
		function free(n)
			for _ = 1, n or #held do
				local f = table.remove(held)
				if not f then break end
				f:close()
			end
		end
		local function same(label, ...)
			local r = table.pack(...)
			print(label, tostring(r[1]) .. "," .. tostring(r[2]) .. "," .. tostring(r[3]))
		end
		_ENV.same = same
	]] .. body)
	local path = os.tmpname()
	local script = io.open(path, "w")
	script:write(code)
	script:close()
	local out = os.tmpname()
	local status, result
	T.async(function()
		status, result = system.execute{
			execfile = "/bin/sh",
			arguments = { "-c", 'ulimit -n 64 && exec "$0" "$1" >"$2" 2>&1', arg[-1], path, out },
		}
	end)
	local f = io.open(out)
	local text = f:read("a")
	f:close()
	os.remove(path)
	os.remove(out)
	return text, status, result
end

-- Lines `label result` of `text` as a table.
local function results(text)
	local t = {}
	for label, value in text:gmatch("(%S+)\t([^\n]*)") do t[label] = value end
	return t
end

local FAIL = "false,too many open files,24"

T.case("worker functions return the failure, then work again", function()
	local text, status, code = limited [[
		local dir = os.tmpname()
		os.remove(dir)
		assert(system.makedir(dir, "rwx", "~"))
		local file = dir .. "/f"
		assert(system.openfile(file, "~wN", "rw")):close("~")
		fill()
		same("openfile", system.openfile(file))
		same("maketemp", system.maketemp(dir .. "/t"))
		same("listdir", system.listdir(dir))
		same("fileinfo", system.fileinfo(file, "B"))
		same("copyfile", system.copyfile(file, file .. ".copy"))
		same("findaddr", system.findaddr("localhost", "80"))
		same("random", system.random(memory.create(4)))
		same("awaitsig", system.awaitsig("userdef2"))
		same("suspend", system.suspend(0)) -- needs no descriptor
		free(8)
		same("again", system.fileinfo(file, "B"))
		same("random2", (system.random(memory.create(4))) ~= false, nil, nil)
		free()
		assert(system.removefile(file, "~"))
		assert(system.removefile(dir, "~d"))
		print("done", "ok")
	]]
	local r = results(text)
	T.same({ "exit", 0, "" }, status, code, code == 0 and "" or text)
	for _, f in ipairs({ "openfile", "maketemp", "listdir", "fileinfo", "copyfile", "findaddr", "random", "awaitsig" }) do
		T.same({ FAIL }, r[f] or text)
	end
	T.same({ "true,nil,nil" }, r.suspend)
	T.same({ "0,nil,nil" }, r.again)
	T.same({ "true,nil,nil" }, r.random2)
	T.same({ "ok" }, r.done)
end)

T.case("awaitch and system.resume return the failure", function()
	local text, status, code = limited [[
		local channel = require "coutil.channel"
		local stateco = require "coutil.coroutine"
		local ch = channel.create("nofile")
		local co = assert(stateco.load("return 1"))
		fill()
		same("awaitch", system.awaitch(ch, "in"))
		same("resume", system.resume(co))
		free()
		same("resume2", system.resume(co))
		ch:close()
		print("done", "ok")
	]]
	local r = results(text)
	T.same({ "exit", 0, "" }, status, code, code == 0 and "" or text)
	T.same({ FAIL }, r.awaitch or text)
	T.same({ FAIL }, r.resume or text)
	T.same({ "true,1,nil" }, r.resume2 or text)
	T.same({ "ok" }, r.done or text)
end)

T.case("a coroutine whose await failed is resumed by its next one", function()
	local text, status, code = limited [[
		local file = os.tmpname()
		fill()
		local steps = {}
		local co = coroutine.create(function()
			steps[#steps + 1] = table.concat({ tostring(system.fileinfo(file, "B")) }, ",")
			steps[#steps + 1] = tostring(system.suspend(0.01))
			steps[#steps + 1] = tostring(system.fileinfo(file, "B"))
		end)
		coroutine.resume(co)
		free()
		system.run()
		os.remove(file)
		print("steps", table.concat(steps, ";"))
		print("status", coroutine.status(co))
	]]
	local r = results(text)
	T.same({ "exit", 0, "" }, status, code, code == 0 and "" or text)
	T.same({ "false;true;0" }, r.steps or text)
	T.same({ "dead" }, r.status or text)
end)

T.done()
