-- Bad input: every argument of every function with a wrong type, idents,
-- filters, flags, nevents and timeouts out of range, a closed queue, a
-- queue in a fork child, changelists and eventlists with metatables, holes
-- and lying __len, a changelist failing in the middle, and event tables
-- kept from an earlier call.  The only acceptable outcomes are a result
-- or a clear error; each spec pins the exact one.
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")

local READ, USER, TIMER = kq.EVFILT_READ, kq.EVFILT_USER, kq.EVFILT_TIMER
local ADD, DELETE = kq.EV_ADD, kq.EV_DELETE

-- The message of the error fn raises.
local function err(fn, ...)
  local ok, msg = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(msg)
end

-- "bad argument #n to '<name>' (<what>)" for any name ending in fname.
local function badarg(n, fname, what)
  return "^bad argument #" .. n .. " to '" .. h.fn(fname) .. "' %(" ..
    what:gsub("[%(%)%.%%%+%-%*%?%[%]%^%$]", "%%%0") .. "%)$"
end

-- Whether USER knote `id` exists (EV_DELETE succeeds); not re-added.
local function gone(q, id)
  local n, _, en = q:kevent({ { ident = id, filter = USER, flags = DELETE } })
  return n == nil and en == kt.errno.ENOENT
end

describe("wrong argument types", function()
  local others = { nil, 1, "s", true, {}, function() end, io.stdout,
    coroutine.create(function() end) }
  -- Lua 5.3+ name a userdata by its metatable's __name (io's "FILE*").
  local names = { "nil", "number", "string", "boolean", "table", "function",
    _VERSION < "Lua 5.3" and "userdata" or "FILE*", "thread" }

  it("self of kevent, close, fileno and getfd must be a queue", function()
    for _, fname in ipairs({ "kevent", "close", "fileno", "getfd" }) do
      for i = 1, 8 do
        local msg = err(kq[fname], others[i])
        assert.matches("^bad argument #1 to '" .. h.fn("%a+") .. "' %(kq%.queue expected, got " ..
          names[i]:gsub("%*", "%%*") .. "%)$", msg)
      end
    end
  end)

  it("kq.type needs an argument and answers nil for a non-queue", function()
    assert.matches(badarg(1, "type", "value expected"), err(kq.type))
    for i = 2, 8 do
      assert.is_nil(kq.type(others[i]))
    end
  end)

  it("changelist must be nil or a table", function()
    local q = h.newq(h.defer)
    for i = 2, 8 do
      if names[i] ~= "table" then
        assert.matches(badarg(2, "kevent", "table expected, got " .. names[i]),
          err(kq.kevent, q, others[i]))
      end
    end
  end)

  it("eventlist must be nil or a table", function()
    local q = h.newq(h.defer)
    for i = 2, 8 do
      if names[i] ~= "table" then
        assert.matches(badarg(3, "kevent", "table expected, got " .. names[i]),
          err(kq.kevent, q, nil, others[i], 1, 0))
      end
    end
  end)

  it("nevents must be an integer", function()
    local q = h.newq(h.defer)
    assert.matches(badarg(4, "kevent", "number expected, got string"),
      err(kq.kevent, q, nil, {}, "x", 0))
    assert.matches(badarg(4, "kevent", "number expected, got table"),
      err(kq.kevent, q, nil, {}, {}, 0))
    assert.matches(badarg(4, "kevent", "number expected, got boolean"),
      err(kq.kevent, q, nil, {}, true, 0))
    assert.matches(badarg(4, "kevent", "number has no integer representation"),
      err(kq.kevent, q, nil, {}, 0 / 0, 0))
    assert.matches(badarg(4, "kevent", "number has no integer representation"),
      err(kq.kevent, q, nil, {}, math.huge, 0))
    assert.matches(badarg(4, "kevent", "nevents: non-negative integer expected"),
      err(kq.kevent, q, nil, {}, h.minint, 0))
  end)

  it("timeout must be a non-negative number", function()
    local q = h.newq(h.defer)
    assert.matches(badarg(5, "kevent", "number expected, got string"),
      err(kq.kevent, q, nil, {}, 1, "soon"))
    assert.matches(badarg(5, "kevent", "number expected, got table"),
      err(kq.kevent, q, nil, {}, 1, {}))
    assert.matches(badarg(5, "kevent", "number expected, got boolean"),
      err(kq.kevent, q, nil, {}, 1, false))
    assert.matches(badarg(5, "kevent", "timeout: non-negative number expected"),
      err(kq.kevent, q, nil, {}, 1, -0.001))
    assert.matches(badarg(5, "kevent", "timeout: non-negative number expected"),
      err(kq.kevent, q, nil, {}, 1, 0 / 0))
    assert.matches(badarg(5, "kevent", "timeout: non-negative number expected"),
      err(kq.kevent, q, nil, {}, 1, -math.huge))
  end)

  it("a bad timeout raises only after the changes were applied (FreeBSD order)", function()
    local q = h.newq(h.defer)
    err(kq.kevent, q, { { ident = 4, filter = USER, flags = ADD } }, {}, 1, -1)
    assert.is_true(h.user_exists(q, 4))
  end)
