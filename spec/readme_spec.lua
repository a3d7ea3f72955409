-- The README's example must keep working as written.
describe("README", function()
  it("runs its Lua example and prints the user event it triggers", function()
    local f = assert(io.open("README.md"))
    local text = f:read("a")
    f:close()
    local code = assert(text:match("```lua\n(.-)```"), "no Lua block in README.md")
    local lines = {}
    local env = setmetatable({ print = function(s) lines[#lines + 1] = s end },
      { __index = _G })
    local chunk = assert(load(code, "=README", "t", env))
    chunk()
    assert.is_true(#lines >= 1)
    assert.matches("^ident=2 filter=USER flags=CLEAR fflags=0 data=0 udata=table: ", lines[1])
  end)
end)
