-- Faults and load: descriptor exhaustion, a signal interrupting a wait,
-- many queues, a million knotes, garbage collection with events pending.
-- Allocation failure inside the engine and a descriptor closed during a
-- wait in another OS thread are C tests (tests/c/faults_test.c,
-- tests/c/threads_test.c): Lua cannot inject the one or run the other.
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")

local USER, TIMER, READ = kq.EVFILT_USER, kq.EVFILT_TIMER, kq.EVFILT_READ
local ADD, DELETE = kq.EV_ADD, kq.EV_DELETE
local E = kt.errno
kt.SIG = kt.signals

-- Lower the soft descriptor limit to `n` for the rest of the spec.
local function limit_fds(n)
  local old = assert(kt.setrlimit_nofile(n))
  h.defer(function() kt.setrlimit_nofile(old) end)
end

describe("descriptor exhaustion", function()
  it("makes kqueue() and the engine's timer EV_ADD fail with EMFILE, no leak", function()
    collectgarbage()
    local before = h.fdcount()
    local q = h.newq(h.defer)
    -- Fill every free number below the limit, leaving none.
    limit_fds(before + 40)
    local fillers = {}
    h.defer(function() for _, fd in ipairs(fillers) do kt.close(fd) end end)
    while true do
      local r, w = kt.pipe()
      if not r then break end
      fillers[#fillers + 1] = r
      fillers[#fillers + 1] = w
    end
    -- One number may be left when the last pipe needed two.
    while true do
      local r = kt.open("/dev/null", "r")
      if not r then break end
      fillers[#fillers + 1] = r
    end

    assert.os_error(E.EMFILE, kq.kqueue())
    local evs = {}
    if kq.backend == "linux" then
      -- The engine's timer needs the queue's timerfd: none can be made.
      assert.os_error(E.EMFILE, q:kevent({ { ident = 1, filter = TIMER, flags = ADD,
        data = 10 } }))
      assert.are.equal(1, q:kevent({ { ident = 2, filter = TIMER, flags = ADD, data = 10 } },
        evs, 2, 0))
      assert.evflags(kq.EV_ERROR, evs[1].flags)
      assert.are.equal(E.EMFILE, evs[1].data)
      -- No half-made knote stayed behind.
      assert.os_error(E.ENOENT, q:kevent({ { ident = 1, filter = TIMER, flags = DELETE } }))
      assert.os_error(E.ENOENT, q:kevent({ { ident = 2, filter = TIMER, flags = DELETE } }))
    end
    -- USER knotes need no descriptor and keep working.
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD },
      { ident = 1, filter = USER, fflags = kq.NOTE_TRIGGER } }))
    assert.are.equal(1, q:kevent(nil, evs, 2, 0))
    assert.are.equal(USER, evs[1].filter)

    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = DELETE } }))
    -- Room again: everything works, and the count is what it was.
    for _, fd in ipairs(fillers) do kt.close(fd) end
    fillers = {}
    assert.are.equal(0, q:kevent({ { ident = 1, filter = TIMER,
      flags = ADD + kq.EV_ONESHOT, data = 1 } }))
    assert.are.equal(1, q:kevent(nil, evs, 2, 5))
    assert.are.equal(TIMER, evs[1].filter)
    q:close()
    assert.are.equal(before, h.fdcount())
  end)
end)

describe("a signal interrupting a wait", function()
  it("is retried with the time left, and the changes are never applied twice", function()
    local q = h.newq(h.defer)
    local r, w = assert(kt.pipe())
    h.defer(function() kt.close(r); kt.close(w) end)
    assert(kt.signal(kt.SIG.SIGUSR2, "count"))
    h.defer(function() kt.signal(kt.SIG.SIGUSR2, "default") end)
    -- A knote the call deletes: applying the change twice would fail
    -- with ENOENT (and show as an error entry).
    assert.are.equal(0, q:kevent({ { ident = 5, filter = USER, flags = ADD } }))
    local parent = kt.getpid()
    local pid = assert(kt.fork())
    if pid == 0 then
      kt.sleep(0.1)
      kt.kill(parent, kt.SIG.SIGUSR2) -- first the signal,
      kt.sleep(0.05)
      kt.write(w, "x")                -- then the event that ends the wait
      kt._exit(0)
    end
    h.defer(function() kt.waitpid(pid) end)
    local evs = {}
    local n, msg, en = q:kevent({
      { ident = 5, filter = USER, flags = DELETE },
      { ident = r, filter = READ, flags = ADD },
    }, evs, 4, 30)
    assert.are.equal(1, n, tostring(msg) .. " " .. tostring(en))
    assert.are.equal(READ, evs[1].filter)
    assert.are.equal(r, evs[1].ident)
    assert.are.equal(1, kt.counter(kt.SIG.SIGUSR2))
    -- Deleted exactly once: it is gone now.
    assert.os_error(E.ENOENT, q:kevent({ { ident = 5, filter = USER, flags = DELETE } }))
  end)
end)

