-- kq_bench.lua - the kq-from-Lua contender (build/kq/core.so via
-- require "kq").  Run by bench/driver.lua, under any Lua (5.1 to 5.4,
-- LuaJIT):
--   lua5.4 kq_bench.lua SCENARIO SECONDS [N]
-- prints "ns=<per unit> cpu=<per unit> units=<n> [fds=<n>] [bytes=<n>]"
-- like cbench.
local bu = require("benchutil")

local scenario, seconds, nparam = arg[1], tonumber(arg[2]), tonumber(arg[3])
assert(scenario and seconds, "usage: kq_bench.lua SCENARIO SECONDS [N]")
local limit = math.floor(seconds * 1e9)
local floor = math.floor
local now = bu.now

local NREADY, EVCAP, NREG, CHUNK = 1000, 1024, 10000, 1000

-- For the timer scenario the descriptors are counted before kq loads.
local fds_at_start = bu.fdcount()
local kq = require("kq")

-- CPU time of the timed stretches and the result line (benchclock.lua).
local clock = require("benchclock")
local cpu_start, cpu_stop, report = clock.start, clock.stop, clock.report

local function check(got, want, what, msg)
  if got ~= want then
    error(string.format("%s: got %s, want %s %s", what, tostring(got),
      tostring(want), tostring(msg or "")), 2)
  end
end

-- Register changes in changelists of CHUNK; errors raise.
local function apply(q, lists, evl, room)
  for i = 1, #lists do
    local n, msg = q:kevent(lists[i], evl, room, 0)
    check(n, 0, "kevent changes", msg)
  end
end

