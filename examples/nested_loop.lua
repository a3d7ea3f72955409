#!/usr/bin/env lua
-- examples/nested_loop.lua: a kq queue inside another event loop.
--
--   lua examples/nested_loop.lua [--luv | --cqueues]
--
-- A queue is a descriptor (q:fileno()) that polls readable while it has
-- events waiting, so any loop that can watch a descriptor can drive it:
-- when the loop says "readable", collect with a zero timeout and handle
-- what came.  The outer loop here is luv (libuv; Debian package
-- lua-luv), or cqueues (Debian package lua-cqueues) with --cqueues.  The
-- default is luv, or cqueues when luv is not installed.
--
-- The queue holds a periodic EVFILT_TIMER and an EVFILT_USER event that
-- a timer of the outer loop triggers, so both directions show:
-- kq waking the outer loop, and the outer loop poking kq.

-- Find kq in this checkout (../lua, ../build) as well as where
-- `make install` puts it.
local dir = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
package.path = dir .. "/../lua/?.lua;" .. dir .. "/../lua/?/init.lua;"
  .. package.path
package.cpath = dir .. "/../build/?.so;" .. package.cpath

local kq = require("kq")

local q = assert(kq.kqueue())
local TICK, POKE = 1, 2
assert(q:kevent({
  kq.change(TICK, kq.EVFILT_TIMER, kq.EV_ADD, 0, 30, "tick"), -- every 30 ms
  kq.change(POKE, kq.EVFILT_USER, kq.EV_ADD + kq.EV_CLEAR, 0, 0, "poke"),
}))

-- What the program does with kq events; the loops below only call
-- handle_kq() when the queue is readable.  `later(ms, fn)` is the outer
-- loop's own timer, and `stop()` ends the outer loop.
local ticks, done = 0, false
local later, stop
local events = {}
local function handle_kq()
  -- Timeout 0: the outer loop already knows something is there.
  local n = assert(q:kevent(nil, events, 64, 0))
  for i = 1, n do
    local ev = events[i]
    if ev.udata == "tick" and ticks < 3 then
      ticks = ticks + ev.data -- data: expirations since the last event
      if ticks >= 3 then
        print("kq: 3 timer ticks")
        assert(q:kevent({ kq.change(TICK, kq.EVFILT_TIMER, kq.EV_DELETE) }))
        later(20, function()
          print("outer loop: its timer triggers the kq USER event")
          assert(q:kevent({ kq.change(POKE, kq.EVFILT_USER, 0,
            kq.NOTE_TRIGGER, 7, "poke") }))
        end)
      end
    elseif ev.udata == "poke" then
      print("kq: USER event, data=" .. ev.data)
      done = true
      stop()
    end
  end
end

local function with_luv(uv)
  -- A poll handle on the queue's descriptor; "r" = readable.
  local poll = uv.new_poll(q:fileno())
  local timer = uv.new_timer()
  later = function(ms, fn) timer:start(ms, 0, fn) end
  stop = function()
    poll:stop(); poll:close()
    timer:stop(); timer:close()
  end
  poll:start("r", function(err)
    assert(not err, err)
    handle_kq()
  end)
  -- A safety net: give up after 5 s.
  local guard = uv.new_timer()
  guard:start(5000, 0, function() uv.stop() end)
  guard:unref() -- does not keep the loop alive by itself
  uv.run() -- returns when no handle is left
  guard:close()
  uv.run("nowait") -- let the closes finish
end

local function with_cqueues(cqueues)
  local loop = cqueues.new()
  local pending -- { at = time, fn = function }
  later = function(ms, fn)
    pending = { at = cqueues.monotime() + ms / 1000, fn = fn }
  end
  stop = function() end
  loop:wrap(function()
    -- cqueues.poll() accepts any object with pollfd/events fields.
    local watch = { pollfd = q:fileno(), events = "r" }
    while not done do
      local timeout = pending and math.max(0, pending.at - cqueues.monotime())
      if cqueues.poll(watch, timeout) == watch then
        handle_kq()
      elseif pending and cqueues.monotime() >= pending.at then
        local fn = pending.fn
        pending = nil
        fn()
      end
    end
  end)
  local deadline = cqueues.monotime() + 5
  while not loop:empty() and cqueues.monotime() < deadline do
    assert(loop:step(deadline - cqueues.monotime()))
  end
end

local which = arg[1] or (pcall(require, "luv") and "--luv" or "--cqueues")
if which == "--luv" then
  with_luv(require("luv"))
elseif which == "--cqueues" then
  with_cqueues(require("cqueues"))
else
  io.stderr:write("nested_loop: expected --luv or --cqueues\n")
  os.exit(2)
end
q:close()
print(done and "outer loop: finished" or "outer loop: gave up after 5 s")
os.exit(done and 0 or 1)
