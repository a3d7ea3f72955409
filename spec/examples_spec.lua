-- The examples/ programs, each run as a separate process (io.popen) from
-- the repository root, with their output checked exactly.
local socket = require("socket")
local kq = require("kq")
local h = require("spec.helper")
local finally = h.finally -- keeps every cleanup (busted keeps the last)

-- The interpreter running this suite (busted --lua=X re-runs itself under
-- X: the lowest negative index of `arg`), so that `busted --lua=luajit`
-- runs the examples under LuaJIT too.
local function interpreter()
  local i = -1
  while arg[i - 1] do i = i - 1 end
  return arg[i] or "lua5.4"
end
local LUA = interpreter()

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Run `LUA examples/<args>`; returns stdout, stderr, exit code (a
-- signal number is returned negated).  The shell reports the status (Lua
-- 5.1 and LuaJIT do not return it from close).
local function run(args)
  local errfile = os.tmpname()
  local p = assert(io.popen(LUA .. " examples/" .. args .. " 2>" .. errfile
    .. "; echo \"<exit $?>\""))
  local out = p:read("*a")
  p:close()
  local f = assert(io.open(errfile))
  local err = f:read("*a")
  f:close()
  os.remove(errfile)
  local code
  out = out:gsub("<exit (%d+)>\n$", function(c) code = tonumber(c); return "" end)
  if code and code > 128 then code = 128 - code end
  return out, err, code
end

local function lines(...)
  return table.concat({ ... }, "\n") .. "\n"
end

local REPLAY = lines("RECEIVED: 5", "RECEIVED: 4", "RECEIVED: 3",
  "RECEIVED: 2", "RECEIVED: 1", "FINISHED")

-- os.execute: true on success (Lua 5.2+), 0 (5.1, LuaJIT).
local function sh_ok(cmd)
  local r = os.execute(cmd)
  return r == true or r == 0
end

