/*
 * timer.c - EVFILT_TIMER (semantics §4.3).
 *
 * All timers of a queue live in one binary min-heap on their monotonic
 * deadlines; one timerfd per queue, armed for the earliest deadline, wakes
 * the epoll wait.  A timer costs no descriptor, and firing costs at most one
 * read per batch plus a re-arm when the earliest deadline moves.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "family.h"

#define UNIT_BITS (NOTE_SECONDS | NOTE_MSECONDS | NOTE_USECONDS | NOTE_NSECONDS)
/* Far enough never to fire, small enough that sums never overflow. */
#define NEVER (INT64_MAX / 4)

/* ---- the heap ------------------------------------------------------------ */

static void heap_set(struct kqe_queue *q, uint32_t i, struct knote *kn)
{
	q->theap[i] = kn;
	kn->u.timer.heap_index = i;
}

static void sift_up(struct kqe_queue *q, uint32_t i)
{
	struct knote *kn = q->theap[i];
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (q->theap[parent]->u.timer.deadline <= kn->u.timer.deadline)
			break;
		heap_set(q, i, q->theap[parent]);
		i = parent;
	}
	heap_set(q, i, kn);
}

static void sift_down(struct kqe_queue *q, uint32_t i)
{
	struct knote *kn = q->theap[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= q->tcount)
			break;
		if (c + 1 < q->tcount &&
		    q->theap[c + 1]->u.timer.deadline < q->theap[c]->u.timer.deadline)
			c++;
		if (q->theap[c]->u.timer.deadline >= kn->u.timer.deadline)
			break;
		heap_set(q, i, q->theap[c]);
		i = c;
	}
	heap_set(q, i, kn);
}

static int heap_insert(struct kqe_queue *q, struct knote *kn)
{
	if (q->tcount == q->tcap) {
		uint32_t ncap = q->tcap ? q->tcap * 2 : 16;
		struct knote **h = realloc(q->theap, ncap * sizeof *h);
		if (h == NULL)
			return ENOMEM;
		q->theap = h;
		q->tcap = ncap;
	}
	heap_set(q, q->tcount++, kn);
	sift_up(q, q->tcount - 1);
	return 0;
}

static void heap_remove(struct kqe_queue *q, struct knote *kn)
{
	uint32_t i = kn->u.timer.heap_index;
	if (i >= q->tcount || q->theap[i] != kn)
		return;
	struct knote *last = q->theap[--q->tcount];
	if (last != kn) {
		heap_set(q, i, last);
		sift_down(q, i);
		sift_up(q, last->u.timer.heap_index);
	}
	kn->u.timer.heap_index = UINT32_MAX;
}

/* ---- the timerfd ---------------------------------------------------------- */

