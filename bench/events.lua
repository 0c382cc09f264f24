-- events: 300 000 round trips between the main chunk and one waiting
-- coroutine. Variant (the argument, default floor):
--   floor    coroutine.yield / coroutine.resume (the floor)
--   emitone  event.await(e) / event.emitone(e)
--   emitall  event.awaitany(e, other) / event.emitall(e)
--   queued   queued.await(e) / queued.emitone(e)
-- With `+` after the variant (`emitone+`), another coroutine waits on a
-- third value the whole time: the registrations of the round trips are
-- then not the only ones of the state.
-- The clock is system.nanosecs in every variant, so all load coutil.system.
local system = require "coutil.system"
local event = require "coutil.event"
local queued = require "coutil.queued"

local rounds = 300000
local variant, busy = (arg[1] or "floor"):match("^(%a+)(%+?)$")
local e, other = {}, {}
local bystander
if busy == "+" then
	bystander = coroutine.create(function() event.await({}) end)
	coroutine.resume(bystander)
end

local wait, emit
if variant == "floor" then
	wait, emit = coroutine.yield, coroutine.resume
elseif variant == "emitone" then
	wait, emit = event.await, event.emitone
elseif variant == "emitall" then
	wait, emit = event.awaitany, event.emitall
elseif variant == "queued" then
	wait, emit = queued.await, queued.emitone
else
	error("unknown variant " .. variant)
end

-- One call per round in every variant (a Lua function adding `other` for
-- awaitany cost that row a Lua call more than the others).
local co = coroutine.create(variant == "emitall" and function()
	for _ = 1, rounds do wait(e, other) end
end or function()
	for _ = 1, rounds do wait(e) end
end)
local target = variant == "floor" and co or e
coroutine.resume(co) -- now waiting

local t0 = system.nanosecs()
for _ = 1, rounds do emit(target) end
local secs = (system.nanosecs() - t0) / 1e9
assert(coroutine.status(co) == "dead")
assert(not bystander or coroutine.status(bystander) == "suspended")
print(string.format("secs %.6f", secs))
print("ops " .. rounds)
