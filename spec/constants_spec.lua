-- Constants: EVFILT_*, EV_* and NOTE_* as integers under their C names.
local kq = require("kq")
local h = require("spec.helper")

-- FreeBSD's values, which the Linux engine uses (semantics 1.1-1.3).
local freebsd = {
  EVFILT_READ = -1, EVFILT_WRITE = -2, EVFILT_AIO = -3, EVFILT_VNODE = -4,
  EVFILT_PROC = -5, EVFILT_SIGNAL = -6, EVFILT_TIMER = -7,
  EVFILT_PROCDESC = -8, EVFILT_FS = -9, EVFILT_LIO = -10, EVFILT_USER = -11,
  EVFILT_SENDFILE = -12, EVFILT_EMPTY = -13,
  EV_ADD = 0x1, EV_DELETE = 0x2, EV_ENABLE = 0x4, EV_DISABLE = 0x8,
  EV_ONESHOT = 0x10, EV_CLEAR = 0x20, EV_RECEIPT = 0x40, EV_DISPATCH = 0x80,
  EV_FORCEONESHOT = 0x100, EV_KEEPUDATA = 0x200, EV_SYSFLAGS = 0xF000,
  EV_DROP = 0x1000, EV_FLAG1 = 0x2000, EV_ERROR = 0x4000, EV_EOF = 0x8000,
  NOTE_LOWAT = 0x1, NOTE_FILE_POLL = 0x2,
  NOTE_DELETE = 0x1, NOTE_WRITE = 0x2, NOTE_EXTEND = 0x4, NOTE_ATTRIB = 0x8,
  NOTE_LINK = 0x10, NOTE_RENAME = 0x20, NOTE_REVOKE = 0x40, NOTE_OPEN = 0x80,
  NOTE_CLOSE = 0x100, NOTE_CLOSE_WRITE = 0x200, NOTE_READ = 0x400,
  NOTE_EXIT = 0x80000000, NOTE_FORK = 0x40000000, NOTE_EXEC = 0x20000000,
  NOTE_TRACK = 0x1, NOTE_TRACKERR = 0x2, NOTE_CHILD = 0x4,
  NOTE_PCTRLMASK = 0xf0000000, NOTE_PDATAMASK = 0x000fffff,
  NOTE_SECONDS = 0x1, NOTE_MSECONDS = 0x2, NOTE_USECONDS = 0x4,
  NOTE_NSECONDS = 0x8, NOTE_ABSTIME = 0x10,
  NOTE_FFNOP = 0, NOTE_FFAND = 0x40000000, NOTE_FFOR = 0x80000000,
  NOTE_FFCOPY = 0xc0000000, NOTE_FFCTRLMASK = 0xc0000000,
  NOTE_FFLAGSMASK = 0x00ffffff, NOTE_TRIGGER = 0x01000000,
}

describe("constants", function()
  it("are integers under their C names", function()
    local n = 0
    for name, value in pairs(kq) do
      if name:match("^EVFILT_") or name:match("^EV_") or name:match("^NOTE_") then
        assert.is_true(h.is_integer(value), name)
        n = n + 1
      end
    end
    assert.is_true(n >= 20)
  end)

  if kq.backend == "linux" then
    it("have FreeBSD's values under the Linux engine, every one present", function()
      for name, value in pairs(freebsd) do
        assert.are.equal(value, kq[name], name)
      end
    end)
  end

  it("include the filters and flags every kqueue has", function()
    for _, name in ipairs({ "EVFILT_READ", "EVFILT_WRITE", "EVFILT_VNODE",
        "EVFILT_PROC", "EVFILT_SIGNAL", "EVFILT_TIMER", "EV_ADD", "EV_DELETE",
        "EV_ENABLE", "EV_DISABLE", "EV_ONESHOT", "EV_CLEAR", "EV_EOF",
        "EV_ERROR", "NOTE_EXIT", "NOTE_WRITE", "NOTE_DELETE" }) do
      assert.is_true(h.is_integer(kq[name]), name)
    end
  end)

  if kq.backend == "linux" then
    it("are absent, never 0, where the platform lacks them (engine)", function()
      -- macOS's and OpenBSD's names that FreeBSD and the engine lack.
      assert.is_nil(kq.EVFILT_EXCEPT)
      assert.is_nil(kq.EVFILT_MACHPORT)
      assert.is_nil(kq.NOTE_TRUNCATE)
      assert.is_nil(kq.EV_UDATA_SPECIFIC)
    end)
  end

  it("are the same in kq and kq.core", function()
    local core = require("kq.core")
    for name, value in pairs(core) do
      if type(value) == "number" then
        assert.are.equal(value, kq[name], name)
      end
    end
  end)

  it("keep filters distinct values", function()
    local seen = {}
    for name, value in pairs(kq) do
      if name:match("^EVFILT_") and name ~= "EVFILT_SYSCOUNT" then
        assert.is_nil(seen[value], name .. " repeats " .. tostring(seen[value]))
        seen[value] = name
      end
    end
  end)
end)
