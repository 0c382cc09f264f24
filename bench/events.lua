-- events: 300 000 round trips between the main chunk and one waiting
-- coroutine. Variant (the argument, default floor):
--   floor    coroutine.yield / coroutine.resume (the floor)
--   emitone  event.await(e) / event.emitone(e)
--   emitall  event.awaitany(e, other) / event.emitall(e)
--   queued   queued.await(e) / queued.emitone(e)
-- The clock is system.nanosecs in every variant, so all load coutil.system.
local system = require "coutil.system"
local event = require "coutil.event"
local queued = require "coutil.queued"

local rounds = 300000
local variant = arg[1] or "floor"
local e, other = {}, {}

local wait, emit
if variant == "floor" then
	wait, emit = coroutine.yield, coroutine.resume
elseif variant == "emitone" then
	wait, emit = event.await, event.emitone
elseif variant == "emitall" then
	local awaitany = event.awaitany
	wait, emit = function(x) return awaitany(x, other) end, event.emitall
elseif variant == "queued" then
	wait, emit = queued.await, queued.emitone
else
	error("unknown variant " .. variant)
end

local co = coroutine.create(function()
	for _ = 1, rounds do wait(e) end
end)
local target = variant == "floor" and co or e
coroutine.resume(co) -- now waiting

local t0 = system.nanosecs()
for _ = 1, rounds do emit(target) end
local secs = (system.nanosecs() - t0) / 1e9
assert(coroutine.status(co) == "dead")
print(string.format("secs %.6f", secs))
print("ops " .. rounds)
