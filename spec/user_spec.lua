-- EVFILT_USER (semantics §4.7; checklist items 63-68): the FF vectors,
-- triggers, EV_CLEAR, DISABLE/ENABLE, DISPATCH, ONESHOT, RECEIPT, udata and
-- the cost in descriptors.  A trigger from another OS thread waking a
-- blocked waiter needs C threads and is left to the engine's C tests.
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")

local USER = kq.EVFILT_USER
local EV_ADD, EV_DELETE, EV_ENABLE, EV_DISABLE = kq.EV_ADD, kq.EV_DELETE,
  kq.EV_ENABLE, kq.EV_DISABLE
local EV_ONESHOT, EV_CLEAR, EV_DISPATCH, EV_RECEIPT = kq.EV_ONESHOT,
  kq.EV_CLEAR, kq.EV_DISPATCH, kq.EV_RECEIPT
local EV_ERROR, EV_KEEPUDATA = kq.EV_ERROR, kq.EV_KEEPUDATA
local TRIGGER = kq.NOTE_TRIGGER
local FFNOP, FFAND, FFOR, FFCOPY = kq.NOTE_FFNOP, kq.NOTE_FFAND,
  kq.NOTE_FFOR, kq.NOTE_FFCOPY
local FFLAGSMASK = kq.NOTE_FFLAGSMASK
local E = kt.errno

local function wait(q, nevents, timeout)
  local list = {}
  local n, msg = q:kevent(nil, list, nevents or 8, timeout or 0)
  assert(n, msg)
  local out = {}
  for i = 1, n do
    local e = list[i]
    out[i] = { ident = e.ident, filter = e.filter, flags = e.flags,
      fflags = e.fflags, data = e.data, udata = e.udata }
  end
  return out
end

local function apply(q, ...)
  local n, msg = q:kevent({ ... })
  assert(n == 0, msg)
end

local function u(ident, flags, fflags, data, udata)
  return { ident = ident, filter = USER, flags = flags, fflags = fflags or 0,
    data = data or 0, udata = udata }
end

local function withq(fn)
  return function()
    local q = assert(kq.kqueue())
    finally(function() q:close() end)
    fn(q)
  end
end

