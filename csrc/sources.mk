# csrc/sources.mk - the one list of kq's C sources, included by the
# Makefile, tests/c/Makefile and fuzz/Makefile (paths from the repository
# root).  spec/rockspec_spec.lua holds the rockspec to the same list.

# The binding: the Lua module kq.core on every system.
BINDING_SRC = csrc/kq_core.c csrc/kq_queue.c csrc/kq_kevent.c \
	csrc/kq_constants.c csrc/kq_view.c csrc/kq_bits.c
BINDING_H = csrc/kq_binding.h csrc/kq_sys.h csrc/kq_compat.h

# The Linux engine (csrc/engine): kqueue(2) and kevent(2) on epoll.
ENGINE_SRC = csrc/engine/engine.c csrc/engine/knote.c \
	csrc/engine/readiness.c csrc/engine/user.c csrc/engine/timer.c \
	csrc/engine/signal.c csrc/engine/proc.c csrc/engine/vnode.c
ENGINE_H = csrc/engine/kqe.h csrc/engine/internal.h
