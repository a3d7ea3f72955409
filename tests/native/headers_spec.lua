-- make check-headers: the binding compiled for each system kq supports
-- natively, against the stand-in headers of tests/native/<system>/ and
-- the minimal C library of tests/native/sysroot/, with clang --target and
-- the build's warnings as errors, to object files; and the constants it
-- exports there compared with tests/native/constants.txt, which also
-- holds csrc/kq_constants.c and doc/portability.md to the same values.
-- The Makefile passes the compilers, flags and source list in the
-- environment (KQ_CLANG, KQ_NM, KQ_HOST_CC, KQ_CFLAGS, KQ_LUA_CFLAGS,
-- KQ_BINDING_SRC).
local C = dofile("tests/native/constants.lua")

local function env(name)
  local v = os.getenv(name)
  assert(v and v ~= "", name .. " is not set: run this through `make check-headers`")
  return v
end

local CLANG, NM, HOST_CC = env("KQ_CLANG"), env("KQ_NM"), env("KQ_HOST_CC")
local CFLAGS, LUA_CFLAGS = env("KQ_CFLAGS"), env("KQ_LUA_CFLAGS")
local SOURCES = {}
for src in env("KQ_BINDING_SRC"):gmatch("%S+") do SOURCES[#SOURCES + 1] = src end
local OUT = "build/headers"

-- Where each column's <sys/event.h> is, the clang targets it is compiled
-- for (a 32-bit one where the system has it: pointer-sized udata), and
-- the symbols its objects must import: the queue is created close-on-exec
-- where the system can (so plain kqueue() is not called there), and
-- NetBSD's kevent is the versioned __kevent50; a fork is seen through a
-- page inherited as zeros (minherit) where the system has one, else
-- through pthread_atfork (kq_sys.h, kq_sys_fork_marker).
local SYSTEMS = {
  freebsd14 = { targets = { "x86_64-unknown-freebsd14.0", "i386-unknown-freebsd14.0" },
    create = "kqueuex", kevent = "kevent", fork = "minherit" },
  freebsd15 = { targets = { "x86_64-unknown-freebsd15.0", "aarch64-unknown-freebsd15.0" },
    create = "kqueuex", kevent = "kevent", fork = "minherit" },
  macos = { targets = { "x86_64-apple-macos11", "arm64-apple-macos11" },
    create = "kqueue", kevent = "kevent", prefix = "_", fork = "pthread_atfork" },
  openbsd7 = { targets = { "x86_64-unknown-openbsd7.8" },
    create = "kqueue1", kevent = "kevent", fork = "minherit" },
  netbsd9 = { targets = { "x86_64-unknown-netbsd9.0", "i386-unknown-netbsd9.0" },
    create = "kqueue1", kevent = "__kevent50", fork = "minherit" },
  netbsd10 = { targets = { "x86_64-unknown-netbsd10.0" },
    create = "kqueue1", kevent = "__kevent50", fork = "minherit" },
  engine = { dir = "host" },
}

-- Runs a shell command; returns its exit code and its output (2>&1).
local function run(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"exit=$?\""))
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return code, out:gsub("exit=%d+%s*$", "")
end

local function read(path)
  local f = assert(io.open(path, "r"))
  local s = f:read("*a")
  f:close()
  return s
end

