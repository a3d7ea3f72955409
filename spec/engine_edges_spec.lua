-- READ and WRITE at the edges of a descriptor's life, where Linux's epoll
-- reports something FreeBSD's kqueue does not (semantics §4.1, §4.2):
-- a pipe's write end once its reader is gone.  Each case is FreeBSD's
-- behaviour, which the Linux engine must give too (tests/c/data_test.c
-- checks the same cases from C, with the data of both engine modes).
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")

local READ, WRITE = kq.EVFILT_READ, kq.EVFILT_WRITE
local EV_ADD, EV_CLEAR, EV_EOF, EV_ONESHOT, EV_ENABLE, EV_DISABLE =
  kq.EV_ADD, kq.EV_CLEAR, kq.EV_EOF, kq.EV_ONESHOT, kq.EV_ENABLE, kq.EV_DISABLE

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
    h.apply(q, h.ch(w, READ, EV_ADD | EV_ONESHOT))
    local q2 = h.newq(defer)
    h.apply(q2, h.ch(w, READ, EV_ADD | EV_CLEAR))
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
    assert.are.equal(0, evs[WRITE].flags)
    assert.are.equal(65536 - 100, evs[WRITE].data)
    kt.close(r)
    rclosed = true
    -- WRITE: EV_EOF at every call (level); READ: nothing, ever.
    for _ = 1, 3 do
      evs = h.wait(q)
      assert.are.equal(1, #evs)
      assert.are.equal(WRITE, evs[1].filter)
      assert.are.equal(EV_EOF, evs[1].flags)
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
      assert.are.equal(EV_EOF, evs[1].flags)
      assert.are.equal(3, evs[1].data)
    end
  end)
end)
