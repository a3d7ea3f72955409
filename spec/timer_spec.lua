-- EVFILT_TIMER (semantics §4.3; checklist items 33-42, 63): periods and
-- units, one-shots, NOTE_ABSTIME, re-adding, DISABLE/ENABLE, DISPATCH, the
-- invalid parameters and the cost in descriptors.  Time is only ever
-- checked as a lower bound ("not early"), with 2 ms of slack for clock
-- granularity; waits for an event use generous timeouts that end as soon
-- as it comes.
local kq = require("kq")
local kt = require("kqtest")
local socket = require("socket")
local h = require("spec.helper")
local finally = h.finally -- keeps every cleanup (busted keeps the last)

local TIMER = kq.EVFILT_TIMER
local EV_ADD, EV_DELETE, EV_ENABLE, EV_DISABLE = kq.EV_ADD, kq.EV_DELETE,
  kq.EV_ENABLE, kq.EV_DISABLE
local EV_ONESHOT, EV_CLEAR, EV_DISPATCH, EV_RECEIPT = kq.EV_ONESHOT,
  kq.EV_CLEAR, kq.EV_DISPATCH, kq.EV_RECEIPT
local EV_ERROR = kq.EV_ERROR
local SECONDS, MSECONDS, USECONDS, NSECONDS, ABSTIME = kq.NOTE_SECONDS,
  kq.NOTE_MSECONDS, kq.NOTE_USECONDS, kq.NOTE_NSECONDS, kq.NOTE_ABSTIME
local E = kt.errno
local SLACK = 0.002
local LONG = 5 -- seconds: a wait that ends with the event

local now = socket.gettime

local function t(ident, flags, data, fflags, udata)
  return { ident = ident, filter = TIMER, flags = flags, fflags = fflags or 0,
    data = data or 0, udata = udata }
end

local function gone(q, ident)
  local _, _, en = q:kevent({ t(ident, EV_DELETE) })
  return en == E.ENOENT
end

