/*
 * families.c - the table of filter families, registered once by kevent.c,
 * and what the floors do through it: find a knote's operations, drop a
 * knote, hand epoll results to the family whose tag they carry, run the
 * per-collection looks, free and fork.  It names no family (FreeBSD's
 * sysfilt_ops, filled by registration), so every family can use it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "family.h"

static const struct kqe_family *const *families;
static int nfamilies;
static const struct kqe_family *by_filter[EVFILT_SYSCOUNT + 1];
static const struct kqe_family *by_tag[TAG_COUNT];
static const struct kqe_family *by_status; /* the family of KN_KQREAD knotes */
/* The poll hooks, which run at every collection: a short list of those
 * there are, not a walk of every family. */
#define FAMILIES_MAX 16
static void (*polls[FAMILIES_MAX])(struct kqe_queue *q);
static int npolls;

void kqe_families_register(const struct kqe_family *const *fams, int n)
{
	if (n > FAMILIES_MAX)
		abort(); /* kevent.c's table outgrew FAMILIES_MAX */
	families = fams;
	nfamilies = n;
	for (int i = 0; i < n; i++) {
		const struct kqe_family *f = fams[i];
		if (f->status)
			by_status = f;
		if (f->poll)
			polls[npolls++] = f->poll;
		for (int j = 0; j < 2; j++) {
			if (f->filters[j] < 0 && f->filters[j] >= -EVFILT_SYSCOUNT)
				by_filter[-f->filters[j]] = f;
			if (f->tags[j] != TAG_WAKE)
				by_tag[f->tags[j]] = f;
		}
	}
}

const struct kqe_family *kqe_family_of(short filter)
{
	if (filter >= 0 || filter < -EVFILT_SYSCOUNT)
		return NULL;
	return by_filter[-filter];
}

const struct kqe_filter_ops *kqe_knote_ops(const struct knote *kn)
{
	if ((kn->status & KN_KQREAD) && by_status)
		return by_status->ops;
	return by_filter[-kn->filter]->ops;
}

void kqe_knote_drop(struct kqe_queue *q, struct knote *kn)
{
	const struct kqe_filter_ops *ops = kqe_knote_ops(kn);
	if (ops->detach)
		ops->detach(q, kn);
	kqe_knote_free(q, kn);
}

void kqe_knote_delivered(struct kqe_queue *q, struct knote *kn)
{
	KQE_ASSERT_LOCKED(q);
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
	const struct kqe_filter_ops *ops = kqe_knote_ops(kn);
	if (ops->after)
		ops->after(q, kn);
	if (kn->flags & EV_DISPATCH) {
		/* Disarmed lazily: only state changes here; the filter notices
		 * when the source reports again with nobody enabled. */
		kn->status &= ~KN_ENABLED;
		return;
	}
	/* A level knote whose condition still holds comes back on the tail
	 * after this collection, so a small eventlist serves ready knotes
	 * round-robin. */
	if ((kn->status & (KN_ACTIVE | KN_REQUEUE)) == KN_ACTIVE)
		kqe_requeue_push(q, kn);
}

void kqe_families_poll(struct kqe_queue *q)
{
	for (int i = 0; i < npolls; i++)
		polls[i](q);
}

int kqe_families_dispatch(struct kqe_queue *q, const struct epoll_event *buf, int m,
			  struct kevent *out, int room)
{
	int n = 0; /* a local: no store and reload around each call */
	for (int i = 0; i < m;) {
		enum kqe_tag tag = KQE_TAG_OF(buf[i].data.u64);
		if (tag == TAG_WAKE) {
			kqe_wake_consume(q);
			i++;
			continue;
		}
		const struct kqe_family *f = tag < TAG_COUNT ? by_tag[tag] : NULL;
		if (f == NULL || f->ready == NULL) {
			i++;
			continue;
		}
		int taken = 1;
		int room_left = room > n ? room - n : 0;
		n += f->ready(q, buf + i, m - i, out + n, room_left, &taken);
		i += taken > 0 ? taken : 1;
	}
	return n;
}

void kqe_families_free(struct kqe_queue *q)
{
	for (int i = 0; i < nfamilies; i++)
		if (families[i]->free)
			families[i]->free(q);
}

void kqe_families_atfork_queue(struct kqe_queue *q)
{
	for (int i = 0; i < nfamilies; i++)
		if (families[i]->atfork_queue)
			families[i]->atfork_queue(q);
}