local function chunked(changes)
  local lists = {}
  for i = 1, #changes, CHUNK do
    local l = {}
    for j = i, math.min(i + CHUNK - 1, #changes) do l[#l + 1] = changes[j] end
    lists[#lists + 1] = l
  end
  return lists
end

-- Scenarios 1 and 2: 1,000 always-readable sockets, level-triggered READ.
-- The eventlist is a kq.eventlist() (read-only views that kq rewrites
-- only where an event changed), or with `plain` a plain table whose six
-- fields kq writes for every event.
local function ready(with_data, plain)
  local fds = bu.socketpairs(NREADY)
  local q = assert(kq.kqueue())
  local ch = {}
  for i = 1, NREADY do
    bu.write1(fds[2 * i])
    ch[i] = { ident = fds[2 * i - 1], filter = kq.EVFILT_READ, flags = kq.EV_ADD }
  end
  apply(q, { ch })
  local evl = plain and {} or kq.eventlist()
  local sum, events = 0, 0
  local function wait()
    local n = q:kevent(nil, evl, EVCAP)
    check(n, NREADY, "kevent")
    local s = 0
    if with_data then
      for i = 1, n do s = s + evl[i].data end
    else
      for i = 1, n do s = s + evl[i].ident end
    end
    sum = sum + s
    return n
  end
  -- The Lua heap, with the collector stopped, grows by what the timed
  -- loop allocates: 0 on the no-allocation path.  (The warm-up comes
  -- after the collection, which shrinks the Lua stack that a call of
  -- 1,000 events grows once.)
  collectgarbage("collect")
  collectgarbage("stop")
  for _ = 1, 20 do wait() end -- warm-up
  sum = 0
  local heap0 = collectgarbage("count")
  cpu_start()
  local t1
  local t0 = now()
  repeat
    for _ = 1, 10 do events = events + wait() end
    t1 = now()
  until t1 - t0 >= limit
  cpu_stop()
  local alloc = (collectgarbage("count") - heap0) * 1024 / events
  collectgarbage("restart")
  if with_data then check(sum, events, "every event's data is 1 byte") end
  report(t1 - t0, events, string.format("alloc=%.3f", alloc))
end

-- Scenario 3: 10,000 descriptors added then deleted, changelists of 1,000.
-- With room (an eventlist of 1,000), the binding submits each changelist
-- in one engine call; with nevents 0 it takes one call per change (see
-- csrc/kq_kevent.c).
local function reg(with_room)
  bu.nofile(NREG + 256)
  local fds = bu.socketpairs(floor(NREG / 2))
  local q = assert(kq.kqueue())
  local add, del = {}, {}
  for i = 1, NREG do
    add[i] = { ident = fds[i], filter = kq.EVFILT_READ, flags = kq.EV_ADD }
    del[i] = { ident = fds[i], filter = kq.EVFILT_READ, flags = kq.EV_DELETE }
  end
  add, del = chunked(add), chunked(del)
  local evl = with_room and {} or nil
  local room = with_room and CHUNK or nil
  local changes = 0
  apply(q, add, evl, room) -- warm-up
  apply(q, del, evl, room)
  cpu_start()
  local t1
  local t0 = now()
  repeat
    apply(q, add, evl, room)
    apply(q, del, evl, room)
    changes = changes + 2 * NREG
    t1 = now()
  until t1 - t0 >= limit
  cpu_stop()
  report(t1 - t0, changes)
end

-- Scenario 4: N oneshot 1 ms timers registered, then all collected.
local function timer_cycle(lists, nt, evl)
  local q = assert(kq.kqueue())
  cpu_start()
  local t0 = now()
  apply(q, lists)
  local t1 = now()
  cpu_stop()
  local fds = bu.fdcount() - fds_at_start
  cpu_start()
  local t2 = now()
  local got = 0
  while got < nt do
    local n = assert(q:kevent(nil, evl, EVCAP))
    for i = 1, n do
      if evl[i].filter ~= kq.EVFILT_TIMER then error("unexpected event") end
    end
    got = got + n
  end
  local t3 = now()
  cpu_stop()
  q:close()
  return (t1 - t0) + (t3 - t2), fds
end

local function timers()
  local nt = nparam or 100000
  local function lists_for(n)
    local ch = {}
    for i = 1, n do
      ch[i] = { ident = i, filter = kq.EVFILT_TIMER,
                flags = kq.EV_ADD + kq.EV_ONESHOT, data = 1 }
    end
    return chunked(ch)
  end
  local lists = lists_for(nt)
  local evl = {}
  timer_cycle(lists_for(floor(nt / 10) + 1), floor(nt / 10) + 1, evl) -- warm-up
  clock.reset()
  local spent, count, maxfds = 0, 0, 0
  repeat
    local ns, fds = timer_cycle(lists, nt, evl)
    spent, count = spent + ns, count + nt
    if fds > maxfds then maxfds = fds end
  until spent >= limit
  report(spent, count, "fds=" .. maxfds)
end

-- Runs batch() once to warm up, then until the time is up, and reports
-- the time per unit (each batch does `units` of them).
local function timed(batch, units)
  batch()
  local done = 0
  cpu_start()
  local t1
  local t0 = now()
  repeat
    batch()
    done = done + units
    t1 = now()
  until t1 - t0 >= limit
  cpu_stop()
  report(t1 - t0, done)
end

-- Scenario 5: EVFILT_USER trigger and wait, one call per round trip.
local function wake()
  local q = assert(kq.kqueue())
  apply(q, { { { ident = 1, filter = kq.EVFILT_USER,
                 flags = kq.EV_ADD + kq.EV_CLEAR } } })
  local trig = { { ident = 1, filter = kq.EVFILT_USER, fflags = kq.NOTE_TRIGGER } }
  local evl = {}
  local function batch()
    for _ = 1, 1000 do
      local n = q:kevent(trig, evl, 1)
      if n ~= 1 then check(n, 1, "kevent") end
    end
  end
  timed(batch, 1000)
end

-- Registers the n changes of ch in a new queue and reports the Lua heap
-- and the rest of malloc's growth per knote.
local function measure_knotes(ch, n)
  local lists = chunked(ch)
  local q = assert(kq.kqueue())
  collectgarbage("collect")
  local c0, m0 = collectgarbage("count"), bu.malloc_used()
  cpu_start()
  local t0 = now()
  apply(q, lists)
  local t1 = now()
  cpu_stop()
  collectgarbage("collect")
  local c1, m1 = collectgarbage("count"), bu.malloc_used()
  local lua_bytes = (c1 - c0) * 1024 / n
  -- malloc also holds the Lua heap: the rest is the engine's side.
  local c_bytes = ((m1 - m0) - (c1 - c0) * 1024) / n
  q:close()
  report(t1 - t0, n, string.format("bytes=%.1f cbytes=%.1f", lua_bytes, c_bytes))
end

-- Scenario 6: Lua heap per knote (collectgarbage("count") delta) for N
-- EVFILT_USER knotes; the change tables are made before measuring.
local function mem()
  local n = nparam or 100000
  local ch = {}
  for i = 1, n do
    ch[i] = { ident = i, filter = kq.EVFILT_USER, flags = kq.EV_ADD + kq.EV_CLEAR }
  end
  measure_knotes(ch, n)
end

-- Scenario 7: EV_ADD then EV_DELETE of one connected socket, one change
-- per call, each changelist reused (as a server registers a connection).
local function reg1()
  local fds = bu.socketpairs(1)
  local q = assert(kq.kqueue())
  local add = { { ident = fds[1], filter = kq.EVFILT_READ, flags = kq.EV_ADD } }
  local del = { { ident = fds[1], filter = kq.EVFILT_READ, flags = kq.EV_DELETE } }
  local function batch()
    for _ = 1, 1000 do
      local n, msg = q:kevent(add, nil, 0)
      if n ~= 0 then check(n, 0, "EV_ADD", msg) end
      n, msg = q:kevent(del, nil, 0)
      if n ~= 0 then check(n, 0, "EV_DELETE", msg) end
    end
  end
  timed(batch, 2000)
end

-- Scenario 8: short-lived loopback connections from churn.h's client:
-- accept, register READ (udata: what serves it), serve, close without
-- EV_DELETE (the close ends the knote, as on FreeBSD).  With LuaSocket as
-- a kq user writes it, or (raw) with benchutil's accept and serve, the
-- same calls luv's raw row makes.
local function churn(raw)
  local socket = not raw and require("socket")
  local lfd, port, srv
  if raw then
    lfd, port = bu.listen()
  else
    srv = assert(socket.bind("127.0.0.1", 0, 1024))
    srv:settimeout(0)
    lfd = srv:getfd()
    port = select(2, srv:getsockname())
  end
  local q = assert(kq.kqueue())
  local READ, ADD = kq.EVFILT_READ, kq.EV_ADD
  local change = { { ident = lfd, filter = READ, flags = ADD } }
  check(q:kevent(change, nil, 0), 0, "register the listener")
  local REQUEST_LEN = 18
  local ANSWER = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
  local served = 0
  local function serve_socket(c)
    local data = c:receive(REQUEST_LEN)
    if data and c:send(ANSWER) == #ANSWER then served = served + 1 end
    c:close()
  end
  local function accept_all()
    if raw then
      local fd = bu.accept(lfd)
      while fd do
        change[1].ident, change[1].udata = fd, nil
        check(q:kevent(change, nil, 0), 0, "register a connection")
        fd = bu.accept(lfd)
      end
    else
      local c = srv:accept()
      while c do
        c:settimeout(0)
        change[1].ident, change[1].udata = c:getfd(), c
        check(q:kevent(change, nil, 0), 0, "register a connection")
        c = srv:accept()
      end
    end
  end
  local evl = kq.eventlist()
  local client = bu.churn_client(port)
  local counted, t0, t1 = nil, 0, 0
  while not counted or t1 - t0 < limit do
    local n = assert(q:kevent(nil, evl, 256))
    for i = 1, n do
      local ev = evl[i]
      if ev.ident == lfd then
        accept_all()
      elseif raw then
        if bu.serve(ev.ident) then served = served + 1 end
      else
        serve_socket(ev.udata)
      end
    end
    if not counted and served >= 200 then -- warmed up
      counted = served
      cpu_start()
      t0 = now()
    end
    t1 = now()
  end
  cpu_stop()
  bu.stop_client(client)
  report(t1 - t0, served - counted)
end

-- Scenario 6, READ: N READ knotes (one socket each), each with its own
-- udata table, made beforehand: the Lua heap per knote (what the binding
-- keeps for a knote and its udata), and the rest of malloc's growth.
local function mem_read()
  local n = nparam or 10000
  bu.nofile(n + 256)
  local fds = bu.socketpairs(floor(n / 2))
  local ch = {}
  for i = 1, n do
    ch[i] = { ident = fds[i], filter = kq.EVFILT_READ, flags = kq.EV_ADD, udata = {} }
  end
  measure_knotes(ch, n)
end

-- Bounds (no kqueue): scenario 1's plain eventlist can cost no less than
-- writing six fields into each of 1,000 reused tables (bu.six_writes)
-- plus the same Lua loop; scenario 7's call no less than a method call
-- reading a change's five fields (bu.read_change).
local function bound_six()
  local evl = {}
  for i = 1, NREADY do evl[i] = {} end
  local events, sum = 0, 0
  local function round()
    bu.six_writes(evl, NREADY)
    local s = 0
    for i = 1, NREADY do s = s + evl[i].ident end
    sum = sum + s
    return NREADY
  end
  for _ = 1, 20 do round() end
  cpu_start()
  local t1
  local t0 = now()
  repeat
    for _ = 1, 10 do events = events + round() end
    t1 = now()
  until t1 - t0 >= limit
  cpu_stop()
  report(t1 - t0, events)
end

local function bound_call()
  local obj = setmetatable({}, { __index = { kevent = bu.read_change } })
  local add = { { ident = 5, filter = kq.EVFILT_READ, flags = kq.EV_ADD } }
  local function batch()
    for _ = 1, 2000 do
      local n = obj:kevent(add, nil, 0)
      if n ~= 0 then check(n, 0, "read_change") end
    end
  end
  batch()
  local calls = 0
  cpu_start()
  local t1
  local t0 = now()
  repeat
    batch()
    calls = calls + 2000
    t1 = now()
  until t1 - t0 >= limit
  cpu_stop()
  report(t1 - t0, calls)
end

local scenarios = {
  ready = function() ready(false) end,
  data = function() ready(true) end,
  ["ready-plain"] = function() ready(false, true) end,
  ["data-plain"] = function() ready(true, true) end,
  reg = function() reg(false) end,
  ["reg-room"] = function() reg(true) end,
  timer = timers,
  wake = wake,
  mem = mem,
  ["mem-read"] = mem_read,
  reg1 = reg1,
  churn = function() churn(false) end,
  ["churn-raw"] = function() churn(true) end,
  ["bound-six"] = bound_six,
  ["bound-call"] = bound_call,
}
local run = scenarios[scenario]
if not run then error("unknown scenario " .. scenario) end
run()
