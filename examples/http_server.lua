#!/usr/bin/env lua
-- examples/http_server.lua: a keep-alive HTTP/1.1 server on kq, with one
-- worker process per CPU, to start from.
--
--   lua examples/http_server.lua [--workers N] [OPTIONS] [HOST:PORT]
--
-- Every request gets the same answer, "200 OK" with the body
-- "Hello, world\n" and a header `X-Worker: <n>` naming the worker that
-- served it.  Requests are parsed only as far as finding where each ends:
-- the head (at most 16 KiB) up to the blank line, then Content-Length
-- bytes of body.  Pipelined requests are answered in order.  A request
-- with a chunked body gets 501 and the connection is closed (its end
-- cannot be found without decoding it); a malformed one gets 400, a head
-- over 16 KiB 431.  HTTP/1.0, or `Connection: close`, closes after the
-- answer.
--
-- Prints "LISTENING HOST:PORT" once every worker listens.  On SIGINT or
-- SIGTERM it stops (workers finish what they were sending, at most
-- --grace seconds), and prints a summary line on stderr, exit status 0.
--
--   --workers N   N worker processes (default: the number of CPUs); 0
--                 serves in this one process.  Each worker has its own
--                 queue; a supervisor restarts a worker that dies
--                 (EVFILT_PROC) and stops them all on a signal.
--   --share reuseport|inherit
--                 how workers share the port: reuseport gives each worker
--                 its own socket bound with SO_REUSEPORT, and the kernel
--                 spreads the connections evenly (the default where the
--                 system does that and LuaSocket can set the option:
--                 Linux); inherit (the default elsewhere: the plain
--                 SO_REUSEPORT of the BSDs and macOS does not spread them)
--                 has every worker accept from the socket the supervisor
--                 opened, and needs luaposix (fork).
-- and the options of echo_server.lua: --backlog, --max-conns, --idle,
-- --max-output, --slice, --grace (see examples/netserver.lua).
--
-- Workers are started with luaposix's fork() where it is installed
-- (Debian package lua-posix; Debian 12 has it for Lua 5.1-5.3 only);
-- otherwise each is a new interpreter started by io.popen, which needs
-- --share reuseport.  Either way a worker also stops when its supervisor
-- is gone (the pipe to it closes), so none is left behind.  On a native
-- kqueue (FreeBSD, macOS, the other BSDs) a clean stop on signals needs
-- luaposix too: without it the server says so and exits 1, whatever the
-- options (see doc/servers.md).

local dir = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
package.path = dir .. "/?.lua;" .. dir .. "/../lua/?.lua;" .. dir
  .. "/../lua/?/init.lua;" .. package.path
package.cpath = dir .. "/../build/?.so;" .. package.cpath

local kq = require("kq")
local socket = require("socket")
local netserver = require("netserver")

local NAME = "http_server"

local function fail(msg, status)
  io.stderr:write(NAME, ": ", msg, "\n")
  os.exit(status or 1)
end

-- ---- HTTP ---------------------------------------------------------------

local MAX_HEAD = 16384
local BODY = "Hello, world\n"

local function answer(status, worker, close)
  local body = status == "200 OK" and BODY or ""
  return "HTTP/1.1 " .. status .. "\r\nContent-Type: text/plain\r\n"
    .. "Content-Length: " .. #body .. "\r\nX-Worker: " .. worker .. "\r\n"
    .. (close and "Connection: close\r\n" or "") .. "\r\n" .. body
end

