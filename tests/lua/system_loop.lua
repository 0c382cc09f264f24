local T = require "testlib"
local system = require "coutil.system"

T.case("run with nothing pending returns false", function()
	T.same({ false }, system.run())
	T.same({ false }, system.run("step"))
	T.same({ false }, system.run("ready"))
end)

T.case("zero-delay waits run last-in, first-out", function()
	local order = {}
	for _, name in ipairs { "A", "B" } do
		T.spawn(function() system.suspend() order[#order + 1] = name end)
	end
	system.run()
	T.same({ "B", "A" }, table.unpack(order))
end)

T.done()
