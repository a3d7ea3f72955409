-- spec/helper.lua: loaded by busted before the specs (.busted `helper`),
-- and required by them as "spec.helper" for the shared tools.
--
--   h.fdcount()          open descriptors of this process (Linux), or -1
--   h.no_fd_leak(fn)     runs fn and asserts the descriptor count is back
--   assert.os_error(en, v, msg, errno)
--                        v is nil, msg a "name: text" string, errno == en
local assert = require("luassert")
local say = require("say")
local kt = require("kqtest")

-- A finaliser that raises is only a warning in 5.4: make it visible.
warn("@on")

local h = {}

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

-- assert.os_error(expected_errno, nil, "kevent: ...", errno)
local function os_error(state, arguments)
  local expected, v, msg, en = arguments[1], arguments[2], arguments[3],
    arguments[4]
  state.failure_message = string.format(
    "expected nil, \"name: text\", %s; got %s, %s, %s",
    tostring(expected), tostring(v), tostring(msg), tostring(en))
  return v == nil and type(msg) == "string" and msg:match("^%w+: .+") ~= nil
    and math.type(en) == "integer" and en == expected
end

say:set("assertion.os_error.positive", "Expected an OS error triple")
say:set("assertion.os_error.negative", "Expected no OS error triple")
assert:register("assertion", "os_error", os_error,
  "assertion.os_error.positive", "assertion.os_error.negative")

return h
