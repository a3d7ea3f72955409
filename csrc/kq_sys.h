/*
 * kq_sys.h - the one place that decides where kqueue comes from.
 *
 * On FreeBSD, macOS, OpenBSD and NetBSD the binding calls the system's own
 * kqueue(2)/kevent(2).  On Linux it calls kq's engine (csrc/engine), which
 * has the same contracts.  No other binding file names the platform: they
 * use kqueue(), kevent(), struct kevent and EV_SET as the man page does,
 * plus the three kq_sys_* hooks below.
 */
#ifndef KQ_SYS_H
#define KQ_SYS_H

#if defined(__linux__)

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

#else

#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

#define KQ_BACKEND "native"
#define kq_sys_close(fd) close(fd)
#define kq_sys_expose(fd) ((void)(fd), 0)

#endif

#endif