-- Is process `pid` gone (or a zombie nobody reaped yet)?
local function gone(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then
    return not sh_ok("kill -0 " .. pid .. " 2>/dev/null")
  end
  local stat = f:read("*a")
  f:close()
  return stat:match("^%d+ %b() (%a)") == "Z"
end

-- Poll `cond` every 10 ms for at most `limit` seconds.
local function eventually(cond, limit)
  local deadline = socket.gettime() + limit
  repeat
    if cond() then return true end
    socket.sleep(0.01)
  until socket.gettime() > deadline
  return cond()
end

local closed_port = h.closed_port

describe("examples/five_requests.lua", function()
  it("replays the five requests against its own server", function()
    local out, err, code = run("five_requests.lua --scale 0.1")
    assert.are.equal(REPLAY, out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("with --verbose describes each event, and leaves no server behind", function()
    local out, err, code = run("five_requests.lua --scale 0.1 --verbose")
    assert.are.equal(0, code)
    local pid = err:match("^five_requests: server pid (%d+) on 127%.0%.0%.1:%d+\n$")
    assert.is_truthy(pid, err)
    assert.is_true(gone(pid))
    local n = 0
    for received, desc in out:gmatch("RECEIVED: (%d)\n  ([^\n]*)\n") do
      n = n + 1
      assert.are.equal(tostring(6 - n), received)
      assert.matches("^ident=%d+ filter=READ flags=ONESHOT[|%u]* fflags=0 data=%d+ udata=" .. received .. "$",
        h.evflags_text(desc))
    end
    assert.are.equal(5, n)
    assert.matches("\nFINISHED\n$", out)
  end)

  it("fails with one line when the connection is refused", function()
    local port = closed_port()
    local out, err, code = run("five_requests.lua --server 127.0.0.1:" .. port)
    assert.are.equal("", out)
    assert.are.equal("five_requests: cannot connect to 127.0.0.1:" .. port
      .. ": connection refused\n", err)
    assert.are.equal(1, code)
  end)

  it("refuses a malformed --server with exit status 2", function()
    for _, bad in ipairs({ "nonsense", "127.0.0.1:", ":80", "127.0.0.1:0",
        "127.0.0.1:70000", "host:port", "" }) do
      local out, err, code = run("five_requests.lua --server " .. quote(bad))
      assert.are.equal("", out)
      assert.are.equal("five_requests: bad --server '" .. bad
        .. "': expected HOST:PORT\n", err)
      assert.are.equal(2, code)
    end
    local out, err, code = run("five_requests.lua --server")
    assert.are.equal("", out)
    assert.matches("^five_requests: missing value after %-%-server; usage: [^\n]+\n$", err)
    assert.are.equal(2, code)
  end)

  it("refuses other bad arguments with exit status 2", function()
    for _, args in ipairs({ "--scale x", "--scale -1", "--scale 0",
        "--scale 0.0009", "--timeout 0", "--bogus" }) do
      local out, err, code = run("five_requests.lua " .. args)
      assert.are.equal("", out)
      assert.matches("^five_requests: [^\n]+\n$", err)
      assert.are.equal(2, code)
    end
  end)

  -- A server in this process that takes the five requests (checking
  -- each) and calls answer(conns) with the five connections, in request
  -- order; returns what five_requests printed and its exit code.
  local function against(answer, args)
    local server = assert(socket.bind("127.0.0.1", 0))
    finally(function() server:close() end)
    local _, port = server:getsockname()
    server:settimeout(10)
    local errfile = os.tmpname()
    finally(function() os.remove(errfile) end)
    local p = assert(io.popen(LUA .. " examples/five_requests.lua "
      .. (args or "") .. " --server 127.0.0.1:" .. port .. " 2>" .. errfile
      .. "; echo \"<exit $?>\""))
    local conns = {}
    for _ = 1, 5 do
      local c = assert(server:accept())
      c:settimeout(10)
      local first = assert(c:receive("*l"))
      local delay = tonumber(first:match(
        "^GET /delay/(%d+)/url/http://www%.google%.com HTTP/1%.1$"))
      assert.is_truthy(delay, first)
      repeat local l = assert(c:receive("*l")) until l == ""
      conns[#conns + 1] = { sock = c, delay = delay }
    end
    -- Accepted in connection order, which is request order.
    for i = 1, 5 do
      assert.are.equal(math.floor((5 - i) * 1000 * (tonumber((args or "")
        :match("%-%-scale ([%d.]+)")) or 1) + 0.5), conns[i].delay)
    end
    answer(conns)
    local out = p:read("*a")
    p:close()
    local ef = assert(io.open(errfile))
    local err = ef:read("*a")
    ef:close()
    local code
    out = out:gsub("<exit (%d+)>\n$", function(c) code = tonumber(c); return "" end)
    return out, err, code
  end

  local function reply(c, text)
    assert(c.sock:send(text))
    c.sock:close()
  end

  it("fails with one line when the server hangs up without answering", function()
    local out, err, code = against(function(conns)
      for i = 5, 1, -1 do conns[i].sock:close() end
    end)
    assert.are.equal("", out)
    assert.matches("^five_requests: request %d %(%d+ ms%): connection closed"
      .. " before a complete answer %(0 bytes%)\n$", err)
    assert.are.equal(1, code)
  end)

  it("fails with one line on an answer that is not the one asked for", function()
    local out, err, code = against(function(conns)
      for i = 5, 1, -1 do
        reply(conns[i], "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
      end
    end)
    assert.are.equal("", out)
    assert.matches("^five_requests: request %d %(%d+ ms%): expected 302 to"
      .. " http://www%.google%.com, got '404 Not Found'\n$", err)
    assert.are.equal(1, code)
  end)

  it("fails with one line on an answer that comes before its delay", function()
    local out, err, code = against(function(conns)
      for i = 5, 1, -1 do
        reply(conns[i], "HTTP/1.1 302 Found\r\nLocation: http://www.google.com"
          .. "\r\nContent-Length: 0\r\n\r\n")
      end
    end)
    -- Request 5 asked for no delay: it may be counted before the others.
    assert.matches("^[RECIVD: 5\n]*$", out)
    assert.matches("^five_requests: request [1-4] %([1-4]000 ms%): answered"
      .. " after %d+ ms\n$", err)
    assert.are.equal(1, code)
  end)

  it("fails with one line when answers come back out of order", function()
    local out, err, code = against(function(conns)
      -- Every delay is over (40 ms at most), then answer 1 first.
      socket.sleep(0.1)
      for i = 1, 5 do
        reply(conns[i], "HTTP/1.1 302 Found\r\nLocation: http://www.google.com"
          .. "\r\nContent-Length: 0\r\n\r\n")
        socket.sleep(0.05)
      end
    end, "--scale 0.01")
    assert.are.equal("", out)
    assert.are.equal("five_requests: request 1 (40 ms) was answered before"
      .. " request 2 (30 ms)\n", err)
    assert.are.equal(1, code)
  end)

  it("gives up with one line when the server never answers", function()
    -- Connections queue in the backlog; nobody ever accepts them.
    local server = assert(socket.bind("127.0.0.1", 0))
    finally(function() server:close() end)
    local _, port = server:getsockname()
    local out, err, code = run("five_requests.lua --scale 0.01 --timeout 0.3 --server 127.0.0.1:" .. port)
    assert.are.equal("", out)
    assert.matches("^five_requests: no answer to 5 request%(s%) after [%d.]+ s\n$", err)
    assert.are.equal(1, code)
  end)

  it("takes its server down when it is killed", function()
    local errfile = os.tmpname()
    finally(function() os.remove(errfile) end)
    -- Full delays (4 s): it is still waiting when it gets killed.
    local p = assert(io.popen("echo $$; exec " .. LUA .. " examples/five_requests.lua --verbose 2>" .. errfile))
    local client = assert(tonumber(p:read("*l")))
    local server
    assert.is_true(eventually(function()
      local f = io.open(errfile)
      server = f and f:read("*a"):match("server pid (%d+)")
      if f then f:close() end
      return server ~= nil
    end, 10))
    assert.is_false(gone(server))
    assert.is_true(sh_ok("kill -KILL " .. client))
    p:close()
    -- Its end of the server's stdout closed with it: the server exits.
    assert.is_true(eventually(function() return gone(server) end, 10))
  end)
end)

describe("examples/slow_server.lua", function()
  it("answers /delay/<ms>/url/<url> with a redirect, not early, and others with 404", function()
    local p = assert(io.popen("echo $$; exec " .. LUA .. " examples/slow_server.lua --parent"))
    local pid = p:read("*l")
    finally(function()
      os.execute("kill " .. pid)
      p:close()
    end)
    local port = assert(p:read("*l"):match("^LISTENING 127%.0%.0%.1:(%d+)$"))
    local function get(path)
      local c = assert(socket.connect("127.0.0.1", tonumber(port)))
      c:settimeout(10)
      assert(c:send("GET " .. path .. " HTTP/1.1\r\nHost: x\r\n\r\n"))
      local answer = c:receive("*a")
      c:close()
      return answer
    end
    local t0 = socket.gettime()
    assert.are.equal("HTTP/1.1 302 Found\r\nLocation: http://example.org/\r\n"
      .. "Content-Length: 0\r\nConnection: close\r\n\r\n",
      get("/delay/100/url/http://example.org/"))
    assert.is_true(socket.gettime() - t0 >= 0.098)
    assert.are.equal("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
      .. "Connection: close\r\n\r\n", get("/elsewhere"))
  end)

  it("rejects a bad address with exit status 1", function()
    local out, err, code = run("slow_server.lua nowhere")
    assert.are.equal("", out)
    assert.are.equal("slow_server: bad address 'nowhere': expected HOST:PORT\n", err)
    assert.are.equal(1, code)
  end)
end)

describe("examples/timers.lua", function()
  it("runs every timer recipe", function()
    local out, err, code = run("timers.lua")
    assert.are.equal(lines(
      "oneshot: fired once after 50 ms",
      "oneshot: gone after delivery (ENOENT)",
      "periodic: 5 ticks of 20 ms, udata kept",
      "periodic: a late collect counts the missed ticks",
      "periodic: quiet once deleted",
      "units: NOTE_MSECONDS data=30 fired after 30 ms",
      "units: NOTE_USECONDS data=30000 fired after 30 ms",
      "units: NOTE_NSECONDS data=30000000 fired after 30 ms",
      "units: two units at once give EINVAL",
      "abstime: fired at the wall-clock deadline, not before",
      "abstime: a deadline in the past fires at once",
      "re-add: the 20 ms timer re-added as 80 ms fired after 80 ms"), out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)
end)

describe("examples/wake_queue.lua", function()
  it("wakes a nested queue with EVFILT_USER", function()
    local out, err, code = run("wake_queue.lua")
    assert.are.equal(lines(
      "main: timer fired, triggering the worker twice",
      "main: the worker queue is readable, 1 event(s)",
      "worker: wake fflags=0x3 data=20",
      "main: the worker queue is readable, 1 event(s)",
      "worker: wake fflags=0x1 data=30",
      "main: idle: true"), out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)
end)

describe("examples/nested_loop.lua", function()
  local expected = lines(
    "kq: 3 timer ticks",
    "outer loop: its timer triggers the kq USER event",
    "kq: USER event, data=7",
    "outer loop: finished")

  it("drives a queue from luv", function()
    local out, err, code = run("nested_loop.lua --luv")
    assert.are.equal(expected, out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)

  it("drives a queue from cqueues", function()
    local out, err, code = run("nested_loop.lua --cqueues")
    assert.are.equal(expected, out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)
end)

describe("examples/child_processes.lua", function()
  it("waits for three children and decodes their status", function()
    local out, err, code = run("child_processes.lua")
    out = h.evflags_text(out)
    assert.are.equal(lines(
      "fast: exited with code 3 (data=768 flags=ONESHOT|CLEAR|EOF fflags=EXIT)",
      "fast: reaped by pclose",
      "slow: exited with code 0 (data=0 flags=ONESHOT|CLEAR|EOF fflags=EXIT)",
      "slow: reaped by pclose",
      "victim: killed by signal 15 (data=15 flags=ONESHOT|CLEAR|EOF fflags=EXIT)",
      "victim: reaped by pclose"), out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)
end)

describe("examples/signals.lua", function()
  -- On a native kqueue (kq.backend ~= "linux") a watched signal still
  -- runs its default action: the example ignores SIGUSR1 and SIGUSR2 with
  -- luaposix, and without it must say so rather than send them (the
  -- first would end it; run() would return -10 or -30).
  if kq.backend ~= "linux" and not pcall(require, "posix.signal") then
    it("on a native kqueue without luaposix: says it needs luaposix and exits 1,"
        .. " sending no signal", function()
      local out, err, code = run("signals.lua")
      assert.are.same({ "", "signals: on a native kqueue this recipe needs"
        .. " luaposix to ignore SIGUSR1/SIGUSR2\n", 1 }, { out, err, code })
    end)
  else
    it("counts the signals it sends itself", function()
      local out, err, code = run("signals.lua")
      assert.are.equal(lines(
        "SIGUSR1: sent 3, counted 3",
        "SIGUSR2: sent 1, counted 1",
        "done"), out)
      assert.are.equal("", err)
      assert.are.equal(0, code)
    end)
  end
end)

describe("examples/file_watcher.lua", function()
  it("reports each change to a file and its directory", function()
    local out, err, code = run("file_watcher.lua")
    assert.are.equal(lines(
      "create notes.txt:        dir WRITE",
      "append a line:           file WRITE|EXTEND",
      "chmod 600:               file ATTRIB",
      "mkdir sub:               dir WRITE|LINK",
      "rename notes.txt:        file RENAME, dir WRITE",
      "remove renamed.txt:      file DELETE, dir WRITE",
      "rmdir sub:               dir WRITE|LINK"), out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
  end)
end)
