-- spec/helper.lua: loaded by busted before the specs (.busted `helper`),
-- and required by them as "spec.helper" for the shared tools.
--
--   h.fdcount()          open descriptors of this process
--   h.no_fd_leak(fn)     runs fn and asserts the descriptor count is back
--   h.closed_port()      a TCP port on 127.0.0.1 where nobody listens
--   h.tracker()          track, gone: gone() says whether every value
--                        passed to track(v) has been collected
--   h.is_integer(v)      v is an integer: the integer subtype on 5.3+, a
--                        whole number within +-2^53 on 5.1, 5.2, LuaJIT
--   h.unpack(t)          table.unpack, or unpack on 5.1 and LuaJIT
--   h.rawlen(t)          rawlen, or # (raw on tables) on 5.1 and LuaJIT
--   h.numtype(v)         math.type(v) on 5.3+; "number" for any number
--                        where numbers have no subtype (5.1, 5.2, LuaJIT)
--   h.finalised(fn)      a new object whose finaliser calls fn: a table
--                        with __gc, or on 5.1 and LuaJIT (no __gc for
--                        tables) a newproxy userdata
--   h.gc_tune(pause, stepmul)
--                        sets the collector's pause and step multiplier,
--                        returns a function that puts the old ones back
--   h.fn(name)           the pattern for a function's name in "bad argument
--                        #n to '<name>'": 5.3+ finds kq.<name> in
--                        package.loaded; 5.1, 5.2 and LuaJIT say '?' for
--                        a function pcall calls directly
--   h.maxint, h.minint   the widest integers kq takes on this Lua:
--                        math.maxinteger/mininteger, or +-(2^53 - 1)
--                        where numbers are doubles
--   assert.os_error(en, v, msg, errno)
--                        v is nil, msg a "name: text" string, errno == en
--
-- Cleanups (busted's finally() keeps only the last function of a test):
--   h.closer()           per test: returns defer(fn); at the end runs every
--                        fn, last first, each under pcall
--   h.defer(fn)          adds fn to this test's cleanups, run last first at
--                        its end, every one even if one fails (its error
--                        is raised after); h.finally is the same function
--   h.newq(defer)        a new queue, closed through defer (or finally)
--   h.withq(fn)          a test body: fn(q) with a new queue, closed after
--   h.pair(defer, kind)  kt.socketpair(kind or "stream"), both closed after
--
-- Changes and events:
--   h.ch(ident, filter, flags, fflags, data, udata)
--                        a change table, fflags and data 0 by default
--   h.apply(q, ...)      applies the changes, asserting kevent returns 0
--   h.copy_events(list, n)
--                        plain-table copies of the first n events of list
--   h.wait(q, nevents, timeout)
--                        events of one call (8 and 0 by default), copied
--                        into plain tables
--   h.user_exists(q, id) whether USER knote id exists (kept if it does)
--   h.freebsd_kevent     true where kevent follows FreeBSD's rules for the
--                        flags of events and for filter 0 (FreeBSD, the
--                        engine, the native build over the engine)
--   h.evflags(flags)     the flags of a returned event as the specs compare
--                        them: exact where h.freebsd_kevent, else without
--                        the actions the system may leave in (see below)
--   h.shown(ev)          a plain copy of event ev's six fields (read
--                        through the view), flags through h.evflags
--   h.evflags_text(s)    s (kq.describe's or an example's output) with the
--                        names after each "flags=" passed through h.evflags
--   assert.evflags(expected, flags)
--                        an event's flags are expected, FreeBSD's way:
--                        h.evflags of both sides are equal
--   h.fire(ident, udata, fflags, data)
--                        a change that triggers USER knote ident (fflags
--                        added to NOTE_TRIGGER) and leaves its udata as it
--                        is: EV_KEEPUDATA where the system has it (FreeBSD,
--                        the engine), else udata passed again (macOS,
--                        OpenBSD and NetBSD replace udata on every modify)
--
-- Descriptors:
--   h.use_up_fds(defer, room)
--                        sets the limit to room above the open count and
--                        dups until none is left; returns the dups (closed,
--                        and the limit put back, through defer)
local assert = require("luassert")
local say = require("say")
local kq = require("kq")
local kt = require("kqtest")

