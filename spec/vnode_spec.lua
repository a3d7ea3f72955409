-- EVFILT_VNODE on real files and directories in a private temporary
-- directory (semantics §4.6, §6.2, §6.3; checklist items 54-63).  The
-- engine reads inotify; a truncate shows as WRITE (+EXTEND) there, as the
-- semantics document says for Linux, so it is not tested as ATTRIB.
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")

local VNODE = kq.EVFILT_VNODE
local EV_ADD, EV_DELETE, EV_ENABLE, EV_DISABLE = kq.EV_ADD, kq.EV_DELETE,
  kq.EV_ENABLE, kq.EV_DISABLE
local EV_CLEAR, EV_ONESHOT, EV_DISPATCH, EV_RECEIPT, EV_ERROR = kq.EV_CLEAR,
  kq.EV_ONESHOT, kq.EV_DISPATCH, kq.EV_RECEIPT, kq.EV_ERROR
local DELETE, WRITE, EXTEND, ATTRIB, LINK, RENAME = kq.NOTE_DELETE,
  kq.NOTE_WRITE, kq.NOTE_EXTEND, kq.NOTE_ATTRIB, kq.NOTE_LINK, kq.NOTE_RENAME
local ALL = DELETE + WRITE + EXTEND + ATTRIB + LINK + RENAME
local E = kt.errno

