-- benchclock.lua - what the Lua contenders (kq_bench.lua, luv_bench.lua,
-- cqueues_bench.lua) share: the CPU time (user + system) of their timed
-- stretches, and the result line the driver reads, as cbench prints it:
--   ns=<per unit> cpu=<per unit> units=<n> [extra]
-- One measurement per process, so the state is the module's.
local bu = require("benchutil")

local clock = {}
local spent, mark = 0, 0

function clock.start() mark = bu.cputime() end
function clock.stop() spent = spent + bu.cputime() - mark end
-- Forget what a warm-up counted.
function clock.reset() spent = 0 end

function clock.report(ns, units, extra)
  io.write(string.format("ns=%.2f cpu=%.2f units=%d%s\n", ns / units,
    spent / units, units, extra and (" " .. extra) or ""))
end

return clock
