#!/bin/sh
# tests/rock/install.sh LUA ROCK - the user's path with a released rock:
# put ROCK (a .src.rock) on a local rocks server, install kq from that
# server alone into an empty tree for interpreter LUA (lua5.1 .. lua5.4,
# luajit), then run LUA from an empty directory with only `luarocks path`
# set, and check that kq and kq.core come from that tree and work, and
# that the README's example runs there as the README tells to run it.
# `make check-rock LUA=...` runs it after `make rock`.
set -eu
lua=$1
rock=$2

case $lua in
lua5.[1-4]) version=${lua#lua}; extra= ;;
# Debian's luarocks knows LuaJIT as Lua 5.1 with other headers.
luajit) version=5.1
	extra="LUA_INCDIR=`pkg-config --variable=includedir luajit`" ;;
*) echo "install.sh: LUA must be lua5.1 .. lua5.4 or luajit, not $lua" >&2
	exit 2 ;;
esac

readme=`cd "\`dirname "$0"\`/../.." && pwd`/README.md
work=`mktemp -d`
trap 'rm -rf "$work"' EXIT INT TERM
mkdir "$work/server" "$work/tree" "$work/run"
cp "$rock" "$work/server/"
luarocks-admin make_manifest "$work/server"

luarocks --lua-version="$version" --tree="$work/tree" \
	install --only-server="$work/server" kq $extra

# Dependencies the rock asks for are all present (none is "missing").
show=`luarocks --lua-version="$version" --tree="$work/tree" show kq`
echo "$show"
if echo "$show" | grep -q missing; then
	echo "install.sh: luarocks show kq lists a missing dependency" >&2
	exit 1
fi

cd "$work/run"
unset LUA_PATH LUA_CPATH LUA_PATH_5_2 LUA_CPATH_5_2 LUA_PATH_5_3 \
	LUA_CPATH_5_3 LUA_PATH_5_4 LUA_CPATH_5_4 LUA_INIT LUA_INIT_5_2 \
	LUA_INIT_5_3 LUA_INIT_5_4
eval "`luarocks --lua-version="$version" --tree="$work/tree" path`"
KQ_TREE=$work/tree "$lua" -e '
local tree = os.getenv("KQ_TREE")
local kq = require("kq")
-- package.searchpath, which Lua 5.1 lacks.
local function search(name, path)
  for template in path:gmatch("[^;]+") do
    local file = template:gsub("%?", (name:gsub("%.", "/")))
    local f = io.open(file)
    if f then f:close() return file end
  end
end
for _, name in ipairs({ "kq", "kq.core" }) do
  local where = search(name, package.path) or search(name, package.cpath)
  assert(where and where:sub(1, #tree) == tree,
    name .. " found at " .. tostring(where) .. ", not in " .. tree)
end
local q = assert(kq.kqueue())
assert(q:kevent({
  { ident = 7, filter = kq.EVFILT_USER, flags = kq.EV_ADD },
  { ident = 7, filter = kq.EVFILT_USER, fflags = kq.NOTE_TRIGGER, udata = "hi" },
}, nil, 0) == 0)
local events = {}
assert(q:kevent(nil, events, 4, 5) == 1)
assert(events[1].ident == 7 and events[1].udata == "hi")
q:close()
print((jit and jit.version or _VERSION) .. ": " .. kq._VERSION .. " (" .. kq.backend .. ") from " .. tree)
'

# The README's first Lua block, saved as a user's program and run.
awk '/^```lua$/ { on = 1; next } /^```$/ { if (on) exit } on' "$readme" \
	>myprogram.lua
out=`"$lua" myprogram.lua`
echo "$out"
case $out in
*"filter=USER flags=CLEAR"*) ;;
*) echo "install.sh: the README's example printed no USER event" >&2
	exit 1 ;;
esac