end)

describe("idents", function()
  it("of descriptor filters above INT_MAX give EBADF", function()
    local q = h.newq(h.defer)
    for _, id in ipairs({ 2 ^ 31, 2 ^ 32, h.maxint }) do
      assert.os_error(kt.errno.EBADF,
        q:kevent({ { ident = id, filter = READ, flags = ADD } }))
      local evs = {}
      assert.are.equal(1, q:kevent({ { ident = id, filter = READ, flags = ADD } }, evs, 1, 0))
      assert.evflags(kq.EV_ERROR, evs[1].flags)
      assert.are.equal(kt.errno.EBADF, evs[1].data)
      assert.are.equal(id, evs[1].ident)
    end
  end)

  it("of other filters may be any non-negative integer", function()
    local q = h.newq(h.defer)
    assert.are.equal(0, q:kevent({ { ident = h.maxint, filter = USER, flags = ADD } }))
    assert.are.equal(0, q:kevent({ { ident = h.maxint, filter = USER,
      fflags = kq.NOTE_TRIGGER } }))
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 0))
    assert.are.equal(h.maxint, evs[1].ident)
  end)

  it("must not be negative, nor a float without integer value", function()
    local q = h.newq(h.defer)
    assert.matches("changelist%[1%]%.ident: out of range",
      err(kq.kevent, q, { { ident = -1, filter = USER, flags = ADD } }))
    assert.matches("changelist%[1%]%.ident: out of range",
      err(kq.kevent, q, { { ident = h.minint, filter = USER, flags = ADD } }))
    assert.matches("changelist%[1%]%.ident: number has no integer representation",
      err(kq.kevent, q, { { ident = 2 ^ 64, filter = USER, flags = ADD } }))
    assert.matches("changelist%[1%]%.ident: number has no integer representation",
      err(kq.kevent, q, { { ident = 0.5, filter = USER, flags = ADD } }))
  end)

  -- Where numbers are doubles an integer above 2^53 may be a rounded one:
  -- kq refuses it rather than pass on a value nobody wrote.
  if not rawget(math, "type") then
    it("and data and nevents beyond 2^53 are an error, not a rounding (Lua 5.1, 5.2, LuaJIT)",
      function()
        local q = h.newq(h.defer)
        for _, v in ipairs({ 2 ^ 53 + 2, 2 ^ 60, -(2 ^ 53 + 2) }) do
          assert.matches("changelist%[1%]%.ident: out of range",
            err(kq.kevent, q, { { ident = v, filter = USER, flags = ADD } }))
          assert.matches("changelist%[1%]%.data: out of range",
            err(kq.kevent, q, { { ident = 1, filter = USER, flags = ADD, data = v } }))
        end
        assert.matches(badarg(4, "kevent", "out of range"),
          err(kq.kevent, q, nil, {}, 2 ^ 53 + 2, 0))
        assert.is_true(gone(q, 1))
        -- 2^53 - 1 (h.maxint) is taken, as an ident and as data.
        assert.are.equal(0, q:kevent({ { ident = h.maxint, filter = USER, flags = ADD,
          data = h.maxint } }))
        assert.is_false(gone(q, h.maxint))
      end)
  end
end)

