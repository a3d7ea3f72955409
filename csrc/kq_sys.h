/*
 * kq_sys.h - the one place that decides where kqueue comes from.
 *
 * Two builds (doc/portability.md):
 *   KQ_NATIVE  the system's <sys/event.h>, kqueue(2), kevent(2) and
 *              close(2), nothing else.  Chosen automatically off Linux;
 *              `make check-native` also builds it on Linux, over the
 *              engine dressed as libc (tests/native/shim.c).
 *   otherwise  Linux: kq's engine (csrc/engine), same contracts, plus the
 *              engine's extensions behind the kq_sys_* hooks.
 * No other binding file names the platform or the engine: they use
 * kqueue(), kevent(), struct kevent and EV_SET as the man page does, plus
 * the hooks below, which every build defines (trivially where the system
 * has no such extension), so that callers need no #ifdef:
 *   kq_sys_close(fd)          close a queue
 *   kq_sys_expose(fd)         the queue's descriptor is used from outside
 *   KQ_SYS_COUNTED            kq_sys_kevent_counted(kq, cl, nc, &napplied)
 *                             registers and says where it stopped
 *   KQ_SYS_LAZY               READ/WRITE data left to be computed on read:
 *                             kq_sys_set_lazy(fd), kq_sys_event_is_lazy(ev),
 *                             kq_sys_event_kind(ev), kq_sys_event_data(...)
 *   KQ_EV_KEEPUDATA           EV_KEEPUDATA, or 0 where there is none
 *   KQ_SYS_FILTER0_SKIPPED    a change with filter 0 is skipped silently
 */
#ifndef KQ_SYS_H
#define KQ_SYS_H

#if !defined(KQ_NATIVE) && !defined(__linux__)
#define KQ_NATIVE 1
#endif

#if !defined(KQ_NATIVE)

#include <string.h>

#include "engine/kqe.h"

#define KQ_BACKEND "linux"
#define kqueue() kqe_kqueue()
#define kevent(kq, cl, nc, el, ne, ts) kqe_kevent(kq, cl, nc, el, ne, ts)
/* The engine keeps state behind the descriptor: close through it. */
#define kq_sys_close(fd) kqe_close(fd)
/* See kqe.h: a queue seen from outside stays readable while events are
 * pending. */
#define kq_sys_expose(fd) kqe_expose(fd)
/* Registration without room for error entries in one call: the engine
 * says where it stopped (kqe.h), so the binding need not submit one
 * change per call to know each change's fate. */
#define KQ_SYS_COUNTED 1
#define kq_sys_kevent_counted(kq, cl, nc, napplied) \
	kqe_kevent_counted(kq, cl, nc, napplied)

/* Lazy data (kqe.h): the engine leaves a READ/WRITE event's data to be
 * computed when the program reads it; the binding keeps the event's kind
 * (ext[0]) and asks for the value then (doc/reference.md, "Lazy data on
 * Linux"). */
#define KQ_SYS_LAZY 1
#define kq_sys_set_lazy(fd) ((void)kqe_set_lazy_data((fd), 1))

/* Asked once per delivered entry, so inline rather than kqe_event_is_lazy;
 * an error entry's data is its errno, never lazy. */
static inline int kq_sys_event_is_lazy(const struct kevent *ev)
{
	return !(ev->flags & EV_ERROR) &&
	       (ev->ext[0] & KQE_LAZY_MASK) == KQE_LAZY_MAGIC;
}

static inline uint64_t kq_sys_event_kind(const struct kevent *ev)
{
	return ev->ext[0];
}

/* The data of a lazy event of this ident, filter and kind, computed now;
 * -1 when it cannot be (the descriptor was closed since). */
static inline int kq_sys_event_data(uintptr_t ident, int filter,
				    uint64_t kind, int64_t *data)
{
	struct kevent ev;

	memset(&ev, 0, sizeof ev);
	ev.ident = ident;
	ev.filter = (short)filter;
	ev.ext[0] = kind;
	return kqe_event_data(&ev, data);
}
/* The engine's queues are close-on-exec from creation. */
#define kq_sys_kqueue_cloexec(done) (*(done) = 1, kqueue())

#else /* KQ_NATIVE */

#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>
#if defined(__NetBSD__) || defined(__OpenBSD__)
#include <sys/param.h> /* __NetBSD_Version__, OpenBSD */
#endif

#define KQ_BACKEND "native"
#define kq_sys_close(fd) close(fd)
#define kq_sys_expose(fd) ((void)(fd), 0)

/* The engine's extensions, absent: the callers' branches on KQ_SYS_COUNTED
 * and KQ_SYS_LAZY are constant and compiled out. */
