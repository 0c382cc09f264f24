-- The `coutil` command's interactive console (spec/console.md §3), run by
-- the console chunk (src/lua/console.lua) inside its coroutine, so that the
-- lines may call await functions. Compiled by `console.repl()` (from
-- `coutil.console`) and called with what it shares with the console chunk.
--
-- Two ways to read lines, neither stopping the loop: when standard input
-- and output are terminals (and the command's line editor exists),
-- `console.readline` edits the line on the worker pool, with history kept
-- in ~/.coutil_history; otherwise the prompt is written and the bytes are
-- read from `system.stdin` (or `console.readstdin` on the worker pool).
--
-- Ctrl-C while a statement runs interrupts it (see src/console/interrupt.rs
-- for the signal side): the statement runs in this coroutine, and a helper
-- coroutine waits in `console.awaitint` meanwhile, to resume this one when
-- it is suspended in an await, so that the interrupting hook fires.

local ctx = ...
local system, console, memorylib = ctx.system, ctx.console, ctx.memory
local docall, progname = ctx.docall, ctx.progname

local function complain(text)
	io.stderr:write(progname, ": ", text, "\n")
	io.stderr:flush()
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

-- A function giving the next line of a stream without its newline, or nil
-- at the end of input.
local function streamreader()
	local stdin = system.stdin
	if not stdin then
		-- Standard input the library has no object for (e.g. /dev/null):
		-- read descriptor 0 on the worker pool.
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
				if err and err ~= "end of file" then complain("cannot read stdin: " .. err) end
			end
		end
		if pending ~= "" then -- a last line without newline
			local line = pending
			pending = ""
			return line
		end
	end
end

-- read(prompt) gives a line, nil at the end of input, or false when Ctrl-C
-- abandoned the line; keep(text) records a statement in the history.
local read, keep
if console.readline and console.isatty(0) and console.isatty(1) then
	local home = os.getenv("HOME")
	local file = home and home ~= "" and home .. "/.coutil_history"
	if file then
		local ok, err = console.history(file)
		if not ok then
			complain(("history not kept in %s: %s"):format(file, err))
			file = nil
		end
	end
	function read(prompt)
		io.stdout:flush()
		local line, err = console.readline(prompt)
		if line == false and err ~= "interrupted" then
			complain("cannot read stdin: " .. err)
			return nil
		end
		return line
	end
	function keep(text)
		if text:find("%S") then
			local ok, err = console.addhistory(text)
			if not ok and file then
				complain(("history not saved in %s: %s"):format(file, err))
				file = nil
			end
		end
	end
else
	local readline = streamreader()
	function read(prompt)
		write(prompt)
		return readline()
	end
	function keep() end
end

local function prompt(name, default)
	local text = _ENV[name]
	if type(text) ~= "string" and type(text) ~= "number" then text = default end
	return tostring(text)
end

-- The statement being run and the helper that may interrupt it.
local running, helper
local function interrupter()
	if console.awaitint() and helper == coroutine.running()
		and coroutine.status(running) == "suspended" then
		coroutine.resume(running) -- cancels its await: the hook fires
	end
end

local function run(chunk)
	running = coroutine.running()
	console.catchint(running)
	helper = coroutine.create(interrupter)
	coroutine.resume(helper)
	local results = table.pack(docall(chunk))
	console.releaseint()
	if coroutine.status(helper) == "suspended" then coroutine.close(helper) end
	helper = nil
	return results
end

local function show(results)
	if not results[1] then
		io.stderr:write(tostring(results[2]), "\n")
	elseif results.n > 1 then
		local printed, err = pcall(print, table.unpack(results, 2, results.n))
		if not printed then complain(("error calling 'print' (%s)"):format(tostring(err))) end
	end
end

-- Reads a whole statement: `return <line>` if that compiles (expressions
-- show their values), else the lines until they compile or fail other
-- than at <eof>. Returns the chunk or nil and the error; nil, nil when the
-- statement was abandoned; nothing at the end of input.
local function statement()
	local line = read(prompt("_PROMPT", "> "))
	if line == nil then return end
	if line == false then return nil, nil end
	local chunk, err = load("return " .. line, "=stdin")
	if not chunk then
		-- Lua 5.5's lua warns of a statement starting with `local`.
		if _VERSION ~= "Lua 5.4" and (line:find("^[ \t]*local[ \t]") or line:find("^[ \t]*local$")) then
			io.stderr:write("warning: locals do not survive across lines in interactive mode\n")
			io.stderr:flush()
		end
		chunk, err = load(line, "=stdin")
		while not chunk and err:sub(-5) == "<eof>" do
			local more = read(prompt("_PROMPT2", ">> "))
			if more == false then return nil, nil end
			if more == nil then break end
			line = line .. "\n" .. more
			chunk, err = load(line, "=stdin")
		end
	end
	keep(line)
	return chunk, err
end

while true do
	local results = table.pack(statement())
	if results.n == 0 then break end
	local chunk, err = results[1], results[2]
	if chunk then
		show(run(chunk))
	elseif err then
		io.stderr:write(err, "\n")
	end
end
write("\n") -- leave the terminal's cursor on a fresh line
