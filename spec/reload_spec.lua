-- Reloading: busted reruns a C module's opener per spec file with the
-- .so still loaded; queues made before must keep working (cqueues #109).
local kq = require("kq")
local h = require("spec.helper")
local finally = h.finally -- keeps every cleanup (busted keeps the last)

local USER = kq.EVFILT_USER

local function reload()
  package.loaded["kq"] = nil
  package.loaded["kq.core"] = nil
  return require("kq")
end

describe("reloading kq", function()
  it("gives a new module table whose functions still serve old queues", function()
    local q = assert(kq.kqueue())
    finally(function() q:close() end)
    assert(q:kevent({ { ident = 1, filter = USER, flags = kq.EV_ADD, udata = "old" } }))
    local kq2 = reload()
    assert.are_not.equal(kq, kq2)
    assert.are.equal("kqueue", kq2.type(q))
    assert(kq2.kevent(q, { h.fire(1, "old") }))
    local evs = {}
    assert.are.equal(1, q:kevent(nil, evs, 1, 5))
    assert.are.equal("old", evs[1].udata)
  end)

  it("refills the kq.queue metatable with the new library as __index", function()
    local core1 = require("kq.core")
    local q = assert(kq.kqueue())
    finally(function() q:close() end)
    reload()
    local core2 = require("kq.core")
    assert.are_not.equal(core1, core2)
    assert.are.equal(core2, getmetatable(q).__index)
    local q2 = assert(core2.kqueue())
    finally(function() q2:close() end)
    assert.are.equal(getmetatable(q), getmetatable(q2))
    assert.are.equal("kq.queue", getmetatable(q2).__name)
    assert.is_function(getmetatable(q2).__gc)
    assert.is_function(getmetatable(q2).__close)
  end)

  it("keeps old queues closable and collectable", function()
    local q = assert(kq.kqueue())
    local kq2 = reload()
    assert.is_true(kq2.close(q))
    assert.are.equal("closed kqueue", kq2.type(q))
    do
      local q3 = assert(kq.kqueue())
      assert.are.equal("kqueue", kq2.type(q3))
    end
    collectgarbage()
  end)
end)
