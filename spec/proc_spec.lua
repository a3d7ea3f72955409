-- EVFILT_PROC: NOTE_EXIT with the wait(2) status, never reaping
-- (semantics §4.5, checklist #48-53).  Real child processes throughout.
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")
local finally = h.finally -- keeps every cleanup (busted keeps the last)
local socket = require("socket") -- gettime, for a "not early" check

local PROC = kq.EVFILT_PROC
local ADD, DELETE = kq.EV_ADD, kq.EV_DELETE
local EXIT = kq.NOTE_EXIT
local EXITED = kq.EV_CLEAR + kq.EV_ONESHOT + kq.EV_EOF -- flags of an exit

-- The wait(2) status of a child that called exit(code): code shifted 8.
local function exited(code) return code * 256 end

-- The parent's write ends of the children's pipes: a child closes them
-- all, or an older sibling's pipe would never reach EOF.
local held = {}

-- A child that exits with `code` once `go()` is called (it blocks reading a
-- pipe until then), or at once with `now`.  Returns pid, go.  The child is
-- reaped in `finally` if the test has not done so.
local function child(code, now)
  local r, w = assert(kt.pipe())
  local pid = assert(kt.fork())
  if pid == 0 then
    if not now then
      kt.close(w)
      for fd in pairs(held) do kt.close(fd) end
      kt.read(r, 1) -- returns at EOF: the parent closed its end
    end
    kt._exit(code or 0)
  end
  kt.close(r)
  held[w] = true
  local open = true
  local function go()
    if open then
      open = false
      held[w] = nil
      kt.close(w)
    end
  end
  finally(function()
    go()
    kt.kill(pid, kt.signals.SIGKILL)
    kt.waitpid(pid)
  end)
  return pid, go
end

-- Waits until pid is a zombie (exited, not reaped), by its /proc state, or
-- where there is no /proc (the BSDs) by NOTE_EXIT on a queue of its own.
local HAS_PROC = false
do
  local f = io.open("/proc/self/stat")
  if f then f:close(); HAS_PROC = true end
end

local function await_zombie(pid)
  if not HAS_PROC then
    local q = assert(kq.kqueue())
    local evs = {}
    local n = q:kevent({ { ident = pid, filter = PROC, flags = ADD, fflags = EXIT } },
      evs, 1, 5)
    q:close()
    if n == 1 then return end
    error("process " .. pid .. " did not exit")
  end
  for _ = 1, 500 do
    local f = io.open("/proc/" .. pid .. "/stat")
    if f then
      local s = f:read("*a")
      f:close()
      if s:match("%) (%a)") == "Z" then return end
    end
    kt.sleep(0.01)
  end
  error("process " .. pid .. " did not exit")
end

local function add(q, pid, fflags, flags, udata)
  return q:kevent({ { ident = pid, filter = PROC, flags = kq.bor(ADD, flags or 0),
    fflags = fflags, udata = udata } })
end

-- Exactly one event within 5 s; returns it.
local function one_event(q)
  local evs = {}
  assert.are.equal(1, q:kevent(nil, evs, 8, 5))
  return evs[1]
end

-- No event within secs, and no spinning meanwhile: os.clock is this
-- process's CPU time, which a blocked wait does not use whatever the load,
-- while a pidfd left armed in epoll would spin (on a busy machine the spin
-- gets only a share of a CPU, hence the low bar).
local function none(q, secs)
  secs = secs or 0.1
  local evs = {}
  local cpu0 = os.clock()
  assert.are.equal(0, q:kevent(nil, evs, 8, secs))
  local cpu = os.clock() - cpu0
  assert.is_true(cpu < secs / 10, "CPU used while waiting: " .. cpu)
end

local function assert_gone(q, pid)
  assert.os_error(kt.errno.ENOENT, q:kevent({ { ident = pid, filter = PROC,
    flags = DELETE } }))
end

describe("EVFILT_PROC #pidfd", function()
  it("reports exit(64) as NOTE_EXIT, status 16384, and leaves the child waitable", function()
    local q = h.newq(finally)
    local pid, go = child(64)
    local tag = {}
    assert.are.equal(0, add(q, pid, EXIT, 0, tag))
    none(q) -- nothing before the exit
    go()
    local ev = one_event(q)
    assert.are.equal(pid, ev.ident)
    assert.are.equal(PROC, ev.filter)
    assert.are.equal(EXIT, ev.fflags)
    assert.evflags(EXITED, ev.flags)
    assert.are.equal(16384, ev.data)
    assert.are.equal(tag, ev.udata)
    -- ONESHOT: the knote is gone.
    assert_gone(q, pid)
    -- Not reaped by the engine.
    local rpid, status = kt.waitpid(pid)
    assert.are.equal(pid, rpid)
    assert.are.equal(exited(64), status)
  end)

  it("gives status 0 for exit(0)", function()
    local q = h.newq(finally)
    local pid, go = child(0)
    assert.are.equal(0, add(q, pid, EXIT))
    go()
    local ev = one_event(q)
    assert.are.equal(EXIT, ev.fflags)
    assert.are.equal(0, ev.data)
    assert.are.same({ pid, 0 }, { kt.waitpid(pid) })
  end)

  it("gives the signal number for a process killed by SIGKILL", function()
    local q = h.newq(finally)
    local pid = child(0)
    assert.are.equal(0, add(q, pid, EXIT))
    assert.is_true(kt.kill(pid, kt.signals.SIGKILL))
    local ev = one_event(q)
    assert.are.equal(EXIT, ev.fflags)
    assert.evflags(EXITED, ev.flags)
    assert.are.equal(9, ev.data)
    assert.are.same({ pid, 9 }, { kt.waitpid(pid) })
  end)

  it("reports a zombie registered after its exit at once (FreeBSD)", function()
    local q = h.newq(finally)
    local pid = child(7, true)
    await_zombie(pid)
    local evs = {}
    assert.are.equal(1, q:kevent({ { ident = pid, filter = PROC, flags = ADD,
      fflags = EXIT } }, evs, 4, 0))
    assert.are.equal(pid, evs[1].ident)
    assert.are.equal(EXIT, evs[1].fflags)
    assert.evflags(EXITED, evs[1].flags)
    assert.are.equal(exited(7), evs[1].data)
    assert.are.same({ pid, exited(7) }, { kt.waitpid(pid) })
  end)

  it("gives ESRCH for a pid that does not exist", function()
    local q = h.newq(finally)
    local pid = assert(kt.fork())
    if pid == 0 then kt._exit(0) end
    assert.are.equal(pid, (kt.waitpid(pid))) -- reaped: the pid is free
    assert.os_error(kt.errno.ESRCH, add(q, pid, EXIT))
    local evs = {}
    assert.are.equal(1, q:kevent({ { ident = pid, filter = PROC, flags = ADD,
      fflags = EXIT } }, evs, 4, 0))
    assert.evflags(kq.EV_ERROR, evs[1].flags)
    assert.are.equal(kt.errno.ESRCH, evs[1].data)
    assert_gone(q, pid)
  end)

  if kq.backend == "linux" then
    it("rejects NOTE_FORK, NOTE_EXEC and NOTE_TRACK with ENOTSUP entries (engine)", function()
      local q = h.newq(finally)
      local me = kt.getpid()
      local changes = {}
      for i, note in ipairs({ kq.NOTE_FORK, kq.NOTE_EXEC, kq.NOTE_TRACK }) do
        changes[i] = { ident = me, filter = PROC, flags = ADD, fflags = kq.bor(EXIT, note) }
      end
      local evs = {}
      assert.are.equal(3, q:kevent(changes, evs, 8, 0))
      for i = 1, 3 do
        assert.are.equal(me, evs[i].ident)
        assert.evflags(kq.EV_ERROR, evs[i].flags)
        assert.are.equal(kt.errno.ENOTSUP, evs[i].data)
      end
      assert_gone(q, me)
      -- A modify asking for them fails too and leaves the knote as it was.
      local pid, go = child(1)
      assert.are.equal(0, add(q, pid, EXIT))
      assert.os_error(kt.errno.ENOTSUP, add(q, pid, EXIT + kq.NOTE_FORK))
      go()
      local ev = one_event(q)
      assert.are.equal(EXIT, ev.fflags)
      assert.are.equal(exited(1), ev.data)
    end)
  end

  it("reports nothing after a re-add without NOTE_EXIT, and drops the knote", function()
    local q = h.newq(finally)
    local pid, go = child(3)
    assert.are.equal(0, add(q, pid, EXIT))
    assert.are.equal(0, add(q, pid, 0)) -- parameters replaced
    go()
    await_zombie(pid)
    none(q, 0.2)
    assert_gone(q, pid)
    assert.are.same({ pid, exited(3) }, { kt.waitpid(pid) })
  end)

  it("keeps an exit that happens while disabled for EV_ENABLE", function()
    local q = h.newq(finally)
    local pid, go = child(5)
    assert.are.equal(0, add(q, pid, EXIT))
    -- Every change but a delete replaces the notes (FreeBSD), so
    -- EV_DISABLE and EV_ENABLE carry NOTE_EXIT again.
    assert.are.equal(0, q:kevent({ { ident = pid, filter = PROC, flags = kq.EV_DISABLE,
      fflags = EXIT } }))
    go()
    await_zombie(pid)
    none(q, 0.1)
    assert.are.equal(0, q:kevent({ { ident = pid, filter = PROC, flags = kq.EV_ENABLE,
      fflags = EXIT } }))
    local ev = one_event(q)
    assert.are.equal(EXIT, ev.fflags)
    assert.evflags(EXITED, ev.flags)
    assert.are.equal(exited(5), ev.data)
    assert_gone(q, pid)
  end)

  it("is registered disabled with EV_ADD|EV_DISABLE and delivers on EV_ENABLE (FreeBSD)", function()
    local q = h.newq(finally)
    local pid = child(6, true)
    await_zombie(pid)
    assert.are.equal(0, add(q, pid, EXIT, kq.EV_DISABLE))
    none(q, 0.1)
    assert.are.equal(0, q:kevent({ { ident = pid, filter = PROC, flags = kq.EV_ENABLE,
      fflags = EXIT } }))
    assert.are.equal(exited(6), one_event(q).data)
  end)

  it("with EV_DISPATCH delivers once and is gone (ONESHOT wins)", function()
    local q = h.newq(finally)
    local pid, go = child(2)
    assert.are.equal(0, add(q, pid, EXIT, kq.EV_DISPATCH))
    go()
    local ev = one_event(q)
    assert.evflags(EXITED + kq.EV_DISPATCH, ev.flags)
    assert.are.equal(exited(2), ev.data)
    assert_gone(q, pid)
    none(q, 0.1)
  end)

  it("with EV_RECEIPT gives a receipt, and the flag shows in the event (FreeBSD)", function()
    local q = h.newq(finally)
    local pid, go = child(4)
    local evs = {}
    assert.are.equal(1, q:kevent({ { ident = pid, filter = PROC,
      flags = ADD + kq.EV_RECEIPT, fflags = EXIT } }, evs, 4, 0))
    assert.are.equal(kq.EV_ERROR, kq.band(evs[1].flags, kq.EV_ERROR))
    assert.are.equal(0, evs[1].data)
    go()
    local ev = one_event(q)
    assert.evflags(EXITED + kq.EV_RECEIPT, ev.flags)
    assert.are.equal(exited(4), ev.data)
  end)

  it("delivers udata, replaced by a modify", function()
    local q = h.newq(finally)
    local pid, go = child(0)
    local a, b = {}, {}
    assert.are.equal(0, add(q, pid, EXIT, 0, a))
    assert.are.equal(0, add(q, pid, EXIT, 0, b))
    go()
    local ev = one_event(q)
    assert.is_true(rawequal(b, ev.udata))
  end)

  -- Two exited children, one event taken: the other exit is recorded and
  -- waits in the queue; a delete or a disable must drop it.
  local function two_exited(q)
    local p1 = child(1, true)
    local p2 = child(2, true)
    await_zombie(p1)
    await_zombie(p2)
    assert.are.equal(0, add(q, p1, EXIT))
    assert.are.equal(0, add(q, p2, EXIT))
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 5))
    local first = evs[1].ident
    return first == p1 and p2 or p1
  end

  it("drops a pending exit on EV_DELETE", function()
    local q = h.newq(finally)
    local other = two_exited(q)
    assert.are.equal(0, q:kevent({ { ident = other, filter = PROC, flags = DELETE } }))
    none(q, 0.1)
    assert_gone(q, other)
  end)

  it("drops a pending exit on EV_DISABLE, and EV_ENABLE brings it back", function()
    local q = h.newq(finally)
    local other = two_exited(q)
    assert.are.equal(0, q:kevent({ { ident = other, filter = PROC, flags = kq.EV_DISABLE,
      fflags = EXIT } }))
    none(q, 0.1)
    assert.are.equal(0, q:kevent({ { ident = other, filter = PROC, flags = kq.EV_ENABLE,
      fflags = EXIT } }))
    local ev = one_event(q)
    assert.are.equal(other, ev.ident)
    assert.are.equal(EXIT, ev.fflags)
  end)

  it("reports one exit to every queue watching the pid", function()
    local q1, q2 = h.newq(finally), h.newq(finally)
    local pid, go = child(9)
    assert.are.equal(0, add(q1, pid, EXIT))
    assert.are.equal(0, add(q2, pid, EXIT))
    go()
    for _, q in ipairs({ q1, q2 }) do
      local ev = one_event(q)
      assert.are.equal(pid, ev.ident)
      assert.are.equal(exited(9), ev.data)
    end
    assert.are.same({ pid, exited(9) }, { kt.waitpid(pid) })
  end)

  it("gives ENOENT for a delete of a missing knote", function()
    local q = h.newq(finally)
    assert_gone(q, kt.getpid())
    local evs = {}
    assert.are.equal(1, q:kevent({ { ident = kt.getpid(), filter = PROC,
      flags = DELETE } }, evs, 4, 0))
    assert.evflags(kq.EV_ERROR, evs[1].flags)
    assert.are.equal(kt.errno.ENOENT, evs[1].data)
  end)

  it("reports a grandchild's exit once, then stays quiet", function()
    local q = h.newq(finally)
    -- A child forks a grandchild that waits on `hold`, reports its pid on
    -- `info` and exits; the grandchild is then nobody's child of ours.
    local hr, hw = assert(kt.pipe())
    local ir, iw = assert(kt.pipe())
    local mid = assert(kt.fork())
    if mid == 0 then
      local g = kt.fork()
      if g == 0 then
        kt.close(hw)
        kt.read(hr, 1)
        kt._exit(5)
      end
      kt.write(iw, tostring(g) .. "\n")
      kt._exit(0)
    end
    kt.close(hr)
    kt.close(iw)
    finally(function() kt.close(hw) end)
    local gpid = tonumber(kt.read(ir, 64):match("%d+"))
    kt.close(ir)
    assert.are.same({ mid, 0 }, { kt.waitpid(mid) })
    assert.os_error(kt.errno.ECHILD, kt.waitpid(gpid))

    assert.are.equal(0, add(q, gpid, EXIT))
    kt.close(hw)
    local ev = one_event(q)
    assert.are.equal(gpid, ev.ident)
    assert.are.equal(EXIT, ev.fflags)
    assert.evflags(EXITED, ev.flags)
    -- Best effort: 0, or the status read while the zombie still exists.
    assert.is_true(ev.data == 0 or ev.data == exited(5), "data " .. ev.data)
    -- Once only, and no spinning: a 0.3 s wait returns 0, not early.
    local start = socket.gettime()
    none(q, 0.3)
    local elapsed = socket.gettime() - start
    assert.is_true(elapsed >= 0.29, "returned early: " .. elapsed)
    assert_gone(q, gpid)
  end)

  if kq.backend == "linux" then
    it("closes every pidfd: the descriptor count comes back (engine)", function()
      local pids, gos = {}, {}
      for i = 1, 3 do pids[i], gos[i] = child(i) end
      collectgarbage() -- earlier tests' garbage closes descriptors when collected
      collectgarbage()
      local before = h.fdcount()
      local q = assert(kq.kqueue())
      local base = h.fdcount() -- with the queue's own descriptors
      for i = 1, 3 do assert.are.equal(0, add(q, pids[i], EXIT)) end
      assert.are.equal(base + 3, h.fdcount()) -- one pidfd each
      -- an exit delivered, a knote deleted, a knote dropped at close
      -- (each go() closes the parent's end of that child's pipe: -1)
      gos[1]()
      assert.are.equal(pids[1], one_event(q).ident)
      assert.are.equal(base - 1 + 2, h.fdcount())
      assert.are.equal(0, q:kevent({ { ident = pids[2], filter = PROC, flags = DELETE } }))
      assert.are.equal(base - 1 + 1, h.fdcount())
      -- a knote dropped silently at exit (no NOTE_EXIT)
      assert.are.equal(0, add(q, pids[3], 0))
      gos[3]()
      await_zombie(pids[3])
      none(q, 0.05)
      assert.are.equal(base - 2, h.fdcount())
      -- and one still armed when the queue closes
      assert.are.equal(0, add(q, pids[2], EXIT))
      assert.are.equal(base - 2 + 1, h.fdcount())
      q:close()
      assert.are.equal(before - 2, h.fdcount())
    end)
  end

  it("leaves nothing armed when a fork child holds copies of the pidfds", function()
    local q = h.newq(finally)
    local pid, go = child(1)
    assert.are.equal(0, add(q, pid, EXIT))
    child(0) -- forked after the EV_ADD: holds a copy of the pidfd, exits later
    go()
    assert.are.equal(pid, one_event(q).ident)
    none(q, 0.2) -- a registration left in epoll would be reported, and spin
  end)

  if kq.backend == "linux" then
    it("gives pidfds that are close-on-exec (engine)", function()
      local q = h.newq(finally)
      local pid = child(0)
      -- The pidfd takes the lowest free number.
      local probe = assert(kt.open("/dev/null", "r"))
      kt.close(probe)
      assert.are.equal(0, add(q, pid, EXIT))
      local f = assert(io.open("/proc/self/fdinfo/" .. probe))
      local info = f:read("*a")
      f:close()
      assert.are.equal(tostring(pid), info:match("Pid:%s*(%-?%d+)"))
      assert.is_true(kt.is_cloexec(probe))
    end)
  end

  if kq.backend == "linux" then
    it("gives EMFILE when no descriptor is left for the pidfd (engine)", function()
      local q = h.newq(finally)
      local pid, go = child(8)
      local keep = h.use_up_fds(finally, 8)
      assert.os_error(kt.errno.EMFILE, add(q, pid, EXIT))
      assert_gone(q, pid)
      -- With a descriptor free again it works.
      kt.close(table.remove(keep))
      assert.are.equal(0, add(q, pid, EXIT))
      go()
      assert.are.equal(exited(8), one_event(q).data)
    end)
  end

  it("watches many children at once", function()
    local q = h.newq(finally)
    local n = 40
    local want = {}
    for i = 1, n do
      local pid = child(i, true)
      want[pid] = exited(i)
      assert.are.equal(0, add(q, pid, EXIT, 0, i))
    end
    local seen, count = {}, 0
    while count < n do
      local evs = {}
      local got = q:kevent(nil, evs, 16, 5)
      assert.is_true(got > 0, "missing exits")
      for j = 1, got do
        local ev = evs[j]
        assert.is_nil(seen[ev.ident], "pid reported twice")
        seen[ev.ident] = true
        assert.are.equal(want[ev.ident], ev.data)
        assert.are.equal(exited(ev.udata), ev.data)
        assert.evflags(EXITED, ev.flags)
      end
      count = count + got
    end
    none(q, 0.1)
  end)
end)