describe("filters", function()
  -- Where filters are FreeBSD's (all negative): NetBSD's EVFILT_READ is 0
  -- (platform_spec.lua), macOS and OpenBSD reject 0 (doc/portability.md).
  if h.freebsd_kevent then
    it("0, no filter, is skipped: no entry even with EV_RECEIPT, later changes applied (FreeBSD)", function()
      local q = h.newq(h.defer)
      local evs = {}
      assert.are.equal(1, q:kevent({
        { ident = 1, filter = 0, flags = ADD + kq.EV_RECEIPT },
        { ident = 2, filter = USER, flags = ADD + kq.EV_RECEIPT },
      }, evs, 4, 0))
      assert.are.equal(2, evs[1].ident)
      assert.are.equal(0, evs[1].data)
    end)
  end

  it("outside FreeBSD's range give EINVAL (FreeBSD)", function()
    local q = h.newq(h.defer)
    for _, f in ipairs({ -14, -100, 1, 7, 32767, -32768 }) do
      assert.os_error(kt.errno.EINVAL, q:kevent({ { ident = 1, filter = f, flags = ADD } }))
    end
  end)

  if kq.backend == "linux" then
    it("FreeBSD has but the engine lacks give ENOTSUP (engine)", function()
      local q = h.newq(h.defer)
      for _, f in ipairs({ -3, -8, -9, -10, -12, -13 }) do
        assert.os_error(kt.errno.ENOTSUP, q:kevent({ { ident = 1, filter = f, flags = ADD } }))
      end
    end)
  end

  it("beyond a short integer are an argument error (FreeBSD)", function()
    local q = h.newq(h.defer)
    assert.matches("changelist%[1%]%.filter: out of range",
      err(kq.kevent, q, { { ident = 1, filter = 32768 } }))
    assert.matches("changelist%[1%]%.filter: out of range",
      err(kq.kevent, q, { { ident = 1, filter = -32769 } }))
  end)
end)

describe("flags", function()
  if kq.backend == "linux" then
    it("unknown bits are ignored and never show in events (engine)", function()
      local q = h.newq(h.defer)
      assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD + 0x0c00 } }))
      assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, fflags = kq.NOTE_TRIGGER } }))
      local evs = {}
      assert.are.equal(1, q:kevent(nil, evs, 1, 0))
      assert.evflags(0, evs[1].flags)
    end)
  end

  it("EV_ERROR and EV_EOF given on input are discarded (EV_SYSFLAGS)", function()
    local q = h.newq(h.defer)
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER,
      flags = ADD + kq.EV_ERROR + kq.EV_EOF } }))
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, fflags = kq.NOTE_TRIGGER } }))
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 0))
    assert.evflags(0, evs[1].flags)
  end)

  it("contradictory pairs give EINVAL and change nothing", function()
    local q = h.newq(h.defer)
    assert.os_error(kt.errno.EINVAL, q:kevent({ { ident = 1, filter = USER,
      flags = ADD + kq.EV_ENABLE + kq.EV_DISABLE } }))
    assert.is_true(gone(q, 1))
    if kq.EV_KEEPUDATA then
      assert.os_error(kt.errno.EINVAL, q:kevent({ { ident = 1, filter = USER,
        flags = ADD + kq.EV_KEEPUDATA } }))
      assert.is_true(gone(q, 1))
    end
  end)

  it("unknown timer fflags give EINVAL (FreeBSD)", function()
    local q = h.newq(h.defer)
    assert.os_error(kt.errno.EINVAL, q:kevent({ { ident = 1, filter = TIMER, flags = ADD,
      fflags = 0x20, data = 10 } }))
    assert.os_error(kt.errno.EINVAL, q:kevent({ { ident = 1, filter = TIMER, flags = ADD,
      data = -1 } }))
  end)
end)

