/*
 * kqe.h - the public face of kq's kqueue engine for Linux.
 *
 * Linux has no kqueue, so kq carries an engine that implements FreeBSD's
 * kqueue(2)/kevent(2) on top of epoll, timerfd, eventfd, pidfd, inotify and
 * a signal handler.  This header gives callers the standard kqueue types and
 * constants (with FreeBSD's values) plus three functions with the standard
 * contracts.  The functions are prefixed kqe_ so that the module never
 * defines kqueue/kevent symbols that could clash with a system libkqueue or
 * a future libc; csrc/kq_sys.h maps the standard names onto them.
 *
 * The engine never includes a Lua header.
 */
#ifndef KQE_H
#define KQE_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* FreeBSD 12+ layout of the event record. */
struct kevent {
	uintptr_t ident;      /* identifier for this event */
	short filter;         /* filter for event */
	unsigned short flags; /* action flags for kqueue */
	unsigned int fflags;  /* filter flag value */
	int64_t data;         /* filter data value */
	void *udata;          /* opaque user data identifier */
	uint64_t ext[4];      /* extensions */
};

#define EV_SET(kevp_, a, b, c, d, e, f) do {	\
	struct kevent *kevp = (kevp_);		\
	kevp->ident = (a);			\
	kevp->filter = (b);			\
	kevp->flags = (c);			\
	kevp->fflags = (d);			\
	kevp->data = (e);			\
	kevp->udata = (f);			\
	kevp->ext[0] = 0;			\
	kevp->ext[1] = 0;			\
	kevp->ext[2] = 0;			\
	kevp->ext[3] = 0;			\
} while (0)

/* Filters (FreeBSD values). */
#define EVFILT_READ      (-1)
#define EVFILT_WRITE     (-2)
#define EVFILT_AIO       (-3)
#define EVFILT_VNODE     (-4)
#define EVFILT_PROC      (-5)
#define EVFILT_SIGNAL    (-6)
#define EVFILT_TIMER     (-7)
#define EVFILT_PROCDESC  (-8)
#define EVFILT_FS        (-9)
#define EVFILT_LIO       (-10)
#define EVFILT_USER      (-11)
#define EVFILT_SENDFILE  (-12)
#define EVFILT_EMPTY     (-13)
#define EVFILT_SYSCOUNT  13

/* Actions and flags. */
#define EV_ADD           0x0001
#define EV_DELETE        0x0002
#define EV_ENABLE        0x0004
#define EV_DISABLE       0x0008
#define EV_FORCEONESHOT  0x0100
#define EV_KEEPUDATA     0x0200
#define EV_ONESHOT       0x0010
#define EV_CLEAR         0x0020
#define EV_RECEIPT       0x0040
#define EV_DISPATCH      0x0080
#define EV_SYSFLAGS      0xF000
#define EV_DROP          0x1000
#define EV_FLAG1         0x2000
#define EV_EOF           0x8000
#define EV_ERROR         0x4000

/* READ / WRITE */
#define NOTE_LOWAT       0x0001
#define NOTE_FILE_POLL   0x0002

/* USER */
#define NOTE_FFNOP       0x00000000
#define NOTE_FFAND       0x40000000
#define NOTE_FFOR        0x80000000
#define NOTE_FFCOPY      0xc0000000
#define NOTE_FFCTRLMASK  0xc0000000
#define NOTE_FFLAGSMASK  0x00ffffff
#define NOTE_TRIGGER     0x01000000

/* VNODE */
#define NOTE_DELETE      0x0001
#define NOTE_WRITE       0x0002
#define NOTE_EXTEND      0x0004
#define NOTE_ATTRIB      0x0008
#define NOTE_LINK        0x0010
#define NOTE_RENAME      0x0020
#define NOTE_REVOKE      0x0040
#define NOTE_OPEN        0x0080
#define NOTE_CLOSE       0x0100
#define NOTE_CLOSE_WRITE 0x0200
#define NOTE_READ        0x0400

/* PROC */
#define NOTE_EXIT        0x80000000
#define NOTE_FORK        0x40000000
#define NOTE_EXEC        0x20000000
#define NOTE_PCTRLMASK   0xf0000000
#define NOTE_PDATAMASK   0x000fffff
#define NOTE_TRACK       0x00000001
#define NOTE_TRACKERR    0x00000002
#define NOTE_CHILD       0x00000004

/* TIMER */
#define NOTE_SECONDS     0x00000001
#define NOTE_MSECONDS    0x00000002
#define NOTE_USECONDS    0x00000004
#define NOTE_NSECONDS    0x00000008
#define NOTE_ABSTIME     0x00000010

/* Hidden even in builds without -fvisibility=hidden (LuaRocks): the module
 * exports luaopen_* only, so kq coexists with a system libkqueue. */
#pragma GCC visibility push(hidden)

/* The standard calls, with kqueue(2)/kevent(2) contracts: -1 and errno on
 * failure.  A queue made by kqe_kqueue() must be closed with kqe_close() so
 * that the engine frees what it keeps behind the descriptor. */
int kqe_kqueue(void);
int kqe_kevent(int kq, const struct kevent *changelist, int nchanges,
	       struct kevent *eventlist, int nevents,
	       const struct timespec *timeout);
int kqe_close(int kq);

/*
 * Linux-only extensions, used by the binding under KQ_HAVE_LAZY_DATA and
 * KQ_HAVE_EXPOSE (csrc/kq_sys.h).
 *
 * Lazy data: computing FreeBSD's `data` for a READ/WRITE event on Linux
 * costs an ioctl (FIONREAD, SIOCOUTQ) per event, 13x the cost of the
 * delivery itself.  A queue in lazy mode leaves that field to be computed on
 * demand: such an event has data 0 and ext[0] = KQE_LAZY_MAGIC | kind, and
 * kqe_event_data() computes the exact value from the descriptor when (and
 * if) the caller wants it.  Events whose data costs nothing are filled in as
 * usual, with ext[0] = 0.
 */
#define KQE_LAZY_MAGIC   UINT64_C(0x6b71650000000000)
#define KQE_LAZY_MASK    UINT64_C(0xffffff0000000000)
int kqe_set_lazy_data(int kq, int on);
int kqe_event_is_lazy(const struct kevent *ev);
/* The exact data for a lazy event, computed now; -1 with errno on failure. */
int kqe_event_data(const struct kevent *ev, int64_t *data);

/* Register only (nevents 0), and tell how many changes were fully
 * processed: on -1, changelist[*napplied] is the one that failed and none
 * after it was applied; on success *napplied < nchanges means that an
 * EV_RECEIPT change found no room and stopped the list after itself.
 * Plain kevent(2) cannot say which change failed, so without this the
 * binding submits one change per call when it has no room for errors. */
int kqe_kevent_counted(int kq, const struct kevent *changelist, int nchanges,
		       int *napplied);

/* Declare that the queue's descriptor is seen by others (fileno(), poll,
 * nesting): from now on the descriptor stays readable while events are
 * pending in the engine's own ready list, which costs a write to an eventfd
 * whenever that list becomes non-empty. */
int kqe_expose(int kq);

#pragma GCC visibility pop

#endif
