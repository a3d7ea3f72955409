/*
 * Stand-in <sys/event.h> for macOS (Darwin, recent SDKs), written for kq's
 * header checks (tests/native/README) from kqueue(2) and the values in
 * tests/native/constants.txt.  Not Apple's header: only what a program
 * sees of it, with the same field types and the same kinds of spelling
 * (an int-typed mask, two names defined through deprecated enumerators).
 */
#ifndef KQ_STANDIN_SYS_EVENT_H
#define KQ_STANDIN_SYS_EVENT_H

#include <stdint.h>
#include <sys/types.h>

struct timespec;

#pragma pack(4)
struct kevent {
	uintptr_t ident;
	int16_t filter;
	uint16_t flags;
	uint32_t fflags;
	intptr_t data;
	void *udata;
};
#pragma pack()

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
#define EVFILT_MACHPORT		(-8)
#define EVFILT_FS		(-9)
#define EVFILT_USER		(-10)
#define EVFILT_VM		(-12)
#define EVFILT_EXCEPT		(-15)
#define EVFILT_SYSCOUNT		17
#define EVFILT_THREADMARKER	EVFILT_SYSCOUNT

#define EV_ADD			0x0001
#define EV_DELETE		0x0002
#define EV_ENABLE		0x0004
#define EV_DISABLE		0x0008
#define EV_ONESHOT		0x0010
#define EV_CLEAR		0x0020
#define EV_RECEIPT		0x0040
#define EV_DISPATCH		0x0080
#define EV_UDATA_SPECIFIC	0x0100
#define EV_DISPATCH2		(EV_DISPATCH | EV_UDATA_SPECIFIC)
#define EV_VANISHED		0x0200
#define EV_SYSFLAGS		0xF000
#define EV_FLAG0		0x1000
#define EV_FLAG1		0x2000
#define EV_EOF			0x8000
#define EV_ERROR		0x4000
#define EV_POLL			EV_FLAG0
#define EV_OOBAND		EV_FLAG1

/* EVFILT_USER */
#define NOTE_TRIGGER		0x01000000
#define NOTE_FFNOP		0x00000000
#define NOTE_FFAND		0x40000000
#define NOTE_FFOR		0x80000000
#define NOTE_FFCOPY		0xc0000000
#define NOTE_FFCTRLMASK		0xc0000000
#define NOTE_FFLAGSMASK		0x00ffffff
/* EVFILT_READ, EVFILT_WRITE, EVFILT_EXCEPT */
#define NOTE_LOWAT		0x00000001
#define NOTE_OOB		0x00000002
/* EVFILT_VNODE */
#define NOTE_DELETE		0x00000001
#define NOTE_WRITE		0x00000002
#define NOTE_EXTEND		0x00000004
#define NOTE_ATTRIB		0x00000008
#define NOTE_LINK		0x00000010
#define NOTE_RENAME		0x00000020
#define NOTE_REVOKE		0x00000040
#define NOTE_NONE		0x00000080
#define NOTE_FUNLOCK		0x00000100
#define NOTE_LEASE_DOWNGRADE	0x00000200
#define NOTE_LEASE_RELEASE	0x00000400
/* EVFILT_PROC.  Two names are spelt through enumerators that carry a
 * deprecation attribute, as the SDK does: naming them warns. */
enum { kq_standin_reap __attribute__((deprecated("no longer sent"))) =
	0x10000000 };
enum { kq_standin_reparented __attribute__((deprecated("no longer sent"))) =
	0x00080000 };
#define NOTE_EXIT		0x80000000
#define NOTE_FORK		0x40000000
#define NOTE_EXEC		0x20000000
#define NOTE_REAP		((unsigned int)kq_standin_reap)
#define NOTE_SIGNAL		0x08000000
#define NOTE_EXITSTATUS		0x04000000
#define NOTE_EXIT_DETAIL	0x02000000
#define NOTE_PDATAMASK		0x000fffff
/* An int expression: -1048576 unless converted to unsigned. */
#define NOTE_PCTRLMASK		(~NOTE_PDATAMASK)
#define NOTE_EXIT_REPARENTED	((unsigned int)kq_standin_reparented)
#define NOTE_EXIT_DETAIL_MASK	0x00070000
#define NOTE_EXIT_DECRYPTFAIL	0x00010000
#define NOTE_EXIT_MEMORY	0x00020000
#define NOTE_EXIT_CSERROR	0x00040000
#define NOTE_TRACK		0x00000001
#define NOTE_TRACKERR		0x00000002
#define NOTE_CHILD		0x00000004
/* EVFILT_VM */
#define NOTE_VM_PRESSURE			0x80000000
#define NOTE_VM_PRESSURE_TERMINATE		0x40000000
#define NOTE_VM_PRESSURE_SUDDEN_TERMINATE	0x20000000
#define NOTE_VM_ERROR				0x10000000
/* EVFILT_TIMER: milliseconds without a unit bit; other bits than
 * FreeBSD's */
#define NOTE_SECONDS		0x00000001
#define NOTE_USECONDS		0x00000002
#define NOTE_NSECONDS		0x00000004
#define NOTE_ABSOLUTE		0x00000008
#define NOTE_LEEWAY		0x00000010
#define NOTE_CRITICAL		0x00000020
#define NOTE_BACKGROUND		0x00000040
#define NOTE_MACH_CONTINUOUS_TIME 0x00000080
#define NOTE_MACHTIME		0x00000100

int kqueue(void);
int kevent(int kq, const struct kevent *changelist, int nchanges,
	   struct kevent *eventlist, int nevents,
	   const struct timespec *timeout);

#endif
