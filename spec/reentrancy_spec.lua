-- Re-entrancy (doc/reference.md, "Re-entrancy"): finalisers, metamethods
-- and coroutines that use a queue while a kevent call on it is running,
-- change tables read once, a fork inside a call, a closed LuaSocket.
local h = require("spec.helper")
local kq = require("kq")
local kt = require("kqtest")
local socket = require("socket")

-- A local: on 5.1 busted's spec environment looks globals up through a
-- function, whose call may run the collector just before a kevent call.
local pcall = pcall

local USER, READ = kq.EVFILT_USER, kq.EVFILT_READ
local ADD, DELETE, ONESHOT = kq.EV_ADD, kq.EV_DELETE, kq.EV_ONESHOT
local finally = h.finally

-- n USER knotes 1..n, each with udata "u<i>", triggered; ONESHOT when asked.
local function armed(q, n, oneshot)
  local changes = {}
  for i = 1, n do
    changes[#changes + 1] = { ident = i, filter = USER,
      flags = oneshot and ADD + ONESHOT or ADD, udata = "u" .. i }
  end
  assert.are.equal(0, q:kevent(changes))
  changes = {}
  for i = 1, n do changes[#changes + 1] = h.fire(i, "u" .. i) end
  assert.are.equal(0, q:kevent(changes))
end

-- The collector set to run a whole cycle, finalisers included, at every
-- allocation it checks, until the returned function puts it back.  5.4
-- needs a step size for that ("incremental"); the others a huge step
-- multiplier.  A pause of 0 starts the next cycle at once.
local function gc_every_allocation()
  if _VERSION == "Lua 5.4" then
    collectgarbage("incremental", 1, 1000, 40)
    return function() collectgarbage("incremental", 200, 100, 13) end
  end
  return h.gc_tune(0, 10000000)
end

-- Whether kq.kevent is running, below the function that asks.
local function in_kevent()
  for level = 3, 60 do
    local info = debug.getinfo(level, "f")
    if not info then return false end
    if info.func == kq.kevent then return true end
  end
  return false
end

-- Runs prepare() then call() (a kevent call that allocates) until one of
-- the finalisers made here runs inside kq.kevent and calls fin().  The
-- finalisers' objects become garbage, and prepare() runs, with the
-- collector stopped; it restarts just before call(), whose first
-- allocation then runs a whole cycle and so the finalisers.  Returns
-- call's pcall results; fails the test if no finaliser ran inside.
local function with_finaliser_inside(fin, call, prepare)
  local restore = gc_every_allocation()
  finally(function() collectgarbage("restart"); restore() end)
  local state = { inside = false, hit = false }
  for _ = 1, 5 do
    collectgarbage("stop")
    for _ = 1, 20 do
      h.finalised(function()
        if state.inside and in_kevent() then
          state.hit = true
          fin()
        end
      end)
    end
    if prepare then prepare() end
    collectgarbage("restart")
    state.inside = true
    -- No table constructor here: it would allocate before the call.
    local ok, r1, r2, r3 = pcall(call)
    state.inside = false
    if state.hit then
      restore()
      return ok, r1, r2, r3
    end
  end
  restore()
  error("no finaliser ran inside a kevent call in 5 attempts")
end

describe("a finaliser using the queue during a kevent call", function()
  it("that deletes other knotes loses none of the events already handed over", function()
    local q = h.newq(finally)
    local deleted, evs = false, nil
    local ok, n = with_finaliser_inside(function()
      if not deleted then
        deleted = true
        -- "unregister on collect": a knote not among the events
        q:kevent({ { ident = 100, filter = USER, flags = DELETE } })
      end
    end, function()
      return q:kevent(nil, evs, 16, 0)
    end, function()
      evs = {}
      armed(q, 16, true)
      assert.are.equal(0, q:kevent({ { ident = 100, filter = USER, flags = ADD } }))
    end)
    assert.is_true(ok, tostring(n))
    assert.are.equal(16, n)
    -- ONESHOT: every knote went with its delivery.
    for i = 1, 16 do assert.is_false(h.user_exists(q, i)) end
  end)

  it("returns every event with its udata, and releases ONESHOT udata once", function()
    local q = h.newq(finally)
    local track, gone = h.tracker()
    local vals = {}
    for i = 1, 32 do vals[i] = track({ i = i }) end
    local again = 0
    local evs = {}
    local ok, n = with_finaliser_inside(function()
      -- Re-register ident 1 with a new udata while the call runs: the
      -- outer call must not release the new one.
      if again == 0 then
        again = 1
        q:kevent({ { ident = 1, filter = USER, flags = ADD, udata = "new" } })
      end
    end, function()
      return q:kevent(nil, evs, 32, 0)
    end, function()
      local changes = {}
      for i = 1, 32 do
        changes[#changes + 1] = { ident = i, filter = USER,
          flags = ADD + ONESHOT, udata = vals[i] }
        changes[#changes + 1] = h.fire(i, vals[i])
      end
      assert.are.equal(0, q:kevent(changes))
      evs = {}
    end)
    vals = nil -- luacheck: ignore 311
    assert.is_true(ok, tostring(n))
    assert.are.equal(32, n)
    for i = 1, n do
      assert.are.equal(evs[i].ident, evs[i].udata.i)
    end
    evs = nil -- luacheck: ignore 311
    assert.is_true(gone())
    assert.are.equal(0, q:kevent({ h.fire(1, "new") }))
    local got = h.wait(q)
    assert.are.equal(1, #got)
    assert.are.equal("new", got[1].udata)
  end)

  it("that closes the queue leaves the call the events it received", function()
    local q = h.newq(finally)
    local a, b = h.pair(finally)
    assert.are.equal(0, q:kevent({ { ident = a, filter = READ, flags = ADD,
      udata = "socket" } }))
    armed(q, 31)
    assert.is_true(kt.write(b, "x") == 1)
    -- A first call with the same room, so that the call allocates
    -- nothing before the kernel has handed the events over.
    assert.are.equal(32, q:kevent(nil, {}, 32, 0))
    local evs
    local ok, n = with_finaliser_inside(function() q:close() end,
      function() return q:kevent(nil, evs, 32, 0) end,
      function() evs = {} end)
    assert.is_true(ok, tostring(n))
    assert.are.equal("closed kqueue", kq.type(q))
    assert.are.equal(32, n)
    for i = 1, 32 do
      local e = evs[i]
      assert.are.equal(e.ident == a and e.filter == READ and "socket"
        or "u" .. e.ident, e.udata)
    end
  end)
end)

describe("a change table", function()
  it("whose udata read raises leaves no udata of earlier changes referenced", function()
    local q = h.newq(finally)
    local track, gone = h.tracker()
    local bad = setmetatable({ ident = 2, filter = USER, flags = ADD }, {
      __index = function(_, k) if k == "udata" then error("no udata here") end end,
    })
    local ok, msg = pcall(q.kevent, q, {
      { ident = 1, filter = USER, flags = ADD, udata = track({}) }, bad })
    assert.is_false(ok)
    assert.matches("no udata here", tostring(msg))
    assert.is_true(gone())
    assert.is_false(h.user_exists(q, 1))
    assert.is_false(h.user_exists(q, 2))
  end)

  it("whose udata read yields leaves no udata referenced and applies nothing", function()
    local q = h.newq(finally)
    local track, gone = h.tracker()
    local co = coroutine.create(function()
      local yielding = setmetatable({ ident = 2, filter = USER, flags = ADD }, {
        __index = function(_, k) if k == "udata" then coroutine.yield() end end,
      })
      return q:kevent({ { ident = 1, filter = USER, flags = ADD,
        udata = track({}) }, yielding })
    end)
    local ok, msg = coroutine.resume(co)
    assert.is_false(ok)
    assert.matches("yield", tostring(msg))
    co = nil -- luacheck: ignore 311
    assert.is_true(gone())
    assert.is_false(h.user_exists(q, 1))
    assert.is_false(h.user_exists(q, 2))
  end)

  it("is read once: an __index replacing changelist[1] does not change its udata", function()
    local q = h.newq(finally)
    local list
    local swap = setmetatable({ ident = 2, filter = USER }, {
      __index = function(_, k)
        if k == "flags" then
          list[1] = { ident = 1, filter = USER, flags = ADD, udata = "other" }
          return ADD
        end
      end,
    })
    list = { { ident = 1, filter = USER, flags = ADD, udata = "first" }, swap }
    assert.are.equal(0, q:kevent(list))
    assert.are.equal(0, q:kevent({ h.fire(1, "first") }))
    local got = h.wait(q)
    assert.are.equal(1, #got)
    assert.are.equal("first", got[1].udata)
  end)

  it("is read once: changelist[1] replaced by a number is no error", function()
    local q = h.newq(finally)
    local list
    local swap = setmetatable({ ident = 2, filter = USER }, {
      __index = function(_, k)
        if k == "flags" then list[1] = 42 return ADD end
      end,
    })
    list = { { ident = 1, filter = USER, flags = ADD, udata = "first" }, swap }
    assert.are.equal(0, q:kevent(list))
    assert.is_true(h.user_exists(q, 1))
    assert.is_true(h.user_exists(q, 2))
  end)
end)

describe("a metamethod using the queue during a kevent call", function()
  it("may register on it: both calls apply their changes, with their udata", function()
    local q = h.newq(finally)
    local nested = setmetatable({ ident = 1, filter = USER }, {
      __index = function(_, k)
        if k == "flags" then
          assert.are.equal(0, q:kevent({ { ident = 5, filter = USER,
            flags = ADD, udata = "inner" } }))
          return ADD
        end
        if k == "udata" then return "outer" end
      end,
    })
    assert.are.equal(0, q:kevent({ nested }))
    assert.are.equal(0, q:kevent({ h.fire(1, "outer"), h.fire(5, "inner") }))
    local got = h.wait(q)
    table.sort(got, function(x, y) return x.ident < y.ident end)
    assert.are.equal(2, #got)
    assert.are.equal("outer", got[1].udata)
    assert.are.equal("inner", got[2].udata)
  end)

  it("may resume a coroutine that collects from it", function()
    local q = h.newq(finally)
    armed(q, 3)
    local inner = coroutine.wrap(function()
      local evs = {}
      local n = q:kevent(nil, evs, 8, 0)
      return n, evs
    end)
    local seen
    local obj = setmetatable({ ident = 9, filter = USER }, {
      __index = function(_, k)
        if k == "flags" then
          local n, evs = inner()
          seen = n
          assert.are.equal("u" .. evs[1].ident, evs[1].udata)
          return ADD
        end
      end,
    })
    assert.are.equal(0, q:kevent({ obj }))
    assert.are.equal(3, seen)
    assert.is_true(h.user_exists(q, 9))
  end)

  it("that closes the queue ends the call with EBADF and releases its udata", function()
    local q = assert(kq.kqueue())
    local track, gone = h.tracker()
    local closer = setmetatable({ ident = 2, filter = USER }, {
      __index = function(_, k) if k == "flags" then q:close() return ADD end end,
    })
    local n, msg, en = q:kevent({ { ident = 1, filter = USER, flags = ADD,
      udata = track({}) }, closer })
    assert.os_error(kt.errno.EBADF, n, msg, en)
    assert.are.equal("closed kqueue", kq.type(q))
    assert.is_true(gone())
  end)
end)

describe("a fork inside a kevent call", function()
  it("never lets the child apply the parent's changes to a queue of its own", function()
    local q = h.newq(finally)
    local qfd = q:fileno()
    local r, w = assert(kt.pipe())
    finally(function() kt.close(r); kt.close(w) end)
    local child = false
    local forker = { getfd = function()
      local pid = assert(kt.fork())
      if pid == 0 then
        child = true
        -- The child has no such queue (FreeBSD): make one on the same
        -- number, as a program in the child might.  Another library's
        -- fork handler may have taken the number (libuv remakes its
        -- signal pipe in the child): move that away, then fill every
        -- free number below it, so that it is the lowest free one.
        if kt.is_cloexec(qfd) ~= nil then
          assert(kt.dup(qfd))
          kt.close(qfd)
        end
        for _ = 1, qfd + 1 do
          local fd = kt.dup(r)
          if not fd or fd >= qfd then
            if fd then kt.close(fd) end
            if fd ~= qfd then kt._exit(3) end
            break
          end
        end
        child = assert(kq.kqueue())
        if child:fileno() ~= qfd then kt._exit(4) end
      else
        child = pid
      end
      return r
    end }
    local ok = pcall(q.kevent, q, {
      { ident = 7, filter = USER, flags = ADD },
      { ident = forker, filter = READ, flags = ADD },
      { ident = 8, filter = USER, flags = ADD },
    })
    if type(child) ~= "number" then
      -- The child: its queue on the parent's number must be empty.
      local status = 0
      local ok2, e7 = pcall(h.user_exists, child, 7)
      local ok3, e8 = pcall(h.user_exists, child, 8)
      if not (ok2 and ok3) or e7 or e8 then status = 1 end
      kt._exit(status)
    end
    assert.is_true(ok)
    local pid, status = assert(kt.waitpid(child))
    assert.are.equal(child, pid)
    assert.are.equal(0, status, "the child's queue got the parent's changes")
    assert.is_true(h.user_exists(q, 7))
    assert.is_true(h.user_exists(q, 8))
  end)
end)

describe("a closed LuaSocket as ident", function()
  it("is named a closed socket", function()
    local q = h.newq(finally)
    local s = assert(socket.tcp())
    s:close()
    local ok, msg = pcall(q.kevent, q, { { ident = s, filter = READ, flags = ADD } })
    assert.is_false(ok)
    assert.matches("changelist%[1%]%.ident: closed socket", tostring(msg))
  end)
end)
