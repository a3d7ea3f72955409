/*
 * <sys/event.h> for `make check-native`: the Linux engine seen as a C
 * library with kqueue would show it.  The types and values are the
 * engine's own (csrc/engine/kqe.h; they follow FreeBSD); the functions
 * are the standard ones, which tests/native/shim.c exports over the
 * engine.  The binding built with KQ_NATIVE uses nothing else: the
 * engine's extensions in kqe.h are hidden symbols, so a use of one would
 * not link (and `make check-native` also lists the module's imports).
 */
#ifndef KQ_HOST_SYS_EVENT_H
#define KQ_HOST_SYS_EVENT_H

#include "../../../../csrc/engine/kqe.h"

int kqueue(void);
int kevent(int kq, const struct kevent *changelist, int nchanges,
	   struct kevent *eventlist, int nevents,
	   const struct timespec *timeout);

#endif