describe("nevents", function()
  it("of 1e9 neither allocates for it nor fails", function()
    local q = h.newq(h.defer)
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD },
      { ident = 1, filter = USER, fflags = kq.NOTE_TRIGGER } }))
    collectgarbage()
    local before = collectgarbage("count")
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1e9, 0))
    assert.are.equal(1, q:kevent(nil, evs, h.maxint, 0))
    collectgarbage()
    -- kilobytes: a buffer sized by nevents would be gigabytes
    assert.is_true(collectgarbage("count") - before < 1024)
    assert.is_nil(evs[2])
  end)

  it("more than the ready events returns what is ready", function()
    local q = h.newq(h.defer)
    local changes = {}
    for i = 1, 5000 do
      changes[#changes + 1] = { ident = i, filter = USER, flags = ADD + kq.EV_CLEAR }
      changes[#changes + 1] = { ident = i, filter = USER, fflags = kq.NOTE_TRIGGER }
    end
    assert.are.equal(0, q:kevent(changes))
    local evs, total = {}, 0
    -- At most the binding's batch per call; every event comes, none twice.
    local seen = {}
    for _ = 1, 10 do
      local n = q:kevent(nil, evs, 1e9, 0)
      for i = 1, n do
        assert.is_nil(seen[evs[i].ident])
        seen[evs[i].ident] = true
      end
      total = total + n
      if total >= 5000 then break end
    end
    assert.are.equal(5000, total)
  end)
end)

describe("a huge timeout", function()
  it("of math.huge or 1e300 is clamped to forever, not rejected", function()
    local q = h.newq(h.defer)
    for _, t in ipairs({ math.huge, 1e300, 2 ^ 40 }) do
      assert.are.equal(0, q:kevent({ { ident = 1, filter = TIMER,
        flags = ADD + kq.EV_ONESHOT, data = 20 } }))
      local evs = {}
      assert.are.equal(1, q:kevent(nil, evs, 1, t))
      assert.are.equal(TIMER, evs[1].filter)
    end
  end)
end)

describe("a closed queue", function()
  it("raises for every use but close and type", function()
    local q = assert(kq.kqueue())
    assert.is_true(q:close())
    for _, fn in ipairs({
      function() return q:kevent() end,
      function() return q:kevent(nil, {}, 1, 0) end,
      function() return q:fileno() end,
      function() return q:getfd() end,
    }) do
      assert.matches("attempt to use a closed kqueue", err(fn))
    end
    assert.is_true(q:close())
    assert.are.equal("closed kqueue", kq.type(q))
    assert.are.equal("kqueue (closed)", tostring(q))
  end)
end)

describe("a queue in a fork child", function()
  it("is closed there, leaves the parent's descriptor alone, and keeps working in the parent",
    function()
      local q = h.newq(h.defer)
      assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD } }))
      local fd = q:fileno()
      local pid = assert(kt.fork())
      if pid == 0 then
        local code = 0
        local ok, msg = pcall(q.kevent, q, nil, {}, 1, 0)
        if ok or not tostring(msg):match("closed kqueue") then code = 1 end
        if kq.type(q) ~= "closed kqueue" then code = code + 2 end
        -- The engine, like FreeBSD, leaves the child no such descriptor.
        if kq.backend == "linux" and kt.is_cloexec(fd) ~= nil then code = code + 16 end
        -- Whatever holds the number in the child (the system may have
        -- kept the queue's descriptor, or not) stays open.
        if kt.is_cloexec(fd) == nil then assert(kt.dup2(0, fd)) end
        q:close() -- must not close that number
        if kt.is_cloexec(fd) == nil then code = code + 4 end
        local q2 = kq.kqueue()
        if not q2 or q2:kevent({ { ident = 1, filter = USER, flags = ADD } }) ~= 0 then
          code = code + 8
        end
        kt._exit(code)
      end
      local _, status = assert(kt.waitpid(pid))
      assert.are.equal(0, status)
      assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, fflags = kq.NOTE_TRIGGER } }))
      local evs = {}
      assert.are.equal(1, q:kevent(nil, evs, 1, 0))
    end)
end)