describe("many queues", function()
  it("1,000 open at once, then closed, leave no descriptor behind", function()
    collectgarbage()
    local before = h.fdcount()
    -- What one queue with a triggered USER knote costs: one descriptor on
    -- the BSDs, more on the engine (some made at the first kevent).
    local one = assert(kq.kqueue())
    assert.are.equal(0, one:kevent({ { ident = 1, filter = USER, flags = ADD },
      { ident = 1, filter = USER, fflags = kq.NOTE_TRIGGER } }))
    local cost = h.fdcount() - before
    one:close()
    assert.is_true(cost >= 1)
    local qs = {}
    local old = assert(kt.setrlimit_nofile(before + 1000 * cost + 100))
    h.defer(function()
      for _, q in ipairs(qs) do q:close() end
      kt.setrlimit_nofile(old)
    end)
    for i = 1, 1000 do
      qs[i] = assert(kq.kqueue())
      assert.are.equal(0, qs[i]:kevent({ { ident = i, filter = USER, flags = ADD },
        { ident = i, filter = USER, fflags = kq.NOTE_TRIGGER } }))
    end
    assert.are.equal(before + 1000 * cost, h.fdcount())
    local evs = {}
    for i = 1, 1000, 111 do
      assert.are.equal(1, qs[i]:kevent(nil, evs, 1, 0))
      assert.are.equal(i, evs[1].ident)
    end
    for i = 1, 1000 do qs[i]:close() end
    assert.are.equal(before, h.fdcount())
  end)
end)

describe("1,000,000 knotes in one queue", function()
  it("are added, triggered in part, collected and freed", function()
    collectgarbage()
    local before = h.fdcount()
    local q = h.newq(h.defer)
    local chunk = {}
    for i = 1, 4096 do
      chunk[i] = { ident = 0, filter = USER, flags = ADD + kq.EV_CLEAR + kq.EV_RECEIPT }
    end
    local evs = {}
    local total = 0
    for base = 0, 1000000 - 1, 4096 do
      local k = math.min(4096, 1000000 - base)
      for i = 1, k do chunk[i].ident = base + i end
      for i = k + 1, #chunk do chunk[i] = nil end
      -- With EV_RECEIPT and room, a whole chunk is one engine call.
      local n = q:kevent(chunk, evs, k, 0)
      assert.are.equal(k, n)
      assert.are.equal(0, evs[1].data)
      assert.are.equal(0, evs[k].data)
      total = total + k
    end
    assert.are.equal(1000000, total)
    local triggers = {}
    for i = 1, 10 do
      triggers[i] = { ident = i * 99991, filter = USER, fflags = kq.NOTE_TRIGGER }
    end
    assert.are.equal(0, q:kevent(triggers))
    local got = {}
    local n = q:kevent(nil, evs, 64, 0)
    assert.are.equal(10, n)
    for i = 1, n do got[evs[i].ident] = true end
    for i = 1, 10 do assert.is_true(got[i * 99991]) end
    q:close()
    assert.are.equal(before, h.fdcount())
  end)
end)

describe("garbage collection", function()
  it("of a queue with events pending closes it and frees its udata", function()
    collectgarbage()
    local before = h.fdcount()
    local weak = setmetatable({}, { __mode = "v" })
    do
      local q = assert(kq.kqueue())
      local udata = { "payload" }
      weak[1] = udata
      assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD, udata = udata },
        h.fire(1, udata), { ident = 2, filter = TIMER, flags = ADD, data = 1 } }))
      if kq.backend == "linux" then
        -- the queue and the timer's timerfd at least
        assert.is_true(h.fdcount() >= before + 2, "descriptors of the queue")
      end
    end
    collectgarbage()
    collectgarbage()
    assert.are.equal(before, h.fdcount())
    assert.is_nil(weak[1])
  end)

  it("while events are pending keeps each knote's udata alive until delivered", function()
    local q = h.newq(h.defer)
    local weak = setmetatable({}, { __mode = "v" })
    for i = 1, 100 do
      local u = { i }
      weak[i] = u
      assert.are.equal(0, q:kevent({ { ident = i, filter = USER,
        flags = ADD + kq.EV_ONESHOT, udata = u }, h.fire(i, u) }))
    end
    collectgarbage()
    collectgarbage()
    local evs = {}
    local seen = 0
    while true do
      local n = q:kevent(nil, evs, 16, 0)
      if n == 0 then break end
      for i = 1, n do
        assert.are.same({ evs[i].ident }, evs[i].udata)
        seen = seen + 1
      end
    end
    assert.are.equal(100, seen)
    -- ONESHOT: the knotes are gone, so are their anchors.
    evs = nil -- luacheck: ignore 311 (dropped so the GC can take the events)
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(weak))
  end)

  it("running inside a kevent call (finalisers using the queue) is safe", function()
    local q = h.newq(h.defer)
    assert.are.equal(0, q:kevent({ { ident = 1, filter = USER, flags = ADD },
      { ident = 1, filter = USER, fflags = kq.NOTE_TRIGGER } }))
    local ran = 0
    for _ = 1, 200 do
      h.finalised(function()
        ran = ran + 1
        pcall(q.kevent, q, nil, {}, 4, 0)
      end)
    end
    local evs = {}
    for _ = 1, 50 do
      local ok, n = pcall(q.kevent, q, nil, evs, 4, 0)
      if ok then assert.are.equal(1, n) end
      collectgarbage("step")
    end
    collectgarbage()
    assert.are.equal(200, ran)
    assert.are.equal(1, q:kevent(nil, evs, 4, 0))
  end)
end)
