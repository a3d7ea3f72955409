-- The queue handle: kq.kqueue(), close, __gc/__close, tostring, fileno,
-- kq.type, kq.backend and kq._VERSION.
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")
local finally = h.finally -- keeps every cleanup (busted keeps the last)

describe("kq.kqueue()", function()
  it("returns a kq.queue userdata that kq.type calls a kqueue", function()
    local q = assert(kq.kqueue())
    finally(function() q:close() end)
    assert.are.equal("userdata", type(q))
    assert.are.equal("kq.queue", getmetatable(q).__name)
    assert.are.equal("kqueue", kq.type(q))
  end)

  it("gives a close-on-exec descriptor", function()
    local q = assert(kq.kqueue())
    finally(function() q:close() end)
    local fd = q:fileno()
    assert.is_true(h.is_integer(fd) and fd >= 0)
    assert.is_true(kt.is_cloexec(fd))
  end)

  it("returns nil, 'kqueue: <strerror>', EMFILE when no descriptor is left", function()
    -- Fill the table up to the limit.
    h.use_up_fds(finally, 1)
    assert.os_error(kt.errno.EMFILE, kq.kqueue())
  end)

  it("leaks no descriptor over a thousand queues", function()
    h.no_fd_leak(function()
      for _ = 1, 1000 do assert(kq.kqueue()):close() end
    end)
  end)
end)

describe("a queue", function()
  it("has the library as its methods: q:kevent is kq.kevent", function()
    local q = assert(kq.kqueue())
    finally(function() q:close() end)
    assert.are.equal(kq.kevent, q.kevent)
    assert.are.equal(kq.close, q.close)
    assert.are.equal(kq.fileno, q.fileno)
  end)

  it("shows its descriptor in tostring, and closed once closed", function()
    local q = assert(kq.kqueue())
    assert.are.equal("kqueue (fd " .. q:fileno() .. ")", tostring(q))
    q:close()
    assert.are.equal("kqueue (closed)", tostring(q))
  end)

  it("closes with q:close() and kq.close(q), which return true and may repeat", function()
    local q = assert(kq.kqueue())
    assert.is_true(q:close())
    assert.are.equal("closed kqueue", kq.type(q))
    assert.is_true(q:close())
    assert.is_true(kq.close(q))
    local q2 = assert(kq.kqueue())
    assert.is_true(kq.close(q2))
    assert.are.equal("closed kqueue", kq.type(q2))
  end)

  it("releases its descriptor when closed", function()
    h.no_fd_leak(function()
      local q = assert(kq.kqueue())
      q:close()
    end)
  end)

  it("raises 'closed kqueue' for any other use after close", function()
    local q = assert(kq.kqueue())
    q:close()
    assert.has_error(function() q:fileno() end, nil)
    assert.matches("closed kqueue", select(2, pcall(q.fileno, q)))
    assert.matches("closed kqueue", select(2, pcall(q.kevent, q, nil, nil, 0)))
    assert.matches("closed kqueue", select(2, pcall(kq.kevent, q, {}, {}, 1, 0)))
  end)

  it("is closed by the collector", function()
    h.no_fd_leak(function()
      local q = assert(kq.kqueue())
      assert.is_true(q:fileno() >= 0)
      q = nil -- luacheck: ignore 311
    end)
  end)

  -- <close> is Lua 5.4 syntax: the scope is compiled from a string there,
  -- so that this file still loads on 5.1 to 5.3 and LuaJIT.
  if _VERSION >= "Lua 5.4" then
    it("is closed at the end of a <close> scope (Lua 5.4)", function()
      collectgarbage()
      collectgarbage("stop") -- only the scope may close descriptors here
      finally(function() collectgarbage("restart") end)
      local before = h.fdcount()
      local scope = assert(load([[
        local kq, inside = ...
        local q <close> = assert(kq.kqueue())
        inside(q)
        return q
      ]], "=<close> scope"))
      local seen = scope(kq, function(q)
        assert.are.equal("kqueue", kq.type(q))
        assert.are_not.equal(before, h.fdcount())
      end)
      assert.are.equal("closed kqueue", kq.type(seen))
      assert.are.equal(before, h.fdcount())
    end)
  end

  it("becomes readable to poll once fileno() exposes it and an event is pending", function()
    local q = assert(kq.kqueue())
    finally(function() q:close() end)
    local fd = q:fileno()
    assert(q:kevent({ { ident = 1, filter = kq.EVFILT_USER, flags = kq.EV_ADD } }))
    assert.is_false(kt.poll_in(fd, 0))
    assert(q:kevent({ { ident = 1, filter = kq.EVFILT_USER, fflags = kq.NOTE_TRIGGER } }))
    assert.is_true(kt.poll_in(fd, 2000))
  end)

  it("rejects a non-queue as self", function()
    assert.matches("kq.queue expected", select(2, pcall(kq.fileno, nil)))
    assert.matches("kq.queue expected", select(2, pcall(kq.kevent, {}, nil)))
    assert.matches("kq.queue expected", select(2, pcall(kq.close, io.stdout)))
  end)
end)

describe("kq.type", function()
  it("answers kqueue, closed kqueue or nil", function()
    local q = assert(kq.kqueue())
    assert.are.equal("kqueue", kq.type(q))
    q:close()
    assert.are.equal("closed kqueue", kq.type(q))
    assert.is_nil(kq.type(io.stdout))
    assert.is_nil(kq.type(42))
    assert.is_nil(kq.type(nil))
  end)
end)

describe("the module", function()
  it("names its backend: linux for the engine, native on the BSDs", function()
    -- Linux (it has /proc) runs the engine, except under make check-native,
    -- which preloads the engine dressed as libc (libkqshim) for the
    -- binding's native build.
    local proc = io.open("/proc/self/stat")
    if proc then proc:close() end
    local shim = (os.getenv("LD_PRELOAD") or ""):match("kqshim")
    assert.are.equal((proc and not shim) and "linux" or "native", kq.backend)
  end)

  it("has a _VERSION like 'kq 0.1.0'", function()
    assert.are.equal("kq 0.1.0", kq._VERSION)
  end)

  it("returns a table of its own and sets no global", function()
    assert.are_not.equal(require("kq.core"), kq)
    assert.is_nil(rawget(_G, "kq"))
  end)
end)