-- A fresh directory named after os.tmpname(); what is made in it (under
-- the names given to track) is removed at the end, then the directory.
local function tmpdir(defer)
  local base = os.tmpname()
  os.remove(base)
  assert(kt.mkdir(base))
  local names = {}
  defer(function()
    for i = #names, 1, -1 do os.remove(names[i]) end
    os.remove(base)
  end)
  local d = {}
  function d.path(name)
    local p = base .. "/" .. name
    names[#names + 1] = p
    return p
  end
  -- Create (or truncate) a file, optionally with content; returns fd, path.
  function d.file(name, content)
    local p = d.path(name)
    local fd = assert(kt.open(p, "rw", true))
    defer(function() kt.close(fd) end)
    assert(kt.ftruncate(fd, 0))
    if content then assert.are.equal(#content, kt.write(fd, content)) end
    return fd, p
  end
  -- Open an existing path read-only (a directory works too).
  function d.open(p)
    local fd = assert(kt.open(p, "r"))
    defer(function() kt.close(fd) end)
    return fd
  end
  return d
end

local function ch(ident, flags, fflags, udata)
  return { ident = ident, filter = VNODE, flags = flags, fflags = fflags or 0,
    data = 0, udata = udata }
end

-- Events of one poll (or a wait of `timeout` s), as plain tables.
local function wait(q, timeout, nevents)
  return h.wait(q, nevents or 16, timeout)
end

-- Exactly one VNODE event for fd; returns it.
local function one(q, fd)
  local evs = wait(q)
  assert.are.equal(1, #evs, "expected one event")
  assert.are.equal(fd, evs[1].ident)
  assert.are.equal(VNODE, evs[1].filter)
  assert.are.equal(0, evs[1].data)
  return evs[1]
end

local function none(q)
  assert.are.same({}, wait(q))
end

-- Runs fn in a forked child, which leaves with _exit (0 when fn returned).
local function child(fn)
  local pid = assert(kt.fork())
  if pid == 0 then
    local ok = pcall(fn)
    kt._exit(ok and 0 or 1)
  end
  return pid
end

local function reap(pid)
  local _, status = assert(kt.waitpid(pid))
  return status
end

describe("EVFILT_VNODE", function()
  describe("notes", function()
    it("append gives WRITE|EXTEND with data 0, once with EV_CLEAR", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd = d.file("f", "0123456789")
      h.apply(q, ch(fd, EV_ADD + EV_CLEAR, WRITE + EXTEND))
      none(q)
      assert(kt.write(fd, "more"))
      local e = one(q, fd)
      assert.are.equal(WRITE + EXTEND, e.fflags)
      assert.evflags(EV_CLEAR, e.flags)
      none(q)
    end)

    it("a same-size overwrite gives WRITE only", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd = d.file("f", "0123456789")
      h.apply(q, ch(fd, EV_ADD + EV_CLEAR, WRITE + EXTEND))
      assert(kt.lseek(fd, 2, "set"))
      assert(kt.write(fd, "ab"))
      assert.are.equal(WRITE, one(q, fd).fflags)
    end)

    it("fchmod gives ATTRIB", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd = d.file("f", "x")
      h.apply(q, ch(fd, EV_ADD + EV_CLEAR, ALL))
      assert(kt.fchmod(fd, tonumber("600", 8)))
      assert.are.equal(ATTRIB, one(q, fd).fflags)
    end)

    it("rename gives RENAME", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd, p = d.file("f", "x")
      h.apply(q, ch(fd, EV_ADD + EV_CLEAR, ALL))
      assert(kt.rename(p, d.path("g")))
      assert.are.equal(RENAME, one(q, fd).fflags)
    end)

    it("unlink gives DELETE", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd, p = d.file("f", "x")
      h.apply(q, ch(fd, EV_ADD + EV_CLEAR, ALL))
      assert(kt.unlink(p))
      assert.are.equal(DELETE, one(q, fd).fflags)
    end)

    it("link gives LINK", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd, p = d.file("f", "x")
      h.apply(q, ch(fd, EV_ADD + EV_CLEAR, ALL))
      assert(kt.link(p, d.path("second")))
      assert.are.equal(LINK, one(q, fd).fflags)
    end)

    it("rename A over B: B gets DELETE, A gets RENAME", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local a, pa = d.file("a", "a")
      local b, pb = d.file("b", "b")
      h.apply(q, ch(a, EV_ADD + EV_CLEAR, ALL), ch(b, EV_ADD + EV_CLEAR, ALL))
      assert(kt.rename(pa, pb))
      local got = {}
      for _, e in ipairs(wait(q)) do got[e.ident] = e.fflags end
      assert.are.same({ [a] = RENAME, [b] = DELETE }, got)
    end)

    it("a directory gets WRITE for a new file, WRITE|LINK for mkdir", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local dp = d.path("dir")
      assert(kt.mkdir(dp))
      local dfd = d.open(dp)
      h.apply(q, ch(dfd, EV_ADD + EV_CLEAR, ALL))
      d.file("dir/file", "x")
      assert.are.equal(WRITE, one(q, dfd).fflags)
      assert(kt.mkdir(d.path("dir/sub")))
      assert.are.equal(WRITE + LINK, one(q, dfd).fflags)
    end)

    it("unrequested notes are not reported: DELETE only, file written", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd, p = d.file("f", "x")
      h.apply(q, ch(fd, EV_ADD + EV_CLEAR, DELETE))
      assert(kt.write(fd, "more"))
      assert(kt.fchmod(fd, tonumber("600", 8)))
      none(q)
      assert(kt.unlink(p)) -- the knote is alive: its note comes
      assert.are.equal(DELETE, one(q, fd).fflags)
    end)

    it("two changes before a collection give one ORed event with EV_CLEAR", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd = d.file("f", "x")
      h.apply(q, ch(fd, EV_ADD + EV_CLEAR, ALL))
      assert(kt.write(fd, "1"))
      assert(kt.write(fd, "2"))
      assert(kt.fchmod(fd, tonumber("600", 8)))
      assert.are.equal(WRITE + EXTEND + ATTRIB, one(q, fd).fflags)
      none(q)
    end)

    it("without EV_CLEAR the notes come back on every call", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd = d.file("f", "x")
      h.apply(q, ch(fd, EV_ADD, WRITE))
      none(q)
      assert(kt.write(fd, "1"))
      for _ = 1, 3 do
        local e = one(q, fd)
        assert.are.equal(WRITE, e.fflags)
        assert.evflags(0, e.flags)
      end
    end)

    if kq.NOTE_OPEN and kq.NOTE_CLOSE then
      it("reports OPEN and CLOSE when another process opens and closes", function()
        local defer = h.closer()
        local d = tmpdir(defer)
        local q = h.newq(defer)
        local fd, p = d.file("f", "x")
        h.apply(q, ch(fd, EV_ADD + EV_CLEAR, kq.NOTE_OPEN + kq.NOTE_CLOSE))
        none(q)
        local pid = child(function()
          local r = assert(kt.open(p, "r"))
          kt.close(r)
        end)
        assert.are.equal(0, reap(pid))
        assert.are.equal(kq.NOTE_OPEN + kq.NOTE_CLOSE, one(q, fd).fflags)
      end)
    end

    it("a blocking wait for WRITE ignores an open and close, returns at the write", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd, p = d.file("f", "x")
      h.apply(q, ch(fd, EV_ADD + EV_CLEAR, WRITE))
      local pid = child(function()
        kt.sleep(0.05)
        local r = assert(kt.open(p, "r"))
        kt.close(r)
        kt.sleep(0.1)
        local w = assert(kt.open(p, "a"))
        kt.write(w, "y")
        kt.close(w)
      end)
      defer(function() reap(pid) end)
      local evs = wait(q, 5)
      assert.are.equal(1, #evs)
      assert.are.equal(WRITE, evs[1].fflags)
      -- the write happened before the wait returned
      assert.are.equal(2, #assert(kt.read(d.open(p), 100)))
    end)
  end)

  describe("descriptors", function()
    it("a pipe or a socket gives EINVAL", function()
      local defer = h.closer()
      local q = h.newq(defer)
      local r, w = assert(kt.pipe())
      defer(function() kt.close(r); kt.close(w) end)
      local a, b = assert(kt.socketpair("stream"))
      defer(function() kt.close(a); kt.close(b) end)
      for _, fd in ipairs({ r, w, a }) do
        assert.os_error(E.EINVAL, q:kevent({ ch(fd, EV_ADD, WRITE) }))
      end
    end)

    it("an unlinked open file can be watched", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd, p = d.file("f", "x")
      assert(kt.unlink(p))
      h.apply(q, ch(fd, EV_ADD + EV_CLEAR, WRITE + EXTEND))
      assert(kt.write(fd, "more"))
      assert.are.equal(WRITE + EXTEND, one(q, fd).fflags)
    end)

    it("1000 knotes in one queue add at most two descriptors", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local fds = {}
      for i = 1, 1000 do fds[i] = d.file("m" .. i) end
      local q = h.newq(defer)
      local before = kt.fdcount()
      local changes = {}
      for i = 1, 1000 do changes[i] = ch(fds[i], EV_ADD + EV_CLEAR, WRITE) end
      assert.are.equal(0, q:kevent(changes))
      -- at most two of the engine's own (none on the BSDs)
      assert.is_true(kt.fdcount() - before <= 2)
      for i = 1, 1000, 100 do assert(kt.write(fds[i], "x")) end
      local seen = {}
      for _, e in ipairs(wait(q, 0, 64)) do seen[#seen + 1] = e.ident end
      table.sort(seen)
      local want = {}
      for i = 1, 1000, 100 do want[#want + 1] = fds[i] end
      table.sort(want)
      assert.are.same(want, seen)
    end)

    it("leaves no descriptor behind once the queue is closed", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local fd = d.file("f", "x")
      h.no_fd_leak(function()
        for _ = 1, 20 do
          local q = assert(kq.kqueue())
          h.apply(q, ch(fd, EV_ADD + EV_CLEAR, ALL))
          assert(kt.write(fd, "y"))
          assert.are.equal(1, #wait(q))
          q:close()
        end
      end)
    end)
  end)

  describe("flags", function()
    it("EV_ADD registers, EV_DELETE removes, a missing knote gives ENOENT", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd = d.file("f", "x")
      h.apply(q, ch(fd, EV_ADD + EV_CLEAR, WRITE))
      none(q)
      h.apply(q, ch(fd, EV_DELETE))
      assert(kt.write(fd, "y"))
      none(q)
      assert.os_error(E.ENOENT, q:kevent({ ch(fd, EV_DELETE) }))
    end)

    it("what happens while disabled is delivered after EV_ENABLE", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd = d.file("f", "x")
      h.apply(q, ch(fd, EV_ADD + EV_CLEAR, WRITE + ATTRIB))
      h.apply(q, ch(fd, EV_DISABLE, WRITE + ATTRIB))
      assert(kt.write(fd, "y"))
      none(q)
      assert(kt.fchmod(fd, tonumber("600", 8)))
      none(q)
      h.apply(q, ch(fd, EV_ENABLE, WRITE + ATTRIB))
      assert.are.equal(WRITE + ATTRIB, one(q, fd).fflags)
      none(q)
    end)

    it("EV_DISABLE drops a pending event", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd = d.file("f", "x")
      h.apply(q, ch(fd, EV_ADD + EV_CLEAR, WRITE))
      assert(kt.write(fd, "y"))
      h.apply(q, ch(fd, EV_DISABLE, WRITE))
      none(q)
    end)

    it("EV_DELETE drops a pending event", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd = d.file("f", "x")
      h.apply(q, ch(fd, EV_ADD, WRITE))
      assert(kt.write(fd, "y"))
      h.apply(q, ch(fd, EV_DELETE))
      none(q)
    end)

    it("EV_ONESHOT fires once and the knote is gone", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd = d.file("f", "x")
      h.apply(q, ch(fd, EV_ADD + EV_ONESHOT, WRITE))
      assert(kt.write(fd, "y"))
      local e = one(q, fd)
      assert.are.equal(WRITE, e.fflags)
      assert.evflags(EV_ONESHOT, e.flags)
      assert(kt.write(fd, "z"))
      none(q)
      assert.os_error(E.ENOENT, q:kevent({ ch(fd, EV_DELETE) }))
    end)

    it("EV_DISPATCH fires once until EV_ENABLE re-arms it", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd = d.file("f", "x")
      h.apply(q, ch(fd, EV_ADD + EV_DISPATCH + EV_CLEAR, WRITE + ATTRIB))
      assert(kt.write(fd, "y"))
      local e = one(q, fd)
      assert.are.equal(WRITE, e.fflags)
      assert.evflags(EV_DISPATCH + EV_CLEAR, e.flags)
      assert(kt.fchmod(fd, tonumber("600", 8)))
      none(q)
      h.apply(q, ch(fd, EV_ENABLE, WRITE + ATTRIB))
      e = one(q, fd)
      assert.are.equal(ATTRIB, e.fflags)
      assert.evflags(EV_DISPATCH + EV_CLEAR, e.flags)
    end)

    it("EV_RECEIPT gives a receipt, then events carry the flag (FreeBSD)", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd = d.file("f", "x")
      local list = {}
      assert.are.equal(1, q:kevent({ ch(fd, EV_ADD + EV_CLEAR + EV_RECEIPT, WRITE) },
        list, 4, 0))
      assert.evflags(EV_ERROR, list[1].flags)
      assert.are.equal(0, list[1].data)
      assert(kt.write(fd, "y"))
      local e = one(q, fd)
      assert.evflags(EV_CLEAR + EV_RECEIPT, e.flags)
      assert.are.equal(WRITE, e.fflags)
    end)

    it("udata is delivered, and replaced by a modify", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd = d.file("f", "x")
      local u1, u2 = {}, {}
      h.apply(q, ch(fd, EV_ADD + EV_CLEAR, WRITE, u1))
      assert(kt.write(fd, "y"))
      assert.are.equal(u1, one(q, fd).udata)
      h.apply(q, ch(fd, EV_ADD, WRITE, u2))
      assert(kt.write(fd, "z"))
      local e = one(q, fd)
      assert.are.equal(u2, e.udata)
      assert.evflags(EV_CLEAR, e.flags) -- stored flags stay
    end)

    it("a modify replaces the notes of interest", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd = d.file("f", "x")
      h.apply(q, ch(fd, EV_ADD + EV_CLEAR, WRITE))
      h.apply(q, ch(fd, EV_ADD, ATTRIB))
      assert(kt.write(fd, "y"))
      none(q)
      assert(kt.fchmod(fd, tonumber("600", 8)))
      assert.are.equal(ATTRIB, one(q, fd).fflags)
    end)

    it("the same file in two queues gives two independent knotes", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q1, q2 = h.newq(defer), h.newq(defer)
      local fd = d.file("f", "x")
      h.apply(q1, ch(fd, EV_ADD + EV_CLEAR, WRITE))
      h.apply(q2, ch(fd, EV_ADD + EV_CLEAR, WRITE + ATTRIB))
      assert(kt.write(fd, "y"))
      assert.are.equal(WRITE, one(q1, fd).fflags)
      none(q1)
      assert(kt.fchmod(fd, tonumber("600", 8)))
      none(q1)
      assert.are.equal(WRITE + ATTRIB, one(q2, fd).fflags)
      h.apply(q1, ch(fd, EV_DELETE))
      assert(kt.write(fd, "z"))
      none(q1)
      assert.are.equal(WRITE, one(q2, fd).fflags)
    end)

    it("two descriptors of one file in one queue are two knotes", function()
      local defer = h.closer()
      local d = tmpdir(defer)
      local q = h.newq(defer)
      local fd, p = d.file("f", "x")
      local fd2 = d.open(p)
      h.apply(q, ch(fd, EV_ADD + EV_CLEAR, WRITE), ch(fd2, EV_ADD + EV_CLEAR, ATTRIB))
      assert(kt.write(fd, "y"))
      assert(kt.fchmod(fd, tonumber("600", 8)))
      local got = {}
      for _, e in ipairs(wait(q)) do got[e.ident] = e.fflags end
      assert.are.same({ [fd] = WRITE, [fd2] = ATTRIB }, got)
      -- deleting one leaves the other working (they share one watch)
      h.apply(q, ch(fd, EV_DELETE))
      assert(kt.fchmod(fd, tonumber("644", 8)))
      assert.are.equal(ATTRIB, one(q, fd2).fflags)
    end)
  end)
end)
