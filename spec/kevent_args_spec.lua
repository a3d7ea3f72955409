-- kq.kevent(q, changelist, eventlist, nevents, timeout): arguments, their
-- checks and messages, the eventlist, the timeout and EINTR.
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")
local finally = h.finally -- keeps every cleanup (busted keeps the last)
local socket = require("socket")

local READ, USER = kq.EVFILT_READ, kq.EVFILT_USER
local ADD, DELETE = kq.EV_ADD, kq.EV_DELETE

-- The message of the error fn raises.
local function err(fn, ...)
  local ok, msg = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return msg
end

local function newpipe()
  local r, w = assert(kt.pipe())
  finally(function() kt.close(r); kt.close(w) end)
  return r, w
end

-- A USER knote `id` that is triggered and stays ready (no EV_CLEAR).
local function ready_user(q, id, udata)
  assert.are.equal(0, q:kevent({
    { ident = id, filter = USER, flags = ADD, udata = udata },
    { ident = id, filter = USER, fflags = kq.NOTE_TRIGGER, udata = udata },
  }))
end

describe("kq.kevent with no changes and no eventlist", function()
  it("returns 0", function()
    local q = h.newq(finally)
    assert.are.equal(0, kq.kevent(q))
    assert.are.equal(0, q:kevent(nil, nil, 0))
    assert.are.equal(0, q:kevent({}, nil, 0, 5))
  end)

  it("ignores the timeout when nevents is 0, even an invalid one", function()
    local q = h.newq(finally)
    assert.are.equal(0, q:kevent(nil, nil, 0, -1))
    assert.are.equal(0, q:kevent(nil, {}, 0, 0 / 0))
  end)
end)

describe("nevents", function()
  it("must be a non-negative integer", function()
    local q = h.newq(finally)
    assert.matches("bad argument #4 to '" .. h.fn("kevent") .. "' %(nevents: non%-negative",
      err(kq.kevent, q, nil, {}, -1, 0))
    assert.matches("number has no integer representation",
      err(kq.kevent, q, nil, {}, 1.5, 0))
    assert.matches("number expected", err(kq.kevent, q, nil, {}, nil, 0))
  end)

  it("above 0 needs an eventlist table", function()
    local q = h.newq(finally)
    assert.matches("bad argument #3 to '" .. h.fn("kevent") .. "'",
      err(kq.kevent, q, nil, nil, 1, 0))
    assert.matches("table expected", err(kq.kevent, q, nil, "x", 1, 0))
  end)

  it("may be huge: the call collects what is ready without allocating for it", function()
    local q = h.newq(finally)
    ready_user(q, 1)
    ready_user(q, 2)
    local evs = {}
    assert.are.equal(2, q:kevent(nil, evs, 1e9, 0))
    assert.are.equal(2, q:kevent(nil, evs, h.maxint, 0))
  end)
end)

describe("the eventlist", function()
  it("gets eventlist[1..n] as tables of the six fields", function()
    local q = h.newq(finally)
    ready_user(q, 7, "u")
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 4, 0))
    local ev = evs[1]
    assert.are.same({ "data", "fflags", "filter", "flags", "ident", "udata" },
      (function()
        local keys = {}
        for k in pairs(ev) do keys[#keys + 1] = k end
        table.sort(keys)
        return keys
      end)())
    assert.are.equal(7, ev.ident)
    assert.are.equal(USER, ev.filter)
    assert.are.equal("u", ev.udata)
    assert.is_nil(evs[2])
  end)

  it("reuses a table already at an index, overwriting all six fields", function()
    local q = h.newq(finally)
    ready_user(q, 3) -- udata nil
    local old = { ident = 99, filter = 99, flags = 99, fflags = 99,
      data = 99, udata = "stale", extra = "kept" }
    local evs = { old }
    assert.are.equal(1, q:kevent(nil, evs, 1, 0))
    assert.are.equal(old, evs[1])
    assert.are.equal(3, old.ident)
    assert.are.equal(USER, old.filter)
    assert.are.equal(0, old.data)
    assert.is_nil(old.udata)
    assert.are.equal("kept", old.extra)
  end)

  it("replaces a value that is not a table and leaves entries after n untouched", function()
    local q = h.newq(finally)
    ready_user(q, 3)
    local evs = { "not a table", "second", "third" }
    assert.are.equal(1, q:kevent(nil, evs, 3, 0))
    assert.are.equal("table", type(evs[1]))
    assert.are.equal("second", evs[2])
    assert.are.equal("third", evs[3])
  end)

  it("is written with raw access, bypassing metamethods", function()
    local q = h.newq(finally)
    ready_user(q, 3)
    local evs = setmetatable({}, {
      __newindex = function() error("metamethod used") end,
      __index = function() error("metamethod used") end,
    })
    assert.are.equal(1, q:kevent(nil, evs, 1, 0))
    assert.are.equal(3, rawget(evs, 1).ident)
  end)
