-- udata: any Lua value, returned as the very same value, kept alive
-- exactly as long as its knote.
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")
local finally = h.finally -- keeps every cleanup (busted keeps the last)

local USER = kq.EVFILT_USER
local ADD, DELETE = kq.EV_ADD, kq.EV_DELETE
local TRIGGER = kq.NOTE_TRIGGER

-- The udata of the one event a triggered USER knote `id` gives; `udata`,
-- what the knote holds, is passed again where there is no EV_KEEPUDATA.
local function fire(q, id, udata)
  assert.are.equal(0, q:kevent({ h.fire(id, udata) }))
  local evs = {}
  assert.are.equal(1, q:kevent(nil, evs, 1, 5))
  return evs[1].udata, evs[1]
end

local tracker = h.tracker

describe("udata", function()
  it("comes back as the very same value, whatever its type", function()
    local q = h.newq(finally)
    local values = { {}, "text", 1.5, false, true, print, coroutine.create(function() end),
      io.stdout, h.maxint, h.minint, 2 ^ 53 + 1 }
    for i, v in ipairs(values) do
      assert.are.equal(0, q:kevent({ { ident = i, filter = USER,
        flags = ADD + kq.EV_CLEAR, udata = v } }))
      local got = fire(q, i, v)
      assert.is_true(rawequal(v, got), "udata #" .. i)
      assert.are.equal(h.numtype(v), h.numtype(got))
    end
  end)

  it("is nil when the change had none", function()
    local q = h.newq(finally)
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD } }))
    assert.is_nil((fire(q, 1)))
  end)

  it("is replaced by a modify, even by nil, and kept with EV_KEEPUDATA", function()
    local q = h.newq(finally)
    local a, b = {}, {}
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER,
      flags = ADD + kq.EV_CLEAR, udata = a } }))
    assert.are.equal(a, (fire(q, 1, a)))
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD, udata = b } }))
    assert.are.equal(b, (fire(q, 1, b)))
    -- A bare trigger replaces udata too (FreeBSD, libkqueue #7).
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, fflags = TRIGGER } }))
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 5))
    assert.is_nil(evs[1].udata)
    if kq.EV_KEEPUDATA then
      assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, udata = a } }))
      assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = kq.EV_KEEPUDATA,
        fflags = TRIGGER, udata = b } }))
      assert.are.equal(1, q:kevent(nil, evs, 1, 5))
      assert.are.equal(a, evs[1].udata)
    end
  end)

  it("belongs to the knote: the same value may serve several", function()
    local q = h.newq(finally)
    local shared = {}
    assert.are.equal(0, q:kevent({
      { ident = 1, filter = USER, flags = ADD + kq.EV_CLEAR, udata = shared },
      { ident = 2, filter = USER, flags = ADD + kq.EV_CLEAR, udata = shared },
    }))
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = DELETE } }))
    assert.are.equal(shared, (fire(q, 2, shared)))
  end)
end)

describe("a udata value", function()
  -- Without EV_KEEPUDATA fire() would hold the udata itself: no test.
  if kq.EV_KEEPUDATA then
    it("stays alive while its knote exists", function()
      local q = h.newq(finally)
      local track, gone = tracker()
      assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD,
        udata = track({}) } }))
      assert.is_false(gone())
      assert.are.equal("table", type((fire(q, 1))))
    end)
  end

  it("is released by EV_DELETE", function()
    local q = h.newq(finally)
    local track, gone = tracker()
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD,
      udata = track({}) } }))
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = DELETE,
      udata = track({}) } }))
    assert.is_true(gone())
  end)

  it("is released when a modify replaces it", function()
    local q = h.newq(finally)
    local track, gone = tracker()
    local keep = {}
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD,
      udata = track({}) } }))
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, udata = keep } }))
    assert.is_true(gone())
    if kq.EV_KEEPUDATA then
      -- With EV_KEEPUDATA the change's own value is the one released.
      local track2, gone2 = tracker()
      assert.are.equal(0, q:kevent({ { ident = 1, filter = USER,
        flags = kq.EV_KEEPUDATA, udata = track2({}) } }))
      assert.is_true(gone2())
    end
    assert.are.equal(keep, (fire(q, 1, keep)))
  end)

  -- Without EV_KEEPUDATA fire() would hold the udata itself: no test.
  if kq.EV_KEEPUDATA then
    it("is released by the delivery of an EV_ONESHOT event", function()
      local q = h.newq(finally)
      local track, gone = tracker()
      assert.are.equal(0, q:kevent({ { ident = 1, filter = USER,
        flags = ADD + kq.EV_ONESHOT, udata = track({}) } }))
      local got, ev = fire(q, 1)
      assert.is_true(kq.band(ev.flags, kq.EV_ONESHOT) ~= 0)
      assert.are.equal("table", type(got))
      got, ev = nil, nil -- luacheck: ignore 311
      assert.is_true(gone())
    end)
  end

  it("is released when its change fails, after being echoed", function()
    local q = h.newq(finally)
    local track, gone = tracker()
    -- The calls run in functions of their own: LuaJIT keeps whatever a
    -- dead temporary of a live frame still points to.
    local function echoed()
      local evs = {}
      local u = track({})
      assert.are.equal(1, q:kevent({ { ident = 9, filter = USER, flags = DELETE,
        udata = u } }, evs, 4, 0))
      assert.are.equal(u, evs[1].udata)
    end
    echoed()
    assert.is_true(gone())
    local function failed()
      assert.os_error(kt.errno.ENOENT, q:kevent({ { ident = 9, filter = USER,
        flags = DELETE, udata = track({}) } }))
    end
    failed()
    assert.is_true(gone())
  end)

  it("is released when the queue is closed or collected", function()
    local track, gone = tracker()
    local q = assert(kq.kqueue())
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD,
      udata = track({}) } }))
    q:close()
    assert.is_true(gone())
    q = assert(kq.kqueue())
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD,
      udata = track({}) } }))
    q = nil -- luacheck: ignore 311
    assert.is_true(gone())
  end)

  it("of changes never applied is released too", function()
    local q = h.newq(finally)
    local track, gone = tracker()
    -- The first change fails with no room: the second is not applied.
    assert.os_error(kt.errno.ENOENT, q:kevent({
      { ident = 1, filter = USER, flags = DELETE, udata = track({}) },
      { ident = 2, filter = USER, flags = ADD, udata = track({}) },
    }))
    assert.is_true(gone())
  end)
end)

describe("20,000 add/delete cycles with table udata", function()
  it("leave memory and descriptors where they were", function()
    local q = h.newq(finally)
    local r, w = assert(kt.pipe())
    finally(function() kt.close(r); kt.close(w) end)
    local function cycles(n)
      for i = 1, n do
        assert(q:kevent({ { ident = r, filter = kq.EVFILT_READ, flags = ADD,
          udata = { i } } }))
        assert(q:kevent({ { ident = i % 7, filter = USER, flags = ADD,
          udata = { i } } }))
        assert(q:kevent({ { ident = r, filter = kq.EVFILT_READ, flags = DELETE },
          { ident = i % 7, filter = USER, flags = DELETE } }))
      end
    end
    cycles(100) -- warm up the tables
    collectgarbage()
    collectgarbage()
    local mem, fds = collectgarbage("count"), h.fdcount()
    cycles(20000)
    collectgarbage()
    collectgarbage()
    assert.are.equal(fds, h.fdcount())
    -- A leak of one table per cycle would be well over 1 MB.
    assert.is_true(collectgarbage("count") - mem < 64,
      "memory grew by " .. (collectgarbage("count") - mem) .. " KB")
  end)
end)
