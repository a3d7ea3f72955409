-- examples/netserver.lua: the event loop of the server examples
-- (echo_server.lua, http_server.lua), one kq queue per process.
--
-- A protocol is one function, `on_data(conn, data)`, called with each
-- slice of input; it answers with conn:write(s) and ends a connection
-- with conn:finish() (close once the output has gone).  Everything else
-- is here, and is what a server behind real traffic needs:
--
--   * a listen backlog as large as the system allows (SOMAXCONN), so that
--     a burst of connects is not dropped (a dropped SYN costs the client a
--     1 s retransmit);
--   * bounded reads: at most `slice` bytes per connection and turn, so one
--     fast sender cannot starve the others or fill memory;
--   * an output cap per connection: past `max_output` unsent bytes the
--     connection's READ is disabled (EV_DISABLE), and enabled again once
--     half has gone out; memory stays below about
--     conns * (max_output + slice + 8 KiB of LuaSocket buffer);
--   * idle connections closed after `idle` seconds, by one periodic
--     EVFILT_TIMER that sweeps them (re-arming a timer per connection on
--     every read would cost a change per event);
--   * at most `max_conns` connections: the listener is disabled beyond,
--     and while accept fails (EMFILE), instead of spinning;
--   * SIGINT and SIGTERM through EVFILT_SIGNAL: stop accepting and
--     reading, let the pending output go out for at most `grace` seconds,
--     close everything, return (on a native kqueue this needs luaposix:
--     see M.ignore_signals);
--   * every descriptor closed on every path, every unexpected error
--     reported on stderr with the program's name.
--
-- Changes are collected and handed to the next kevent call that waits,
-- so a turn of the loop costs one kevent call however many connections
-- change their interest.  A socket is closed only after the call that
-- deleted its knotes: until then its number cannot be reused.

local kq = require("kq")
local socket = require("socket") -- Debian package lua-socket

local M = {}

local READ, WRITE, TIMER, SIGNAL = kq.EVFILT_READ, kq.EVFILT_WRITE,
  kq.EVFILT_TIMER, kq.EVFILT_SIGNAL
local EV_ADD, EV_DELETE, EV_ENABLE, EV_DISABLE, EV_CLEAR, EV_EOF, EV_ERROR =
  kq.EV_ADD, kq.EV_DELETE, kq.EV_ENABLE, kq.EV_DISABLE, kq.EV_CLEAR,
  kq.EV_EOF, kq.EV_ERROR

-- SIGINT and SIGTERM are 2 and 15 on every system kq runs on.
M.SIGINT, M.SIGTERM = 2, 15
local SIGNAME = { [2] = "SIGINT", [15] = "SIGTERM" }

local SWEEP, GRACE = 1, 2 -- timer idents

M.defaults = {
  backlog = 65535,         -- the kernel lowers it to SOMAXCONN
  max_conns = 10000,
  idle = 60,               -- seconds
  max_output = 256 * 1024, -- unsent bytes per connection before pausing
  slice = 64 * 1024,       -- bytes read per connection and turn
  grace = 5,               -- seconds to flush output when stopping
}

local function has(flags, bit) return kq.band(flags, bit) ~= 0 end

-- Signals and the standalone interpreter.  On FreeBSD, macOS and the
-- other BSDs a watched signal still runs its default action (SIGTERM
-- would end the process before the queue sees it): it must be ignored,
-- and plain Lua cannot do that; luaposix can.  Whether a kqueue holds the
-- default action back cannot be probed without risking the process, so
-- every kqueue but kq's Linux engine (kq.backend "linux") is taken to be
-- one that does not.  The Linux engine holds the default action back
-- while the signal is watched, but runs a handler the program installed,
-- and `lua` installs one for SIGINT that raises "interrupted!" in
-- whatever Lua code runs next: with luaposix that handler is removed
-- here, and without it the loop catches the error (M.interrupted) and
-- stops as on SIGINT.
-- Returns true, or nil and a message: on a native kqueue without luaposix
-- the signals cannot be watched safely, and a server must not start (a
-- SIGTERM would end it without its clean stop).
function M.ignore_signals(signals)
  local ok, psignal = pcall(require, "posix.signal")
  if kq.backend == "linux" then
    if ok then psignal.signal(M.SIGINT, psignal.SIG_DFL) end
    return true
  end
  if not ok then
    return nil, "needs luaposix (posix.signal) to stop cleanly on SIGINT"
      .. " and SIGTERM: on a native kqueue a watched signal still runs its"
      .. " default action"
  end
  for _, sig in ipairs(signals) do psignal.signal(sig, psignal.SIG_IGN) end
  return true
