-- EVFILT_USER (semantics §4.7; checklist items 63-68): the FF vectors,
-- triggers, EV_CLEAR, DISABLE/ENABLE, DISPATCH, ONESHOT, RECEIPT, udata and
-- the cost in descriptors.  A trigger from another OS thread waking a
-- blocked waiter needs C threads and is left to the engine's C tests.
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")
local finally = h.finally -- keeps every cleanup (busted keeps the last)

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

local function u(ident, flags, fflags, data, udata)
  return { ident = ident, filter = USER, flags = flags, fflags = fflags or 0,
    data = data or 0, udata = udata }
end

describe("EVFILT_USER FF vectors", function()
  local rows = {
    { "FFCOPY|0xAA, TRIGGER|FFCOPY|0xBB", FFCOPY + 0xAA,
      { TRIGGER + FFCOPY + 0xBB }, 0xBB },
    { "FFCOPY|0x0F, TRIGGER|FFAND|0x0C", FFCOPY + 0x0F,
      { TRIGGER + FFAND + 0x0C }, 0x0C },
    { "FFCOPY|0x01, TRIGGER|FFOR|0x06", FFCOPY + 0x01,
      { TRIGGER + FFOR + 0x06 }, 0x07 },
    { "FFCOPY|0x42, TRIGGER|FFNOP|0xFF", FFCOPY + 0x42,
      { TRIGGER + FFNOP + 0xFF }, 0x42 },
    { "0, FFCOPY|0x01FFFFFF (contains TRIGGER)", 0,
      { FFCOPY + 0x01FFFFFF }, 0x00FFFFFF },
    { "0, TRIGGER|FFOR 0x1, 0x2, 0x4 in one drain", 0,
      { TRIGGER + FFOR + 0x1, TRIGGER + FFOR + 0x2, TRIGGER + FFOR + 0x4 },
      0x07 },
    { "0, FFCOPY 0x00AA00; FFOR 0xFF00FF; TRIGGER|FFAND 0x0FFFF0", 0,
      { FFCOPY + 0x00AA00, FFOR + 0xFF00FF, TRIGGER + FFAND + 0x0FFFF0 },
      0x0FAAF0 },
  }
  for _, row in ipairs(rows) do
    it(row[1] .. string.format(" -> 0x%X", row[4]), h.withq(function(q)
      h.apply(q, u(1, EV_ADD + EV_CLEAR, row[2]))
      for _, ff in ipairs(row[3]) do h.apply(q, u(1, 0, ff)) end
      local evs = h.wait(q)
      assert.are.equal(1, #evs)
      assert.are.equal(row[4], kq.band(evs[1].fflags, FFLAGSMASK))
      -- kq decision: the top 8 bits are zero
      assert.are.equal(row[4], evs[1].fflags)
      assert.are.same({}, h.wait(q))
    end))
  end

  it("TRIGGER with data = 7 -> data 7", h.withq(function(q)
    h.apply(q, u(1, EV_ADD + EV_CLEAR))
    h.apply(q, u(1, 0, TRIGGER, 7))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(7, evs[1].data)
    assert.are.equal(0, evs[1].fflags)
  end))

  it("keeps the stored value across deliveries (FreeBSD)", h.withq(function(q)
    h.apply(q, u(1, EV_ADD + EV_CLEAR, FFCOPY + 0x30))
    h.apply(q, u(1, 0, TRIGGER))
    assert.are.equal(0x30, h.wait(q)[1].fflags)
    h.apply(q, u(1, 0, TRIGGER + FFOR + 0x1))
    assert.are.equal(0x31, h.wait(q)[1].fflags)
  end))
end)

describe("EVFILT_USER triggers", function()
  it("an EV_ADD creating the knote does not trigger it, even with NOTE_TRIGGER (FreeBSD)",
    h.withq(function(q)
      h.apply(q, u(1, EV_ADD + EV_CLEAR, TRIGGER))
      assert.are.same({}, h.wait(q))
      h.apply(q, u(1, 0, TRIGGER))
      local evs = h.wait(q)
      assert.are.equal(1, #evs)
      assert.are.equal(1, evs[1].ident)
      assert.are.equal(USER, evs[1].filter)
      assert.evflags(EV_CLEAR, evs[1].flags)
    end))

  it("EV_ADD|NOTE_TRIGGER on an existing knote fires", h.withq(function(q)
    h.apply(q, u(1, EV_ADD + EV_CLEAR))
    h.apply(q, u(1, EV_ADD, TRIGGER))
    assert.are.equal(1, #h.wait(q))
  end))

  it("without EV_CLEAR fires on every call until a change with EV_CLEAR",
    h.withq(function(q)
      h.apply(q, u(1, EV_ADD))
      h.apply(q, u(1, 0, TRIGGER))
      for _ = 1, 3 do
        local evs = h.wait(q)
        assert.are.equal(1, #evs)
        assert.evflags(0, evs[1].flags)
      end
      h.apply(q, u(1, EV_CLEAR))
      assert.are.same({}, h.wait(q))
      -- still level: a new trigger repeats again
      h.apply(q, u(1, 0, TRIGGER))
      assert.are.equal(1, #h.wait(q))
      assert.are.equal(1, #h.wait(q))
    end))

  it("with EV_CLEAR merges ten triggers into one event", h.withq(function(q)
    h.apply(q, u(1, EV_ADD + EV_CLEAR))
    for _ = 1, 10 do h.apply(q, u(1, 0, TRIGGER)) end
    assert.are.equal(1, #h.wait(q))
    assert.are.same({}, h.wait(q))
    assert.are.same({}, h.wait(q, 8, 0.02))
  end))

  it("a trigger while disabled is delivered once after EV_ENABLE", h.withq(function(q)
    h.apply(q, u(1, EV_ADD + EV_CLEAR + EV_DISABLE))
    h.apply(q, u(1, 0, TRIGGER))
    assert.are.same({}, h.wait(q))
    h.apply(q, u(1, EV_ENABLE))
    assert.are.equal(1, #h.wait(q))
    assert.are.same({}, h.wait(q))
  end))

  it("DISPATCH: EV_ENABLE|NOTE_TRIGGER re-arms and fires with EV_DISPATCH",
    h.withq(function(q)
      h.apply(q, u(1, EV_ADD + EV_CLEAR + EV_DISPATCH))
      h.apply(q, u(1, 0, TRIGGER))
      local evs = h.wait(q)
      assert.are.equal(1, #evs)
      assert.evflags(EV_CLEAR + EV_DISPATCH, evs[1].flags)
      h.apply(q, u(1, 0, TRIGGER))
      assert.are.same({}, h.wait(q)) -- disarmed
      h.apply(q, u(1, EV_ENABLE, TRIGGER))
      evs = h.wait(q)
      assert.are.equal(1, #evs)
      assert.are.equal(EV_DISPATCH, kq.band(evs[1].flags, EV_DISPATCH))
      assert.are.same({}, h.wait(q))
    end))

  it("a level DISPATCH knote fires once per EV_ENABLE", h.withq(function(q)
    h.apply(q, u(1, EV_ADD + EV_DISPATCH))
    h.apply(q, u(1, 0, TRIGGER))
    assert.are.equal(1, #h.wait(q))
    assert.are.same({}, h.wait(q))
    h.apply(q, u(1, EV_ENABLE))
    assert.are.equal(1, #h.wait(q))
    assert.are.same({}, h.wait(q))
  end))

  it("ONESHOT fires once and the knote is gone", h.withq(function(q)
    h.apply(q, u(1, EV_ADD + EV_ONESHOT, 0, 0, "one"))
    h.apply(q, u(1, 0, TRIGGER, 0, "one"))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.evflags(EV_ONESHOT, evs[1].flags)
    assert.are.equal("one", evs[1].udata)
    assert.are.same({}, h.wait(q))
    assert.os_error(E.ENOENT, q:kevent({ u(1, EV_DELETE) }))
  end))
end)

describe("EVFILT_USER udata", function()
  it("a bare NOTE_TRIGGER with udata nil replaces udata with nil", h.withq(function(q)
    h.apply(q, u(1, EV_ADD + EV_CLEAR, 0, 0, "old"))
    h.apply(q, u(1, 0, TRIGGER))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.is_nil(evs[1].udata)
  end))

  if EV_KEEPUDATA then
    it("NOTE_TRIGGER with EV_KEEPUDATA keeps the old udata", h.withq(function(q)
      local old = {}
      h.apply(q, u(1, EV_ADD + EV_CLEAR, 0, 0, old))
      h.apply(q, u(1, EV_KEEPUDATA, TRIGGER, 0, "new"))
      assert.are.equal(old, h.wait(q)[1].udata)
    end))
  end

  it("EV_ADD again replaces udata", h.withq(function(q)
    h.apply(q, u(1, EV_ADD + EV_CLEAR, 0, 0, "a"))
    h.apply(q, u(1, EV_ADD, 0, 0, "b"))
    h.apply(q, h.fire(1, "b"))
    assert.are.equal("b", h.wait(q)[1].udata)
  end))
end)

describe("EVFILT_USER knotes", function()
  it("are added and deleted; a missing one gives ENOENT", h.withq(function(q)
    h.apply(q, u(1, EV_ADD))
    h.apply(q, u(1, EV_DELETE))
    assert.os_error(E.ENOENT, q:kevent({ u(1, EV_DELETE) }))
    assert.os_error(E.ENOENT, q:kevent({ u(1, 0, TRIGGER) }))
  end))

  it("take any ident, 0 and huge ones included", h.withq(function(q)
    local big = h.maxint
    h.apply(q, u(0, EV_ADD + EV_CLEAR), u(big, EV_ADD + EV_CLEAR))
    h.apply(q, u(0, 0, TRIGGER), u(big, 0, TRIGGER))
    local seen = {}
    for _, e in ipairs(h.wait(q)) do seen[e.ident] = true end
    assert.is_true(seen[0])
    assert.is_true(seen[big])
  end))

  it("EV_DISABLE drops a pending trigger from delivery", h.withq(function(q)
    h.apply(q, u(1, EV_ADD))
    h.apply(q, u(1, 0, TRIGGER))
    h.apply(q, u(1, EV_DISABLE))
    assert.are.same({}, h.wait(q))
    assert.are.same({}, h.wait(q, 8, 0.02))
  end))

  it("EV_DELETE drops a pending trigger", h.withq(function(q)
    h.apply(q, u(1, EV_ADD))
    h.apply(q, u(1, 0, TRIGGER))
    h.apply(q, u(1, EV_DELETE))
    assert.are.same({}, h.wait(q))
    -- re-added, it starts untriggered
    h.apply(q, u(1, EV_ADD))
    assert.are.same({}, h.wait(q))
  end))

  it("EV_ADD|EV_RECEIPT gives a receipt and no event (FreeBSD)", h.withq(function(q)
    local list = {}
    local n = q:kevent({ u(1, EV_ADD + EV_RECEIPT + EV_CLEAR, FFCOPY + 0x5) },
      list, 4, 0)
    assert.are.equal(1, n)
    assert.evflags(EV_ERROR, list[1].flags)
    assert.are.equal(0, list[1].data)
    assert.are.equal(0, list[1].fflags) -- 0 for a change that made the knote
    h.apply(q, u(1, 0, TRIGGER))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.evflags(EV_RECEIPT + EV_CLEAR, evs[1].flags)
    assert.are.equal(5, evs[1].fflags)
  end))

  it("a receipt for a USER modify echoes only the low 24 fflags bits",
    h.withq(function(q)
      h.apply(q, u(1, EV_ADD + EV_CLEAR))
      local list = {}
      local n = q:kevent({ u(1, EV_RECEIPT, TRIGGER + FFOR + 0x12) }, list, 4, 0)
      assert.are.equal(1, n)
      assert.evflags(EV_ERROR, list[1].flags)
      assert.are.equal(0x12, list[1].fflags)
      assert.are.equal(1, #h.wait(q))
    end))

  it("in two queues are independent", function()
    local q1 = assert(kq.kqueue())
    local q2 = assert(kq.kqueue())
    finally(function() q1:close(); q2:close() end)
    h.apply(q1, u(1, EV_ADD + EV_CLEAR))
    h.apply(q2, u(1, EV_ADD + EV_CLEAR))
    h.apply(q2, u(1, 0, TRIGGER))
    assert.are.same({}, h.wait(q1))
    assert.are.equal(1, #h.wait(q2))
    h.apply(q1, u(1, EV_DELETE))
    h.apply(q2, u(1, 0, TRIGGER))
    assert.are.equal(1, #h.wait(q2))
  end)

  it("10,000 of them cost no descriptor", function()
    h.no_fd_leak(function()
      local q = assert(kq.kqueue())
      local before = kt.fdcount()
      local changes = {}
      for i = 1, 10000 do changes[i] = u(i, EV_ADD + EV_CLEAR) end
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
