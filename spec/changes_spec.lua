-- Changes: applied in order, error entries, receipts, and what happens
-- when the eventlist has no room (semantics 2.1, 2.2; checklist 6-12).
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")
local finally = h.finally -- keeps every cleanup (busted keeps the last)

local READ, USER = kq.EVFILT_READ, kq.EVFILT_USER
local ADD, DELETE, RECEIPT = kq.EV_ADD, kq.EV_DELETE, kq.EV_RECEIPT
local E = kt.errno

-- A socketpair with "hello" waiting on b.
local function readable()
  local a, b = assert(kt.socketpair())
  finally(function() kt.close(a); kt.close(b) end)
  assert.are.equal(5, kt.write(a, "hello"))
  return b
end

local function is_error_entry(ev, ident, filter, errno, udata)
  assert.is_true(kq.band(ev.flags, kq.EV_ERROR) ~= 0, "EV_ERROR in flags")
  assert.are.equal(ident, ev.ident)
  assert.are.equal(filter, ev.filter)
  assert.are.equal(errno, ev.data)
  assert.are.equal(udata, ev.udata)
end

describe("a failing change", function()
  it("with no room makes the call return nil, msg, errno", function()
    local q = h.newq(finally)
    assert.os_error(E.ENOENT,
      q:kevent({ { ident = 1, filter = USER, flags = DELETE } }, nil, 0))
    assert.os_error(E.EINVAL,
      q:kevent({ { ident = 1, filter = -100, flags = ADD } }))
    if kq.EV_KEEPUDATA then
      assert.os_error(E.EINVAL,
        q:kevent({ { ident = 1, filter = USER, flags = ADD + kq.EV_KEEPUDATA } }))
    end
    assert.os_error(E.EINVAL, q:kevent({ { ident = 1, filter = USER,
      flags = ADD + kq.EV_ENABLE + kq.EV_DISABLE } }))
  end)

  it("with room writes an error entry echoing ident, filter and udata", function()
    local q = h.newq(finally)
    local u = {}
    local evs = {}
    assert.are.equal(1, q:kevent({ { ident = 3, filter = USER, flags = DELETE,
      udata = u } }, evs, 4, 5))
    is_error_entry(evs[1], 3, USER, E.ENOENT, u)
    assert.is_nil(evs[2])
  end)

  it("with room returns its entries at once, collecting no pending event", function()
    local q = h.newq(finally)
    local b = readable()
    assert.are.equal(0, q:kevent({ { ident = b, filter = READ, flags = ADD } }))
    local evs = {}
    assert.are.equal(1, q:kevent({ { ident = 3, filter = USER, flags = DELETE } },
      evs, 4, 5))
    is_error_entry(evs[1], 3, USER, E.ENOENT, nil)
    assert.is_nil(evs[2])
    -- The READ event is still there for the next call.
    assert.are.equal(1, q:kevent(nil, evs, 4, 5))
    assert.are.equal(READ, evs[1].filter)
  end)

  it("with no room stops the changes after it", function()
    local q = h.newq(finally)
    assert.os_error(E.ENOENT, q:kevent({
      { ident = 1, filter = USER, flags = DELETE },
      { ident = 2, filter = USER, flags = ADD },
    }, nil, 0))
    assert.is_false(h.user_exists(q, 2))
  end)

  it("with room lets the changes after it apply", function()
    local q = h.newq(finally)
    local evs = {}
    assert.are.equal(1, q:kevent({
      { ident = 1, filter = USER, flags = DELETE },
      { ident = 2, filter = USER, flags = ADD },
    }, evs, 4, 0))
    assert.is_true(h.user_exists(q, 2))
  end)

  it("beyond the room returns nil, msg, errno and stops the rest", function()
    local q = h.newq(finally)
    local evs = {}
    assert.os_error(E.ENOENT, q:kevent({
      { ident = 1, filter = USER, flags = DELETE },
      { ident = 2, filter = USER, flags = DELETE },
      { ident = 3, filter = USER, flags = ADD },
    }, evs, 1, 0))
    assert.is_false(h.user_exists(q, 3))
  end)

  it("entries come in change order, matched exactly", function()
    local q = h.newq(finally)
    local evs = {}
    assert.are.equal(3, q:kevent({
      { ident = 10, filter = USER, flags = ADD },
      { ident = 11, filter = USER, flags = DELETE, udata = "a" },
      { ident = 10, filter = USER, flags = ADD },
      { ident = 12, filter = USER, flags = DELETE, udata = "b" },
      { ident = 1, filter = -100, flags = ADD, udata = "c" },
      { ident = 13, filter = USER, flags = ADD },
    }, evs, 10, 0))
    is_error_entry(evs[1], 11, USER, E.ENOENT, "a")
    is_error_entry(evs[2], 12, USER, E.ENOENT, "b")
    is_error_entry(evs[3], 1, -100, E.EINVAL, "c")
    assert.is_true(h.user_exists(q, 10))
    assert.is_true(h.user_exists(q, 13))
  end)

  it("on a closed descriptor or an ident above INT_MAX is EBADF", function()
    local q = h.newq(finally)
    local r, w = assert(kt.pipe())
    kt.close(r)
    kt.close(w)
    assert.os_error(E.EBADF, q:kevent({ { ident = r, filter = READ, flags = ADD } }))
    assert.os_error(E.EBADF, q:kevent({ { ident = 2 ^ 31, filter = READ,
      flags = ADD } }))
  end)

  it("modifying a missing knote is ENOENT", function()
    local q = h.newq(finally)
    assert.os_error(E.ENOENT, q:kevent({ { ident = 5, filter = USER } }))
    assert.os_error(E.ENOENT, q:kevent({ { ident = 5, filter = USER,
      flags = kq.EV_ENABLE } }))
  end)
end)

