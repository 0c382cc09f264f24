-- `require "memory"` as in the original Coutil: the same module as
-- `coutil.memory`, from coutil.so (installed by the rockspec; a link to
-- coutil.so would not survive LuaRocks' deployment, and a copy would be a
-- second library whose buffers `coutil.system` does not recognise).
return require "coutil.memory"
