-- tests/load/luv_server.lua: the echo and HTTP servers of examples/ written
-- with luv (libuv), as the baseline doc/servers.md compares kq with.
--
--   lua tests/load/luv_server.lua echo|http [--max-output BYTES] [HOST:PORT]
--
-- The same behaviour where it matters for the numbers: a backlog of
-- 65535, reads paused past --max-output unsent bytes (read_stop, resumed
-- once half has gone), half-close handled, HTTP keep-alive with the same
-- fixed answer.  Prints "LISTENING HOST:PORT"; SIGTERM or SIGINT stops it.
local uv = require("luv")

local mode = arg[1]
if mode ~= "echo" and mode ~= "http" then
  io.stderr:write("luv_server: MODE must be echo or http\n")
  os.exit(2)
end
local host, port, max_output = "127.0.0.1", 0, 256 * 1024
local i = 2
while arg[i] do
  if arg[i] == "--max-output" then
    max_output = assert(tonumber(arg[i + 1]))
    i = i + 2
  else
    host, port = arg[i]:match("^(.+):(%d+)$")
    port = assert(tonumber(port), "expected HOST:PORT")
    i = i + 1
  end
end

local BODY = "Hello, world\n"
local OK = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
  .. #BODY .. "\r\nX-Worker: 0\r\n\r\n" .. BODY

local server = uv.new_tcp()
assert(server:bind(host, port))
local clients = {}

local function serve(c)
  local paused, inbuf, closing = false, "", false
  clients[c] = true
  local function close()
    if not c:is_closing() then
      clients[c] = nil
      c:close()
    end
  end
  local on_read
  local function written()
    if closing and c:get_write_queue_size() == 0 then return close() end
    if paused and c:get_write_queue_size() <= max_output / 2 then
      paused = false
      c:read_start(on_read)
    end
  end
  local function send(s)
    c:write(s, written)
    if not paused and c:get_write_queue_size() >= max_output then
      paused = true
      c:read_stop()
    end
  end
  on_read = function(err, data)
    if err or not data then
      -- EOF (or an error): finish what is queued, then close.
      closing = true
      c:read_stop()
      return written()
    end
    if mode == "echo" then return send(data) end
    inbuf = inbuf .. data
    while true do
      local e = inbuf:find("\r\n\r\n", 1, true)
      if not e then break end
      local length = tonumber(inbuf:sub(1, e):lower()
        :match("\r\ncontent%-length:%s*(%d+)") or "0")
      if #inbuf < e + 3 + length then break end
      inbuf = inbuf:sub(e + 4 + length)
      send(OK)
    end
  end
  c:read_start(on_read)
end

assert(server:listen(65535, function(err)
  assert(not err, err)
  local c = uv.new_tcp()
  server:accept(c)
  serve(c)
end))

local function stop()
  for c in pairs(clients) do c:close() end
  server:close()
  uv.stop()
end
for _, name in ipairs({ "sigterm", "sigint" }) do
  local s = uv.new_signal()
  s:start(name, stop)
  s:unref()
end

local addr = server:getsockname()
print(string.format("LISTENING %s:%d", addr.ip, addr.port))
io.stdout:flush()
uv.run()
