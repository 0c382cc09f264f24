-- await.reader (coutil.await): a buffered reader over any object with the
-- stream sockets' `read(buffer, i, j)`. Loaded by await.lua with the
-- native helpers of src/await_lib/reader.rs; returns the `reader`
-- function.
--
-- Each reader has one resizable memory `buf` whose bytes `buf[i..j]` are
-- read but not yet returned, and its methods are closures over that
-- state: a line already in the buffer costs one native call (`scan.line`
-- finds the `\n` and makes the string). Everything else is the slow path:
-- `fill` moves the unread bytes to the front, grows the memory if it is
-- full, and awaits the stream's `read` into the free end. The state only
-- changes after `read` returned bytes, so a method cancelled by an
-- explicit resume (or a deadline) returns the resume's values and loses
-- nothing: the bytes stay buffered for the next call.
local scan = ...

require "_G" -- the basic functions (error, pcall, ...)
local coroutine = require "coroutine"
local math = require "math"
local memory = require "coutil.memory"
local table = require "table"

local error, getmetatable, pcall, select = error, getmetatable, pcall, select
local setmetatable, type = setmetatable, type
local running, status = coroutine.running, coroutine.status
local mathtype, tointeger = math.type, math.tointeger
local pack, unpack = table.pack, table.unpack
local create, resize, tostr = memory.create, memory.resize, memory.tostring
local scanline, scanupto, shift = scan.line, scan.upto, scan.shift

