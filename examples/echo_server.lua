#!/usr/bin/env lua
-- examples/echo_server.lua: a TCP echo server on kq, to start from.
--
--   lua examples/echo_server.lua [OPTIONS] [HOST:PORT]
--
-- It sends every byte it receives back to its sender, in order.  When a
-- client half-closes (shutdown SHUT_WR), the rest of its echo goes out and
-- the server closes the connection.  Prints "LISTENING HOST:PORT" once it
-- listens (default 127.0.0.1:0: any free port; try `nc 127.0.0.1 PORT`),
-- and on SIGINT or SIGTERM it stops accepting, lets pending echoes go out
-- (at most --grace seconds), closes everything and prints one summary
-- line on stderr, exit status 0.  On a native kqueue (FreeBSD, macOS, the
-- other BSDs) that needs luaposix: without it the server says so and
-- exits 1 (see doc/servers.md).
--
-- OPTIONS (see examples/netserver.lua and doc/servers.md):
--   --backlog N       listen backlog (default 65535: the system's
--                     SOMAXCONN, to which the kernel lowers it)
--   --max-conns N     connections at once (default 10000)
--   --idle SECONDS    close a connection silent that long (default 60)
--   --max-output N    unsent bytes per connection before its input is
--                     paused (default 262144)
--   --slice N         bytes read per connection and turn (default 65536)
--   --grace SECONDS   time given to pending output at shutdown (default 5)
--
-- The protocol is the function on_data below; netserver.lua is the event
-- loop: bounded reads, output caps, idle timers, signals.

-- Find kq (and netserver.lua) in this checkout as well as where
-- `make install` puts it.
local dir = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
package.path = dir .. "/?.lua;" .. dir .. "/../lua/?.lua;" .. dir
  .. "/../lua/?/init.lua;" .. package.path
package.cpath = dir .. "/../build/?.so;" .. package.cpath

local netserver = require("netserver")

local NAME = "echo_server"

local o, err = netserver.options(arg)
if not o then
  io.stderr:write(NAME, ": ", err, "\n")
  os.exit(2)
end

o.name = NAME
-- Echo: what comes in goes out.  netserver pauses the input of a client
-- whose echo it cannot send (it does not read), up to --max-output.
o.on_data = function(conn, data) conn:write(data) end
local server = netserver.new(o)
-- Before listening: a server that could not stop cleanly does not start.
local ok
ok, err = server:stop_on_signals()
local listener
if ok then
  listener, err = netserver.listen(o.host, o.port, { backlog = o.backlog })
end
if not listener then
  io.stderr:write(NAME, ": ", err, "\n")
  os.exit(1)
end
server:add_listener(listener)
local why = server:run(function()
  print(string.format("LISTENING %s:%d", listener:getsockname()))
  io.stdout:flush()
end)
io.stderr:write(server:summary(why), "\n")
