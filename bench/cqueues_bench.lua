-- cqueues_bench.lua - the cqueues contender (Debian lua-cqueues), Lua 5.4.
--   lua5.4 cqueues_bench.lua ready SECONDS
-- Only scenario 1 fits cqueues' model: one coroutine per socket looping on
-- cqueues.poll({pollfd = fd, events = "r"}); one cq:step() resumes every
-- ready coroutine once (one delivered event each).  cqueues re-arms a
-- descriptor after each wake-up, and its kpoll takes at most 32 epoll
-- results per step (its own fixed buffer): this is its real per-event cost.
local bu = require("benchutil")

local scenario, seconds = arg[1], tonumber(arg[2])
assert(scenario == "ready" and seconds, "usage: cqueues_bench.lua ready SECONDS")
local limit = math.floor(seconds * 1e9)
local now = bu.now
local cqueues = require("cqueues")

local NREADY = 1000

local fds = bu.socketpairs(NREADY)
local cq = cqueues.new()
local count = 0
for i = 1, NREADY do
  bu.write1(fds[2 * i])
  local obj = { pollfd = fds[2 * i - 1], events = "r" }
  cq:wrap(function()
    local poll = cqueues.poll
    while true do
      poll(obj)
      count = count + 1
    end
  end)
end
local function step()
  local before = count
  assert(cq:step())
  return count - before
end
step() -- the coroutines start and poll
for _ = 1, 20 do step() end -- warm-up
count = 0
local clock = require("benchclock")
clock.start()
local t1
local t0 = now()
repeat
  for _ = 1, 10 do
    if step() == 0 then error("a step resumed nothing") end
  end
  t1 = now()
until t1 - t0 >= limit
clock.stop()
clock.report(t1 - t0, count)