-- The protocol: on_data(conn, data) for netserver.  conn.inbuf holds an
-- unfinished head, conn.skip the body bytes still to come.
local function http(worker)
  local OK, OK_CLOSE = answer("200 OK", worker), answer("200 OK", worker, true)
  local function refuse(conn, status)
    conn:write(answer(status, worker, true))
    conn:finish()
  end
  return function(conn, data)
    local skip = conn.skip or 0
    if skip >= #data then
      conn.skip = skip - #data
      return
    end
    local buf = (conn.inbuf or "") .. data
    local pos = skip + 1
    while true do
      local e = buf:find("\r\n\r\n", pos, true)
      if not e then
        if #buf - pos + 1 > MAX_HEAD then
          return refuse(conn, "431 Request Header Fields Too Large")
        end
        conn.inbuf, conn.skip = buf:sub(pos), 0
        return
      end
      if e - pos > MAX_HEAD then
        return refuse(conn, "431 Request Header Fields Too Large")
      end
      local head = buf:sub(pos, e + 1):lower()
      local minor = head:match("^%u*[%a]+ %S+ http/1%.(%d)\r\n")
      if not minor then return refuse(conn, "400 Bad Request") end
      if head:find("\r\ntransfer%-encoding:") then
        return refuse(conn, "501 Not Implemented")
      end
      local length = head:match("\r\ncontent%-length:[ \t]*(%d+)[ \t]*\r\n")
      if not length and head:find("\r\ncontent%-length:") then
        return refuse(conn, "400 Bad Request")
      end
      local connection = head:match("\r\nconnection:[ \t]*([^\r]*)\r\n")
      local close = minor == "0" and connection ~= "keep-alive"
        or connection == "close"
      conn:write(close and OK_CLOSE or OK)
      if close then return conn:finish() end
      pos = e + 4 + (tonumber(length) or 0)
      if pos > #buf + 1 then
        conn.inbuf, conn.skip = "", pos - #buf - 1
        return
      end
    end
  end
end

-- ---- one worker: a netserver on the listening socket -------------------

-- Serve on `listener` until a signal, or until the reader of `pipe_fd`
-- (the supervisor) is gone.  `ready()` is called once serving.
local function serve(o, worker, listener, pipe_fd, ready)
  o.name = worker == 0 and NAME or NAME .. " worker " .. worker
  o.on_data = http(worker)
  local server = netserver.new(o)
  server:add_listener(listener)
  -- main() checked that this can be done: see netserver.ignore_signals.
  assert(server:stop_on_signals())
  if pipe_fd then server:stop_with_reader(pipe_fd) end
  local why = server:run(ready)
  io.stderr:write(server:summary(why), "\n")
  return server.stats.errors == 0
end

-- ---- the supervisor ------------------------------------------------------

local function cpus()
  local p = io.popen("getconf _NPROCESSORS_ONLN 2>/dev/null")
  local n = p and tonumber(p:read("*l") or "")
  if p then p:close() end
  return n or 1
end

-- The interpreter running us: the lowest negative index of `arg`.
local function interpreter()
  local i = -1
  while arg[i - 1] do i = i - 1 end
  return arg[i] or "lua"
end

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- luaposix's modules, or nil where it is not installed.
local function load_posix()
  local posix = {}
  local ok = pcall(function()
    posix.unistd = require("posix.unistd")
    posix.wait = require("posix.sys.wait")
    posix.signal = require("posix.signal")
  end)
  return ok and posix or nil
end

-- Does the system spread the connections to a port over the sockets
-- bound to it with SO_REUSEPORT, and can LuaSocket set that option?  Of
-- the systems kq runs on, Linux (3.9 and later) spreads them; FreeBSD
-- does only with SO_REUSEPORT_LB, which LuaSocket cannot set, and macOS,
-- OpenBSD and NetBSD hand every connection to one socket.  The queue's
-- backend says nothing about this: it is the kernel's TCP.
local function reuseport_spreads()
  local p = io.popen("uname -s 2>/dev/null")
  local system = p and p:read("*l")
  if p then p:close() end
  if system ~= "Linux" then return false end
  local probe = socket.tcp4() -- tcp() would create it only at bind
  local ok = probe and probe:setoption("reuseport", true)
  if probe then probe:close() end
  return ok ~= nil
end

