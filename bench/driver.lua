-- driver.lua - runs every benchmark scenario for every contender, rounds
-- interleaved (round 1 of everything, then round 2, ...) so that the noise
-- of a shared machine falls on all contenders alike, and prints one table:
-- the median of the rounds in ns per unit (CLOCK_MONOTONIC), the spread,
-- the ratio to the scenario's floor measured in the same run, the same for
-- the process CPU time (user + system, which time lost to other processes
-- does not inflate), and the targets as PASS/MISS (judged on wall time).
--
--   lua5.4 driver.lua [--quick] [--rounds R] [--seconds T] [--tsv FILE]
--                     [--luas "lua5.1 luajit ..."]
--
-- Run from bench/ (the Makefile does).  Each measurement is one process:
-- cbench (C), kq_bench.lua, luv_bench.lua, cqueues_bench.lua, py_bench.py;
-- build/base/ holds cbench and kq at the commit before the engine's
-- restructure (bench/Makefile), build/LUA/ kq for each Lua of scenario 9.
-- A contender whose library is missing is skipped; a contender that fails
-- makes the exit status 1 (after the table).  In a full run times are
-- never judged in the exit status: PASS/MISS lines are information.  With
-- --quick (CI), a target missed by more than half its limit also makes
-- the exit status 1, so that a regression cannot land unseen; the margin
-- absorbs the noise of such short rounds.

local quick, rounds, seconds, tsv, luas = false, nil, nil, nil, nil
do
  local i = 1
  while arg[i] do
    local a = arg[i]
    if a == "--quick" then quick = true
    elseif a == "--rounds" then i = i + 1; rounds = tonumber(arg[i])
    elseif a == "--seconds" then i = i + 1; seconds = tonumber(arg[i])
    elseif a == "--tsv" then i = i + 1; tsv = arg[i]
    elseif a == "--luas" then i = i + 1; luas = arg[i]
    else error("unknown argument " .. a) end
    i = i + 1
  end