void kqe_families_atfork(void)
{
	for (int i = 0; i < nfamilies; i++)
		if (families[i]->atfork)
			families[i]->atfork();
}

void kqe_families_forked(struct kqe_queue *q)
{
	for (int i = 0; i < nfamilies; i++)
		if (families[i]->forked)
			families[i]->forked(q);
}

int kqe_epoll_rearm(int epfd, bool add, int fd, uint32_t events, uint64_t tag)
{
	if (add)
		return kqe_epoll_add_to(epfd, fd, events, tag);
	(void)epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
	return 0;
}

/* Every registration of q, added to epfd or removed from it. */
static int rearm_all(struct kqe_queue *q, int epfd, bool add)
{
	int err = kqe_epoll_rearm(epfd, add, q->wakefd, EPOLLIN, KQE_TAG(TAG_WAKE, 0));
	for (int i = 0; err == 0 && i < nfamilies; i++)
		if (families[i]->rearm)
			err = families[i]->rearm(q, epfd, add);
	return err;
}

/*
 * A registration epoll will not let go: epoll knows a registration by its
 * file and number, forgets it only when the file's last descriptor
 * closes, and EPOLL_CTL_DEL needs the number to name that file still.  A
 * file closed here while a fork child (or a dup) keeps it open, its number
 * then reused, stays registered for ever, and a ready one wakes every wait
 * (a spin).  The only way out is a fresh epoll instance with every
 * registration the engine owns moved over:
 *   - a queue nobody watches: the new instance takes the queue's number
 *     (dup3), and the old one, with the stray registration, is gone;
 *   - a queue watched from outside (q->exposed: fileno(), another queue,
 *     another event loop) keeps its number and file, so that those who
 *     registered it keep it: the new instance becomes private (q->epfd),
 *     and the old one watches it; the stray registration stays there,
 *     and can make it readable for nothing, but no wait of the engine
 *     sees it.  A second rebuild replaces the private one.
 * O(registrations) system calls, once per such stray (doc/linux-engine.md).
 */
int kqe_queue_rebuild(struct kqe_queue *q)
{
	KQE_ASSERT_LOCKED(q);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return errno;
	bool split = q->pubfd != q->epfd;
	bool exposed = __atomic_load_n(&q->exposed, __ATOMIC_ACQUIRE);
	int err = rearm_all(q, ep, true);
	if (err == 0 && exposed)
		err = kqe_epoll_add_to(q->pubfd, ep, EPOLLIN, KQE_TAG(TAG_WAKE, 0));
	if (err == 0 && !exposed && dup3(ep, q->epfd, O_CLOEXEC) < 0)
		err = errno;
	if (err) {
		close(ep);
		return err;
	}
	if (!exposed) {
		close(ep); /* its copy at q->epfd stays */
	} else if (split) {
		(void)epoll_ctl(q->pubfd, EPOLL_CTL_DEL, q->epfd, NULL);
		close(q->epfd);
		q->epfd = ep;
	} else {
		/* The first split: what the engine owns leaves the public
		 * instance, which keeps the stray and the new private one. */
		(void)rearm_all(q, q->pubfd, false);
		q->epfd = ep;
	}
	/* A thread blocked on the old instance returns, and waits again on
	 * the new one. */
	if (q->nwaiters > 0)
		kqe_wake(q);
	return 0;
}

int kqe_queue_pending(struct kqe_queue *q, uint64_t *enqueued)
{
	kqe_queue_lock(q);
	if (!q->closed) {
		/* A round of its own: a knote delivered in q's last collection
		 * is ready again if epoll says so.  (A thread waiting in q's
		 * collection meanwhile has delivered nothing in it: it waits
		 * only then, collect.c.) */
		q->call_serial++;
		kqe_families_poll(q);
		/* One look at epoll, results to the ready list (no room). */
		struct epoll_event buf[64];
		struct kevent none; /* no room: results go to the ready list */
		int m = epoll_wait(q->epfd, buf, 64, 0);
		if (m > 0)
			(void)kqe_families_dispatch(q, buf, m, &none, 0);
	}
	int pending = (int)q->nready;
	if (enqueued)
		*enqueued = q->nenqueued;
	kqe_queue_unlock(q);
	return pending;
}