describe("changes", function()
  it("apply in order: an EV_ADD then a trigger in one list fires", function()
    local q = h.newq(finally)
    assert.are.equal(0, q:kevent({
      { ident = 1, filter = USER, flags = ADD },
      { ident = 1, filter = USER, fflags = kq.NOTE_TRIGGER },
    }))
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 5))
    assert.are.equal(1, evs[1].ident)
  end)

  it("EV_ADD|EV_DELETE adds a missing knote and deletes an existing one (FreeBSD)", function()
    local q = h.newq(finally)
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER,
      flags = ADD + DELETE, udata = "x" } }))
    assert.are.equal(0, q:kevent({ h.fire(1, "x") }))
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 5))
    assert.are.equal("x", evs[1].udata)
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD + DELETE } }))
    assert.is_false(h.user_exists(q, 1))
  end)

  it("more than fit in one internal chunk are all applied", function()
    local q = h.newq(finally)
    local list = {}
    for i = 1, 5000 do
      list[i] = { ident = i, filter = USER, flags = ADD, udata = i }
    end
    assert.are.equal(0, q:kevent(list))
    assert.is_true(h.user_exists(q, 1))
    assert.is_true(h.user_exists(q, 5000))
  end)
end)

describe("EV_RECEIPT", function()
  it("gives an entry with data 0 for a success, and no pending event", function()
    local q = h.newq(finally)
    local b = readable()
    local evs = {}
    assert.are.equal(1, q:kevent({ { ident = b, filter = READ,
      flags = ADD + RECEIPT, udata = "r" } }, evs, 4, 5))
    is_error_entry(evs[1], b, READ, 0, "r")
    assert.is_nil(evs[2])
    -- The knote stores EV_RECEIPT, so its events show it (FreeBSD; the
    -- others may not: h.evflags leaves it out there).
    assert.are.equal(1, q:kevent(nil, evs, 4, 5))
    assert.are.equal(READ, evs[1].filter)
    assert.are.equal(5, evs[1].data)
    assert.are.equal("r", evs[1].udata)
    assert.evflags(RECEIPT, evs[1].flags) -- no EV_ERROR: an event, not an entry
  end)

  it("without room stops there and returns the count written (kq decision)", function()
    local q = h.newq(finally)
    local evs = {}
    assert.are.equal(1, q:kevent({
      { ident = 1, filter = USER, flags = ADD + RECEIPT },
      { ident = 2, filter = USER, flags = ADD + RECEIPT },
      { ident = 3, filter = USER, flags = ADD + RECEIPT },
    }, evs, 1, 0))
    is_error_entry(evs[1], 1, USER, 0, nil)
    assert.is_true(h.user_exists(q, 1))
    assert.is_true(h.user_exists(q, 2))
    assert.is_false(h.user_exists(q, 3))
  end)

  it("with nevents 0 returns 0 and applies nothing after the first", function()
    local q = h.newq(finally)
    assert.are.equal(0, q:kevent({
      { ident = 1, filter = USER, flags = ADD + RECEIPT },
      { ident = 2, filter = USER, flags = ADD + RECEIPT },
    }, nil, 0))
    assert.is_true(h.user_exists(q, 1))
    assert.is_false(h.user_exists(q, 2))
  end)

  it("registers in bulk: 5000 receipts, one per change, in order", function()
    local q = h.newq(finally)
    local list = {}
    for i = 1, 5000 do
      list[i] = { ident = i, filter = USER, flags = ADD + RECEIPT, udata = i }
    end
    list[2500].flags = DELETE + RECEIPT
    list[2500].ident = 9999
    local evs = {}
    assert.are.equal(5000, q:kevent(list, evs, 5000, 0))
    for i = 1, 5000 do
      local ev = evs[i]
      assert.are.equal(list[i].ident, ev.ident)
      assert.are.equal(i, ev.udata)
      assert.are.equal(i == 2500 and E.ENOENT or 0, ev.data)
    end
  end)
end)