#define KQ_SYS_COUNTED 0
static inline int kq_sys_kevent_counted(int kq, const struct kevent *cl,
					int nc, int *napplied)
{
	(void)kq, (void)cl, (void)nc;
	*napplied = 0;
	return -1;
}

#define KQ_SYS_LAZY 0
#define kq_sys_set_lazy(fd) ((void)(fd))

static inline int kq_sys_event_is_lazy(const struct kevent *ev)
{
	(void)ev;
	return 0;
}

static inline uint64_t kq_sys_event_kind(const struct kevent *ev)
{
	(void)ev;
	return 0;
}

static inline int kq_sys_event_data(uintptr_t ident, int filter,
				    uint64_t kind, int64_t *data)
{
	(void)ident, (void)filter, (void)kind;
	*data = 0;
	return -1;
}

/*
 * A queue that is close-on-exec from its first instant, where the system
 * can make one: kqueuex(2) on FreeBSD 14 and later (which define its
 * flag), kqueue1(2) on NetBSD and on OpenBSD 7.4 (2023-10) and later.
 * Elsewhere *done stays 0 and the caller sets FD_CLOEXEC after.
 */
#if defined(KQUEUE_CLOEXEC)
#define kq_sys_kqueue_cloexec(done) (*(done) = 1, kqueuex(KQUEUE_CLOEXEC))
#elif defined(__NetBSD__) || (defined(__OpenBSD__) && OpenBSD >= 202310)
#define kq_sys_kqueue_cloexec(done) (*(done) = 1, kqueue1(O_CLOEXEC))
#else
#define kq_sys_kqueue_cloexec(done) (*(done) = 0, kqueue())
#endif

/* NetBSD before 9.99.15 declares udata as intptr_t, everyone else as
 * void *. */
#if defined(__NetBSD__) && __NetBSD_Version__ < 999001500
#define KQ_UDATA(i) ((intptr_t)(i))
#endif

#endif /* KQ_NATIVE */

/* A token (an intptr_t, kq_kevent.c) as a struct kevent udata; read one
 * back with (intptr_t)ev->udata, which works for both field types. */
#ifndef KQ_UDATA
#define KQ_UDATA(i) ((void *)(intptr_t)(i))
#endif

/* Whether some filter is numbered 0 (NetBSD's EVFILT_READ).  Where none
 * is, FreeBSD and the engine skip a change with filter 0 without an entry
 * (kern_event.c), so such a change never leaves a knote behind. */
#if defined(EVFILT_READ) && EVFILT_READ == 0
#define KQ_FILTER_ZERO_EXISTS 1
#define KQ_SYS_FILTER0_SKIPPED 0
#else
#define KQ_SYS_FILTER0_SKIPPED 1
#endif

/* EV_KEEPUDATA (FreeBSD and the engine): a modify that keeps the knote's
 * udata.  0 where the system has none, so a test of the bit is false. */
#ifdef EV_KEEPUDATA
#define KQ_EV_KEEPUDATA EV_KEEPUDATA
#else
#define KQ_EV_KEEPUDATA 0
#endif

/*
 * A byte that reads 0 in a fork child, NULL where the system cannot make
 * one (kq_queue.c then counts forks with pthread_atfork).  It is needed
 * on FreeBSD, whose libc runs atfork handlers only when libthr is loaded,
 * which a plain `lua` does not do: a fork child would go on using the
 * parent's queue number, which FreeBSD does not even give it.  A page
 * inherited as zeros tells instead, at the cost of one load: minherit
 * INHERIT_ZERO (FreeBSD 12 and later), MAP_INHERIT_ZERO (OpenBSD,
 * NetBSD), madvise MADV_WIPEONFORK (Linux 4.14 and later, so that the
 * same code runs in every test here).  macOS: atfork, which always runs.
 */
#include <sys/mman.h>
static inline volatile unsigned char *kq_sys_fork_marker(void)
{
	const size_t len = 4096; /* rounded up to a page by the system */
	void *p;
	int r;

#if defined(INHERIT_ZERO) || defined(MAP_INHERIT_ZERO) || defined(MADV_WIPEONFORK)
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#if defined(INHERIT_ZERO)
	r = minherit(p, len, INHERIT_ZERO);
#elif defined(MAP_INHERIT_ZERO)
	r = minherit(p, len, MAP_INHERIT_ZERO);
#else
	r = madvise(p, len, MADV_WIPEONFORK);
#endif
	if (r != 0) {
		(void)munmap(p, len);
		return NULL;
	}
	*(volatile unsigned char *)p = 1;
	return (volatile unsigned char *)p;
#else
	(void)len, (void)p, (void)r;
	return NULL;
#endif
}

#endif
