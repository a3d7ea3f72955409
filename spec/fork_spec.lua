-- fork: a kqueue is not inherited.  In the child every queue reports
-- closed and its descriptor number is never closed there (semantics 5):
-- whatever holds that number in the child (on FreeBSD nothing the queue
-- left: the child may have reused it) is not the binding's to close.
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")
local finally = h.finally -- keeps every cleanup (busted keeps the last)

local USER = kq.EVFILT_USER

-- Run `fn` in a child; the child exits 0 when fn returns true, else 1
-- (and 2 when it raised).  Returns the child's wait status.
local function in_child(fn)
  local pid = assert(kt.fork())
  if pid == 0 then
    local ok, res = pcall(fn)
    kt._exit(ok and (res and 0 or 1) or 2)
  end
  local _, status = assert(kt.waitpid(pid))
  return status
end

describe("after fork, in the child", function()
  it("every queue reports closed, and using it raises", function()
    local q = assert(kq.kqueue())
    finally(function() q:close() end)
    local status = in_child(function()
      return kq.type(q) == "closed kqueue"
        and tostring(q) == "kqueue (closed)"
        and not pcall(q.fileno, q)
        and select(2, pcall(q.kevent, q, nil, {}, 1, 0)):match("closed kqueue") ~= nil
    end)
    assert.are.equal(0, status)
  end)

  it("close and collection leave the descriptor number open", function()
    local q = assert(kq.kqueue())
    finally(function() q:close() end)
    local fd = q:fileno()
    local status = in_child(function()
      -- The number is open in the child whether or not the system kept
      -- the queue's descriptor there.
      if kt.is_cloexec(fd) == nil then assert(kt.dup2(0, fd)) end
      if q:close() ~= true then return false end
      do -- one made in the child, then dropped
        local q2 = assert(kq.kqueue())
        if kq.type(q2) ~= "kqueue" then return false end
      end
      q = nil
      collectgarbage()
      collectgarbage()
      -- The number is still open in the child.
      return kt.is_cloexec(fd) ~= nil
    end)
    assert.are.equal(0, status)
  end)

  it("a queue made in the child works", function()
    local status = in_child(function()
      local q = assert(kq.kqueue())
      assert(q:kevent({ { ident = 1, filter = USER, flags = kq.EV_ADD },
        { ident = 1, filter = USER, fflags = kq.NOTE_TRIGGER } }))
      local evs = {}
      return q:kevent(nil, evs, 1, 5) == 1 and kq.type(q) == "kqueue"
    end)
    assert.are.equal(0, status)
  end)
end)

describe("after fork, in the parent", function()
  it("the queue keeps working, its knotes too", function()
    local q = assert(kq.kqueue())
    finally(function() q:close() end)
    assert(q:kevent({ { ident = 1, filter = USER, flags = kq.EV_ADD, udata = "p" } }))
    local status = in_child(function()
      q:close()
      return true
    end)
    assert.are.equal(0, status)
    assert.are.equal("kqueue", kq.type(q))
    assert(q:kevent({ h.fire(1, "p") }))
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 5))
    assert.are.equal("p", evs[1].udata)
  end)
end)
