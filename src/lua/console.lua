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

local VERSION = _VERSION .. "  Copyright (C) 1994-2024 Lua.org, PUC-Rio"

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
			todo.i = true
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

-- Library globals (spec §2).
local function optional(name)
	-- NOTE: coutil.channel, coutil.coroutine and coutil.threads are not
	-- written yet; their globals stay nil until `require` finds them.
	local ok, module = pcall(require, name)
	if ok then return module end
end
-- The console keeps its own references: scripts may reassign the globals.
local memorylib = require "memory"
local system = require "coutil.system"
local spawn = require "coutil.spawn"
_ENV.memory, _ENV.system, _ENV.spawn = memorylib, system, spawn
event = require "coutil.event"
mutex = require "coutil.mutex"
promise = require "coutil.promise"
queued = require "coutil.queued"
channel = optional "coutil.channel"
stateco = optional "coutil.coroutine"
threads = optional "coutil.threads"
-- NOTE: `vararg` (an external library in the original) is not shipped yet
-- and stays nil.

-- Error values as text, the way `lua` reports them.
local function message(err)
	local kind = type(err)
	if kind == "string" or kind == "number" then return tostring(err) end
	local meta = getmetatable(err)
	if type(meta) == "table" and meta.__tostring then
		local ok, text = pcall(tostring, err)
		if ok and type(text) == "string" then return text end
	end
	return ("(error object is a %s value)"):format(kind)
end

-- Message handlers: level 2 starts the traceback at the raising function.
local status = 0
local function report(err)
	status = 1
	local text = debug.traceback(message(err), 2)
	io.stderr:write(progname, ": ", text, "\n")
	io.stderr:flush()
	return text
end

local function traceback(err)
	return debug.traceback(message(err), 2)
end

function spawn.call(f, ...)
	return spawn.catch(report, f, ...)
end

-- Compile errors become ordinary errors so the reporter shows them and the
-- rest of the command line is skipped.
local function check(chunk, err)
	if not chunk then error(err, 0) end
	return chunk
end

local function isterminal()
	-- NOTE: the internal module answers without making `system.stdin`,
	-- whose socket kinds share O_NONBLOCK with descriptor 0 (see
	-- src/system/stdio.rs), which would break `loadfile()` reading it.
	local ok, console = pcall(require, "coutil.console")
	if ok then return console.isatty() end
	local stdin = system.stdin
	return stdin ~= nil and stdin.winsize ~= nil
end

-- Prompts go to `system.stdout` when it exists. Results printed by `print`
-- sit in the C library's buffer, so flush it first to keep the order.
local function write(text)
	io.stdout:flush()
	local stdout = system.stdout
	if stdout then
		stdout:write(text)
	else
		io.stdout:write(text)
		io.stdout:flush()
	end
end

local function prompt(name, default)
	local text = _ENV[name]
	if type(text) ~= "string" and type(text) ~= "number" then text = default end
	write(tostring(text))
end

-- Returns a function giving the next stdin line without its newline, or nil
-- at the end of input.
local function linereader()
	local stdin = system.stdin
	if not stdin then
		-- NOTE: until `system.stdin` exists, the internal `coutil.console`
		-- reads descriptor 0 on the worker pool (other coroutines keep
		-- running); a state without it falls back to `io.read`, which
		-- blocks the whole state until a line arrives.
		local ok, console = pcall(require, "coutil.console")
		if not ok then return function() return io.read("l") end end
		stdin = {
			read = function(_, buffer)
				local chunk, err = console.readstdin(#buffer)
				if chunk == nil then return false, "end of file" end
				if not chunk then return false, err end
				memorylib.fill(buffer, chunk, 1, #chunk)
				return #chunk
			end,
		}
	end
	-- A read may return part of a line or several lines (pipes), so bytes
	-- past the first newline are kept for the next call.
	local buffer = memorylib.create(512)
	local pending, ended = "", false
	return function()
		while not ended do
			local newline = pending:find("\n", 1, true)
			if newline then
				local line = pending:sub(1, newline - 1)
				pending = pending:sub(newline + 1)
				return line
			end
			local bytes, err = stdin:read(buffer)
			if bytes and bytes > 0 then
				pending = pending .. memorylib.tostring(buffer, 1, bytes)
			else -- streams fail with "end of file", files return 0
				ended = true
				if err and err ~= "end of file" then io.stderr:write("stdin: ", err, "\n") end
			end
		end
		if pending ~= "" then -- a last line without newline
			local line = pending
			pending = ""
			return line
		end
	end
end

local function showresults(ok, ...)
	if not ok then
		io.stderr:write((...), "\n")
	elseif select("#", ...) > 0 then
		local printed, err = pcall(print, ...)
		if not printed then io.stderr:write("error calling 'print' (", message(err), ")\n") end
	end
end

local function repl()
	local readline = linereader()
	while true do
		prompt("_PROMPT", "> ")
		local line = readline()
		if line == nil then break end
		-- An expression shows its values; anything else runs as statements.
		local chunk, err = load("return " .. line, "=stdin")
		if not chunk then
			chunk, err = load(line, "=stdin")
			-- An error at <eof> means the statement is incomplete: read on.
			while not chunk and err:sub(-5) == "<eof>" do
				prompt("_PROMPT2", ">> ")
				local more = readline()
				if more == nil then break end
				line = line .. "\n" .. more
				chunk, err = load(line, "=stdin")
			end
		end
		if chunk then
			showresults(xpcall(chunk, traceback))
		else
			io.stderr:write(err, "\n")
		end
	end
	write("\n") -- leave the terminal's cursor on a fresh line
end

-- Everything the command line asks for, in the order of spec §1.
local function main()
	if todo.v then print(VERSION) end
	if not (todo.E or debug.getregistry().LUA_NOENV) then
		local init = os.getenv("COUTIL_INIT")
		if init then
			if init:sub(1, 1) == "@" then
				check(loadfile(init:sub(2)))()
			else
				check(load(init, "=COUTIL_INIT"))()
			end
		end
	end
	for _, action in ipairs(todo.actions) do
		local option, value = action[1], action[2]
		if option == "-e" then
			check(load(value, "=(command line)"))()
		elseif option == "-l" then
			local global, module = value:match("^([^=]*)=(.*)$")
			if not global then
				module, global = value, value:match("^[^-]*")
			end
			-- Called from C (xpcall), `require` errors carry no position
			-- of ours, as with `lua`; the reporter still gets the traceback.
			local ok, result = xpcall(require, report, module)
			if not ok then return end -- reported: skip the rest
			_ENV[global] = result
		else
			warn("@on")
		end
	end
	local script = todo.script
	if script then
		local name = argv[script]
		-- `-` is stdin, unless `--` made it a file name (as in `lua`).
		if name == "-" and argv[script - 1] ~= "--" then name = nil end
		check(loadfile(name))(table.unpack(argv, script + 1, argv.n))
	elseif not (todo.i or todo.e or todo.v) then
		if isterminal() then
			print(VERSION)
			todo.i = true
		else
			check(loadfile())()
		end
	end
	if todo.i then repl() end
end

spawn.call(main)
system.run()
return status
