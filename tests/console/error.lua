local function fail() error("boom") end
fail()
print("not reached")