end)

describe("the changelist", function()
  it("must be nil or a table of tables", function()
    local q = h.newq(finally)
    assert.matches("bad argument #2 to '" .. h.fn("kevent") .. "' %(table expected",
      err(kq.kevent, q, 42))
    assert.matches("%(changelist%[2%]: table expected, got number%)",
      err(kq.kevent, q, { { ident = 1, filter = USER, flags = ADD }, 5 }))
  end)

  it("names the change and field at fault", function()
    local q = h.newq(finally)
    local ok = { ident = 1, filter = USER, flags = ADD }
    assert.matches(
      "bad argument #2 to '" .. h.fn("kevent") .. "' %(changelist%[3%]%.filter: integer expected, got string%)",
      err(kq.kevent, q, { ok, ok, { ident = 1, filter = "READ" } }))
    assert.matches("%(changelist%[2%]%.ident: missing%)",
      err(kq.kevent, q, { ok, { filter = USER } }))
    assert.matches("%(changelist%[1%]%.filter: missing%)",
      err(kq.kevent, q, { { ident = 1 } }))
    assert.matches("%(changelist%[1%]%.flags: number has no integer representation%)",
      err(kq.kevent, q, { { ident = 1, filter = USER, flags = 1.5 } }))
    assert.matches("%(changelist%[1%]%.data: integer expected, got boolean%)",
      err(kq.kevent, q, { { ident = 1, filter = USER, data = true } }))
  end)

  it("counts arguments from after self in a method call", function()
    local q = h.newq(finally)
    assert.matches("bad argument #1 to 'kevent' %(changelist%[1%]%.ident: missing%)",
      err(function() local n = q:kevent({ { filter = USER } }); return n end))
  end)

  it("range-checks every field against its C type (FreeBSD)", function()
    local q = h.newq(finally)
    local function range(change, field)
      assert.matches("%(changelist%[1%]%." .. field .. ": out of range%)",
        err(kq.kevent, q, { change }))
    end
    range({ ident = -1, filter = USER }, "ident")
    range({ ident = 1, filter = 40000 }, "filter")
    range({ ident = 1, filter = -40000 }, "filter")
    range({ ident = 1, filter = USER, flags = 0x10000 }, "flags")
    range({ ident = 1, filter = USER, flags = -1 }, "flags")
    range({ ident = 1, filter = USER, fflags = 0x100000000 }, "fflags")
    range({ ident = 1, filter = USER, fflags = -1 }, "fflags")
    -- data is 64-bit: the extremes pass the check.
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD,
      data = h.maxint } }))
  end)

  it("applies nothing when any change is malformed", function()
    local q = h.newq(finally)
    assert.has_error(function()
      q:kevent({ { ident = 1, filter = USER, flags = ADD },
        { ident = 2, filter = USER, flags = ADD, fflags = -1 } })
    end)
    assert.is_false(h.user_exists(q, 1))
    assert.is_false(h.user_exists(q, 2))
  end)

  it("defaults flags, fflags and data to 0 and ignores unknown keys", function()
    local q = h.newq(finally)
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD,
      filer = "typo", whatever = {} } }))
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER } })) -- a modify
    assert.is_true(h.user_exists(q, 1))
  end)

  -- Where filters are FreeBSD's (all negative): NetBSD's EVFILT_READ is 0
  -- (platform_spec.lua), macOS and OpenBSD reject 0 (doc/portability.md).
  if h.freebsd_kevent then
    it("skips a change whose filter is 0, no filter, applying the others (FreeBSD)", function()
      local q = h.newq(finally)
      assert.are.equal(0, q:kevent({
        { ident = 1, filter = USER, flags = ADD },
        { ident = 5, filter = 0, flags = DELETE },
        { ident = 2, filter = USER, flags = ADD },
      }))
      assert.is_true(h.user_exists(q, 1))
      assert.is_true(h.user_exists(q, 2))
    end)
  end

  it("reads fields through __index, so change objects may inherit them", function()
    local q = h.newq(finally)
    local proto = { filter = USER, flags = ADD }
    local change = setmetatable({ ident = 4 }, { __index = proto })
    assert.are.equal(0, q:kevent({ change }))
    assert.is_true(h.user_exists(q, 4))
  end)