-- One event for timer `ident`, waiting up to LONG; the time it came.
local function next_event(q, ident)
  local evs = h.wait(q, 8, LONG)
  assert.are.equal(1, #evs)
  assert.are.equal(ident, evs[1].ident)
  assert.are.equal(TIMER, evs[1].filter)
  return evs[1], now()
end

describe("a relative EVFILT_TIMER", function()
  it("of 100 ms fires with flags EV_CLEAR, data >= 1, fflags 0, not early",
    h.withq(function(q)
      local t0 = now()
      h.apply(q, t(1, EV_ADD, 100, 0, "u"))
      local ev, at = next_event(q, 1)
      assert.is_true(at - t0 >= 0.1 - SLACK, at - t0)
      assert.evflags(EV_CLEAR, ev.flags)
      assert.is_true(ev.data >= 1)
      assert.are.equal(0, ev.fflags)
      assert.are.equal("u", ev.udata)
      -- periodic: it fires again, not before the next period
      ev, at = next_event(q, 1)
      assert.is_true(at - t0 >= 0.2 - SLACK, at - t0)
      assert.is_true(ev.data >= 1)
    end))

  it("of 50 ms left for 500 ms gives one event counting >= 8", h.withq(function(q)
    h.apply(q, t(1, EV_ADD, 50))
    kt.sleep(0.5)
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.is_true(evs[1].data >= 8, evs[1].data)
    assert.are.same({}, h.wait(q))
  end))

  it("ONESHOT of 100 ms: data 1, flags ONESHOT|CLEAR, then gone", h.withq(function(q)
    local t0 = now()
    h.apply(q, t(1, EV_ADD + EV_ONESHOT, 100))
    local ev, at = next_event(q, 1)
    assert.is_true(at - t0 >= 0.1 - SLACK)
    assert.are.equal(1, ev.data)
    assert.evflags(EV_ONESHOT + EV_CLEAR, ev.flags)
    assert.are.same({}, h.wait(q, 8, 0.15))
    assert.is_true(gone(q, 1))
  end))

  for _, unit in ipairs({
    { "NOTE_SECONDS 1", SECONDS, 1, 1 },
    { "NOTE_MSECONDS 100", MSECONDS, 100, 0.1 },
    { "NOTE_USECONDS 100000", USECONDS, 100000, 0.1 },
    { "NOTE_NSECONDS 10^8", NSECONDS, 100000000, 0.1 },
  }) do
    if unit[2] then
      it(unit[1] .. " fires, not early", h.withq(function(q)
        local t0 = now()
        h.apply(q, t(1, EV_ADD + EV_ONESHOT, unit[3], unit[2]))
        local ev, at = next_event(q, 1)
        assert.is_true(at - t0 >= unit[4] - SLACK, at - t0)
        assert.are.equal(1, ev.data)
        assert.are.equal(0, ev.fflags)
      end))
    end
  end

  it("ONESHOT with data 0 fires at once", h.withq(function(q)
    h.apply(q, t(1, EV_ADD + EV_ONESHOT, 0))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(1, evs[1].data)
  end))

  it("periodic with data 0 fires repeatedly", h.withq(function(q)
    h.apply(q, t(1, EV_ADD, 0))
    for _ = 1, 5 do
      local ev = next_event(q, 1)
      assert.is_true(ev.data >= 1)
    end
  end))

  it("with a huge period never fires and does not overflow", h.withq(function(q)
    local max = h.maxint
    h.apply(q, t(1, EV_ADD, max, NSECONDS), t(2, EV_ADD, max, SECONDS),
      t(3, EV_ADD, max), t(4, EV_ADD + EV_ONESHOT, max, USECONDS))
    assert.are.same({}, h.wait(q, 8, 0.05))
    -- the queue still works for a short timer beside them
    h.apply(q, t(5, EV_ADD + EV_ONESHOT, 1))
    local evs = h.wait(q, 8, LONG)
    assert.are.equal(1, #evs)
    assert.are.equal(5, evs[1].ident)
  end))
end)

describe("invalid EVFILT_TIMER changes", function()
  it("data < 0 gives EINVAL", h.withq(function(q)
    assert.os_error(E.EINVAL, q:kevent({ t(1, EV_ADD, -1) }))
    assert.is_true(gone(q, 1))
  end))

  it("unknown fflags (0x20) give EINVAL (FreeBSD)", h.withq(function(q)
    assert.os_error(E.EINVAL, q:kevent({ t(1, EV_ADD, 10, 0x20) }))
  end))

  if ABSTIME and MSECONDS then
    it("two units give EINVAL (FreeBSD)", h.withq(function(q)
      assert.os_error(E.EINVAL, q:kevent({ t(1, EV_ADD, 10, SECONDS + USECONDS) }))
      assert.os_error(E.EINVAL,
        q:kevent({ t(1, EV_ADD, 10, MSECONDS + NSECONDS + ABSTIME) }))
    end))
  end

  it("a re-add with bad parameters fails and keeps the knote", h.withq(function(q)
    h.apply(q, t(1, EV_ADD, 30))
    assert.os_error(E.EINVAL, q:kevent({ t(1, EV_ADD, -5) }))
    assert.are.equal(1, #h.wait(q, 8, LONG))
  end))
end)

describe("re-adding an EVFILT_TIMER", function()
  it("a 1 s oneshot re-added as 10 ms fires once with the new udata", h.withq(function(q)
    h.apply(q, t(1, EV_ADD + EV_ONESHOT, 1000, 0, "old"))
    local t0 = now()
    h.apply(q, t(1, EV_ADD + EV_ONESHOT, 10, 0, "new"))
    local ev, at = next_event(q, 1)
    assert.is_true(at - t0 >= 0.01 - SLACK)
    assert.are.equal("new", ev.udata)
    assert.are.equal(1, ev.data)
    assert.is_true(gone(q, 1))
  end))

  it("discards undelivered expirations", h.withq(function(q)
    h.apply(q, t(1, EV_ADD, 10))
    kt.sleep(0.1)
    h.apply(q, t(1, EV_ADD, 10000))
    assert.are.same({}, h.wait(q, 8, 0.05))
  end))

  it("keeps the stored flags: a periodic timer re-added ONESHOT stays periodic",
    h.withq(function(q)
      h.apply(q, t(1, EV_ADD, 5000))
      h.apply(q, t(1, EV_ADD + EV_ONESHOT, 20))
      local ev = next_event(q, 1)
      assert.evflags(EV_CLEAR, ev.flags)
      ev = next_event(q, 1)
      assert.is_true(ev.data >= 1)
    end))
end)

describe("EVFILT_TIMER with DISABLE, ENABLE and DISPATCH", function()
  it("keeps counting while disabled: periodic 100 ms, 500 ms off, data >= 4",
    h.withq(function(q)
      h.apply(q, t(1, EV_ADD, 100))
      h.apply(q, t(1, EV_DISABLE))
      kt.sleep(0.5)
      assert.are.same({}, h.wait(q))
      h.apply(q, t(1, EV_ENABLE))
      local evs = h.wait(q)
      assert.are.equal(1, #evs)
      assert.is_true(evs[1].data >= 4, evs[1].data)
    end))

  it("DISPATCH: three periods, EV_ENABLE gives data >= 2", h.withq(function(q)
    h.apply(q, t(1, EV_ADD + EV_DISPATCH, 50))
    local ev = next_event(q, 1)
    assert.evflags(EV_CLEAR + EV_DISPATCH, ev.flags)
    kt.sleep(0.15)
    assert.are.same({}, h.wait(q))
    h.apply(q, t(1, EV_ENABLE))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.is_true(evs[1].data >= 2, evs[1].data)
    assert.evflags(EV_CLEAR + EV_DISPATCH, evs[1].flags)
  end))

  it("EV_DISABLE drops a due expiration from delivery; DELETE too", h.withq(function(q)
    h.apply(q, t(1, EV_ADD + EV_ONESHOT, 0), t(2, EV_ADD + EV_ONESHOT, 0))
    h.apply(q, t(1, EV_DISABLE), t(2, EV_DELETE))
    assert.are.same({}, h.wait(q, 8, 0.02))
    assert.is_true(gone(q, 2))
    h.apply(q, t(1, EV_ENABLE))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(1, evs[1].ident)
  end))
end)

if ABSTIME then
  describe("an absolute EVFILT_TIMER (NOTE_ABSTIME)", function()
    it("ABSTIME|USECONDS|ONESHOT at now + 0.3 s: flags ONESHOT, data 1, not early",
      h.withq(function(q)
        local t0 = now()
        local deadline = t0 + 0.3
        h.apply(q, t(1, EV_ADD + EV_ONESHOT, math.floor(deadline * 1e6) + 1,
          ABSTIME + USECONDS))
        local ev, at = next_event(q, 1)
        assert.is_true(at >= deadline - SLACK, at - deadline)
        assert.evflags(EV_ONESHOT, ev.flags)
        assert.are.equal(1, ev.data)
        assert.are.equal(0, ev.fflags)
        assert.is_true(gone(q, 1))
      end))

    it("in the past fires at once", h.withq(function(q)
      h.apply(q, t(1, EV_ADD + EV_ONESHOT, 1000, ABSTIME + SECONDS))
      local evs = h.wait(q)
      assert.are.equal(1, #evs)
      assert.are.equal(1, evs[1].data)
    end))

    it("without ONESHOT or CLEAR returns data 1 on every call, no EV_CLEAR",
      h.withq(function(q)
        h.apply(q, t(1, EV_ADD, math.floor(now() * 1000) + 20, ABSTIME))
        local ev = next_event(q, 1)
        assert.evflags(0, ev.flags)
        assert.are.equal(1, ev.data)
        for _ = 1, 3 do
          local evs = h.wait(q)
          assert.are.equal(1, #evs)
          assert.are.equal(1, evs[1].data)
          assert.are.equal(0, kq.band(evs[1].flags, EV_CLEAR))
        end
      end))

    it("with EV_CLEAR fires once", h.withq(function(q)
      h.apply(q, t(1, EV_ADD + EV_CLEAR, 1, ABSTIME + SECONDS))
      local evs = h.wait(q)
      assert.are.equal(1, #evs)
      assert.evflags(EV_CLEAR, evs[1].flags)
      assert.are.same({}, h.wait(q, 8, 0.05))
    end))
  end)
end

describe("EVFILT_TIMER knotes", function()
  it("are deleted; a missing one gives ENOENT", h.withq(function(q)
    h.apply(q, t(1, EV_ADD, 10))
    h.apply(q, t(1, EV_DELETE))
    assert.are.same({}, h.wait(q, 8, 0.05))
    assert.os_error(E.ENOENT, q:kevent({ t(1, EV_DELETE) }))
    assert.os_error(E.ENOENT, q:kevent({ t(1, EV_ENABLE) }))
  end))

  it("EV_ADD|EV_RECEIPT gives a receipt, the timer fires later (FreeBSD)", h.withq(function(q)
    local list = {}
    local n = q:kevent({ t(1, EV_ADD + EV_RECEIPT + EV_ONESHOT, 0) }, list, 4, 0)
    assert.are.equal(1, n)
    assert.evflags(EV_ERROR, list[1].flags)
    assert.are.equal(0, list[1].data)
    local evs = h.wait(q, 8, LONG)
    assert.are.equal(1, #evs)
    assert.evflags(EV_RECEIPT + EV_ONESHOT + EV_CLEAR, evs[1].flags)
  end))

  if kq.EV_KEEPUDATA then
    it("replace udata on a modify unless EV_KEEPUDATA", h.withq(function(q)
      h.apply(q, t(1, EV_ADD + EV_DISABLE, 0, 0, "a"))
      h.apply(q, t(1, EV_ENABLE + kq.EV_KEEPUDATA, 0, 0, "b"))
      assert.are.equal("a", next_event(q, 1).udata)
      h.apply(q, t(1, EV_DISABLE, 0, 0, "c"))
      h.apply(q, t(1, EV_ENABLE + kq.EV_KEEPUDATA))
      assert.are.equal("c", next_event(q, 1).udata)
    end))
  end

  it("in two queues are independent", function()
    local q1 = assert(kq.kqueue())
    local q2 = assert(kq.kqueue())
    finally(function() q1:close(); q2:close() end)
    h.apply(q1, t(1, EV_ADD + EV_ONESHOT, 5000))
    h.apply(q2, t(1, EV_ADD + EV_ONESHOT, 10))
    assert.are.equal(1, #h.wait(q2, 8, LONG))
    assert.are.same({}, h.wait(q1))
    h.apply(q1, t(1, EV_DELETE))
  end)

  it("serve several due timers round-robin with nevents 1", h.withq(function(q)
    h.apply(q, t(1, EV_ADD, 0), t(2, EV_ADD, 0))
    kt.sleep(0.01)
    local ids = {}
    for i = 1, 4 do
      local evs = h.wait(q, 1, LONG)
      assert.are.equal(1, #evs)
      ids[i] = evs[1].ident
    end
    local seen = {}
    for _, id in ipairs(ids) do seen[id] = true end
    assert.is_true(seen[1] and seen[2])
  end))

  it("10,000 of them use at most one descriptor", function()
    h.no_fd_leak(function()
      local q = assert(kq.kqueue())
      local before = kt.fdcount()
      local changes = {}
      for i = 1, 10000 do changes[i] = t(i, EV_ADD, 3600 + i, SECONDS) end
      assert.are.equal(0, q:kevent(changes))
      assert.are.same({}, h.wait(q, 8, 0.01))
      assert.is_true(kt.fdcount() - before <= 1)
      -- fds for timers may only appear once exposed; check that too
      local fd = q:fileno()
      assert.is_false(kt.poll_in(fd, 0))
      assert.is_true(kt.fdcount() - before <= 2)
      for i = 1, 10000 do changes[i] = t(i, EV_DELETE) end
      assert.are.equal(0, q:kevent(changes))
      q:close()
    end)
  end)
end)
