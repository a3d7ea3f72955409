#!/usr/bin/env lua
-- examples/slow_server.lua: a small "delay" HTTP server built on kq.
--
--   lua examples/slow_server.lua [--parent] [HOST:PORT]
--
-- It answers `GET /delay/<ms>/url/<url>` after <ms> milliseconds with a
-- 302 redirect to <url> (the URL scheme of the delay services the
-- five_requests example was first written against), and anything else at
-- once with a 404.  HOST:PORT defaults to 127.0.0.1:0, port 0 meaning
-- "any free port".  Once it listens it prints one line on stdout:
--
--   LISTENING 127.0.0.1:40213
--
-- With --parent it also exits as soon as nobody reads its stdout any more
-- (the process that started it with io.popen closed the pipe or died), so
-- it never outlives the program that uses it.
--
-- One queue drives everything:
--   EVFILT_READ on the listening socket   a client is waiting to be accepted
--   EVFILT_READ on each client            request bytes, or EV_EOF
--   EVFILT_TIMER per request, ONESHOT     the delay is over: answer it,
--                                          and every request due before it
--   EVFILT_WRITE on a client              room to send the rest of an answer
--   EVFILT_WRITE|EV_CLEAR on stdout        (--parent) EV_EOF once the reader
--                                          of the pipe is gone

-- Find kq in this checkout (../lua, ../build) as well as where
-- `make install` puts it.
local dir = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
package.path = dir .. "/../lua/?.lua;" .. dir .. "/../lua/?/init.lua;"
  .. package.path
package.cpath = dir .. "/../build/?.so;" .. package.cpath

local kq = require("kq")
local socket = require("socket") -- Debian package lua-socket

local function fail(msg)
  io.stderr:write("slow_server: ", msg, "\n")
  os.exit(1)
end

-- Arguments.
local host, port, parent = "127.0.0.1", 0, false
for _, a in ipairs(arg) do
  if a == "--parent" then
    parent = true
  elseif a:match("^%-") then
    fail("unknown option " .. a .. " (usage: slow_server.lua [--parent] [HOST:PORT])")
  else
    local h, p = a:match("^%[?([^%]]*)%]?:(%d+)$")
    if not h or h == "" or tonumber(p) > 65535 then
      fail("bad address '" .. a .. "': expected HOST:PORT")
    end
    host, port = h, tonumber(p)
  end
end

-- The listening socket, non-blocking.
-- tcp4/tcp6 create the socket now (tcp() waits for bind, and an option
-- set before that would be lost).
local server = assert((host:find(":", 1, true) and socket.tcp6
  or socket.tcp4)())
assert(server:setoption("reuseaddr", true))
local ok, err = server:bind(host, port)
if not ok then fail("cannot bind " .. host .. ":" .. port .. ": " .. err) end
ok, err = server:listen(128)
if not ok then fail("cannot listen: " .. err) end
server:settimeout(0)
local bound_host, bound_port = server:getsockname()

local q = assert(kq.kqueue())
local READ, WRITE, TIMER = kq.EVFILT_READ, kq.EVFILT_WRITE, kq.EVFILT_TIMER
local EV_ADD, EV_DELETE, EV_ONESHOT, EV_CLEAR, EV_EOF =
  kq.EV_ADD, kq.EV_DELETE, kq.EV_ONESHOT, kq.EV_CLEAR, kq.EV_EOF

-- kq.kevent raises on misuse and returns nil, message on a system error;
-- with no eventlist a failed change comes back that way too.
local function change(ident, filter, flags, data, udata)
  local n, msg = q:kevent({ kq.change(ident, filter, flags, 0, data, udata) })
  if not n then error(msg, 2) end
end

-- The listening socket: `ident` may be any object with a getfd() method.
change(server, READ, EV_ADD)

if parent then
  -- Only the pipe's reader going away matters, so EV_CLEAR: one event
  -- for the first "writable", then one more with EV_EOF when it closes.
  change(1, WRITE, EV_ADD + EV_CLEAR, 0, "stdout")
end

io.stdout:write(string.format("LISTENING %s:%d\n", bound_host, bound_port))
io.stdout:flush()

-- Clients by descriptor: { sock=, inbuf=, outbuf=, deadline=, timer= }.
local clients = {}
-- Requests waiting for their deadline.  A deadline is counted from the
-- start of the loop turn that read the request, so requests read in one
-- turn keep the order of their delays exactly.
local waiting = {}
local now = socket.gettime()

local function close_client(fd)
  local c = clients[fd]
  if not c then return end
  clients[fd] = nil
  waiting[c] = nil
  -- Delete what is registered before closing: a descriptor number is
  -- reused at once, and its next owner should start with no knotes.
  q:kevent({
    kq.change(fd, READ, EV_DELETE),
    c.writing and kq.change(fd, WRITE, EV_DELETE) or nil,
  })
  if c.timer then q:kevent({ kq.change(fd, TIMER, EV_DELETE) }) end
  c.sock:close()
