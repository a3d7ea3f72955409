-- driver.lua - runs every benchmark scenario for every contender, rounds
-- interleaved (round 1 of everything, then round 2, ...) so that the noise
-- of a shared machine falls on all contenders alike, and prints one table:
-- the median of the rounds in ns per unit (CLOCK_MONOTONIC), the spread,
-- the ratio to the scenario's floor measured in the same run, the same for
-- the process CPU time (user + system, which time lost to other processes
-- does not inflate), and the targets as PASS/MISS (judged on wall time).
--
--   lua5.4 driver.lua [--quick] [--rounds R] [--seconds T] [--tsv FILE]
--
-- Run from bench/ (the Makefile does).  Each measurement is one process:
-- cbench (C), kq_bench.lua, luv_bench.lua, cqueues_bench.lua, py_bench.py.
-- A contender whose library is missing is skipped; a contender that fails
-- makes the exit status 1 (after the table).  Times are never judged in
-- the exit status: PASS/MISS lines are information.

local quick, rounds, seconds, tsv = false, nil, nil, nil
do
  local i = 1
  while arg[i] do
    local a = arg[i]
    if a == "--quick" then quick = true
    elseif a == "--rounds" then i = i + 1; rounds = tonumber(arg[i])
    elseif a == "--seconds" then i = i + 1; seconds = tonumber(arg[i])
    elseif a == "--tsv" then i = i + 1; tsv = arg[i]
    else error("unknown argument " .. a) end
    i = i + 1
  end
end
rounds = rounds or (quick and 2 or 7)
seconds = seconds or (quick and 0.05 or 0.25)
local NTIMERS = quick and 10000 or 100000
local NKNOTES = quick and 10000 or 100000
local NREADKNOTES = 10000 -- one descriptor each: 5,000 socketpairs

local LUA = os.getenv("LUA") or "lua5.4"
local PYTHON = os.getenv("PYTHON") or "python3"
local LUAENV = "LUA_PATH_5_4='../lua/?.lua;../lua/?/init.lua;;' " ..
  "LUA_CPATH_5_4='./build/?.so;../build/?.so;;' "

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, how, code = p:close()
  return ok, out, how, code
end

local function probe(cmd)
  return (sh(cmd .. " >/dev/null 2>&1"))
end

-- What can run here.
local have = {
  cbench = probe("test -x ./build/cbench"),
  kq = probe("test -f ../build/kq/core.so"),
  luv = probe(LUAENV .. LUA .. " -e 'require\"luv\"'"),
  cqueues = probe(LUAENV .. LUA .. " -e 'require\"cqueues\"'"),
  python = probe(PYTHON .. " -c 'import select; select.epoll'"),
}
local why = {
  cbench = "build/cbench not built", kq = "../build/kq/core.so not built",
  luv = "luv not installed", cqueues = "cqueues not installed",
  python = "python3 with select.epoll not found",
}

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
      row("kq", "kq from Lua 5.4, kq.eventlist()", K("ready")),
      row("kq-plain", "kq from Lua 5.4, plain {} eventlist", K("ready-plain")),
      row("luv", "luv (uv_poll, uv.run once)", V("ready")),
      row("cqueues", "cqueues (coroutine per fd)", Q("ready")),
      row("python", "Python select.epoll", P("ready")),
    } },
  { n = 2, title = "readiness + data: every event's exact byte count",
    unit = "ns/event", floor = "epoll", rows = {
      row("epoll", "raw C epoll_wait + FIONREAD/event", C("data", "epoll")),
      row("kqe", "engine from C, default (ev.data)", C("data", "kqe")),
      row("kqe-lazy", "engine from C, lazy + kqe_event_data", C("data", "kqe-lazy")),
      row("kq", "kq from Lua 5.4, kq.eventlist()", K("data")),
      row("kq-plain", "kq from Lua 5.4, plain {} eventlist", K("data-plain")),
      row("python", "Python epoll + ioctl FIONREAD", P("data")),
    } },
  { n = 3, title = "registration: 10,000 descriptors added then deleted, changelists of 1,000",
    unit = "ns/change", floor = "epoll", rows = {
      row("epoll", "raw C epoll_ctl ADD/DEL", C("reg", "epoll")),
      row("kqe", "engine from C (kqe_kevent)", C("reg", "kqe")),
      row("kq", "kq from Lua 5.4, nevents 0", K("reg")),
      row("kq-room", "kq from Lua 5.4, eventlist room 1,000", K("reg-room")),
      row("luv", "luv (poll:start + run nowait, poll:stop)", V("reg")),
      row("python", "Python epoll register/unregister", P("reg")),
    } },
  { n = 4, title = string.format("timers: %d oneshot 1 ms timers registered, all collected", NTIMERS),
    unit = "ns/timer", floor = "luv", rows = {
      row("kqe", "engine from C", C("timer", "kqe", NTIMERS)),
      row("kq", "kq from Lua 5.4", K("timer", NTIMERS)),
      row("luv", "luv (uv_timer, handles made beforehand)", V("timer", NTIMERS)),
    } },
  { n = 5, title = "wake-up: trigger then wait, one thread",
    unit = "ns/round trip", floor = "epoll", rows = {
      row("epoll", "raw C eventfd write+epoll_wait+read", C("wake", "epoll")),
      row("kqe", "engine from C (EVFILT_USER, one kevent)", C("wake", "kqe")),
      row("kq", "kq from Lua 5.4 (EVFILT_USER, one call)", K("wake")),
      row("luv", "luv (uv_async send + run once)", V("wake")),
      row("python", "Python eventfd + epoll", P("wake")),
    } },
  { n = 6, title = "memory per registered knote",
    unit = "ns/knote", floor = nil, memory = true, rows = {
      row("kqe-user", string.format("C side, %d USER knotes", NKNOTES),
        C("mem", "kqe-user", NKNOTES)),
      row("kqe-timer", string.format("C side, %d TIMER knotes", NKNOTES),
        C("mem", "kqe-timer", NKNOTES)),
      row("kqe-read", string.format("C side, %d READ knotes (1 fd each)", NREADKNOTES),
        C("mem", "kqe-read", NREADKNOTES)),
      row("kq", string.format("Lua side, kq, %d USER knotes", NKNOTES), K("mem", NKNOTES)),
      row("luv", string.format("Lua side, luv, %d started uv_timers", NKNOTES),
        V("mem", NKNOTES)),
    } },
}

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
    if not have[r.need] then results[s.n][r.id].skip = why[r.need] end
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
  local m = #c // 2
  if #c % 2 == 1 then return c[m + 1] end
  return (c[m] + c[m + 1]) / 2
