-- README.md must stay true: its Lua example runs (here on the Lua running
-- the specs; tests/rock/install.sh runs it on each Lua against the
-- installed rock), the two commands are make targets that install what
-- they need, every luarocks line names the Lua version, every interpreter it
-- tells to run is one `make deps` installs, its links resolve, and what
-- `make deps` prints for a user who is not root can be run as printed.
local h = require("spec.helper")

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

local README = assert(read("README.md"))

-- Runs Lua source with its own globals (falling back to _G), on every Lua.
local setfenv, loadstring = rawget(_G, "setfenv"), rawget(_G, "loadstring")
local function run_chunk(code, name, env)
  local chunk
  if setfenv then -- Lua 5.1, LuaJIT
    chunk = assert(loadstring(code, "=" .. name))
    setfenv(chunk, env)
  else
    chunk = assert(load(code, "=" .. name, "t", env))
  end
  return chunk()
end

-- The indented (four-space) code lines of a markdown text.
local function indented_lines(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("(.-)\n") do
    local code = line:match("^    (%S.*)$")
    if code then lines[#lines + 1] = code end
  end
  return lines
end

-- The command part of a shell line, without a trailing "# comment".
local function command(line)
  return (line:gsub("%s+#.*$", ""))
end

-- The section of `text` under heading `title` (up to the next ## heading).
local function section(text, title)
  local start = assert(text:find("\n## " .. title, 1, true), "no section " .. title)
  local stop = text:find("\n## ", start + 1, true) or #text
  return text:sub(start, stop)
end

-- Problems with luarocks commands (three words or more: "luarocks make"
-- in a sentence names a subcommand): each must say --lua-version.
local function luarocks_problems(lines)
  local problems = {}
  for _, line in ipairs(lines) do
    for cmd in line:gmatch("luarocks%f[%s][^`;&|)]*") do
      local _, words = cmd:gsub("%S+", "")
      if words >= 3 and not cmd:match("%-%-lua%-version=%d") then
        problems[#problems + 1] = "no --lua-version: " .. cmd
      end
    end
  end
  return problems
end

-- Interpreters the lines tell to run ("lua5.4 x.lua", "luajit x.lua",
-- "`lua5.4 x.lua`"), and problems with those not in `packages`.
local function interpreter_problems(text, packages)
  local problems, named = {}, {}
  for exe in text:gmatch("%f[%w](lua[%w.]*)%s+[%w_./-]+%.lua%f[^%w]") do
    named[#named + 1] = exe
    if not packages[exe] then
      problems[#problems + 1] = exe .. " is not installed by make deps"
    end
  end
  return problems, named
end

local function make_var(makefile, name)
  local value = assert(makefile:gsub("\\\n", " "):match("\n" .. name .. "%s*=%s*([^\n]*)"))
  local set = {}
  for word in value:gmatch("%S+") do set[word] = true end
  return set
end

describe("README", function()
  it("runs its Lua example and prints the user event it triggers", function()
    local code = assert(README:match("```lua\n(.-)```"), "no Lua block in README.md")
    local lines = {}
    local env = setmetatable({ print = function(s) lines[#lines + 1] = s end },
      { __index = _G })
    run_chunk(code, "README", env)
    assert.is_true(#lines >= 1)
    assert.matches("^ident=2 filter=USER flags=CLEAR fflags=0 data=0 udata=table: ",
      h.evflags_text(lines[1]))
  end)

  it("gives the two commands, make targets that first install what they need", function()
    local try = section(README, "Try it")
    local commands = {}
    for _, line in ipairs(indented_lines(try)) do
      if line:match("^make ") then commands[#commands + 1] = command(line) end
    end
    assert.are.same({ "make example", "make test" }, commands)
    local makefile = assert(read("Makefile"))
    assert.matches("\nexample:[^\n]*%f[%w]deps%f[%W]", makefile)
    assert.matches("\ntest:[^\n]*%f[%w]deps%f[%W]", makefile)
  end)

  it("names the Lua version in every luarocks command", function()
    local lines = indented_lines(README)
    for code in README:gmatch("`([^`\n]*luarocks[^`\n]*)`") do lines[#lines + 1] = code end
    local n = 0
    for _, line in ipairs(lines) do
      if line:match("luarocks ") then n = n + 1 end
    end
    assert.is_true(n >= 4)
    assert.are.same({}, luarocks_problems(lines))
  end)

  it("tells to run interpreters that make deps installs", function()
    local packages = make_var(assert(read("Makefile")), "DEB_PACKAGES")
    local problems, named = interpreter_problems(README, packages)
    assert.are.same({}, problems)
    assert.is_true(#named >= 1)
  end)

  it("links to files that exist", function()
    for target in README:gmatch("%]%(([^)#]+)[^)]*%)") do
      if not target:match("^%a+:") then
        assert.is_truthy(read(target) or io.open(target .. "/."), target)
      end
    end
  end)

  it("has checks that fail on a wrong line", function()
    assert.are.same({ "no --lua-version: luarocks install kq" },
      luarocks_problems({ "luarocks install kq", "luarocks --lua-version=5.3 make x.rockspec",
        "what `luarocks make` leaves" }))
    local problems = interpreter_problems("run `lua myprog.lua` or\n    lua5.4 a.lua\n",
      { ["lua5.4"] = true })
    assert.are.same({ "lua is not installed by make deps" }, problems)
  end)
end)

-- `make deps` for a user who is not root: it must stop and print one command
-- that this system can run as printed (no sudo where there is none).
describe("make deps, as a user who is not root", function()
  local function sh_ok(cmd)
    local ok = os.execute(cmd)
    return ok == true or ok == 0
  end

  it("prints a command whose program exists here", function()
    local missing = "kq_no_such_package"
    -- The Makefile (and what it includes) in a directory anyone can read,
    -- since the checkout may sit where user nobody cannot go.
    local p = assert(io.popen("mktemp -d"))
    local dir = p:read("*l")
    p:close()
    assert.is_true(sh_ok("mkdir " .. dir .. "/csrc && cp Makefile " .. dir
      .. " && cp csrc/sources.mk " .. dir .. "/csrc && chmod -R a+rX " .. dir))
    local make = "make -s -C " .. dir .. " deps DEB_PACKAGES='lua5.4 " .. missing .. "' 2>&1"
    if sh_ok("[ \"$(id -u)\" = 0 ]") then
      make = "setpriv --reuid=65534 --regid=65534 --clear-groups " .. make
    end
    p = assert(io.popen(make .. "; echo \"exit=$?\""))
    local out = p:read("*a")
    p:close()
    os.execute("rm -rf " .. dir)
    assert.matches("exit=[1-9]", out)
    local line = assert(out:match("\n  (%S[^\n]*" .. missing .. "[^\n]*)"), out)
    local program = line:match("^(%S+)")
    assert.is_true(sh_ok("command -v " .. program .. " >/dev/null 2>&1"),
      program .. " is not on this system: " .. line)
    assert.is_nil(line:match("apt%-get install[^\n]*lua5%.4"), "lua5.4 is installed: " .. line)
  end)
end)
