#!/usr/bin/env lua
-- examples/echo_server.lua: a TCP echo server on one kq queue.
--
--   lua examples/echo_server.lua [HOST:PORT]     serve until killed
--   lua examples/echo_server.lua --selftest [N]  N clients, then exit
--
-- Prints "LISTENING HOST:PORT" once it listens (port 0: any free port;
-- the default is 127.0.0.1:0).  Try it with `nc 127.0.0.1 PORT`.
--
-- The pattern:
--   EVFILT_READ on the listener     accept every waiting connection
--   EVFILT_READ on a client         `data` bytes to read; EV_EOF once the
--                                   peer has finished sending
--   EVFILT_WRITE on a client        added only while output is pending,
--                                   deleted when it has all gone out
-- A client that stops reading does not block the others: its output
-- waits in a buffer, and its input is left unread (READ disabled) until
-- the buffer drains, so memory stays bounded.
--
-- --selftest runs N clients (default 20) inside the same process and the
-- same queue: each sends 200 000 bytes, half-closes, and checks that the
-- same bytes come back before the server closes.  It prints one summary
-- line and exits 0, or 1 if anything went wrong.

-- Find kq in this checkout (../lua, ../build) as well as where
-- `make install` puts it.
local dir = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
package.path = dir .. "/../lua/?.lua;" .. dir .. "/../lua/?/init.lua;"
  .. package.path
package.cpath = dir .. "/../build/?.so;" .. package.cpath

local kq = require("kq")
local socket = require("socket") -- Debian package lua-socket

local READ, WRITE = kq.EVFILT_READ, kq.EVFILT_WRITE
local EV_ADD, EV_DELETE, EV_ENABLE, EV_DISABLE, EV_EOF, EV_ERROR =
  kq.EV_ADD, kq.EV_DELETE, kq.EV_ENABLE, kq.EV_DISABLE, kq.EV_EOF,
  kq.EV_ERROR

local MAX_PENDING = 256 * 1024 -- per client, before we stop reading it

local q = assert(kq.kqueue())

-- Apply changes now; a failed change is an error.
local function change(...)
  local n, msg = q:kevent({ ... })
  if not n then error(msg, 2) end
end

-- Everything the kernel has for `sock`, without blocking.  Asking
-- LuaSocket for far more than is there makes it return it all (as the
-- partial result of a "timeout") and keep nothing in its own buffer,
-- where the queue could not see it.  Returns data, closed.
local function drain(sock)
  local _, err, data = sock:receive(1 << 30)
  return data or "", err == "closed"
end

-- Send from buf starting at byte `from`; returns the next byte to send,
-- or nil if the connection is broken.
local function send_some(sock, buf, from)
  if from > #buf then return from end
  local last, err, partial = sock:send(buf, from)
  if last then return last + 1 end
  if err == "timeout" then return partial + 1 end
  return nil
end

-- ---- the server ------------------------------------------------------

local handlers = {} -- fd -> function(event): who owns each descriptor

local function serve_client(sock)
  sock:settimeout(0)
  local fd = sock:getfd()
  local out, pos = "", 1      -- pending output: out:sub(pos)
  local reading, writing, eof = true, false, false

  local function close()
    handlers[fd] = nil
    -- Delete before close: the number is reused at once.
    change(kq.change(fd, READ, EV_DELETE))
    if writing then change(kq.change(fd, WRITE, EV_DELETE)) end
    sock:close()
  end

  -- After any input or output: adjust what we watch.
  local function update()
    if pos > #out then out, pos = "", 1 end
    local pending = #out - pos + 1
    if pending == 0 and eof then return close() end
    if pending > 0 and not writing then
      writing = true
      change(kq.change(fd, WRITE, EV_ADD))
    elseif pending == 0 and writing then
      writing = false
      change(kq.change(fd, WRITE, EV_DELETE))
    end
    -- Back-pressure: stop reading a client that does not read its echo.
    if not eof and reading and pending >= MAX_PENDING then
      reading = false
      change(kq.change(fd, READ, EV_DISABLE))
    elseif not eof and not reading and pending < MAX_PENDING then
      reading = true
      change(kq.change(fd, READ, EV_ENABLE))
    end
  end

  handlers[fd] = function(ev)
    if ev.filter == READ then
      local data, closed = drain(sock)
      out = out .. data
      if closed or ev.flags & EV_EOF ~= 0 then
        -- The peer sent everything (EV_EOF); finish echoing, then close.
        -- Without EV_CLEAR an EOF repeats on every call: stop reading.
        eof = true
        if reading then change(kq.change(fd, READ, EV_DISABLE)) end
        reading = false
      end
    else -- WRITE: room in the socket buffer
      if ev.flags & EV_EOF ~= 0 then return close() end -- peer is gone
    end
    pos = send_some(sock, out, pos)
    if not pos then return close() end
    update()
  end
  change(kq.change(fd, READ, EV_ADD))
