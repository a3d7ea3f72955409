-- The documentation under doc/ against the module: every exported function,
-- field and constant, and every queue method and metamethod, is named in
-- doc/*.md; every EVFILT_/EV_/NOTE_ name in doc/reference.md exists (other
-- systems' names belong in doc/portability.md); relative links resolve.
-- The checks are plain functions, also run on made-up input below, so that
-- this spec is seen to fail when a name is missing or invented.
local kq = require("kq")
local h = require("spec.helper")

local DOC = "doc/"
-- The pages these checks are about; any other doc/*.md counts as well.
local PAGES = { "reference.md", "linux-engine.md", "portability.md", "limits.md" }

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

-- The *.md files in doc/: PAGES, plus whatever `ls` finds there.
local function doc_files()
  local names, seen = {}, {}
  local function add(name)
    if not seen[name] then
      seen[name] = true
      names[#names + 1] = name
    end
  end
  for _, name in ipairs(PAGES) do add(name) end
  local p = io.popen("ls " .. DOC .. " 2>/dev/null")
  if p then
    for name in p:lines() do
      if name:match("%.md$") then add(name) end
    end
    p:close()
  end
  table.sort(names)
  return names
end

-- Is `name` in `text` as a whole word (letters, digits and _ around it do
-- not count as part of another word)?
local function has_word(text, name)
  local pat = "%f[%w_]" .. name:gsub("%p", "%%%0") .. "%f[^%w_]"
  return text:find(pat) ~= nil
end

-- Is function `name` shown as called: kq.name or q:name?
local function has_call(text, name)
  local n = name:gsub("%p", "%%%0")
  return text:find("kq%." .. n .. "%f[^%w_]") ~= nil
      or text:find("%f[%w_]q:" .. n .. "%f[^%w_]") ~= nil
end

local function is_constant(name)
  return name:match("^EVFILT_") or name:match("^EV_") or name:match("^NOTE_")
end

-- Names the module table `mod`, the queue metatable `mt` and its __index
-- table export, that `text` (all pages) and `ref` (reference.md) lack.
local function missing_names(mod, mt, text, ref)
  local missing, seen = {}, {}
  local function need(ok, what)
    if not ok and not seen[what] then
      seen[what] = true
      missing[#missing + 1] = what
    end
  end
  for name, value in pairs(mod) do
    if type(name) == "string" then
      need(has_word(text, name), name)
      if is_constant(name) then
        need(has_word(ref, name), name .. " (in reference.md)")
      elseif type(value) == "function" then
        need(has_call(ref, name), "kq." .. name .. " (in reference.md)")
      end
    end
  end
  for name in pairs(mt) do
    if type(name) == "string" then need(has_word(text, name), name) end
  end
  if type(mt.__index) == "table" then
    for name, value in pairs(mt.__index) do
      if type(name) == "string" then
        need(has_word(text, name), name)
        if type(value) == "function" then
          need(has_call(ref, name), "q:" .. name .. " (in reference.md)")
        end
      end
    end
  end
  table.sort(missing)
  return missing
end

-- EVFILT_/EV_/NOTE_ names in `ref` that `known` lacks.  A bare prefix
-- ("EV_*") or a name followed by * ("NOTE_FF*") is a wildcard, not a name.
local function invented_names(ref, known)
  local invented, seen = {}, {}
  for word, after in ref:gmatch("%f[%w_]([%a_][%w_]*)()") do
    if is_constant(word) and not word:match("_$")
        and ref:sub(after, after) ~= "*" and not known[word]
        and not seen[word] then
      seen[word] = true
      invented[#invented + 1] = word
    end
  end
  table.sort(invented)
  return invented
end

-- GitHub's anchor for a heading: lower case, punctuation dropped but - and
-- _, spaces as -.
local function slug(heading)
  return (heading:lower():gsub("[^%w%-_ ]", ""):gsub(" ", "-"))
end

local function anchors(text)
  local set = {}
  for line in text:gmatch("[^\n]+") do
    local heading = line:match("^#+%s+(.-)%s*$")
    if heading then set[slug(heading)] = true end
  end
  return set
end

-- Relative links [x](file#anchor) of page `name` whose file or anchor does
-- not exist; `pages` maps doc/ file names to their text.
local function broken_links(name, pages)
  local broken = {}
  local text = pages[name]
  local body = text:gsub("```.-```", "") -- code blocks hold no links
  for target in body:gmatch("%]%(([^)%s]+)%)") do
    if not target:match("^%a[%w+.-]*:") then -- not http:, mailto: ...
      local file, anchor = target:match("^([^#]*)#?(.*)$")
      local ok
      if file == "" then
        ok = anchors(text)[anchor]
      elseif pages[file] then
        ok = anchor == "" or anchors(pages[file])[anchor]
      else
        ok = anchor == "" and read(DOC .. file) ~= nil
      end
      if not ok then broken[#broken + 1] = name .. ": " .. target end
    end
  end
  return broken
end

-- The constant names the binding knows (csrc/kq_constants.c), or nil.
local function binding_constants()
  local src = read("csrc/kq_constants.c")
  if not src then return nil end
  local set = {}
  for name in src:gmatch("KQ_%u+%(([%w_]+)%)") do set[name] = true end
  return set
end

local pages, all, ref
local function load_docs()
  if pages then return end
  pages = {}
  local parts = {}
  for _, name in ipairs(doc_files()) do
    local text = read(DOC .. name)
    assert(text, "cannot read " .. DOC .. name)
    pages[name] = text
    parts[#parts + 1] = text
  end
  all = table.concat(parts, "\n")
  ref = pages["reference.md"]
end

describe("the documentation", function()
  before_each(load_docs)

  it("has the reference, engine, portability and limits pages", function()
    for _, name in ipairs(PAGES) do
      assert.is_string(pages[name], DOC .. name)
      assert.is_true(#pages[name] > 1000, DOC .. name .. " is nearly empty")
    end
  end)

  it("names every function, field and constant of the module", function()
    local q = assert(kq.kqueue())
    local mt = getmetatable(q)
    q:close()
    assert.is_table(mt)
    assert.are.same({}, missing_names(kq, mt, all, ref))
  end)

  it("names the queue methods and metamethods", function()
    local q = h.newq(h.defer)
    local mt = getmetatable(q)
    for _, name in ipairs({ "kevent", "close", "fileno", "getfd" }) do
      assert.is_function(q[name], name)
      assert.is_true(has_call(ref, name) and ref:find("q:" .. name, 1, true) ~= nil,
        "q:" .. name .. " in reference.md")
    end
    for _, name in ipairs({ "__index", "__name", "__tostring", "__close", "__gc" }) do
      assert.is_not_nil(mt[name], name)
      assert.is_true(has_word(ref, name), name .. " in reference.md")
    end
  end)

  it("invents no constant in the reference", function()
    local known = {}
    if kq.backend == "linux" then
      -- The engine defines every name the binding knows.
      for name, value in pairs(kq) do
        if is_constant(name) and h.is_integer(value) then
          known[name] = true
        end
      end
    else
      -- A native system lacks some of FreeBSD's names; the reference
      -- lists them all, so compare with the binding's own list.
      known = assert(binding_constants(), "csrc/kq_constants.c not found")
    end
    assert.are.same({}, invented_names(ref, known))
    local listed = binding_constants()
    if listed then
      assert.are.same({}, invented_names(ref, listed))
    end
  end)

  it("has relative links that resolve, anchors included", function()
    local broken = {}
    for name in pairs(pages) do
      for _, b in ipairs(broken_links(name, pages)) do broken[#broken + 1] = b end
    end
    table.sort(broken)
    assert.are.same({}, broken)
  end)
end)

describe("the documentation checks", function()
  -- Made-up module and pages: the checks must catch each defect.
  local mod = { kevent = print, EV_ADD = 1, NOTE_EXIT = 2, backend = "x" }
  local mt = { __index = { kevent = print, fileno = print }, __gc = print }

  it("pass a page naming everything", function()
    local text = "kq.kevent q:fileno EV_ADD NOTE_EXIT backend __gc __index fileno"
    assert.are.same({}, missing_names(mod, mt, text, text))
  end)

  it("report a name missing, or present only inside another word", function()
    local text = "kq.kevent q:fileno EV_ADDED NOTE_EXIT backend __gc __index fileno"
    assert.are.same({ "EV_ADD", "EV_ADD (in reference.md)" },
      missing_names(mod, mt, text, text))
  end)

  it("report a function named but never shown as called", function()
    local text = "kevent q:fileno EV_ADD NOTE_EXIT backend __gc __index fileno"
    assert.are.same({ "kq.kevent (in reference.md)", "q:kevent (in reference.md)" },
      missing_names(mod, mt, text, text))
  end)

  it("report a constant the module does not have, but not a wildcard", function()
    local known = { EV_ADD = true, NOTE_EXIT = true }
    assert.are.same({ "NOTE_TRUNCATE" },
      invented_names("EV_ADD, EV_*, NOTE_FF*, NOTE_EXIT and NOTE_TRUNCATE", known))
  end)

  it("report a link to a missing page or anchor", function()
    local fake = {
      ["a.md"] = "# Top\n[ok](#top) [ok](b.md#the-part) [bad](#nowhere) "
        .. "[bad](b.md#gone) [bad](no-such-page.md) [web](https://x.y/z)",
      ["b.md"] = "## The part\n",
    }
    assert.are.same({ "a.md: #nowhere", "a.md: b.md#gone", "a.md: no-such-page.md" },
      (function()
        local b = broken_links("a.md", fake)
        table.sort(b)
        return b
      end)())
  end)
end)
