-- Registration on a descriptor number the queue already knew: a change
-- applies to the file the number names now, never to an older file on
-- the same number, whichever way the engine learns it (epoll's answer
-- while the old knote is registered, the file's identity once it left
-- epoll).  FreeBSD drops a descriptor's knotes at close(2); everything
-- here follows from that.
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")

local READ, WRITE = kq.EVFILT_READ, kq.EVFILT_WRITE
local EV_ADD, EV_DELETE, EV_ENABLE, EV_ONESHOT, EV_DISPATCH =
  kq.EV_ADD, kq.EV_DELETE, kq.EV_ENABLE, kq.EV_ONESHOT, kq.EV_DISPATCH
local E = kt.errno

-- A socket pair whose end b the spec closes itself (reuse).
local function pair(defer)
  local a, b = assert(kt.socketpair())
  defer(function() kt.close(a) end)
  return a, b
end

-- Close b and give its number to a new socket (made while b is still
-- open, so that neither of its ends takes the number); returns the new
-- socket's peer.
local function reuse(defer, b)
  local x, y = h.pair(defer)
  kt.close(b)
  assert.are.equal(b, kt.dup2(x, b))
  defer(function() kt.close(b) end)
  return y
end

describe("a change on a number closed and reused without EV_DELETE", function()
  it("EV_ADD starts a fresh knote: the old one's EV_ONESHOT does not carry over", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local _, b = pair(defer)
    h.apply(q, h.ch(b, READ, EV_ADD + EV_ONESHOT, 0, 0, "old"))
    local y = reuse(defer, b)
    h.apply(q, h.ch(b, READ, EV_ADD, 0, 0, "new"))
    assert.are.same({}, h.wait(q))
    assert(kt.write(y, "xy"))
    for _ = 1, 2 do -- level-triggered, not oneshot: every call
      local evs = h.wait(q)
      assert.are.equal(1, #evs)
      assert.are.equal(b, evs[1].ident)
      assert.are.equal("new", evs[1].udata)
      assert.are.equal(2, evs[1].data)
    end
  end)

  it("EV_ADD of WRITE drops the old file's READ knote", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local _, b = pair(defer)
    h.apply(q, h.ch(b, READ, EV_ADD, 0, 0, "old"))
    local y = reuse(defer, b)
    h.apply(q, h.ch(b, WRITE, EV_ADD, 0, 0, "new"))
    assert(kt.write(y, "x"))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(WRITE, evs[1].filter)
    assert.os_error(E.ENOENT, q:kevent({ h.ch(b, READ, EV_DELETE) }))
  end)

  it("EV_ADD on the number once closed gives EBADF and leaves nothing behind", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local a, b = assert(kt.socketpair())
    defer(function() kt.close(a) end)
    h.apply(q, h.ch(b, READ, EV_ADD))
    kt.close(b)
    assert.os_error(E.EBADF, q:kevent({ h.ch(b, READ, EV_ADD) }))
    assert.os_error(E.EBADF, q:kevent({ h.ch(b, READ, EV_DELETE) }))
  end)

  it("EV_ADD on the same file keeps the knote (a modify), udata replaced", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local a, b = h.pair(defer)
    h.apply(q, h.ch(b, READ, EV_ADD + EV_ONESHOT, 0, 0, "first"))
    h.apply(q, h.ch(b, READ, EV_ADD, 0, 0, "second"))
    assert(kt.write(a, "x"))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal("second", evs[1].udata)
    assert.are.equal(EV_ONESHOT, kq.band(evs[1].flags, EV_ONESHOT))
    assert.are.same({}, h.wait(q)) -- the stored EV_ONESHOT stayed
  end)
end)

describe("an EV_DISPATCH knote that left epoll after firing", function()
  -- Fired once, it is disabled; epoll reports the readable socket again
  -- at the next collection, and the knote's registration is taken out.
  local function dispatched(defer)
    local q = h.newq(defer)
    local a, b = pair(defer)
    h.apply(q, h.ch(b, READ, EV_ADD + EV_DISPATCH, 0, 0, "old"))
    assert(kt.write(a, "x"))
    assert.are.equal(1, #h.wait(q))
    assert.are.same({}, h.wait(q))
    return q, a, b
  end

  it("fires again on EV_ENABLE while its number names its file", function()
    local defer = h.closer()
    local q, _, b = dispatched(defer)
    defer(function() kt.close(b) end)
    h.apply(q, h.ch(b, READ, EV_ENABLE, 0, 0, "again"))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal("again", evs[1].udata)
  end)

  it("is gone for EV_ENABLE once its number names another file (ENOENT)", function()
    local defer = h.closer()
    local q, _, b = dispatched(defer)
    local y = reuse(defer, b)
    assert(kt.write(y, "x"))
    assert.os_error(E.ENOENT, q:kevent({ h.ch(b, READ, EV_ENABLE) }))
    assert.are.same({}, h.wait(q))
  end)
end)

describe("a WRITE knote added beside a READ knote registered first", function()
  -- The READ knote registers the descriptor before anything is known of
  -- it; WRITE needs to know it is a pipe.
  it("on a pipe's write end whose reader is gone fails with EPIPE", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local r, w = assert(kt.pipe())
    defer(function() kt.close(w) end)
    h.apply(q, h.ch(w, READ, EV_ADD))
    kt.close(r)
    assert.os_error(E.EPIPE, q:kevent({ h.ch(w, WRITE, EV_ADD) }))
    assert.os_error(E.ENOENT, q:kevent({ h.ch(w, WRITE, EV_DELETE) }))
    h.apply(q, h.ch(w, READ, EV_DELETE)) -- the READ knote stayed
  end)

  it("on a pipe's write end with a reader reports the free space", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local r, w = assert(kt.pipe())
    defer(function() kt.close(r); kt.close(w) end)
    h.apply(q, h.ch(w, READ, EV_ADD), h.ch(w, WRITE, EV_ADD))
    local evs = h.wait(q)
    assert.are.equal(1, #evs)
    assert.are.equal(WRITE, evs[1].filter)
    local free = evs[1].data
    assert.is_true(free > 100)
    assert(kt.write(w, string.rep("z", 100)))
    assert.are.equal(free - 100, h.wait(q)[1].data)
  end)
end)
