/*
 * kq_sys.h - the one place that decides where kqueue comes from.
 *
 * Two builds (doc/portability.md):
 *   KQ_NATIVE  the system's <sys/event.h>, kqueue(2), kevent(2) and
 *              close(2), nothing else.  Chosen automatically off Linux;
 *              `make check-native` also builds it on Linux, over the
 *              engine dressed as libc (tests/native/shim.c).
 *   otherwise  Linux: kq's engine (csrc/engine), same contracts, plus the
 *              engine's extensions (KQ_HAVE_LAZY_DATA, kq_sys_expose,
 *              kq_sys_kevent_counted).
 * No other binding file names the platform: they use kqueue(), kevent(),
 * struct kevent and EV_SET as the man page does, plus the hooks below.
 */
#ifndef KQ_SYS_H
#define KQ_SYS_H

#if !defined(KQ_NATIVE) && !defined(__linux__)
#define KQ_NATIVE 1
#endif

#if !defined(KQ_NATIVE)

#include "engine/kqe.h"

#define KQ_BACKEND "linux"
#define kqueue() kqe_kqueue()
#define kevent(kq, cl, nc, el, ne, ts) kqe_kevent(kq, cl, nc, el, ne, ts)
/* The engine keeps state behind the descriptor: close through it. */
#define kq_sys_close(fd) kqe_close(fd)
/* See kqe.h: data computed on demand, and a queue seen from outside. */
#define KQ_HAVE_LAZY_DATA 1
#define kq_sys_expose(fd) kqe_expose(fd)
/* Registration without room for error entries in one call: the engine
 * says where it stopped (kqe.h), so the binding need not submit one
 * change per call to know each change's fate. */
#define kq_sys_kevent_counted(kq, cl, nc, napplied) \
	kqe_kevent_counted(kq, cl, nc, napplied)
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
#endif

#endif
