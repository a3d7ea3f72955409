-- kq: the BSD kqueue API for Lua 5.1 to 5.4 and LuaJIT.
--
-- require("kq") returns a new table holding everything kq.core (the C
-- binding) exports, plus helpers that are easier in Lua: symbolic names
-- for filters, flags and notes, and a one-line description of an event.
-- Nothing here is global.

local core = require("kq.core")
-- No bitwise operators here: they are syntax errors before 5.3.
local band = core.band

local kq = {}
for k, v in pairs(core) do
  kq[k] = v
end

-- Names without their prefix, for the constants this platform has.
local function names_with(prefix, exclude)
  local list = {}
  for name, value in pairs(core) do
    if type(value) == "number" and name:sub(1, #prefix) == prefix
        and not (exclude and exclude[name]) then
      list[#list + 1] = { name = name:sub(#prefix + 1), value = value }
    end
  end
  -- Lowest bit first, so "CLEAR|EOF" reads in a stable order.
  table.sort(list, function(a, b)
    if a.value ~= b.value then return a.value < b.value end
    return a.name < b.name
  end)
  return list
end

-- Filter number -> name (EVFILT_SYSCOUNT is a count, not a filter, and
-- macOS's EVFILT_THREADMARKER is that count again).
local filter_names = {}
for _, f in ipairs(names_with("EVFILT_",
    { EVFILT_SYSCOUNT = true, EVFILT_THREADMARKER = true })) do
  filter_names[f.value] = filter_names[f.value] or f.name
end

-- Single-bit EV_* flags; EV_SYSFLAGS is a mask and is left out.
local function single_bits(list)
  local bits = {}
  for _, f in ipairs(list) do
    local v = f.value
    if v > 0 and band(v, v - 1) == 0 then
      bits[#bits + 1] = f
    end
  end
  return bits
end

local flag_bits = single_bits(names_with("EV_", { EV_SYSFLAGS = true }))

-- Bits as NAME|NAME, leftover bits in hex; "0" for none.
local function bitnames(bits, value)
  if value == 0 then return "0" end
  local parts, rest = {}, value
  for _, f in ipairs(bits) do
    if band(rest, f.value) ~= 0 then
      parts[#parts + 1] = f.name
      rest = rest - f.value -- the bit is set: clearing it is exact
    end
  end
  if rest ~= 0 then
    parts[#parts + 1] = string.format("0x%x", rest)
  end
  return table.concat(parts, "|")
end

-- NOTE_* values overlap across filters (several are 0x1), so each filter
-- that has symbolic fflags gets its own reverse map.
local function notes(list)
  local bits = {}
  for _, name in ipairs(list) do
    local v = core["NOTE_" .. name]
    if v then bits[#bits + 1] = { name = name, value = v } end
  end
  return bits
end

-- Each system's names for the filter (the missing ones are skipped).
local note_bits = {}
if core.EVFILT_VNODE then
  note_bits[core.EVFILT_VNODE] = notes({
    "DELETE", "WRITE", "EXTEND", "ATTRIB", "LINK", "RENAME", "REVOKE",
    "OPEN", "CLOSE", "CLOSE_WRITE", "READ", -- FreeBSD, NetBSD 10
    "TRUNCATE", -- OpenBSD
    "NONE", "FUNLOCK", "LEASE_DOWNGRADE", "LEASE_RELEASE", -- macOS
  })
end
if core.EVFILT_PROC then
  note_bits[core.EVFILT_PROC] = notes({
    "TRACK", "TRACKERR", "CHILD", "EXEC", "FORK", "EXIT",
    "SIGNAL", "REAP", "EXITSTATUS", "EXIT_DETAIL", -- macOS, FreeBSD 15
  })
end

-- Timer units (doc/portability.md, "Timer units"): one bit each on
-- FreeBSD and macOS, but a number in the low bits on OpenBSD and NetBSD,
-- where NOTE_MSECONDS is 0 and NOTE_NSECONDS is SECONDS + USECONDS.
local timer_units -- unit number -> name, where units are numbers
if core.EVFILT_TIMER then
  local units = {
    "SECONDS", "MSECONDS", "USECONDS", "NSECONDS",
    "ABSOLUTE", "LEEWAY", "CRITICAL", "BACKGROUND", -- macOS
    "MACH_CONTINUOUS_TIME", "MACHTIME",
  }
  if core.NOTE_MSECONDS == 0 then
    timer_units = { mask = 0 }
    for _, name in ipairs({ "SECONDS", "USECONDS", "NSECONDS" }) do
      local v = core["NOTE_" .. name]
      if v then
        timer_units[v] = name
        while timer_units.mask < v do timer_units.mask = timer_units.mask * 2 + 1 end
      end
    end
    units = {}
  end
  units[#units + 1] = "ABSTIME"
  note_bits[core.EVFILT_TIMER] = notes(units)
end

--- The name of filter `n` without "EVFILT_" ("READ"), or nil.
function kq.filtername(n)
  return filter_names[n]
end

--- EV_* flags as "CLEAR|EOF" ("0" for none; unknown bits in hex).
function kq.flagnames(flags)
  return bitnames(flag_bits, flags)
end

--- fflags of `filter` as "WRITE|EXTEND" where the filter's notes are bit
-- names (VNODE, PROC, TIMER); otherwise the number as a string.
function kq.fflagnames(filter, fflags)
  local bits = note_bits[filter]
  if not bits then return tostring(fflags) end
  if timer_units and filter == core.EVFILT_TIMER and fflags > 0 then
    local unit = band(fflags, timer_units.mask)
    local rest = fflags - unit
    local name = timer_units[unit]
    if unit == 0 then return bitnames(bits, rest) end
    if not name then return bitnames(bits, fflags) end
    if rest == 0 then return name end
    return name .. "|" .. bitnames(bits, rest)
  end
  return bitnames(bits, fflags)
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

--- One line for an event or error entry:
-- "ident=5 filter=READ flags=CLEAR|EOF fflags=0 data=3 udata=nil".
function kq.describe(ev)
  local filter = ev.filter
  local fflags
  if band(ev.flags, core.EV_ERROR or 0) ~= 0 then
    fflags = tostring(ev.fflags) -- an error entry echoes the change
  else
    fflags = kq.fflagnames(filter, ev.fflags)
  end
  return string.format("ident=%s filter=%s flags=%s fflags=%s data=%s udata=%s",
    tostring(ev.ident), filter_names[filter] or tostring(filter),
    kq.flagnames(ev.flags), fflags, tostring(ev.data), show(ev.udata))
end

--- A change table: kq.change(ident, filter, flags, fflags, data, udata).
function kq.change(ident, filter, flags, fflags, data, udata)
  return {
    ident = ident, filter = filter, flags = flags or 0,
    fflags = fflags or 0, data = data or 0, udata = udata,
  }
end

--- A plain table with the six fields of an event (a view of a
-- kq.eventlist, or any event or change table), `data` read now: for
-- keeping an event beyond the next kevent call, or changing it.
function kq.copy(ev)
  if type(ev) ~= "table" then
    error(string.format("bad argument #1 to 'copy' (table expected, got %s)",
      ev == nil and "no value" or type(ev)), 2)
  end
  return {
    ident = ev.ident, filter = ev.filter, flags = ev.flags,
    fflags = ev.fflags, data = ev.data, udata = ev.udata,
  }
end

return kq
