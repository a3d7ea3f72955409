-- EVFILT_SIGNAL: ident = signal number, data = deliveries since the last
-- retrieval, EV_CLEAR forced (semantics §4.4, §6.3; checklist 43-47, 73).
-- Real signals, sent with kill() to this process or from a child.
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")
local finally = h.finally -- keeps every cleanup (busted keeps the last)

local SIGNAL = kq.EVFILT_SIGNAL
local ADD, DELETE = kq.EV_ADD, kq.EV_DELETE
local ENABLE, DISABLE = kq.EV_ENABLE, kq.EV_DISABLE
local CLEAR, ONESHOT = kq.EV_CLEAR, kq.EV_ONESHOT
local S = kt.signals
local USR1, USR2, RTMIN = S.SIGUSR1, S.SIGUSR2, S.SIGRTMIN
local me = kt.getpid()

-- Every test leaves the signals it touched as the run found them:
-- default disposition, unblocked.  The queues close first, so that the
-- engine has put back what the test had set before it is reset here.
-- (busted keeps one finally per test: this is it.)
local function setup(...)
  local sigs = { ... }
  local queues = {}
  finally(function()
    for _, q in ipairs(queues) do q:close() end
    for _, sig in ipairs(sigs) do
      kt.signal(sig, "ignore") -- drops anything still pending
      kt.sigunblock(sig)
      kt.signal(sig, "default")
    end
  end)
  return function()
    local q = assert(kq.kqueue())
    queues[#queues + 1] = q
    return q
  end
end

local function change(q, ident, flags, udata)
  return q:kevent({ { ident = ident, filter = SIGNAL, flags = flags, udata = udata } })
end

-- Collect what is queued now (and whatever comes within `timeout`).
local function collect(q, n, timeout)
  local evs = {}
  local got = assert(q:kevent(nil, evs, n or 8, timeout or 0))
  return got, evs
end

-- The single event expected now.
local function one(q)
  local n, evs = collect(q, 8, 1)
  assert.are.equal(1, n)
  return evs[1]
end

local function kill(sig, times, gap)
  for i = 1, times or 1 do
    if i > 1 then kt.sleep(gap or 0.05) end
    assert(kt.kill(me, sig))
  end
end

-- Get the signal counted and queued without delivering it: a triggered
-- USER knote ahead of it takes the only slot of a one-event collection.
local function queue_undelivered(q, sig)
  assert.are.equal(0, q:kevent({
    { ident = 99, filter = kq.EVFILT_USER, flags = ADD + CLEAR },
    { ident = 99, filter = kq.EVFILT_USER, fflags = kq.NOTE_TRIGGER },
  }))
  kill(sig)
  local evs = {}
  assert.are.equal(1, q:kevent(nil, evs, 1, 0))
  assert.are.equal(kq.EVFILT_USER, evs[1].filter)
end

describe("EVFILT_SIGNAL", function()
  it("reports an ignored SIGUSR1 sent to the process: flags EV_CLEAR, data 1", function()
    local newq = setup(USR1)
    assert(kt.signal(USR1, "ignore"))
    local q = newq()
    assert.are.equal(0, change(q, USR1, ADD))
    assert.are.equal(0, (collect(q)))
    kill(USR1)
    local ev = one(q)
    assert.are.equal(USR1, ev.ident)
    assert.are.equal(SIGNAL, ev.filter)
    assert.evflags(CLEAR, ev.flags)
    assert.are.equal(0, ev.fflags)
    assert.are.equal(1, ev.data)
    -- EV_CLEAR: nothing more until the next signal.
    assert.are.equal(0, (collect(q)))
  end)

  if RTMIN then
    it("counts every delivery: SIGUSR1 twice and SIGRTMIN three times before collecting", function()
      local newq = setup(USR1, RTMIN)
      assert(kt.signal(USR1, "ignore"))
      assert(kt.signal(RTMIN, "ignore"))
      local q = newq()
      assert.are.equal(0, q:kevent({
        { ident = USR1, filter = SIGNAL, flags = ADD },
        { ident = RTMIN, filter = SIGNAL, flags = ADD },
      }))
      kill(USR1, 2)
      kill(RTMIN, 3)
      local n, evs = collect(q)
      assert.are.equal(2, n)
      local data = {}
      for i = 1, n do data[evs[i].ident] = evs[i].data end
      assert.are.equal(2, data[USR1])
      assert.are.equal(3, data[RTMIN])
    end)
  end

  it("returns a signal sent by another process while the queue waits", function()
    local newq = setup(USR1)
    assert(kt.signal(USR1, "ignore"))
    local q = newq()
    assert.are.equal(0, change(q, USR1, ADD))
    local pid = assert(kt.fork())
    if pid == 0 then
      kt.sleep(0.1)
      kt.kill(me, USR1)
      kt._exit(0)
    end
    local evs = {}
    local n = q:kevent(nil, evs, 1, 5)
    kt.waitpid(pid)
    assert.are.equal(1, n)
    assert.are.equal(USR1, evs[1].ident)
    assert.are.equal(1, evs[1].data)
  end)

  it("does not count a signal that was pending before EV_ADD", function()
    local newq = setup(USR1)
    assert(kt.signal(USR1, "ignore"))
    assert(kt.sigblock(USR1))
    kill(USR1)
    local _, _, pending = kt.sigstate(USR1)
    assert.is_true(pending)
    local q = newq()
    assert.are.equal(0, change(q, USR1, ADD))
    assert.are.equal(0, (collect(q, 8, 0.05)))
    kill(USR1)
    assert.are.equal(1, one(q).data)
  end)

  it("keeps counting while disabled; EV_ENABLE delivers the count once", function()
    local newq = setup(USR1)
    assert(kt.signal(USR1, "ignore"))
    local q = newq()
    assert.are.equal(0, change(q, USR1, ADD + DISABLE))
    kill(USR1, 2)
    assert.are.equal(0, (collect(q, 8, 0.05)))
    assert.are.equal(0, change(q, USR1, ENABLE))
    local n, evs = collect(q)
    assert.are.equal(1, n)
    assert.are.equal(2, evs[1].data)
    assert.are.equal(0, (collect(q)))
  end)

  it("EV_DISABLE drops an event already counted; EV_ENABLE gives it back", function()
    local newq = setup(USR1)
    assert(kt.signal(USR1, "ignore"))
    local q = newq()
    assert.are.equal(0, change(q, USR1, ADD))
    queue_undelivered(q, USR1)
    assert.are.equal(0, change(q, USR1, DISABLE))
    assert.are.equal(0, (collect(q, 8, 0.05)))
    assert.are.equal(0, change(q, USR1, ENABLE))
    assert.are.equal(1, one(q).data)
  end)

  it("EV_DELETE drops a pending event, and a new knote starts from zero", function()
    local newq = setup(USR1)
    assert(kt.signal(USR1, "ignore"))
    local q = newq()
    assert.are.equal(0, change(q, USR1, ADD))
    queue_undelivered(q, USR1)
    assert.are.equal(0, change(q, USR1, DELETE))
    assert.are.equal(0, (collect(q, 8, 0.05)))
    assert.are.equal(0, change(q, USR1, ADD))
    assert.are.equal(0, (collect(q, 8, 0.05)))
    kill(USR1)
    assert.are.equal(1, one(q).data)
  end)

  it("EV_ONESHOT: one event for two signals, then the knote is gone", function()
    local newq = setup(USR1)
    assert(kt.signal(USR1, "ignore"))
    local q = newq()
    assert.are.equal(0, change(q, USR1, ADD + ONESHOT))
    kill(USR1, 2)
    local ev = one(q)
    assert.evflags(ONESHOT + CLEAR, ev.flags)
    assert.are.equal(2, ev.data)
    kill(USR1)
    assert.are.equal(0, (collect(q, 8, 0.05)))
    assert.os_error(kt.errno.ENOENT, change(q, USR1, DELETE))
    -- The last knote went: the disposition is the program's again.
    assert.are.equal("ignore", (kt.sigstate(USR1)))
  end)

  it("EV_DISPATCH: disabled after delivery, still counting; EV_ENABLE re-arms", function()
    local newq = setup(USR1)
    assert(kt.signal(USR1, "ignore"))
    local q = newq()
    assert.are.equal(0, change(q, USR1, ADD + kq.EV_DISPATCH))
    kill(USR1)
    local ev = one(q)
    assert.evflags(kq.EV_DISPATCH + CLEAR, ev.flags)
    assert.are.equal(1, ev.data)
    kill(USR1, 2)
    assert.are.equal(0, (collect(q, 8, 0.05)))
    assert.are.equal(0, change(q, USR1, ENABLE))
    assert.are.equal(2, one(q).data)
  end)

  it("EV_RECEIPT gives an entry at once and shows in the events (FreeBSD)", function()
    local newq = setup(USR1)
    assert(kt.signal(USR1, "ignore"))
    local q = newq()
    local evs = {}
    assert.are.equal(1, q:kevent({ { ident = USR1, filter = SIGNAL,
      flags = ADD + kq.EV_RECEIPT } }, evs, 4, 5))
    assert.evflags(kq.EV_ERROR, evs[1].flags)
    assert.are.equal(0, evs[1].data)
    assert.are.equal(USR1, evs[1].ident)
    kill(USR1)
    local ev = one(q)
    assert.evflags(kq.EV_RECEIPT + CLEAR, ev.flags)
    assert.are.equal(1, ev.data)
  end)

  it("delivers udata, replaced by a modify", function()
    local newq = setup(USR1)
    assert(kt.signal(USR1, "ignore"))
    local q = newq()
    local a, b = {}, {}
    assert.are.equal(0, change(q, USR1, ADD, a))
    kill(USR1)
    assert.are.equal(a, one(q).udata)
    assert.are.equal(0, change(q, USR1, ADD, b))
    kill(USR1)
    local ev = one(q)
    assert.are.equal(b, ev.udata)
    -- The re-add did not reset the count or the stored flags.
    assert.are.equal(1, ev.data)
    assert.evflags(CLEAR, ev.flags)
  end)

  it("counts in every queue watching the signal, independently", function()
    local newq = setup(USR1)
    assert(kt.signal(USR1, "ignore"))
    local q1, q2 = newq(), newq()
    assert.are.equal(0, change(q1, USR1, ADD))
    assert.are.equal(0, change(q2, USR1, ADD))
    kill(USR1)
    assert.are.equal(1, one(q1).data)
    kill(USR1)
    assert.are.equal(1, one(q1).data)
    assert.are.equal(2, one(q2).data)
    -- Closing one leaves the other counting.
    q1:close()
    kill(USR1)
    assert.are.equal(1, one(q2).data)
  end)

  it("delivers USR1 and USR2 both pending through nevents = 1", function()
    local newq = setup(USR1, USR2)
    assert(kt.signal(USR1, "ignore"))
    assert(kt.signal(USR2, "ignore"))
    local q = newq()
    assert.are.equal(0, q:kevent({
      { ident = USR1, filter = SIGNAL, flags = ADD },
      { ident = USR2, filter = SIGNAL, flags = ADD },
    }))
    kill(USR1)
    kill(USR2)
    local seen = {}
    for _ = 1, 2 do
      local n, evs = collect(q, 1, 1)
      assert.are.equal(1, n)
      seen[evs[1].ident] = evs[1].data
    end
    assert.are.same({ [USR1] = 1, [USR2] = 1 }, seen)
    assert.are.equal(0, (collect(q)))
  end)

  it("gives ENOENT for a change on a missing knote", function()
    local newq = setup()
    local q = newq()
    assert.os_error(kt.errno.ENOENT, change(q, USR1, DELETE))
    assert.os_error(kt.errno.ENOENT, change(q, USR1, ENABLE))
    local evs = {}
    assert.are.equal(1, q:kevent({ { ident = USR2, filter = SIGNAL, flags = DELETE } },
      evs, 4, 5))
    assert.evflags(kq.EV_ERROR, evs[1].flags)
    assert.are.equal(kt.errno.ENOENT, evs[1].data)
  end)

  it("accepts SIGKILL, SIGSTOP and numbers that are no signal; they never fire", function()
    local newq = setup(USR1)
    assert(kt.signal(USR1, "ignore"))
    local q = newq()
    for _, id in ipairs({ S.SIGKILL, S.SIGSTOP, 0, 65, 1000 }) do
      assert.are.equal(0, change(q, id, ADD))
    end
    assert.are.equal(0, change(q, USR1, ADD))
    kill(USR1)
    local n, evs = collect(q, 8, 0.05)
    assert.are.equal(1, n)
    assert.are.equal(USR1, evs[1].ident)
    for _, id in ipairs({ S.SIGKILL, S.SIGSTOP, 0, 65, 1000 }) do
      assert.are.equal(0, change(q, id, DELETE))
    end
  end)

  if kq.backend == "linux" then
    it("keeps the process alive when the default action would kill it (engine)", function()
      -- In a child, so that a failure kills the child, not the test run.
      local pid = assert(kt.fork())
      if pid == 0 then
        local ok, code = pcall(function()
          assert(kt.signal(USR1, "default"))
          local q = assert(kq.kqueue())
          assert(change(q, USR1, ADD) == 0)
          assert(kt.kill(kt.getpid(), USR1))
          local evs = {}
          local n = q:kevent(nil, evs, 1, 5)
          if n ~= 1 or evs[1].ident ~= USR1 or evs[1].data ~= 1 then return 3 end
          q:close()
          return kt.sigstate(USR1) == "default" and 0 or 4
        end)
        kt._exit(ok and code or 2)
      end
      local _, status = kt.waitpid(pid)
      -- A normal exit with status 0: not killed by SIGUSR1 (status 10).
      assert.are.equal(0, status)
    end)
  end

  if kq.backend == "linux" then
    it("chains to the program's handler, which is back alone after EV_DELETE (engine)", function()
      local newq = setup(USR1)
      assert(kt.signal(USR1, "count"))
      local q = newq()
      assert.are.equal(0, change(q, USR1, ADD))
      assert.are.equal("other", (kt.sigstate(USR1)))
      kill(USR1)
      assert.are.equal(1, kt.counter(USR1))
      assert.are.equal(1, one(q).data)
      assert.are.equal(0, change(q, USR1, DELETE))
      assert.are.equal("count", (kt.sigstate(USR1)))
      kill(USR1)
      assert.are.equal(2, kt.counter(USR1))
      assert.are.equal(0, (collect(q, 8, 0.05)))
    end)
  end

  if kq.backend == "linux" then
    it("puts the program's disposition back when the queue closes (engine)", function()
      local newq = setup(USR1, USR2)
      assert(kt.signal(USR1, "count"))
      assert(kt.signal(USR2, "ignore"))
      local q = newq()
      assert.are.equal(0, q:kevent({
        { ident = USR1, filter = SIGNAL, flags = ADD },
        { ident = USR2, filter = SIGNAL, flags = ADD },
      }))
      assert.are.equal("other", (kt.sigstate(USR2)))
      q:close()
      assert.are.equal("count", (kt.sigstate(USR1)))
      assert.are.equal("ignore", (kt.sigstate(USR2)))
      kill(USR1)
      assert.are.equal(1, kt.counter(USR1))
    end)
  end

  if kq.backend == "linux" then
    it("unblocks a blocked signal while watched and blocks it again after the last knote (engine)", function()
      local newq = setup(USR1)
      assert(kt.signal(USR1, "ignore"))
      assert(kt.sigblock(USR1))
      local q1, q2 = newq(), newq()
      assert.are.equal(0, change(q1, USR1, ADD))
      local _, blocked = kt.sigstate(USR1)
      assert.is_false(blocked)
      assert.are.equal(0, change(q2, USR1, ADD))
      assert.are.equal(0, change(q1, USR1, DELETE))
      _, blocked = kt.sigstate(USR1)
      assert.is_false(blocked) -- q2 still watches
      kill(USR1)
      assert.are.equal(1, one(q2).data)
      q2:close()
      local disp
      disp, blocked = kt.sigstate(USR1)
      assert.is_true(blocked)
      assert.are.equal("ignore", disp)
    end)
  end

  if kq.backend == "linux" then
    it("uses one descriptor for the whole process, however many knotes (engine)", function()
      local sigs = { USR1, USR2 }
      for i = 0, 7 do sigs[#sigs + 1] = RTMIN + i end
      local newq = setup(h.unpack(sigs))
      for _, sig in ipairs(sigs) do assert(kt.signal(sig, "ignore")) end
      -- Earlier tests' garbage closes descriptors when collected: collect
      -- it now, not while this test counts.
      collectgarbage()
      collectgarbage()
      local before = h.fdcount()
      local queues = {}
      for i = 1, 4 do queues[i] = newq() end
      local with_queues = h.fdcount()
      assert.are.equal(0, change(queues[1], USR1, ADD))
      -- What the four queues cost, plus the one process-wide eventfd.
      local with_one = h.fdcount()
      assert.are.equal(with_queues + 1, with_one)
      for _, q in ipairs(queues) do
        for _, sig in ipairs(sigs) do assert.are.equal(0, change(q, sig, ADD)) end
      end
      assert.are.equal(with_one, h.fdcount())
      kill(RTMIN + 3)
      for _, q in ipairs(queues) do
        local ev = one(q)
        assert.are.equal(RTMIN + 3, ev.ident)
      end
      for _, q in ipairs(queues) do q:close() end
      -- Nothing watched any more: the eventfd is gone too.
      assert.are.equal(before, h.fdcount())
    end)
  end

  if kq.backend == "linux" then
    it("gives a fork child the dispositions and mask it had before registration (engine)", function()
      local newq = setup(USR1, USR2)
      assert(kt.signal(USR1, "count"))
      assert(kt.signal(USR2, "ignore"))
      assert(kt.sigblock(USR2))
      local q = newq()
      assert.are.equal(0, q:kevent({
        { ident = USR1, filter = SIGNAL, flags = ADD },
        { ident = USR2, filter = SIGNAL, flags = ADD },
      }))
      local pid = assert(kt.fork())
      if pid == 0 then
        local d1, b1 = kt.sigstate(USR1)
        local d2, b2 = kt.sigstate(USR2)
        local code = 0
        if d1 ~= "count" or b1 then code = code + 1 end
        if d2 ~= "ignore" or not b2 then code = code + 2 end
        kt._exit(code)
      end
      local _, status = kt.waitpid(pid)
      assert.are.equal(0, status)
      -- The parent still watches, unchanged.
      assert.are.equal("other", (kt.sigstate(USR1)))
      local _, blocked = kt.sigstate(USR2)
      assert.is_false(blocked)
      kill(USR2)
      assert.are.equal(USR2, one(q).ident)
    end)
  end
end)
