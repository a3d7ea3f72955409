#!/usr/bin/env lua
-- examples/signals.lua: counting signals with EVFILT_SIGNAL.
--
--   lua examples/signals.lua
--
-- EVFILT_SIGNAL (ident = a signal number) counts the signals sent to the
-- process after it was added; each event's `data` is the count since the
-- last one (EV_CLEAR is implied).  Here the program sends itself SIGUSR1
-- three times and SIGUSR2 once, then collects the counts.
--
-- The default action of a signal is another matter:
--   * on FreeBSD, macOS and the other BSDs, kqueue only watches: a
--     SIGUSR1 still kills the process unless the program ignores it first
--     (SIG_IGN; ignored signals are still counted).  Plain Lua cannot, so
--     on those systems this recipe uses luaposix (`posix.signal`) for it.
--   * kq's Linux engine holds the default action back while the signal
--     is watched, so nothing else is needed there.

-- Find kq in this checkout (../lua, ../build) as well as where
-- `make install` puts it.
local dir = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
package.path = dir .. "/../lua/?.lua;" .. dir .. "/../lua/?/init.lua;"
  .. package.path
package.cpath = dir .. "/../build/?.so;" .. package.cpath

local kq = require("kq")

-- The first line a shell command prints.
local function sh(command)
  local p = assert(io.popen(command, "r"))
  local line = p:read("*l")
  p:close()
  return line
end

-- Signal numbers are not the same everywhere (kq has no SIG* constants).
local uname = sh("uname -s")
local SIGUSR1, SIGUSR2 = 30, 31 -- the BSDs and macOS
if uname == "Linux" then SIGUSR1, SIGUSR2 = 10, 12 end

if kq.backend ~= "linux" then
  local ok, psignal = pcall(require, "posix.signal")
  if not ok then
    io.stderr:write("signals: on a native kqueue this recipe needs luaposix"
      .. " to ignore SIGUSR1/SIGUSR2\n")
    os.exit(1)
  end
  psignal.signal(SIGUSR1, psignal.SIG_IGN)
  psignal.signal(SIGUSR2, psignal.SIG_IGN)
end

-- Our own pid: the shell io.popen starts is our child, so its $PPID is
-- us.  (On Linux, field 1 of /proc/self/stat gives it too.)
local pid = assert(tonumber(sh("echo $PPID")))

local q = assert(kq.kqueue())
local SIGNAL, EV_ADD, EV_DELETE = kq.EVFILT_SIGNAL, kq.EV_ADD, kq.EV_DELETE
assert(q:kevent({
  kq.change(SIGUSR1, SIGNAL, EV_ADD, 0, 0, "SIGUSR1"),
  kq.change(SIGUSR2, SIGNAL, EV_ADD, 0, 0, "SIGUSR2"),
}))

-- Send them.  os.execute runs `kill` in a shell: the signals really come
-- from another process.
local sent = { SIGUSR1 = 3, SIGUSR2 = 1 }
for _ = 1, sent.SIGUSR1 do assert(os.execute("kill -s USR1 " .. pid)) end
for _ = 1, sent.SIGUSR2 do assert(os.execute("kill -s USR2 " .. pid)) end

-- Collect until every signal is counted (at most 5 s).  Signals sent
-- before a collect add up in one event, but a count may also arrive in
-- several events, so add the `data` of each.
local counted = { SIGUSR1 = 0, SIGUSR2 = 0 }
local events = {}
while counted.SIGUSR1 < sent.SIGUSR1 or counted.SIGUSR2 < sent.SIGUSR2 do
  local n = assert(q:kevent(nil, events, 8, 5))
  if n == 0 then break end
  for i = 1, n do
    local ev = events[i]
    counted[ev.udata] = counted[ev.udata] + ev.data
  end
end
-- Anything extra would show here: give late counts 50 ms to arrive.
local n = assert(q:kevent(nil, events, 8, 0.05))
for i = 1, n do
  counted[events[i].udata] = counted[events[i].udata] + events[i].data
end

for _, name in ipairs({ "SIGUSR1", "SIGUSR2" }) do
  print(string.format("%s: sent %d, counted %d", name, sent[name],
    counted[name]))
end

-- Stop watching.  With the Linux engine this also gives the signals their
-- former disposition back (here: the default, which terminates).
assert(q:kevent({
  kq.change(SIGUSR1, SIGNAL, EV_DELETE),
  kq.change(SIGUSR2, SIGNAL, EV_DELETE),
}))
print("done")
os.exit(counted.SIGUSR1 == sent.SIGUSR1 and counted.SIGUSR2 == sent.SIGUSR2
  and 0 or 1)
