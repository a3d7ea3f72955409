#!/usr/bin/env lua
-- examples/file_watcher.lua: watching a file and a directory with
-- EVFILT_VNODE.
--
--   lua examples/file_watcher.lua
--
-- EVFILT_VNODE watches an open descriptor (ident: a Lua file from
-- io.open works; a directory opens with io.open(dir, "r") too).  fflags
-- says which changes you want; each event's fflags says which of them
-- happened since the last event:
--   NOTE_WRITE   contents changed (a directory: entries added, removed,
--                renamed)
--   NOTE_EXTEND  the file grew
--   NOTE_ATTRIB  mode, owner, times changed
--   NOTE_LINK    link count changed (a directory: a subdirectory came or
--                went)
--   NOTE_RENAME  the file was renamed
--   NOTE_DELETE  the file was unlinked (it lives on while it is open)
-- Use EV_CLEAR, or the same changes are reported on every call.
--
-- The recipe makes its own temporary directory, changes things in it,
-- and prints what each step was reported as.

-- Find kq in this checkout (../lua, ../build) as well as where
-- `make install` puts it.
local dir = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
package.path = dir .. "/../lua/?.lua;" .. dir .. "/../lua/?/init.lua;"
  .. package.path
package.cpath = dir .. "/../build/?.so;" .. package.cpath

local kq = require("kq")

local VNODE = kq.EVFILT_VNODE
local ALL = kq.bor(kq.NOTE_DELETE, kq.NOTE_WRITE, kq.NOTE_EXTEND,
  kq.NOTE_ATTRIB, kq.NOTE_LINK, kq.NOTE_RENAME)

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
-- os.execute: true on success (Lua 5.2+), 0 (5.1, LuaJIT).
local function sh(command)
  local r = os.execute(command)
  assert(r == true or r == 0, command)
end

-- A fresh temporary directory.
local p = assert(io.popen('mktemp -d "${TMPDIR:-/tmp}/kq-watch.XXXXXX"'))
local tmp = assert(p:read("*l"), "mktemp failed")
p:close()
local path = tmp .. "/notes.txt"
-- Removed at the end, even if something below fails (pcall).
local function cleanup() os.execute("rm -rf " .. quote(tmp)) end

local q = assert(kq.kqueue())
local events = {}

-- Watch `file` (an open Lua file) under the name `label`.
local function watch(file, label)
  assert(q:kevent({ kq.change(file, VNODE, kq.EV_ADD + kq.EV_CLEAR, ALL, 0,
    label) }))
end

-- What one step caused: wait for the first event (at most 2 s), then
-- keep collecting until 20 ms pass with nothing new.  The notes of each
-- watched object are ORed together and printed in a fixed order.
local function step(title, action)
  action()
  local notes = {}
  local timeout = 2
  while true do
    local n = assert(q:kevent(nil, events, 16, timeout))
    if n == 0 then break end
    for i = 1, n do
      local ev = events[i]
      notes[ev.udata] = kq.bor(notes[ev.udata] or 0, ev.fflags)
    end
    timeout = 0.02
  end
  local parts = {}
  for _, label in ipairs({ "file", "dir" }) do
    if notes[label] then
      parts[#parts + 1] = label .. " " .. kq.fflagnames(VNODE, notes[label])
    end
  end
  print(string.format("%-24s %s", title .. ":",
    #parts > 0 and table.concat(parts, ", ") or "nothing"))
end

local function write_file(name, mode, text)
  local f = assert(io.open(name, mode))
  f:write(text)
  f:close()
end

local ok, err = pcall(function()
  -- Watch the directory: io.open(dir, "r") opens it (only reading fails).
  local dirfile = assert(io.open(tmp, "r"))
  watch(dirfile, "dir")

  step("create notes.txt", function() write_file(path, "w", "") end)

  local file = assert(io.open(path, "r"))
  watch(file, "file")

  step("append a line", function() write_file(path, "a", "hello\n") end)
  step("chmod 600", function() sh("chmod 600 " .. quote(path)) end)
  step("mkdir sub", function() sh("mkdir " .. quote(tmp .. "/sub")) end)
  step("rename notes.txt", function()
    assert(os.rename(path, tmp .. "/renamed.txt"))
  end)
  step("remove renamed.txt", function()
    assert(os.remove(tmp .. "/renamed.txt"))
  end)
  step("rmdir sub", function() sh("rmdir " .. quote(tmp .. "/sub")) end)

  -- Closing the queue drops its knotes; then close the watched files.
  q:close()
  file:close()
  dirfile:close()
end)
cleanup()
if not ok then error(err, 0) end