end

-- Send what we can; register for WRITE if the socket buffer is full.
local function flush(fd)
  local c = clients[fd]
  while c.sent < #c.outbuf do
    local last, e, partial = c.sock:send(c.outbuf, c.sent + 1)
    if last then
      c.sent = last
    elseif e == "timeout" then
      c.sent = partial
      if not c.writing then
        c.writing = true
        change(fd, WRITE, EV_ADD)
      end
      return
    else
      return close_client(fd) -- the client is gone
    end
  end
  close_client(fd) -- "Connection: close": the answer ends with the close
end

local function answer(fd, status, extra)
  local c = clients[fd]
  c.outbuf = "HTTP/1.1 " .. status .. "\r\n" .. (extra or "")
    .. "Content-Length: 0\r\nConnection: close\r\n\r\n"
  c.sent = 0
  flush(fd)
end

-- Answer every waiting request whose deadline is not after `limit`, in
-- deadline order: timers that fire in one batch, or whose registrations
-- were a little apart, never swap two answers.
local function answer_due(limit)
  local due = {}
  for c in pairs(waiting) do
    if c.deadline <= limit then due[#due + 1] = c end
  end
  table.sort(due, function(a, b) return a.deadline < b.deadline end)
  for _, c in ipairs(due) do
    waiting[c] = nil
    local fd = c.sock:getfd()
    if clients[fd] == c then answer(fd, "302 Found", c.location) end
  end
end

-- A full request head is in c.inbuf: start its timer, or answer now.
local function handle(fd)
  local c = clients[fd]
  local method, path = c.inbuf:match("^(%u+) (%S+) HTTP/1%.%d\r\n")
  local ms, url = (path or ""):match("^/delay/(%d+)/url/(.+)$")
  if method ~= "GET" or not ms then
    return answer(fd, "404 Not Found")
  end
  c.location = "Location: " .. url .. "\r\n"
  ms = tonumber(ms)
  c.deadline = now + ms / 1000
  waiting[c] = true
  if ms == 0 then return answer_due(now) end
  -- One oneshot timer per request; the client's descriptor is a handy
  -- unique ident (timers have their own ident space).
  c.timer = true
  change(fd, TIMER, EV_ADD + EV_ONESHOT, ms, "timer")
end

local function accept_all()
  while true do
    local sock = server:accept()
    if not sock then return end -- "timeout": nobody else is waiting
    sock:settimeout(0)
    local fd = sock:getfd()
    clients[fd] = { sock = sock, inbuf = "" }
    change(fd, READ, EV_ADD, 0, "client")
  end
end

local function on_read(fd, ev)
  local c = clients[fd]
  if not c then return end
  -- A request head is at most 16 KiB: read at most that much.  Asked for
  -- more than is there, LuaSocket returns what the kernel had ("timeout"
  -- with the partial data) and keeps nothing in its own buffer, where kq
  -- could not see it; a longer request is refused anyway.
  local got, e, data = c.sock:receive(16385 - #c.inbuf)
  data = got or data
  if c.deadline then
    -- The request is in; more input is ignored.  EOF before the answer
    -- means the client gave up.
    if kq.band(ev.flags, EV_EOF) ~= 0 or e == "closed" then
      close_client(fd)
    end
    return
  end
  c.inbuf = c.inbuf .. (data or "")
  if c.inbuf:find("\r\n\r\n", 1, true) then
    handle(fd)
  elseif e == "closed" or #c.inbuf > 16384 or got then
    close_client(fd)
  end
end

local events = {}
while true do
  local n, msg = q:kevent(nil, events, 64, nil)
  if not n then fail(msg) end
  now = socket.gettime()
  for i = 1, n do
    local ev = events[i]
    local fd = ev.ident
    if kq.band(ev.flags, kq.EV_ERROR) ~= 0 then
      fail("kevent error on " .. kq.describe(ev))
    elseif ev.udata == "stdout" then
      if kq.band(ev.flags, EV_EOF) ~= 0 then
        os.exit(0) -- whoever started us has gone
      end
    elseif ev.filter == READ and fd == server:getfd() then
      accept_all()
    elseif ev.filter == READ then
      on_read(fd, ev)
    elseif ev.filter == TIMER then
      local c = clients[fd]
      if c then
        c.timer = nil -- a ONESHOT knote is gone once delivered
        if waiting[c] then answer_due(math.max(now, c.deadline)) end
      end
    elseif ev.filter == WRITE and clients[fd] then
      flush(fd)
    end
  end
end
