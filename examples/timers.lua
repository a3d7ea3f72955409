#!/usr/bin/env lua
-- examples/timers.lua: EVFILT_TIMER recipes.
--
--   lua examples/timers.lua
--
-- A timer's ident is any number you pick (timers have their own ident
-- space), `data` is the period, in milliseconds unless fflags names
-- another unit.  Relative timers repeat unless EV_ONESHOT; each event's
-- `data` counts the expirations since the last one was collected.
--
-- Each recipe checks what it sees and prints one line; the lines never
-- depend on how fast the machine is (times are only checked as "not
-- early").  Exit status 1 if a check failed.

-- Find kq in this checkout (../lua, ../build) as well as where
-- `make install` puts it.
local dir = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
package.path = dir .. "/../lua/?.lua;" .. dir .. "/../lua/?/init.lua;"
  .. package.path
package.cpath = dir .. "/../build/?.so;" .. package.cpath

local kq = require("kq")
local socket = require("socket") -- lua-socket: gettime() and sleep()

local TIMER = kq.EVFILT_TIMER
local EV_ADD, EV_DELETE, EV_ONESHOT = kq.EV_ADD, kq.EV_DELETE, kq.EV_ONESHOT
local now = socket.gettime -- wall clock, seconds with a fraction

local failed = false
local function check(ok, line)
  if not ok then failed = true; line = line .. ": FAILED" end
  print(line)
end

-- "Not early", with 2 ms of slack for the granularity of the clocks.
local function not_early(t0, seconds)
  return now() - t0 >= seconds - 0.002
end

local q = assert(kq.kqueue())
local events = {}

-- Register changes and wait for one event (at most 5 s).
local function wait_one(changes)
  local n = assert(q:kevent(changes, events, 1, 5))
  assert(n == 1, "no timer event within 5 s")
  local ev = events[1]
  assert(kq.band(ev.flags, kq.EV_ERROR) == 0, kq.describe(ev))
  return ev
end

-- 1. A oneshot timer: fires once, 50 ms from now, and is then gone.
do
  local t0 = now()
  local ev = wait_one({ kq.change(1, TIMER, EV_ADD + EV_ONESHOT, 0, 50) })
  check(ev.ident == 1 and ev.data == 1 and not_early(t0, 0.050),
    "oneshot: fired once after 50 ms")
  -- The knote went with the delivery: deleting it now is ENOENT.
  local n = q:kevent({ kq.change(1, TIMER, EV_DELETE) }, events, 1, 0)
  -- (2 is ENOENT; an error entry has EV_ERROR set and errno in `data`)
  check(n == 1 and kq.band(events[1].flags, kq.EV_ERROR) ~= 0
    and events[1].data == 2, "oneshot: gone after delivery (ENOENT)")
end

-- 2. A periodic timer: every 20 ms until deleted.  Its schedule does not
-- drift: tick k is due at start + k * 20 ms however late we collect.
do
  local t0 = now()
  local ticks = 0
  local ev = wait_one({ kq.change(2, TIMER, EV_ADD, 0, 20, "tick") })
  ticks = ticks + ev.data
  while ticks < 5 do
    ticks = ticks + wait_one(nil).data
  end
  check(ticks >= 5 and ev.udata == "tick" and not_early(t0, 0.100),
    "periodic: 5 ticks of 20 ms, udata kept")

  -- Not collecting for a while: the expirations add up in one event.
  socket.sleep(0.1)
  ev = wait_one(nil)
  check(ev.data >= 4, "periodic: a late collect counts the missed ticks")
  assert(q:kevent({ kq.change(2, TIMER, EV_DELETE) }))
  check(q:kevent(nil, events, 1, 0.05) == 0, "periodic: quiet once deleted")
end

-- 3. Units: fflags picks one of NOTE_SECONDS, NOTE_MSECONDS (the
-- default), NOTE_USECONDS, NOTE_NSECONDS.  Each of these is 30 ms.
do
  local units = {
    { "NOTE_MSECONDS", kq.NOTE_MSECONDS, 30 },
    { "NOTE_USECONDS", kq.NOTE_USECONDS, 30000 },
    { "NOTE_NSECONDS", kq.NOTE_NSECONDS, 30000000 },
  }
  for i, u in ipairs(units) do
    local name, note, data = u[1], u[2], u[3]
    local t0 = now()
    local ev = wait_one({ kq.change(10 + i, TIMER, EV_ADD + EV_ONESHOT,
      note, data) })
    check(ev.ident == 10 + i and not_early(t0, 0.030),
      string.format("units: %s data=%d fired after 30 ms", name, data))
  end
  -- Where the units are bits (FreeBSD, macOS, kq's Linux engine), two
  -- units at once are rejected (22 is EINVAL).  OpenBSD and NetBSD number
  -- their units instead (SECONDS 1, USECONDS 2, NSECONDS 3): there the
  -- same sum simply means nanoseconds.
  if kq.NOTE_SECONDS + kq.NOTE_USECONDS == kq.NOTE_NSECONDS then
    print("units: here SECONDS+USECONDS is NSECONDS (numbered units)")
  else
    local n = q:kevent({ kq.change(20, TIMER, EV_ADD,
      kq.NOTE_SECONDS + kq.NOTE_USECONDS, 1) }, events, 1, 0)
    check(n == 1 and kq.band(events[1].flags, kq.EV_ERROR) ~= 0
      and events[1].data == 22, "units: two units at once give EINVAL")
  end
end

-- 4. An absolute deadline: NOTE_ABSTIME makes `data` a wall-clock time
-- since the epoch (in the unit given, here milliseconds).  It fires once;
-- add EV_ONESHOT so it is deleted then.  macOS has no NOTE_ABSTIME (it
-- has NOTE_ABSOLUTE, with other units): check that the name exists.
if not kq.NOTE_ABSTIME then
  print("abstime: NOTE_ABSTIME is not on this platform")
else
  local deadline = now() + 0.1
  local ms = math.ceil(deadline * 1000)
  local ev = wait_one({ kq.change(30, TIMER, EV_ADD + EV_ONESHOT,
    kq.NOTE_ABSTIME + kq.NOTE_MSECONDS, ms) })
  check(ev.ident == 30 and now() >= deadline - 0.002,
    "abstime: fired at the wall-clock deadline, not before")
  -- A deadline already past fires at once.
  ev = wait_one({ kq.change(31, TIMER, EV_ADD + EV_ONESHOT,
    kq.NOTE_ABSTIME + kq.NOTE_SECONDS, os.time() - 60) })
  check(ev.ident == 31, "abstime: a deadline in the past fires at once")
end

-- 5. Re-adding a timer restarts it with the new period: the old schedule
-- never fires.
do
  local t0 = now()
  assert(q:kevent({ kq.change(40, TIMER, EV_ADD + EV_ONESHOT, 0, 20) }))
  local ev = wait_one({ kq.change(40, TIMER, EV_ADD + EV_ONESHOT, 0, 80) })
  check(ev.ident == 40 and not_early(t0, 0.080),
    "re-add: the 20 ms timer re-added as 80 ms fired after 80 ms")
end

q:close()
os.exit(failed and 1 or 0)