static int timerfd_arm(struct kqe_queue *q)
{
	int64_t want = q->tcount ? q->theap[0]->u.timer.deadline : 0;
	if (want == q->tarmed)
		return 0;
	if (q->timerfd < 0) {
		if (want == 0)
			return 0;
		int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (fd < 0)
			return errno;
		int err = kqe_epoll_add(q, fd, EPOLLIN, KQE_TAG(TAG_TIMER, 0));
		if (err) {
			close(fd);
			return err;
		}
		q->timerfd = fd;
	}
	/* A zero it_value disarms a timerfd; deadlines are never 0 because the
	 * monotonic clock is far past 0 whenever a timer is set. */
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };
	if (want > 0) {
		its.it_value.tv_sec = want / 1000000000;
		its.it_value.tv_nsec = want % 1000000000;
	}
	if (timerfd_settime(q->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return errno;
	q->tarmed = want;
	return 0;
}

static void timers_free(struct kqe_queue *q)
{
	if (q->timerfd >= 0)
		close(q->timerfd);
	q->timerfd = -1;
	free(q->theap);
	q->theap = NULL;
	q->tcount = q->tcap = 0;
}

static int64_t to_ns(int64_t v, uint32_t unit)
{
	int64_t mul = unit == NOTE_SECONDS ? 1000000000 : unit == NOTE_USECONDS ? 1000
		    : unit == NOTE_NSECONDS ? 1 : 1000000;
	int64_t ns;
	if (__builtin_mul_overflow(v, mul, &ns) || ns > NEVER)
		return NEVER;
	return ns;
}

/* The period in ns, derived from the stored parameters rather than kept in
 * the knote (bench scenario 6: every byte of a knote counts).  0 for a
 * one-shot or absolute timer; a periodic 0 counts as one unit. */
static int64_t timer_period(const struct knote *kn)
{
	if ((kn->sfflags & NOTE_ABSTIME) || (kn->flags & EV_ONESHOT))
		return 0;
	uint32_t unit = kn->sfflags & UNIT_BITS;
	int64_t ns = to_ns(kn->sdata, unit);
	return ns > 0 ? ns : to_ns(1, unit);
}

/* ---- expiry ---------------------------------------------------------------- */

static void timers_expire(struct kqe_queue *q, bool timerfd_fired)
{
	if (timerfd_fired) {
		uint64_t ticks;
		if (read(q->timerfd, &ticks, sizeof ticks) < 0) {
			/* EAGAIN: re-armed meanwhile; nothing to consume. */
		}
		q->tarmed = -1; /* fired: it must be set again */
	}
	if (q->tcount == 0) {
		timerfd_arm(q);
		return;
	}
	int64_t now = kqe_now();
	while (q->tcount && q->theap[0]->u.timer.deadline <= now) {
		struct knote *kn = q->theap[0];
		int64_t period = timer_period(kn);
		if (period > 0) {
			/* No drift: the next expiry is the last one plus the period,
			 * and a slow program sees every expiration counted. */
			int64_t n = 1 + (now - kn->u.timer.deadline) / period;
			kn->data_out += n;
			kn->u.timer.deadline += n * period;
			sift_down(q, 0);
		} else {
			kn->data_out += 1;
			heap_remove(q, kn);
		}
		kqe_knote_activate(q, kn); /* a disabled timer keeps counting */
	}
	timerfd_arm(q);
}

/* ---- the filter ------------------------------------------------------------ */

static int timer_setup(struct kqe_queue *q, struct knote *kn, const struct kevent *kev)
{
	uint32_t ff = kev->fflags;
	uint32_t unit = ff & UNIT_BITS;
	if (kev->data < 0 || (ff & ~(UNIT_BITS | NOTE_ABSTIME)) || (unit & (unit - 1)))
		return EINVAL;
	int64_t ns = to_ns(kev->data, unit);
	int64_t now = kqe_now();
	kn->sfflags = ff;
	kn->sdata = kev->data;
	if (ff & NOTE_ABSTIME) {
		/* A wall-clock deadline, turned into a monotonic one now, so a
		 * later clock step does not move it (FreeBSD does the same). */
		struct timespec rt;
		clock_gettime(CLOCK_REALTIME, &rt);
		int64_t rnow = (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec;
		int64_t left = ns - rnow;
		kn->u.timer.deadline = left <= 0 ? now : (left > NEVER ? NEVER : now + left);
	} else {
		kn->u.timer.deadline = now + ns; /* periodic unless ONESHOT: timer_period */
	}
	int err = heap_insert(q, kn);
	if (err == 0)
		err = timerfd_arm(q);
	if (err)
		heap_remove(q, kn);
	return err;
}

static int timer_attach(struct kqe_queue *q, struct knote *kn, const struct kevent *kev)
{
	kn->u.timer.heap_index = UINT32_MAX;
	/* Relative timers force EV_CLEAR; absolute ones do not (§4.3). */
	if (!(kev->fflags & NOTE_ABSTIME))
		kn->flags |= EV_CLEAR;
	return timer_setup(q, kn, kev);
}

static int timer_modify(struct kqe_queue *q, struct knote *kn, const struct kevent *kev)
{
	/* Only a change with EV_ADD restarts a timer, discarding undelivered
	 * expirations; EV_ENABLE or EV_DISABLE alone leave it running. */
	if (!(kev->flags & EV_ADD))
		return 0;
	uint32_t unit = kev->fflags & UNIT_BITS;
	if (kev->data < 0 || (kev->fflags & ~(UNIT_BITS | NOTE_ABSTIME)) || (unit & (unit - 1)))
		return EINVAL;
	heap_remove(q, kn);
	kqe_ready_remove(q, kn);
	kn->status &= ~KN_ACTIVE;
	kn->data_out = 0;
	return timer_setup(q, kn, kev);
}

static void timer_detach(struct kqe_queue *q, struct knote *kn)
{
	heap_remove(q, kn);
	timerfd_arm(q); /* a syscall only when the earliest deadline moved */
}

static int timer_event(struct kqe_queue *q, struct knote *kn, struct kevent *ev)
{
	(void)q;
	EV_SET(ev, kn->ident, EVFILT_TIMER, kn->flags, 0, kn->data_out, kn->udata);
	return kn->data_out > 0;
}

static void timer_after(struct kqe_queue *q, struct knote *kn)
{
	(void)q;
	/* An absolute timer without EV_CLEAR stays fired: data 1 on every
	 * call until deleted (FreeBSD). */
	if ((kn->sfflags & NOTE_ABSTIME) && !(kn->flags & EV_CLEAR))
		kn->data_out = 1;
}

static const struct kqe_filter_ops timer_ops = {
	.attach = timer_attach,
	.modify = timer_modify,
	.detach = timer_detach,
	.event = timer_event,
	.after = timer_after,
};

/* The timerfd fired. */
static int timer_ready(struct kqe_queue *q, const struct epoll_event *buf, int count,
		       struct kevent *out, int room, int *taken)
{
	(void)buf, (void)count, (void)out, (void)room;
	*taken = 1;
	timers_expire(q, true);
	return 0;
}

/* Before each collection: what expired since (no syscall unless due). */
static void timer_poll(struct kqe_queue *q)
{
	if (q->tcount)
		timers_expire(q, false);
}

static void timer_atfork_queue(struct kqe_queue *q)
{
	if (q->timerfd >= 0)
		close(q->timerfd);
	q->timerfd = -1;
}

static int timer_rearm(struct kqe_queue *q, int epfd, bool add)
{
	if (q->timerfd < 0)
		return 0;
	return kqe_epoll_rearm(epfd, add, q->timerfd, EPOLLIN, KQE_TAG(TAG_TIMER, 0));
}

const struct kqe_family kqe_family_timer = {
	.name = "timer",
	.ops = &timer_ops,
	.filters = { EVFILT_TIMER },
	.tags = { TAG_TIMER },
	.ready = timer_ready,
	.poll = timer_poll,
	.free = timers_free,
	.atfork_queue = timer_atfork_queue,
	.rearm = timer_rearm,
};
