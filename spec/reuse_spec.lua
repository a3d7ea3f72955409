-- A descriptor number that was closed and reused never delivers events of
-- the old file; EV_ADD on it starts a fresh knote.  Queues (epoll
-- descriptors) all share one inode, so the engine must tell them apart by
-- more than device and inode.
local kq = require("kq")
local h = require("spec.helper")
local finally = h.finally -- keeps every cleanup (busted keeps the last)

describe("a reused queue number", function()
  it("starts a fresh knote when a new queue takes the number of a watched one", function()
    local outer = assert(kq.kqueue())
    local inner = assert(kq.kqueue())
    finally(function() outer:close(); inner:close() end)
    local fd = inner:fileno()
    assert(outer:kevent({ { ident = fd, filter = kq.EVFILT_READ, flags = kq.EV_ADD, udata = "old" } }, nil, 0))
    inner:close()
    inner = assert(kq.kqueue())
    assert.are.equal(fd, inner:fileno())
    assert(outer:kevent({ { ident = fd, filter = kq.EVFILT_READ, flags = kq.EV_ADD, udata = "new" } }, nil, 0))
    assert(inner:kevent({
      { ident = 1, filter = kq.EVFILT_USER, flags = kq.EV_ADD },
      { ident = 1, filter = kq.EVFILT_USER, fflags = kq.NOTE_TRIGGER },
    }, nil, 0))
    local ev = {}
    assert.are.equal(1, outer:kevent(nil, ev, 4, 0))
    assert.are.equal(fd, ev[1].ident)
    assert.are.equal("new", ev[1].udata)
    assert.are.equal(1, ev[1].data)
  end)
end)
