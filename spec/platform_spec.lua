-- kq on each system it supports: the constants it exports are one column
-- of tests/native/constants.txt (the table check-headers holds the
-- stand-in headers and csrc/kq_constants.c to), and lua/kq/init.lua names
-- each system's filters, flags and timer units right, given that
-- system's constants.  doc/portability.md says what differs.
local kq = require("kq")
local C = dofile("tests/native/constants.lua")
local T = C.load()

local FLAG_OR_NOTE = { "EV_", "NOTE_" }

local function is_constant(name)
  return name:match("^EVFILT_") or name:match("^EV_%u") or name:match("^NOTE_")
end

-- The columns whose names and values are exactly kq's.
local function matching_columns(module)
  local found = {}
  for _, id in ipairs(T.systems) do
    local want, same = T.value[id], true
    for _, name in ipairs(T.names) do
      if module[name] ~= want[name] then same = false end
    end
    for name in pairs(module) do
      if is_constant(name) and type(module[name]) == "number" and want[name] == nil then
        same = false
      end
    end
    if same then found[#found + 1] = id end
  end
  return found
end

-- lua/kq/init.lua loaded over kq.core's functions and system `id`'s
-- constants, as it would load on that system.
local function kq_on(id)
  local core = require("kq.core")
  local fake = {}
  for k, v in pairs(core) do
    if not (type(k) == "string" and is_constant(k)) then fake[k] = v end
  end
  for name, v in pairs(T.value[id]) do fake[name] = v end
  local saved = package.loaded["kq.core"]
  package.loaded["kq.core"] = fake
  local ok, mod = pcall(dofile, "lua/kq/init.lua")
  package.loaded["kq.core"] = saved
  assert(ok, mod)
  return mod
end

describe("kq's constants", function()
  it("are exactly one system's column of constants.txt", function()
    local found = matching_columns(kq)
    assert.are.equal(1, #found, "columns matching: " .. table.concat(found, ", "))
    if kq.backend == "linux" then assert.are.equal("engine", found[1]) end
  end)

  it("are non-negative for flags and notes, whatever the header's type", function()
    for name, v in pairs(kq) do
      for _, prefix in ipairs(FLAG_OR_NOTE) do
        if type(v) == "number" and name:sub(1, #prefix) == prefix then
          assert.is_true(v >= 0, name)
        end
      end
    end
  end)
end)

describe("the Lua helpers, given each system's constants,", function()
  for _, id in ipairs(T.systems) do
    local V = T.value[id]

    it("name every filter of " .. C.TITLES[id] .. " and no count", function()
      local m = kq_on(id)
      for name, v in pairs(V) do
        if name:match("^EVFILT_") and name ~= "EVFILT_SYSCOUNT"
            and name ~= "EVFILT_THREADMARKER" then
          assert.are.equal(name:sub(8), m.filtername(v), name)
        end
      end
      assert.is_nil(m.filtername(V.EVFILT_SYSCOUNT))
      assert.are.equal("READ", m.filtername(V.EVFILT_READ))
    end)

    it("decode " .. C.TITLES[id] .. "'s timer units", function()
      local m = kq_on(id)
      local TIMER = V.EVFILT_TIMER
      local function names(fflags) return m.fflagnames(TIMER, fflags) end
      assert.are.equal("0", names(0))
      for _, unit in ipairs({ "SECONDS", "USECONDS", "NSECONDS" }) do
        if V["NOTE_" .. unit] then
          assert.are.equal(unit, names(V["NOTE_" .. unit]))
          local abs = V.NOTE_ABSTIME and "ABSTIME" or V.NOTE_ABSOLUTE and "ABSOLUTE"
          if abs then
            assert.are.equal(unit .. "|" .. abs,
              names(V["NOTE_" .. unit] + V["NOTE_" .. abs]))
          end
        end
      end
      if V.NOTE_MSECONDS and V.NOTE_MSECONDS ~= 0 then
        assert.are.equal("MSECONDS", names(V.NOTE_MSECONDS))
      end
      if V.NOTE_MSECONDS == 0 and V.NOTE_ABSTIME then
        assert.are.equal("ABSTIME", names(V.NOTE_MSECONDS + V.NOTE_ABSTIME))
      end
      assert.are.equal("ident=1 filter=TIMER flags=ADD fflags=" .. names(V.NOTE_NSECONDS or 0)
        .. " data=5 udata=nil", m.describe({ ident = 1, filter = TIMER, flags = V.EV_ADD,
          fflags = V.NOTE_NSECONDS or 0, data = 5 }))
    end)

    it("name " .. C.TITLES[id] .. "'s flags, each bit once", function()
      local m = kq_on(id)
      assert.are.equal("ADD|ONESHOT", m.flagnames(V.EV_ADD + V.EV_ONESHOT))
      assert.are.equal("ERROR", m.flagnames(V.EV_ERROR))
      assert.are.equal("EOF", m.flagnames(V.EV_EOF))
      assert.are.equal("0", m.flagnames(0))
    end)
  end
end)

describe("a change with filter 0", function()
  local h = require("spec.helper")

  -- Where no filter is 0 (all but NetBSD) the system skips or rejects it,
  -- so kq keeps no anchor for its udata: nothing can ever deliver it.
  if kq.EVFILT_READ ~= 0 then
    it("keeps no udata alive where no filter is 0, nevents 0 or not", function()
      local q = h.newq(h.defer)
      local track, gone = h.tracker()
      for _, nevents in ipairs({ 0, 4 }) do
        local evs = {}
        local n = q:kevent({ { ident = 1, filter = 0, flags = kq.EV_ADD, udata = track({}) },
          { ident = 2, filter = kq.EVFILT_USER, flags = kq.EV_ADD } }, evs, nevents, 0)
        assert.is_number(n) -- skipped (FreeBSD, engine) or an error entry
      end
      assert.is_true(gone())
      assert.is_true(h.user_exists(q, 2))
    end)
  end

  -- NetBSD: 0 is EVFILT_READ, a registration like any other.
  if kq.EVFILT_READ == 0 then
    it("registers READ on NetBSD", function()
      local a, b = h.pair(h.defer)
      local q = h.newq(h.defer)
      h.apply(q, h.ch(a, 0, kq.EV_ADD))
      assert.are.equal(1, require("kqtest").write(b, "x"))
      local evs = h.wait(q, 1, 1)
      assert.are.equal(1, #evs)
      assert.are.equal(0, evs[1].filter)
    end)
  end
end)