end

-- Is `err` the error lua.c's SIGINT handler raises?
function M.interrupted(err)
  return type(err) == "string" and err:find("interrupted!$") ~= nil
end

-- A listening TCP socket.  opts: backlog, reuseport (SO_REUSEPORT: each
-- process of a group binds its own socket to the same port and the
-- kernel spreads the connections), listen = false to only bind (to hold
-- a port).  Returns the LuaSocket object or nil, message.
function M.listen(host, port, opts)
  opts = opts or {}
  -- tcp4/tcp6 create the socket now (tcp() waits for bind), so that the
  -- options below apply to it.
  local sock, err = (host:find(":", 1, true) and socket.tcp6 or socket.tcp4)()
  if not sock then return nil, err end
  local ok
  ok, err = sock:setoption("reuseaddr", true)
  if ok and opts.reuseport then ok, err = sock:setoption("reuseport", true) end
  if ok then ok, err = sock:bind(host, port) end
  if ok and opts.listen ~= false then
    ok, err = sock:listen(opts.backlog or M.defaults.backlog)
  end
  if not ok then
    sock:close()
    return nil, string.format("cannot listen on %s:%s: %s", host, port, err)
  end
  sock:settimeout(0)
  return sock
end

-- Command-line options shared by the servers: HOST:PORT (default
-- 127.0.0.1:0, port 0 meaning any free port) and the limits above as
-- --backlog N, --max-conns N, --idle SECONDS, --max-output BYTES,
-- --slice BYTES, --grace SECONDS.  `extra` maps more option names to
-- "number" or "flag".  Returns a table, or nil and a message.
function M.options(args, extra)
  local o = { host = "127.0.0.1", port = 0 }
  for k, v in pairs(M.defaults) do o[k] = v end
  local kinds = { ["--backlog"] = "backlog", ["--max-conns"] = "max_conns",
    ["--idle"] = "idle", ["--max-output"] = "max_output",
    ["--slice"] = "slice", ["--grace"] = "grace" }
  local i = 1
  while i <= #args do
    local a = args[i]
    local key = kinds[a] or (extra and extra[a] and a:sub(3):gsub("%-", "_"))
    if key then
      if extra and extra[a] == "flag" then
        o[key] = true
      else
        i = i + 1
        local v = tonumber(args[i] or "")
        if not v or v <= 0 or v == math.huge or (key ~= "idle"
            and key ~= "grace" and v ~= math.floor(v)) then
          return nil, "bad value for " .. a .. ": expected a positive "
            .. ((key == "idle" or key == "grace") and "number" or "integer")
        end
        o[key] = v
      end
    elseif a:sub(1, 1) == "-" then
      return nil, "unknown option " .. a
    else
      local h, p = a:match("^%[?([^%]]*)%]?:(%d+)$")
      if not h or h == "" or tonumber(p) > 65535 then
        return nil, "bad address '" .. a .. "': expected HOST:PORT"
      end
      o.host, o.port = h, tonumber(p)
    end
    i = i + 1
  end
  return o
end

-- ---- connections -------------------------------------------------------

local Conn = {}
Conn.__index = Conn

-- Queue `s` for sending; it goes out at the end of this event.
function Conn:write(s)
  if self.closed or self.closing or #s == 0 then return end
  local tail = self.tail + 1
  self.out[tail] = s
  self.tail, self.pending = tail, self.pending + #s
end

-- Close once everything written has gone out; no more input is read.
function Conn:finish()
  self.closing = true
end

-- ---- the server ----------------------------------------------------------

local Server = {}
Server.__index = Server

