-- kq.eventlist(): an eventlist whose entries are read-only event views,
-- the same table objects from call to call, each showing the latest event
-- written to its slot; kq.copy(ev) for a plain snapshot.  Every view is
-- checked against what a plain {} eventlist gives for the same events.
local kq = require("kq")
local kt = require("kqtest")
local h = require("spec.helper")
local defer = h.defer -- keeps every cleanup (busted's finally keeps the last)

local READ, WRITE, USER, TIMER = kq.EVFILT_READ, kq.EVFILT_WRITE,
  kq.EVFILT_USER, kq.EVFILT_TIMER
local EV_ADD, EV_DELETE, EV_CLEAR, EV_EOF, EV_ERROR, EV_ONESHOT, EV_RECEIPT =
  kq.EV_ADD, kq.EV_DELETE, kq.EV_CLEAR, kq.EV_EOF, kq.EV_ERROR, kq.EV_ONESHOT,
  kq.EV_RECEIPT
local TRIGGER = kq.NOTE_TRIGGER
local E = kt.errno
local FIELDS = { "ident", "filter", "flags", "fflags", "data", "udata" }
local LINUX = kq.backend == "linux"

-- The six fields of ev read with normal indexing, into a plain table.
local function fields(ev)
  local t = {}
  for _, k in ipairs(FIELDS) do t[k] = ev[k] end
  return t
end

local function key(ev)
  return ev.filter .. ":" .. ev.ident
end

-- Asserts that a and b read the same six values (udata by identity).
local function same_event(a, b, what)
  for _, k in ipairs(FIELDS) do
    local va, vb = a[k], b[k]
    assert.is_true(rawequal(va, vb), ("%s.%s: %s ~= %s"):format(
      what or "event", k, tostring(va), tostring(vb)))
    assert.are.equal(h.numtype(va), h.numtype(vb), (what or "event") .. "." .. k)
  end
end

local function is_view(v)
  return type(v) == "table" and getmetatable(v) == "kq.event"
end

-- The udata each ready_user() knote was added with, held weakly: trigger()
-- passes it again where the system has no EV_KEEPUDATA (see h.fire).
local added_udata = setmetatable({}, { __mode = "k" })

-- A USER knote `id` that is ready now (EV_CLEAR: one event per trigger).
local function ready_user(q, id, udata)
  added_udata[q] = added_udata[q] or setmetatable({}, { __mode = "v" })
  added_udata[q][id] = udata
  h.apply(q, h.ch(id, USER, EV_ADD + EV_CLEAR, 0, 0, udata))
  h.apply(q, h.fire(id, udata))
end

-- One socket with "abc" from its peer `a`, watched by two queues, each
-- collected once: into a plain eventlist and into a kq.eventlist().
local function plain_and_views()
  local q1, q2 = h.newq(defer), h.newq(defer)
  local a, b = h.pair(defer)
  h.apply(q1, h.ch(b, READ, EV_ADD))
  h.apply(q2, h.ch(b, READ, EV_ADD))
  assert(kt.write(a, "abc"))
  local plain, evl = {}, kq.eventlist()
  assert.are.equal(1, q1:kevent(nil, plain, 1, 0))
  assert.are.equal(1, q2:kevent(nil, evl, 1, 0))
  return plain, evl, a
end

-- A socket b with `bytes` from its peer a, under a READ knote (flags
-- EV_ADD by default, udata `udata`), collected once into a kq.eventlist.
local function read_view(bytes, udata, flags)
  local q = h.newq(defer)
  local a, b = h.pair(defer)
  h.apply(q, h.ch(b, READ, flags or EV_ADD, 0, 0, udata))
  assert(kt.write(a, bytes))
  local evl = kq.eventlist()
  assert.are.equal(1, q:kevent(nil, evl, 1, 0))
  return q, evl, a, b
end

-- A ready USER knote id (udata `udata`) collected once into a new
-- kq.eventlist: the queue, the list and its first view.
local function user_view(id, udata)
  local q = h.newq(defer)
  ready_user(q, id, udata)
  local evl = kq.eventlist()
  assert.are.equal(1, q:kevent(nil, evl, 1, 0))
  return q, evl, evl[1]
end

local function trigger(q, id)
  h.apply(q, h.fire(id, added_udata[q] and added_udata[q][id]))
end

local tracker = h.tracker

describe("kq.eventlist()", function()
  it("returns a new table with the protected metatable kq.eventlist", function()
    local evl = kq.eventlist()
    assert.are.equal("table", type(evl))
    assert.are.equal("kq.eventlist", getmetatable(evl))
    assert.has_error(function() setmetatable(evl, {}) end)
    assert.are.equal("kq.eventlist", getmetatable(evl))
    local other = kq.eventlist()
    assert.is_false(rawequal(evl, other))
  end)

  it("is accepted by q:kevent and kq.kevent and filled with views", function()
    local q = h.newq(defer)
    ready_user(q, 1, "one")
    local evl = kq.eventlist()
    assert.are.equal(1, q:kevent(nil, evl, 4, 0))
    assert.is_true(is_view(evl[1]))
    assert.are.equal(1, evl[1].ident)
    trigger(q, 1)
    assert.are.equal(1, kq.kevent(q, nil, evl, 4, 0))
    assert.is_true(is_view(evl[1]))
    assert.are.equal("one", evl[1].udata)
  end)
end)

describe("a view", function()
  it("reads the same six fields as a plain eventlist's entry", function()
    -- Two queues with the same registrations: one collected into {}, the
    -- other into kq.eventlist().  Data is left unread until both are in.
    local q1, q2 = h.newq(defer), h.newq(defer)
    local a, b = h.pair(defer)
    local a2, b2 = h.pair(defer)
    local r, w = assert(kt.pipe())
    defer(function() kt.close(r); kt.close(w) end)
    local u_table, u_fn = {}, function() end
    for _, q in ipairs({ q1, q2 }) do
      h.apply(q,
        h.ch(b, READ, EV_ADD, 0, 0, u_table),
        h.ch(b2, READ, EV_ADD, kq.NOTE_LOWAT, 2, "lowat"),
        h.ch(w, WRITE, EV_ADD + EV_CLEAR, 0, 0, 2.5),
        h.ch(7, USER, EV_ADD + EV_CLEAR, 0, 0, u_fn),
        h.fire(7, u_fn, kq.NOTE_FFCOPY + 0x15, 99),
        h.ch(3, TIMER, EV_ADD + EV_ONESHOT, 0, 0, true))
    end
    assert(kt.write(a, "abc"))
    assert(kt.write(a2, "xyz"))
    local plain, evl = {}, kq.eventlist()
    local n1 = q1:kevent(nil, plain, 16, 1)
    local n2 = kq.kevent(q2, nil, evl, 16, 1)
    assert.are.equal(5, n1)
    assert.are.equal(n1, n2)
    local want = {}
    for i = 1, n1 do want[key(plain[i])] = plain[i] end
    local seen = {}
    for i = 1, n2 do
      local v = evl[i]
      assert.is_true(is_view(v), "evl[" .. i .. "] is a view")
      local p = want[key(v)]
      assert.is_truthy(p, "no plain event for " .. key(v))
      same_event(p, v, key(v))
      assert.are.equal(kq.describe(p), kq.describe(v))
      seen[key(v)] = true
    end
    for k in pairs(want) do assert.is_true(seen[k], k) end
    local rv = want[READ .. ":" .. b]
    assert.are.equal(3, rv.data)
    assert.are.equal(99, want[USER .. ":7"].data)
    assert.are.equal(0x15, want[USER .. ":7"].fflags)
  end)

  it("of error and receipt entries carries EV_ERROR and the errno", function()
    local q1, q2 = h.newq(defer), h.newq(defer)
    local u = {}
    local changes = {
      h.ch(1, USER, EV_ADD + EV_RECEIPT, 0, 0, u),
      h.ch(9, USER, EV_DELETE, 0, 0, "missing"),
      h.ch(2, USER, kq.EV_ENABLE + kq.EV_DISABLE),
    }
    local plain, evl = {}, kq.eventlist()
    assert.are.equal(3, q1:kevent(changes, plain, 8, 0))
    assert.are.equal(3, q2:kevent(changes, evl, 8, 0))
    for i = 1, 3 do
      assert.is_true(is_view(evl[i]))
      same_event(plain[i], evl[i], "entry " .. i)
      assert.is_true(kq.band(evl[i].flags, EV_ERROR) ~= 0)
    end
    assert.are.equal(0, evl[1].data)
    assert.is_true(rawequal(u, evl[1].udata))
    assert.are.equal(9, evl[2].ident)
    assert.are.equal(E.ENOENT, evl[2].data)
    assert.are.equal("missing", evl[2].udata)
    assert.are.equal(E.EINVAL, evl[3].data)
  end)

  it("of an event, then of an error entry, then of an event again", function()
    local q = h.newq(defer)
    local evl = kq.eventlist()
    ready_user(q, 4, "u4")
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    local v = evl[1]
    assert.are.equal(0, kq.band(v.flags, EV_ERROR))
    assert.are.equal(1, q:kevent({ h.ch(9, USER, EV_DELETE) }, evl, 1, 0))
    assert.is_true(rawequal(v, evl[1]))
    assert.are.equal(9, v.ident)
    assert.are.equal(EV_ERROR, kq.band(v.flags, EV_ERROR))
    assert.are.equal(E.ENOENT, v.data)
    assert.is_nil(v.udata)
    trigger(q, 4)
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    assert.are.equal(4, v.ident)
    assert.evflags(EV_CLEAR, v.flags)
    assert.are.equal(0, v.data)
    assert.are.equal("u4", v.udata)
  end)

  it("is a table whose metatable is the protected string kq.event", function()
    local _, _, v = user_view(1)
    assert.are.equal("table", type(v))
    assert.are.equal("kq.event", getmetatable(v))
    assert.has_error(function() setmetatable(v, {}) end)
    assert.has_error(function() setmetatable(v, nil) end)
    assert.are.equal("kq.event", getmetatable(v))
    assert.are.equal(1, v.ident)
  end)

  it("reads nil for any other key, as a plain entry does", function()
    local plain, evl = plain_and_views()
    for _, k in ipairs({ "mine", "Data", 1, "__index", "__newindex", "__name",
      "__metatable", "__pairs", "getfd", "fileno" }) do
      assert.is_nil(plain[1][k], "plain entry: " .. tostring(k))
      assert.is_nil(evl[1][k], "view: " .. tostring(k))
    end
  end)
end)

describe("a view is read-only", function()
  local function read_only(fn)
    local ok, err = pcall(fn)
    assert.is_false(ok, "the assignment did not raise")
    err = tostring(err)
    assert.is_truthy(err:find("read-only", 1, true), err)
    assert.is_truthy(err:find("kq.copy", 1, true), err)
  end

  it("assigning any of the six fields raises, naming kq.copy", function()
    local _, evl = read_view("abc", "u")
    local v = evl[1]
    local before = fields(v)
    for _, k in ipairs(FIELDS) do
      read_only(function() v[k] = 1 end)
      read_only(function() v[k] = nil end)
    end
    read_only(function() v.flags = 1 end)
    same_event(before, v, "after the refused assignments")
  end)

  it("assigning a new field raises, and the field stays absent", function()
    local _, _, v = user_view(1)
    read_only(function() v.mine = true end)
    read_only(function() v[1] = "x" end)
    assert.is_nil(v.mine)
    assert.is_nil(v[1])
  end)

  it("no table reached through a view changes its fields", function()
    local q, evl, v = user_view(1, "u")
    for _, k in ipairs({ "__index", "__newindex", "__metatable", "__pairs" }) do
      local t = v[k]
      if type(t) == "table" then
        pcall(function() t.flags = 77; t.ident = 77; t.__newindex = nil end)
      end
    end
    assert.are.equal(1, v.ident)
    assert.evflags(EV_CLEAR, v.flags)
    read_only(function() v.flags = 1 end)
    -- the next call of the same event shows kq's values
    trigger(q, 1)
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    assert.are.equal(1, v.ident)
    assert.evflags(EV_CLEAR, v.flags)
  end)

  it("data that was not read yet cannot be assigned either", function()
    local _, evl = read_view("abcd")
    local v = evl[1]
    read_only(function() v.data = 100 end)
    assert.are.equal(4, v.data)
  end)
end)

describe("a view's identity", function()
  it("is the same table in a slot across calls, showing the latest event", function()
    local q = h.newq(defer)
    local evl = kq.eventlist()
    ready_user(q, 1, "first")
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    local kept = evl[1]
    assert.are.equal(1, kept.ident)
    assert.are.equal("first", kept.udata)
    ready_user(q, 2, "second")
    h.apply(q, h.ch(1, USER, EV_DELETE))
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    assert.is_true(rawequal(kept, evl[1]))
    assert.are.equal(2, kept.ident)
    assert.are.equal("second", kept.udata)
  end)

  it("entries beyond n are left as they were", function()
    local q = h.newq(defer)
    local evl = kq.eventlist()
    for id = 1, 3 do ready_user(q, id, id * 10) end
    assert.are.equal(3, q:kevent(nil, evl, 8, 0))
    local v1, v2, v3 = evl[1], evl[2], evl[3]
    local old2, old3 = fields(v2), fields(v3)
    local mine = {}
    evl[5] = mine
    trigger(q, v1.ident)
    assert.are.equal(1, q:kevent(nil, evl, 8, 0))
    assert.is_true(rawequal(v1, evl[1]))
    assert.is_true(rawequal(v2, evl[2]))
    assert.is_true(rawequal(v3, evl[3]))
    same_event(old2, evl[2], "evl[2]")
    same_event(old3, evl[3], "evl[3]")
    assert.is_nil(evl[4])
    assert.is_true(rawequal(mine, evl[5]))
    -- a call giving nothing writes nothing
    local old1 = fields(v1)
    assert.are.equal(0, q:kevent(nil, evl, 8, 0))
    same_event(old1, evl[1], "evl[1] after a call returning 0")
  end)

  it("is put back in a slot the program replaced", function()
    local q = h.newq(defer)
    local evl = kq.eventlist()
    ready_user(q, 1, "a")
    ready_user(q, 2, "b")
    ready_user(q, 3, "c")
    assert.are.equal(3, q:kevent(nil, evl, 3, 0))
    local v1, v2, v3 = evl[1], evl[2], evl[3]
    local t = { ident = 99, filter = -99, flags = 0, fflags = 0, data = 0 }
    evl[1] = 42
    evl[2] = t
    evl[3] = nil
    for id = 1, 3 do trigger(q, id) end
    assert.are.equal(3, q:kevent(nil, evl, 3, 0))
    assert.is_true(rawequal(v1, evl[1]), "evl[1] is the old view")
    assert.is_true(rawequal(v2, evl[2]), "evl[2] is the old view")
    assert.is_true(rawequal(v3, evl[3]), "evl[3] is the old view")
    assert.are.same({ ident = 99, filter = -99, flags = 0, fflags = 0, data = 0 }, t)
    assert.is_nil(getmetatable(t))
    local ids = {}
    for i = 1, 3 do ids[evl[i].ident] = evl[i].udata end
    assert.are.same({ "a", "b", "c" }, ids)
  end)

  it("grows: 2 entries, then 10, then 40, all views, the earlier ones kept", function()
    local q = h.newq(defer)
    local evl = kq.eventlist()
    ready_user(q, 1)
    ready_user(q, 2)
    assert.are.equal(2, q:kevent(nil, evl, 16, 0))
    local v1, v2 = evl[1], evl[2]
    assert.is_true(is_view(v1))
    assert.is_true(is_view(v2))
    for id = 1, 10 do ready_user(q, id, "u" .. id) end
    assert.are.equal(10, q:kevent(nil, evl, 16, 0))
    assert.is_true(rawequal(v1, evl[1]))
    assert.is_true(rawequal(v2, evl[2]))
    local ids, objs = {}, {}
    for i = 1, 10 do
      local v = evl[i]
      assert.is_true(is_view(v), "evl[" .. i .. "]")
      assert.is_nil(objs[v], "evl[" .. i .. "] is another slot's view")
      objs[v] = true
      assert.are.equal("u" .. v.ident, v.udata)
      ids[v.ident] = true
    end
    for id = 1, 10 do assert.is_true(ids[id], "ident " .. id) end
    assert.is_nil(evl[11])
    -- and past the first few dozen slots, the earlier views kept
    local first10 = {}
    for i = 1, 10 do first10[i] = evl[i] end
    for id = 1, 40 do ready_user(q, id, "w" .. id) end
    assert.are.equal(40, q:kevent(nil, evl, 64, 0))
    ids = {}
    for i = 1, 40 do
      local v = evl[i]
      assert.is_true(is_view(v), "evl[" .. i .. "]")
      if i <= 10 then assert.is_true(rawequal(first10[i], v), "evl[" .. i .. "]") end
      assert.are.equal("w" .. v.ident, v.udata)
      ids[v.ident] = true
    end
    for id = 1, 40 do assert.is_true(ids[id], "ident " .. id) end
    -- a later call after the growth still writes into the same views
    for id = 1, 10 do trigger(q, id) end
    assert.are.equal(10, q:kevent(nil, evl, 64, 0))
    for i = 1, 10 do assert.is_true(rawequal(first10[i], evl[i]), "evl[" .. i .. "]") end
  end)

  it("one eventlist used with two queues shows the last call's events", function()
    local q1, q2 = h.newq(defer), h.newq(defer)
    local evl = kq.eventlist()
    ready_user(q1, 1, "q1")
    ready_user(q2, 2, "q2")
    ready_user(q2, 3, "q2")
    assert.are.equal(1, q1:kevent(nil, evl, 4, 0))
    local v1 = evl[1]
    assert.are.equal(1, v1.ident)
    assert.are.equal(2, q2:kevent(nil, evl, 4, 0))
    assert.is_true(rawequal(v1, evl[1]))
    local ids = { [evl[1].ident] = evl[1].udata, [evl[2].ident] = evl[2].udata }
    assert.are.same({ [2] = "q2", [3] = "q2" }, ids)
    trigger(q1, 1)
    assert.are.equal(1, q1:kevent(nil, evl, 4, 0))
    assert.are.equal(1, v1.ident)
    assert.are.equal("q1", v1.udata)
  end)
end)

describe("kq.copy", function()
  it("returns a plain table with the six fields of a view", function()
    local q = h.newq(defer)
    local u = {}
    h.apply(q, h.ch(5, USER, EV_ADD + EV_CLEAR, 0, 0, u),
      h.fire(5, u, kq.NOTE_FFCOPY + 0x7, 11))
    local evl = kq.eventlist()
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    local v = evl[1]
    local c = kq.copy(v)
    assert.are.equal("table", type(c))
    assert.is_nil(getmetatable(c))
    assert.is_false(rawequal(c, v))
    assert.are.same({ ident = 5, filter = USER, flags = EV_CLEAR, fflags = 0x7,
      data = 11, udata = u }, h.shown(c))
    assert.is_true(rawequal(u, rawget(c, "udata")))
    -- a copy is the program's: writable, and it does not follow the slot
    c.mine = true
    ready_user(q, 6, "six")
    h.apply(q, h.ch(5, USER, EV_DELETE))
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    assert.are.equal(6, v.ident)
    assert.are.equal(5, c.ident)
    assert.is_true(rawequal(u, c.udata))
  end)

  it("resolves data at the time of the copy", function()
    local _, evl, a = read_view("abc")
    local v = evl[1]
    assert(kt.write(a, "de"))
    local c = kq.copy(v)
    local want = LINUX and 5 or 3
    assert.are.equal(want, rawget(c, "data"))
    assert(kt.write(a, "fg"))
    assert.are.equal(want, c.data)
    -- the copy read the view's data: the view keeps the same value
    assert.are.equal(want, v.data, "the view and its copy disagree on data")
  end)

  it("works on plain event tables and on tables of fields", function()
    local q = h.newq(defer)
    local a, b = h.pair(defer)
    h.apply(q, h.ch(b, READ, EV_ADD, 0, 0, "p"))
    assert(kt.write(a, "abc"))
    local plain = {}
    assert.are.equal(1, q:kevent(nil, plain, 1, 0))
    local c = kq.copy(plain[1])
    assert.is_nil(getmetatable(c))
    assert.is_false(rawequal(c, plain[1]))
    assert.are.same({ ident = b, filter = READ, flags = 0, fflags = 0, data = 3,
      udata = "p" }, h.shown(c))
    local t = { ident = 1, filter = USER, flags = 0, fflags = 0, data = 0, other = 1 }
    assert.are.same({ ident = 1, filter = USER, flags = 0, fflags = 0, data = 0 },
      kq.copy(t))
  end)

  it("of a value that is not a table raises naming argument #1", function()
    for _, v in ipairs({ 42, "event", true, print }) do
      local ok, err = pcall(kq.copy, v)
      assert.is_false(ok, tostring(v))
      assert.matches("#1", tostring(err), 1, true)
    end
    local ok, err = pcall(kq.copy)
    assert.is_false(ok)
    assert.matches("#1", tostring(err), 1, true)
  end)
end)

-- pairs() honours __pairs on 5.2 to 5.4, not on 5.1 nor LuaJIT.
local PAIRS_METAMETHOD = false
for _ in pairs(setmetatable({}, { __pairs = function() return next, { true } end })) do
  PAIRS_METAMETHOD = true
end

if PAIRS_METAMETHOD then
  describe("pairs over a view (Lua 5.2+)", function()
    local function collect(v)
      local t, n = {}, 0
      for k, val in pairs(v) do
        assert.is_nil(t[k], "key given twice: " .. tostring(k))
        t[k] = val
        n = n + 1
      end
      return t, n
    end

    it("yields the six fields, data resolved even when not read yet", function()
      local q = h.newq(defer)
      local a, b = h.pair(defer)
      local u = {}
      h.apply(q, h.ch(b, READ, EV_ADD, 0, 0, u))
      assert(kt.write(a, "abc"))
      local evl = kq.eventlist()
      assert.are.equal(1, q:kevent(nil, evl, 1, 0))
      local t, n = collect(evl[1])
      assert.are.equal(6, n)
      assert.are.same({ ident = b, filter = READ, flags = 0, fflags = 0, data = 3,
        udata = u }, h.shown(t))
      assert.is_true(rawequal(u, t.udata))
    end)

    it("leaves out a nil udata, and follows the slot's latest event", function()
      local q, evl, v = user_view(1, "one")
      assert.are.same({ ident = 1, filter = USER, flags = EV_CLEAR, fflags = 0,
        data = 0, udata = "one" }, h.shown((collect(v))))
      h.apply(q, h.ch(1, USER, EV_DELETE))
      ready_user(q, 2)
      assert.are.equal(1, q:kevent(nil, evl, 1, 0))
      local t, n = collect(v)
      assert.are.equal(5, n)
      assert.are.same({ ident = 2, filter = USER, flags = EV_CLEAR, fflags = 0,
        data = 0 }, h.shown(t))
    end)
  end)
end

describe("READ data in a view", function()
  it("is computed when first read, then stays until a later call", function()
    local q, evl, a, b = read_view("abc")
    local v = evl[1]
    assert.are.equal(3, v.data)
    assert(kt.write(a, "de"))
    assert.are.equal(3, v.data)
    assert.are.equal(3, kq.copy(v).data)
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    assert.is_true(rawequal(v, evl[1]))
    assert.are.equal(5, v.data)
    assert.are.equal("abcde", kt.read(b, 10))
    assert.are.equal(5, v.data)
  end)

  it("behaves as a plain entry's when read after more bytes came", function()
    local plain, evl, a = plain_and_views()
    assert(kt.write(a, "de"))
    local want = LINUX and 5 or 3
    assert.are.equal(want, plain[1].data)
    assert.are.equal(want, evl[1].data)
    assert(kt.write(a, "f"))
    assert.are.equal(want, plain[1].data)
    assert.are.equal(want, evl[1].data)
  end)

  it("of an unread event is not carried into the slot's next event", function()
    local q, evl, a, b = read_view("abc", nil, EV_ADD + EV_ONESHOT)
    local v = evl[1]
    assert.are.equal(READ, v.filter)
    -- data never read; the next event in the slot is a USER one
    h.apply(q, h.ch(8, USER, EV_ADD + EV_CLEAR),
      h.ch(8, USER, 0, TRIGGER + kq.NOTE_FFCOPY, 77))
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    assert.are.equal(USER, v.filter)
    assert.are.equal(77, v.data)
    -- and a resolved USER data is not kept for a READ event after it
    h.apply(q, h.ch(b, READ, EV_ADD))
    assert(kt.write(a, "dddd"))
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    assert.are.equal(READ, v.filter)
    assert.are.equal(7, v.data)
  end)

  it("reads as a plain entry's when the descriptor was closed meanwhile", function()
    local q1, q2 = h.newq(defer), h.newq(defer)
    local a, b = assert(kt.socketpair())
    defer(function() kt.close(a) end)
    h.apply(q1, h.ch(b, READ, EV_ADD))
    h.apply(q2, h.ch(b, READ, EV_ADD))
    assert(kt.write(a, "abc"))
    local plain, evl = {}, kq.eventlist()
    assert.are.equal(1, q1:kevent(nil, plain, 1, 0))
    assert.are.equal(1, q2:kevent(nil, evl, 1, 0))
    kt.close(b)
    local p = plain[1].data
    assert.are.equal(LINUX and 0 or 3, p)
    assert.are.equal(p, evl[1].data)
  end)
end)

describe("udata in a view", function()
  it("follows a knote deleted with udata X and added again with Y, then nil", function()
    local q = h.newq(defer)
    local a, b = h.pair(defer)
    local X, Y = { "x" }, { "y" }
    assert(kt.write(a, "abc"))
    h.apply(q, h.ch(b, READ, EV_ADD, 0, 0, X))
    local evl = kq.eventlist()
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    local v = evl[1]
    assert.is_true(rawequal(X, v.udata))
    h.apply(q, h.ch(b, READ, EV_DELETE))
    h.apply(q, h.ch(b, READ, EV_ADD, 0, 0, Y))
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    assert.is_true(rawequal(v, evl[1]))
    assert.is_true(rawequal(Y, v.udata), "the view shows the new udata")
    -- a modify with no udata replaces it with nil
    h.apply(q, h.ch(b, READ, EV_ADD))
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    assert.is_nil(v.udata)
    assert.are.same({ "x" }, X)
    assert.are.same({ "y" }, Y)
  end)

  it("of an older event is no longer kept alive by the slot's view", function()
    local q = h.newq(defer)
    local track, gone = tracker()
    local evl = kq.eventlist()
    local u = track({})
    h.apply(q, h.ch(1, USER, EV_ADD + EV_ONESHOT, 0, 0, u), h.fire(1, u))
    u = nil -- luacheck: ignore 311 (only the knote holds it now)
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    local v = evl[1]
    assert.are.equal("table", type(v.udata))
    -- the ONESHOT knote is gone: only the view holds its udata now
    assert.is_false(gone())
    ready_user(q, 2, "next")
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    assert.are.equal("next", v.udata)
    assert.is_true(gone(), "the replaced udata was not collected")
  end)
end)

describe("flags, fflags and data in a slot", function()
  it("a READ view shows EV_EOF once the peer is closed", function()
    local q = h.newq(defer)
    local a, b = assert(kt.socketpair())
    local aclosed = false
    defer(function() kt.close(b); if not aclosed then kt.close(a) end end)
    h.apply(q, h.ch(b, READ, EV_ADD))
    assert(kt.write(a, "hi"))
    local evl = kq.eventlist()
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    local v = evl[1]
    assert.are.equal(0, kq.band(v.flags, EV_EOF))
    assert.are.equal(2, v.data)
    kt.close(a)
    aclosed = true
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    assert.is_true(rawequal(v, evl[1]))
    assert.are.equal(EV_EOF, kq.band(v.flags, EV_EOF))
    assert.are.equal(2, v.data)
  end)

  it("a USER view shows the fflags NOTE_FFOR built up", function()
    local q = h.newq(defer)
    h.apply(q, h.ch(1, USER, EV_ADD + EV_CLEAR))
    local evl = kq.eventlist()
    h.apply(q, h.ch(1, USER, 0, TRIGGER + kq.NOTE_FFOR + 0x1, 10))
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    local v = evl[1]
    assert.are.equal(0x1, v.fflags)
    assert.are.equal(10, v.data)
    h.apply(q, h.ch(1, USER, 0, TRIGGER + kq.NOTE_FFOR + 0x4, 20))
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    assert.is_true(rawequal(v, evl[1]))
    assert.are.equal(0x5, v.fflags)
    assert.are.equal(20, v.data)
  end)

  it("a TIMER view shows the new expiration count and flags", function()
    local q = h.newq(defer)
    h.apply(q, h.ch(1, TIMER, EV_ADD + EV_ONESHOT, 0, 0, "once"))
    local evl = kq.eventlist()
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    local v = evl[1]
    assert.are.equal(1, v.data)
    assert.evflags(EV_ONESHOT + EV_CLEAR, v.flags)
    -- a periodic 20 ms timer left for 200 ms has expired at least 5 times
    h.apply(q, h.ch(1, TIMER, EV_ADD, 0, 20, "periodic"))
    kt.sleep(0.2)
    assert.are.equal(1, q:kevent(nil, evl, 1, 5))
    assert.is_true(rawequal(v, evl[1]))
    assert.evflags(EV_CLEAR, v.flags)
    assert.are.equal("periodic", v.udata)
    assert.is_true(v.data >= 5, tostring(v.data))
  end)
end)

describe("a view handed back as a change", function()
  it("gives its ident and filter to an EV_DELETE", function()
    local q, evl, _, b = read_view("x")
    local ev = evl[1]
    assert.are.equal(0, q:kevent({ { ident = ev.ident, filter = ev.filter,
      flags = EV_DELETE } }))
    assert.are.equal(0, q:kevent(nil, evl, 1, 0))
    assert.os_error(E.ENOENT, q:kevent({ { ident = b, filter = READ,
      flags = EV_DELETE } }))
  end)

  it("is read field by field in a changelist", function()
    local q = h.newq(defer)
    local a, b = h.pair(defer)
    local u = {}
    h.apply(q, h.ch(b, READ, EV_ADD, 0, 0, u))
    assert(kt.write(a, "x"))
    local evl = kq.eventlist()
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    local ev = evl[1]
    -- the knote exists: the view is a modify (or an add where events
    -- carry EV_ADD) that keeps it as it is, udata included
    assert.are.equal(0, q:kevent({ ev }, nil, 0))
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    assert.is_true(rawequal(u, ev.udata))
    -- a disable and an enable through tables inheriting from the view
    h.apply(q, setmetatable({ flags = kq.EV_DISABLE }, { __index = ev }))
    assert.are.equal(0, q:kevent(nil, evl, 1, 0))
    h.apply(q, setmetatable({ flags = kq.EV_ENABLE }, { __index = ev }))
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    assert.are.equal(b, ev.ident)
    assert.is_true(rawequal(u, ev.udata))
    -- once deleted, the view's own flags decide
    h.apply(q, h.ch(b, READ, EV_DELETE))
    if kq.band(ev.flags, EV_ADD) == 0 then
      assert.os_error(E.ENOENT, q:kevent({ ev }, nil, 0))
    else
      assert.are.equal(0, q:kevent({ ev }, nil, 0))
    end
  end)

  -- Only where events keep EV_RECEIPT, as FreeBSD's do: elsewhere whether
  -- they show it differs (doc/portability.md, "Receipts").
  if h.freebsd_kevent then
    it("passes its flags: a view carrying EV_RECEIPT asks for a receipt (FreeBSD)", function()
      local q = h.newq(defer)
      local u = {}
      local evl = kq.eventlist()
      assert.are.equal(1, q:kevent({ h.ch(5, USER, EV_ADD + EV_CLEAR + EV_RECEIPT,
        0, 0, u) }, evl, 4, 0))
      assert.are.equal(0, evl[1].data)
      h.apply(q, h.fire(5, u))
      assert.are.equal(1, q:kevent(nil, evl, 4, 0))
      local ev = evl[1]
      assert.evflags(EV_RECEIPT + EV_CLEAR, ev.flags)
      local out = {}
      assert.are.equal(1, q:kevent({ ev }, out, 4, 0))
      assert.are.equal(5, out[1].ident)
      assert.are.equal(USER, out[1].filter)
      assert.are.equal(EV_ERROR, kq.band(out[1].flags, EV_ERROR))
      assert.are.equal(0, out[1].data)
      assert.is_true(rawequal(u, out[1].udata))
      -- and handed back into the eventlist it comes from
      assert.are.equal(1, q:kevent({ ev }, evl, 4, 0))
      assert.is_true(rawequal(ev, evl[1]))
      assert.are.equal(EV_ERROR, kq.band(ev.flags, EV_ERROR))
      assert.are.equal(5, ev.ident)
      assert.are.equal(0, ev.data)
    end)
  end
end)

describe("the eventlist given as its own changelist", function()
  it("acts as a plain eventlist does: changes read first, entries after", function()
    local function run(list)
      local q = h.newq(defer)
      for id = 1, 3 do ready_user(q, id, ("abc"):sub(id, id)) end
      assert.are.equal(3, q:kevent(nil, list, 8, 0))
      local order = {}
      for i = 1, 3 do order[i] = list[i].ident end
      h.apply(q, h.ch(2, USER, EV_DELETE))
      -- where events carry no EV_ADD (FreeBSD) the entries are modifies
      -- of 1 and 3 (no entry) and of the deleted 2 (ENOENT, in slot 1)
      local n = q:kevent(list, list, 8, 0)
      local out = {}
      for i = 1, 3 do out[i] = fields(list[i]) end
      return n, out, order
    end
    local n1, plain, order1 = run({})
    local n2, views, order2 = run(kq.eventlist())
    assert.are.same(order1, order2)
    assert.are.equal(n1, n2)
    for i = 1, 3 do same_event(plain[i], views[i], "entry " .. i) end
    if h.freebsd_kevent then
      assert.are.equal(1, n1)
      assert.are.equal(2, views[1].ident)
      assert.are.equal(E.ENOENT, views[1].data)
      assert.are.equal("b", views[1].udata)
    else
      -- events keep EV_ADD there (h.evflags): handed back, each re-adds
      assert.are.equal(0, n1)
    end
  end)
end)

describe("garbage", function()
  it("an eventlist and its views made and dropped leave no descriptor", function()
    h.no_fd_leak(function()
      local q = assert(kq.kqueue())
      local a, b = assert(kt.socketpair())
      h.apply(q, h.ch(b, READ, EV_ADD, 0, 0, {}), h.ch(1, TIMER, EV_ADD, 0, 1))
      assert(kt.write(a, "x"))
      for _ = 1, 20 do
        local evl = kq.eventlist()
        assert(q:kevent(nil, evl, 4, 1))
        for i = 1, 2 do if evl[i] then local _ = evl[i].data end end
      end
      q:close()
      kt.close(a)
      kt.close(b)
    end)
  end)

  it("views, the eventlist and their udata are collected once dropped", function()
    local q = h.newq(defer)
    local track, gone = tracker()
    h.apply(q, h.ch(1, USER, EV_ADD + EV_ONESHOT, 0, 0, track({})))
    trigger(q, 1)
    local evl = track(kq.eventlist())
    assert.are.equal(1, q:kevent(nil, evl, 4, 0))
    track(evl[1])
    assert.is_false(gone())
    evl = nil -- luacheck: ignore 311
    assert.is_true(gone(), "an eventlist, its view or a udata was kept")
  end)

  it("views stay readable after their eventlist's queue is closed", function()
    local a, b = h.pair(defer)
    local q1, q2 = h.newq(defer), h.newq(defer)
    h.apply(q1, h.ch(b, READ, EV_ADD, 0, 0, "u"))
    h.apply(q2, h.ch(b, READ, EV_ADD, 0, 0, "u"))
    assert(kt.write(a, "abc"))
    local plain, evl = {}, kq.eventlist()
    assert.are.equal(1, q1:kevent(nil, plain, 1, 0))
    assert.are.equal(1, q2:kevent(nil, evl, 1, 0))
    q1:close()
    q2:close()
    collectgarbage()
    same_event(plain[1], evl[1], "after close")
    assert.are.equal(3, evl[1].data)
  end)
end)

describe("an eventlist in loops", function()
  it("200 calls on 50 ready sockets: every call, every registered ident", function()
    local q = h.newq(defer)
    local want, changes = {}, {}
    for i = 1, 50 do
      local a, b = h.pair(defer)
      assert(kt.write(a, "x"))
      want[b] = "s" .. i
      changes[i] = h.ch(b, READ, EV_ADD, 0, 0, want[b])
    end
    assert.are.equal(0, q:kevent(changes))
    local evl = kq.eventlist()
    local slots
    for call = 1, 200 do
      local n = q:kevent(nil, evl, 50, 0)
      assert.are.equal(50, n, "call " .. call)
      local got = {}
      for i = 1, n do
        local v = evl[i]
        if slots then
          assert.is_true(rawequal(slots[i], v), "call " .. call .. " slot " .. i)
        end
        assert.is_nil(got[v.ident], "ident twice in call " .. call)
        got[v.ident] = v.udata
        assert.are.equal(READ, v.filter)
        if call % 20 == 0 then assert.are.equal(1, v.data) end
      end
      assert.are.same(want, got, "call " .. call)
      if not slots then
        slots = {}
        for i = 1, n do slots[i] = evl[i] end
      end
    end
  end)

  it("a handler's nested call on the same eventlist moves the outer views", function()
    -- The outer loop keeps a view; a handler collects with the same list;
    -- the kept view then shows the inner event, and a copy does not.
    local q = h.newq(defer)
    local evl = kq.eventlist()
    local inner_seen
    local function handler()
      h.apply(q, h.fire(2, "inner"))
      assert.are.equal(1, q:kevent(nil, evl, 1, 0))
      inner_seen = evl[1].ident
    end
    h.apply(q, h.ch(2, USER, EV_ADD + EV_CLEAR, 0, 0, "inner"))
    ready_user(q, 1, handler)
    assert.are.equal(1, q:kevent(nil, evl, 1, 0))
    local ev = evl[1]
    local snap = kq.copy(ev)
    ev.udata()
    assert.are.equal(2, inner_seen)
    assert.are.equal(2, ev.ident)
    assert.are.equal("inner", ev.udata)
    assert.are.equal(1, snap.ident)
    assert.is_true(rawequal(handler, snap.udata))
  end)

  it("a finaliser's call on the same eventlist, during a call on it, loses nothing", function()
    -- Allocations in the outer call (new views) run the collector; the
    -- finalisers collect from a second queue into the same list. The outer
    -- call must still return every event of its queue, as a plain list does.
    -- Whether a finaliser runs inside the call is up to the collector, so
    -- the round is repeated (fresh list, fresh garbage) until one does.
    local q, q2 = h.newq(defer), h.newq(defer)
    local N = 3000
    for id = 1, 8 do ready_user(q2, 100000 + id) end
    local restore_gc = h.gc_tune(1, 1000)
    defer(restore_gc)
    local ran_inside = 0
    for _ = 1, 20 do
      local ch = {}
      for id = 1, N do ch[id] = h.ch(id, USER, EV_ADD + EV_ONESHOT) end
      h.apply(q, h.unpack(ch))
      for id = 1, N do ch[id] = h.ch(id, USER, 0, TRIGGER) end
      h.apply(q, h.unpack(ch))
      local evl = kq.eventlist()
      local inside = false
      local function finaliser()
        if inside then ran_inside = ran_inside + 1 end
        pcall(q2.kevent, q2, nil, evl, 4, 0) -- q2 is closed once the test ends
      end
      for _ = 1, 500 do h.finalised(finaliser) end
      inside = true
      local n = q:kevent(nil, evl, 4096, 0)
      inside = false
      assert.are.equal(N, n)
      assert.are.equal(0, q:kevent(nil, {}, 8, 0))
      if ran_inside > 0 then break end
    end
    restore_gc()
    assert.is_true(ran_inside > 0, "no finaliser ran during a call: the test proves nothing")
  end)

  it("nested loops over two queues with two eventlists keep apart", function()
    local outer, inner = h.newq(defer), h.newq(defer)
    local evl_out, evl_in = kq.eventlist(), kq.eventlist()
    for id = 1, 4 do ready_user(outer, id, "out" .. id) end
    for id = 11, 13 do h.apply(inner, h.ch(id, USER, EV_ADD + EV_CLEAR, 0, 0, "in" .. id)) end
    assert.are.equal(4, outer:kevent(nil, evl_out, 8, 0))
    local outer_ids = {}
    for i = 1, 4 do
      local ev = evl_out[i]
      outer_ids[#outer_ids + 1] = ev.ident
      for id = 11, 13 do h.apply(inner, h.fire(id, "in" .. id)) end
      assert.are.equal(3, inner:kevent(nil, evl_in, 8, 0))
      local got = {}
      for j = 1, 3 do got[evl_in[j].ident] = evl_in[j].udata end
      assert.are.same({ [11] = "in11", [12] = "in12", [13] = "in13" }, got)
      assert.are.equal("out" .. ev.ident, ev.udata)
      assert.is_true(rawequal(ev, evl_out[i]))
    end
    table.sort(outer_ids)
    assert.are.same({ 1, 2, 3, 4 }, outer_ids)
  end)

  it("works from a coroutine, the views read outside it", function()
    local q = h.newq(defer)
    local evl = kq.eventlist()
    for id = 1, 3 do ready_user(q, id, id) end
    local co = coroutine.wrap(function()
      for _ = 1, 2 do
        local n = q:kevent(nil, evl, 8, 0)
        coroutine.yield(n)
        for id = 1, 3 do trigger(q, id) end
      end
    end)
    local first = {}
    assert.are.equal(3, co())
    for i = 1, 3 do first[i] = evl[i] end
    assert.are.equal(3, co())
    local ids = {}
    for i = 1, 3 do
      assert.is_true(rawequal(first[i], evl[i]))
      ids[evl[i].ident] = evl[i].udata
    end
    assert.are.same({ 1, 2, 3 }, ids)
  end)
end)