end
rounds = rounds or (quick and 3 or 7)
seconds = seconds or (quick and 0.05 or 0.25)
local NTIMERS = 100000 -- quick too: 10,000 timers weigh the queue's fixed cost more
local NKNOTES = quick and 10000 or 100000
local NREADKNOTES = 10000 -- one descriptor each: 5,000 socketpairs
local BASE = "b5c5ba7" -- the engine before its restructure (issue #14)

local LUA = os.getenv("LUA") or "lua5.4"
local PYTHON = os.getenv("PYTHON") or "python3"
local LUAENV = "LUA_PATH_5_4='../lua/?.lua;../lua/?/init.lua;;' " ..
  "LUA_CPATH_5_4='./build/?.so;../build/?.so;;' "

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("*a")
  local ok, how, code = p:close()
  return ok, out, how, code
end

local function probe(cmd)
  return (sh(cmd .. " >/dev/null 2>&1"))
end

-- What can run here.
local BASEENV = "LUA_PATH_5_4='build/base/src/lua/?.lua;build/base/src/lua/?/init.lua;;' " ..
  "LUA_CPATH_5_4='./build/?.so;build/base/?.so;;' "
local have = {
  cbench = probe("test -x ./build/cbench"),
  kq = probe("test -f ../build/kq/core.so"),
  luv = probe(LUAENV .. LUA .. " -e 'require\"luv\"'"),
  socket = probe(LUAENV .. LUA .. " -e 'require\"socket\"'"),
  cqueues = probe(LUAENV .. LUA .. " -e 'require\"cqueues\"'"),
  python = probe(PYTHON .. " -c 'import select; select.epoll'"),
  base = probe("test -x ./build/base/cbench -a -f ./build/base/kq/core.so"),
}
local why = {
  cbench = "build/cbench not built", kq = "../build/kq/core.so not built",
  luv = "luv not installed", socket = "LuaSocket not installed",
  cqueues = "cqueues not installed",
  python = "python3 with select.epoll not found",
  base = "build/base not built (no git history with " .. BASE .. ")",
}

-- Scenario 9's Luas: those asked for (--luas) or all five, each where its
-- interpreter and kq build (build/LUA/kq/core.so) are there.
local versions = {}
for l in (luas or "lua5.1 lua5.2 lua5.3 lua5.4 luajit"):gmatch("%S+") do
  local env = "LUA_PATH='../lua/?.lua;../lua/?/init.lua;;' LUA_CPATH='./build/" .. l ..
    "/?.so;;' "
  local ok = probe("test -f ./build/" .. l .. "/kq/core.so") and probe("command -v " .. l)
  versions[#versions + 1] = l
  have["kq-" .. l] = ok
  why["kq-" .. l] = "build/" .. l .. "/kq/core.so not built, or no " .. l
  have["luv-" .. l] = ok and probe(env .. l .. " -e 'require\"luv\"'")
  why["luv-" .. l] = "luv not installed for " .. l
  versions[l] = env
end

local function C(sc, who, n)
  return { need = "cbench", cmd = "./build/cbench " .. sc .. " " .. who .. " $T" ..
    (n and (" " .. n) or "") }
end
local function K(sc, n)
  return { need = "kq", cmd = LUAENV .. LUA .. " kq_bench.lua " .. sc .. " $T" ..
    (n and (" " .. n) or "") }
end
local function V(sc, n)
  return { need = "luv", cmd = LUAENV .. LUA .. " luv_bench.lua " .. sc .. " $T" ..
    (n and (" " .. n) or "") }
end
local function KB(sc, n) -- kq from Lua at BASE
  return { need = "base", cmd = BASEENV .. LUA .. " kq_bench.lua " .. sc .. " $T" ..
    (n and (" " .. n) or "") }
end
local function CB(sc, who, n) -- the engine from C at BASE
  return { need = "base", cmd = "./build/base/cbench " .. sc .. " " .. who .. " $T" ..
    (n and (" " .. n) or "") }
end
local function KV(l, sc) -- kq from Lua version l
  return { need = "kq-" .. l, cmd = versions[l] .. l .. " kq_bench.lua " .. sc .. " $T" }
end
local function VV(l, sc) -- luv from Lua version l
  return { need = "luv-" .. l, cmd = versions[l] .. l .. " luv_bench.lua " .. sc .. " $T" }
end
local function Q(sc)
  return { need = "cqueues", cmd = LUAENV .. LUA .. " cqueues_bench.lua " .. sc .. " $T" }
end
local function P(sc)
  return { need = "python", cmd = PYTHON .. " py_bench.py " .. sc .. " $T" }
end

local function row(id, label, spec, extra)
  spec.id, spec.label = id, label
  for k, v in pairs(extra or {}) do spec[k] = v end
  return spec
end

local scenarios = {
  { n = 1, title = "readiness delivery: 1,000 readable sockets, LT READ, eventlist 1,024",
    unit = "ns/event", floor = "epoll", rows = {
      row("epoll", "raw C epoll_wait", C("ready", "epoll")),
      row("kqe", "engine from C, default (data computed)", C("ready", "kqe")),
      row("kqe-lazy", "engine from C, lazy data", C("ready", "kqe-lazy")),
      row("kqe-lazy-base", "engine from C, lazy data, at " .. BASE, CB("ready", "kqe-lazy")),
      row("kq", "kq from Lua 5.4, kq.eventlist()", K("ready")),
      row("kq-base", "kq from Lua 5.4, kq.eventlist(), at " .. BASE, KB("ready")),
      row("kq-plain", "kq from Lua 5.4, plain {} eventlist", K("ready-plain")),
      row("bound-six", "bound: six fields written, no kqueue (C)", K("bound-six")),
      row("luv", "luv (uv_poll, uv.run once)", V("ready")),
      row("cqueues", "cqueues (coroutine per fd)", Q("ready")),
      row("python", "Python select.epoll", P("ready")),
    } },
  { n = 2, title = "readiness + data: every event's exact byte count",
    unit = "ns/event", floor = "epoll", rows = {
      row("epoll", "raw C epoll_wait + FIONREAD/event", C("data", "epoll")),
      row("kqe", "engine from C, default (ev.data)", C("data", "kqe")),
      row("kqe-base", "engine from C, default, at " .. BASE, CB("data", "kqe")),
      row("kqe-lazy", "engine from C, lazy + kqe_event_data", C("data", "kqe-lazy")),
      row("kq", "kq from Lua 5.4, kq.eventlist()", K("data")),
      row("kq-base", "kq from Lua 5.4, kq.eventlist(), at " .. BASE, KB("data")),
      row("kq-plain", "kq from Lua 5.4, plain {} eventlist", K("data-plain")),
      row("python", "Python epoll + ioctl FIONREAD", P("data")),
    } },
  { n = 3, title = "registration: 10,000 descriptors added then deleted, changelists of 1,000",
    unit = "ns/change", floor = "epoll", rows = {
      row("epoll", "raw C epoll_ctl ADD/DEL", C("reg", "epoll")),
      row("kqe", "engine from C (kqe_kevent)", C("reg", "kqe")),
      row("kqe-base", "engine from C, at " .. BASE, CB("reg", "kqe")),
      row("kq", "kq from Lua 5.4, nevents 0", K("reg")),
      row("kq-base", "kq from Lua 5.4, nevents 0, at " .. BASE, KB("reg")),
      row("kq-room", "kq from Lua 5.4, eventlist room 1,000", K("reg-room")),
      row("luv", "luv (poll:start + run nowait, poll:stop)", V("reg")),
      row("python", "Python epoll register/unregister", P("reg")),
    } },
  { n = 4, title = string.format("timers: %d oneshot 1 ms timers registered, all collected", NTIMERS),
    unit = "ns/timer", floor = "luv", rows = {
      row("kqe", "engine from C", C("timer", "kqe", NTIMERS)),
      row("kqe-base", "engine from C, at " .. BASE, CB("timer", "kqe", NTIMERS)),
      row("kq", "kq from Lua 5.4", K("timer", NTIMERS)),
      row("kq-base", "kq from Lua 5.4, at " .. BASE, KB("timer", NTIMERS)),
      row("luv", "luv (uv_timer, handles made beforehand)", V("timer", NTIMERS)),
    } },
  { n = 5, title = "wake-up: trigger then wait, one thread",
    unit = "ns/round trip", floor = "epoll", rows = {
      row("epoll", "raw C eventfd write+epoll_wait+read", C("wake", "epoll")),
      row("kqe", "engine from C (EVFILT_USER, one kevent)", C("wake", "kqe")),
      row("kqe-base", "engine from C, at " .. BASE, CB("wake", "kqe")),
      row("kq", "kq from Lua 5.4 (EVFILT_USER, one call)", K("wake")),
      row("kq-base", "kq from Lua 5.4, at " .. BASE, KB("wake")),
      row("luv", "luv (uv_async send + run once)", V("wake")),
      row("python", "Python eventfd + epoll", P("wake")),
    } },
  { n = 6, title = "memory per registered knote",
    unit = "ns/knote", floor = nil, memory = true, rows = {
      row("kqe-user", string.format("C side, %d USER knotes", NKNOTES),
        C("mem", "kqe-user", NKNOTES)),
      row("kqe-timer", string.format("C side, %d TIMER knotes", NKNOTES),
        C("mem", "kqe-timer", NKNOTES)),
      row("kqe-read", string.format("C side, %d READ knotes (1 fd each), fired once",
        NREADKNOTES), C("mem", "kqe-read", NREADKNOTES)),
      row("kqe-read-base", string.format("C side, %d READ knotes, at %s", NREADKNOTES, BASE),
        CB("mem", "kqe-read", NREADKNOTES)),
      row("kq", string.format("Lua side, kq, %d USER knotes", NKNOTES), K("mem", NKNOTES)),
      row("kq-read", string.format("Lua side, kq, %d READ knotes, udata a table each",
        NREADKNOTES), K("mem-read", NREADKNOTES)),
      row("luv", string.format("Lua side, luv, %d started uv_timers", NKNOTES),
        V("mem", NKNOTES)),
    } },
}

scenarios[#scenarios + 1] = { n = 7,
  title = "registration, one change per call: EV_ADD then EV_DELETE of one socket",
  unit = "ns/change", floor = "epoll", rows = {
    row("epoll", "raw C epoll_ctl ADD/DEL", C("reg1", "epoll")),
    row("kqe", "engine from C (kqe_kevent)", C("reg1", "kqe")),
    row("kqe-base", "engine from C, at " .. BASE, CB("reg1", "kqe")),
    row("kq", "kq from Lua 5.4, changelists reused", K("reg1")),
    row("kq-base", "kq from Lua 5.4, at " .. BASE, KB("reg1")),
    row("bound-call", "bound: method call reading 5 fields (C)", K("bound-call")),
    row("python", "Python epoll register/unregister", P("reg1")),
  } }
local function need(spec, also)
  spec.need = spec.need .. " " .. also
  return spec
end
scenarios[#scenarios + 1] = { n = 8,
  title = "connection churn: accept, register, read, answer, close (TCP loopback)",
  unit = "ns/conn", floor = "luv", rows = {
    row("epoll", "raw C epoll server", C("churn", "epoll")),
    row("kqe", "engine from C", C("churn", "kqe")),
    row("kqe-base", "engine from C, at " .. BASE, CB("churn", "kqe")),
    row("kq", "kq from Lua 5.4 + LuaSocket", need(K("churn"), "socket")),
    row("luv", "luv (uv_tcp: accept, read_start, write, close)", V("churn")),
    row("kq-raw", "kq from Lua 5.4, C accept and serve", K("churn-raw")),
    row("luv-raw", "luv, uv_poll, C accept and serve", V("churn-raw")),
  } }
do
  local rows = {}
  for _, l in ipairs(versions) do
    local vs = { vs = "luv-" .. l }
    rows[#rows + 1] = row("kq-" .. l, "kq.eventlist(), " .. l, KV(l, "ready"), vs)
    rows[#rows + 1] = row("kq-plain-" .. l, "plain {} eventlist, " .. l, KV(l, "ready-plain"),
      vs)
    rows[#rows + 1] = row("luv-" .. l, "luv, " .. l, VV(l, "ready"), vs)
  end
  scenarios[#scenarios + 1] = { n = 9, vs = "luv",
    title = "readiness delivery (scenario 1) on every Lua, beside luv on the same Lua",
    unit = "ns/event", floor = nil, rows = rows }
end

-- ---- measuring ------------------------------------------------------------

local function parse(out)
  local r = {}
  local line = out:match("(ns=[^\n]*)")
  if not line then return nil end
  for k, v in line:gmatch("(%w+)=([%d%.%-]+)") do r[k] = tonumber(v) end
  return r.ns and r or nil
end

local results = {} -- results[n][id] = { values = {...}, extra = {...}, err = ... }
local start = os.time()
for _, s in ipairs(scenarios) do
  results[s.n] = {}
  for _, r in ipairs(s.rows) do
    results[s.n][r.id] = { ns = {}, extra = {} }
    for n in r.need:gmatch("%S+") do
      if not have[n] and not results[s.n][r.id].skip then results[s.n][r.id].skip = why[n] end
    end
  end
end

local tsvf = tsv and assert(io.open(tsv, "w"))
if tsvf then tsvf:write("round\tscenario\tcontender\tns\textra\n") end
local failed = false
for round = 1, rounds do
  io.stderr:write(string.format("round %d/%d ", round, rounds))
  for _, s in ipairs(scenarios) do
    io.stderr:write(tostring(s.n))
    for _, r in ipairs(s.rows) do
      local res = results[s.n][r.id]
      if not res.skip and not res.err then
        local cmd = r.cmd:gsub("%$T", tostring(seconds))
        local ok, out = sh(cmd)
        local p = ok and parse(out)
        if not p then
          res.err = out:match("[^\n]*%S[^\n]*") or "no output"
          failed = true
          io.stderr:write(string.format("\n  %d/%s failed: %s\n  command: %s\n%s\n",
            s.n, r.id, res.err, cmd, out))
        else
          res.ns[#res.ns + 1] = p.ns
          for k, v in pairs(p) do
            if k ~= "ns" and k ~= "units" then
              res.extra[k] = res.extra[k] or {}
              table.insert(res.extra[k], v)
            end
          end
          if tsvf then
            local ex = {}
            for k, v in pairs(p) do if k ~= "ns" then ex[#ex + 1] = k .. "=" .. v end end
            table.sort(ex)
            tsvf:write(string.format("%d\t%d\t%s\t%.2f\t%s\n", round, s.n, r.id, p.ns,
              table.concat(ex, " ")))
          end
        end
      end
      io.stderr:write(".")
    end
    io.stderr:write(" ")
  end
  io.stderr:write("\n")
end
if tsvf then tsvf:close() end

local function median(t)
  if #t == 0 then return nil end
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  local m = math.floor(#c / 2)
  if #c % 2 == 1 then return c[m + 1] end
  return (c[m] + c[m + 1]) / 2
end

local function med(n, id, key)
  local res = results[n] and results[n][id]
  if not res then return nil end
  if key then return res.extra[key] and median(res.extra[key]) end
  return median(res.ns)
end

-- The quickest round: noise on a shared machine only ever adds time, so
-- the short rounds of a quick run are judged by their minimum.
local function best(n, id, key)
  local res = results[n] and results[n][id]
  local t = res and (key and res.extra[key] or not key and res.ns)
  if not t or #t == 0 then return nil end
  local m = math.huge
  for _, v in ipairs(t) do m = math.min(m, v) end
  return m
end
local judge = quick and best or med

-- ---- the table -------------------------------------------------------------

local function first_line(cmd)
  local ok, out = sh(cmd)
  return ok and out:match("[^\n]*") or "?"
end
local cpu = first_line("grep -m1 'model name' /proc/cpuinfo"):gsub("^model name%s*:%s*", "")
print(string.format("kq benchmarks (%s): %d rounds of %.2f s per contender, medians",
  quick and "quick" or "full", rounds, seconds))
print(string.format("machine: %s CPUs, %s, Linux %s; %s", first_line("nproc"), cpu,
  first_line("uname -r"), os.date("!%Y-%m-%d %H:%M UTC")))
print()

local function fmt(v, digits)
  if v == nil then return "-" end
  return string.format("%." .. (digits or 1) .. "f", v)
end

for _, s in ipairs(scenarios) do
  print(string.format("Scenario %d: %s", s.n, s.title))
  if s.memory then
    print(string.format("  %-44s %12s %12s  %s", "contender", "bytes/knote", "ns/knote",
      "notes"))
  else
    print(string.format("  %-44s %10s %17s %8s %9s %8s  %s", "contender", s.unit,
      "min..max", (s.floor or s.vs) and ("x " .. (s.floor or s.vs)) or "", "cpu",
      (s.floor or s.vs) and "cpu x" or "",
      "notes"))
  end
  local floor = s.floor and med(s.n, s.floor)
  local cfloor = s.floor and med(s.n, s.floor, "cpu")
  for _, r in ipairs(s.rows) do
    local res = results[s.n][r.id]
    local m = median(res.ns)
    if res.skip or res.err or not m then
      print(string.format("  %-44s %s", r.label,
        res.skip and ("skipped: " .. res.skip) or ("FAILED: " .. tostring(res.err))))
    elseif s.memory then
      local cb = med(s.n, r.id, "cbytes")
      print(string.format("  %-44s %12s %12s  %s", r.label, fmt(med(s.n, r.id, "bytes")),
        fmt(m), cb and ("+ " .. fmt(cb) .. " malloc'd outside the Lua heap") or ""))
    else
      local lo, hi = math.huge, -math.huge
      for _, v in ipairs(res.ns) do lo = math.min(lo, v); hi = math.max(hi, v) end
      local notes = {}
      if res.extra.fds then notes[#notes + 1] = "fds " .. fmt(med(s.n, r.id, "fds"), 0) end
      if res.extra.alloc then
        notes[#notes + 1] = "heap +" .. fmt(med(s.n, r.id, "alloc"), 3) .. " B/event"
      end
      local cm = med(s.n, r.id, "cpu")
      local f = r.vs and med(s.n, r.vs) or floor
      local cf = r.vs and med(s.n, r.vs, "cpu") or cfloor
      print(string.format("  %-44s %10s %17s %8s %9s %8s  %s", r.label, fmt(m),
        fmt(lo, 0) .. ".." .. fmt(hi, 0),
        f and string.format("%.2fx", m / f) or "", fmt(cm),
        (cf and cm) and string.format("%.2fx", cm / cf) or "",
        table.concat(notes, " ")))
    end
  end
  print()
end

-- ---- targets ------------------------------------------------------------------

-- Each target: PASS, MISS, or FAIL: a miss by more than half the limit in
-- wall time and in CPU time alike (the CPU time of a process is what other
-- processes on a shared machine inflate least), which makes a quick run
-- exit 1.  Ratios are of medians, in a quick run of the quickest rounds.
print("Targets (ratios within this run; issue numbers in brackets):")
if quick then
  print("  (quick mode: short rounds judged by their quickest, loose verdicts: only")
  print("   a miss by more than 50% fails the run; take the numbers from make bench)")
end
local hard_fail = false
local function verdict(v, limit, vcpu)
  if v <= limit then return "PASS" end
  if v > limit * 1.5 and (vcpu or v) > limit * 1.5 then
    hard_fail = true
    return "FAIL"
  end
  return "MISS"
end
-- a and b are {scenario, contender}: a's time over b's, judged on wall time
-- (CPU time shown).  slack: also met when a is at most slack ns above b.
local function ratio_target(desc, a, b, limit, slack)
  local wa, wb = judge(a[1], a[2]), judge(b[1], b[2])
  if not wa or not wb then
    print(string.format("  n/a   %s", desc))
    return
  end
  local ca, cb = judge(a[1], a[2], "cpu"), judge(b[1], b[2], "cpu")
  local r, rc = wa / wb, (ca and cb) and ca / cb
  local eff, ceff = limit, limit
  if slack then
    eff = math.max(limit, (wb + slack) / wb)
    ceff = cb and math.max(limit, (cb + slack) / cb) or eff
  end
  -- the CPU-time ratio, on the wall-time limit's scale
  local rcs = rc and rc * eff / ceff
  print(string.format("  %s  %s: %.2fx%s (limit %.2fx%s; cpu time %s)", verdict(r, eff, rcs),
    desc, r,
    slack and string.format(", +%.0f ns", wa - wb) or "", limit,
    slack and string.format(" or +%d ns", slack) or "",
    rc and string.format("%.2fx", rc) or "-"))
end
local function abs_target(desc, v, limit, unit)
  if not v then
    print(string.format("  n/a   %s", desc))
    return
  end
  print(string.format("  %s  %s: %s %s (limit %s)", verdict(v, limit), desc,
    fmt(v, v == math.floor(v) and 0 or 1), unit, tostring(limit)))
end
local function info(desc, v, unit)
  print(string.format("  info  %s: %s", desc, v and (fmt(v) .. " " .. unit) or "n/a"))
end

ratio_target("S1 kq from Lua vs raw C epoll, per event", { 1, "kq" }, { 1, "epoll" }, 2.5)
ratio_target("S1 kq, kq.eventlist(), vs luv (<= 0.83: 1.2x luv's events/s) [#15.3]",
  { 1, "kq" }, { 1, "luv" }, 1 / 1.2)
ratio_target("S1 kq, plain {} eventlist, vs luv (<= 1: luv's events/s) [#15.3]",
  { 1, "kq-plain" }, { 1, "luv" }, 1.0)
ratio_target("S2 kq from Lua, kq.eventlist(), vs epoll+FIONREAD [#15.3]",
  { 2, "kq" }, { 2, "epoll" }, 1.15, 100)
ratio_target("S1 engine from C, lazy, vs raw C epoll", { 1, "kqe-lazy" }, { 1, "epoll" }, 1.3)
ratio_target("S2 engine from C, default, vs epoll+FIONREAD", { 2, "kqe" }, { 2, "epoll" }, 1.15)
ratio_target("S3 engine from C vs raw epoll_ctl, per change", { 3, "kqe" }, { 3, "epoll" }, 1.5)
ratio_target("S7 kq from Lua vs raw epoll_ctl, one change per call [#15.1]",
  { 7, "kq" }, { 7, "epoll" }, 1.3, 300)
ratio_target("S8 kq + LuaSocket vs luv, per connection (<= 1: luv's conn/s) [#15.2]",
  { 8, "kq" }, { 8, "luv" }, 1.0)
ratio_target("S8 kq, C accept and serve, vs luv the same (<= 1) [#15.2]",
  { 8, "kq-raw" }, { 8, "luv-raw" }, 1.0)
abs_target(string.format("S4 kq from Lua, descriptors for %d timers", NTIMERS),
  med(4, "kq", "fds"), 8, "fds")
abs_target(string.format("S4 engine from C, descriptors for %d timers", NTIMERS),
  med(4, "kqe", "fds"), 8, "fds")
ratio_target("S4 kq from Lua vs luv, per timer (<= 1: at least luv's throughput)",
  { 4, "kq" }, { 4, "luv" }, 1.0)
abs_target("S6 C side, bytes per USER knote", med(6, "kqe-user", "bytes"), 128, "bytes")
abs_target("S6 C side, bytes per TIMER knote", med(6, "kqe-timer", "bytes"), 128, "bytes")
abs_target("S6 C side, bytes per READ knote, fired once [#15.4]", med(6, "kqe-read", "bytes"),
  160, "bytes")
info("S6 Lua side, bytes per READ knote with a udata [#15.4]", med(6, "kq-read", "bytes"),
  "bytes")
for _, l in ipairs(versions) do
  for _, id in ipairs({ "kq-" .. l, "kq-plain-" .. l }) do
    abs_target(string.format("S9 %s: Lua heap growth per event, %s [#12.2]", id, l),
      med(9, id, "alloc"), 1, "bytes")
  end
end
-- The restructure into floors (#14.5): no regression beyond noise.
for _, c in ipairs({ { 1, "kqe-lazy" }, { 1, "kq" }, { 2, "kqe" }, { 2, "kq" }, { 3, "kqe" },
  { 3, "kq" }, { 4, "kqe" }, { 4, "kq" }, { 5, "kqe" }, { 5, "kq" }, { 7, "kqe" },
  { 7, "kq" }, { 8, "kqe" } }) do
  ratio_target(string.format("S%d %s now vs at %s [#14.5]", c[1], c[2], BASE),
    c, { c[1], c[2] .. "-base" }, 1.10)
end
abs_target(string.format("S6 C side, READ knote bytes now over at %s [#14.5]", BASE),
  (med(6, "kqe-read", "bytes") and med(6, "kqe-read-base", "bytes")) and
  med(6, "kqe-read", "bytes") / med(6, "kqe-read-base", "bytes"), 1.0, "x")
print()
print(string.format("(%d s in all)", os.time() - start))
if failed then
  io.stderr:write("driver: some contenders failed (see above)\n")
  os.exit(1)
end
if quick and hard_fail then
  io.stderr:write("driver: a target was missed by more than 50% (FAIL above)\n")
  os.exit(1)
end
