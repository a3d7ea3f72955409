# csrc/sources.mk - the one list of kq's C sources, included by the
# Makefile, tests/c/Makefile and fuzz/Makefile (paths from the repository
# root).  spec/rockspec_spec.lua holds the rockspec to the same list.

# The binding: the Lua module kq.core on every system.
BINDING_SRC = csrc/kq_core.c csrc/kq_queue.c csrc/kq_kevent.c \
	csrc/kq_change.c csrc/kq_udata.c csrc/kq_entry.c \
	csrc/kq_constants.c csrc/kq_view.c csrc/kq_bits.c
BINDING_H = csrc/kq_binding.h csrc/kq_sys.h csrc/kq_compat.h \
	csrc/kq_kevent.h

# The Linux engine (csrc/engine): kqueue(2) and kevent(2) on epoll, in
# floors (csrc/engine/queue.h): the queue's life, the filter families, and
# apply-and-collect on top.
ENGINE_SRC = csrc/engine/queue.c csrc/engine/knote.c csrc/engine/families.c \
	csrc/engine/fdkind.c csrc/engine/fd.c csrc/engine/watch.c \
	csrc/engine/io.c csrc/engine/file.c csrc/engine/vnode.c \
	csrc/engine/user.c csrc/engine/timer.c csrc/engine/signal.c \
	csrc/engine/proc.c csrc/engine/kqread.c csrc/engine/collect.c \
	csrc/engine/kevent.c
ENGINE_H = csrc/engine/kqe.h csrc/engine/queue.h csrc/engine/family.h \
	csrc/engine/fd.h csrc/engine/watch.h csrc/engine/collect.h