local function supervise(o, args, posix)
  -- The port: with reuseport, a socket bound (not listening) holds it, so
  -- that it stays ours while workers come and go; the workers bind their
  -- own.  With inherit, the one listening socket all workers accept from.
  local reuse = o.share == "reuseport"
  local holder, err = netserver.listen(o.host, o.port, { backlog = o.backlog,
    reuseport = reuse, listen = not reuse })
  if not holder then fail(err) end
  local host, port = holder:getsockname()

  local q = assert(kq.kqueue())
  local READ, PROC, SIGNAL, TIMER = kq.EVFILT_READ, kq.EVFILT_PROC,
    kq.EVFILT_SIGNAL, kq.EVFILT_TIMER
  local EV_ADD, EV_DELETE, EV_ONESHOT = kq.EV_ADD, kq.EV_DELETE, kq.EV_ONESHOT
  assert(q:kevent({ kq.change(netserver.SIGINT, SIGNAL, EV_ADD),
    kq.change(netserver.SIGTERM, SIGNAL, EV_ADD) }))

  local workers, by_pid, nready, announced = {}, {}, 0, false
  local stopping, restarts = false, 0
  local worker_args = {}
  for _, a in ipairs(args) do worker_args[#worker_args + 1] = quote(a) end

  local function start(slot)
    local w = { slot = slot, started = socket.gettime() }
    if posix then
      local r, wfd = posix.unistd.pipe()
      local pid = posix.unistd.fork()
      if pid == 0 then
        -- The child.  kq gives a fork child none of the parent's queues
        -- (as FreeBSD): `q` is not ours here, and is left alone.  Close
        -- what belongs to the supervisor, and serve.
        posix.unistd.close(r)
        for _, other in pairs(workers) do
          if other.fd then posix.unistd.close(other.fd) end
        end
        local listener = holder
        if reuse then
          holder:close()
          listener, err = netserver.listen(host, port, { backlog = o.backlog,
            reuseport = true })
          if not listener then
            io.stderr:write(NAME, " worker ", slot, ": ", err, "\n")
            posix.unistd._exit(1)
          end
        end
        local ok = serve(o, slot, listener, wfd, function()
          posix.unistd.write(wfd, "READY\n")
        end)
        io.stderr:flush()
        posix.unistd._exit(ok and 0 or 1)
      end
      posix.unistd.close(wfd)
      if not pid then fail("fork failed") end
      w.pid, w.fd = pid, r
    else
      -- A new interpreter: `echo $$` gives its pid (exec keeps it).
      local cmd = "echo $$; exec " .. quote(interpreter()) .. " "
        .. quote(dir .. "/http_server.lua") .. " --worker " .. slot .. " "
        .. table.concat(worker_args, " ") .. " " .. quote(host .. ":" .. port)
      local pipe = io.popen(cmd, "r")
      if not pipe then fail("cannot start " .. cmd) end
      pipe:setvbuf("no") -- lines only as far as read, seen by the queue
      w.pid, w.pipe = tonumber(pipe:read("*l")), pipe
      w.fd = pipe
    end
    workers[slot], by_pid[w.pid] = w, w
    -- The worker's exit (a child already gone still fires), and its pipe.
    assert(q:kevent({ kq.change(w.pid, PROC, EV_ADD, kq.NOTE_EXIT, 0, w),
      kq.change(w.fd, READ, EV_ADD, 0, 0, w) }))
  end

  local function kill_all(sig)
    for _, w in pairs(workers) do
      if posix then
        posix.signal.kill(w.pid, sig)
      else
        os.execute("kill -" .. sig .. " " .. w.pid .. " 2>/dev/null")
      end
    end
  end

  -- A worker's pipe has a line (READY) or is closed.
  local function on_pipe(w)
    local line
    if posix then
      line = posix.unistd.read(w.fd, 64)
      if line == "" then line = nil end
    else
      line = w.pipe:read("*l")
    end
    if line and not w.ready then
      w.ready = true
      nready = nready + 1
      if nready == o.workers and not announced then
        announced = true
        print(string.format("LISTENING %s:%d", host, port))
        io.stdout:flush()
      end
    elseif not line then
      assert(q:kevent({ kq.change(w.fd, READ, EV_DELETE) }))
      w.pipe_closed = true
    end
  end

  local function status_text(status)
    if status % 128 == 0 then return "exit " .. math.floor(status / 256) % 256 end
    return "signal " .. status % 128
  end

  -- A worker exited: reap it, and start another unless we are stopping.
  local function on_exit(w, status)
    by_pid[w.pid] = nil
    workers[w.slot] = nil
    if not w.pipe_closed then q:kevent({ kq.change(w.fd, READ, EV_DELETE) }) end
    if posix then
      posix.wait.wait(w.pid)
      posix.unistd.close(w.fd)
    else
      w.pipe:close()
    end
    if w.ready then nready = nready - 1 end
    if stopping then return end
    restarts = restarts + 1
    io.stderr:write(string.format("%s: worker %d (pid %d) ended with %s;"
      .. " starting another\n", NAME, w.slot, w.pid, status_text(status)))
    -- One that dies at once is restarted after a second, not in a loop.
    if socket.gettime() - w.started < 1 then
      assert(q:kevent({ kq.change(w.slot, TIMER, EV_ADD + EV_ONESHOT, 0,
        1000) }))
    else
      start(w.slot)
    end
  end

  for slot = 1, o.workers do start(slot) end
  local events, why = {}, nil
  while not (stopping and next(workers) == nil) do
    local n, msg = q:kevent(nil, events, 16, nil)
    if not n then fail(msg) end
    for i = 1, n do
      local ev = events[i]
      if kq.band(ev.flags, kq.EV_ERROR) ~= 0 then
        io.stderr:write(NAME, ": kevent: ", kq.describe(ev), "\n")
      elseif ev.filter == SIGNAL then
        if not stopping then
          stopping = true
          why = ev.ident == netserver.SIGINT and "SIGINT" or "SIGTERM"
          kill_all(netserver.SIGTERM)
          -- Workers get --grace seconds and 5 more, then SIGKILL.
          assert(q:kevent({ kq.change(0, TIMER, EV_ADD + EV_ONESHOT, 0,
            math.floor((o.grace + 5) * 1000)) }))
        end
      elseif ev.filter == PROC and by_pid[ev.ident] then
        on_exit(ev.udata, ev.data)
      elseif ev.filter == READ and ev.udata and workers[ev.udata.slot] == ev.udata then
        on_pipe(ev.udata)
      elseif ev.filter == TIMER then
        if ev.ident == 0 then
          kill_all(9)
        elseif not stopping then
          start(ev.ident)
        end
      end
    end
  end
  holder:close()
  q:close()
  io.stderr:write(string.format("%s: stopped (%s): %d workers, %d restarts\n",
    NAME, why, o.workers, restarts))
end

-- ---- main ----------------------------------------------------------------

local args, passed = {}, {}
local workers, share, worker_slot
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--workers" or a == "--worker" then
      local v = tonumber(arg[i + 1] or "")
      if not v or v < 0 or v ~= math.floor(v) then
        fail("bad value for " .. a .. ": expected a count", 2)
      end
      if a == "--workers" then workers = v else worker_slot = v end
      i = i + 2
    elseif a == "--share" then
      share = arg[i + 1]
      if share ~= "reuseport" and share ~= "inherit" then
        fail("bad value for --share: expected reuseport or inherit", 2)
      end
      i = i + 2
    else
      args[#args + 1] = a
      -- Everything but the address is passed on to exec'd workers.
      if a:sub(1, 2) == "--" then
        passed[#passed + 1] = a
        passed[#passed + 1] = arg[i + 1]
        args[#args + 1] = arg[i + 1]
        i = i + 1
      end
      i = i + 1
    end
  end
end
local o, err = netserver.options(args)
if not o then fail(err, 2) end
o.workers = workers or cpus()
local supervising = o.workers > 0 and not worker_slot
o.share = share or (supervising and not reuseport_spreads() and "inherit")
  or "reuseport"

-- Before anything is started or bound: can this process stop cleanly on
-- SIGINT and SIGTERM (and so its workers, the same program), and start
-- workers the way they share the port?
local ok
ok, err = netserver.ignore_signals({ netserver.SIGINT, netserver.SIGTERM })
if not ok then fail(err) end
local posix = load_posix()
if supervising and not posix and o.share == "inherit" then
  if share then fail("--share inherit needs luaposix (fork)", 2) end
  fail("workers need luaposix (fork) here: SO_REUSEPORT does not spread"
    .. " connections on this system, or LuaSocket cannot set it"
    .. " (--workers 0 serves in one process)")
end

if worker_slot then
  -- A worker started by io.popen: its own socket on the supervisor's port
  -- (reuseport), READY on stdout, and it stops when stdout's reader goes.
  local listener
  listener, err = netserver.listen(o.host, o.port, { backlog = o.backlog,
    reuseport = true })
  if not listener then fail(err) end
  ok = serve(o, worker_slot, listener, 1, function()
    io.stdout:write("READY\n")
    io.stdout:flush()
  end)
  os.exit(ok and 0 or 1)
elseif o.workers == 0 then
  local listener
  listener, err = netserver.listen(o.host, o.port, { backlog = o.backlog })
  if not listener then fail(err) end
  ok = serve(o, 0, listener, nil, function()
    print(string.format("LISTENING %s:%d", listener:getsockname()))
    io.stdout:flush()
  end)
  os.exit(ok and 0 or 1)
else
  supervise(o, passed, posix)
end