end

local function listen(host, port)
  local server = assert(socket.tcp())
  server:setoption("reuseaddr", true)
  assert(server:bind(host, port))
  assert(server:listen(128))
  server:settimeout(0)
  handlers[server:getfd()] = function()
    -- `data` is the number waiting; accept until there are none left.
    while true do
      local sock = server:accept()
      if not sock then break end
      serve_client(sock)
    end
  end
  change(kq.change(server, READ, EV_ADD))
  return server
end

-- One turn of the loop: wait (at most `timeout` seconds, nil = forever),
-- then dispatch each event to the owner of its descriptor.  The handlers
-- only read their event, so the eventlist is a kq.eventlist(): read-only
-- views that kq rewrites in place, the cheapest way to receive events.
local events = kq.eventlist()
local function run_once(timeout)
  local n, msg = q:kevent(nil, events, 64, timeout)
  if not n then error(msg) end
  for i = 1, n do
    local ev = events[i]
    if ev.flags & EV_ERROR ~= 0 then error("kevent: " .. kq.describe(ev)) end
    local h = handlers[ev.ident]
    if h then h(ev) end
  end
  return n
end

-- ---- the self-test clients ---------------------------------------------

local function start_client(host, port, size, results)
  local sock = assert(socket.tcp())
  sock:settimeout(0)
  -- A non-blocking connect says "timeout": WRITE fires once connected.
  local ok, err = sock:connect(host, port)
  assert(ok or err == "timeout", err)
  local fd = sock:getfd()
  local payload = string.rep(string.format("%08x", fd), size // 8)
  local pos, got, done = 1, {}, false

  handlers[fd] = function(ev)
    if ev.filter == WRITE then
      pos = send_some(sock, payload, pos)
      if not pos or pos > #payload then
        -- All sent: stop watching WRITE and half-close, which the
        -- server sees as EV_EOF once it has read everything.
        change(kq.change(fd, WRITE, EV_DELETE))
        sock:shutdown("send")
      end
    else
      local data, closed = drain(sock)
      got[#got + 1] = data
      if (closed or ev.flags & EV_EOF ~= 0) and not done then
        -- The server closed after echoing everything.
        done = true
        handlers[fd] = nil
        change(kq.change(fd, READ, EV_DELETE))
        sock:close()
        results[#results + 1] = table.concat(got) == payload
      end
    end
  end
  change(kq.change(fd, WRITE, EV_ADD), kq.change(fd, READ, EV_ADD))
end

local function selftest(nclients)
  local server = listen("127.0.0.1", 0)
  local host, port = server:getsockname()
  local size, results = 200000, {}
  for _ = 1, nclients do start_client(host, port, size, results) end
  -- Everything runs in this one loop; give up after 30 s of silence.
  while #results < nclients do
    if run_once(30) == 0 then break end
  end
  local good = 0
  for _, r in ipairs(results) do if r then good = good + 1 end end
  print(string.format("selftest: %d clients, %d echoed %d bytes intact",
    nclients, good, size))
  server:close()
  q:close()
  os.exit(good == nclients and 0 or 1)
end

-- ---- main ----------------------------------------------------------------

if arg[1] == "--selftest" then
  local n = tonumber(arg[2] or "20")
  if not n or n < 1 or n ~= math.floor(n) then
    io.stderr:write("echo_server: --selftest expects a client count\n")
    os.exit(2)
  end
  selftest(math.floor(n))
else
  local host, port = "127.0.0.1", 0
  if arg[1] then
    host, port = arg[1]:match("^(.+):(%d+)$")
    if not host then
      io.stderr:write("echo_server: expected HOST:PORT or --selftest [N]\n")
      os.exit(2)
    end
  end
  local server = listen(host, tonumber(port))
  print(string.format("LISTENING %s:%d", server:getsockname()))
  io.stdout:flush()
  while true do run_once(nil) end
end