local function sorted(set)
  local list = {}
  for k in pairs(set) do list[#list + 1] = k end
  table.sort(list)
  return list
end

local T = C.load()

describe("the binding compiled for", function()
  for _, id in ipairs(T.systems) do
    local sys = SYSTEMS[id]
    assert(sys, "constants.txt has a column headers_spec.lua does not know: " .. id)
    for _, target in ipairs(sys.targets or {}) do
      it(C.TITLES[id] .. " (" .. target .. ") with -Wall -Wextra -Werror", function()
        local dir = OUT .. "/" .. id .. "/" .. target
        assert.are.equal(0, (run("mkdir -p " .. dir)))
        local objects = {}
        for _, src in ipairs(SOURCES) do
          local obj = dir .. "/" .. src:match("([^/]+)%.c$") .. ".o"
          objects[#objects + 1] = obj
          local code, out = run(table.concat({ CLANG, "--target=" .. target, CFLAGS,
            "-nostdlibinc -isystem tests/native/" .. (sys.dir or id),
            "-isystem tests/native/sysroot", LUA_CFLAGS, "-c", src, "-o", obj }, " "))
          assert(code == 0, src .. " for " .. target .. ":\n" .. out)
        end
        local code, out = run(NM .. " --undefined-only --no-sort " .. table.concat(objects, " "))
        assert(code == 0, out)
        local imports = {}
        for line in out:gmatch("[^\n]+") do
          local name = line:match("(%S+)%s*$")
          if name and not line:match(":%s*$") then
            imports[name:sub(#(sys.prefix or "") + 1)] = true
          end
        end
        assert.is_true(imports[sys.create], "creates its queue with " .. sys.create)
        assert.is_true(imports[sys.kevent], "calls " .. sys.kevent)
        assert.is_true(imports[sys.fork], "sees a fork through " .. sys.fork)
        if sys.create ~= "kqueue" then
          assert.is_nil(imports.kqueue, "plain kqueue() where " .. sys.create .. " exists")
        end
        for name in pairs(imports) do
          assert.is_nil(name:match("^kqe_"), "an engine call: " .. name)
        end
      end)
    end
  end
end)

describe("the constants", function()
  for _, id in ipairs(T.systems) do
    local sys = SYSTEMS[id]
    it("exported against " .. C.TITLES[id] .. "'s header are its column of constants.txt",
      function()
        local header = "tests/native/" .. (sys.dir or id)
        local lib = OUT .. "/" .. id .. "/constants.so"
        assert.are.equal(0, (run("mkdir -p " .. OUT .. "/" .. id)))
        local code, out = run(table.concat({ HOST_CC, CFLAGS, "-shared -DKQ_NATIVE",
          "-I" .. header, "-Icsrc", LUA_CFLAGS, "csrc/kq_constants.c",
          "tests/native/constdump.c -o", lib }, " "))
        assert(code == 0, out)
        local open = assert(package.loadlib("./" .. lib, "luaopen_kqconstdump"))
        local got = open()
        local want = T.value[id]
        for _, name in ipairs(T.names) do
          assert.are.equal(want[name], got[name], name)
        end
        for name in pairs(got) do
          assert.is_not_nil(want[name], name .. " is exported but not in constants.txt")
        end
        -- And the stand-in defines no kqueue name the table lacks.
        if sys.targets then
          local defined = {}
          for name in read(header .. "/sys/event.h"):gmatch("#define%s+([%u%d_]+)%s") do
            if name:match("^EVFILT_") or name:match("^EV_%u") or name:match("^NOTE_") then
              defined[name] = true
            end
          end
          local listed = {}
          for name in pairs(want) do listed[name] = true end
          assert.are.same(sorted(listed), sorted(defined))
        end
      end)
  end

  it("of csrc/kq_constants.c are the names of constants.txt, filters signed", function()
    local listed, filters = {}, {}
    for kind, name in read("csrc/kq_constants.c"):gmatch("KQ_(%u+)%((%u[%u%d_]*)%)") do
      listed[name] = true
      if kind == "FILTER" then filters[name] = true end
    end
    local names, evfilt = {}, {}
    for _, name in ipairs(T.names) do
      names[name] = true
      if name:match("^EVFILT_") then evfilt[name] = true end
    end
    assert.are.same(sorted(names), sorted(listed))
    assert.are.same(sorted(evfilt), sorted(filters))
  end)

  it("table in doc/portability.md is the one constants.txt generates", function()
    local section = C.doc_section(read("doc/portability.md"))
    assert(section, "doc/portability.md has no generated table; run make portability-doc")
    assert.are.equal(C.markdown(T), section)
  end)
end)
