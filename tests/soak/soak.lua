-- tests/soak/soak.lua: a server-shaped workload run for about a minute
-- (make soak), checking that nothing drifts: every event the program
-- causes is seen exactly once, idle waits do not spin, and descriptors,
-- memory and udata references come back to their baseline after each
-- phase.  Lua 5.4 only (it needs build/kqtest.so).
--
--   lua5.4 tests/soak/soak.lua [SECONDS] [PHASE ...]
--
-- SECONDS (default 60, or $SOAK_SECONDS) decides how many rounds run; no
-- check depends on time except the STALL bound below, which turns a lost
-- event into a failure instead of a hang.  Naming phases runs only those.
-- Exit status 0 when every check passed; otherwise each drift is named on
-- stderr and the status is 1.  A watchdog process kills the soak, naming
-- the phase, if a phase makes no progress for WATCHDOG seconds (a hang).
--
-- Phases, each run once per round: idle (65,536 idle polls, then an
-- event), server (loopback connections), procsig (EVFILT_PROC and
-- EVFILT_SIGNAL), workers (pre-forked workers), nested (queues in queues),
-- fdlimit (at RLIMIT_NOFILE), reentry (finalisers and metamethods using
-- the queue during a call).  A phase that fails outright is not run again;
-- drifts are printed once, with the number of rounds that repeated them.

local kq = require("kq")
local t = require("kqtest")
local socket = require("socket")

local STALL = 10        -- seconds with work outstanding and no event: lost
local WATCHDOG = 120    -- seconds a phase may run before it counts as hung
local SPIN_BOUND = 0.05 -- CPU seconds per second of idle wait (a spin: ~1)
local RSS_BOUND = 16384 -- kB the RSS may grow after the first round
local HEAP_BOUND = 256  -- kB the Lua heap may grow over one phase

local R, W, U = kq.EVFILT_READ, kq.EVFILT_WRITE, kq.EVFILT_USER
local TM, PR, SG = kq.EVFILT_TIMER, kq.EVFILT_PROC, kq.EVFILT_SIGNAL
local ADD, DEL, EN, DIS = kq.EV_ADD, kq.EV_DELETE, kq.EV_ENABLE, kq.EV_DISABLE
local CLEAR, ONESHOT, DISPATCH = kq.EV_CLEAR, kq.EV_ONESHOT, kq.EV_DISPATCH
local EOF, ERR = kq.EV_EOF, kq.EV_ERROR
local SIGUSR1, SIGUSR2 = t.signals.SIGUSR1, t.signals.SIGUSR2
local EAGAIN, EMFILE = t.errno.EAGAIN, t.errno.EMFILE
local ENOENT = t.errno.ENOENT

-- ---- counting and failing ----------------------------------------------

local stats = { calls = 0, events = 0, checks = 0 }
local failures = {}
local Failure = {}

-- Abort the current phase with a message (the phase is then dropped from
-- later rounds; its resources are released by its bag).
local function fail(fmt, ...)
  error(setmetatable({ msg = string.format(fmt, ...) }, Failure), 0)
end

local function check(cond, fmt, ...)
  stats.checks = stats.checks + 1
  if not cond then fail(fmt, ...) end
end

