-- READ and WRITE at the edges of a descriptor's life, where Linux's epoll
-- reports something FreeBSD's kqueue does not (semantics §4.1, §4.2):
-- a pipe's write end once its reader is gone; a stream socket before it
-- is connected or listening, and what it becomes; a pipe's WRITE knote
-- with NOTE_LOWAT once the free space came back.  Each case is FreeBSD's
-- behaviour, which the Linux engine must give too (tests/c/data_test.c
-- checks the same cases from C, with the data of both engine modes).
local kq = require("kq")
local kt = require("kqtest")
local socket = require("socket")
local unix = require("socket.unix")
local h = require("spec.helper")

local READ, WRITE = kq.EVFILT_READ, kq.EVFILT_WRITE
local EV_ADD, EV_CLEAR, EV_EOF, EV_ONESHOT, EV_ENABLE, EV_DISABLE =
  kq.EV_ADD, kq.EV_CLEAR, kq.EV_EOF, kq.EV_ONESHOT, kq.EV_ENABLE, kq.EV_DISABLE
local NOTE_LOWAT = kq.NOTE_LOWAT
local PIPE_SIZE = 65536 -- Linux's and FreeBSD's default pipe size

local function by_filter(evs)
  local t = {}
  for _, e in ipairs(evs) do
    assert.is_nil(t[e.filter], "two events for one filter")
    t[e.filter] = e
  end
  return t
end

