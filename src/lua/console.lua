-- The `coutil` command (spec/console.md): a `lua`-like interpreter that runs
-- all its work (COUTIL_INIT, -e/-l, the script, the REPL) inside ONE
-- coroutine while `system.run` drives the event loop, so top-level code may
-- call await functions directly. The process ends when that coroutine and
-- every coroutine awaiting a system operation are done.
--
-- It is started in one of two ways:
-- * by src/bin/coutil.rs, which passes a single table: the process
--   arguments with argv[0] at index 0. A command line can only give
--   strings, so a table is an unambiguous "we are the command" marker;
-- * as a plain Lua chunk, e.g. `pool:dofile(path, "t", "-W", "w.lua", i)`
--   (spec §5): `...` is the argument list and the chunk's own source names
--   the program. Such states start nearly empty, so everything is required
--   here rather than assumed preloaded.
--
-- Returns the exit status: 0, or 1 once an error was reported with the
-- program name (the original always returned 0; spec §4 allows non-zero).

-- The standard libraries as globals (spec §2): a state running this chunk
-- as a pool task starts with `require` only.
require "_G"
for _, name in ipairs { "coroutine", "debug", "io", "math", "os", "package", "string", "table", "utf8" } do
	_ENV[name] = require(name)
end

local argv = ...
local progname
if type(argv) == "table" then
	progname = argv[0] or "coutil" -- argv[0] may be absent with a bare execve
	argv.n = #argv
else
	local info = debug.getinfo(1, "S")
	progname = info.source:match("^[@=](.*)") or info.short_src
	argv = table.pack(...)
	argv[0] = progname
end

local OPTIONS = [[
Available options are:
  -e stat   run the Lua statement 'stat'
  -l mod    require module 'mod' into global 'mod' (cut before any '-')
  -l g=mod  require module 'mod' into global 'g'
  -i        enter the interactive console after running 'script'
  -v        print the version line
  -E        ignore the environment variable COUTIL_INIT
  -W        turn warnings on
  --        stop handling options
  -         stop handling options and run stdin
]]

local function usage(fmt, option)
	io.stderr:write(progname, ": ", fmt:format(option), "\n",
		"usage: ", progname, " [options] [script [args]]\n", OPTIONS)
	io.stderr:flush()
end

