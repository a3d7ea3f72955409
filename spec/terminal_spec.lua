-- READ and WRITE on terminals: a pseudo-terminal pair made with
-- posix_openpt, so the specs need no real tty.
local kq = require("kq")
local kt = require("kqtest")

describe("a terminal", function()
  local q, m, s
  before_each(function()
    q = assert(kq.kqueue())
    m, s = assert(kt.openpty())
  end)
  after_each(function()
    q:close()
    kt.close(m)
    if s then kt.close(s) end
  end)

  it("is readable with data = the bytes waiting once the other side writes", function()
    assert(q:kevent({ { ident = s, filter = kq.EVFILT_READ, flags = kq.EV_ADD, udata = "tty" } }, nil, 0))
    local ev = {}
    assert.are.equal(0, q:kevent(nil, ev, 4, 0))
    assert.are.equal(5, kt.write(m, "hello"))
    -- The pty line discipline hands bytes over asynchronously: wait for them.
    assert.are.equal(1, q:kevent(nil, ev, 4, 5))
    assert.are.equal(s, ev[1].ident)
    assert.are.equal(kq.EVFILT_READ, ev[1].filter)
    assert.are.equal("tty", ev[1].udata)
    assert.are.equal(5, ev[1].data)
    assert.are.equal("hello", kt.read(s, 16))
    assert.are.equal(0, q:kevent(nil, ev, 4, 0))
  end)

  it("is writable at once, with room to write in data", function()
    assert(q:kevent({ { ident = s, filter = kq.EVFILT_WRITE, flags = kq.EV_ADD } }, nil, 0))
    local ev = {}
    assert.are.equal(1, q:kevent(nil, ev, 4, 0))
    assert.are.equal(kq.EVFILT_WRITE, ev[1].filter)
    assert.are.equal(s, ev[1].ident)
  end)

  it("reports EV_EOF on the master's READ when the last slave descriptor closes", function()
    assert(q:kevent({ { ident = m, filter = kq.EVFILT_READ, flags = kq.EV_ADD } }, nil, 0))
    local ev = {}
    assert.are.equal(0, q:kevent(nil, ev, 4, 0))
    kt.close(s)
    s = nil
    assert.are.equal(1, q:kevent(nil, ev, 4, 5))
    assert.are.equal(m, ev[1].ident)
    assert.is_true(kq.band(ev[1].flags, kq.EV_EOF) ~= 0)
  end)
end)