-- opts: name (for messages), on_data(conn, data), on_eof(conn) (default:
-- finish), and the limits of M.defaults.
function M.new(opts)
  local self = setmetatable({}, Server)
  for k, v in pairs(M.defaults) do self[k] = v end
  for k, v in pairs(opts) do self[k] = v end
  self.name = self.name or "server"
  local q, err = kq.kqueue()
  if not q then error(self.name .. ": " .. err, 0) end
  self.q = q
  self.conns, self.nconns = {}, 0
  self.listeners = {}      -- fd -> { sock =, paused = }
  self.changes = {}        -- for the next kevent call
  self.to_close = {}       -- sockets to close after that call
  self.again = {}          -- connections with input left in LuaSocket's buffer
  self.watched = {}        -- ident -> what it is, for other filters
  self.events = kq.eventlist()
  self.now = socket.gettime()
  self.stats = { accepted = 0, closed = 0, resets = 0, idle = 0, errors = 0 }
  self:change(SWEEP, TIMER, EV_ADD, 0,
    math.max(50, math.min(1000, math.floor(self.idle * 250))))
  return self
end

function Server:change(ident, filter, flags, fflags, data)
  local c = self.changes
  c[#c + 1] = kq.change(ident, filter, flags, fflags, data)
end

function Server:report(fmt, ...)
  self.stats.errors = self.stats.errors + 1
  io.stderr:write(self.name, ": ", string.format(fmt, ...), "\n")
end

-- Serve connections accepted from `sock` (a listening LuaSocket socket).
function Server:add_listener(sock)
  local fd = sock:getfd()
  self.listeners[fd] = { sock = sock }
  self:change(fd, READ, EV_ADD)
end

-- Stop (as on SIGTERM) when SIGINT or SIGTERM arrives.  Returns true, or
-- nil and a message when that cannot be done here (M.ignore_signals):
-- then nothing is watched, and the program should not serve.
function Server:stop_on_signals()
  local ok, err = M.ignore_signals({ M.SIGINT, M.SIGTERM })
  if not ok then return nil, err end
  for _, sig in ipairs({ M.SIGINT, M.SIGTERM }) do
    self.watched["signal " .. sig] = function() self:stop(SIGNAME[sig]) end
    self:change(sig, SIGNAL, EV_ADD)
  end
  return true
end

-- Stop when whoever reads `fd` (the write end of a pipe) is gone: a
-- worker whose supervisor died must not live on.  Only that matters, so
-- EV_CLEAR: one event for "writable", then one with EV_EOF when the
-- reader has closed its end.
function Server:stop_with_reader(fd)
  self.watched["write " .. fd] = function(ev)
    if has(ev.flags, EV_EOF) then self:stop("its supervisor is gone") end
  end
  self:change(fd, WRITE, EV_ADD + EV_CLEAR)
end

-- Pause or resume a listener (EV_DISABLE keeps its knote).
function Server:pause_listeners(paused)
  for fd, l in pairs(self.listeners) do
    if l.paused ~= paused then
      l.paused = paused
      self:change(fd, READ, paused and EV_DISABLE or EV_ENABLE)
    end
  end
end

function Server:set_read(c, on)
  if c.reading ~= on then
    c.reading = on
    self:change(c.fd, READ, on and EV_ENABLE or EV_DISABLE)
    -- Input LuaSocket kept while reading was paused: READ will not say.
    if on and c.sock:dirty() then self.again[c] = true end
  end
end

function Server:set_write(c, on)
  if c.writing ~= on then
    c.writing = on
    self:change(c.fd, WRITE, on and EV_ENABLE or EV_DISABLE)
  end
end

-- Close once the output has gone.  A peer that may still be sending
-- (no EOF seen) gets a lingering close: our FIN now, its input read and
-- dropped until its EOF or LINGER seconds; closing with unread input
-- would send a reset, and the peer could lose the answer we just sent.
local LINGER = 2
function Server:done(c)
  if c.lingering then return end
  if c.eof or self.stopping then return self:close(c) end
  c.lingering = self.now
  c.sock:shutdown("send")
  self:set_write(c, false)
  if c.reading then
    if c.sock:dirty() then self.again[c] = true end
  else
    c.reading = true
    self:change(c.fd, READ, EV_ENABLE)
  end
end

function Server:linger(c)
  local _, err = c.sock:receive(self.slice)
  if err == nil then
    if c.sock:dirty() then self.again[c] = true end
  elseif err ~= "timeout" then
    self:close(c) -- "closed": the peer's EOF, or a reset
  end
end

function Server:close(c)
  if c.closed then return end
  c.closed = true
  self.conns[c.fd] = nil
  self.nconns = self.nconns - 1
  self.again[c] = nil
  self.stats.closed = self.stats.closed + 1
  self:change(c.fd, READ, EV_DELETE)
  self:change(c.fd, WRITE, EV_DELETE)
  local t = self.to_close
  t[#t + 1] = c.sock
  if not self.stopping and self.nconns < self.max_conns then
    self:pause_listeners(false)
  end
end

-- Send what is pending, then settle what the connection waits for.
function Server:flush(c)
  local out, sock = c.out, c.sock
  while c.pending > 0 do
    local s = out[c.head]
    local last, err, partial = sock:send(s, c.pos)
    if last then
      c.pending = c.pending - (#s - c.pos + 1)
      out[c.head] = nil
      c.head, c.pos = c.head + 1, 1
    elseif err == "timeout" then
      c.pending = c.pending - (partial - c.pos + 1)
      c.pos = partial + 1
      break
    else
      -- "closed" (EPIPE, ECONNRESET): the peer is gone.
      self.stats.resets = self.stats.resets + 1
      return self:close(c)
    end
    c.last = self.now
  end
  if c.pending == 0 then
    c.head, c.tail = 1, 0 -- every entry was cleared: start again at 1
    if c.closing then return self:done(c) end
  end
  self:set_write(c, c.pending > 0)
  if c.closing or c.eof then
    self:set_read(c, false)
  elseif c.pending >= self.max_output then
    self:set_read(c, false) -- back-pressure: stop reading this peer
  elseif not c.reading and c.pending <= self.max_output / 2 then
    self:set_read(c, true)
  end
end

function Server:on_readable(c)
  -- Not while paused: an event collected before the pause, or input
  -- left in LuaSocket's buffer (self.again), waits for set_read(c, true).
  if c.lingering then return self:linger(c) end
  if c.closed or c.closing or not c.reading then return end
  local data, err, partial = c.sock:receive(self.slice)
  data = data or partial
  if #data > 0 then
    c.last = self.now
    self.on_data(c, data)
    if c.closed then return end
  end
  if err == nil then
    -- A whole slice: more may be waiting.  The kernel's part keeps READ
    -- firing; what LuaSocket kept in its own buffer would not.
    if c.sock:dirty() then self.again[c] = true end
  elseif err == "closed" then
    c.eof = true -- the peer has sent everything
    if self.on_eof then self.on_eof(c) else c:finish() end
  elseif err ~= "timeout" then
    self.stats.resets = self.stats.resets + 1
    return self:close(c)
  end
  self:flush(c)
end

function Server:accept(l)
  -- Accept what is waiting, up to a batch: the listener stays readable
  -- while more wait, and the connections already here get their turn.
  -- The batch is large because a burst of connects must not overflow the
  -- backlog (at most SOMAXCONN) while the loop serves others.
  for _ = 1, 512 do
    if self.nconns >= self.max_conns then
      return self:pause_listeners(true)
    end
    local sock, err = l.sock:accept()
    if not sock then
      if err ~= "timeout" then
        -- EMFILE, ENFILE, ENOBUFS...: pause until the next sweep.
        self:report("accept: %s (pausing the listener)", err)
        self:pause_listeners(true)
        self.retry_accept = true
      end
      return
    end
    sock:settimeout(0)
    local fd = sock:getfd()
    -- Output: out[head..tail], the first from byte `pos`.
    local c = setmetatable({ sock = sock, fd = fd, out = {}, head = 1,
      tail = 0, pos = 1, pending = 0, reading = true, writing = false,
      last = self.now, server = self }, Conn)
    self.conns[fd] = c
    self.nconns = self.nconns + 1
    self.stats.accepted = self.stats.accepted + 1
    self:change(fd, READ, EV_ADD)
    self:change(fd, WRITE, EV_ADD + EV_DISABLE)
  end
end

function Server:sweep()
  local limit = self.now - self.idle
  for _, c in pairs(self.conns) do
    if c.lingering then
      if c.lingering < self.now - LINGER then self:close(c) end
    elseif c.last < limit then
      self.stats.idle = self.stats.idle + 1
      self:close(c)
    end
  end
  if self.retry_accept and not self.stopping then
    self.retry_accept = false
    if self.nconns < self.max_conns then self:pause_listeners(false) end
  end
end

-- Stop accepting and reading; what is pending goes out within `grace`
-- seconds, then every connection is closed and run() returns.
function Server:stop(why)
  if self.stopping then return end
  self.stopping = why
  for fd, l in pairs(self.listeners) do
    self:change(fd, READ, EV_DELETE)
    self.to_close[#self.to_close + 1] = l.sock
  end
  self.listeners = {}
  for _, c in pairs(self.conns) do
    c:finish()
    self:flush(c)
  end
  self:change(GRACE, TIMER, EV_ADD + kq.EV_ONESHOT, 0,
    math.floor(self.grace * 1000))
end

function Server:dispatch(ev)
  local ident, filter = ev.ident, ev.filter
  if has(ev.flags, EV_ERROR) then
    -- A change of ours failed: report it; a connection cannot go on.
    self:report("kevent: %s", kq.describe(ev))
    local c = self.conns[ident]
    if c and (filter == READ or filter == WRITE) then self:close(c) end
    return
  end
  if filter == READ then
    local c = self.conns[ident]
    if c then return self:on_readable(c) end
    local l = self.listeners[ident]
    if l then return self:accept(l) end
  elseif filter == WRITE then
    local c = self.conns[ident]
    if c then
      if has(ev.flags, EV_EOF) and ev.fflags ~= 0 then
        self.stats.resets = self.stats.resets + 1 -- reset by the peer
        return self:close(c)
      end
      return self:flush(c)
    end
    local w = self.watched["write " .. ident]
    if w then return w(ev) end
  elseif filter == TIMER then
    if ident == SWEEP then return self:sweep() end
    if ident == GRACE then
      for _, c in pairs(self.conns) do self:close(c) end
    end
  elseif filter == SIGNAL then
    local w = self.watched["signal " .. ident]
    if w then return w(ev) end
  end
end

-- The loop.  `on_ready`, if given, is called once the listeners are
-- registered.  Returns the reason it stopped and the stats.
function Server:turn()
  -- Do not wait while something is to be done now.
  local timeout = nil
  if next(self.again) or #self.to_close > 0 then timeout = 0 end
  local changes = self.changes
  self.changes = {}
  local n, err = self.q:kevent(changes, self.events, 256, timeout)
  if not n then
    -- Only a change that found no room for its error entry, or a queue
    -- gone bad, gets here.
    error(self.name .. ": " .. err, 0)
  end
  -- The knotes of these sockets were deleted by that call.
  local t = self.to_close
  if #t > 0 then
    self.to_close = {}
    for i = 1, #t do t[i]:close() end
  end
  if self.on_ready then
    local ready = self.on_ready
    self.on_ready = nil
    ready()
  end
  self.now = socket.gettime()
  local events = self.events
  for i = 1, n do self:dispatch(events[i]) end
  -- Input LuaSocket buffered: one more slice each, fairly.
  local again = self.again
  if next(again) then
    self.again = {}
    for c in pairs(again) do self:on_readable(c) end
  end
end

-- The loop.  `on_ready`, if given, is called once the listeners are
-- registered.  Returns the reason it stopped and the stats.
function Server:run(on_ready)
  self.on_ready = on_ready
  local turn = function() return self:turn() end
  while not (self.stopping and self.nconns == 0) do
    local ok, err = pcall(turn)
    if not ok then
      if not M.interrupted(err) then error(err, 0) end
      self:stop("SIGINT")
    end
  end
  -- Submit the last deletions, then close what is left.
  local n, err = self.q:kevent(self.changes)
  if not n then self:report("%s", err) end
  for _, s in ipairs(self.to_close) do s:close() end
  self.q:close()
  return self.stopping, self.stats
end

-- The summary line a server prints on stderr when it stops.
function Server:summary(why)
  local s = self.stats
  return string.format("%s: stopped (%s): %d connections, %d reset by peer,"
    .. " %d closed idle, %d errors", self.name, why, s.accepted, s.resets,
    s.idle, s.errors)
end

return M
