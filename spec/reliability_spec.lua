-- What a server running for days meets (issue #10): counters at their
-- wrap, the descriptor limit, fork, reused numbers, queues in queues.
-- Real queues, sockets, pipes and processes; no time is a pass/fail bound
-- (a wait that should return an event has a long timeout, and the spec
-- checks the count it returns).
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")

local READ, WRITE, USER = kq.EVFILT_READ, kq.EVFILT_WRITE, kq.EVFILT_USER
local ADD, CLEAR, ENABLE, DISABLE = kq.EV_ADD, kq.EV_CLEAR, kq.EV_ENABLE, kq.EV_DISABLE
local LONG = 20 -- seconds: only reached when an event is lost

describe("after 65,536 calls", function()
  -- The engine counts collections in 16 bits; an idle loop polling with
  -- timeout 0 gets there within a second.
  local function idle(q, calls)
    local evs = {}
    for _ = 1, calls do assert.are.equal(0, q:kevent(nil, evs, 1, 0)) end
  end

  for _, calls in ipairs({ 65533, 65534, 65535, 65536 }) do
    it(("a USER trigger after %d empty polls is returned"):format(calls), function()
      local q = h.newq(h.defer)
      h.apply(q, h.ch(1, USER, ADD + CLEAR))
      idle(q, calls)
      h.apply(q, h.ch(1, USER, 0, kq.NOTE_TRIGGER))
      local evs = {}
      assert.are.equal(1, q:kevent(nil, evs, 1, LONG))
      assert.are.equal(1, evs[1].ident)
    end)
  end

  it("an EV_CLEAR READ knote still sees new data", function()
    local q = h.newq(h.defer)
    local a, b = h.pair(h.defer)
    h.apply(q, h.ch(a, READ, ADD + CLEAR))
    idle(q, 65534)
    assert.are.equal(1, kt.write(b, "x"))
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, LONG))
    assert.are.equal(a, evs[1].ident)
  end)

  it("a level READ knote is returned on every call across the wrap", function()
    local q = h.newq(h.defer)
    local a, b = h.pair(h.defer)
    assert.are.equal(1, kt.write(b, "x"))
    h.apply(q, h.ch(a, READ, ADD))
    local evs = {}
    for _ = 1, 65536 + 8 do assert.are.equal(1, q:kevent(nil, evs, 1, LONG)) end
  end)
end)

describe("at the descriptor limit", function()
  it("a USER trigger still makes the queue's descriptor readable", function()
    local q = h.newq(h.defer)
    local fd = q:fileno()
    h.apply(q, h.ch(1, USER, ADD + CLEAR))
    h.use_up_fds(h.defer, 0)
    h.apply(q, h.ch(1, USER, 0, kq.NOTE_TRIGGER))
    assert.is_true(kt.poll_in(fd, 0))
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 0))
  end)

  it("EV_ENABLE of a level WRITE knote beside an EV_CLEAR READ one fires", function()
    local q = h.newq(h.defer)
    local a = h.pair(h.defer)
    h.apply(q, h.ch(a, READ, ADD + CLEAR), h.ch(a, WRITE, ADD + DISABLE))
    h.use_up_fds(h.defer, 0)
    local evs = {}
    local n = q:kevent({ h.ch(a, WRITE, ENABLE) }, evs, 4, 0)
    -- Either the change is refused with an error entry, or it worked:
    -- never a success that delivers nothing.
    if n == 1 and kq.band(evs[1].flags, kq.EV_ERROR) ~= 0 then
      assert.are_not.equal(0, evs[1].data)
    else
      if n == 0 then n = q:kevent(nil, evs, 4, LONG) end
      assert.are.equal(1, n)
      assert.are.equal(WRITE, evs[1].filter)
      assert.are.equal(a, evs[1].ident)
    end
  end)

  if kq.NOTE_LOWAT and kq.backend == "linux" then
    it("a pipe's WRITE NOTE_LOWAT knote needing an inotify descriptor is refused (engine)",
      function()
        local q = h.newq(h.defer)
        local r, w = kt.pipe()
        h.defer(function() kt.close(r); kt.close(w) end)
        h.use_up_fds(h.defer, 0)
        local evs = {}
        local n = q:kevent({ h.ch(w, WRITE, ADD, kq.NOTE_LOWAT, 4096) }, evs, 4, 0)
        assert.are.equal(1, n)
        assert.are_not.equal(0, kq.band(evs[1].flags, kq.EV_ERROR))
        assert.are.equal(kt.errno.EMFILE, evs[1].data)
      end)
  end
