-- The Lua helpers: kq.describe, kq.filtername, kq.flagnames,
-- kq.fflagnames and kq.change.
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")
local finally = h.finally -- keeps every cleanup (busted keeps the last)

describe("kq.describe", function()
  it("gives one line with symbolic filter and flags", function()
    assert.are.equal("ident=5 filter=READ flags=CLEAR|EOF fflags=0 data=3 udata=12",
      kq.describe({ ident = 5, filter = kq.EVFILT_READ,
        flags = kq.EV_CLEAR + kq.EV_EOF, fflags = 0, data = 3, udata = 12 }))
  end)

  it("names fflags per filter, since NOTE_ values overlap", function()
    assert.are.equal("ident=7 filter=VNODE flags=CLEAR fflags=WRITE|EXTEND data=0 udata=nil",
      kq.describe({ ident = 7, filter = kq.EVFILT_VNODE, flags = kq.EV_CLEAR,
        fflags = kq.NOTE_WRITE + kq.NOTE_EXTEND, data = 0 }))
    assert.are.equal(
      "ident=42 filter=PROC flags=ONESHOT|CLEAR|EOF fflags=EXIT data=16384 udata=\"child\"",
      kq.describe({ ident = 42, filter = kq.EVFILT_PROC,
        flags = kq.EV_CLEAR + kq.EV_ONESHOT + kq.EV_EOF, fflags = kq.NOTE_EXIT,
        data = 16384, udata = "child" }))
    -- READ's fflags (a socket error on EOF) stay a number.
    assert.are.equal("ident=3 filter=READ flags=EOF fflags=104 data=0 udata=nil",
      kq.describe({ ident = 3, filter = kq.EVFILT_READ, flags = kq.EV_EOF,
        fflags = 104, data = 0 }))
  end)

  it("describes an error entry with its fflags as a number", function()
    assert.are.equal("ident=1 filter=USER flags=ERROR fflags=2 data=2 udata=nil",
      kq.describe({ ident = 1, filter = kq.EVFILT_USER, flags = kq.EV_ERROR,
        fflags = 2, data = 2 }))
  end)

  it("describes a real event", function()
    local q = assert(kq.kqueue())
    local r, w = assert(kt.pipe())
    finally(function() q:close(); kt.close(r); kt.close(w) end)
    assert(q:kevent({ kq.change(r, kq.EVFILT_READ, kq.EV_ADD, 0, 0, 12) }))
    kt.write(w, "abc")
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 5))
    assert.are.equal(string.format("ident=%d filter=READ flags=0 fflags=0 data=3 udata=12", r),
      kq.describe(h.shown(evs[1])))
  end)

  it("keeps a number for an unknown filter", function()
    assert.matches("filter=%-999 ", kq.describe({ ident = 0, filter = -999,
      flags = 0, fflags = 0, data = 0 }))
  end)
end)

describe("kq.filtername", function()
  it("names filters without the prefix, nil for unknown ones", function()
    assert.are.equal("READ", kq.filtername(kq.EVFILT_READ))
    assert.are.equal("USER", kq.filtername(kq.EVFILT_USER))
    assert.is_nil(kq.filtername(12345))
  end)
end)

describe("kq.flagnames", function()
  it("joins flag names lowest bit first, 0 for none, leftovers in hex", function()
    assert.are.equal("0", kq.flagnames(0))
    assert.are.equal("ADD|ONESHOT", kq.flagnames(kq.EV_ADD + kq.EV_ONESHOT))
    assert.are.equal("ERROR|EOF", kq.flagnames(kq.EV_ERROR + kq.EV_EOF))
    assert.are.equal("ADD|0x10000", kq.flagnames(kq.EV_ADD + 0x10000))
  end)
end)

describe("kq.fflagnames", function()
  it("uses the filter's own names", function()
    assert.are.equal("DELETE", kq.fflagnames(kq.EVFILT_VNODE, 1))
    assert.are.equal("SECONDS", kq.fflagnames(kq.EVFILT_TIMER, 1))
    assert.are.equal("1", kq.fflagnames(kq.EVFILT_READ, 1))
    assert.are.equal("0", kq.fflagnames(kq.EVFILT_VNODE, 0))
  end)
end)

describe("kq.change", function()
  it("builds a change table, defaulting flags, fflags and data to 0", function()
    assert.are.same({ ident = 3, filter = kq.EVFILT_READ, flags = 0, fflags = 0,
      data = 0 }, kq.change(3, kq.EVFILT_READ))
    local u = {}
    local c = kq.change(1, kq.EVFILT_USER, kq.EV_ADD, 5, 6, u)
    assert.are.equal(u, c.udata)
    assert.are.equal(6, c.data)
  end)
end)
