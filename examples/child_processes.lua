#!/usr/bin/env lua
-- examples/child_processes.lua: waiting for processes with EVFILT_PROC.
--
--   lua examples/child_processes.lua
--
-- EVFILT_PROC with NOTE_EXIT on a pid fires once when that process ends.
-- The event has flags EV_ONESHOT|EV_CLEAR|EV_EOF, fflags NOTE_EXIT, and
-- `data` = the status word wait(2) would give (exit code << 8, or the
-- number of the signal that killed it).  kq does not reap the process:
-- whoever started it still collects it (here pclose, through p:close()).
--
-- Plain Lua has no fork.  io.popen runs a shell, and `echo $$` prints that
-- shell's pid; with `exec` the shell then becomes the command, so the pid
-- is the command's.  Three children: two that exit with a code, one that
-- we kill.

-- Find kq in this checkout (../lua, ../build) as well as where
-- `make install` puts it.
local dir = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
package.path = dir .. "/../lua/?.lua;" .. dir .. "/../lua/?/init.lua;"
  .. package.path
package.cpath = dir .. "/../build/?.so;" .. package.cpath

local kq = require("kq")

local PROC = kq.EVFILT_PROC

-- Start a shell command; returns its pid and the popen handle.
local function spawn(command)
  local p = assert(io.popen("echo $$; " .. command, "r"))
  local pid = tonumber(p:read("*l"))
  return assert(pid, "no pid from the child"), p
end

-- The wait(2) status word, decoded.
local function describe_status(status)
  if status % 128 == 0 then -- WIFEXITED: no signal in the low 7 bits
    return "exited with code " .. math.floor(status / 256) % 256
  end
  return "killed by signal " .. status % 128
end

local q = assert(kq.kqueue())

local children = {
  { name = "fast", command = "sleep 0.1; exit 3" },
  { name = "slow", command = "sleep 0.2; exit 0" },
  { name = "victim", command = "exec sleep 30" },
}
local changes = {}
for _, c in ipairs(children) do
  c.pid, c.pipe = spawn(c.command)
  -- udata: the child's record, handed back with its event.  A child that
  -- has already exited (not yet reaped) still fires at once.
  changes[#changes + 1] = kq.change(c.pid, PROC, kq.EV_ADD, kq.NOTE_EXIT, 0, c)
end
-- All three in one call; with room for events, a change that fails comes
-- back as an EV_ERROR entry instead of failing the whole call.
local events = {}
local n = assert(q:kevent(changes, events, #changes, 0))
for i = 1, n do
  assert(kq.band(events[i].flags, kq.EV_ERROR) == 0, kq.describe(events[i]))
end

-- Terminate the third one (SIGTERM, signal 15).
assert(os.execute("kill -TERM " .. children[3].pid))

-- Wait for the three exits (at most 10 s).
local exited = 0
while exited < #children do
  n = assert(q:kevent(nil, events, 8, 10))
  assert(n > 0, "no child exited within 10 s")
  for i = 1, n do
    local ev = events[i]
    local c = ev.udata
    c.status = ev.data
    c.flags, c.fflags = ev.flags, ev.fflags
    exited = exited + 1
  end
end

-- Report in a fixed order (the exits themselves may come in any order).
for _, c in ipairs(children) do
  print(string.format("%s: %s (data=%d flags=%s fflags=%s)", c.name,
    describe_status(c.status), c.status, kq.flagnames(c.flags),
    kq.fflagnames(PROC, c.fflags)))
  -- The child was not reaped by kq: pclose reaps it, and (Lua 5.2 and
  -- later; 5.1 and LuaJIT return only true) gets the same status.
  local _, how, code = c.pipe:close()
  local same = how == nil
    or describe_status(c.status) == (how == "exit" and "exited with code "
      or "killed by signal ") .. code
  print(string.format("%s: reaped by pclose%s", c.name,
    same and "" or ", which saw another status: " .. how .. " " .. code))
end
