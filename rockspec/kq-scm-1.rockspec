-- kq from a checkout: `luarocks make rockspec/kq-scm-1.rockspec` builds the
-- working tree (git+file://. only works there).  Releases use
-- kq-<version>-1.rockspec; the build table is the same in both, and both
-- list the C sources of csrc/sources.mk (spec/rockspec_spec.lua checks it).
rockspec_format = "3.0"
package = "kq"
version = "scm-1"
source = {
  url = "git+file://.",
}
description = {
  summary = "The BSD kqueue API for Lua, on the BSDs, macOS and Linux",
  detailed = [[
    kq gives Lua 5.1 to 5.4 and LuaJIT kqueue(2) and kevent(2) with
    FreeBSD semantics. On FreeBSD, macOS, OpenBSD and NetBSD it calls the
    system; on Linux it carries its own engine over epoll, timerfd,
    eventfd, pidfd, inotify and signals.
  ]],
  homepage = "https://github.com/kq-lua/kq",
  license = "MIT",
  labels = { "kqueue", "kevent", "event-loop", "io", "epoll" },
}
-- Linux (the engine) and the systems with kqueue(2): LuaRocks counts
-- FreeBSD, OpenBSD, NetBSD and macOS as "bsd".
supported_platforms = { "linux", "bsd" }
dependencies = {
  "lua >= 5.1, < 5.5",
}
build = {
  type = "builtin",
  modules = {
    -- The binding alone: the system has kqueue(2) (the BSDs, macOS).
    ["kq.core"] = {
      sources = {
        "csrc/kq_core.c",
        "csrc/kq_queue.c",
        "csrc/kq_kevent.c",
        "csrc/kq_change.c",
        "csrc/kq_udata.c",
        "csrc/kq_entry.c",
        "csrc/kq_constants.c",
        "csrc/kq_view.c",
        "csrc/kq_bits.c",
      },
      incdirs = { "csrc" },
    },
    kq = "lua/kq/init.lua",
  },
  platforms = {
    linux = {
      modules = {
        -- The binding and the engine.  LuaRocks merges lists slot by slot,
        -- so this list repeats the binding's sources and is complete.
        ["kq.core"] = {
          sources = {
            "csrc/kq_core.c",
            "csrc/kq_queue.c",
            "csrc/kq_kevent.c",
            "csrc/kq_change.c",
            "csrc/kq_udata.c",
            "csrc/kq_entry.c",
            "csrc/kq_constants.c",
            "csrc/kq_view.c",
            "csrc/kq_bits.c",
            "csrc/engine/queue.c",
            "csrc/engine/knote.c",
            "csrc/engine/families.c",
            "csrc/engine/fdkind.c",
            "csrc/engine/fd.c",
            "csrc/engine/watch.c",
            "csrc/engine/io.c",
            "csrc/engine/file.c",
            "csrc/engine/vnode.c",
            "csrc/engine/user.c",
            "csrc/engine/timer.c",
            "csrc/engine/signal.c",
            "csrc/engine/proc.c",
            "csrc/engine/kqread.c",
            "csrc/engine/collect.c",
            "csrc/engine/kevent.c",
          },
          defines = { "_GNU_SOURCE" },
          incdirs = { "csrc" },
          -- pthread_once and the mutexes live in libpthread before glibc 2.34.
          libraries = { "pthread" },
        },
      },
    },
  },
}
-- The suite needs the checkout's Makefile, build/ and Debian's busted:
-- `make test` (it installs what it needs); no busted rock is asked for.
test = {
  type = "command",
  command = "make test",
}