describe("EVFILT_USER FF vectors", function()
  local rows = {
    { "FFCOPY|0xAA, TRIGGER|FFCOPY|0xBB", FFCOPY | 0xAA,
      { TRIGGER | FFCOPY | 0xBB }, 0xBB },
    { "FFCOPY|0x0F, TRIGGER|FFAND|0x0C", FFCOPY | 0x0F,
      { TRIGGER | FFAND | 0x0C }, 0x0C },
    { "FFCOPY|0x01, TRIGGER|FFOR|0x06", FFCOPY | 0x01,
      { TRIGGER | FFOR | 0x06 }, 0x07 },
    { "FFCOPY|0x42, TRIGGER|FFNOP|0xFF", FFCOPY | 0x42,
      { TRIGGER | FFNOP | 0xFF }, 0x42 },
    { "0, FFCOPY|0x01FFFFFF (contains TRIGGER)", 0,
      { FFCOPY | 0x01FFFFFF }, 0x00FFFFFF },
    { "0, TRIGGER|FFOR 0x1, 0x2, 0x4 in one drain", 0,
      { TRIGGER | FFOR | 0x1, TRIGGER | FFOR | 0x2, TRIGGER | FFOR | 0x4 },
      0x07 },
    { "0, FFCOPY 0x00AA00; FFOR 0xFF00FF; TRIGGER|FFAND 0x0FFFF0", 0,
      { FFCOPY | 0x00AA00, FFOR | 0xFF00FF, TRIGGER | FFAND | 0x0FFFF0 },
      0x0FAAF0 },
  }
  for _, row in ipairs(rows) do
    it(row[1] .. string.format(" -> 0x%X", row[4]), withq(function(q)
      apply(q, u(1, EV_ADD | EV_CLEAR, row[2]))
      for _, ff in ipairs(row[3]) do apply(q, u(1, 0, ff)) end
      local evs = wait(q)
      assert.are.equal(1, #evs)
      assert.are.equal(row[4], evs[1].fflags & FFLAGSMASK)
      -- kq decision: the top 8 bits are zero
      assert.are.equal(row[4], evs[1].fflags)
      assert.are.same({}, wait(q))
    end))
  end

  it("TRIGGER with data = 7 -> data 7", withq(function(q)
    apply(q, u(1, EV_ADD | EV_CLEAR))
    apply(q, u(1, 0, TRIGGER, 7))
    local evs = wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(7, evs[1].data)
    assert.are.equal(0, evs[1].fflags)
  end))

  it("keeps the stored value across deliveries", withq(function(q)
    apply(q, u(1, EV_ADD | EV_CLEAR, FFCOPY | 0x30))
    apply(q, u(1, 0, TRIGGER))
    assert.are.equal(0x30, wait(q)[1].fflags)
    apply(q, u(1, 0, TRIGGER | FFOR | 0x1))
    assert.are.equal(0x31, wait(q)[1].fflags)
  end))
end)

describe("EVFILT_USER triggers", function()
  it("an EV_ADD creating the knote does not trigger it, even with NOTE_TRIGGER",
    withq(function(q)
      apply(q, u(1, EV_ADD | EV_CLEAR, TRIGGER))
      assert.are.same({}, wait(q))
      apply(q, u(1, 0, TRIGGER))
      local evs = wait(q)
      assert.are.equal(1, #evs)
      assert.are.equal(1, evs[1].ident)
      assert.are.equal(USER, evs[1].filter)
      assert.are.equal(EV_CLEAR, evs[1].flags)
    end))

  it("EV_ADD|NOTE_TRIGGER on an existing knote fires", withq(function(q)
    apply(q, u(1, EV_ADD | EV_CLEAR))
    apply(q, u(1, EV_ADD, TRIGGER))
    assert.are.equal(1, #wait(q))
  end))

  it("without EV_CLEAR fires on every call until a change with EV_CLEAR",
    withq(function(q)
      apply(q, u(1, EV_ADD))
      apply(q, u(1, 0, TRIGGER))
      for _ = 1, 3 do
        local evs = wait(q)
        assert.are.equal(1, #evs)
        assert.are.equal(0, evs[1].flags)
      end
      apply(q, u(1, EV_CLEAR))
      assert.are.same({}, wait(q))
      -- still level: a new trigger repeats again
      apply(q, u(1, 0, TRIGGER))
      assert.are.equal(1, #wait(q))
      assert.are.equal(1, #wait(q))
    end))

  it("with EV_CLEAR merges ten triggers into one event", withq(function(q)
    apply(q, u(1, EV_ADD | EV_CLEAR))
    for _ = 1, 10 do apply(q, u(1, 0, TRIGGER)) end
    assert.are.equal(1, #wait(q))
    assert.are.same({}, wait(q))
    assert.are.same({}, wait(q, 8, 0.02))
  end))

  it("a trigger while disabled is delivered once after EV_ENABLE", withq(function(q)
    apply(q, u(1, EV_ADD | EV_CLEAR | EV_DISABLE))
    apply(q, u(1, 0, TRIGGER))
    assert.are.same({}, wait(q))
    apply(q, u(1, EV_ENABLE))
    assert.are.equal(1, #wait(q))
    assert.are.same({}, wait(q))
  end))

  it("DISPATCH: EV_ENABLE|NOTE_TRIGGER re-arms and fires with EV_DISPATCH",
    withq(function(q)
      apply(q, u(1, EV_ADD | EV_CLEAR | EV_DISPATCH))
      apply(q, u(1, 0, TRIGGER))
      local evs = wait(q)
      assert.are.equal(1, #evs)
      assert.are.equal(EV_CLEAR | EV_DISPATCH, evs[1].flags)
      apply(q, u(1, 0, TRIGGER))
      assert.are.same({}, wait(q)) -- disarmed
      apply(q, u(1, EV_ENABLE, TRIGGER))
      evs = wait(q)
      assert.are.equal(1, #evs)
      assert.are.equal(EV_DISPATCH, evs[1].flags & EV_DISPATCH)
      assert.are.same({}, wait(q))
    end))

  it("a level DISPATCH knote fires once per EV_ENABLE", withq(function(q)
    apply(q, u(1, EV_ADD | EV_DISPATCH))
    apply(q, u(1, 0, TRIGGER))
    assert.are.equal(1, #wait(q))
    assert.are.same({}, wait(q))
    apply(q, u(1, EV_ENABLE))
    assert.are.equal(1, #wait(q))
    assert.are.same({}, wait(q))
  end))

  it("ONESHOT fires once and the knote is gone", withq(function(q)
    apply(q, u(1, EV_ADD | EV_ONESHOT, 0, 0, "one"))
    apply(q, u(1, 0, TRIGGER, 0, "one"))
    local evs = wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(EV_ONESHOT, evs[1].flags)
    assert.are.equal("one", evs[1].udata)
    assert.are.same({}, wait(q))
    assert.os_error(E.ENOENT, q:kevent({ u(1, EV_DELETE) }))
  end))
end)

describe("EVFILT_USER udata", function()
  it("a bare NOTE_TRIGGER with udata nil replaces udata with nil", withq(function(q)
    apply(q, u(1, EV_ADD | EV_CLEAR, 0, 0, "old"))
    apply(q, u(1, 0, TRIGGER))
    local evs = wait(q)
    assert.are.equal(1, #evs)
    assert.is_nil(evs[1].udata)
  end))

  it("NOTE_TRIGGER with EV_KEEPUDATA keeps the old udata", withq(function(q)
    local old = {}
    apply(q, u(1, EV_ADD | EV_CLEAR, 0, 0, old))
    apply(q, u(1, EV_KEEPUDATA, TRIGGER, 0, "new"))
    assert.are.equal(old, wait(q)[1].udata)
  end))

  it("EV_ADD again replaces udata", withq(function(q)
    apply(q, u(1, EV_ADD | EV_CLEAR, 0, 0, "a"))
    apply(q, u(1, EV_ADD, 0, 0, "b"))
    apply(q, u(1, EV_KEEPUDATA, TRIGGER))
    assert.are.equal("b", wait(q)[1].udata)
  end))
end)

describe("EVFILT_USER knotes", function()
  it("are added and deleted; a missing one gives ENOENT", withq(function(q)
    apply(q, u(1, EV_ADD))
    apply(q, u(1, EV_DELETE))
    assert.os_error(E.ENOENT, q:kevent({ u(1, EV_DELETE) }))
    assert.os_error(E.ENOENT, q:kevent({ u(1, 0, TRIGGER) }))
  end))

  it("take any ident, 0 and huge ones included", withq(function(q)
    local big = math.maxinteger
    apply(q, u(0, EV_ADD | EV_CLEAR), u(big, EV_ADD | EV_CLEAR))
    apply(q, u(0, 0, TRIGGER), u(big, 0, TRIGGER))
    local seen = {}
    for _, e in ipairs(wait(q)) do seen[e.ident] = true end
    assert.is_true(seen[0])
    assert.is_true(seen[big])
  end))

  it("EV_DISABLE drops a pending trigger from delivery", withq(function(q)
    apply(q, u(1, EV_ADD))
    apply(q, u(1, 0, TRIGGER))
    apply(q, u(1, EV_DISABLE))
    assert.are.same({}, wait(q))
    assert.are.same({}, wait(q, 8, 0.02))
  end))

  it("EV_DELETE drops a pending trigger", withq(function(q)
    apply(q, u(1, EV_ADD))
    apply(q, u(1, 0, TRIGGER))
    apply(q, u(1, EV_DELETE))
    assert.are.same({}, wait(q))
    -- re-added, it starts untriggered
    apply(q, u(1, EV_ADD))
    assert.are.same({}, wait(q))
  end))

  it("EV_ADD|EV_RECEIPT gives a receipt and no event", withq(function(q)
    local list = {}
    local n = q:kevent({ u(1, EV_ADD | EV_RECEIPT | EV_CLEAR, FFCOPY | 0x5) },
      list, 4, 0)
    assert.are.equal(1, n)
    assert.are.equal(EV_ERROR, list[1].flags)
    assert.are.equal(0, list[1].data)
    assert.are.equal(0, list[1].fflags) -- 0 for a change that made the knote
    apply(q, u(1, 0, TRIGGER))
    local evs = wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(EV_RECEIPT | EV_CLEAR, evs[1].flags)
    assert.are.equal(5, evs[1].fflags)
  end))

  it("a receipt for a USER modify echoes only the low 24 fflags bits",
    withq(function(q)
      apply(q, u(1, EV_ADD | EV_CLEAR))
      local list = {}
      local n = q:kevent({ u(1, EV_RECEIPT, TRIGGER | FFOR | 0x12) }, list, 4, 0)
      assert.are.equal(1, n)
      assert.are.equal(EV_ERROR, list[1].flags)
      assert.are.equal(0x12, list[1].fflags)
      assert.are.equal(1, #wait(q))
    end))

  it("in two queues are independent", function()
    local q1 = assert(kq.kqueue())
    local q2 = assert(kq.kqueue())
    finally(function() q1:close(); q2:close() end)
    apply(q1, u(1, EV_ADD | EV_CLEAR))
    apply(q2, u(1, EV_ADD | EV_CLEAR))
    apply(q2, u(1, 0, TRIGGER))
    assert.are.same({}, wait(q1))
    assert.are.equal(1, #wait(q2))
    apply(q1, u(1, EV_DELETE))
    apply(q2, u(1, 0, TRIGGER))
    assert.are.equal(1, #wait(q2))
  end)

  it("10,000 of them cost no descriptor", function()
    h.no_fd_leak(function()
      local q = assert(kq.kqueue())
      local before = kt.fdcount()
      local changes = {}
      for i = 1, 10000 do changes[i] = u(i, EV_ADD | EV_CLEAR) end
      assert.are.equal(0, q:kevent(changes))
      for i = 1, 10000 do changes[i] = u(i, 0, TRIGGER) end
      assert.are.equal(0, q:kevent(changes))
      local list, total = {}, 0
      repeat
        local n = assert(q:kevent(nil, list, 10000, 0))
        total = total + n
      until n == 0
      assert.are.equal(10000, total)
      -- no descriptor per knote; at most the wake eventfd
      assert.is_true(kt.fdcount() - before <= 1)
      q:close()
    end)
  end)
end)
