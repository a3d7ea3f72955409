/*
 * A stand-in for a BSD <sys/event.h>, used only by `make check-native-build`
 * to prove that the binding compiles on a system with a native kqueue: it
 * declares kqueue(2) and kevent(2) as the system would and uses the
 * engine's header for the types and FreeBSD's constants, without the
 * engine's functions.
 */
#ifndef KQ_NATIVE_STUB_EVENT_H
#define KQ_NATIVE_STUB_EVENT_H
#include "../../../csrc/engine/kqe.h"
int kqueue(void);
int kevent(int kq, const struct kevent *changelist, int nchanges,
	   struct kevent *eventlist, int nevents, const struct timespec *timeout);
#endif