end)

if kq.backend == "linux" then
  describe("a fork child (engine) #pidfd", function()
    it("holds none of the queue's descriptors, as on FreeBSD", function()
      collectgarbage() -- earlier tests' garbage closes descriptors when collected
      collectgarbage()
      local base = h.fdcount()
      local a = h.pair(h.defer)
      local q = h.newq(h.defer)
      h.apply(q,
        h.ch(a, READ, ADD + CLEAR), h.ch(a, WRITE, ADD), -- the nested epoll
        h.ch(1, kq.EVFILT_TIMER, ADD, 0, 60000),          -- the timerfd
        h.ch(kt.getpid(), kq.EVFILT_PROC, ADD, kq.NOTE_EXIT)) -- a pidfd
      assert.is_true(h.fdcount() > base + 2)
      local pid = assert(kt.fork())
      if pid == 0 then
        -- The pair is the program's; everything of the queue's is gone.
        kt._exit(h.fdcount() == base + 2 and 0 or 1)
      end
      local _, status = assert(kt.waitpid(pid))
      assert.are.equal(0, status)
    end)
  end)
end

describe("a queue watched by another", function()
  local function nested(defer, flags)
    local outer, inner = h.newq(defer), h.newq(defer)
    h.apply(outer, h.ch(inner:fileno(), READ, ADD + (flags or 0)))
    return outer, inner
  end

  it("with EV_CLEAR fires once for one event, its data read or not", function()
    for _, read_data in ipairs({ false, true }) do
      local outer, inner = nested(h.defer, CLEAR)
      local r, w = kt.pipe()
      h.defer(function() kt.close(r); kt.close(w) end)
      h.apply(inner, h.ch(r, READ, ADD))
      assert.are.equal(1, kt.write(w, "x"))
      local evs = {}
      assert.are.equal(1, outer:kevent(nil, evs, 4, LONG))
      if read_data then assert.are.equal(1, evs[1].data) end
      assert.are.equal(0, outer:kevent(nil, evs, 4, 0))
      assert.are.equal(0, outer:kevent(nil, evs, 4, 0))
    end
  end)

  it("with EV_CLEAR fires again for an event that enters it anew", function()
    local outer, inner = nested(h.defer, CLEAR)
    h.apply(inner, h.ch(1, USER, ADD + CLEAR), h.ch(2, USER, ADD + CLEAR))
    h.apply(inner, h.ch(1, USER, 0, kq.NOTE_TRIGGER))
    local evs = {}
    assert.are.equal(1, outer:kevent(nil, evs, 4, LONG))
    assert.are.equal(1, evs[1].data)
    assert.are.equal(1, inner:kevent(nil, evs, 4, 0)) -- the inner is drained
    h.apply(inner, h.ch(2, USER, 0, kq.NOTE_TRIGGER))
    assert.are.equal(1, outer:kevent(nil, evs, 4, LONG))
    assert.are.equal(1, evs[1].data)
    assert.are.equal(0, outer:kevent(nil, evs, 4, 0))
  end)

  it("in a chain, with EV_CLEAR, passes every new event up, once, round after round", function()
    local r, w = kt.pipe()
    h.defer(function() kt.close(r); kt.close(w) end)
    local chain = { h.newq(h.defer) }
    h.apply(chain[1], h.ch(r, READ, ADD))
    for k = 2, 4 do
      chain[k] = h.newq(h.defer)
      h.apply(chain[k], h.ch(chain[k - 1]:fileno(), READ, ADD + CLEAR))
    end
    local evs = {}
    for _ = 1, 3 do
      assert.are.equal(1, kt.write(w, "c"))
      for k = #chain, 2, -1 do
        assert.are.equal(1, chain[k]:kevent(nil, evs, 4, LONG))
        assert.are.equal(chain[k - 1]:fileno(), evs[1].ident)
        assert.are.equal(0, chain[k]:kevent(nil, evs, 4, 0))
      end
      assert.are.equal(1, chain[1]:kevent(nil, evs, 4, 0))
      assert.is_truthy(kt.read(r, 8))
    end
  end)

  it("refuses a cycle with EINVAL, whatever its length", function()
    local q = {}
    for i = 1, 3 do q[i] = h.newq(h.defer) end
    h.apply(q[1], h.ch(q[2]:fileno(), READ, ADD))
    h.apply(q[2], h.ch(q[3]:fileno(), READ, ADD))
    local evs = {}
    assert.are.equal(1, q[3]:kevent({ h.ch(q[1]:fileno(), READ, ADD) }, evs, 1, 0))
    assert.are.equal(kt.errno.EINVAL, evs[1].data)
    assert.are.equal(1, q[2]:kevent({ h.ch(q[1]:fileno(), READ, ADD) }, evs, 1, 0))
    assert.are.equal(kt.errno.EINVAL, evs[1].data)
  end)

  if kq.backend == "linux" then
    it("in a chain deeper than epoll nests gets ELOOP, not the cycle's EINVAL (engine)", function()
      local q = {}
      for i = 1, 8 do q[i] = h.newq(h.defer) end
      local evs, depth = {}, nil
      for i = 1, 7 do
        local n = q[i]:kevent({ h.ch(q[i + 1]:fileno(), READ, ADD + kq.EV_RECEIPT) }, evs, 1, 0)
        assert.are.equal(1, n)
        if evs[1].data ~= 0 then
          assert.are.equal(kt.errno.ELOOP, evs[1].data)
          depth = depth or i
        end
      end
      -- doc/limits.md: five queues in a chain, the sixth refused.
      assert.are.equal(5, depth)
    end)
  end
end)

