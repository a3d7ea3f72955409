/*
 * kqread.c - EVFILT_READ on a kqueue: a queue watched by another queue
 * (semantics §4.1; FreeBSD's kqread filterops, which live with the queue).
 *
 * The outer queue's epoll watches the inner queue's epoll descriptor
 * (TAG_KQ), and the inner is "exposed": its wake eventfd keeps its
 * descriptor readable while its own ready list holds events (queue.c).
 * `data` is the number of events the inner holds, counted when the event
 * is delivered (kqe_queue_pending).  Locks: the outer's lock is held when
 * the inner's is taken, never the other way round; epoll refuses a cycle
 * (ELOOP), so no two queues can wait for each other, and the exposure at
 * attach takes only the inner's leaf wake lock.
 */
#include <errno.h>
#include <sys/epoll.h>

#include "family.h"

static uint32_t kq_events(const struct knote *kn)
{
	return EPOLLIN | ((kn->flags & EV_CLEAR) ? EPOLLET : 0);
}

static int kq_register(struct kqe_queue *q, struct knote *kn, int op, uint32_t events)
{
	struct epoll_event ev = { .events = events,
				  .data.u64 = KQE_TAG(TAG_KQ, (uint32_t)kn->ident) };
	if (epoll_ctl(q->epfd, op, (int)kn->ident, &ev) == 0)
		return 0;
	switch (errno) {
	case ELOOP:  /* a queue watching itself, directly or not */
	case EPERM:
		return EINVAL;
	case ENOSPC: /* the epoll watch limit: a resource limit, as FreeBSD says */
		return ENOMEM;
	default:
		return errno;
	}
}

static int kq_attach(struct kqe_queue *q, struct knote *kn, const struct kevent *kev)
{
	(void)kev;
	int fd = (int)kn->ident;
	if (fd == q->epfd)
		return EINVAL;
	struct kqe_queue *inner = kqe_queue_get(fd);
	if (inner == NULL)
		return EINVAL; /* closed since the caller looked */
	kn->u.kq.serial = inner->serial;
	/* Its ready list must show on its descriptor from now on. */
	kqe_expose_locked(inner);
	kqe_queue_put(inner);
	return kq_register(q, kn, EPOLL_CTL_ADD, kq_events(kn));
}

static int kq_modify(struct kqe_queue *q, struct knote *kn, const struct kevent *kev)
{
	(void)q;
	kn->sfflags = kev->fflags;
	kn->sdata = kev->data;
	return 0;
}

static void kq_detach(struct kqe_queue *q, struct knote *kn)
{
	if (q->epfd >= 0)
		(void)epoll_ctl(q->epfd, EPOLL_CTL_DEL, (int)kn->ident, NULL);
}

static int kq_enable(struct kqe_queue *q, struct knote *kn)
{
	/* Armed again, which also makes epoll look at the inner now. */
	if (kn->status & KN_DISARMED) {
		int err = kq_register(q, kn, EPOLL_CTL_MOD, kq_events(kn));
		if (err)
			return err;
		kn->status &= ~KN_DISARMED;
	}
	return 0;
}

static bool kq_stale(struct kqe_queue *q, struct knote *kn, const struct stat *st)
{
	(void)q, (void)st;
	/* All epoll descriptors share one anonymous inode: a queue is known
	 * by its serial. */
	return kqe_queue_serial((int)kn->ident) != kn->u.kq.serial;
}

static int kq_event(struct kqe_queue *q, struct knote *kn, struct kevent *ev)
{
	(void)q;
	struct kqe_queue *inner = kqe_queue_get((int)kn->ident);
	if (inner == NULL || inner->serial != kn->u.kq.serial) {
		if (inner)
			kqe_queue_put(inner);
		return -1; /* closed or replaced: a later change drops the knote */
	}
	int pending = kqe_queue_pending(inner);
	kqe_queue_put(inner);
	EV_SET(ev, kn->ident, EVFILT_READ, kn->flags, 0, pending, kn->udata);
	return pending > 0;
}

static void kq_after(struct kqe_queue *q, struct knote *kn)
{
	(void)q;
	/* epoll reports a level registration again by itself, and an EV_CLEAR
	 * one at the next edge. */
	kn->status &= ~KN_ACTIVE;
}

static const struct kqe_filter_ops kqread_ops = {
	.is_fd = true,
	.attach = kq_attach,
	.modify = kq_modify,
	.detach = kq_detach,
	.enable = kq_enable,
	.event = kq_event,
	.after = kq_after,
	.stale = kq_stale,
};

/* The inner queue's descriptor is readable. */
static int kq_ready(struct kqe_queue *q, const struct epoll_event *buf, int count,
		    struct kevent *out, int room, int *taken)
{
	(void)count, (void)out, (void)room;
	*taken = 1;
	int fd = (int)(uint32_t)KQE_VAL_OF(buf[0].data.u64);
	struct knote *kn = kqe_knote_find(q, EVFILT_READ, (uintptr_t)fd);
	if (kn == NULL || !(kn->status & KN_KQREAD))
		return 0; /* deleted meanwhile (its registration went with it) */
	if (!(kn->status & KN_ENABLED)) {
		/* Disabled (EV_DISABLE, EV_DISPATCH): switch the registration
		 * off rather than hear it again and again. */
		if (!(kn->status & KN_DISARMED) && kq_register(q, kn, EPOLL_CTL_MOD, 0) == 0)
			kn->status |= KN_DISARMED;
		return 0;
	}
	kqe_knote_activate(q, kn);
	return 0;
}

const struct kqe_family kqe_family_kqread = {
	.name = "kqread",
	.ops = &kqread_ops,
	.status = KN_KQREAD,
	.tags = { TAG_KQ },
	.ready = kq_ready,
};