end

local function med(n, id, key)
  local res = results[n] and results[n][id]
  if not res then return nil end
  if key then return res.extra[key] and median(res.extra[key]) end
  return median(res.ns)
end

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
      "min..max", s.floor and ("x " .. s.floor) or "", "cpu", s.floor and "cpu x" or "",
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
      local cm = med(s.n, r.id, "cpu")
      print(string.format("  %-44s %10s %17s %8s %9s %8s  %s", r.label, fmt(m),
        fmt(lo, 0) .. ".." .. fmt(hi, 0),
        floor and string.format("%.2fx", m / floor) or "", fmt(cm),
        (cfloor and cm) and string.format("%.2fx", cm / cfloor) or "",
        table.concat(notes, " ")))
    end
  end
  print()
end

-- ---- targets ------------------------------------------------------------------

print("Targets (ratios within this run):")
if quick then
  print("  (quick mode: rounds far too short for these verdicts to mean anything;")
  print("   they are printed so that the code path stays exercised - use make bench)")
end
-- a and b are {scenario, contender}; judged on wall time, CPU time shown.
local function ratio_target(desc, a, b, limit)
  local wa, wb = med(a[1], a[2]), med(b[1], b[2])
  if not wa or not wb then
    print(string.format("  n/a   %s", desc))
    return
  end
  local ca, cb = med(a[1], a[2], "cpu"), med(b[1], b[2], "cpu")
  local r, rc = wa / wb, (ca and cb) and ca / cb
  print(string.format("  %s  %s: %.2fx (limit %.2fx; cpu time %s)",
    r <= limit and "PASS" or "MISS", desc, r, limit,
    rc and string.format("%.2fx, %s", rc, rc <= limit and "pass" or "miss") or "-"))
end
local function abs_target(desc, v, limit, unit)
  if not v then
    print(string.format("  n/a   %s", desc))
    return
  end
  print(string.format("  %s  %s: %s %s (limit %s)", v <= limit and "PASS" or "MISS", desc,
    fmt(v, v == math.floor(v) and 0 or 1), unit, tostring(limit)))
end
ratio_target("S1 kq from Lua vs raw C epoll, per event", { 1, "kq" }, { 1, "epoll" }, 2.5)
ratio_target("S1 kq from Lua vs luv, per event (<= 1: at least luv's events/s)",
  { 1, "kq" }, { 1, "luv" }, 1.0)
ratio_target("S2 kq from Lua vs epoll+FIONREAD, per event", { 2, "kq" }, { 2, "epoll" }, 1.15)
ratio_target("S1 engine from C, lazy, vs raw C epoll", { 1, "kqe-lazy" }, { 1, "epoll" }, 1.3)
ratio_target("S2 engine from C, default, vs epoll+FIONREAD", { 2, "kqe" }, { 2, "epoll" }, 1.15)
ratio_target("S3 engine from C vs raw epoll_ctl, per change", { 3, "kqe" }, { 3, "epoll" }, 1.5)
abs_target(string.format("S4 kq from Lua, descriptors for %d timers", NTIMERS),
  med(4, "kq", "fds"), 8, "fds")
abs_target(string.format("S4 engine from C, descriptors for %d timers", NTIMERS),
  med(4, "kqe", "fds"), 8, "fds")
ratio_target("S4 kq from Lua vs luv, per timer (<= 1: at least luv's throughput)",
  { 4, "kq" }, { 4, "luv" }, 1.0)
abs_target("S6 C side, bytes per USER knote", med(6, "kqe-user", "bytes"), 128, "bytes")
abs_target("S6 C side, bytes per TIMER knote", med(6, "kqe-timer", "bytes"), 128, "bytes")
print()
print(string.format("(%d s in all)", os.time() - start))
if failed then
  io.stderr:write("driver: some contenders failed (see above)\n")
  os.exit(1)
end
