/*
 * Stand-in <sys/event.h> for NetBSD 10, written for kq's header checks
 * (tests/native/README) from kqueue(2) and the values in
 * tests/native/constants.txt.  Not NetBSD's header: only what a program
 * sees of it, with the same field types (32-bit unsigned filter and
 * flags; filters numbered upwards from 0) and unsigned constants.
 */
#ifndef KQ_STANDIN_SYS_EVENT_H
#define KQ_STANDIN_SYS_EVENT_H

#include <stddef.h>
#include <stdint.h>

struct timespec;

#define EVFILT_READ		0U
#define EVFILT_WRITE		1U
#define EVFILT_AIO		2U
#define EVFILT_VNODE		3U
#define EVFILT_PROC		4U
#define EVFILT_SIGNAL		5U
#define EVFILT_TIMER		6U
#define EVFILT_FS		7U
#define EVFILT_USER		8U
#define EVFILT_EMPTY		9U
#define EVFILT_SYSCOUNT		10U

struct kevent {
	uintptr_t ident;
	uint32_t filter;
	uint32_t flags;
	uint32_t fflags;
	int64_t data;
	void *udata;
};

/* A function behind the macro, so every argument is converted to its
 * field's type. */
static __inline void
kq_standin_ev_set(struct kevent *kev, uintptr_t ident, uint32_t filter,
    uint32_t flags, uint32_t fflags, int64_t data, void *udata)
{
	kev->ident = ident;
	kev->filter = filter;
	kev->flags = flags;
	kev->fflags = fflags;
	kev->data = data;
	kev->udata = udata;
}
#define EV_SET(kevp, a, b, c, d, e, f)					\
	kq_standin_ev_set((kevp), (uintptr_t)(a), (b), (c), (d), (e),	\
	    (void *)(f))

#define EV_ADD			0x0001U
#define EV_DELETE		0x0002U
#define EV_ENABLE		0x0004U
#define EV_DISABLE		0x0008U
#define EV_ONESHOT		0x0010U
#define EV_CLEAR		0x0020U
#define EV_RECEIPT		0x0040U
#define EV_DISPATCH		0x0080U
#define EV_SYSFLAGS		0xF000U
#define EV_FLAG1		0x2000U
#define EV_EOF			0x8000U
#define EV_ERROR		0x4000U

/* EVFILT_USER */
#define NOTE_FFNOP		0x00000000U
#define NOTE_FFAND		0x40000000U
#define NOTE_FFOR		0x80000000U
#define NOTE_FFCOPY		0xc0000000U
#define NOTE_FFCTRLMASK		0xc0000000U
#define NOTE_FFLAGSMASK		0x00ffffffU
#define NOTE_TRIGGER		0x01000000U
/* EVFILT_READ, EVFILT_WRITE */
#define NOTE_LOWAT		0x0001U
/* EVFILT_VNODE */
#define NOTE_DELETE		0x0001U
#define NOTE_WRITE		0x0002U
#define NOTE_EXTEND		0x0004U
#define NOTE_ATTRIB		0x0008U
#define NOTE_LINK		0x0010U
#define NOTE_RENAME		0x0020U
#define NOTE_REVOKE		0x0040U
#define NOTE_OPEN		0x0080U
#define NOTE_CLOSE		0x0100U
#define NOTE_CLOSE_WRITE	0x0200U
#define NOTE_READ		0x0400U
/* EVFILT_PROC */
#define NOTE_EXIT		0x80000000U
#define NOTE_FORK		0x40000000U
#define NOTE_EXEC		0x20000000U
#define NOTE_PCTRLMASK		0xf0000000U
#define NOTE_PDATAMASK		0x000fffffU
#define NOTE_TRACK		0x00000001U
#define NOTE_TRACKERR		0x00000002U
#define NOTE_CHILD		0x00000004U
/* EVFILT_TIMER: the unit is a number, not a bit */
#define NOTE_MSECONDS		0x00000000U
#define NOTE_SECONDS		0x00000001U
#define NOTE_USECONDS		0x00000002U
#define NOTE_NSECONDS		0x00000003U
#define NOTE_ABSTIME		0x00000010U

int kqueue(void);
int kqueue1(int flags);
/* The symbol is versioned: programs built on NetBSD call __kevent50. */
int kevent(int kq, const struct kevent *changelist, size_t nchanges,
	   struct kevent *eventlist, size_t nevents,
	   const struct timespec *timeout) __asm("__kevent50");

#endif
