/*
 * shim.c - the Linux engine dressed as a C library with kqueue, for
 * `make check-native`: the binding built with KQ_NATIVE calls kqueue(2),
 * kevent(2) and close(2) by their standard names, and this library,
 * preloaded into the test run, answers them with the engine.
 *
 * It exports those three names and nothing else (the Makefile checks),
 * so the binding cannot reach the engine's extensions:
 *   kqueue()  kqe_kqueue(), exposed at once: a real kqueue's descriptor is
 *             always pollable, while the engine keeps a queue's readiness
 *             private until kqe_expose();
 *   kevent()  kqe_kevent();
 *   close()   kqe_close() for a queue, the C library's close() for any
 *             other descriptor (kqe_close answers EBADF for those without
 *             touching them).
 * The engine is compiled into this library with close renamed to
 * kq_shim_libc_close (the Makefile passes -Dclose=kq_shim_libc_close to
 * the whole compile; this file undoes it), so that its own
 * descriptors (epoll, timerfd, eventfd, ...) close directly and never come
 * back here.
 */
/* The Makefile renames close for the engine's sources; here it is the
 * exported name. */
#undef close
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>

#include "../../csrc/engine/kqe.h"

#define KQ_SHIM_EXPORT __attribute__((visibility("default")))

static int (*libc_close)(int);

/* Resolved before main(): close() must work from the first call. */
__attribute__((constructor)) static void kq_shim_init(void)
{
	libc_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
}

/* The engine's own close(2), through the C library. */
int kq_shim_libc_close(int fd);
int kq_shim_libc_close(int fd)
{
	if (libc_close == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return libc_close(fd);
}

KQ_SHIM_EXPORT int kqueue(void);
KQ_SHIM_EXPORT int kqueue(void)
{
	int fd = kqe_kqueue();

	if (fd >= 0 && kqe_expose(fd) < 0) {
		int en = errno;
		(void)kqe_close(fd);
		errno = en;
		return -1;
	}
	return fd;
}

KQ_SHIM_EXPORT int kevent(int kq, const struct kevent *changelist,
			  int nchanges, struct kevent *eventlist, int nevents,
			  const struct timespec *timeout);
KQ_SHIM_EXPORT int kevent(int kq, const struct kevent *changelist,
			  int nchanges, struct kevent *eventlist, int nevents,
			  const struct timespec *timeout)
{
	return kqe_kevent(kq, changelist, nchanges, eventlist, nevents,
			  timeout);
}

KQ_SHIM_EXPORT int close(int fd);
KQ_SHIM_EXPORT int close(int fd)
{
	int saved = errno;

	if (kqe_close(fd) == 0)
		return 0;
	errno = saved;
	return kq_shim_libc_close(fd);
}