-- The default size of the buffer (LuaSocket's), and how far a line or an
-- `upto` item may make it grow (unless the size given is larger).
local SIZE, LIMIT = 8192, 1 << 20
-- What `line` and `upto` return for an item longer than that (ENOBUFS).
local NOBUFS, ENOBUFS = "no buffer space available", 105
-- The end of stream as `read` reports it (libuv's UV_EOF).
local EOF = 4095

local function typename(value)
	local mt = getmetatable(value)
	if type(mt) == "table" and type(mt.__name) == "string" then return mt.__name end
	return type(value)
end

-- Raises `bad argument` as luaL_argerror words it, at the caller of the
-- function that called this one.
local function argerror(i, name, text)
	error(("bad argument #%d to '%s' (%s)"):format(i, name, text), 3)
end

-- ... is the argument, or nothing when it is missing.
local function typeerror(i, name, expected, ...)
	argerror(i, name, ("%s expected, got %s"):format(expected,
		select("#", ...) == 0 and "no value" or typename((...))))
end

local function index(object, key) return object[key] end

-- The `read` of `stream`, if it has a callable one.
local function readerof(stream)
	local kind = type(stream)
	if kind ~= "table" and kind ~= "userdata" then return nil end
	local ok, read = pcall(index, stream, "read")
	if not ok then return nil end
	if type(read) == "function" then return read end
	local mt = getmetatable(read)
	if type(mt) == "table" and mt.__call ~= nil then return read end
	return nil
end

-- A stream closed before the call raises from its `read`; one closed while
-- its `read` waits returns this: the reader returns it in both cases.
local CLOSED = pack(false, "closed")
local function isclosed(err)
	return err == "closed file"
		or type(err) == "string" and err:sub(-15) == "(closed object)"
end

local readermt = { __name = "coutil:reader" }

local function reader(...)
	local stream, size = ...
	local read = readerof(stream)
	if read == nil then typeerror(1, "reader", "stream", ...) end
	if size == nil then
		size = SIZE
	else
		if type(size) ~= "number" then typeerror(2, "reader", "number", size) end
		size = tointeger(size)
		if size == nil then argerror(2, "reader", "number has no integer representation") end
		if size < 1 then argerror(2, "reader", "out of range") end
	end
	local limit = size > LIMIT and size or LIMIT

	local buf = create()
	resize(buf, size)
	local cap = size -- #buf
	local i, j = 1, 0 -- buf[i..j]: read, not returned yet
	local eof = false -- the stream ended (after buf[j])
	local busy = nil -- the coroutine awaiting the stream in a method

	-- What the stream's `read` into buf[j+1..cap] gave: nil when bytes
	-- came in or the stream ended, false when nothing did (a socket sent
	-- over a share stream, not taken), else what the method returns (a
	-- failure, or the values of an explicit resume).
	local function got(ok, ...)
		busy = nil
		local n = ...
		if not ok then
			if isclosed(n) then return CLOSED end
			error(n, 0)
		end
		if mathtype(n) == "integer" and n >= 1 and n <= cap - j then
			j = j + n
			return nil
		elseif n == false and select(3, ...) == EOF then
			eof = true
			return nil
		elseif n == 0 then
			if select("#", ...) == 1 then -- a file's end
				eof = true
				return nil
			end
			return false
		end
		return pack(...)
	end

	-- Raises if another coroutine awaits in a method of this reader (one
	-- closed meanwhile does not count).
	local function checkbusy()
		if busy == running() or status(busy) == "dead" then
			busy = nil
		else
			error("reader already in use", 3)
		end
	end

	-- Awaits more bytes, making room first: the unread bytes are moved to
	-- the front, and a full buffer grows (doubling, to at least `need`
	-- bytes), unless that passes `max`.
	local function fill(need, max)
		if i > 1 then
			j = shift(buf, i, j)
			i = 1
		end
		if cap < need or j == cap then
			local new = cap * 2
			if new < need then new = need end
			if new > max then new = max end
			if new <= j then return pack(false, NOBUFS, ENOBUFS) end
			resize(buf, new)
			cap = new
		end
		local failed
		repeat
			busy = running()
			failed = got(pcall(read, stream, buf, j + 1, cap))
		until failed ~= false
		return failed
	end

	-- After a slow path: a buffer grown past `size` shrinks back once what
	-- it holds fits.
	local function settle(...)
		if cap > size and j - i < size then
			j = shift(buf, i, j)
			i = 1
			resize(buf, size)
			cap = size
		end
		return ...
	end

	-- The rest of the stream at its end, or nil.
	local function rest()
		if i > j then return nil end
		local s = tostr(buf, i, j)
		i, j = 1, 0
		return s
	end

	-- line and upto when the item is not buffered yet: `scanned` bytes
	-- after `i` hold no end (less `overlap`, the delimiter's length - 1).
	local function slow(find, delim, keep, overlap)
		local scanned = j - i + 1
		while true do
			if eof then return settle(rest()) end
			local failed = fill(0, limit)
			if failed then return settle(unpack(failed, 1, failed.n)) end
			local from = i + scanned - overlap
			if from < i then from = i end
			local s, next
			if delim == nil then
				s, next = find(buf, i, j, keep, from)
			else
				s, next = find(buf, i, j, delim, keep, from)
			end
			if s then
				i = next
				return settle(s)
			end
			scanned = j - i + 1
		end
	end

	local r = setmetatable({}, readermt)

	-- s = r:line([keep])
	function r.line(_, keep)
		if busy then checkbusy() end
		local s, next = scanline(buf, i, j, keep)
		if s then
			i = next
			return s
		end
		return slow(scanline, nil, keep, 0)
	end

	-- s = r:upto(delimiter [, keep])
	function r.upto(...)
		local delim, keep = select(2, ...)
		if type(delim) ~= "string" then typeerror(1, "upto", "string", select(2, ...)) end
		if delim == "" then argerror(1, "upto", "empty delimiter") end
		if busy then checkbusy() end
		local s, next = scanupto(buf, i, j, delim, keep)
		if s then
			i = next
			return s
		end
		return slow(scanupto, delim, keep, #delim - 1)
	end

	-- s = r:read(n)
	function r.read(...)
		local n = select(2, ...)
		if type(n) ~= "number" then typeerror(1, "read", "number", select(2, ...)) end
		n = tointeger(n)
		if n == nil then argerror(1, "read", "number has no integer representation") end
		if n < 0 then argerror(1, "read", "out of range") end
		if busy then checkbusy() end
		if j - i + 1 < n or i > j then
			-- read(0) waits for one byte, so that it tells the end
			local need = n > 0 and n or 1
			while j - i + 1 < need and not eof do
				local failed = fill(need, n > need and n or need)
				if failed then return settle(unpack(failed, 1, failed.n)) end
			end
			if j - i + 1 < n or i > j then return settle(rest()) end
		end
		local s = tostr(buf, i, i + n - 1)
		i = i + n
		return settle(s)
	end

	-- s = r:all()
	function r.all()
		if busy then checkbusy() end
		while not eof do
			local failed = fill(0, math.maxinteger)
			if failed then return settle(unpack(failed, 1, failed.n)) end
		end
		return settle(rest())
	end

	return r
end

return reader
