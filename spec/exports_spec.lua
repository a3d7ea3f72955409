-- The module exports luaopen_kq_core and nothing else, so that kq can share
-- a process with a system libkqueue (or a future libc kqueue) without its
-- engine's kqueue/kevent symbols clashing with theirs.
--
-- The file read is the one this run loaded: package.cpath's first match
-- for kq.core (the Makefile points busted at build/, check-native at
-- build/native/), which on Linux /proc/self/maps must show mapped (the
-- other systems have no such file; there the match is what require
-- found).  The symbol table is read with nm: -D --defined-only on ELF
-- systems (Linux and the BSDs), -gU on macOS, whose Mach-O bundles have no
-- dynamic table and prefix C names with "_".
require("kq")

-- package.searchpath, or on 5.1 (which lacks it) the same search by hand.
local package_searchpath = rawget(package, "searchpath")
local function searchpath(name, path)
  if package_searchpath then return package_searchpath(name, path) end
  local file = name:gsub("%.", "/")
  for template in path:gmatch("[^;]+") do
    local candidate = template:gsub("%?", file)
    local f = io.open(candidate, "rb")
    if f then f:close() return candidate end
  end
  return nil
end

local function read_command(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

local function exported(nm, file, prefix)
  local out = read_command(nm .. " '" .. file .. "'")
  local names = {}
  for line in out:gmatch("[^\n]+") do
    local kind, name = line:match("^%x*%s+(%a)%s+(%S+)$")
    if kind and kind:match("[TDBRVWSCIui]") then
      names[#names + 1] = name:sub(#prefix + 1)
      assert.are.equal(prefix, name:sub(1, #prefix), out)
    end
  end
  return names, out
end

local system = read_command("uname -s"):match("^%S*")

describe("the built module", function()
  local file = searchpath("kq.core", package.cpath)

  it("is the file this run loaded", function()
    assert.is_table(package.loaded["kq.core"])
    assert.is_string(file, "kq.core not found on package.cpath: " .. package.cpath)
    if system == "Linux" then -- the file must be mapped into this process
      local maps = assert(io.open("/proc/self/maps", "r"))
      local text = maps:read("*a")
      maps:close()
      local tail = "/" .. file:gsub("^%.?/", "")
      local found = false
      for line in text:gmatch("[^\n]+") do
        if line:sub(-#tail) == tail then found = true end
      end
      assert.is_true(found, tail .. " is not mapped")
    end
  end)

  if system == "Darwin" then
    it("exports only its Lua opener (macOS: nm -gU)", function()
      local names, out = exported("nm -gU", file, "_")
      assert.are.same({ "luaopen_kq_core" }, names, out)
    end)
  else
    it("exports only its Lua opener (ELF: nm -D --defined-only)", function()
      local names, out = exported("nm -D --defined-only", file, "")
      assert.are.same({ "luaopen_kq_core" }, names, out)
    end)
  end
end)
