-- tests/native/constants.lua: reads tests/native/constants.txt, the one
-- table of every system's kqueue constants, and renders it for
-- doc/portability.md.  Used by spec/platform_spec.lua,
-- tests/native/headers_spec.lua and `make portability-doc`.
--
--   local C = dofile("tests/native/constants.lua")
--   local t = C.load()        -- t.systems: column ids in file order
--                             -- t.names: constant names in file order
--                             -- t.value[system][name]: integer or nil
--                             -- t.text[system][name]: as written
--   C.markdown(t)             -- the generated part of portability.md
--   C.doc_section(text)       -- that part as it stands in a document
local C = {}

C.FILE = "tests/native/constants.txt"
C.BEGIN = "<!-- Generated from tests/native/constants.txt by"
  .. " `make portability-doc`: edit that file, not this table. -->"
C.END = "<!-- End of the generated table. -->"

-- What each column is (doc/portability.md says how each was checked).
C.TITLES = {
  freebsd14 = "FreeBSD 14",
  freebsd15 = "FreeBSD 15",
  macos = "macOS",
  openbsd7 = "OpenBSD 7.8",
  netbsd9 = "NetBSD 9",
  netbsd10 = "NetBSD 10",
  engine = "Linux engine",
}

local function number(s)
  if s:sub(1, 2) == "0x" then return tonumber(s:sub(3), 16) end
  return tonumber(s)
end

function C.load(path)
  local f = assert(io.open(path or C.FILE, "r"))
  local t = { systems = nil, names = {}, value = {}, text = {} }
  local seen = {}
  for line in f:lines() do
    if line:match("^# name%s") then
      t.systems = {}
      for id in line:gmatch("%S+") do
        if id ~= "#" and id ~= "name" then
          t.systems[#t.systems + 1] = id
          t.value[id], t.text[id] = {}, {}
        end
      end
    elseif not line:match("^#") and line:match("%S") then
      assert(t.systems, "constants.txt: the column line comes first")
      local fields = {}
      for field in line:gmatch("%S+") do fields[#fields + 1] = field end
      assert(#fields == #t.systems + 1, "constants.txt: wrong field count: " .. line)
      local name = fields[1]
      assert(name:match("^EVFILT_") or name:match("^EV_") or name:match("^NOTE_"),
        "constants.txt: not a kqueue name: " .. name)
      assert(not seen[name], "constants.txt: twice: " .. name)
      seen[name] = true
      t.names[#t.names + 1] = name
      for i, id in ipairs(t.systems) do
        local s = fields[i + 1]
        if s ~= "-" then
          local v = number(s)
          assert(v and v == math.floor(v), "constants.txt: not an integer: " .. s)
          t.value[id][name], t.text[id][name] = v, s
        end
      end
    end
  end
  f:close()
  return t
end

function C.markdown(t)
  local out = { C.BEGIN, "" }
  local head, rule = { "Name" }, { "---" }
  for _, id in ipairs(t.systems) do
    head[#head + 1] = assert(C.TITLES[id], "no title for column " .. id)
    rule[#rule + 1] = "---"
  end
  out[#out + 1] = "| " .. table.concat(head, " | ") .. " |"
  out[#out + 1] = "|" .. table.concat(rule, "|") .. "|"
  for _, name in ipairs(t.names) do
    local row = { "`" .. name .. "`" }
    for _, id in ipairs(t.systems) do
      row[#row + 1] = t.text[id][name] or "—"
    end
    out[#out + 1] = "| " .. table.concat(row, " | ") .. " |"
  end
  out[#out + 1] = ""
  out[#out + 1] = C.END
  return table.concat(out, "\n")
end

-- The generated part of a document (markers included), or nil.
function C.doc_section(text)
  local b = text:find(C.BEGIN, 1, true)
  local e = text:find(C.END, 1, true)
  if not b or not e then return nil end
  return text:sub(b, e + #C.END - 1)
end

-- `lua tests/native/constants.lua doc/portability.md` rewrites the
-- generated part of that document in place.
if arg and arg[0] and arg[0]:match("constants%.lua$") and arg[1] then
  local f = assert(io.open(arg[1], "r"))
  local text = f:read("*a")
  f:close()
  local old = assert(C.doc_section(text), arg[1] .. ": no generated-table markers")
  local b = text:find(old, 1, true)
  text = text:sub(1, b - 1) .. C.markdown(C.load()) .. text:sub(b + #old)
  f = assert(io.open(arg[1], "w"))
  f:write(text)
  f:close()
end

return C
