-- luv_bench.lua - the luv contender (Debian lua-luv, libuv), any Lua.
--   lua5.4 luv_bench.lua SCENARIO SECONDS [N]
-- Same output as cbench.  The closest libuv analogue of each scenario:
--   ready  1,000 uv_poll handles ("r") on always-readable sockets; one
--          uv.run("once") is one epoll_wait delivering 1,000 callbacks.
--   reg    10,000 uv_poll handles made beforehand; poll:start on each, one
--          uv.run("nowait") (libuv applies the epoll_ctl ADDs there), then
--          poll:stop on each (an epoll_ctl DEL each).
--   timer  N uv_timer handles made beforehand; timer:start(1, 0) on each,
--          then uv.run() until all fired.
--   wake   a uv_async: async:send() then uv.run("once") (libuv writes and
--          reads an eventfd and runs the callback).
--   mem    Lua heap per started uv_timer (luv keeps handles in Lua userdata).
--   churn  short-lived loopback connections (churn.h's client): a uv_tcp
--          listener; per connection uv.new_tcp, accept, read_start, write
--          the answer, close (as a luv user writes it).
--   churn-raw  the same with benchutil's accept and serve, a uv_poll per
--          connection (the calls kq's raw row makes).
local bu = require("benchutil")

local scenario, seconds, nparam = arg[1], tonumber(arg[2]), tonumber(arg[3])
assert(scenario and seconds, "usage: luv_bench.lua SCENARIO SECONDS [N]")
local limit = math.floor(seconds * 1e9)
local floor = math.floor
local now = bu.now

local NREADY, NREG = 1000, 10000

local fds_at_start = bu.fdcount()
local uv = require("luv")

-- CPU time of the timed stretches and the result line (benchclock.lua).
local clock = require("benchclock")
local cpu_start, cpu_stop, report = clock.start, clock.stop, clock.report

local function ready()
  local fds = bu.socketpairs(NREADY)
  local count = 0
  local function cb(err)
    assert(not err, err)
    count = count + 1
  end
  for i = 1, NREADY do
    bu.write1(fds[2 * i])
    local p = uv.new_poll(fds[2 * i - 1])
    p:start("r", cb)
  end
  local function once()
    local before = count
    uv.run("once")
    if count - before ~= NREADY then
      error(string.format("uv.run once: %d callbacks, want %d", count - before, NREADY))
    end
  end
  collectgarbage("collect")
  collectgarbage("stop") -- as kq_bench.lua: what the loop allocates
  for _ = 1, 20 do once() end -- warm-up
  count = 0
  local heap0 = collectgarbage("count")
  cpu_start()
  local t1
  local t0 = now()
  repeat
    for _ = 1, 10 do once() end
    t1 = now()
  until t1 - t0 >= limit
  cpu_stop()
  local alloc = (collectgarbage("count") - heap0) * 1024 / count
  collectgarbage("restart")
  report(t1 - t0, count, string.format("alloc=%.3f", alloc))
end

local function reg()
  bu.nofile(NREG + 256)
  local fds = bu.socketpairs(floor(NREG / 2))
  local polls = {}
  for i = 1, NREG do polls[i] = uv.new_poll(fds[i]) end
  local function cb() error("no socket is readable here") end
  local function cycle()
    for i = 1, NREG do polls[i]:start("r", cb) end
    uv.run("nowait")
    for i = 1, NREG do polls[i]:stop() end
  end
  cycle() -- warm-up
  local changes = 0
  cpu_start()
  local t1
  local t0 = now()
  repeat
    cycle()
    changes = changes + 2 * NREG
    t1 = now()
  until t1 - t0 >= limit
  cpu_stop()
  report(t1 - t0, changes)
end

local function timers()
  local nt = nparam or 100000
  local handles = {}
  for i = 1, nt do handles[i] = uv.new_timer() end
  local fired = 0
  local function cb() fired = fired + 1 end
  local function cycle(n)
    fired = 0
    uv.update_time()
    cpu_start()
    local t0 = now()
    for i = 1, n do handles[i]:start(1, 0, cb) end
    local t1 = now()
    cpu_stop()
    local fds = bu.fdcount() - fds_at_start
    cpu_start()
    local t2 = now()
    while fired < n do uv.run("once") end
    local t3 = now()
    cpu_stop()
    return (t1 - t0) + (t3 - t2), fds
  end
  cycle(floor(nt / 10) + 1) -- warm-up
  clock.reset()
  local spent, count, maxfds = 0, 0, 0
  repeat
    local ns, fds = cycle(nt)
    spent, count = spent + ns, count + nt
    if fds > maxfds then maxfds = fds end
  until spent >= limit
  report(spent, count, "fds=" .. maxfds)
end

local function wake()
  local got = 0
  local async = uv.new_async(function() got = got + 1 end)
  local function batch()
    for _ = 1, 1000 do
      async:send()
      uv.run("once")
    end
  end
  batch() -- warm-up
  got = 0
  local rounds = 0
  cpu_start()
  local t1
  local t0 = now()
  repeat
    batch()
    rounds = rounds + 1000
    t1 = now()
  until t1 - t0 >= limit
  cpu_stop()
  if got ~= rounds then
    error(string.format("async callbacks %d, rounds %d", got, rounds))
  end
  report(t1 - t0, rounds)
end

local function mem()
  local n = nparam or 100000
  local handles = {}
  local function cb() end
  collectgarbage("collect")
  local c0 = collectgarbage("count")
  cpu_start()
  local t0 = now()
  for i = 1, n do
    local t = uv.new_timer()
    t:start(3600000, 0, cb)
    handles[i] = t
  end
  local t1 = now()
  cpu_stop()
  collectgarbage("collect")
  local c1 = collectgarbage("count")
  -- The handles table itself is the caller's, not luv's: leave it out.
  local own
  do
    collectgarbage("collect")
    local a = collectgarbage("count")
    local t = {}
    for i = 1, n do t[i] = true end
    own = (collectgarbage("count") - a) * 1024
    assert(#t == n)
  end
  report(t1 - t0, n, string.format("bytes=%.1f", ((c1 - c0) * 1024 - own) / n))
  for i = 1, n do handles[i]:close() end
  uv.run()
end

local function churn(raw)
  local ANSWER = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
  local served, port = 0
  if raw then
    local lfd
    lfd, port = bu.listen()
    local function on_conn(p, fd)
      return function()
        if bu.serve(fd) then served = served + 1 end
        p:close()
      end
    end
    local lp = uv.new_poll(lfd)
    lp:start("r", function()
      local fd = bu.accept(lfd)
      while fd do
        local p = uv.new_poll(fd)
        p:start("r", on_conn(p, fd))
        fd = bu.accept(lfd)
      end
    end)
  else
    local srv = uv.new_tcp()
    assert(srv:bind("127.0.0.1", 0))
    port = srv:getsockname().port
    assert(srv:listen(1024, function(err)
      assert(not err, err)
      local c = uv.new_tcp()
      srv:accept(c)
      c:read_start(function(rerr, data)
        if data and #data == 18 then
          c:write(ANSWER)
          served = served + 1
        end
        c:close()
        assert(not rerr, rerr)
      end)
    end))
  end
  local client = bu.churn_client(port)
  local counted, t0, t1 = nil, 0, 0
  while not counted or t1 - t0 < limit do
    uv.run("once")
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

local scenarios = { ready = ready, reg = reg, timer = timers, wake = wake, mem = mem,
  churn = function() churn(false) end, ["churn-raw"] = function() churn(true) end }
local run = scenarios[scenario]
if not run then error("unknown scenario " .. scenario) end
run()
