-- EVFILT_READ and EVFILT_WRITE on sockets (unix stream and datagram, TCP
-- through LuaSocket), pipes, FIFOs, listening sockets and nested queues
-- (semantics §4.1, §4.2, §5; checklist items 13, 21-25, 30-32, 69-72).
-- Regular files are covered elsewhere.  Terminals are not covered: the
-- test module has no pty calls.
local kq = require("kq")
local kt = require("kqtest")
local socket = require("socket")
local h = require("spec.helper")

local READ, WRITE, USER, TIMER = kq.EVFILT_READ, kq.EVFILT_WRITE,
  kq.EVFILT_USER, kq.EVFILT_TIMER
local EV_ADD, EV_DELETE, EV_CLEAR, EV_EOF, EV_ONESHOT =
  kq.EV_ADD, kq.EV_DELETE, kq.EV_CLEAR, kq.EV_EOF, kq.EV_ONESHOT
local E = kt.errno

-- A connected TCP pair over loopback: client, server side, listener.
local function tcp_pair(defer)
  local srv = assert(socket.bind("127.0.0.1", 0))
  defer(function() srv:close() end)
  local _, port = srv:getsockname()
  local cli = assert(socket.connect("127.0.0.1", port))
  defer(function() cli:close() end)
  local conn = assert(srv:accept())
  defer(function() conn:close() end)
  return cli, conn, srv
end

local function count(list, filter, ident)
  local n = 0
  for _, e in ipairs(list) do
    if e.filter == filter and (ident == nil or e.ident == ident) then
      n = n + 1
    end
  end
  return n
end

