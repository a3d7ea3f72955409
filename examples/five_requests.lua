#!/usr/bin/env lua
-- examples/five_requests.lua: the classic "five delayed HTTP requests"
-- kqueue example, replayed with kq.
--
--   lua examples/five_requests.lua [--server HOST:PORT] [--scale F]
--                                     [--timeout SECONDS] [--verbose]
--
-- Five requests go out in order 1..5; request i asks the server to wait
-- (5 - i) * 1000 ms before answering.  Each socket is registered with
-- EVFILT_READ and udata = i, and a single queue waits for all of them.
-- The answers come back in the reverse order, so it prints:
--
--   RECEIVED: 5
--   RECEIVED: 4
--   RECEIVED: 3
--   RECEIVED: 2
--   RECEIVED: 1
--   FINISHED
--
-- Each answer is read and checked: it must be a complete HTTP answer
-- "302 Found" with `Location: <url>` (what a /delay/<ms>/url/<url> server
-- answers), and it must not come before the delay that request asked for.
-- A READ event with only part of an answer re-arms the oneshot knote.
--
-- Without --server it starts examples/slow_server.lua on 127.0.0.1 (any
-- free port) and stops it at the end.  --server targets any server with the
-- /delay/<ms>/url/<url> scheme.  --scale multiplies every delay (0.1 runs
-- the whole thing in 0.4 s); it must be at least 0.001, since the scheme
-- counts whole milliseconds and below that two delays would be equal and
-- their order left to chance.  The order also needs the delays to be
-- longer than the server's scheduling hiccups: at 0.001 (1 ms apart) a
-- busy machine may swap two answers, which is then reported as a failure.
-- --timeout bounds the connect, and how long to wait for the answers
-- beyond the longest delay (default 5 seconds).  --verbose also prints
-- kq.describe(event) for each event (and, on stderr, the pid and address
-- of the server it started).
--
-- Anything that goes wrong (bad arguments, connection refused or timed
-- out, a wrong, early, out-of-order or missing answer, a connection closed
-- before its answer) is one line on stderr and exit status 1 (2 for bad
-- arguments).

-- Find kq in this checkout (../lua, ../build) as well as where
-- `make install` puts it.
local dir = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
package.path = dir .. "/../lua/?.lua;" .. dir .. "/../lua/?/init.lua;"
  .. package.path
package.cpath = dir .. "/../build/?.so;" .. package.cpath

local kq = require("kq")
local socket = require("socket") -- Debian package lua-socket

local NAME = "five_requests"

-- An error we raise on purpose: message and exit status, no traceback.
local Failure = {}
local function die(msg, status)
  error(setmetatable({ msg = msg, status = status or 1 }, Failure), 0)
end

local USAGE = "usage: five_requests.lua [--server HOST:PORT] [--scale F]"
  .. " [--timeout SECONDS] [--verbose]"

