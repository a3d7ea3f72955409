-- examples/demo.lua: wait for a pipe to become readable with kq.
--
-- io.popen gives a Lua file handle reading from a pipe; kq accepts such a
-- handle as an ident.  Run with `make example`.
local kq = require("kq")

local q <close> = assert(kq.kqueue())
local pipe <close> = assert(io.popen("sleep 0.2; echo hello from the pipe", "r"))

-- Register interest: EVFILT_READ on the pipe, with a Lua value as udata.
assert(q:kevent({ kq.change(pipe, kq.EVFILT_READ, kq.EV_ADD, 0, 0, "the pipe") }))
print("waiting for " .. tostring(q) .. " ...")

local events = {}
local n = assert(q:kevent(nil, events, 8, 5))
for i = 1, n do
  local ev = events[i]
  print(kq.describe(ev))
  print(ev.udata .. " has " .. ev.data .. " bytes: " .. pipe:read("l"))
end

-- Done with it: remove the knote, then let <close> close queue and pipe.
assert(q:kevent({ kq.change(pipe, kq.EVFILT_READ, kq.EV_DELETE) }))
