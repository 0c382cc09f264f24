-- Minimal console (placeholder): runs the script given as first argument
-- inside a coroutine under system.run.
local progname, script = ...
local system = require "coutil.system"
local co = coroutine.create(function() return dofile(script) end)
local ok, err = coroutine.resume(co)
if not ok then io.stderr:write(progname, ": ", tostring(err), "\n") return false end
system.run()
return true
