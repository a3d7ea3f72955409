/*
 * knote.c - the queue's knotes: a hash table keyed by (filter, ident), the
 * ready list of knotes whose events wait to be collected, and the requeue
 * list of level knotes delivered in the current collection.  A data
 * structure: it calls no filter (the caller detaches a knote before
 * kqe_knote_free, as FreeBSD's knote_drop expects).
 *
 * A knote is (ident, filter) within one queue (kqueue(2)): EV_ADD on an
 * existing pair modifies it, never duplicates it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "queue.h"

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
	KQE_ASSERT_LOCKED(q);
	KQE_ASSERT(kqe_knote_find(q, kn->filter, kn->ident) == NULL, "two knotes for one pair");
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
 * the cost is per transition, never per event.  `exposed' and
 * `wake_pending' are read here without the wake lock: a stale `false'
 * only costs a spare wake, and kqe_expose_locked looks at nready under the
 * lock after setting `exposed', so no wake is missed. */
static void ready_became_nonempty(struct kqe_queue *q)
{
	if ((__atomic_load_n(&q->exposed, __ATOMIC_ACQUIRE) || q->nwaiters > 0) &&
	    !__atomic_load_n(&q->wake_pending, __ATOMIC_RELAXED))
		kqe_wake(q);
}

static void ready_became_empty(struct kqe_queue *q)
{
	if (__atomic_load_n(&q->wake_pending, __ATOMIC_RELAXED) && q->nwaiters == 0)
		kqe_wake_consume(q);
}

static void ready_link(struct kqe_queue *q, struct knote *kn);

void kqe_ready_push(struct kqe_queue *q, struct knote *kn)
{
	if (!(kn->status & (KN_QUEUED | KN_REQUEUE)))
		q->nenqueued++;
	ready_link(q, kn);
}

void kqe_ready_repush(struct kqe_queue *q, struct knote *kn)
{
	ready_link(q, kn);
}

static void ready_link(struct kqe_queue *q, struct knote *kn)
{
	KQE_ASSERT_LOCKED(q);
	KQE_ASSERT(kn->status & KN_ENABLED, "a disabled knote queued");
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
	size_t before = q->nready;
	__atomic_store_n(&q->nready, before + 1, __ATOMIC_RELEASE); /* kqread.c reads it */
	if (before == 0)
		ready_became_nonempty(q);
}

void kqe_ready_remove(struct kqe_queue *q, struct knote *kn)
{
	KQE_ASSERT_LOCKED(q);
	if (!(kn->status & KN_QUEUED))
		return;
	KQE_ASSERT(q->nready > 0 && (kn->rprev || q->rhead == kn), "queued knote not on the list");
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
	size_t left = q->nready - 1;
	__atomic_store_n(&q->nready, left, __ATOMIC_RELEASE);
	if (left == 0)
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

void kqe_knote_free(struct kqe_queue *q, struct knote *kn)
{
	KQE_ASSERT_LOCKED(q);
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
	KQE_ASSERT(kqe_knote_find(q, kn->filter, kn->ident) != kn, "freed knote still in the table");
	free(kn);
}

void kqe_requeue_push(struct kqe_queue *q, struct knote *kn)
{
	KQE_ASSERT(!(kn->status & (KN_QUEUED | KN_REQUEUE)), "requeue of a listed knote");
	kn->status |= KN_REQUEUE;
	kn->rnext = q->requeue;
	q->requeue = kn;
}
