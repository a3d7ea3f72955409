-- doc/luals/kq.lua, the lua-language-server definitions, against the module:
-- every name require("kq") exports, and every constant it exports on some
-- system, is described (functions as functions, values as fields), nothing
-- is described that is not exported here unless
-- it is a constant kq exports on some system; a constant some system
-- lacks (tests/native/constants.txt) is marked platform-only (`integer?`,
-- "platform-only ..."), one every system has is not; every function documents each of its
-- parameters in order and what it returns; queue methods are methods of a
-- real queue; events and changes have the fields a real event has.
-- The checks are plain functions, also run on made-up input below, so that
-- this spec is seen to fail.
local kq = require("kq")

local FILE = "doc/luals/kq.lua"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

-- The annotations of a definition file: classes with their fields, and
-- functions (owner "kq" or "queue") with their parameters and the @param
-- and @return lines of the block above them.
local function parse(text)
  local classes, functions = {}, {}
  local class, params, returns = nil, {}, 0
  for line in (text .. "\n"):gmatch("(.-)\n") do
    local tag, rest = line:match("^%-%-%-@(%a+)%s*(.*)$")
    if tag == "class" then
      local name = rest:match("^([%w_.]+)")
      class = { fields = {} }
      classes[name] = class
    elseif tag == "field" and class then
      local name, ftype, desc = rest:match("^([%w_]+)%??%s+(%S+)%s*(.*)$")
      if name then class.fields[name] = { type = ftype, desc = desc } end
    elseif tag == "param" then
      params[#params + 1] = (rest:match("^(%S+)"):gsub("%?$", ""))
    elseif tag == "return" then
      returns = returns + 1
    elseif not line:match("^%-%-%-") then
      local owner, sep, name, args = line:match("^function%s+([%w_]+)([.:])([%w_]+)%((.-)%)")
      if owner then
        local list = {}
        for a in args:gmatch("[^,%s]+") do list[#list + 1] = a end
        functions[#functions + 1] = { owner = owner, method = sep == ":", name = name,
          args = list, params = params, returns = returns }
      end
      class, params, returns = nil, {}, 0
    end
  end
  return { classes = classes, functions = functions }
end

-- Every constant kq exports on some system, from tests/native/constants.txt
-- (the table of every system's values, held to csrc/kq_constants.c by
-- make check-headers): name -> "everywhere" or "platform-only".
local function all_constants()
  local t = dofile("tests/native/constants.lua").load()
  local names = {}
  for _, name in ipairs(t.names) do
    names[name] = "everywhere"
    for _, system in ipairs(t.systems) do
      if t.value[system][name] == nil then names[name] = "platform-only" end
    end
  end
  return names
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- Problems between the module table `module` and definitions `defs`;
-- `anywhere` holds the constants kq exports on some system, each
-- "everywhere" or "platform-only".
local function check_module(module, defs, anywhere)
  local problems = {}
  local fields = (defs.classes.kq or { fields = {} }).fields
  local funcs = {}
  for _, f in ipairs(defs.functions) do
    if f.owner == "kq" then funcs[f.name] = f end
  end
  for _, name in ipairs(sorted_keys(module)) do
    local v = module[name]
    if type(v) == "function" then
      if not funcs[name] then problems[#problems + 1] = "function kq." .. name .. " not described" end
    elseif not fields[name] then
      problems[#problems + 1] = "kq." .. name .. " not described"
    elseif type(v) == "number" and not fields[name].type:match("^integer%??$") then
      problems[#problems + 1] = "kq." .. name .. " is an integer, described as " .. fields[name].type
    end
  end
  for _, name in ipairs(sorted_keys(anywhere)) do
    if module[name] == nil and not fields[name] then
      problems[#problems + 1] = "kq." .. name .. " (on some system) not described"
    end
  end
  for _, name in ipairs(sorted_keys(funcs)) do
    if type(module[name]) ~= "function" then
      problems[#problems + 1] = "kq." .. name .. " described as a function, exported as " .. type(module[name])
    end
  end
  for _, name in ipairs(sorted_keys(fields)) do
    local field = fields[name]
    local optional = field.type:sub(-1) == "?"
    local says = field.desc:match("^platform%-only") ~= nil
    if optional ~= says then
      problems[#problems + 1] = "kq." .. name .. ": integer? and \"platform-only\" go together"
    end
    if anywhere[name] == "platform-only" and not optional then
      problems[#problems + 1] = "kq." .. name .. " is missing on some system, not marked platform-only"
    elseif anywhere[name] == "everywhere" and optional then
      problems[#problems + 1] = "kq." .. name .. " is on every system, marked platform-only"
    end
    if module[name] == nil then
      if not anywhere[name] then
        problems[#problems + 1] = "kq." .. name .. " described, exported on no system"
      elseif not optional then
        problems[#problems + 1] = "kq." .. name .. " not exported here, not marked platform-only"
      end
    end
  end
  return problems
end

-- Problems with the @param and @return lines of each function.
local function check_signatures(defs)
  local problems = {}
  for _, f in ipairs(defs.functions) do
    local name = f.owner .. (f.method and ":" or ".") .. f.name
    if table.concat(f.params, ",") ~= table.concat(f.args, ",") then
      problems[#problems + 1] = name .. ": @param " .. table.concat(f.params, ",")
        .. " for arguments " .. table.concat(f.args, ",")
    end
    if f.returns == 0 then problems[#problems + 1] = name .. ": no @return" end
  end
  return problems
end

-- Problems with the queue methods: each is a method of real queue `q`, and
-- takes what the kq function of the same name takes after the queue.
local function check_methods(defs, q)
  local problems, funcs = {}, {}
  for _, f in ipairs(defs.functions) do
    if f.owner == "kq" then funcs[f.name] = f end
  end
  for _, f in ipairs(defs.functions) do
    if f.owner == "queue" then
      if type(q[f.name]) ~= "function" then
        problems[#problems + 1] = "queue:" .. f.name .. " is not a method of a queue"
      elseif not funcs[f.name] then
        problems[#problems + 1] = "queue:" .. f.name .. " has no kq." .. f.name
      else
        local rest = {}
        for i = 2, #funcs[f.name].args do rest[#rest + 1] = funcs[f.name].args[i] end
        if table.concat(rest, ",") ~= table.concat(f.args, ",") then
          problems[#problems + 1] = "queue:" .. f.name .. " takes " .. table.concat(f.args, ",")
            .. ", kq." .. f.name .. " takes q," .. table.concat(rest, ",")
        end
      end
    end
  end
  return problems
end

local DEFS = parse(read(FILE))

describe("doc/luals/kq.lua", function()
  it("is Lua that compiles", function()
    assert.is_function(loadfile(FILE))
  end)

  it("describes every name require('kq') exports, and nothing else", function()
    assert.are.same({}, check_module(kq, DEFS, all_constants()))
  end)

  it("documents each parameter of each function, in order, and its returns", function()
    assert.is_true(#DEFS.functions > 10)
    assert.are.same({}, check_signatures(DEFS))
  end)

  it("describes queue methods that a queue has, as kq's functions take them", function()
    local q = assert(kq.kqueue())
    local problems = check_methods(DEFS, q)
    q:close()
    assert.are.same({}, problems)
    local methods = {}
    for _, f in ipairs(DEFS.functions) do
      if f.owner == "queue" then methods[#methods + 1] = f.name end
    end
    table.sort(methods)
    -- reference.md: q:kevent, q:close, q:fileno and q:getfd.
    assert.are.same({ "close", "fileno", "getfd", "kevent" }, methods)
  end)

  it("gives events and changes the fields of a real event", function()
    local q = assert(kq.kqueue())
    local events = {}
    assert.are.equal(0, q:kevent({
      { ident = 1, filter = kq.EVFILT_USER, flags = kq.EV_ADD },
      { ident = 1, filter = kq.EVFILT_USER, fflags = kq.NOTE_TRIGGER, udata = "u" },
    }, nil, 0))
    assert.are.equal(1, q:kevent(nil, events, 1, 5))
    q:close()
    local real = sorted_keys(events[1])
    assert.are.same(real, sorted_keys(DEFS.classes["kq.event"].fields))
    assert.are.same(real, sorted_keys(DEFS.classes["kq.change"].fields))
  end)
end)

describe("the LuaLS checks", function()
  local text = table.concat({
    "---@class kq",
    "---@field EV_ADD integer add",
    "---@field EV_GONE integer? platform-only: elsewhere",
    "---@field NOTE_X integer? platform-only: elsewhere",
    "---@field NOTE_Y integer? elsewhere",
    "local kq = {}",
    "---@param a integer",
    "---@return integer",
    "function kq.f(a) end",
    "---@param b integer",
    "function kq.g(a, b) end",
    "---@class kq.queue",
    "local queue = {}",
    "---@return integer",
    "function queue:f(x) end",
    "---@return integer",
    "function queue:h() end",
  }, "\n")
  local defs = parse(text)

  it("read classes, fields and functions", function()
    assert.are.equal("integer?", defs.classes.kq.fields.EV_GONE.type)
    assert.are.same({ "a" }, defs.functions[1].args)
    assert.are.same({ "b" }, defs.functions[2].params)
    assert.is_true(defs.functions[3].method)
  end)

  it("catch undescribed, invented and unmarked names", function()
    local module = { EV_ADD = 1, EV_NEW = 2, f = print, g = print, h = print, NOTE_Y = 3 }
    local problems = check_module(module, defs,
      { EV_GONE = "platform-only", EV_ELSEWHERE = "platform-only" })
    assert.are.same({
      "kq.EV_NEW not described",
      "function kq.h not described",
      "kq.EV_ELSEWHERE (on some system) not described",
      "kq.NOTE_X described, exported on no system",
      "kq.NOTE_Y: integer? and \"platform-only\" go together",
    }, problems)
    problems = check_module({ EV_ADD = 1, f = print, g = print }, parse(
      "---@class kq\n---@field EV_ADD string\n---@field EV_OLD integer old\nlocal kq = {}\n"
      .. "---@return integer\nfunction kq.f() end\n---@return integer\nfunction kq.g() end\n"),
      { EV_OLD = "platform-only", EV_ADD = "platform-only" })
    assert.are.same({ "kq.EV_ADD is an integer, described as string",
      "kq.EV_ADD is missing on some system, not marked platform-only",
      "kq.EV_OLD is missing on some system, not marked platform-only",
      "kq.EV_OLD not exported here, not marked platform-only" }, problems)
    problems = check_module({ EV_ADD = 1 }, parse(
      "---@class kq\n---@field EV_ADD integer? platform-only: no\nlocal kq = {}\n"),
      { EV_ADD = "everywhere" })
    assert.are.same({ "kq.EV_ADD is on every system, marked platform-only" }, problems)
  end)

  it("catch parameters missing or out of order, and no @return", function()
    assert.are.same({ "kq.g: @param b for arguments a,b", "kq.g: no @return",
      "queue:f: @param  for arguments x" }, check_signatures(defs))
  end)

  it("catch methods a queue lacks, or whose arguments differ from kq's", function()
    local q = { f = print, h = print }
    assert.are.same({ "queue:f takes x, kq.f takes q,", "queue:h has no kq.h" },
      check_methods(defs, q))
    assert.are.same({ "queue:f is not a method of a queue", "queue:h is not a method of a queue" },
      check_methods(defs, {}))
  end)
end)
