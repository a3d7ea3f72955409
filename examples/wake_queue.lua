#!/usr/bin/env lua
-- examples/wake_queue.lua: waking a queue with EVFILT_USER, and nesting
-- one queue in another.
--
--   lua examples/wake_queue.lua
--
-- EVFILT_USER has no kernel object behind it: a change carrying
-- NOTE_TRIGGER fires it.  That is how one part of a program wakes a
-- queue that another part is waiting on ("there is work for you").
--
-- Here a "worker" queue holds the USER event, and a "main" queue waits on
-- the worker queue itself: a queue is a descriptor, readable while it has
-- events queued, so EVFILT_READ on it nests it (ident = the queue: any
-- object with a fileno() method will do).  A timer in the main queue
-- plays the part of whoever sends the work: when it fires, it triggers
-- the worker's USER event, which wakes the main loop through the nesting.

-- Find kq in this checkout (../lua, ../build) as well as where
-- `make install` puts it.
local dir = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
package.path = dir .. "/../lua/?.lua;" .. dir .. "/../lua/?/init.lua;"
  .. package.path
package.cpath = dir .. "/../build/?.so;" .. package.cpath

local kq = require("kq")

local USER, READ, TIMER = kq.EVFILT_USER, kq.EVFILT_READ, kq.EVFILT_TIMER
local EV_ADD, EV_CLEAR, EV_ONESHOT = kq.EV_ADD, kq.EV_CLEAR, kq.EV_ONESHOT
local NOTE_TRIGGER, NOTE_FFOR, NOTE_FFLAGSMASK =
  kq.NOTE_TRIGGER, kq.NOTE_FFOR, kq.NOTE_FFLAGSMASK

local worker = assert(kq.kqueue())
local main = assert(kq.kqueue())

-- The wake-up event.  EV_CLEAR: it fires once per trigger (triggers that
-- come before it is collected merge into one event).  Creating it never
-- fires it; only a later NOTE_TRIGGER does.
local WAKE = 1
assert(worker:kevent({ kq.change(WAKE, USER, EV_ADD + EV_CLEAR, 0, 0,
  "wake") }))

-- The main queue watches the worker queue, and a 50 ms timer.
assert(main:kevent({
  kq.change(worker, READ, EV_ADD, 0, 0, "worker queue"),
  kq.change(1, TIMER, EV_ADD + EV_ONESHOT, 0, 50, "timer"),
}))

-- fflags of a USER event carry 24 bits of your own: NOTE_FFOR ORs them
-- into what is stored, NOTE_FFAND, NOTE_FFCOPY replace; `data` is yours
-- too.  Two kinds of work, as two bits.
local JOB_A, JOB_B = 0x1, 0x2

-- Every change to a knote replaces its udata, so the triggers pass it
-- again.
local function trigger(bits, data)
  assert(worker:kevent({ kq.change(WAKE, USER, 0,
    kq.bor(NOTE_TRIGGER, NOTE_FFOR, bits), data, "wake") }))
end

local events, inner = {}, {}
local rounds = 0
while rounds < 2 do
  local n = assert(main:kevent(nil, events, 8, 5))
  assert(n > 0, "nothing happened within 5 s")
  for i = 1, n do
    local ev = events[i]
    if ev.udata == "timer" then
      print("main: timer fired, triggering the worker twice")
      -- Two triggers before anyone looks: they merge into one event
      -- whose fflags hold both bits and whose data is the last one's.
      trigger(JOB_A, 10)
      trigger(JOB_B, 20)
    elseif ev.udata == "worker queue" then
      -- `data` is how many events wait in the worker queue.
      print(string.format("main: the worker queue is readable, %d event(s)",
        ev.data))
      local m = assert(worker:kevent(nil, inner, 8, 0))
      for j = 1, m do
        local w = inner[j]
        local bits = kq.band(w.fflags, NOTE_FFLAGSMASK)
        print(string.format("worker: %s fflags=0x%x data=%d", w.udata, bits,
          w.data))
        rounds = rounds + 1
        if rounds == 1 then
          -- Clear the stored bits (NOTE_FFCOPY with 0) and wake it once
          -- more, from here this time.
          assert(worker:kevent({ kq.change(WAKE, USER, 0, kq.NOTE_FFCOPY, 0,
            "wake") }))
          trigger(JOB_A, 30)
        end
      end
    end
  end
end

-- Nothing is left: the worker queue is empty, so not readable.
print("main: idle: " .. tostring(main:kevent(nil, events, 8, 0) == 0))