describe("READ on a pipe's write end", function()
  it("never fires, also once the reader is gone", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local r, w = assert(kt.pipe())
    local rclosed = false
    defer(function() kt.close(w); if not rclosed then kt.close(r) end end)
    h.apply(q, h.ch(w, READ, EV_ADD))
    assert(kt.write(w, "hello"))
    assert.are.same({}, h.wait(q))
    kt.close(r)
    rclosed = true
    for _ = 1, 3 do
      assert.are.same({}, h.wait(q))
    end
    assert.are.same({}, h.wait(q, 8, 0.05))
    -- Nor after EV_DISABLE / EV_ENABLE, which look at the descriptor again.
    h.apply(q, h.ch(w, READ, EV_DISABLE), h.ch(w, READ, EV_ENABLE))
    assert.are.same({}, h.wait(q))
  end)

  it("never fires with EV_CLEAR or EV_ONESHOT either", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local r, w = assert(kt.pipe())
    defer(function() kt.close(w) end)
    kt.close(r)
    -- The reader is gone before the knotes are added: READ is still
    -- accepted (WRITE would fail with EPIPE).
    h.apply(q, h.ch(w, READ, EV_ADD + EV_ONESHOT))
    local q2 = h.newq(defer)
    h.apply(q2, h.ch(w, READ, EV_ADD + EV_CLEAR))
    assert.are.same({}, h.wait(q))
    assert.are.same({}, h.wait(q2))
    assert.are.same({}, h.wait(q, 8, 0.02))
  end)

  it("leaves WRITE's EV_EOF on the same descriptor as it is", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local r, w = assert(kt.pipe())
    local rclosed = false
    defer(function() kt.close(w); if not rclosed then kt.close(r) end end)
    h.apply(q, h.ch(w, READ, EV_ADD), h.ch(w, WRITE, EV_ADD))
    assert(kt.write(w, string.rep("x", 100)))
    local evs = by_filter(h.wait(q))
    assert.is_nil(evs[READ])
    assert.evflags(0, evs[WRITE].flags)
    assert.are.equal(65536 - 100, evs[WRITE].data)
    kt.close(r)
    rclosed = true
    -- WRITE: EV_EOF at every call (level); READ: nothing, ever.
    for _ = 1, 3 do
      evs = h.wait(q)
      assert.are.equal(1, #evs)
      assert.are.equal(WRITE, evs[1].filter)
      assert.evflags(EV_EOF, evs[1].flags)
    end
  end)

  it("does not change READ's EV_EOF on the read end", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local r, w = assert(kt.pipe())
    local wclosed = false
    defer(function() kt.close(r); if not wclosed then kt.close(w) end end)
    -- The write end's READ knote in the same queue as the read end's.
    h.apply(q, h.ch(r, READ, EV_ADD), h.ch(w, READ, EV_ADD))
    assert(kt.write(w, "abc"))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(r, evs[1].ident)
    assert.are.equal(3, evs[1].data)
    kt.close(w)
    wclosed = true
    for _ = 1, 2 do
      evs = h.wait(q)
      assert.are.equal(1, #evs)
      assert.are.equal(r, evs[1].ident)
      assert.evflags(EV_EOF, evs[1].flags)
      assert.are.equal(3, evs[1].data)
    end
  end)
end)

-- The name of an errno value ("ECONNREFUSED"), from luv, which knows the
-- platform's numbers (kqtest's table has no ECONNREFUSED).
local function errno_name(n)
  local ok, uv = pcall(require, "luv")
  if not ok or not uv.translate_sys_error then return nil end
  local _, name = uv.translate_sys_error(n)
  return name
end

-- A path for an AF_UNIX socket, removed afterwards.
local function sock_path(defer)
  local path = os.tmpname()
  os.remove(path)
  defer(function() os.remove(path) end)
  return path
end

local closed_port = h.closed_port

describe("a stream socket neither connected nor listening", function()
  for _, kind in ipairs({ "TCP", "AF_UNIX" }) do
    it("fires neither READ nor WRITE (" .. kind .. ")", function()
      local defer = h.closer()
      local q = h.newq(defer)
      local s = assert(kind == "TCP" and socket.tcp4() or unix.stream())
      defer(function() s:close() end)
      h.apply(q, h.ch(s, READ, EV_ADD), h.ch(s, WRITE, EV_ADD))
      for _ = 1, 3 do
        assert.are.same({}, h.wait(q))
      end
      assert.are.same({}, h.wait(q, 8, 0.05))
      -- EV_ENABLE looks at the descriptor again: still nothing.
      h.apply(q, h.ch(s, WRITE, EV_DISABLE), h.ch(s, WRITE, EV_ENABLE))
      assert.are.same({}, h.wait(q))
    end)
  end

  it("becomes a TCP listener that reports its backlog, although collected before", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local s = assert(socket.tcp4())
    defer(function() s:close() end)
    local fd = s:getfd()
    h.apply(q, h.ch(fd, READ, EV_ADD))
    assert.are.same({}, h.wait(q))
    assert(s:bind("127.0.0.1", 0))
    assert(s:listen(8))
    assert.are.same({}, h.wait(q))
    local _, port = s:getsockname()
    for _ = 1, 2 do
      local c = assert(socket.connect("127.0.0.1", port))
      defer(function() c:close() end)
    end
    local evs = h.wait(q, 8, 2)
    assert.are.equal(1, #evs)
    assert.are.equal(fd, evs[1].ident)
    assert.evflags(0, evs[1].flags)
    assert.are.equal(2, evs[1].data)
    local c = assert(s:accept())
    c:close()
    assert.are.equal(1, h.wait(q)[1].data)
  end)

  it("becomes an AF_UNIX listener, although collected before", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local path = sock_path(defer)
    local s = assert(unix.stream())
    defer(function() s:close() end)
    h.apply(q, h.ch(s, READ, EV_ADD))
    assert.are.same({}, h.wait(q))
    assert(s:bind(path))
    assert(s:listen(8))
    assert.are.same({}, h.wait(q))
    local c = assert(unix.stream())
    defer(function() c:close() end)
    assert(c:connect(path))
    local evs = h.wait(q, 8, 2)
    assert.are.equal(1, #evs)
    assert.evflags(0, evs[1].flags)
    assert.are.equal(1, evs[1].data) -- one connection waits
  end)

  for _, mode in ipairs({ "blocking", "non-blocking" }) do
    it("gives WRITE once a TCP connect completes (" .. mode .. ")", function()
      local defer = h.closer()
      local q = h.newq(defer)
      local srv = assert(socket.bind("127.0.0.1", 0))
      defer(function() srv:close() end)
      local _, port = srv:getsockname()
      local s = assert(socket.tcp4())
      defer(function() s:close() end)
      h.apply(q, h.ch(s, READ, EV_ADD), h.ch(s, WRITE, EV_ADD))
      for _ = 1, 3 do
        assert.are.same({}, h.wait(q))
      end
      if mode == "non-blocking" then
        s:settimeout(0)
        local ok, err = s:connect("127.0.0.1", port)
        assert(ok or err == "timeout", err)
      else
        assert(s:connect("127.0.0.1", port))
      end
      local evs = h.wait(q, 8, 2)
      assert.are.equal(1, #evs)
      assert.are.equal(WRITE, evs[1].filter)
      assert.evflags(0, evs[1].flags)
      assert.is_true(evs[1].data > 0)
      -- READ once the peer writes.
      local conn = assert(srv:accept())
      defer(function() conn:close() end)
      assert(conn:send("hey"))
      evs = by_filter(h.wait(q, 8, 2))
      assert.evflags(0, evs[WRITE].flags)
      if not evs[READ] then evs = by_filter(h.wait(q, 8, 2)) end
      assert.evflags(0, evs[READ].flags)
      assert.are.equal(3, evs[READ].data)
    end)
  end

  it("gives WRITE once an AF_UNIX connect completes", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local path = sock_path(defer)
    local srv = assert(unix.stream())
    defer(function() srv:close() end)
    assert(srv:bind(path))
    assert(srv:listen(8))
    local s = assert(unix.stream())
    defer(function() s:close() end)
    h.apply(q, h.ch(s, WRITE, EV_ADD))
    -- Collected more than once: an AF_UNIX connect() wakes nothing on the
    -- connecting socket, so no epoll report left over may hide a miss.
    for _ = 1, 3 do
      assert.are.same({}, h.wait(q))
    end
    assert(s:connect(path))
    local evs = h.wait(q, 8, 2)
    assert.are.equal(1, #evs)
    assert.are.equal(WRITE, evs[1].filter)
    assert.evflags(0, evs[1].flags)
    assert.is_true(evs[1].data > 0)
  end)

  it("reports a refused connect as EV_EOF with the error, on READ and WRITE", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local port = closed_port()
    local s = assert(socket.tcp4())
    defer(function() s:close() end)
    h.apply(q, h.ch(s, READ, EV_ADD), h.ch(s, WRITE, EV_ADD))
    assert.are.same({}, h.wait(q))
    s:settimeout(0)
    local ok, err = s:connect("127.0.0.1", port)
    assert.is_nil(ok)
    assert.is_truthy(err == "timeout" or err == "connection refused", err)
    h.wait(q, 8, 2)
    -- Level: both are there at every call, each with the error.
    for _ = 1, 2 do
      local evs = by_filter(h.wait(q))
      for _, f in ipairs({ READ, WRITE }) do
        assert.is_truthy(evs[f], "no event for filter " .. f)
        assert.evflags(EV_EOF, evs[f].flags)
        assert.is_true(evs[f].fflags > 0)
        local name = errno_name(evs[f].fflags)
        if name then assert.are.equal("ECONNREFUSED", name) end
      end
      assert.are.equal(0, evs[READ].data)
    end
  end)
end)

describe("WRITE with NOTE_LOWAT on a pipe", function()
  -- The free space falls below the mark and comes back by reads.  Since
  -- Linux 5.5 such a read gives epoll no edge unless the pipe was full.
  it("fires again, level, once reads bring the free space back to the mark", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local r, w = assert(kt.pipe())
    defer(function() kt.close(r); kt.close(w) end)
    h.apply(q, h.ch(w, WRITE, EV_ADD, NOTE_LOWAT, 65000))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(PIPE_SIZE, evs[1].data)
    assert(kt.write(w, string.rep("x", 1000)))
    assert.are.same({}, h.wait(q))
    assert.are.same({}, h.wait(q, 8, 0.02))
    assert.are.equal(100, #kt.read(r, 100))
    assert.are.same({}, h.wait(q)) -- 64636 free: still below
    assert.are.equal(500, #kt.read(r, 500))
    for _ = 1, 2 do -- 65136 free: at the mark, and level
      evs = h.wait(q)
      assert.are.equal(1, #evs)
      assert.are.equal(w, evs[1].ident)
      assert.evflags(0, evs[1].flags)
      assert.are.equal(PIPE_SIZE - 400, evs[1].data)
    end
    -- Below again, and back once more.
    assert(kt.write(w, string.rep("x", 1000)))
    assert.are.same({}, h.wait(q))
    assert.are.equal(1400, #kt.read(r, 2000))
    assert.are.equal(PIPE_SIZE, h.wait(q)[1].data)
  end)

  it("wakes a waiting kevent when another process reads", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local r, w = assert(kt.pipe())
    defer(function() kt.close(r); kt.close(w) end)
    h.apply(q, h.ch(w, WRITE, EV_ADD, NOTE_LOWAT, 65000))
    assert.are.equal(1, #h.wait(q))
    assert(kt.write(w, string.rep("x", 1000)))
    assert.are.same({}, h.wait(q))
    local pid = assert(kt.fork())
    if pid == 0 then
      kt.sleep(0.05)
      kt._exit(kt.read(r, 1000) and 0 or 1)
    end
    defer(function() kt.waitpid(pid) end)
    -- Blocks until the child's read makes room (or 10 s pass).
    local evs = h.wait(q, 8, 10)
    assert.are.equal(1, #evs)
    assert.are.equal(PIPE_SIZE, evs[1].data)
    local _, status = assert(kt.waitpid(pid))
    assert.are.equal(0, status)
  end)

  it("with EV_ONESHOT fires only at the mark, once", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local r, w = assert(kt.pipe())
    defer(function() kt.close(r); kt.close(w) end)
    assert(kt.write(w, string.rep("x", 1000)))
    h.apply(q, h.ch(w, WRITE, EV_ADD + EV_ONESHOT, NOTE_LOWAT, 65000))
    assert.are.same({}, h.wait(q))
    assert.are.equal(100, #kt.read(r, 100))
    assert.are.same({}, h.wait(q)) -- a read, but below the mark
    assert.are.equal(900, #kt.read(r, 900))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.evflags(EV_ONESHOT, evs[1].flags)
    assert.are.equal(PIPE_SIZE, evs[1].data)
    assert.are.same({}, h.wait(q))
  end)

  it("with EV_CLEAR fires at each read that leaves the mark met", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local r, w = assert(kt.pipe())
    defer(function() kt.close(r); kt.close(w) end)
    h.apply(q, h.ch(w, WRITE, EV_ADD + EV_CLEAR, NOTE_LOWAT, 60000))
    assert.are.equal(PIPE_SIZE, h.wait(q)[1].data)
    assert.are.same({}, h.wait(q))
    assert(kt.write(w, string.rep("x", 10000)))
    assert.are.same({}, h.wait(q)) -- 55536 free
    assert.are.equal(4000, #kt.read(r, 4000))
    local evs = h.wait(q) -- 59536 free: below
    assert.are.same({}, evs)
    assert.are.equal(1000, #kt.read(r, 1000))
    evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.evflags(EV_CLEAR, evs[1].flags)
    assert.are.equal(PIPE_SIZE - 5000, evs[1].data)
    assert.are.same({}, h.wait(q))
    assert.are.equal(5000, #kt.read(r, 5000))
    assert.are.equal(PIPE_SIZE, h.wait(q)[1].data)
  end)

  it("reports EV_EOF below the mark once the reader is gone", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local r, w = assert(kt.pipe())
    local rclosed = false
    defer(function() kt.close(w); if not rclosed then kt.close(r) end end)
    h.apply(q, h.ch(w, WRITE, EV_ADD, NOTE_LOWAT, 65000))
    assert(kt.write(w, string.rep("x", 1000)))
    h.wait(q)
    assert.are.same({}, h.wait(q))
    kt.close(r)
    rclosed = true
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.evflags(EV_EOF, evs[1].flags)
  end)

  it("evaluates the knote at a modify that removes the mark", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local r, w = assert(kt.pipe())
    defer(function() kt.close(r); kt.close(w) end)
    h.apply(q, h.ch(w, WRITE, EV_ADD + EV_CLEAR, NOTE_LOWAT, 65000))
    assert(kt.write(w, string.rep("x", 1000)))
    h.wait(q)
    assert.are.same({}, h.wait(q))
    -- A modify without NOTE_LOWAT: an EV_CLEAR WRITE knote on a pipe with
    -- room, evaluated at the modify (FreeBSD: ready at 512 bytes free).
    h.apply(q, h.ch(w, WRITE, EV_ADD + EV_CLEAR))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(PIPE_SIZE - 1000, evs[1].data)
    assert.are.same({}, h.wait(q))
  end)
end)
