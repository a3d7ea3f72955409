-- The rockspecs against the tree: every rockspec in rockspec/ builds kq.core
-- from exactly the C sources csrc/sources.mk lists (the binding everywhere,
-- the engine on Linux only, as LuaRocks applies platform overrides), and
-- installs exactly the Lua modules under lua/.  The release rockspec names
-- the version the module reports and the archive `make dist` writes.
-- The checks are plain functions returning a list of problems, also run on
-- made-up input below, so that this spec is seen to fail.
local kq = require("kq")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

local function lines_of(command)
  local p = assert(io.popen(command))
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

-- Runs Lua source `text` with globals going into a fresh table (a
-- rockspec is such a file), on every Lua version.
local setfenv, loadstring = rawget(_G, "setfenv"), rawget(_G, "loadstring")
local function eval(text, name)
  local env = {}
  local chunk
  if setfenv then -- Lua 5.1, LuaJIT
    chunk = assert(loadstring(text, "@" .. name))
    setfenv(chunk, env)
  else
    chunk = assert(load(text, "@" .. name, "t", env))
  end
  chunk()
  return env
end

-- The variables of a makefile fragment: NAME = words (continued lines
-- joined, += appends, $(NAME) expanded), as word lists.
local function make_vars(text)
  local vars = {}
  text = text:gsub("\\\n", " ")
  for line in text:gmatch("[^\n]+") do
    if not line:match("^%s*#") then
      local name, op, value = line:match("^%s*([%w_]+)%s*([+:]?=)%s*(.-)%s*$")
      if name then
        local words = op == "+=" and (vars[name] or {}) or {}
        for word in value:gmatch("%S+") do
          local ref = word:match("^%$%(([%w_]+)%)$")
          if ref then
            for _, w in ipairs(vars[ref] or {}) do words[#words + 1] = w end
          else
            words[#words + 1] = word
          end
        end
        vars[name] = words
      end
    end
  end
  return vars
end

local function copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = copy(v) end
  return c
end

-- LuaRocks' merge of a platform table into the build table: key by key,
-- tables recursively, so lists merge slot by slot.
local function deep_merge(dst, src)
  for k, v in pairs(src) do
    if type(v) == "table" then
      if type(dst[k]) ~= "table" then dst[k] = {} end
      deep_merge(dst[k], v)
    else
      dst[k] = v
    end
  end
end

-- The platform names LuaRocks sets on each system, least specific first
-- (the order it applies overrides in).
local PLATFORM_ORDER = { "unix", "bsd", "solaris", "netbsd", "openbsd",
  "freebsd", "linux", "macosx", "macos" }
local SYSTEM_NAMES = { "linux", "freebsd", "openbsd", "netbsd", "macosx" }
local SYSTEMS = {
  linux = { unix = true, linux = true },
  freebsd = { unix = true, bsd = true, freebsd = true },
  openbsd = { unix = true, bsd = true, openbsd = true },
  netbsd = { unix = true, bsd = true, netbsd = true },
  macosx = { unix = true, bsd = true, macosx = true, macos = true },
}

-- The build table LuaRocks uses on `system`.
local function build_on(build, system)
  local b = copy(build)
  local overrides = b.platforms or {}
  b.platforms = nil
  for _, p in ipairs(PLATFORM_ORDER) do
    if SYSTEMS[system][p] and overrides[p] then deep_merge(b, overrides[p]) end
  end
  return b
end

local function sorted(list)
  local c = {}
  for i, v in ipairs(list) do c[i] = v end
  table.sort(c)
  return c
end

-- Problems with list `got` against the expected words (as sets, each once).
local function compare(what, got, want)
  local problems, count, wanted = {}, {}, {}
  for _, w in ipairs(want) do wanted[w] = true end
  for _, g in ipairs(got) do
    count[g] = (count[g] or 0) + 1
    if count[g] == 2 then problems[#problems + 1] = what .. ": " .. g .. " listed twice" end
    if not wanted[g] then problems[#problems + 1] = what .. ": " .. g .. " is not in the list" end
  end
  for _, w in ipairs(want) do
    if not count[w] then problems[#problems + 1] = what .. ": " .. w .. " missing" end
  end
  return problems
end

local function append(dst, src)
  for _, v in ipairs(src) do dst[#dst + 1] = v end
  return dst
end

-- Problems with the C sources of rockspec `spec` against sources.mk `vars`.
local function check_sources(spec, vars, name)
  local problems = {}
  local binding = vars.BINDING_SRC or {}
  local engine = vars.ENGINE_SRC or {}
  local both = append(append({}, binding), engine)
  for _, system in ipairs(SYSTEM_NAMES) do
    local build = build_on(spec.build or {}, system)
    local core = (build.modules or {})["kq.core"]
    local what = name .. " on " .. system
    if type(core) ~= "table" or type(core.sources) ~= "table" then
      problems[#problems + 1] = what .. ": no kq.core sources"
    else
      append(problems, compare(what, core.sources, system == "linux" and both or binding))
    end
  end
  return problems
end

-- The Lua modules a file under lua/ is installed as: lua/kq/init.lua is
-- "kq", lua/kq/x.lua is "kq.x".
local function module_name(file)
  local rel = assert(file:match("^lua/(.*)%.lua$"), file)
  return (rel:gsub("/init$", ""):gsub("/", "."))
end

local function check_modules(spec, lua_files, name)
  local problems, want = {}, {}
  for _, file in ipairs(lua_files) do want[module_name(file)] = file end
  for _, system in ipairs(SYSTEM_NAMES) do
    local modules = build_on(spec.build or {}, system).modules or {}
    for mod, file in pairs(want) do
      if modules[mod] ~= file then
        problems[#problems + 1] = string.format("%s on %s: module %s should be %s, is %s",
          name, system, mod, file, tostring(modules[mod]))
      end
    end
    for mod, value in pairs(modules) do
      if type(value) == "string" and not want[mod] then
        problems[#problems + 1] = name .. " on " .. system .. ": module " .. mod
          .. " is not a file under lua/"
      end
    end
  end
  return problems
end

local SOURCES_MK = make_vars(read("csrc/sources.mk"))
local LUA_FILES = sorted(lines_of("find lua -name '*.lua'"))
local ROCKSPECS = sorted(lines_of("ls rockspec/*.rockspec"))
local function rockspec(path) return eval(read(path), path) end

describe("csrc/sources.mk", function()
  it("lists binding and engine sources that exist, the engine's under csrc/engine", function()
    assert.is_true(#SOURCES_MK.BINDING_SRC > 0)
    assert.is_true(#SOURCES_MK.ENGINE_SRC > 0)
    for _, file in ipairs(append(append({}, SOURCES_MK.BINDING_SRC), SOURCES_MK.ENGINE_SRC)) do
      assert.is_truthy(io.open(file), file)
    end
    for _, file in ipairs(SOURCES_MK.BINDING_SRC) do
      assert.is_nil(file:match("^csrc/engine/"), file)
    end
    for _, file in ipairs(SOURCES_MK.ENGINE_SRC) do
      assert.is_truthy(file:match("^csrc/engine/"), file)
    end
  end)

  it("is read as make reads it: continuations, comments, += and $(NAME)", function()
    local vars = make_vars("# A = no\nA = a.c \\\n\tb.c\nB = $(A) c.c\nB += d.c\n")
    assert.are.same({ "a.c", "b.c" }, vars.A)
    assert.are.same({ "a.c", "b.c", "c.c", "d.c" }, vars.B)
  end)
end)

describe("the rockspecs", function()
  it("are the release rockspec and kq-scm-1", function()
    assert.are.same({ "rockspec/kq-0.1.0-1.rockspec", "rockspec/kq-scm-1.rockspec" }, ROCKSPECS)
  end)

  for _, path in ipairs(ROCKSPECS) do
    describe(path, function()
      local spec = rockspec(path)

      it("builds kq.core from the binding everywhere and the engine on Linux only", function()
        assert.are.same({}, check_sources(spec, SOURCES_MK, path))
      end)

      it("installs each Lua file under lua/ as its module, and nothing else", function()
        assert.are.same({}, check_modules(spec, LUA_FILES, path))
      end)

      it("runs on Lua 5.1 to 5.4, asks for no test rock, and is for Linux and the BSDs", function()
        assert.are.same({ "lua >= 5.1, < 5.5" }, spec.dependencies)
        assert.is_nil(spec.test_dependencies) -- `luarocks show kq`: no "busted (missing)"
        assert.are.same({ "linux", "bsd" }, spec.supported_platforms)
        assert.are.same({ type = "command", command = "make test" }, spec.test)
      end)

      it("has the same build table as every other rockspec", function()
        for _, other in ipairs(ROCKSPECS) do
          assert.are.same(rockspec(other).build, spec.build)
        end
      end)
    end)
  end

  it("release: the version kq reports, from the archive `make dist` writes", function()
    local makefile = make_vars(read("Makefile"))
    local version = assert(makefile.KQ_VERSION[1])
    assert.are.equal("kq " .. version, kq._VERSION)
    local spec = rockspec("rockspec/kq-" .. version .. "-1.rockspec")
    assert.are.equal("kq", spec.package)
    assert.are.equal(version .. "-1", spec.version)
    assert.are.equal("kq-" .. version, spec.source.dir)
    assert.matches("^https://.*/kq%-" .. version:gsub("%.", "%%.") .. "%.tar%.gz$", spec.source.url)
  end)

  it("scm: builds the checkout it sits in", function()
    assert.are.equal("git+file://.", rockspec("rockspec/kq-scm-1.rockspec").source.url)
  end)
end)

describe("the rockspec checks", function()
  local vars = { BINDING_SRC = { "csrc/a.c", "csrc/b.c" }, ENGINE_SRC = { "csrc/engine/e.c" } }
  local function spec_with(base, linux)
    return { build = { modules = { ["kq.core"] = { sources = base } },
      platforms = linux and { linux = { modules = { ["kq.core"] = { sources = linux } } } } } }
  end

  it("accept the binding everywhere and binding plus engine on Linux", function()
    local good = spec_with({ "csrc/a.c", "csrc/b.c" }, { "csrc/a.c", "csrc/b.c", "csrc/engine/e.c" })
    assert.are.same({}, check_sources(good, vars, "x"))
  end)

  it("catch a source missing from sources.mk's lists, or one too many", function()
    local problems = check_sources(spec_with({ "csrc/a.c" },
      { "csrc/a.c", "csrc/engine/e.c" }), vars, "x")
    assert.are.equal(#problems, 5) -- b.c missing on each of the five systems
    assert.matches("csrc/b.c missing", problems[1])
    problems = check_sources(spec_with({ "csrc/a.c", "csrc/b.c", "csrc/c.c" },
      { "csrc/a.c", "csrc/b.c", "csrc/c.c", "csrc/engine/e.c" }), vars, "x")
    assert.matches("csrc/c.c is not in the list", problems[1])
  end)

  it("catch the engine outside Linux, and a Linux list shorter than the base", function()
    local problems = check_sources(spec_with({ "csrc/a.c", "csrc/b.c", "csrc/engine/e.c" }),
      vars, "x")
    assert.are.equal(4, #problems) -- the four BSD-like systems
    assert.matches("on %a+: csrc/engine/e.c is not in the list", problems[1])
    -- Slot-by-slot merging keeps the base's third entry under a two-entry list.
    problems = check_sources(spec_with({ "csrc/a.c", "csrc/b.c", "csrc/x.c" },
      { "csrc/a.c", "csrc/engine/e.c" }), vars, "x")
    local linux = {}
    for _, p in ipairs(problems) do
      if p:match("on linux") then linux[#linux + 1] = p end
    end
    assert.are.same({ "x on linux: csrc/x.c is not in the list",
      "x on linux: csrc/b.c missing" }, linux)
  end)

  it("catch a Lua file not installed and a module without a file", function()
    local spec = { build = { modules = { kq = "lua/kq/init.lua", ["kq.gone"] = "lua/kq/gone.lua" } } }
    local problems = check_modules(spec, { "lua/kq/init.lua", "lua/kq/extra.lua" }, "x")
    local text = table.concat(problems, "\n")
    assert.matches("module kq.extra should be lua/kq/extra.lua, is nil", text)
    assert.matches("module kq.gone is not a file under lua/", text)
  end)
end)
