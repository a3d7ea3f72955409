-- kq: Lua 5.4 binding to the BSD kqueue API, with a kqueue engine on Linux.
rockspec_format = "3.0"
package = "kq"
version = "scm-1"
source = {
  url = "git+file://.",
}
description = {
  summary = "The BSD kqueue API for Lua 5.4, on the BSDs, macOS and Linux",
  detailed = [[
    kq gives Lua kqueue(2) and kevent(2) with FreeBSD semantics. On the
    BSDs and macOS it calls the system; on Linux it carries its own engine
    over epoll, timerfd, eventfd, pidfd, inotify and signals.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
test_dependencies = {
  "busted",
}
build = {
  type = "builtin",
  modules = {
    ["kq.core"] = {
      sources = {
        "csrc/kq_core.c",
        "csrc/kq_queue.c",
        "csrc/kq_kevent.c",
        "csrc/kq_constants.c",
        "csrc/kq_view.c",
      },
      incdirs = { "csrc" },
    },
    kq = "lua/kq/init.lua",
  },
  platforms = {
    linux = {
      modules = {
        -- Lists merge slot by slot, so this is the complete list.
        ["kq.core"] = {
          sources = {
            "csrc/kq_core.c",
            "csrc/kq_queue.c",
            "csrc/kq_kevent.c",
            "csrc/kq_constants.c",
            "csrc/kq_view.c",
            "csrc/engine/engine.c",
            "csrc/engine/knote.c",
            "csrc/engine/readiness.c",
            "csrc/engine/user.c",
            "csrc/engine/timer.c",
            "csrc/engine/signal.c",
            "csrc/engine/proc.c",
            "csrc/engine/vnode.c",
          },
          defines = { "_GNU_SOURCE" },
          incdirs = { "csrc" },
        },
      },
    },
  },
}
test = {
  type = "busted",
}