end)

describe("an ident", function()
  it("may be a Lua file handle", function()
    local q = h.newq(finally)
    local path = os.tmpname()
    local f = assert(io.open(path, "w+"))
    finally(function() f:close(); os.remove(path) end)
    assert(f:write("hello")); assert(f:flush()); assert(f:seek("set", 0))
    assert.are.equal(0, q:kevent({ { ident = f, filter = READ, flags = ADD } }))
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 5))
    assert.are.equal(READ, evs[1].filter)
    assert.are.equal(5, evs[1].data)
  end)

  it("may not be a closed file handle", function()
    local q = h.newq(finally)
    local f = assert(io.open("/dev/null", "r"))
    f:close()
    assert.matches("changelist%[1%]%.ident: closed file",
      err(kq.kevent, q, { { ident = f, filter = READ, flags = ADD } }))
  end)

  it("may be a LuaSocket socket (getfd)", function()
    local q = h.newq(finally)
    local server = assert(socket.bind("127.0.0.1", 0))
    finally(function() server:close() end)
    local _, port = server:getsockname()
    local client = assert(socket.connect("127.0.0.1", port))
    finally(function() client:close() end)
    assert.are.equal(0, q:kevent({ { ident = server, filter = READ, flags = ADD } }))
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 5))
    assert.are.equal(server:getfd(), evs[1].ident)
    assert.are.equal(READ, evs[1].filter)
  end)

  it("may be an object with a fileno() method", function()
    local q = h.newq(finally)
    local r, w = newpipe()
    local obj = { fileno = function() return r end }
    assert.are.equal(0, q:kevent({ { ident = obj, filter = READ, flags = ADD } }))
    kt.write(w, "x")
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 5))
    assert.are.equal(r, evs[1].ident)
  end)

  it("must give an integer from its method", function()
    local q = h.newq(finally)
    local obj = { getfd = function() return "three" end }
    assert.matches("changelist%[1%]%.ident: getfd%(%) returned string",
      err(kq.kevent, q, { { ident = obj, filter = READ, flags = ADD } }))
    local closed = { getfd = function() return -1 end } -- LuaSocket's, closed
    assert.matches("changelist%[1%]%.ident: closed socket",
      err(kq.kevent, q, { { ident = closed, filter = READ, flags = ADD } }))
  end)
end)

describe("the timeout", function()
  it("must be a non-negative number", function()
    local q = h.newq(finally)
    assert.matches(
      "bad argument #5 to '" .. h.fn("kevent") .. "' %(timeout: non%-negative number expected%)",
      err(kq.kevent, q, nil, {}, 1, -1))
    assert.matches("timeout: non%-negative number expected",
      err(kq.kevent, q, nil, {}, 1, 0 / 0))
    assert.matches("bad argument #5", err(kq.kevent, q, nil, {}, 1, {}))
  end)

  it("0 polls and a fraction waits, returning 0 on an empty queue", function()
    local q = h.newq(finally)
    local evs = {}
    assert.are.equal(0, q:kevent(nil, evs, 1, 0))
    assert.are.equal(0, q:kevent(nil, evs, 1, 0.0005))
    assert.are.equal(0, q:kevent(nil, evs, 1, 1e-9))
    assert.is_nil(evs[1])
  end)

  it("of math.huge or above INT32_MAX seconds waits as long as needed", function()
    local q = h.newq(finally)
    ready_user(q, 1)
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, math.huge))
    assert.are.equal(1, q:kevent(nil, evs, 1, 2 ^ 31))
    assert.are.equal(1, q:kevent(nil, evs, 1, 1e300))
    assert.are.equal(1, q:kevent(nil, evs, 1))
  end)