local function parse_args(args)
  local o = { scale = 1, timeout = 5, verbose = false }
  local i = 1
  local function value(name)
    i = i + 1
    local v = args[i]
    if v == nil then die("missing value after " .. name .. "; " .. USAGE, 2) end
    return v
  end
  while i <= #args do
    local a = args[i]
    if a == "--server" then
      local v = value(a)
      -- host:port, or [v6-address]:port
      local h, p = v:match("^%[([^%]]+)%]:(%d+)$")
      if not h then h, p = v:match("^([^:]+):(%d+)$") end
      p = tonumber(p)
      if not h or p < 1 or p > 65535 then
        die("bad --server '" .. v .. "': expected HOST:PORT", 2)
      end
      o.host, o.port = h, p
    elseif a == "--scale" or a == "--timeout" then
      local v = value(a)
      local f = tonumber(v)
      local min = 0.001
      if not f or f ~= f or f < min or f == math.huge then
        die("bad " .. a .. " '" .. v .. "': expected a number >= " .. min, 2)
      end
      o[a:sub(3)] = f
    elseif a == "--verbose" then
      o.verbose = true
    elseif a == "--help" or a == "-h" then
      print(USAGE)
      os.exit(0)
    else
      die("unknown argument '" .. a .. "'; " .. USAGE, 2)
    end
    i = i + 1
  end
  return o
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Start slow_server.lua with io.popen.  io.popen runs a shell: `echo $$`
-- prints the shell's pid, and `exec` then replaces the shell with the
-- server, so that pid is the server's.  The server prints its address
-- once it listens, and (--parent) exits when this pipe closes, so it
-- cannot outlive us even if we are killed.
local function start_server(q)
  -- The interpreter running us: the lowest negative index of `arg`.
  local i = -1
  while arg[i - 1] do i = i - 1 end
  local lua = arg[i] or "lua5.4"
  local cmd = "echo $$; exec " .. shell_quote(lua) .. " "
    .. shell_quote(dir .. "/slow_server.lua") .. " --parent 127.0.0.1:0"
  local pipe = io.popen(cmd, "r")
  if not pipe then die("cannot start " .. cmd) end
  local server = { pipe = pipe }
  -- Wait for its two lines, at most 10 s: a Lua file is a valid ident.
  -- Unbuffered, so a read takes no more than the line: bytes hidden in
  -- the FILE buffer would be invisible to the queue.
  pipe:setvbuf("no")
  local lines = {}
  while #lines < 2 do
    local events = {}
    local n, msg = q:kevent({ kq.change(pipe, kq.EVFILT_READ,
      kq.EV_ADD + kq.EV_ONESHOT) }, events, 1, 10)
    if not n then die(msg) end
    if n == 0 then
      server.pid = tonumber(lines[1])
      return server, "the server did not start within 10 s"
    end
    local line = pipe:read("*l")
    if not line then
      return server, "the server exited before listening"
    end
    lines[#lines + 1] = line
  end
  server.pid = tonumber(lines[1])
  local h, p = lines[2]:match("^LISTENING (.+):(%d+)$")
  if not (server.pid and h) then
    return server, "unexpected line from the server: " .. lines[2]
  end
  server.host, server.port = h, tonumber(p)
  return server
end

local function stop_server(server)
  if not server then return end
  if server.pid then os.execute("kill " .. server.pid .. " 2>/dev/null") end
  server.pipe:close() -- waits for it: no zombie left behind
end

-- An answer is at most this long; a longer one is an error.
local MAX_ANSWER = 16384

-- Read what has arrived for request i and check it once it is complete.
-- Returns true when the whole answer is in and is the one expected: a
-- "302" redirect to `url`, not earlier than the delay the request asked
-- for; false while more is to come.  Anything else dies with one line.
local function read_answer(r, i, url)
  local what = string.format("request %d (%d ms)", i, r.delay)
  -- Asked for more than there is, LuaSocket returns what the kernel had
  -- ("timeout", with the partial data) and keeps nothing in its own
  -- buffer, where the queue could not see it.
  local data, err, partial = r.sock:receive(MAX_ANSWER + 1 - #r.answer)
  r.answer = r.answer .. (data or partial)
  if #r.answer > MAX_ANSWER then die(what .. ": answer longer than 16 KiB") end
  local head = r.answer:match("^(.-\r\n)\r\n")
  local length = head and tonumber(head:lower():match(
    "\r\ncontent%-length:%s*(%d+)%s*\r\n") or "0")
  if not head or #r.answer < #head + 2 + length then
    if err == "closed" then
      die(what .. ": connection closed before a complete answer ("
        .. #r.answer .. " bytes)")
    end
    return false
  end
  local status = head:match("^HTTP/1%.%d (%d%d%d[^\r]*)\r\n")
  local location = head:match("\r\n[Ll]ocation:%s*([^\r]-)%s*\r\n")
  if not status or status:sub(1, 3) ~= "302" or location ~= url then
    die(string.format("%s: expected 302 to %s, got %s%s", what, url,
      status and ("'" .. status .. "'") or "no HTTP status line",
      location and (" to " .. location) or ""))
  end
  local elapsed = (socket.gettime() - r.sent) * 1000
  -- 1 ms of slack for the granularity of the clock.
  if elapsed + 1 < r.delay then
    die(string.format("%s: answered after %.0f ms", what, elapsed))
  end
  return true
end

local function main(o, q, sockets)
  local host, port = o.host, o.port
  local server
  if not host then
    local err
    server, err = start_server(q)
    sockets.server = server
    if err then die(err) end
    host, port = server.host, server.port
    if o.verbose then
      io.stderr:write(string.format("%s: server pid %d on %s:%d\n", NAME,
        server.pid, host, port))
    end
  end

  local url = "http://www.google.com"
  local reqs, maxdelay = {}, 0
  for i = 1, 5 do
    -- Connect with a timeout (LuaSocket); the requests go out below.
    local sock = assert(socket.tcp())
    sockets[i] = sock
    sock:settimeout(o.timeout)
    local ok, err = sock:connect(host, port)
    if not ok then
      die(string.format("cannot connect to %s:%d: %s", host, port, err))
    end
    local delay = math.floor((5 - i) * 1000 * o.scale + 0.5)
    maxdelay = math.max(maxdelay, delay)
    reqs[i] = { sock = sock, delay = delay, answer = "" }
  end

  -- All five requests back to back, in order 1..5, each as soon as its
  -- socket is connected, so that their delays decide the order.
  for i = 1, 5 do
    local r = reqs[i]
    local request = "GET /delay/" .. r.delay .. "/url/" .. url
      .. " HTTP/1.1\r\nHost: " .. host .. "\r\nConnection: close\r\n\r\n"
    r.sent = socket.gettime()
    local ok, err = r.sock:send(request)
    if not ok then
      die(string.format("cannot send to %s:%d: %s", host, port, err))
    end
    r.sock:settimeout(0) -- the rest is up to the queue

    -- One kevent call per request, as in the original: EVFILT_READ,
    -- EV_ADD | EV_ENABLE | EV_ONESHOT, and the request number as udata.
    local n, msg = kq.kevent(q, {
      { ident = r.sock, filter = kq.EVFILT_READ,
        flags = kq.EV_ADD + kq.EV_ENABLE + kq.EV_ONESHOT, udata = i },
    }, nil, 0, nil)
    if not n then die(msg) end
  end

  -- Wait until five answers are in.  The original waits forever; an
  -- overall deadline (the longest delay plus --timeout) keeps a silent
  -- server from hanging us.
  local wait = maxdelay / 1000 + o.timeout
  local deadline = socket.gettime() + wait
  local events, received = {}, 0
  while received < 5 do
    local left = math.max(0, deadline - socket.gettime())
    local n, msg = kq.kevent(q, nil, events, 10, left)
    if not n then die(msg) end
    if n == 0 then
      die(string.format("no answer to %d request(s) after %.1f s",
        5 - received, wait))
    end
    for j = 1, n do
      local ev = events[j]
      if kq.band(ev.flags, kq.EV_ERROR) ~= 0 then
        die("kevent: " .. kq.describe(ev))
      end
      local i = ev.udata
      local complete = read_answer(reqs[i], i, url)
      if complete then
        -- Answers come back in reverse: every later request is done.
        for k = i + 1, 5 do
          if not reqs[k].done then
            die(string.format("request %d (%d ms) was answered before"
              .. " request %d (%d ms)", i, reqs[i].delay, k, reqs[k].delay))
          end
        end
        reqs[i].done = true
        received = received + 1
        print("RECEIVED: " .. i)
      end
      if o.verbose then print("  " .. kq.describe(ev)) end
      if not complete then
        -- Part of the answer: wait for the rest (the knote was oneshot).
        n, msg = kq.kevent(q, { kq.change(reqs[i].sock, kq.EVFILT_READ,
          kq.EV_ADD + kq.EV_ONESHOT, 0, 0, i) })
        if not n then die(msg) end
      end
    end
  end
  kq.close(q)
  print("FINISHED")
end

local function run()
  local q, sockets
  local ok, err = xpcall(function()
    local o = parse_args(arg)
    q = assert(kq.kqueue())
    sockets = {}
    main(o, q, sockets)
  end, function(e)
    if getmetatable(e) == Failure then return e end
    return debug.traceback(tostring(e), 2)
  end)
  -- Clean up on every path: sockets, queue, and the server we started.
  if sockets then
    for i = 1, 5 do if sockets[i] then sockets[i]:close() end end
  end
  if q then kq.close(q) end
  if sockets then stop_server(sockets.server) end
  io.stdout:flush()
  if not ok then
    if getmetatable(err) == Failure then
      io.stderr:write(NAME, ": ", err.msg, "\n")
      os.exit(err.status)
    end
    io.stderr:write(NAME, ": ", err, "\n")
    os.exit(1)
  end
end

run()