describe("changelists with metatables", function()
  it("are read with raw access: a proxy with __index and __len applies nothing", function()
    local q = h.newq(h.defer)
    local real = { { ident = 1, filter = USER, flags = ADD } }
    local proxy = setmetatable({}, {
      __index = real,
      __len = function() return 1 end,
    })
    assert.are.equal(0, q:kevent(proxy))
    assert.is_true(gone(q, 1))
  end)

  it("ignore a __len that lies, using the raw length", function()
    local q = h.newq(h.defer)
    local list = setmetatable({ { ident = 1, filter = USER, flags = ADD } },
      { __len = function() return 100 end })
    assert.are.equal(0, q:kevent(list))
    assert.is_true(h.user_exists(q, 1))
    local short = setmetatable({ { ident = 2, filter = USER, flags = ADD },
      { ident = 3, filter = USER, flags = ADD } }, { __len = function() return 0 end })
    assert.are.equal(0, q:kevent(short))
    assert.is_true(h.user_exists(q, 2))
    assert.is_true(h.user_exists(q, 3))
  end)

  it("with a hole raise, naming the entry, and apply nothing", function()
    local q = h.newq(h.defer)
    local list = { { ident = 1, filter = USER, flags = ADD },
      { ident = 2, filter = USER, flags = ADD },
      { ident = 3, filter = USER, flags = ADD } }
    list[2] = nil
    assert.are.equal(3, h.rawlen(list))
    assert.matches("changelist%[2%]: table expected, got nil", err(kq.kevent, q, list))
    assert.is_true(gone(q, 1))
    assert.is_true(gone(q, 3))
  end)

  it("may hold read-only proxies as changes: fields come through __index", function()
    local q = h.newq(h.defer)
    local change = setmetatable({}, {
      __index = { ident = 9, filter = USER, flags = ADD, udata = "proxied" },
      __newindex = function() error("read-only") end,
    })
    assert.are.equal(0, q:kevent({ change }))
    assert.are.equal(0, q:kevent({ h.fire(9, "proxied") }))
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 0))
    assert.are.equal("proxied", evs[1].udata)
  end)

  it("whose __index raises propagate the error and apply nothing", function()
    local q = h.newq(h.defer)
    local bad = setmetatable({ ident = 2, filter = USER },
      { __index = function(_, k) if k == "flags" then error("no flags here") end end })
    local msg = err(kq.kevent, q, { { ident = 1, filter = USER, flags = ADD }, bad })
    assert.matches("no flags here", msg)
    assert.is_true(gone(q, 1))
    assert.is_true(gone(q, 2))
  end)

  it("whose metamethod uses the same queue complete both calls", function()
    local q = h.newq(h.defer)
    local sneaky = setmetatable({ ident = 1, filter = USER }, {
      __index = function(_, k)
        if k == "flags" then q:kevent({ { ident = 5, filter = USER, flags = ADD } }) return ADD end
      end,
    })
    assert.are.equal(0, q:kevent({ sneaky, sneaky }))
    assert.are.equal("kqueue", kq.type(q))
    assert.is_false(gone(q, 1))
    assert.is_false(gone(q, 5))
  end)

  it("whose metamethod closes the queue end the call with EBADF", function()
    local q = assert(kq.kqueue())
    local closer = setmetatable({ ident = 1, filter = USER }, {
      __index = function(_, k) if k == "flags" then q:close() return ADD end end,
    })
    assert.os_error(kt.errno.EBADF, q:kevent({ closer, closer }))
    assert.are.equal("closed kqueue", kq.type(q))
  end)
end)

describe("eventlists with metatables and holes", function()
  it("are written raw: __newindex and __index never run", function()
    local q = h.newq(h.defer)
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD },
      { ident = 1, filter = USER, fflags = kq.NOTE_TRIGGER } }))
    local evs = setmetatable({}, {
      __newindex = function() error("read-only") end,
      __index = function() error("no reads") end,
      __len = function() return 1000 end,
    })
    assert.are.equal(1, q:kevent(nil, evs, 4, 0))
    assert.are.equal(1, rawget(evs, 1).ident)
    assert.is_nil(rawget(evs, 2))
  end)

  it("with holes and odd values get fresh tables where needed", function()
    local q = h.newq(h.defer)
    local changes = {}
    for i = 1, 3 do
      changes[#changes + 1] = { ident = i, filter = USER, flags = ADD }
      changes[#changes + 1] = { ident = i, filter = USER, fflags = kq.NOTE_TRIGGER }
    end
    assert.are.equal(0, q:kevent(changes))
    local evs = { [1] = 42, [3] = "x", [5] = "beyond" }
    assert.are.equal(3, q:kevent(nil, evs, 3, 0))
    for i = 1, 3 do
      assert.are.equal("table", type(evs[i]))
      assert.are.equal(USER, evs[i].filter)
    end
    assert.are.equal("beyond", evs[5])
  end)

  it("an entry table with a protected metatable is still written", function()
    local q = h.newq(h.defer)
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD },
      { ident = 1, filter = USER, fflags = kq.NOTE_TRIGGER } }))
    local entry = setmetatable({}, { __metatable = "locked",
      __newindex = function() error("read-only") end })
    local evs = { entry }
    assert.are.equal(1, q:kevent(nil, evs, 1, 0))
    assert.are.equal(entry, evs[1])
    assert.are.equal(1, rawget(entry, "ident"))
    assert.are.equal(0, rawget(entry, "data"))
  end)