end)

describe("a signal handler running during the wait", function()
  local SIGUSR2 = kt.signals.SIGUSR2

  before_each(function() assert(kt.signal(SIGUSR2, "count")) end)
  after_each(function() kt.signal(SIGUSR2, "default") end)

  -- A child that signals us after `delay`, then writes to `w` if given.
  local function child(delay, w)
    local parent = kt.getpid()
    local pid = assert(kt.fork())
    if pid == 0 then
      kt.sleep(delay)
      kt.kill(parent, SIGUSR2)
      if w then
        kt.sleep(delay)
        kt.write(w, "x")
      end
      kt._exit(0)
    end
    finally(function() kt.waitpid(pid) end)
    return pid
  end

  it("does not end the wait, and the changes are not applied again", function()
    local q = h.newq(finally)
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD } }))
    child(0.05)
    local evs = {}
    -- Were the EV_DELETE applied twice, the second would give ENOENT.
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = DELETE } },
      evs, 1, 0.5))
    assert.is_true(kt.counter(SIGUSR2) >= 1)
    assert.is_nil(evs[1])
  end)

  it("does not end a wait without timeout", function()
    local q = h.newq(finally)
    local r, w = newpipe()
    assert.are.equal(0, q:kevent({ { ident = r, filter = READ, flags = ADD } }))
    child(0.05, w)
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1))
    assert.are.equal(r, evs[1].ident)
    assert.is_true(kt.counter(SIGUSR2) >= 1)
  end)
end)

describe("a failing system call", function()
  it("returns nil, 'kevent: <strerror>', errno", function()
    local q = h.newq(finally)
    -- EV_DELETE of a missing knote with no room fails the call itself.
    assert.os_error(kt.errno.ENOENT,
      q:kevent({ { ident = 1, filter = USER, flags = DELETE } }, nil, 0))
    local _, msg = q:kevent({ { ident = 1, filter = USER, flags = DELETE } })
    assert.matches("^kevent: ", msg)
  end)
end)

describe("an event's data", function()
  it("equals what the descriptor holds when first read, then stays", function()
    local q = h.newq(finally)
    local r, w = newpipe()
    assert.are.equal(0, q:kevent({ { ident = r, filter = READ, flags = ADD } }))
    kt.write(w, "abc")
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 5))
    local ev = evs[1]
    if kq.backend == "linux" then
      -- The engine computes READ data when the program reads it.
      kt.write(w, "de")
      assert.are.equal(5, ev.data)
    else
      assert.are.equal(3, ev.data)
    end
    local first = ev.data
    kt.write(w, "fgh")
    assert.are.equal(first, ev.data)
    assert.are.equal(first, rawget(ev, "data"))
  end)

  it("is a plain field again when the table is reused for another event", function()
    local q = h.newq(finally)
    local r, w = newpipe()
    assert.are.equal(0, q:kevent({ { ident = r, filter = READ, flags = ADD } }))
    kt.write(w, "abc")
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 5))
    local t = evs[1]
    assert.are.equal(0, q:kevent({ { ident = r, filter = READ, flags = DELETE } }))
    ready_user(q, 1)
    assert.are.equal(1, q:kevent(nil, evs, 1, 5))
    assert.are.equal(t, evs[1])
    assert.is_nil(getmetatable(t))
    assert.are.equal(0, rawget(t, "data"))
  end)

  it("is filled at once in a reused table carrying the caller's metatable", function()
    local q = h.newq(finally)
    local r, w = newpipe()
    assert.are.equal(0, q:kevent({ { ident = r, filter = READ, flags = ADD } }))
    kt.write(w, "abcd")
    local mt = {}
    local evs = { setmetatable({}, mt) }
    assert.are.equal(1, q:kevent(nil, evs, 1, 5))
    assert.are.equal(mt, getmetatable(evs[1]))
    assert.are.equal(4, rawget(evs[1], "data"))
  end)
end)
