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
 *
 * EV_CLEAR.  FreeBSD fires an EV_CLEAR knote on a queue when an event
 * enters that queue anew.  Here an edge of the inner's descriptor can also
 * come from the engine itself (counting the inner's events moves them to
 * its ready list, which writes its wake eventfd), so an edge fires the
 * knote only if the inner's count of new entries (q->nenqueued) moved
 * since the last delivery.
 *
 * Depth.  Linux nests epoll instances at most 5 deep; a chain of queues
 * deeper than that gets ELOOP, and a cycle EINVAL (doc/limits.md).  To
 * tell them apart, the process keeps which queue watches which.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "family.h"

/* ---- which queue watches which (queue serials) ---------------------------- */

struct edge {
	uint64_t from, to;
};
static pthread_mutex_t graph_lock = PTHREAD_MUTEX_INITIALIZER; /* a leaf */
static struct edge *edges;
static size_t nedges, edgecap;

/* graph_lock held. */
static void graph_add(uint64_t from, uint64_t to)
{
	if (nedges == edgecap) {
		size_t ncap = edgecap ? edgecap * 2 : 8;
		struct edge *e = realloc(edges, ncap * sizeof *e);
		if (e == NULL)
			return; /* only the cycle test reads it: a cycle through
				 * this edge then reads as ELOOP, still an error */
		edges = e;
		edgecap = ncap;
	}
	edges[nedges++] = (struct edge){ from, to };
}

static void graph_remove(uint64_t from, uint64_t to)
{
	pthread_mutex_lock(&graph_lock);
	for (size_t i = 0; i < nedges; i++) {
		if (edges[i].from == from && edges[i].to == to) {
			edges[i] = edges[--nedges];
			break;
		}
	}
	if (nedges == 0) {
		free(edges);
		edges = NULL;
		edgecap = 0;
	}
	pthread_mutex_unlock(&graph_lock);
}

/* Does queue `from` watch queue `to`, directly or through others?  The
 * graph is acyclic (epoll refuses cycles), so the walk ends.  graph_lock
 * held. */
static bool graph_reaches(uint64_t from, uint64_t to)
{
	bool found = false;
	uint64_t *stack = malloc((nedges + 1) * sizeof *stack);
	size_t top = 0;
	if (stack)
		stack[top++] = from;
	while (top > 0 && !found) {
		uint64_t at = stack[--top];
		for (size_t i = 0; i < nedges && !found; i++) {
			if (edges[i].from != at)
				continue;
			if (edges[i].to == to)
				found = true;
			else if (top <= nedges)
				stack[top++] = edges[i].to;
		}
	}
	free(stack);
	return found;
}

static void graph_atfork(void)
{
	pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
	graph_lock = fresh;
	free(edges);
	edges = NULL;
	nedges = edgecap = 0;
}

/* ---- the filter ----------------------------------------------------------------- */

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
	case ELOOP:  /* a cycle, or too deep: kq_attach tells which */
		return ELOOP;
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
	kn->u.kq.seen = UINT64_MAX; /* the first edge is news */
	/* Its ready list must show on its descriptor from now on. */
	kqe_expose_locked(inner);
	kqe_queue_put(inner);
	/* The registration and the graph change together, so that of two
	 * threads adding two queues into each other at once, the one epoll
	 * refuses finds the other's edge. */
	pthread_mutex_lock(&graph_lock);
	int err = kq_register(q, kn, EPOLL_CTL_ADD, kq_events(kn));
	if (err == ELOOP && graph_reaches(kn->u.kq.serial, q->serial))
		err = EINVAL; /* a cycle, not a chain too deep */
	if (err == 0)
		graph_add(q->serial, kn->u.kq.serial);
	pthread_mutex_unlock(&graph_lock);
	return err;
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
	graph_remove(q->serial, kn->u.kq.serial);
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

/* The inner queue's events now, and its count of new entries; -1 when
 * the number no longer names that queue. */
static int kq_pending(struct knote *kn, uint64_t *enqueued)
{
	struct kqe_queue *inner = kqe_queue_get((int)kn->ident);
	if (inner == NULL || inner->serial != kn->u.kq.serial) {
		if (inner)
			kqe_queue_put(inner);
		return -1; /* closed or replaced: a later change drops the knote */
	}
	int pending = kqe_queue_pending(inner, enqueued);
	kqe_queue_put(inner);
	return pending;
}

static int kq_event(struct kqe_queue *q, struct knote *kn, struct kevent *ev)
{
	(void)q;
	uint64_t enqueued;
	int pending = kq_pending(kn, &enqueued);
	if (pending < 0)
		return -1;
	EV_SET(ev, kn->ident, EVFILT_READ, kn->flags, 0, pending, kn->udata);
	if (pending > 0)
		kn->u.kq.seen = enqueued;
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
	if (kn == NULL || !(kn->status & KN_KQREAD)) {
		/* A registration the engine no longer owns (see io.c). */
		q->rebuild = true;
		return 0;
	}
	if (!(kn->status & KN_ENABLED)) {
		/* Disabled (EV_DISABLE, EV_DISPATCH): switch the registration
		 * off rather than hear it again and again. */
		if (!(kn->status & KN_DISARMED) && kq_register(q, kn, EPOLL_CTL_MOD, 0) == 0)
			kn->status |= KN_DISARMED;
		return 0;
	}
	if (kn->flags & EV_CLEAR) {
		/* News only if an event entered the inner queue anew since the
		 * last delivery (see the top of this file). */
		uint64_t enqueued;
		int pending = kq_pending(kn, &enqueued);
		if (pending <= 0 || enqueued == kn->u.kq.seen)
			return 0;
	}
	kqe_knote_activate(q, kn);
	return 0;
}

/* The knotes whose queue was closed (or replaced) go, as FreeBSD drops
 * them; the others move. */
static int kq_rearm(struct kqe_queue *q, int epfd, bool add)
{
	int err = 0;
	for (size_t i = 0; err == 0 && i < q->hcap; i++) {
		struct knote *kn = q->htab[i];
		while (err == 0 && kn) {
			struct knote *next = kn->hnext;
			if (kn->status & KN_KQREAD) {
				if (add && kq_stale(q, kn, NULL))
					kqe_knote_drop(q, kn);
				else
					err = kqe_epoll_rearm(epfd, add, (int)kn->ident,
							      (kn->status & KN_DISARMED) ? 0 : kq_events(kn),
							      KQE_TAG(TAG_KQ, (uint32_t)kn->ident));
			}
			kn = next;
		}
	}
	return err;
}

const struct kqe_family kqe_family_kqread = {
	.name = "kqread",
	.ops = &kqread_ops,
	.status = KN_KQREAD,
	.tags = { TAG_KQ },
	.ready = kq_ready,
	.atfork = graph_atfork,
	.rearm = kq_rearm,
};
