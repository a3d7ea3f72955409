/*
 * Stand-in <sys/event.h> for OpenBSD 7.8 (EVFILT_USER; kqueue1 since 7.4),
 * written for kq's header checks (tests/native/README) from kqueue(2) and
 * the values in tests/native/constants.txt.  Not OpenBSD's header: only
 * what a program sees of it, with the same field types.
 */
#ifndef KQ_STANDIN_SYS_EVENT_H
#define KQ_STANDIN_SYS_EVENT_H

#include <stdint.h>

struct timespec;

struct kevent {
	uintptr_t ident;
	short filter;
	unsigned short flags;
	unsigned int fflags;
	int64_t data;
	void *udata;
};

#define EV_SET(kevp, a, b, c, d, e, f) do {				\
	struct kevent *kq_standin_kevp = (kevp);			\
	kq_standin_kevp->ident = (a);					\
	kq_standin_kevp->filter = (b);					\
	kq_standin_kevp->flags = (c);					\
	kq_standin_kevp->fflags = (d);					\
	kq_standin_kevp->data = (e);					\
	kq_standin_kevp->udata = (f);					\
} while (0)

#define EVFILT_READ		(-1)
#define EVFILT_WRITE		(-2)
#define EVFILT_AIO		(-3)
#define EVFILT_VNODE		(-4)
#define EVFILT_PROC		(-5)
#define EVFILT_SIGNAL		(-6)
#define EVFILT_TIMER		(-7)
#define EVFILT_DEVICE		(-8)
#define EVFILT_EXCEPT		(-9)
#define EVFILT_USER		(-10)
#define EVFILT_SYSCOUNT		10

#define EV_ADD			0x0001
#define EV_DELETE		0x0002
#define EV_ENABLE		0x0004
#define EV_DISABLE		0x0008
#define EV_ONESHOT		0x0010
#define EV_CLEAR		0x0020
#define EV_RECEIPT		0x0040
#define EV_DISPATCH		0x0080
#define EV_SYSFLAGS		0xf800
#define EV_FLAG1		0x2000
#define EV_EOF			0x8000
#define EV_ERROR		0x4000

/* EVFILT_READ, EVFILT_WRITE, EVFILT_EXCEPT */
#define NOTE_LOWAT		0x0001
#define NOTE_EOF		0x0002
#define NOTE_OOB		0x0004
/* EVFILT_VNODE */
#define NOTE_DELETE		0x0001
#define NOTE_WRITE		0x0002
#define NOTE_EXTEND		0x0004
#define NOTE_ATTRIB		0x0008
#define NOTE_LINK		0x0010
#define NOTE_RENAME		0x0020
#define NOTE_REVOKE		0x0040
#define NOTE_TRUNCATE		0x0080
/* EVFILT_PROC */
#define NOTE_EXIT		0x80000000
#define NOTE_FORK		0x40000000
#define NOTE_EXEC		0x20000000
#define NOTE_PCTRLMASK		0xf0000000
#define NOTE_PDATAMASK		0x000fffff
#define NOTE_TRACK		0x00000001
#define NOTE_TRACKERR		0x00000002
#define NOTE_CHILD		0x00000004
/* EVFILT_DEVICE */
#define NOTE_CHANGE		0x00000001
/* EVFILT_TIMER: the unit is a number, not a bit */
#define NOTE_MSECONDS		0x00000000
#define NOTE_SECONDS		0x00000001
#define NOTE_USECONDS		0x00000002
#define NOTE_NSECONDS		0x00000003
#define NOTE_ABSTIME		0x00000010
/* EVFILT_USER */
#define NOTE_FFNOP		0x00000000
#define NOTE_FFAND		0x40000000
#define NOTE_FFOR		0x80000000
#define NOTE_FFCOPY		0xc0000000
#define NOTE_FFCTRLMASK		0xc0000000
#define NOTE_FFLAGSMASK		0x00ffffff
#define NOTE_TRIGGER		0x01000000

int kqueue(void);
int kqueue1(int flags);
int kevent(int kq, const struct kevent *changelist, int nchanges,
	   struct kevent *eventlist, int nevents,
	   const struct timespec *timeout);

#endif