describe("EVFILT_READ on a stream socket", function()
  it("reports ident, flags 0 and the bytes available, until drained", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local a, b = h.pair(defer)
    h.apply(q, h.ch(b, READ, EV_ADD))
    assert.are.same({}, h.wait(q))
    assert(kt.write(a, "foo"))
    for _ = 1, 3 do
      local evs = h.wait(q)
      assert.are.equal(1, #evs)
      assert.are.equal(b, evs[1].ident)
      assert.are.equal(READ, evs[1].filter)
      assert.evflags(0, evs[1].flags)
      assert.are.equal(0, evs[1].fflags)
      assert.are.equal(3, evs[1].data)
    end
    assert.are.equal("foo", kt.read(b, 10))
    assert.are.same({}, h.wait(q))
  end)

  it("with NOTE_LOWAT 5 ignores 3 bytes and fires at 5", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local a, b = h.pair(defer)
    h.apply(q, h.ch(b, READ, EV_ADD, kq.NOTE_LOWAT, 5))
    assert(kt.write(a, "abc"))
    assert.are.same({}, h.wait(q, 8, 0.05))
    assert.are.same({}, h.wait(q))
    assert(kt.write(a, "de"))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(5, evs[1].data)
    -- still level: 5 bytes are still there
    assert.are.equal(5, h.wait(q)[1].data)
  end)

  it("reports EV_EOF with the bytes left after the peer's SHUT_WR, every call", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local a, b = h.pair(defer)
    h.apply(q, h.ch(b, READ, EV_ADD))
    assert(kt.write(a, "12345678"))
    assert(kt.shutdown(a, "wr"))
    for _ = 1, 3 do
      local evs = h.wait(q)
      assert.are.equal(1, #evs)
      assert.evflags(EV_EOF, evs[1].flags)
      assert.are.equal(0, evs[1].fflags)
      assert.are.equal(8, evs[1].data)
    end
    assert.are.equal("12345678", kt.read(b, 100))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.evflags(EV_EOF, evs[1].flags)
    assert.are.equal(0, evs[1].data)
  end)

  it("reports the EOF once with EV_CLEAR", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local a, b = h.pair(defer)
    h.apply(q, h.ch(b, READ, EV_ADD + EV_CLEAR))
    assert(kt.write(a, "12345678"))
    assert(kt.shutdown(a, "wr"))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.evflags(EV_EOF + EV_CLEAR, evs[1].flags)
    assert.are.equal(8, evs[1].data)
    assert.are.same({}, h.wait(q))
    assert.are.same({}, h.wait(q, 8, 0.02))
  end)

  it("reports the peer's reset as EV_EOF with fflags ECONNRESET (TCP)", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local cli, conn = tcp_pair(defer)
    local fd = cli:getfd()
    h.apply(q, h.ch(fd, READ, EV_ADD))
    assert(kt.set_linger0(conn:getfd()))
    conn:close()
    local evs = h.wait(q, 8, 2)
    assert.are.equal(1, #evs)
    assert.are.equal(fd, evs[1].ident)
    assert.is_true(kq.band(evs[1].flags, EV_EOF) ~= 0)
    assert.are.equal(E.ECONNRESET, evs[1].fflags)
  end)

  it("reads a connection from a LuaSocket object through getfd", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local cli, conn = tcp_pair(defer)
    h.apply(q, { ident = conn, filter = READ, flags = EV_ADD })
    assert(cli:send("hello"))
    local evs = h.wait(q, 8, 2)
    assert.are.equal(1, #evs)
    assert.are.equal(conn:getfd(), evs[1].ident)
    assert.are.equal(5, evs[1].data)
  end)
end)

describe("EVFILT_READ on a datagram socket", function()
  it("fires for a queued datagram with data > 0", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local a, b = h.pair(defer, "dgram")
    h.apply(q, h.ch(b, READ, EV_ADD))
    assert.are.same({}, h.wait(q))
    assert(kt.write(a, "datagram"))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    -- Linux reports the next datagram (semantics §6.3)
    assert.are.equal(8, evs[1].data)
    assert.are.equal("datagram", kt.read(b, 100))
    assert.are.same({}, h.wait(q))
  end)
end)

describe("EVFILT_READ on a listening socket", function()
  it("reports the number of pending connections (TCP)", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local srv = assert(socket.bind("127.0.0.1", 0))
    defer(function() srv:close() end)
    local _, port = srv:getsockname()
    h.apply(q, h.ch(srv:getfd(), READ, EV_ADD))
    assert.are.same({}, h.wait(q))
    local c1 = assert(socket.connect("127.0.0.1", port))
    defer(function() c1:close() end)
    local c2 = assert(socket.connect("127.0.0.1", port))
    defer(function() c2:close() end)
    local evs = h.wait(q, 8, 2)
    assert.are.equal(1, #evs)
    assert.are.equal(srv:getfd(), evs[1].ident)
    assert.are.equal(2, evs[1].data)
    local c = assert(srv:accept())
    c:close()
    assert.are.equal(1, h.wait(q)[1].data)
  end)

  it("never reports WRITE on a listener", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local srv = assert(socket.bind("127.0.0.1", 0))
    defer(function() srv:close() end)
    h.apply(q, h.ch(srv:getfd(), WRITE, EV_ADD))
    assert.are.same({}, h.wait(q, 8, 0.05))
  end)
end)

describe("EVFILT_READ on a pipe", function()
  it("reports the bytes in the pipe, then EV_EOF with those left", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local r, w = assert(kt.pipe())
    local wclosed = false
    defer(function() kt.close(r); if not wclosed then kt.close(w) end end)
    h.apply(q, h.ch(r, READ, EV_ADD))
    assert.are.same({}, h.wait(q))
    assert(kt.write(w, "hello world"))
    assert(kt.write(w, "hello world"))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(22, evs[1].data)
    assert.evflags(0, evs[1].flags)
    assert.are.equal(18, #kt.read(r, 18))
    kt.close(w)
    wclosed = true
    for _ = 1, 2 do
      evs = h.wait(q)
      assert.are.equal(1, #evs)
      assert.evflags(EV_EOF, evs[1].flags)
      assert.are.equal(4, evs[1].data)
    end
  end)

  it("accepts READ on the write end and never fires", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local r, w = assert(kt.pipe())
    defer(function() kt.close(r); kt.close(w) end)
    h.apply(q, h.ch(w, READ, EV_ADD))
    assert(kt.write(w, "x"))
    assert.are.same({}, h.wait(q, 8, 0.02))
  end)
end)

describe("EVFILT_READ on a FIFO", function()
  it("reports the bytes, then EV_EOF when the last writer closes", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local path = os.tmpname()
    os.remove(path)
    assert(kt.mkfifo(path))
    defer(function() os.remove(path) end)
    -- O_RDWR never blocks; it lets the plain ends open without blocking.
    local rw = assert(kt.open(path, "rw"))
    local w = assert(kt.open(path, "w"))
    local r = assert(kt.open(path, "r"))
    kt.close(rw)
    local wclosed = false
    defer(function() kt.close(r); if not wclosed then kt.close(w) end end)
    h.apply(q, h.ch(r, READ, EV_ADD))
    assert.are.same({}, h.wait(q))
    assert(kt.write(w, "fifo!"))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(5, evs[1].data)
    assert.evflags(0, evs[1].flags)
    kt.close(w)
    wclosed = true
    evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.evflags(EV_EOF, evs[1].flags)
    assert.are.equal(5, evs[1].data)
  end)
end)

describe("EVFILT_WRITE", function()
  it("on a fresh TCP socket has data > 0, falling as data queues", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local cli, conn = tcp_pair(defer)
    -- A fixed send buffer: no autotuning under the test.
    assert(cli:setoption("send-buffer-size", 65536))
    local fd = cli:getfd()
    h.apply(q, h.ch(fd, WRITE, EV_ADD))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(WRITE, evs[1].filter)
    assert.evflags(0, evs[1].flags)
    local fresh = evs[1].data
    assert.is_true(fresh > 0)
    -- Fill the peer's receive buffer and ours.
    cli:settimeout(0)
    local chunk = string.rep("x", 65536)
    for _ = 1, 200 do
      local n, err, part = cli:send(chunk)
      if not n then
        assert.are.equal("timeout", err, part)
        break
      end
    end
    -- Let some of it drain so that the socket is writable again, with
    -- bytes still queued.
    conn:settimeout(0)
    local got = 0
    local later
    for _ = 1, 100 do
      local s, _, part = conn:receive(16384)
      got = got + #(s or part or "")
      evs = h.wait(q, 8, 0.01)
      if #evs == 1 then
        later = evs[1].data
        break
      end
    end
    assert.is_truthy(later, "the socket never became writable again")
    assert.is_true(later < fresh, ("%d < %d"):format(later, fresh))
  end)

  it("on a unix stream socket falls by what the peer has not read", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local a, b = h.pair(defer)
    h.apply(q, h.ch(a, WRITE, EV_ADD))
    local fresh = h.wait(q)[1].data
    assert.is_true(fresh > 0)
    assert(kt.write(a, string.rep("y", 1000)))
    local later = h.wait(q)[1].data
    assert.is_true(later <= fresh - 1000, ("%d <= %d"):format(later, fresh - 1000))
    kt.read(b, 4096)
    assert.are.equal(fresh, h.wait(q)[1].data)
  end)

  it("on a pipe reports the free space, F_GETPIPE_SZ - queued", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local r, w = assert(kt.pipe())
    defer(function() kt.close(r); kt.close(w) end)
    h.apply(q, h.ch(w, WRITE, EV_ADD))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(w, evs[1].ident)
    local free = evs[1].data
    if kq.backend == "linux" then
      assert.are.equal(65536, free) -- Linux's default pipe size
    end
    assert.is_true(free > 100)
    assert(kt.write(w, string.rep("z", 100)))
    assert.are.equal(free - 100, h.wait(q)[1].data)
  end)

  it("on a pipe whose reader closed before EV_ADD fails with EPIPE", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local r, w = assert(kt.pipe())
    defer(function() kt.close(w) end)
    kt.close(r)
    local list = {}
    local n = q:kevent({ h.ch(w, WRITE, EV_ADD) }, list, 4, 0)
    assert.are.equal(1, n)
    assert.evflags(kq.EV_ERROR, list[1].flags)
    assert.are.equal(E.EPIPE, list[1].data)
    assert.os_error(E.EPIPE, q:kevent({ h.ch(w, WRITE, EV_ADD) }))
    -- nothing was registered
    assert.os_error(E.ENOENT, q:kevent({ h.ch(w, WRITE, EV_DELETE) }))
  end)

  it("on a pipe whose reader closes later reports EV_EOF", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local r, w = assert(kt.pipe())
    defer(function() kt.close(w) end)
    h.apply(q, h.ch(w, WRITE, EV_ADD))
    assert.evflags(0, h.wait(q)[1].flags)
    kt.close(r)
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.is_true(kq.band(evs[1].flags, EV_EOF) ~= 0)
  end)

  it("on an unconnected UDP socket is ready at once", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local u = assert(socket.udp4()) -- udp() makes its socket lazily
    defer(function() u:close() end)
    h.apply(q, h.ch(u:getfd(), WRITE, EV_ADD))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(u:getfd(), evs[1].ident)
    assert.is_true(evs[1].data > 0)
  end)
end)

describe("READ and WRITE on one socket", function()
  for _, mode in ipairs({ { "level", 0 }, { "EV_CLEAR", EV_CLEAR } }) do
    it("both arrive with nevents = 1 over three calls (" .. mode[1] .. ")", function()
      local defer = h.closer()
      local q = h.newq(defer)
      local a, b = h.pair(defer)
      assert(kt.write(a, "x"))
      h.apply(q, h.ch(b, READ, kq.bor(EV_ADD, mode[2])), h.ch(b, WRITE, kq.bor(EV_ADD, mode[2])))
      local seen = {}
      for _ = 1, 3 do
        for _, e in ipairs(h.wait(q, 1)) do seen[#seen + 1] = e end
      end
      assert.are.equal(1, count(seen, READ, b) >= 1 and 1 or 0)
      assert.are.equal(1, count(seen, WRITE, b) >= 1 and 1 or 0)
      if mode[2] == EV_CLEAR then
        assert.are.equal(2, #seen)
      else
        assert.are.equal(3, #seen)
      end
    end)
  end

  it("READ with EV_CLEAR and WRITE level: READ once, WRITE every call", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local a, b = h.pair(defer)
    h.apply(q, h.ch(b, READ, EV_ADD + EV_CLEAR), h.ch(b, WRITE, EV_ADD))
    assert(kt.write(a, "ping"))
    local reads, writes = 0, 0
    for _ = 1, 3 do
      local evs = h.wait(q)
      reads = reads + count(evs, READ, b)
      local w = count(evs, WRITE, b)
      assert.are.equal(1, w)
      writes = writes + w
    end
    assert.are.equal(1, reads)
    assert.are.equal(3, writes)
  end)

  it("READ level and WRITE with EV_CLEAR: READ every call, WRITE once", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local a, b = h.pair(defer)
    h.apply(q, h.ch(b, READ, EV_ADD), h.ch(b, WRITE, EV_ADD + EV_CLEAR))
    assert(kt.write(a, "ping"))
    local reads, writes = 0, 0
    for _ = 1, 3 do
      local evs = h.wait(q)
      assert.are.equal(1, count(evs, READ, b))
      reads = reads + 1
      writes = writes + count(evs, WRITE, b)
    end
    assert.are.equal(3, reads)
    assert.are.equal(1, writes)
  end)

  it("READ and WRITE both with EV_CLEAR: a peer write fires READ only", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local a, b = h.pair(defer)
    h.apply(q, h.ch(b, READ, EV_ADD + EV_CLEAR), h.ch(b, WRITE, EV_ADD + EV_CLEAR))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(WRITE, evs[1].filter)
    for i = 1, 2 do
      assert(kt.write(a, "x"))
      evs = h.wait(q)
      assert.are.equal(1, #evs)
      assert.are.equal(READ, evs[1].filter)
      assert.are.equal(i, evs[1].data)
    end
  end)

  it("enabling or re-adding READ does not fire a WRITE EV_CLEAR knote again", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local _, b = h.pair(defer)
    h.apply(q, h.ch(b, READ, EV_ADD + EV_CLEAR), h.ch(b, WRITE, EV_ADD + EV_CLEAR))
    assert.are.equal(1, #h.wait(q))
    h.apply(q, h.ch(b, READ, EV_ADD, 0, 0, "again"))
    assert.are.same({}, h.wait(q))
    h.apply(q, h.ch(b, READ, kq.EV_DISABLE))
    h.apply(q, h.ch(b, READ, kq.EV_ENABLE))
    assert.are.same({}, h.wait(q))
  end)

  it("deleting one direction leaves the other working", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local a, b = h.pair(defer)
    h.apply(q, h.ch(b, READ, EV_ADD), h.ch(b, WRITE, EV_ADD))
    h.apply(q, h.ch(b, WRITE, EV_DELETE))
    assert.are.same({}, h.wait(q))
    assert(kt.write(a, "x"))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(READ, evs[1].filter)
  end)
end)

describe("round-robin and capacity", function()
  it("serves two level-ready knotes A, B, A, B with nevents = 1", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local a1, b1 = h.pair(defer)
    local a2, b2 = h.pair(defer)
    assert(kt.write(a1, "x"))
    assert(kt.write(a2, "x"))
    h.apply(q, h.ch(b1, READ, EV_ADD), h.ch(b2, READ, EV_ADD))
    local order = {}
    for i = 1, 4 do
      local evs = h.wait(q, 1)
      assert.are.equal(1, #evs)
      order[i] = evs[1].ident
    end
    assert.are_not.equal(order[1], order[2])
    assert.are.equal(order[1], order[3])
    assert.are.equal(order[2], order[4])
  end)

  it("delivers 600 ready knotes in one call of nevents = 600", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local fds = {}
    for _ = 1, 300 do
      local a, b = h.pair(defer)
      assert(kt.write(a, "x"))
      assert(kt.write(b, "x"))
      fds[#fds + 1] = a
      fds[#fds + 1] = b
    end
    local changes = {}
    for i, fd in ipairs(fds) do changes[i] = h.ch(fd, READ, EV_ADD) end
    assert.are.equal(0, q:kevent(changes))
    local evs = h.wait(q, 600)
    assert.are.equal(600, #evs)
    local seen = {}
    for _, e in ipairs(evs) do seen[e.ident] = true end
    for _, fd in ipairs(fds) do assert.is_true(seen[fd]) end
  end)

  it("keeps events that do not fit pending: none is lost", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local changes = {}
    for i = 1, 10 do
      local a, b = h.pair(defer)
      assert(kt.write(a, "x"))
      changes[i] = h.ch(b, READ, EV_ADD + EV_CLEAR)
    end
    assert.are.equal(0, q:kevent(changes))
    local seen, total = {}, 0
    for _ = 1, 4 do
      for _, e in ipairs(h.wait(q, 3)) do
        assert.is_nil(seen[e.ident])
        seen[e.ident] = true
        total = total + 1
      end
    end
    assert.are.equal(10, total)
    assert.are.same({}, h.wait(q, 10))
  end)
end)

describe("a descriptor closed while watched", function()
  it("EV_DELETE after the close gives EBADF", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local a, b = assert(kt.socketpair())
    defer(function() kt.close(a) end)
    h.apply(q, h.ch(b, READ, EV_ADD))
    kt.close(b)
    assert.os_error(E.EBADF, q:kevent({ h.ch(b, READ, EV_DELETE) }))
  end)

  it("a new socket on the same number starts clean with the new udata", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local a, b = assert(kt.socketpair())
    defer(function() kt.close(a) end)
    h.apply(q, h.ch(b, READ, EV_ADD, 0, 0, "old"))
    assert(kt.write(a, "stale"))
    assert.are.equal("old", h.wait(q)[1].udata)
    -- Give the number b to a new socket.  The pair is made while b is
    -- still open, so that neither end can take the number b (dup2 onto
    -- y would close the peer).
    local x, y = h.pair(defer)
    kt.close(b)
    assert.are.equal(b, kt.dup2(x, b))
    defer(function() kt.close(b) end)
    h.apply(q, h.ch(b, READ, EV_ADD, 0, 0, "new"))
    assert.are.same({}, h.wait(q, 8, 0.02))
    assert(kt.write(y, "fresh"))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(b, evs[1].ident)
    assert.are.equal("new", evs[1].udata)
    assert.are.equal(5, evs[1].data)
  end)

  it("an event left pending by a full eventlist is not delivered after the close", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local a, b = assert(kt.socketpair())
    defer(function() kt.close(a) end)
    assert(kt.write(a, "x"))
    h.apply(q, h.ch(b, READ, EV_ADD), h.ch(b, WRITE, EV_ADD))
    assert.are.equal(1, #h.wait(q, 1)) -- the other one waits its turn
    kt.close(b)
    assert.are.same({}, h.wait(q))
    assert.are.same({}, h.wait(q, 8, 0.02))
  end)

  it("rejects an ident above INT_MAX with EBADF", function()
    local defer = h.closer()
    local q = h.newq(defer)
    assert.os_error(E.EBADF, q:kevent({ h.ch(0x80000000, READ, EV_ADD) }))
    assert.os_error(E.EBADF, q:kevent({ h.ch(0x80000000, WRITE, EV_ADD) }))
  end)
end)

describe("a queue watched by another", function()
  it("reports READ with ident = the inner fd and data = 1", function()
    local defer = h.closer()
    local outer = h.newq(defer)
    local inner = h.newq(defer)
    h.apply(inner, h.ch(1, USER, EV_ADD + EV_CLEAR))
    h.apply(outer, h.ch(inner:fileno(), READ, EV_ADD))
    assert.are.same({}, h.wait(outer))
    h.apply(inner, h.ch(1, USER, 0, kq.NOTE_TRIGGER))
    local evs = h.wait(outer, 8, 1)
    assert.are.equal(1, #evs)
    assert.are.equal(inner:fileno(), evs[1].ident)
    assert.are.equal(READ, evs[1].filter)
    assert.are.equal(1, evs[1].data)
    -- the inner queue still holds its event
    local inner_evs = h.wait(inner)
    assert.are.equal(1, #inner_evs)
    assert.are.equal(USER, inner_evs[1].filter)
    assert.are.same({}, h.wait(outer))
  end)

  it("accepts the queue object itself as ident", function()
    local defer = h.closer()
    local outer = h.newq(defer)
    local inner = h.newq(defer)
    h.apply(inner, h.ch(7, USER, EV_ADD))
    h.apply(outer, { ident = inner, filter = READ, flags = EV_ADD })
    h.apply(inner, h.ch(7, USER, 0, kq.NOTE_TRIGGER))
    local evs = h.wait(outer, 8, 1)
    assert.are.equal(1, #evs)
    assert.are.equal(inner:fileno(), evs[1].ident)
  end)

  it("rejects a queue watching itself, and WRITE on a queue, with EINVAL", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local other = h.newq(defer)
    assert.os_error(E.EINVAL, q:kevent({ h.ch(q:fileno(), READ, EV_ADD) }))
    assert.os_error(E.EINVAL, q:kevent({ h.ch(other:fileno(), WRITE, EV_ADD) }))
  end)

  if kq.backend == "linux" then
    it("rejects a cycle of two queues with EINVAL (engine)", function()
      local defer = h.closer()
      local q1 = h.newq(defer)
      local q2 = h.newq(defer)
      h.apply(q1, h.ch(q2:fileno(), READ, EV_ADD))
      assert.os_error(E.EINVAL, q2:kevent({ h.ch(q1:fileno(), READ, EV_ADD) }))
    end)
  end
end)

describe("a queue's descriptor under poll(2)", function()
  it("is readable while a triggered USER event waits", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local fd = q:fileno()
    h.apply(q, h.ch(1, USER, EV_ADD + EV_CLEAR))
    assert.is_false(kt.poll_in(fd, 0))
    h.apply(q, h.ch(1, USER, 0, kq.NOTE_TRIGGER))
    assert.is_true(kt.poll_in(fd, 0))
    assert.are.equal(1, #h.wait(q))
    assert.is_false(kt.poll_in(fd, 0))
  end)

  it("is readable once a timer is due", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local fd = q:fileno()
    h.apply(q, h.ch(1, TIMER, EV_ADD + EV_ONESHOT, 0, 30))
    assert.is_false(kt.poll_in(fd, 0))
    assert.is_true(kt.poll_in(fd, 2000))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(TIMER, evs[1].filter)
  end)

  it("is readable while a socket event waits", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local a, b = h.pair(defer)
    h.apply(q, h.ch(b, READ, EV_ADD))
    assert.is_false(kt.poll_in(q:fileno(), 0))
    assert(kt.write(a, "x"))
    assert.is_true(kt.poll_in(q:fileno(), 1000))
  end)
end)

describe("descriptors", function()
  it("READ/WRITE knotes on many sockets cost no descriptor", function()
    local defer = h.closer()
    local fds = {}
    for i = 1, 50 do
      local a = h.pair(defer)
      fds[i] = a
    end
    h.no_fd_leak(function()
      local q = assert(kq.kqueue())
      local before = kt.fdcount()
      local changes = {}
      for _, fd in ipairs(fds) do
        changes[#changes + 1] = h.ch(fd, READ, EV_ADD)
        changes[#changes + 1] = h.ch(fd, WRITE, EV_ADD + EV_CLEAR)
      end
      assert.are.equal(0, q:kevent(changes))
      h.wait(q, 200)
      -- at most the nested edge epoll for the mixed descriptors
      assert.is_true(kt.fdcount() - before <= 1)
      q:close()
    end)
  end)
end)