-- A finaliser that raises is only a warning in 5.4: make it visible.
-- (5.1 to 5.3 have no warn(); there the error is lost either way.)
local warn = rawget(_G, "warn")
if warn then warn("@on") end

local h = {}

-- track, gone = h.tracker(): track(v) returns v and watches it weakly;
-- gone() collects and says whether every watched value was collected.
function h.tracker()
  local weak = setmetatable({}, { __mode = "k" })
  return function(v) weak[v] = true; return v end, function()
    collectgarbage()
    collectgarbage()
    return next(weak) == nil
  end
end

-- A TCP port on 127.0.0.1 where nobody listens: bound, noted, closed.
function h.closed_port()
  local srv = assert(require("socket").bind("127.0.0.1", 0))
  local _, port = srv:getsockname()
  srv:close()
  return port
end

function h.fdcount()
  return kt.fdcount()
end

function h.no_fd_leak(fn)
  -- Collect first: descriptors owned by garbage of earlier tests would
  -- otherwise close during fn and hide a leak.
  collectgarbage()
  collectgarbage()
  local before = kt.fdcount()
  fn()
  collectgarbage()
  collectgarbage()
  assert.are.equal(before, kt.fdcount(), "descriptor count changed")
end

h.unpack = rawget(table, "unpack") or rawget(_G, "unpack")
h.rawlen = rawget(_G, "rawlen") or function(t) return #t end
h.maxint = rawget(math, "maxinteger") or 2 ^ 53 - 1
h.minint = rawget(math, "mininteger") or -(2 ^ 53 - 1)

function h.fn(name)
  if _VERSION < "Lua 5.3" then return "%?" end
  return "[%w.]*" .. name
end

local newproxy = rawget(_G, "newproxy")
function h.finalised(fn)
  if newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = function() fn() end
    return p
  end
  return setmetatable({}, { __gc = function() fn() end })
end

function h.gc_tune(pause, stepmul)
  local old_pause = collectgarbage("setpause", pause)
  local old_stepmul = collectgarbage("setstepmul", stepmul)
  return function()
    collectgarbage("setpause", old_pause)
    collectgarbage("setstepmul", old_stepmul)
  end
end

local math_type = rawget(math, "type")
function h.is_integer(v)
  if math_type then return math_type(v) == "integer" end
  return type(v) == "number" and v % 1 == 0 and v >= -2 ^ 53 and v <= 2 ^ 53
end

function h.numtype(v)
  if math_type then return math_type(v) end
  return type(v) == "number" and "number" or nil
end

-- assert.os_error(expected_errno, nil, "kevent: ...", errno)
local function os_error(state, arguments)
  local expected, v, msg, en = arguments[1], arguments[2], arguments[3],
    arguments[4]
  state.failure_message = string.format(
    "expected nil, \"name: text\", %s; got %s, %s, %s",
    tostring(expected), tostring(v), tostring(msg), tostring(en))
  return v == nil and type(msg) == "string" and msg:match("^%w+: .+") ~= nil
    and h.is_integer(en) and en == expected
end

-- busted's finally() is no global: it lives in the running test's
-- environment, which is the _ENV of the spec files but not of this module.
-- Keep that environment from the spec requiring this module (or, failing
-- that, from the stack when a helper is called) and look finally up in it.
-- (On 5.1 and LuaJIT a function's environment is getfenv's, not _ENV.)
local getfenv = rawget(_G, "getfenv")
local function env_of(fn)
  if getfenv then return getfenv(fn) end
  for i = 1, math.huge do
    local name, value = debug.getupvalue(fn, i)
    if name == nil or name == "_ENV" then return value end
  end
end

