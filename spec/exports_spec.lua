-- The module exports luaopen_kq_core and nothing else, so that kq can share
-- a process with a system libkqueue (or a future libc kqueue) without its
-- engine's kqueue/kevent symbols clashing with theirs.
describe("the built module", function()
  it("exports only its Lua opener", function()
    local p = assert(io.popen("nm -D --defined-only build/kq/core.so 2>&1"))
    local exported = {}
    for line in p:lines() do
      local kind, name = line:match("^%x*%s+(%a)%s+(%S+)$")
      if kind and kind:match("[TDBRVWui]") then exported[#exported + 1] = name end
    end
    p:close()
    assert.are.same({ "luaopen_kq_core" }, exported)
  end)
end)
