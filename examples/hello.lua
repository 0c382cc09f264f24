-- Three workers share a queue of jobs; each job "takes" a while (a timer),
-- and a promise tells the main flow when all the work is done.
-- Run it: coutil examples/hello.lua
local system = require "coutil.system"
local queued = require "coutil.queued"
local promise = require "coutil.promise"

local done, finish = promise.create()
local left = 6

for id = 1, 3 do
	coroutine.wrap(function()
		while left > 0 do
			local _, job = queued.await("jobs")   -- wait for a job
			system.suspend(job / 100)              -- only this worker sleeps
			print(string.format("worker %d finished job %d", id, job))
			left = left - 1
			if left == 0 then finish("all done") end
		end
	end)()
end

for job = 1, 6 do queued.emitone("jobs", job) end
print(done())                                    -- awaits the promise