local function spec_env_on_stack(from)
  for level = from, 100 do
    local info = debug.getinfo(level, "fS")
    if not info then return nil end
    if info.what ~= "C" then
      local env = env_of(info.func)
      if env ~= _G and type(env) == "table" then return env end
    end
  end
end

local spec_env = spec_env_on_stack(2)

local function test_finally(fn)
  spec_env = spec_env or spec_env_on_stack(3)
  local finally = spec_env and spec_env.finally
  if not finally then
    error("spec.helper: no busted finally() here (only inside a test)", 3)
  end
  finally(fn)
end

function h.closer()
  local list = {}
  test_finally(function()
    for i = #list, 1, -1 do pcall(list[i]) end
  end)
  return function(f) list[#list + 1] = f end
end

local pending
function h.defer(fn)
  if not pending then
    local mine = {}
    pending = mine
    test_finally(function()
      pending = nil
      -- Every cleanup runs, last first; the first error is raised after.
      local first
      for i = #mine, 1, -1 do
        local ok, err = pcall(mine[i])
        if not ok and first == nil then first = err end
      end
      if first ~= nil then error(first, 0) end
    end)
  end
  pending[#pending + 1] = fn
end
-- A finally() that keeps every function it is given (busted's keeps only
-- the last one): spec files say `local finally = h.finally`.
h.finally = h.defer

function h.newq(defer)
  local q = assert(kq.kqueue())
  defer(function() q:close() end)
  return q
end

function h.withq(fn)
  return function()
    local q = assert(kq.kqueue())
    test_finally(function() q:close() end)
    fn(q)
  end
end

function h.pair(defer, kind)
  local a, b = assert(kt.socketpair(kind or "stream"))
  defer(function() kt.close(a); kt.close(b) end)
  return a, b
end

function h.ch(ident, filter, flags, fflags, data, udata)
  return { ident = ident, filter = filter, flags = flags, fflags = fflags or 0,
    data = data or 0, udata = udata }
end

function h.apply(q, ...)
  local n, msg = q:kevent({ ... })
  assert(n == 0, msg)
end

function h.copy_events(list, n)
  local out = {}
  for i = 1, n do
    local e = list[i]
    out[i] = { ident = e.ident, filter = e.filter, flags = e.flags,
      fflags = e.fflags, data = e.data, udata = e.udata }
  end
  return out
end

function h.wait(q, nevents, timeout)
  local list = {}
  local n, msg = q:kevent(nil, list, nevents or 8, timeout or 0)
  assert(n, msg)
  return h.copy_events(list, n)
end

function h.user_exists(q, id)
  local USER = kq.EVFILT_USER
  local n = q:kevent({ { ident = id, filter = USER, flags = kq.EV_DELETE } })
  if n then q:kevent({ { ident = id, filter = USER, flags = kq.EV_ADD } }) end
  return n == 0
end

-- Which systems follow FreeBSD's kevent rules.  FreeBSD's kqueue_register
-- strips EV_ADD, EV_DELETE, EV_ENABLE, EV_DISABLE and EV_FORCEONESHOT from
-- the flags it stores, so an event shows only EV_ONESHOT, EV_CLEAR,
-- EV_RECEIPT, EV_DISPATCH and what the filter sets (EV_EOF, EV_ERROR...),
-- and its kevent skips a change with filter 0 without an entry.  The Linux
-- engine gives the same (kq.backend "linux"); so does the native build over
-- the engine (`make check-native`, kq.backend "native"), whose headers are
-- the engine's.  Natively we tell FreeBSD by EV_FORCEONESHOT: kq exports a
-- name only where the system's <sys/event.h> defines it, and only FreeBSD's
-- and the engine's do (macOS gives 0x100 another name and meaning, OpenBSD
-- and NetBSD have none; doc/portability.md, "Flags").  A name, not the
-- system's name: kq does not export one, and the rule is the kernel's.
h.freebsd_kevent = kq.backend == "linux" or kq.EV_FORCEONESHOT ~= nil

-- Elsewhere (doc/portability.md, "Flags in events", "Error entries",
-- "Receipts"): macOS, OpenBSD and NetBSD store the flags of the adding
-- change as given, so events keep EV_ADD and any EV_ENABLE, EV_DISABLE or
-- EV_DELETE it carried; whether EV_RECEIPT shows in later events differs;
-- and macOS ORs EV_ERROR into the change's own flags in an error entry.
-- There an error entry compares as EV_ERROR alone and any other event as
-- its flags without those five actions.  Where h.freebsd_kevent, nothing
-- is masked: a spec that expects EV_CLEAR sees exactly EV_CLEAR, so an
-- action flag leaking into an event fails it (flags_spec.lua also states
-- the rule itself, "(FreeBSD)").  Specs compare with assert.evflags
-- (expected, ev.flags), which passes both sides through h.evflags: an
-- expected EV_RECEIPT + EV_CLEAR stays whole on FreeBSD and the engine.
local SHOWN_ACTIONS = kq.bor(kq.EV_ADD, kq.EV_DELETE, kq.EV_ENABLE,
  kq.EV_DISABLE, kq.EV_RECEIPT)

function h.evflags(flags)
  if h.freebsd_kevent then return flags end
  if kq.band(flags, kq.EV_ERROR) ~= 0 then return kq.EV_ERROR end
  return flags - kq.band(flags, SHOWN_ACTIONS)
end

function h.fire(ident, udata, fflags, data)
  local change = { ident = ident, filter = kq.EVFILT_USER,
    flags = kq.EV_KEEPUDATA or 0, fflags = kq.NOTE_TRIGGER + (fflags or 0),
    data = data or 0 }
  if not kq.EV_KEEPUDATA then change.udata = udata end
  return change
end

function h.use_up_fds(defer, room)
  local keep = {}
  local old = assert(kt.setrlimit_nofile(kt.fdcount() + room))
  defer(function()
    for _, fd in ipairs(keep) do kt.close(fd) end
    kt.setrlimit_nofile(old)
  end)
  while true do
    local fd = kt.dup(0)
    if not fd then break end
    keep[#keep + 1] = fd
  end
  return keep
end

function h.shown(ev)
  return { ident = ev.ident, filter = ev.filter, flags = h.evflags(ev.flags),
    fflags = ev.fflags, data = ev.data, udata = ev.udata }
end

-- The names kq.flagnames gave back as a number ("0", names, hex for
-- unknown bits), passed through h.evflags and named again.
local function shown_names(prefix, names)
  local v = 0
  for name in names:gmatch("[^|]+") do
    v = v + (kq["EV_" .. name] or tonumber(name) or error("no flag " .. name))
  end
  return prefix .. kq.flagnames(h.evflags(v))
end

function h.evflags_text(s)
  if h.freebsd_kevent then return s end
  return (s:gsub("(%f[%w]flags=)([%w|]+)", shown_names))
end

local function evflags(_, arguments)
  local expected, actual = arguments[1], arguments[2]
  if type(expected) ~= "number" or type(actual) ~= "number" then return false end
  arguments[1] = string.format("0x%x", h.evflags(expected))
  arguments[2] = string.format("0x%x", h.evflags(actual))
  arguments.n = 2
  return arguments[1] == arguments[2]
end

say:set("assertion.evflags.positive",
  "Expected event flags (as h.evflags shows them):\n%s\nPassed in:\n%s")
say:set("assertion.evflags.negative",
  "Expected event flags other than (as h.evflags shows them):\n%s\nPassed in:\n%s")
assert:register("assertion", "evflags", evflags,
  "assertion.evflags.positive", "assertion.evflags.negative")

say:set("assertion.os_error.positive", "Expected an OS error triple")
say:set("assertion.os_error.negative", "Expected no OS error triple")
assert:register("assertion", "os_error", os_error,
  "assertion.os_error.positive", "assertion.os_error.negative")

return h
