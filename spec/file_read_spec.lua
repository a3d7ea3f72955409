-- EVFILT_READ and EVFILT_WRITE on regular files (semantics §4.1, §4.2;
-- checklist items 26 and 32).  READ is ready while size - offset != 0, so
-- not at exact EOF; an append makes it ready again, and wakes a blocking
-- wait (the engine parks such a knote on inotify).
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")

local READ, WRITE = kq.EVFILT_READ, kq.EVFILT_WRITE
local EV_ADD, EV_DELETE, EV_CLEAR = kq.EV_ADD, kq.EV_DELETE, kq.EV_CLEAR

-- A file in a fresh directory named after os.tmpname(), holding content;
-- returns a read-write descriptor (offset 0) and the path.
local function tmpfile(defer, content)
  local base = os.tmpname()
  os.remove(base)
  assert(kt.mkdir(base))
  local p = base .. "/file"
  defer(function() os.remove(p); os.remove(base) end)
  local fd = assert(kt.open(p, "rw", true))
  defer(function() kt.close(fd) end)
  if content then assert.are.equal(#content, kt.write(fd, content)) end
  assert(kt.lseek(fd, 0, "set"))
  return fd, p
end

local function wait(q, timeout)
  return h.wait(q, 8, timeout)
end

local function one(q, fd, filter, timeout)
  local evs = wait(q, timeout)
  assert.are.equal(1, #evs, "expected one event")
  assert.are.equal(fd, evs[1].ident)
  assert.are.equal(filter, evs[1].filter)
  return evs[1]
end

-- A child that appends `text` to path after `delay` s, then _exits.
local function append_later(defer, p, delay, text)
  local pid = assert(kt.fork())
  if pid == 0 then
    pcall(function()
      kt.sleep(delay)
      local w = assert(kt.open(p, "a"))
      kt.write(w, text)
      kt.close(w)
    end)
    kt._exit(0)
  end
  defer(function() kt.waitpid(pid) end)
end

describe("regular files", function()
  it("READ at offset 9 of 10 bytes gives data 1, on every call", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local fd = tmpfile(defer, "0123456789")
    assert(kt.lseek(fd, 9, "set"))
    h.apply(q, h.ch(fd, READ, EV_ADD))
    for _ = 1, 2 do
      local e = one(q, fd, READ)
      assert.are.equal(1, e.data)
      assert.evflags(0, e.flags)
    end
  end)

  it("READ at exact EOF gives nothing; an append gives data = bytes appended", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local fd, p = tmpfile(defer, "0123456789")
    assert(kt.lseek(fd, 10, "set"))
    h.apply(q, h.ch(fd, READ, EV_ADD))
    assert.are.same({}, wait(q))
    local w = assert(kt.open(p, "a"))
    defer(function() kt.close(w) end)
    assert(kt.write(w, "abcde"))
    assert.are.equal(5, one(q, fd, READ).data)
  end)

  it("EV_ONESHOT READ at EOF ignores a write in place, and fires once at an append", function()
    -- FreeBSD evaluates the knote at the write: one that leaves nothing to
    -- read past the offset does not activate it (a oneshot knote is then
    -- delivered without a second look, so it must not be activated).
    local defer = h.closer()
    local q = h.newq(defer)
    local fd, p = tmpfile(defer, "0123456789")
    assert(kt.lseek(fd, 10, "set"))
    h.apply(q, h.ch(fd, READ, EV_ADD + kq.EV_ONESHOT))
    assert.are.same({}, wait(q))
    local w = assert(kt.open(p, "rw"))
    defer(function() kt.close(w) end)
    assert(kt.write(w, "XY")) -- bytes 0 and 1 rewritten: size unchanged
    assert.are.same({}, wait(q, 0.05))
    assert(kt.lseek(w, 0, "end"))
    assert(kt.write(w, "abc"))
    local ev = one(q, fd, READ)
    assert.are.equal(3, ev.data)
    assert.are.equal(kq.EV_ONESHOT, kq.band(ev.flags, kq.EV_ONESHOT))
    assert(kt.write(w, "d"))
    assert.are.same({}, wait(q, 0.05)) -- gone with its delivery
  end)

  it("READ comes back after reading to EOF and another append", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local fd, p = tmpfile(defer, "abc")
    h.apply(q, h.ch(fd, READ, EV_ADD))
    assert.are.equal(3, one(q, fd, READ).data)
    assert.are.equal("abc", kt.read(fd, 100))
    assert.are.same({}, wait(q))
    local w = assert(kt.open(p, "a"))
    defer(function() kt.close(w) end)
    assert(kt.write(w, "de"))
    assert.are.equal(2, one(q, fd, READ).data)
  end)

  it("a blocking wait at EOF is woken by another process's append", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local fd, p = tmpfile(defer, "0123456789")
    assert(kt.lseek(fd, 10, "set"))
    h.apply(q, h.ch(fd, READ, EV_ADD))
    append_later(defer, p, 0.1, "abcde")
    -- Without a wake-up this returns nothing after 5 s.
    local e = one(q, fd, READ, 5)
    assert.are.equal(5, e.data)
  end)

  it("a blocking wait with EV_CLEAR is woken by an append, once", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local fd, p = tmpfile(defer, "0123456789")
    h.apply(q, h.ch(fd, READ, EV_ADD + EV_CLEAR))
    assert.are.equal(10, one(q, fd, READ).data)
    assert.are.same({}, wait(q)) -- nothing new yet
    append_later(defer, p, 0.1, "abcde")
    local e = one(q, fd, READ, 5)
    assert.are.equal(15, e.data)
    assert.evflags(EV_CLEAR, e.flags)
    assert.are.same({}, wait(q))
  end)

  it("an append to an unlinked file makes READ ready", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local fd, p = tmpfile(defer, "abc")
    assert(kt.lseek(fd, 3, "set"))
    h.apply(q, h.ch(fd, READ, EV_ADD))
    assert(kt.unlink(p))
    assert.are.same({}, wait(q))
    assert(kt.lseek(fd, 0, "end"))
    assert(kt.write(fd, "xy")) -- offset moves along: still at EOF
    assert.are.same({}, wait(q))
    assert(kt.lseek(fd, 1, "set")) -- a seek alone re-arms nothing ...
    assert(kt.write(fd, "z"))      -- ... the change of the file does
    assert.are.equal(3, one(q, fd, READ).data)
  end)

  if kq.NOTE_FILE_POLL then
    it("NOTE_FILE_POLL makes READ ready at EOF", function()
      local defer = h.closer()
      local q = h.newq(defer)
      local fd = tmpfile(defer, "abc")
      assert(kt.lseek(fd, 3, "set"))
      h.apply(q, h.ch(fd, READ, EV_ADD, kq.NOTE_FILE_POLL))
      assert.are.equal(0, one(q, fd, READ).data)
      h.apply(q, h.ch(fd, READ, EV_DELETE))
      h.apply(q, h.ch(fd, READ, EV_ADD))
      assert.are.same({}, wait(q))
    end)
  end

  it("WRITE on a file is ready at once with data 0 (FreeBSD)", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local fd = tmpfile(defer, "abc")
    h.apply(q, h.ch(fd, WRITE, EV_ADD))
    local e = one(q, fd, WRITE)
    assert.are.equal(0, e.data)
    assert.evflags(0, e.flags)
  end)

  it("READ knotes on files add no descriptor per knote", function()
    local defer = h.closer()
    local q = h.newq(defer)
    local fds = {}
    for i = 1, 50 do fds[i] = tmpfile(defer, "") end
    local before = kt.fdcount()
    local changes = {}
    for i = 1, 50 do changes[i] = h.ch(fds[i], READ, EV_ADD) end
    assert.are.equal(0, q:kevent(changes))
    assert.are.same({}, wait(q))
    assert.is_true(kt.fdcount() - before <= 2)
  end)
end)