describe("a descriptor closed while a fork child keeps it", function()
  -- A pre-forking server: the parent hands a connection to a worker and
  -- closes its own copy without EV_DELETE, as FreeBSD allows (the knote
  -- goes with the close).  On Linux epoll keeps reporting the file the
  -- child holds; nothing of it may reach the parent's queue.
  local function keeper()
    local r, w = kt.pipe()
    local pid = assert(kt.fork())
    if pid == 0 then
      kt.close(w)
      kt.read(r, 1) -- until the parent lets go
      kt._exit(0)
    end
    kt.close(r)
    return function()
      kt.close(w)
      assert(kt.waitpid(pid))
    end
  end

  it("gives no event for the closed number, nor for its next file", function()
    local q = h.newq(h.defer)
    local a, b = kt.socketpair()
    h.defer(function() kt.close(b) end)
    h.apply(q, h.ch(a, READ, ADD, 0, 0, "old"), h.ch(a, WRITE, ADD + CLEAR, 0, 0, "old"))
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 4, 0)) -- the WRITE edge
    local release = keeper()
    h.defer(release)
    kt.close(a)
    assert.are.equal(1, kt.write(b, "x"))
    assert.are.equal(0, q:kevent(nil, evs, 4, 0.3))
    -- The number's next file, registered: only its own events.
    local a2, peer = kt.socketpair()
    h.defer(function() kt.close(a2); kt.close(peer) end)
    h.apply(q, h.ch(a2, READ, ADD, 0, 0, "new"))
    assert.are.equal(1, kt.write(b, "y"))
    assert.are.equal(0, q:kevent(nil, evs, 4, 0.3))
    assert.are.equal(1, kt.write(peer, "z"))
    assert.are.equal(1, q:kevent(nil, evs, 4, LONG))
    assert.are.equal(a2, evs[1].ident)
    assert.are.equal("new", evs[1].udata)
  end)
end)

if kt.SIGRTMIN then
  describe("a burst of real-time signals", function()
    it("is counted exactly, one per kill()", function()
      local sig = kt.SIGRTMIN + 2
      local restore = { kt.sigstate(sig) }
      assert(kt.signal(sig, "ignore"))
      h.defer(function() kt.signal(sig, restore[1]) end)
      local q = h.newq(h.defer)
      h.apply(q, h.ch(sig, kq.EVFILT_SIGNAL, ADD))
      local parent = kt.getpid()
      local pid = assert(kt.fork())
      if pid == 0 then
        for _ = 1, 2000 do kt.kill(parent, sig) end
        kt._exit(0)
      end
      assert(kt.waitpid(pid))
      local total, evs = 0, {}
      while total < 2000 do
        local n = q:kevent(nil, evs, 1, LONG)
        if n == 0 then break end
        total = total + evs[1].data
      end
      assert.are.equal(2000, total)
    end)
  end)
end
