/*
 * knote.c - the queue's knotes: a hash table keyed by (filter, ident), and
 * the ready list of knotes whose events wait to be collected.
 *
 * A knote is (ident, filter) within one queue (kqueue(2)): EV_ADD on an
 * existing pair modifies it, never duplicates it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

static size_t knote_hash(short filter, uintptr_t ident, size_t cap)
{
	/* Consecutive idents (descriptors, timer and user numbers) land in
	 * consecutive buckets, so sweeping over many knotes stays in cache;
	 * the high bits are folded in so that idents spaced by the table size
	 * spread out too, and each filter gets its own offset. */
	uint64_t x = (uint64_t)ident;
	x ^= (x >> 17) ^ (x >> 37);
	x += (uint64_t)(uint16_t)filter * UINT64_C(0x9E3779B1);
	return (size_t)x & (cap - 1);
}

struct knote *kqe_knote_find(struct kqe_queue *q, short filter, uintptr_t ident)
{
	if (q->hcap == 0)
		return NULL;
	for (struct knote *kn = q->htab[knote_hash(filter, ident, q->hcap)]; kn; kn = kn->hnext)
		if (kn->ident == ident && kn->filter == filter)
			return kn;
	return NULL;
}

static int knote_grow(struct kqe_queue *q)
{
	size_t ncap = q->hcap ? q->hcap * 2 : 64;
	struct knote **ntab = calloc(ncap, sizeof *ntab);
	if (ntab == NULL)
		return ENOMEM;
	for (size_t i = 0; i < q->hcap; i++) {
		struct knote *kn = q->htab[i];
		while (kn) {
			struct knote *next = kn->hnext;
			size_t h = knote_hash(kn->filter, kn->ident, ncap);
			kn->hnext = ntab[h];
			ntab[h] = kn;
			kn = next;
		}
	}
	free(q->htab);
	q->htab = ntab;
	q->hcap = ncap;
	return 0;
}

int kqe_knote_insert(struct kqe_queue *q, struct knote *kn)
{
	if (q->hcount + 1 > q->hcap) { /* chains of one on average: load <= 1 */
		int err = knote_grow(q);
		if (err)
			return err;
	}
	size_t h = knote_hash(kn->filter, kn->ident, q->hcap);
	kn->hnext = q->htab[h];
	q->htab[h] = kn;
	q->hcount++;
	return 0;
}

void kqe_knote_unlink(struct kqe_queue *q, struct knote *kn)
{
	if (q->hcap == 0)
		return; /* the first insert failed to make the table */
	struct knote **pp = &q->htab[knote_hash(kn->filter, kn->ident, q->hcap)];
	while (*pp && *pp != kn)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = kn->hnext;
		q->hcount--;
	}
}

/* The wake eventfd mirrors "the ready list is not empty" for an exposed
 * queue: written on the empty -> non-empty edge, read on the way back, so
 * the cost is per transition, never per event. */
static void ready_became_nonempty(struct kqe_queue *q)
{
	if ((q->exposed || q->nwaiters > 0) && !q->wake_pending)
		kqe_wake(q);
}

static void ready_became_empty(struct kqe_queue *q)
{
	if (q->wake_pending && q->nwaiters == 0) {
		uint64_t v;
		ssize_t r = read(q->wakefd, &v, sizeof v);
		(void)r; /* EAGAIN: nothing was pending, which is fine */
		q->wake_pending = false;
	}
}

void kqe_ready_push(struct kqe_queue *q, struct knote *kn)
{
	/* A knote waiting on q->requeue (linked through rnext) goes back on
	 * the ready list when the collection ends, if still active. */
	if (kn->status & (KN_QUEUED | KN_REQUEUE))
		return;
	kn->status |= KN_QUEUED;
	kn->rnext = NULL;
	kn->rprev = q->rtail;
	if (q->rtail)
		q->rtail->rnext = kn;
	else
		q->rhead = kn;
	q->rtail = kn;
	if (q->nready++ == 0)
		ready_became_nonempty(q);
}

void kqe_ready_remove(struct kqe_queue *q, struct knote *kn)
{
	if (!(kn->status & KN_QUEUED))
		return;
	kn->status &= ~KN_QUEUED;
	if (kn->rprev)
		kn->rprev->rnext = kn->rnext;
	else
		q->rhead = kn->rnext;
	if (kn->rnext)
		kn->rnext->rprev = kn->rprev;
	else
		q->rtail = kn->rprev;
	kn->rnext = kn->rprev = NULL;
	if (--q->nready == 0)
		ready_became_empty(q);
}

struct knote *kqe_ready_pop(struct kqe_queue *q)
{
	struct knote *kn = q->rhead;
	if (kn)
		kqe_ready_remove(q, kn);
	return kn;
}

void kqe_knote_activate(struct kqe_queue *q, struct knote *kn)
{
	kn->status |= KN_ACTIVE;
	if (kn->status & KN_ENABLED)
		kqe_ready_push(q, kn);
}

void kqe_knote_drop(struct kqe_queue *q, struct knote *kn)
{
	const struct kqe_filter *f = kqe_filters[-kn->filter];
	kqe_ready_remove(q, kn);
	if (kn->status & KN_REQUEUE) {
		/* Dropped during a collection: off the requeue list too. */
		struct knote **pp = &q->requeue;
		while (*pp && *pp != kn)
			pp = &(*pp)->rnext;
		if (*pp)
			*pp = kn->rnext;
	}
	kqe_knote_unlink(q, kn);
	if (f && f->detach)
		f->detach(q, kn);
	free(kn);
}

void kqe_knote_delivered(struct kqe_queue *q, struct knote *kn)
{
	const struct kqe_filter *f = kqe_filters[-kn->filter];
	kn->delivered_call = q->call_serial;
	if (kn->flags & EV_ONESHOT) {
		kqe_knote_drop(q, kn);
		return;
	}
	if (kn->flags & EV_CLEAR) {
		kn->status &= ~KN_ACTIVE;
		kn->data_out = 0;
		kn->fflags_out = 0;
	}
	if (f->after)
		f->after(q, kn);
	if (kn->flags & EV_DISPATCH) {
		/* Disarmed lazily: only state changes here; the filter notices
		 * when the source reports again with nobody enabled. */
		kn->status &= ~KN_ENABLED;
		return;
	}
	/* A level knote whose condition still holds comes back on the tail
	 * after this collection, so a small eventlist serves ready knotes
	 * round-robin. */
	if ((kn->status & (KN_ACTIVE | KN_REQUEUE)) == KN_ACTIVE) {
		kn->status |= KN_REQUEUE;
		kn->rnext = q->requeue;
		q->requeue = kn;
	}
}