-- Reads the whole command line before anything runs, so that a usage error
-- runs nothing at all. Returns nil after reporting such an error.
local function parseoptions()
	local todo = { actions = {} } -- -e, -l and -W, kept in command-line order
	local i = 1
	while i <= argv.n do
		local a = argv[i]
		-- Arguments handed to a chunk (§5) need not be strings; any
		-- non-string is a script name, like any word not starting with '-'.
		if type(a) ~= "string" or a:sub(1, 1) ~= "-" or a == "-" then break end
		if a == "--" then
			i = i + 1
			break
		end
		local option = a:sub(1, 2)
		if option == "-e" or option == "-l" then
			local value = a:sub(3)
			if value == "" then -- value in the next argument
				i = i + 1
				value = argv[i]
				-- As `lua` does, an option-like word is not taken as a value.
				if value == nil or (type(value) == "string" and value:sub(1, 1) == "-") then
					return usage("'%s' needs argument", a)
				end
				value = tostring(value)
			end
			todo.actions[#todo.actions + 1] = { option, value }
			todo.e = todo.e or option == "-e"
		elseif a == "-i" then
			todo.i, todo.v = true, true -- as in `lua`, -i shows the version
		elseif a == "-v" then
			todo.v = true
		elseif a == "-E" then
			todo.E = true
		elseif a == "-W" then
			todo.actions[#todo.actions + 1] = { a }
		else
			return usage("unrecognized option '%s'", a)
		end
		i = i + 1
	end
	if i <= argv.n then todo.script = i end
	return todo
end

local todo = parseoptions()
if not todo then return 1 end

-- `arg` as `lua` builds it: the script at 0, its arguments positive, the
-- program and options negative. Without a script everything is positive.
do
	local base = todo.script or 0
	local t = {}
	for i = 0, argv.n do t[i - base] = argv[i] end
	arg = t
end

-- Library globals (spec §2). The console keeps its own references:
-- scripts may reassign the globals.
local memorylib = require "memory"
local system = require "coutil.system"
local spawn = require "coutil.spawn"
_ENV.memory, _ENV.system, _ENV.spawn = memorylib, system, spawn
event = require "coutil.event"
mutex = require "coutil.mutex"
promise = require "coutil.promise"
queued = require "coutil.queued"
channel = require "coutil.channel"
stateco = require "coutil.coroutine"
threads = require "coutil.threads"
-- NOTE: `vararg` (an external library in the original) is not shipped and
-- stays nil.
local console = require "coutil.console"

-- The version line: ours, then the exact Lua release as `lua -v` shows it
-- (`console.copyright` is the vendored Lua's; a host interpreter only
-- tells `_VERSION`).
local VERSION = system._COUTIL .. " on "
	.. (console.copyright or _VERSION .. "  Copyright (C) 1994-2024 Lua.org, PUC-Rio")

local status = 0
local function errorline(text)
	io.stderr:write(progname, ": ", text, "\n")
	io.stderr:flush()
end

-- Error reports as `lua` makes them (lua.c's msghandler): a string (or
-- number) gets a traceback; an object with `__tostring` is shown by it
-- alone; any other value is named by its type, with a traceback. The
-- traceback stops at `f`, the function the command called: the frames of
-- the command's own machinery below it are cut, and lua.c's bottom frame
-- `[C]: in ?` is written instead when `bottom` is set.
local function errortext(err, f, bottom)
	local text
	if type(err) == "string" or type(err) == "number" then
		text = tostring(err)
	else
		local meta = getmetatable(err)
		if type(meta) == "table" and meta.__tostring then
			local ok, shown = pcall(tostring, err)
			if ok and type(shown) == "string" then return shown end
		end
		text = ("(error object is a %s value)"):format(type(err))
	end
	-- Level 1 is this function, 2 the message handler, 3 the function that
	-- raised. Each level below `f` is one line of the traceback (two after
	-- a tail call). `f` is near the bottom, so look up from there: with a
	-- deep stack (an overflow) a walk from the top would take too long.
	local low, high = 3, 4
	while debug.getinfo(high, "l") do low, high = high, high * 2 end
	while low < high do -- the first level that does not exist
		local middle = (low + high) // 2
		if debug.getinfo(middle, "l") then low = middle + 1 else high = middle end
	end
	local cut, found = 0, false
	for level = high - 1, math.max(3, high - 32), -1 do
		local info = debug.getinfo(level, "ft")
		if info.func == f then
			found = true
			break
		end
		cut = cut + (info.istailcall and 2 or 1)
	end
	if not found then cut = 0 end -- keep it all
	text = debug.traceback(text, 3)
	for _ = 1, cut do text = text:match("^(.*)\n[^\n]*$") or text end
	return bottom and text .. "\n\t[C]: in ?" or text
end

-- Runs f(...) in the calling coroutine; returns `true` and the results or
-- `false` and the report of the error.
local function docall(f, ...)
	return xpcall(f, function(err)
		local text = errortext(err, f, true) -- not a tail call: see levels
		return text
	end, ...)
end

function spawn.call(f, ...)
	return spawn.catch(function(err)
		status = 1
		errorline(errortext(err, f))
	end, f, ...)
end

-- Runs a chunk the way `lua` does: a load error is one line; a run-time
-- error is reported with its traceback. Returns whether it went well.
local function dochunk(chunk, err, ...)
	if chunk then
		local ok, report = docall(chunk, ...)
		if ok then return true end
		err = report
	end
	status = 1
	errorline(err)
	return false
end

local function stdinclosed()
	if not console.stdinclosed() then return false end
	status = 1
	errorline("cannot read stdin: standard input is closed")
	return true
end

-- Everything the command line asks for, in the order of spec §1. Returns
-- early after a reported error.
local function main()
	if todo.v then print(VERSION) end
	if not (todo.E or debug.getregistry().LUA_NOENV) then
		local init = os.getenv("COUTIL_INIT")
		if init then
			local ok
			if init:sub(1, 1) == "@" then
				ok = dochunk(loadfile(init:sub(2)))
			else
				ok = dochunk(load(init, "=COUTIL_INIT"))
			end
			if not ok then return end
		end
	end
	for _, action in ipairs(todo.actions) do
		local option, value = action[1], action[2]
		if option == "-e" then
			if not dochunk(load(value, "=(command line)")) then return end
		elseif option == "-l" then
			local global, module = value:match("^([^=]*)=(.*)$")
			if not global then
				module, global = value, value:match("^[^-]*")
			end
			local ok, result = docall(require, module)
			if not ok then return dochunk(nil, result) end
			_ENV[global] = result
		else
			warn("@on")
		end
	end
	local script = todo.script
	if script then
		local name = argv[script]
		-- `-` is stdin, unless `--` made it a file name (as in `lua`).
		if name == "-" and argv[script - 1] ~= "--" then
			if stdinclosed() then return end
			name = nil
		end
		local chunk, err = loadfile(name)
		if not dochunk(chunk, err, table.unpack(argv, script + 1, argv.n)) then return end
	elseif not (todo.i or todo.e or todo.v) then
		if stdinclosed() then return end
		if console.isatty() then
			print(VERSION)
			todo.i = true
		else
			if not dochunk(loadfile()) then return end
		end
	end
	if todo.i and not stdinclosed() then
		local repl = console.repl()
		repl { system = system, console = console, memory = memorylib, docall = docall, progname = progname }
	end
end

-- What a suspended coroutine waits in, for a main chunk that nothing is
-- left to resume: the function its code called last (by the name `lua`'s
-- tracebacks give: a field of a loaded module, else the caller's name for
-- it) and where it called it.
local function waitingin(co)
	local level, callee = 0, {}
	while true do
		local info = debug.getinfo(co, level, "fnSl")
		if not info then break end
		if info.what ~= "C" and not info.source:match("^=coutil") then
			local name
			for modname, module in pairs(package.loaded) do
				if type(module) == "table" then
					for key, value in pairs(module) do
						if value == callee.func and type(key) == "string" then
							name = (modname == "_G" and "" or modname .. ".") .. key
						end
					end
				end
			end
			if name then
				name = ("function '%s'"):format(name)
			elseif callee.name then
				name = ("%s '%s'"):format(callee.namewhat, callee.name)
			end
			return ("%s:%d: main chunk waits forever in %s"):format(info.short_src, info.currentline, name or "?")
		end
		callee, level = info, level + 1
	end
	return "main chunk waits forever"
end

local mainco = spawn.call(main)
-- `run` returns `true` if waits are left, i.e. `system.halt` ended it.
if not system.run() and coroutine.status(mainco) == "suspended" then
	errorline(waitingin(mainco) .. " (nothing left could resume it)")
end
return status