end)

describe("a changelist failing in the middle", function()
  local function list()
    return {
      { ident = 1, filter = USER, flags = ADD },
      { ident = 2, filter = USER, flags = DELETE }, -- ENOENT
      { ident = 3, filter = USER, flags = ADD },
    }
  end

  it("with nevents 0 returns the error; earlier changes stay, later ones are not applied",
    function()
      local q = h.newq(h.defer)
      assert.os_error(kt.errno.ENOENT, q:kevent(list()))
      assert.is_true(h.user_exists(q, 1))
      assert.is_true(gone(q, 3))
    end)

  it("with room writes an entry for the failure and applies the rest", function()
    local q = h.newq(h.defer)
    local evs = {}
    assert.are.equal(1, q:kevent(list(), evs, 4, 0))
    assert.evflags(kq.EV_ERROR, evs[1].flags)
    assert.are.equal(2, evs[1].ident)
    assert.are.equal(kt.errno.ENOENT, evs[1].data)
    assert.is_true(h.user_exists(q, 1))
    assert.is_true(h.user_exists(q, 3))
  end)

  it("a failed re-add keeps the knote's udata (no half-applied change)", function()
    local q = h.newq(h.defer)
    assert.are.equal(0, q:kevent({ { ident = 1, filter = TIMER, flags = ADD, data = 10,
      udata = "first" } }))
    assert.os_error(kt.errno.EINVAL, q:kevent({ { ident = 1, filter = TIMER, flags = ADD,
      data = -1, udata = "second" } }))
    collectgarbage()
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 5))
    assert.are.equal("first", evs[1].udata)
  end)
end)

describe("event tables kept from an earlier call", function()
  it("stay as they were when a new eventlist is passed", function()
    local q = h.newq(h.defer)
    local one = { 1 }
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD, udata = one },
      h.fire(1, one) }))
    one = nil -- luacheck: ignore 311
    local first = {}
    assert.are.equal(1, q:kevent(nil, first, 1, 0))
    local kept = first[1]
    local udata = kept.udata
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = DELETE } }))
    collectgarbage()
    assert.are.equal(0, q:kevent({ { ident = 2, filter = USER, flags = ADD, udata = "two" },
      h.fire(2, "two") }))
    local second = {}
    assert.are.equal(1, q:kevent(nil, second, 1, 0))
    assert.are.equal(1, kept.ident)
    assert.are.equal(udata, kept.udata)
    assert.are.same({ 1 }, kept.udata) -- the udata survives its knote
    assert.are.equal(2, second[1].ident)
  end)

  it("are reused, all six fields overwritten, when the same eventlist is passed", function()
    local q = h.newq(h.defer)
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD + kq.EV_ONESHOT,
      udata = "one" }, h.fire(1, "one") }))
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 0))
    local kept = evs[1]
    assert.are.equal(0, q:kevent({ { ident = 2, filter = USER, flags = ADD },
      { ident = 2, filter = USER, fflags = kq.NOTE_TRIGGER } }))
    assert.are.equal(1, q:kevent(nil, evs, 1, 0))
    assert.are.equal(kept, evs[1])
    assert.are.equal(2, kept.ident)
    assert.is_nil(kept.udata)
  end)
end)

describe("no descriptor leaks", function()
  it("after all of the bad calls above on one queue", function()
    h.no_fd_leak(function()
      local q = assert(kq.kqueue())
      pcall(kq.kevent, q, { { ident = -1, filter = USER } })
      pcall(kq.kevent, q, 5)
      pcall(kq.kevent, q, nil, {}, 1, -1)
      q:kevent({ { ident = 2 ^ 40, filter = READ, flags = ADD } })
      q:kevent({ { ident = 1, filter = -100, flags = ADD } })
      q:close()
    end)
  end)
end)