-- A failure that leaves the phase able to go on: recorded, not raised.
local current = "start"
local function drift(cond, fmt, ...)
  stats.checks = stats.checks + 1
  if not cond then
    failures[#failures + 1] = string.format(fmt, ...)
  end
  return cond
end

local function kev(q, changes, evl, n, timeout)
  stats.calls = stats.calls + 1
  local r, msg = q:kevent(changes, evl, n, timeout)
  if not r then fail("kevent: %s", msg) end
  stats.events = stats.events + r
  return r
end

-- Events the program caused and saw, by kind; compared at phase end.
local caused, seen = {}, {}
local function cause(kind, n) caused[kind] = (caused[kind] or 0) + (n or 1) end
local function saw(kind, n) seen[kind] = (seen[kind] or 0) + (n or 1) end

-- Idle waits: CPU time spent against the time asked to wait.
local idle = { cpu = 0, wait = 0 }
local function idle_wait(q, evl, timeout, what)
  local c0 = os.clock()
  local n = kev(q, nil, evl, 8, timeout)
  idle.cpu = idle.cpu + (os.clock() - c0)
  idle.wait = idle.wait + timeout
  if n ~= 0 then
    fail("%s: idle wait got %s", what, kq.describe(evl[1]))
  end
end

local function now() return socket.gettime() end

local function rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")) or 0
end

-- ---- udata tracking ------------------------------------------------------
-- Every udata the soak hands to kq is made here and kept in a weak table.
-- "strict" ones must be gone once their knote is gone (queue still open);
-- "lax" ones belong to knotes removed by closing their descriptor, which
-- kq may keep until the queue is closed (doc/reference.md, udata lifetime).

local live = setmetatable({}, { __mode = "k" })
local function udata(tag, strict)
  local u = { tag = tag }
  live[u] = strict and "strict" or "lax"
  return u
end

-- Overwrites the stack slots a finished function left behind, so that a
-- stale register does not keep a udata alive during the count.
local scrub = assert(load("local " .. string.rep("a, ", 180) .. "a"))

local function count_live(kind, prefix)
  scrub()
  collectgarbage()
  collectgarbage()
  local n, tag = 0, nil
  for u, k in pairs(live) do
    if (kind == nil or k == kind) and (prefix == nil or u.tag:find(prefix, 1, true) == 1) then
      n, tag = n + 1, u.tag
    end
  end
  return n, tag
end

-- ---- resources of a phase ------------------------------------------------

local Bag = {}
Bag.__index = Bag
local function bag() return setmetatable({ qs = {}, fds = {}, socks = {}, kids = {} }, Bag) end
function Bag:queue()
  local q, msg = kq.kqueue()
  if not q then fail("kqueue: %s", msg) end
  self.qs[#self.qs + 1] = q
  return q
end
function Bag:fd(fd) self.fds[fd] = true return fd end
function Bag:close(fd) self.fds[fd] = nil t.close(fd) end
function Bag:pipe()
  local r, w = t.pipe()
  if not r then fail("pipe: %s", w) end
  return self:fd(r), self:fd(w)
end
function Bag:sock(s) self.socks[s] = true return s end
function Bag:unsock(s) self.socks[s] = nil s:close() end
function Bag:child(pid) self.kids[pid] = true return pid end
function Bag:reaped(pid) self.kids[pid] = nil end
function Bag:release()
  for pid in pairs(self.kids) do t.kill(pid, t.signals.SIGKILL) t.waitpid(pid) end
  for _, q in ipairs(self.qs) do q:close() end
  for s in pairs(self.socks) do s:close() end
  for fd in pairs(self.fds) do t.close(fd) end
  self.qs, self.fds, self.socks, self.kids = {}, {}, {}, {}
end
-- In a fork child: drop the parent's descriptors the child has no use for.
local progress_w
function Bag:close_inherited(...)
  local keep = {}
  for _, x in ipairs({ ... }) do keep[x] = true end
  for s in pairs(self.socks) do if not keep[s] then s:close() end end
  for fd in pairs(self.fds) do if not keep[fd] then t.close(fd) end end
  if progress_w then t.close(progress_w) end
end

-- Run body() in a fork child and _exit with what it returns (0 = ok).
local function fork(body)
  io.stdout:flush() -- or a child's io.popen would print it again
  local pid = t.fork()
  if not pid then fail("fork failed") end
  if pid == 0 then
    local ok, code = pcall(body)
    if not ok then
      io.stderr:write("soak: ", current, ": error in a child: ",
        type(code) == "table" and code.msg or tostring(code), "\n")
    end
    t._exit(ok and (code or 0) or 99)
  end
  return pid
end

-- Descriptors of the engine's kinds (queues, eventfd, timerfd, pidfd,
-- inotify, signalfd) this process holds, from ls(1) of /proc/PID/fd.
local function engine_fds()
  local p = io.popen("ls -l /proc/" .. t.getpid() .. "/fd 2>/dev/null")
  if not p then return nil end
  local n = 0
  for line in p:lines() do
    if line:find("anon_inode:") or line:find("inotify") then n = n + 1 end
  end
  p:close()
  return n
end

-- A deterministic generator, so every run does the same work.
local seed = 20240601
local function rnd(n)
  seed = (seed * 1103515245 + 12345) & 0x7fffffff
  return seed % n + 1
end

local function expect_one(q, evl, ident, filter, ud, what)
  local n = kev(q, nil, evl, 8, 0)
  if n ~= 1 then
    local later = n == 0 and kev(q, nil, evl, 8, 2) or n
    fail("%s: %d events where 1 was due (%s)", what, n,
      later == 0 and "lost: none after 2 s more" or
      "then " .. later .. ": " .. kq.describe(evl[1]))
  end
  local ev = evl[1]
  check(ev.ident == ident and ev.filter == filter and ev.udata == ud,
    "%s: wrong event %s", what, kq.describe(ev))
  return ev
end

-- ==== phases ===============================================================

local phases, order = {}, {}
local function phase(name, fn) phases[name] = fn order[#order + 1] = name end

-- An idle loop: a queue with a USER and an EV_CLEAR READ knote polled
-- with timeout 0 for about 65,536 calls in a row with nothing ready (each
-- length from 65,531 to 65,540), then an event made due in one of three
-- ways (a trigger in the collecting call, a trigger in the call before, a
-- write to the pipe): a wait must return it at once.
local function idle_run(b, way)
  local q = b:queue()
  local r, w = b:pipe()
  local evl = kq.eventlist()
  local uu, ur = udata("idle user", true), udata("idle read", true)
  kev(q, { { ident = 1, filter = U, flags = ADD | CLEAR, udata = uu },
           { ident = r, filter = R, flags = ADD | CLEAR, udata = ur } }, nil, 0)
  local trigger = { { ident = 1, filter = U, fflags = kq.NOTE_TRIGGER, udata = uu } }
  local what = ({ "USER triggered in the call", "USER triggered in the call before",
                  "EV_CLEAR READ" })[way]
  for idle_calls = 65531, 65540 do
    for _ = 1, idle_calls do
      local n = kev(q, nil, evl, 8, 0)
      if n ~= 0 then fail("idle queue: unexpected %s", kq.describe(evl[1])) end
    end
    cause(what)
    local n
    if way == 1 then
      n = kev(q, trigger, evl, 8, 2)
    elseif way == 2 then
      kev(q, trigger, nil, 0)
      n = kev(q, nil, evl, 8, 2)
    else
      t.write(w, "x")
      n = kev(q, nil, evl, 8, 2)
    end
    if n ~= 1 then
      fail("after %d idle calls: %s: %d events after a 2 s wait, 1 was due",
        idle_calls, what, n)
    end
    check(evl[1].udata == (way == 3 and ur or uu), "%s: wrong udata", what)
    saw(what)
    if way == 3 then t.read(r, 16) end
  end
  for _ = 1, 2 do idle_wait(q, evl, 0.05, "idle queue") end
  kev(q, { { ident = 1, filter = U, flags = DEL }, { ident = r, filter = R, flags = DEL } }, nil, 0)
end

phase("idle", function(b)
  local errs = {}
  for way = 1, 3 do
    local ok, e = pcall(idle_run, b, way)
    if not ok then errs[#errs + 1] = type(e) == "table" and e.msg or tostring(e) end
  end
  if #errs > 0 then fail("%s", table.concat(errs, "; ")) end
end)

-- Accept, read, write, close: many short loopback connections whose client
-- and server sockets reuse descriptor numbers; level, EV_CLEAR, ONESHOT
-- and DISPATCH knotes, periodic and oneshot timers, USER wake-ups, and a
-- top queue watching the server and client queues.
local BIG = string.rep("0123456789abcdef", 131072) -- 2 MB
phase("server", function(b)
  local qs, qc, qt = b:queue(), b:queue(), b:queue()
  local lst = b:sock(assert(socket.bind("127.0.0.1", 0, 128)))
  lst:settimeout(0)
  local host, port = lst:getsockname()
  local M, C = 2000, 16
  local tick_ud, wake_ud = udata("tick", true), udata("wake", true)
  kev(qs, { { ident = lst, filter = R, flags = ADD, udata = udata("listener", true) },
            { ident = 1, filter = TM, flags = ADD, data = 5, udata = tick_ud },
            { ident = 2, filter = U, flags = ADD | CLEAR, udata = wake_ud } }, nil, 0)
  kev(qt, { { ident = qs, filter = R, flags = ADD },
            { ident = qc, filter = R, flags = ADD | CLEAR } }, nil, 0)
  local schg, cchg = {}, {}
  local conns, clients = {}, {}  -- by conn / client object
  local started, done, progress = 0, 0, now()
  local pending_bits, ticks, fired, accepted = 0, 0, {}, 0
  local function add(list, ch) list[#list + 1] = ch end

  local function start_client()
    started = started + 1
    local id = started
    local s = b:sock(socket.tcp())
    s:settimeout(0)
    local ok, err = s:connect(host, port)
    check(ok or err == "timeout", "connect: %s", tostring(err))
    local size = id % 32 == 0 and #BIG or 64
    local cl = { id = id, s = s, fd = s:getfd(), size = size, got = 0,
                 mode = id % 2 == 0 and "dispatch" or "oneshot" }
    cl.ud = udata("client", id % 4 ~= 1)
    clients[cl.ud] = cl
    add(cchg, { ident = cl.fd, filter = W, flags = ADD | ONESHOT, udata = cl.ud })
    cause("connected")
    cause("accepted")
  end

  local function client_done(cl)
    check(cl.got == cl.size, "client %d got %d of %d bytes", cl.id, cl.got, cl.size)
    clients[cl.ud] = nil
    if cl.id % 4 ~= 1 and cl.mode == "dispatch" then
      kev(qc, { { ident = cl.fd, filter = R, flags = DEL } }, nil, 0)
    end
    b:unsock(cl.s)
    done, progress = done + 1, now()
    local bit = 1 << (cl.id % 20)
    if pending_bits == 0 then cause("wake") end
    pending_bits = pending_bits | bit
    add(schg, { ident = 2, filter = U, fflags = kq.NOTE_FFOR | kq.NOTE_TRIGGER | bit,
                udata = wake_ud })
  end

  local function on_client(ev)
    local cl = clients[ev.udata]
    if not cl then fail("client event for a finished client: %s", kq.describe(ev)) end
    check(ev.ident == cl.fd, "client event on the wrong ident: %s", kq.describe(ev))
    if ev.filter == W then
      check(ev.flags & EOF == 0, "connect failed: %s", kq.describe(ev))
      saw("connected")
      check(t.write(cl.fd, string.format("%015d\n", cl.size)) == 16, "short request")
      cl.armed = true
      add(cchg, { ident = cl.fd, filter = R, udata = cl.ud,
                  flags = ADD | (cl.mode == "dispatch" and DISPATCH or ONESHOT) })
      return
    end
    check(cl.armed, "READ event on a disarmed %s knote: %s", cl.mode, kq.describe(ev))
    cl.armed = false
    while true do
      local s, _, en = t.read(cl.fd, 262144)
      if s == "" then return client_done(cl) end
      if not s then
        check(en == EAGAIN, "client read: errno %s", tostring(en))
        break
      end
      cl.got, progress = cl.got + #s, now()
    end
    cl.armed = true
    if cl.mode == "dispatch" then
      add(cchg, { ident = cl.fd, filter = R, flags = EN, udata = cl.ud })
    else
      add(cchg, { ident = cl.fd, filter = R, flags = ADD | ONESHOT, udata = cl.ud })
    end
  end

  local function conn_close(c)
    conns[c.ud] = nil
    local dels = {}
    if c.id % 3 ~= 0 then
      dels[1] = { ident = c.fd, filter = R, flags = DEL }
      if c.wreg then dels[2] = { ident = c.fd, filter = W, flags = DEL } end
    end
    dels[#dels + 1] = { ident = 1000000 + c.id, filter = TM, flags = DEL }
    kev(qs, dels, nil, 0)
    b:unsock(c.s)
  end

  local function conn_write(c)
    while c.off < #c.reply do
      local n, _, en = t.write(c.fd, c.off == 0 and c.reply or c.reply:sub(c.off + 1))
      if not n then
        check(en == EAGAIN, "server write: errno %s", tostring(en))
        if not c.wreg then
          c.wreg = true
          add(schg, { ident = c.fd, filter = W, udata = c.ud,
                      flags = ADD | (c.id % 2 == 0 and DISPATCH or 0) })
        elseif c.id % 2 == 0 then
          add(schg, { ident = c.fd, filter = W, flags = EN, udata = c.ud })
        end
        c.warmed = true
        return
      end
      c.off, progress = c.off + n, now()
    end
    return conn_close(c)
  end

  local function on_server(ev)
    local ud = ev.udata
    if ev.filter == TM then
      if ud == tick_ud then
        check(ev.data >= 1, "periodic timer with data %d", ev.data)
        ticks = ticks + ev.data
        return
      end
      check(not fired[ud], "oneshot timer fired twice")
      fired[ud] = true
      saw("oneshot timer")
      return
    end
    if ev.filter == U then
      check(ev.fflags & kq.NOTE_FFLAGSMASK == pending_bits,
        "USER wake-up fflags 0x%x, triggered 0x%x", ev.fflags, pending_bits)
      check(pending_bits ~= 0, "USER wake-up with nothing triggered")
      pending_bits = 0
      saw("wake")
      -- The bits stay set after delivery (FreeBSD's kn_sfflags): clear them.
      add(schg, { ident = 2, filter = U, fflags = kq.NOTE_FFCOPY, udata = wake_ud })
      return
    end
    if ev.ident == lst:getfd() then
      while true do
        local s = lst:accept()
        if not s then break end
        b:sock(s)
        saw("accepted")
        accepted = accepted + 1
        local id = accepted
        local c = { id = id, s = s, fd = s:getfd(), buf = "", off = 0 }
        c.ud = udata("conn", id % 3 ~= 0)
        conns[c.ud] = c
        add(schg, { ident = c.fd, filter = R, flags = ADD | CLEAR, udata = c.ud })
        add(schg, { ident = 1000000 + id, filter = TM, flags = ADD | ONESHOT,
                    data = 60000, udata = c.ud })
        if id % 8 == 0 then
          cause("oneshot timer")
          add(schg, { ident = 2000000 + id, filter = TM, flags = ADD | ONESHOT,
                      data = 1, udata = udata("short timer", true) })
        end
      end
      return
    end
    local c = conns[ud]
    if not c then fail("server event for a closed connection: %s", kq.describe(ev)) end
    check(ev.ident == c.fd, "server event on the wrong ident: %s", kq.describe(ev))
    if ev.filter == W then
      if c.id % 2 == 0 then
        check(c.warmed, "WRITE event on a disabled DISPATCH knote")
        c.warmed = false
      end
      return conn_write(c)
    end
    check(ev.data > 0 or ev.flags & EOF ~= 0, "READ event with nothing to read: %s",
      kq.describe(ev))
    if c.reply then return end
    while true do
      local s, _, en = t.read(c.fd, 4096)
      if s == "" then fail("client closed before its reply") end
      if not s then
        check(en == EAGAIN, "server read: errno %s", tostring(en))
        break
      end
      c.buf = c.buf .. s
    end
    if #c.buf >= 16 then
      local size = tonumber(c.buf:sub(1, 15))
      check(#c.buf == 16 and size, "bad request %q", c.buf)
      c.reply = size == #BIG and BIG or BIG:sub(1, size)
      return conn_write(c)
    end
  end

  local sevl, cevl, tevl = {}, kq.eventlist(), kq.eventlist()
  local function service(q, changes, evl, handler)
    repeat
      local n = kev(q, #changes > 0 and changes or nil, evl, 64, 0)
      for i = #changes, 1, -1 do changes[i] = nil end
      for i = 1, n do
        local ev = evl[i]
        if ev.flags & ERR ~= 0 then fail("change failed: %s", kq.describe(ev)) end
        handler(ev)
      end
    until n < 64 and #changes == 0
  end

  local outstanding = function()
    return done < M or pending_bits ~= 0 or next(conns) ~= nil
  end
  while outstanding() do
    while started < M and started - done < C do start_client() end
    service(qc, cchg, cevl, on_client)
    service(qs, schg, sevl, on_server)
    if outstanding() then
      kev(qt, nil, tevl, 2, STALL)
      if now() - progress > STALL then
        fail("stalled %d s with %d clients and %d connections open (%d done)",
          STALL, started - done, (function() local n = 0 for _ in pairs(conns) do n = n + 1 end return n end)(), done)
      end
    end
  end
  -- The short oneshot timers: each fires exactly once.
  local t0 = now()
  while (seen["oneshot timer"] or 0) < (caused["oneshot timer"] or 0) and now() - t0 < STALL do
    kev(qt, nil, tevl, 2, 1)
    service(qs, schg, sevl, on_server)
  end
  check(ticks > 0, "periodic timer never fired")
  kev(qs, { { ident = 1, filter = TM, flags = DEL }, { ident = 2, filter = U, flags = DEL },
            { ident = lst, filter = R, flags = DEL } }, nil, 0)
  b:unsock(lst)
  sevl, fired, tick_ud, wake_ud = nil, nil, nil, nil -- luacheck: ignore 311 (drops the references)
  for _ = 1, 2 do
    idle_wait(qs, cevl, 0.05, "server queue")
    idle_wait(qc, cevl, 0.05, "client queue")
  end
  cevl, tevl = nil, nil -- luacheck: ignore 311 (drops the references)
  local n, tag = count_live("strict")
  drift(n == 0, "%d udata still referenced after their knotes went (one: %s)", n, tag)
end)

-- A child process watched with EVFILT_PROC, signals with EVFILT_SIGNAL:
-- children signal the parent one at a time (acknowledged, so standard
-- signals cannot merge), the parent signals itself, and a burst of a
-- real-time signal is counted exactly.
phase("procsig", function(b)
  local q = b:queue()
  local evl = {}
  local me = t.getpid()
  local u1, u2 = udata("SIGUSR1", true), udata("SIGUSR2", true)
  kev(q, { { ident = SIGUSR1, filter = SG, flags = ADD, udata = u1 },
           { ident = SIGUSR2, filter = SG, flags = ADD, udata = u2 } }, nil, 0)
  for batch = 1, 6 do
    local kids, go, ackr, ackw = {}, {}, b:pipe()
    for k = 1, 4 do
      local gr, gw = b:pipe()
      local pid = b:child(fork(function()
        b:close_inherited(gr, ackr)
        t.read(gr, 1)
        if k == 1 then
          for _ = 1, 3 do
            t.kill(me, SIGUSR1)
            if t.read(ackr, 1) ~= "a" then return 98 end
          end
        end
        return 10 * batch + k
      end))
      b:close(gr)
      kids[pid], go[k] = 10 * batch + k, gw
      kev(q, { { ident = pid, filter = PR, flags = ADD, fflags = kq.NOTE_EXIT,
                 udata = udata("child", true) } }, nil, 0)
      cause("exit")
    end
    for k = 1, 4 do t.write(go[k], "g") b:close(go[k]) end
    cause("SIGUSR1", 3)
    t.kill(me, SIGUSR2)
    cause("SIGUSR2")
    local left, t0 = 4, now()
    while left > 0 or (seen.SIGUSR1 or 0) < caused.SIGUSR1 or (seen.SIGUSR2 or 0) < caused.SIGUSR2 do
      if now() - t0 > STALL then
        fail("batch %d: %d exits, SIGUSR1 %d/%d, SIGUSR2 %d/%d after %d s", batch,
          4 - left, seen.SIGUSR1 or 0, caused.SIGUSR1, seen.SIGUSR2 or 0, caused.SIGUSR2, STALL)
      end
      local n = kev(q, nil, evl, 8, 1)
      for i = 1, n do
        local ev = evl[i]
        if ev.filter == SG then
          check(ev.data == 1, "signal %d counted %d times, sent once", ev.ident, ev.data)
          if ev.ident == SIGUSR1 then
            check(ev.udata == u1, "SIGUSR1 udata") saw("SIGUSR1") t.write(ackw, "a")
          else
            check(ev.udata == u2, "SIGUSR2 udata") saw("SIGUSR2")
          end
        else
          check(ev.filter == PR and kids[ev.ident], "unexpected %s", kq.describe(ev))
          local pid, status = t.waitpid(ev.ident)
          b:reaped(pid)
          check(status == ev.data, "exit status %d, PROC event data %d", status, ev.data)
          check(status == kids[pid] << 8, "child exit status 0x%x, expected code %d", status, kids[pid])
          kids[pid] = nil
          saw("exit")
          left = left - 1
        end
      end
    end
    b:close(ackr) b:close(ackw)
  end
  if kq.backend == "linux" then
    local rt = t.signals.SIGRTMIN + 6
    kev(q, { { ident = rt, filter = SG, flags = ADD, udata = udata("rt", true) } }, nil, 0)
    local pid = b:child(fork(function()
      b:close_inherited()
      for _ = 1, 200 do t.kill(me, rt) end
      return 0
    end))
    cause("rt signal", 200)
    local t0 = now()
    while (seen["rt signal"] or 0) < 200 and now() - t0 < STALL do
      local n = kev(q, nil, evl, 8, 1)
      for i = 1, n do
        check(evl[i].ident == rt, "unexpected %s", kq.describe(evl[i]))
        saw("rt signal", evl[i].data)
      end
    end
    t.waitpid(pid)
    b:reaped(pid)
    kev(q, { { ident = rt, filter = SG, flags = DEL } }, nil, 0)
  end
  kev(q, { { ident = SIGUSR1, filter = SG, flags = DEL },
           { ident = SIGUSR2, filter = SG, flags = DEL } }, nil, 0)
  idle_wait(q, evl, 0.05, "signal queue")
  evl, u1, u2 = nil, nil, nil -- luacheck: ignore 311 (drops the references)
  local n, tag = count_live("strict")
  drift(n == 0, "%d udata still referenced after their knotes went (one: %s)", n, tag)
end)

-- Pre-forked workers: the parent accepts a connection, watches it, forks
-- a worker that keeps it (with its own queue), closes its own copy, and
-- reuses the number for the next connection.  While the workers' copies
-- hold unread data, the parent's queue must stay idle, without spinning.
phase("workers", function(b)
  local qw = b:queue()
  local lst = b:sock(assert(socket.bind("127.0.0.1", 0, 64)))
  lst:settimeout(0)
  local lfd = lst:getfd()
  local host, port = lst:getsockname()
  local evl = kq.eventlist()
  kev(qw, { { ident = lst, filter = R, flags = ADD, udata = "listener" } }, nil, 0)
  local alive, queue_fds = {}, { qw:fileno() }
  local exits, reused, stale, first_stale, inherited = {}, 0, 0, nil, 0
  local clients = {}

  local function poll(timeout)
    local n, ready = kev(qw, nil, evl, 8, timeout), false
    for i = 1, n do
      local ev = evl[i]
      if ev.filter == PR then
        check(alive[ev.ident] and not exits[ev.ident], "exit event twice: %s", kq.describe(ev))
        exits[ev.ident] = ev.data
        saw("exit")
      elseif ev.ident == lfd then
        ready = true
      elseif clients[ev.udata] and clients[ev.udata].armed
          and ev.ident == clients[ev.udata].cli:getfd() then
        clients[ev.udata].armed = false
      else
        -- A descriptor the parent closed (FreeBSD dropped its knotes then).
        stale, first_stale = stale + 1, first_stale or kq.describe(ev)
      end
    end
    return ready, n
  end

  -- An idle wait: nothing but stale events may come, and it must not spin
  -- (counted when it waited out its timeout).
  local function quiet(timeout)
    local c0 = os.clock()
    local _, n = poll(timeout)
    if n == 0 then
      idle.cpu, idle.wait = idle.cpu + (os.clock() - c0), idle.wait + timeout
    end
  end

  local function worker(conn, ctl)
    -- Exit code: requests served, plus 128 if the child inherited the
    -- parent's queue descriptors; 65 and up: the worker failed.
    if kq.type(qw) ~= "closed kqueue" then return 65 end
    b:close_inherited(conn, ctl)
    local held = 0
    for _, fd in ipairs(queue_fds) do
      if t.is_cloexec(fd) ~= nil then held = 128 end
    end
    if kq.backend == "linux" and (engine_fds() or 0) ~= 0 then held = 128 end
    local q = kq.kqueue()
    local cfd, wevl, served = conn:getfd(), {}, 0
    q:kevent({ { ident = ctl, filter = R, flags = ADD },
               { ident = 1, filter = TM, flags = ADD | ONESHOT, data = 3 * STALL * 1000 } })
    local function wait_conn()
      q:kevent({ { ident = cfd, filter = R, flags = ADD | ONESHOT } })
      while true do
        local n = q:kevent(nil, wevl, 4)
        for i = 1, n do
          if wevl[i].filter == TM then t._exit(66) end
          if wevl[i].ident == cfd then return t.read(cfd, 64) end
        end
      end
    end
    while true do
      local n = q:kevent(nil, wevl, 4)
      for i = 1, n do
        local ev = wevl[i]
        if ev.filter == TM then return 66 end
        local s = t.read(ctl, 64)
        if s == "" then
          if wait_conn() ~= "" then return 67 end
          return served | held
        end
        for _ = 1, #s do
          if wait_conn() ~= "ping\n" then return 68 end
          t.write(cfd, "pong\n")
          served = served + 1
        end
      end
    end
  end

  local function why(status)
    local code = status >> 8
    return ({ [65] = " (65: the parent's queue is open in the child)",
      [66] = " (66: the worker timed out)", [67] = " (67: data after EOF)",
      [68] = " (68: bad request)", [99] = " (99: a Lua error)" })[code] or ""
  end

  local function retire(pid)
    local w = alive[pid]
    w.cli:close()
    b.socks[w.cli] = nil
    b:close(w.ctl)
    local t0 = now()
    while not exits[pid] do
      if now() - t0 > STALL then fail("no exit event for worker %d after %d s", pid, STALL) end
      poll(1)
    end
    local _, status = t.waitpid(pid)
    b:reaped(pid)
    check(status == exits[pid], "exit status 0x%x, PROC event data 0x%x", status, exits[pid])
    if status & 0x8000 ~= 0 then
      inherited = inherited + 1
      status = status & ~0x8000
    end
    check(status == w.served << 8, "worker exit status 0x%x, expected code %d%s",
      status, w.served, why(status))
    alive[pid] = nil
    clients[w.ud] = nil
  end

  -- The parent's client sockets take the numbers its handed-off
  -- connections had, and are watched in the same queue.
  local handed = {}
  local function watch(s, flags, ud)
    if handed[s:getfd()] then reused = reused + 1 end
    kev(qw, { { ident = s, filter = R, flags = flags, udata = ud } }, nil, 0)
  end
  for k = 1, 10 do
    local cli = b:sock(socket.tcp())
    cli:settimeout(STALL)
    assert(cli:connect(host, port))
    local t0 = now()
    while not poll(1) do
      if now() - t0 > STALL then fail("listener READ lost: no event in %d s", STALL) end
    end
    local conn = b:sock(assert(lst:accept()))
    local cfd = conn:getfd()
    watch(conn, ADD | (k % 2 == 0 and CLEAR or 0), udata("handed-off conn", false))
    local ctl_r, ctl_w = b:pipe()
    local pid = b:child(fork(function() return worker(conn, ctl_r) end))
    b:close(ctl_r)
    kev(qw, { { ident = pid, filter = PR, flags = ADD, fflags = kq.NOTE_EXIT,
                udata = udata("worker", true) } }, nil, 0)
    cause("exit")
    alive[pid] = { cli = cli, ctl = ctl_w, served = 0, ud = udata("client", true) }
    clients[alive[pid].ud] = alive[pid]
    if k % 3 == 0 then kev(qw, { { ident = cfd, filter = R, flags = DEL } }, nil, 0) end
    b:unsock(conn)
    handed[cfd] = true
    for _ = 1, 2 do
      for _, w in pairs(alive) do assert(w.cli:send("ping\n")) end
      quiet(0.02)
      for wpid, w in pairs(alive) do
        t.write(w.ctl, "g")
        w.armed = true
        watch(w.cli, ADD | ONESHOT, w.ud)
        t0 = now()
        while w.armed do
          if now() - t0 > STALL then fail("client READ lost: no event in %d s", STALL) end
          poll(1)
        end
        local line, err = w.cli:receive("*l")
        if line ~= "pong" then
          local _, status = t.waitpid(wpid, true)
          fail("worker reply: %s; worker status 0x%x%s", tostring(line or err),
            status or -1, why(status or 0))
        end
        w.served = w.served + 1
      end
    end
    if k > 3 then retire(next(alive)) end
  end
  while next(alive) do retire(next(alive)) end
  check(reused > 0, "no connection reused a handed-off number: the test lost its point")
  kev(qw, { { ident = lst, filter = R, flags = DEL } }, nil, 0)
  b:unsock(lst)
  quiet(0.05)
  drift(inherited == 0, "%d workers held the parent's queue descriptors after fork "
    .. "(FreeBSD: a child has none)", inherited)
  drift(stale == 0, "%d events for descriptors the parent had closed, handed to workers (first: %s)",
    stale, first_stale)
  evl = nil
  local n, tag = count_live("strict")
  drift(n == 0, "%d udata still referenced after their knotes went (one: %s)", n, tag)
end)

-- Queues inside queues: an outer queue watches inner queues with EV_CLEAR
-- (one event per new inner event, reading ev.data), and a chain of five.
phase("nested", function(b)
  local outer = b:queue()
  local evl = {}
  local inner = {}
  local twice, first_twice, after, first_after = 0, nil, 0, nil
  for i = 1, 6 do
    local q = b:queue()
    local r1, w1 = b:pipe()
    local r2, w2 = b:pipe()
    inner[i] = { q = q, ud = udata("inner", true), pipes = { { r1, w1 }, { r2, w2 } } }
    kev(q, { { ident = r1, filter = R, flags = ADD, udata = i },
             { ident = r2, filter = R, flags = ADD, udata = i } }, nil, 0)
    kev(outer, { { ident = q, filter = R, flags = ADD | CLEAR, udata = inner[i].ud } }, nil, 0)
  end
  for _ = 1, 1500 do
    local i, j = rnd(6), rnd(2)
    local x = inner[i]
    local r, w = x.pipes[j][1], x.pipes[j][2]
    t.write(w, "n")
    local ev = expect_one(outer, evl, x.q:fileno(), R, x.ud, "outer queue")
    check(ev.data >= 1, "nested queue event with data %d", ev.data)
    local n = kev(outer, nil, evl, 8, 0)
    if n > 0 then twice, first_twice = twice + 1, first_twice or kq.describe(evl[1]) end
    expect_one(x.q, evl, r, R, i, "inner queue")
    t.read(r, 8)
    check(kev(x.q, nil, evl, 8, 0) == 0, "inner queue still ready after the read")
    n = kev(outer, nil, evl, 8, 0)
    if n > 0 then after, first_after = after + 1, first_after or kq.describe(evl[1]) end
  end
  drift(twice == 0, "an EV_CLEAR knote on a queue fired twice for one event, %d times in 1500 "
    .. "(first: %s)", twice, first_twice)
  drift(after == 0, "the outer queue fired after its inner queue was drained, %d times in 1500 "
    .. "(first: %s)", after, first_after)
  for i = 1, 6 do kev(outer, { { ident = inner[i].q, filter = R, flags = DEL } }, nil, 0) end
  -- A chain of 8: q1 watches a pipe, q(k+1) watches qk.  A depth limit
  -- may refuse a link, but not with EINVAL, which means a cycle.
  local chain = {}
  local r, w = b:pipe()
  for k = 1, 8 do
    local q = b:queue()
    local ch = k == 1 and { ident = r, filter = R, flags = ADD }
      or { ident = chain[k - 1], filter = R, flags = ADD | CLEAR }
    if kev(q, { ch }, evl, 1, 0) > 0 then
      drift(evl[1].data ~= t.errno.EINVAL,
        "a chain of %d queues: EV_ADD failed with EINVAL, the error for a cycle", k)
      break
    end
    chain[k] = q
  end
  local top = #chain
  for _ = 1, 50 do
    t.write(w, "c")
    for k = top, 2, -1 do
      expect_one(chain[k], evl, chain[k - 1]:fileno(), R, nil,
        "queue " .. k .. " of a chain of " .. top)
      check(kev(chain[k], nil, evl, 8, 0) == 0, "queue %d of a chain fired twice", k)
    end
    expect_one(chain[1], evl, r, R, nil, "queue 1 of a chain")
    t.read(r, 8)
  end
  idle_wait(outer, evl, 0.05, "outer queue")
  evl, inner = nil, nil -- luacheck: ignore 311 (drops the references)
  local n, tag = count_live("strict")
  drift(n == 0, "%d udata still referenced after their knotes went (one: %s)", n, tag)
end)

-- At the descriptor limit: wake-ups must still reach the queue's
-- descriptor, and a change that needs a descriptor fails or keeps its
-- promise; after descriptors come back, everything works.
phase("fdlimit", function(b)
  local q = b:queue()
  local qfd = q:fileno()
  local evl = {}
  local a, c = t.socketpair()
  b:fd(a) b:fd(c)
  local gr, gw = b:pipe()
  local pid = b:child(fork(function() b:close_inherited(gr) t.read(gr, 1) return 7 end))
  b:close(gr)
  kev(q, { { ident = 1, filter = U, flags = ADD | CLEAR },
           { ident = a, filter = R, flags = ADD | CLEAR },
           { ident = a, filter = W, flags = ADD | DIS } }, nil, 0)
  local fillers, proc_added = {}, false
  local old = t.setrlimit_nofile(t.fdcount() + 16)
  while true do
    local fd = t.dup(0)
    if not fd then break end
    fillers[#fillers + 1] = fd
  end
  local ok, err = pcall(function()
    kev(q, { { ident = 1, filter = U, fflags = kq.NOTE_TRIGGER } }, nil, 0)
    cause("user")
    drift(t.poll_in(qfd, 0),
      "at the descriptor limit: a USER trigger does not make the queue's descriptor readable")
    expect_one(q, evl, 1, U, nil, "USER at the descriptor limit")
    saw("user")
    local n = kev(q, { { ident = a, filter = W, flags = EN, udata = nil } }, evl, 4, 0)
    if n == 1 and evl[1].flags & ERR ~= 0 then
      check(evl[1].data == EMFILE, "EV_ENABLE at the limit failed with errno %d", evl[1].data)
    else
      for k = 1, 3 do
        local m = kev(q, nil, evl, 4, 0)
        if not drift(m == 1 and evl[1].filter == W,
          "level WRITE enabled at the descriptor limit: poll %d gave %d events", k, m) then break end
      end
    end
    local q2, _, en = kq.kqueue()
    if q2 then q2:close() end
    drift(q2 == nil and en == EMFILE, "kqueue() at the descriptor limit: %s", tostring(en))
    n = kev(q, { { ident = pid, filter = PR, flags = ADD, fflags = kq.NOTE_EXIT } }, evl, 4, 0)
    proc_added = not (n == 1 and evl[1].flags & ERR ~= 0)
    check(proc_added or evl[1].data == EMFILE, "PROC EV_ADD at the limit: errno %d", evl[1].data)
  end)
  for _, fd in ipairs(fillers) do t.close(fd) end
  t.setrlimit_nofile(old)
  if not ok then error(err, 0) end
  -- Descriptors are back: the same knotes work.
  if not proc_added then
    kev(q, { { ident = pid, filter = PR, flags = ADD, fflags = kq.NOTE_EXIT } }, nil, 0)
  end
  kev(q, { { ident = a, filter = W, flags = EN } }, nil, 0)
  for _ = 1, 3 do
    local m = kev(q, nil, evl, 4, 0)
    check(m == 1 and evl[1].filter == W, "level WRITE after the limit: %d events", m)
  end
  kev(q, { { ident = a, filter = W, flags = DEL } }, nil, 0)
  kev(q, { { ident = 1, filter = U, fflags = kq.NOTE_TRIGGER } }, nil, 0)
  drift(t.poll_in(qfd, 0), "after the limit: the queue's descriptor is not readable")
  expect_one(q, evl, 1, U, nil, "USER after the descriptor limit")
  t.write(gw, "x")
  local t0 = now()
  local got
  repeat
    local n = kev(q, nil, evl, 4, 1)
    got = n == 1 and evl[1].filter == PR and evl[1].ident == pid
  until got or now() - t0 > STALL
  check(got, "no exit event for a PROC knote added at the descriptor limit")
  t.waitpid(pid)
  b:reaped(pid)
  t.write(c, "z")
  expect_one(q, evl, a, R, nil, "READ after the descriptor limit")
end)

-- Finalisers and metamethods that use the queue during a kevent call, a
-- changelist whose reading raises, a fork inside a call, a closed socket.
phase("reentry", function(b)
  local q = b:queue()
  local results = { ok = 0, err = 0, msg = nil, during = 0 }
  local in_call, raised, first_raise, lost = false, 0, nil, 0
  local gc_ident = 100000
  local function garbage(k)
    local o = setmetatable({ id = gc_ident + k }, { __gc = function(o)
      if in_call then results.during = results.during + 1 end
      local ok, r, msg = pcall(q.kevent, q, { { ident = o.id, filter = U, flags = DEL } })
      if ok and r then results.ok = results.ok + 1
      else results.err, results.msg = results.err + 1, tostring(ok and msg or r) end
    end })
    return o
  end
  -- Generational mode with a tiny minor multiplier: a minor collection,
  -- which runs every pending finaliser, comes during most calls that
  -- allocate event tables.  Iterations go on until finalisers have run
  -- inside calls many times.
  collectgarbage("generational", 1, 100)
  local made = 0
  for it = 1, 300 do
    if it > 20 and results.during >= 50 then break end
    local N = 128
    local changes, want = {}, {}
    for i = 1, N do
      local ud = udata("oneshot " .. i, true)
      want[ud] = true
      changes[2 * i - 1] = { ident = i, filter = U, flags = ADD | ONESHOT, udata = ud }
      changes[2 * i] = { ident = i, filter = U, fflags = kq.NOTE_TRIGGER, udata = ud }
    end
    kev(q, changes, nil, 0)
    changes = nil -- luacheck: ignore 311 (drops the references)
    cause("oneshot", N)
    for _ = 1, 64 do
      made = made + 1
      kev(q, { { ident = gc_ident + made, filter = U, flags = ADD } }, nil, 0)
      garbage(made)
    end
    local got, tries = 0, 0
    while got < N and tries < 200 do
      tries = tries + 1
      local evl = {}
      in_call = true
      local ok, n = pcall(kev, q, nil, evl, 64, 0)
      in_call = false
      if not ok then
        raised, first_raise = raised + 1, first_raise or (type(n) == "table" and n.msg or tostring(n))
        n = 0
      end
      for i = 1, n do
        local ud = evl[i].udata
        check(want[ud], "ONESHOT event delivered twice or unknown: %s", kq.describe(evl[i]))
        want[ud] = nil
        got = got + 1
      end
      saw("oneshot", n)
    end
    lost = lost + (N - got)
    if raised > 0 and it > 3 then break end
  end
  collectgarbage("incremental")
  check(results.during > 0, "no finaliser ran during a kevent call: the test lost its point")
  drift(raised == 0, "%d kevent calls raised while finalisers used the queue (first: %s)",
    raised, first_raise)
  drift(lost == 0, "%d ONESHOT events lost (handed out by the engine, never seen)", lost)
  collectgarbage() collectgarbage()
  drift(results.err == 0, "%d finalisers could not delete their knote: %s", results.err, tostring(results.msg))
  local evl = {}
  local leftover = 0
  for k = 1, made do
    local n = kev(q, { { ident = gc_ident + k, filter = U, flags = DEL } }, evl, 1, 0)
    if not (n == 1 and evl[1].data == ENOENT) then leftover = leftover + 1 end
  end
  drift(leftover == results.err, "%d knotes left although their finaliser deleted them",
    leftover - results.err)
  -- A changelist whose second change raises when read: nothing applied.
  local ud = udata("first change", true)
  local bad = setmetatable({ ident = 8, filter = U, flags = ADD },
    { __index = function(_, k) if k == "udata" then error("boom") end end })
  local ok, err = pcall(q.kevent, q, { { ident = 7, filter = U, flags = ADD, udata = ud }, bad })
  check(not ok and tostring(err):find("boom"), "a raising change: %s", tostring(err))
  ud = nil -- luacheck: ignore 311 (drops the references)
  local n = kev(q, { { ident = 7, filter = U, flags = DEL } }, evl, 1, 0)
  check(n == 1 and evl[1].data == ENOENT, "a change before a raising one was applied")
  n = count_live("strict", "first change")
  drift(n == 0, "a change before one whose reading raised: its udata is still referenced")
  -- A change whose reading replaces an earlier entry of the changelist:
  -- the knote gets the udata read first.
  local first = udata("read first", true)
  local cl = {}
  cl[1] = { ident = 10, filter = U, flags = ADD, udata = first }
  cl[2] = setmetatable({ ident = 11, filter = U, flags = ADD }, { __index = function(_, k)
    if k == "udata" then cl[1] = { ident = 10, filter = U, flags = ADD, udata = "replacement" } end
  end })
  ok, err = pcall(q.kevent, q, cl)
  check(ok, "a changelist changed while read: %s", tostring(err))
  n = kev(q, { { ident = 10, filter = U, fflags = kq.NOTE_TRIGGER, flags = kq.EV_KEEPUDATA } },
    evl, 1, 0)
  drift(n == 1 and evl[1].udata == first, "a changelist changed while read: the knote has udata %s",
    n == 1 and tostring(evl[1].udata) or "(no event)")
  kev(q, { { ident = 10, filter = U, flags = DEL }, { ident = 11, filter = U, flags = DEL } }, nil, 0)
  first = nil -- luacheck: ignore 311 (drops the reference)
  -- A closed LuaSocket as ident is named as such.
  local s = socket.tcp()
  s:close()
  ok, err = pcall(q.kevent, q, { { ident = s, filter = R, flags = ADD } })
  drift(not ok and tostring(err):find("closed"), "a closed socket as ident: %s", tostring(err))
  -- A fork inside a kevent call: the child's call must not touch a queue
  -- the child made on the same number.
  local parent = t.getpid()
  local child_q
  local forking = setmetatable({ ident = 9, filter = U, flags = ADD }, {
    __index = function(_, k)
      if k == "udata" and t.getpid() == parent and not child_q then
        local pid = t.fork()
        if pid == 0 then child_q = kq.kqueue() else child_q = pid end
      end
    end })
  io.stdout:flush()
  ok, err = pcall(q.kevent, q, { forking })
  if t.getpid() ~= parent then
    -- The call must fail in the child (raise, or return nil, msg, errno).
    local code = 0
    if ok and err ~= nil then code = 1 end
    local m = child_q:kevent({ { ident = 9, filter = U, flags = DEL } }, evl, 1, 0)
    if not (m == 1 and evl[1].data == ENOENT) then code = code + 2 end
    t._exit(code)
  end
  local pid = child_q
  b:child(pid)
  check(ok, "kevent in the parent of a fork made during the call: %s", tostring(err))
  local _, status = t.waitpid(pid)
  b:reaped(pid)
  drift(status == 0, "a fork inside kevent: child status 0x%x (1: the call succeeded in the child, "
    .. "2: it applied the parent's changes to the child's own queue)", status)
  kev(q, { { ident = 9, filter = U, flags = DEL } }, nil, 0)
  local nl = count_live("strict", "oneshot")
  drift(nl == 0, "%d ONESHOT udata still referenced after delivery", nl)
end)

-- ==== driver ===============================================================

-- Failures of a phase are printed for the first round that had any; later
-- rounds with failures are only counted.
local reports, reported = {}, {}
local function report(name, round)
  for _, msg in ipairs(failures) do
    local key = name .. ": " .. msg:gsub("0x%x+", "#"):gsub("[%d.]+", "#")
    local r = reported[key]
    if r then r.again = r.again + 1
    else
      r = { name = name, round = round, msg = msg, again = 0 }
      reported[key] = r
      reports[#reports + 1] = r
    end
  end
  failures = {}
end

local function run_phase(name, round, base)
  current = string.format("%s (round %d)", name, round)
  if progress_w then t.write(progress_w, name .. " (round " .. round .. ")\n") end
  caused, seen = {}, {}
  idle.cpu, idle.wait = 0, 0
  local b = bag()
  scrub()
  collectgarbage() collectgarbage()
  local fd0, heap0 = t.fdcount(), collectgarbage("count")
  local c0, e0 = stats.calls, stats.events
  local ok, err = xpcall(phases[name], function(e)
    if getmetatable(e) == Failure then return e.msg end
    return debug.traceback(tostring(e), 2)
  end, b)
  b:release()
  if not ok then
    failures[#failures + 1] = err
    report(name, round)
    return false
  end
  for kind, n in pairs(caused) do
    drift((seen[kind] or 0) == n, "%s: caused %d, saw %d", kind, n, seen[kind] or 0)
  end
  for kind, n in pairs(seen) do
    drift(caused[kind] ~= nil, "%s: saw %d, caused none", kind, n)
  end
  if idle.wait > 0 then
    drift(idle.cpu / idle.wait < SPIN_BOUND,
      "idle waits spin: %.3f s CPU in %.2f s of waiting", idle.cpu, idle.wait)
  end
  local nl, tag = count_live()
  drift(nl == 0, "%d udata still referenced after the queues closed (one: %s)", nl, tag)
  local fd1, heap1 = t.fdcount(), collectgarbage("count")
  drift(fd1 == fd0, "descriptors %d before, %d after", fd0, fd1)
  drift(heap1 - heap0 < HEAP_BOUND, "Lua heap %.0f kB before, %.0f kB after", heap0, heap1)
  local rss = rss_kb()
  if round == 1 then base[name] = rss
  else
    drift(rss - base[name] < RSS_BOUND, "RSS %d kB after round 1, %d kB after round %d",
      base[name], rss, round)
  end
  report(name, round)
  io.stdout:flush()
  io.write(string.format("  %-8s round %d: %d calls, %d events%s\n", name,
    round, stats.calls - c0, stats.events - e0, idle.wait == 0 and "" or
    string.format(", idle waits used %.4f s CPU per s", idle.cpu / idle.wait)))
  return true
end

local function main()
  local seconds = tonumber(arg[1] or os.getenv("SOAK_SECONDS") or 60)
  local chosen = {}
  for i = 2, #arg do
    if not phases[arg[i]] then error("unknown phase " .. arg[i]) end
    chosen[#chosen + 1] = arg[i]
  end
  if #chosen == 0 then chosen = order end
  -- The watchdog: killed by nothing, it kills the soak when no phase
  -- starts or ends for WATCHDOG seconds, naming the last phase it heard of.
  local pr, pw = assert(t.pipe())
  local soak = t.getpid()
  local dog = t.fork()
  if dog == 0 then
    t.close(pw)
    local last = "start"
    while true do
      local t0 = now()
      if t.poll_in(pr, WATCHDOG * 1000) then
        local s = t.read(pr, 4096)
        if not s or s == "" then t._exit(0) end
        last = s:match("([^\n]*)\n$") or last
      elseif now() - t0 >= WATCHDOG - 1 then
        io.stderr:write(string.format("soak: HANG in phase %s: no progress for %d s; killing it\n",
          last, WATCHDOG))
        t.kill(soak, t.signals.SIGKILL)
        t._exit(1)
      else
        t._exit(0) -- the soak closed the pipe
      end
    end
  end
  t.close(pr)
  progress_w = pw
  local t0, round, base, dead = now(), 0, {}, {}
  repeat
    round = round + 1
    for _, name in ipairs(chosen) do
      if not dead[name] and not run_phase(name, round, base) then dead[name] = true end
    end
    local alive = 0
    for _, name in ipairs(chosen) do if not dead[name] then alive = alive + 1 end end
  until now() - t0 >= seconds or alive == 0
  t.close(pw)
  progress_w = nil
  t.waitpid(dog)
  print(string.format("soak: %d rounds in %.0f s: %d kevent calls, %d events, %d checks",
    round, now() - t0, stats.calls, stats.events, stats.checks))
  if #reports > 0 then
    for _, r in ipairs(reports) do
      io.stderr:write(string.format("soak: DRIFT %s (round %d%s): %s\n", r.name, r.round,
        r.again > 0 and string.format(", and %d later rounds", r.again) or "", r.msg))
    end
    io.stderr:write(string.format("soak: %d kinds of failure\n", #reports))
    os.exit(1)
  end
  print("soak: ok")
end

main()
