/*
 * collect.c - the collection of events (semantics §2.1 step 4, §2.3): the
 * ready list first, then one epoll wait whose results go to their families,
 * then the ready list again; each knote at most once per call, as
 * FreeBSD's scan.
 *
 * Serials.  "Delivered in this call" is kn->delivered_call ==
 * q->call_serial, 16 bits so that it fits the knote's first cache line
 * (queue.h).  The serial wraps every 65,536 rounds; a knote idle for a
 * multiple of that looks delivered when it is not.  The cost of such a
 * false match is bounded here: the knote is put aside for one round, and a
 * round that put something aside and took nothing never blocks.
 * tests/c/wrap_test.c starts the serial at its wrap.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>

#include "collect.h"

/* Largest epoll batch asked for at once; bigger eventlists loop. */
#define EVBUF_MAX 4096


static void requeue_flush(struct kqe_queue *q)
{
	struct knote *kn = q->requeue;
	q->requeue = NULL;
	/* The list was built by prepending: reverse it so delivery order holds. */
	struct knote *rev = NULL;
	while (kn) {
		struct knote *next = kn->rnext;
		kn->rnext = rev;
		rev = kn;
		kn = next;
	}
	while (rev) {
		struct knote *next = rev->rnext;
		KQE_ASSERT(rev->status & KN_REQUEUE, "requeue list holds an unmarked knote");
		rev->status &= ~KN_REQUEUE;
		rev->rnext = NULL;
		if ((rev->status & (KN_ACTIVE | KN_ENABLED)) == (KN_ACTIVE | KN_ENABLED))
			kqe_ready_repush(q, rev);
		rev = next;
	}
}

static int drain_ready(struct kqe_queue *q, struct kevent *out, int nevents, int n)
{
	struct knote *kn;
	KQE_ASSERT_LOCKED(q);
	while (n < nevents && (kn = kqe_ready_pop(q)) != NULL) {
		const struct kqe_filter_ops *f = kqe_knote_ops(kn);
		if (kn->delivered_call == q->call_serial) {
			/* Delivered already in this call and active again (a
			 * timer expiring meanwhile): once per call, as FreeBSD's
			 * scan; back on the tail when the collection ends. */
			kqe_requeue_push(q, kn);
			continue;
		}
		struct kevent *ev = &out[n];
		int r = f->event(q, kn, ev);
		if (r < 0 || (r == 0 && !(kn->flags & EV_ONESHOT))) {
			/* The condition vanished: dropped silently (semantics §2.3). */
			kn->status &= ~KN_ACTIVE;
			continue;
		}
		n++;
		kqe_knote_delivered(q, kn);
	}
	return n;
}

static int ensure_evbuf(struct kqe_queue *q, int want)
{
	if (want > EVBUF_MAX)
		want = EVBUF_MAX;
	if (want < 16)
		want = 16;
	if (q->evcap >= want)
		return 0;
	struct epoll_event *b = realloc(q->evbuf, (size_t)want * sizeof *b);
	if (b == NULL)
		return ENOMEM;
	q->evbuf = b;
	q->evcap = want;
	return 0;
}

/* epoll_pwait2 (Linux 5.11) takes the timeout in nanoseconds.  Older
 * kernels, and valgrind 3.19, answer ENOSYS: then epoll_wait, with the
 * timeout rounded up to whole milliseconds so that a wait never ends early. */
static int have_pwait2 = 1;

static int wait_epoll(int epfd, struct epoll_event *buf, int cap, const struct timespec *tp)
{
	if (__atomic_load_n(&have_pwait2, __ATOMIC_RELAXED)) {
		int m = epoll_pwait2(epfd, buf, cap, tp, NULL);
		if (m >= 0 || errno != ENOSYS)
			return m;
		__atomic_store_n(&have_pwait2, 0, __ATOMIC_RELAXED);
	}
	int ms = -1;
	if (tp) {
		int64_t ns = (int64_t)tp->tv_sec * 1000000000 + tp->tv_nsec;
		int64_t up = (ns + 999999) / 1000000;
		ms = up > INT_MAX ? INT_MAX : (int)up;
	}
	return epoll_wait(epfd, buf, cap, ms);
}

/* One epoll_wait (blocking when wait_ns != 0) and the processing of what it
 * returned.  Returns -1 with errno (EINTR, EBADF when closed meanwhile). */
static int epoll_collect(struct kqe_queue *q, struct kevent *out, int nevents, int *np,
			 int64_t wait_ns)
{
	struct epoll_event local[32];
	struct epoll_event *buf = local;
	int cap = (int)(sizeof local / sizeof local[0]);
	bool own = false;
	if (!q->evbuf_busy && ensure_evbuf(q, nevents - *np) == 0) {
		/* The queue's buffer, unless another thread is already using it. */
		buf = q->evbuf;
		cap = q->evcap;
		q->evbuf_busy = own = true;
	}
	int room = nevents - *np;
	if (room > 0 && cap > room)
		cap = room; /* with no room (a harvest) take what the buffer holds */

	struct timespec ts, *tp = NULL;
	if (wait_ns >= 0) {
		ts.tv_sec = wait_ns / 1000000000;
		ts.tv_nsec = wait_ns % 1000000000;
		tp = &ts;
	}
	int m, err = 0;
	struct kqe_sigmark sigmark;
	kqe_signal_mark(&sigmark);
	if (wait_ns != 0) {
		/* Read under the lock: kqe_close() may clear it meanwhile. */
		int epfd = q->epfd;
		q->nwaiters++;
		kqe_queue_unlock(q);
		m = wait_epoll(epfd, buf, cap, tp);
		err = errno;
		kqe_queue_lock(q);
		q->nwaiters--;
	} else {
		m = wait_epoll(q->epfd, buf, cap, tp);
		err = errno;
	}
	if (m < 0 && err == EINTR && kqe_signal_interrupt_ours(&sigmark))
		m = 0; /* only a watched signal came: counted, not an interruption */
	if (q->closed) {
		m = -1;
		err = EBADF;
	}
	if (m > 0)
		*np += kqe_families_dispatch(q, buf, m, out + *np, nevents - *np);
	if (own)
		q->evbuf_busy = false;
	if (m < 0) {
		errno = err;
		return -1;
	}
	return m;
}

int kqe_collect(struct kqe_queue *q, struct kevent *out, int nevents,
		   const struct timespec *timeout)
{
	int64_t deadline = -1; /* forever */
	if (timeout && timeout->tv_sec <= INT32_MAX) {
		/* semantics §2.3: more than INT32_MAX seconds means forever. */
		deadline = kqe_now() + (int64_t)timeout->tv_sec * 1000000000 + timeout->tv_nsec;
	}
	for (;;) {
		int n = 0;
		q->call_serial++;
		kqe_families_poll(q);
		n = drain_ready(q, out, nevents, n);
		if (n < nevents) {
			int64_t wait_ns = 0;
			/* Nothing taken, and nothing put aside either: then wait.  A
			 * knote put aside (q->requeue) with nothing delivered can only
			 * be a false match of the 16-bit serial, after 65,536
			 * collections: it goes back on the ready list below, and the
			 * next round, with the next serial, delivers it. */
			if (n == 0 && q->requeue == NULL) {
				if (deadline < 0) {
					wait_ns = -1;
				} else {
					wait_ns = deadline - kqe_now();
					if (wait_ns < 0)
						wait_ns = 0;
				}
			}
			if (epoll_collect(q, out, nevents, &n, wait_ns) < 0) {
				int err = errno;
				requeue_flush(q);
				if (n > 0)
					return n; /* events already taken are not lost */
				errno = err;
				return -1;
			}
			n = drain_ready(q, out, nevents, n);
		}
		requeue_flush(q);
		if (q->rebuild) {
			/* A stray registration woke us: rid the queue of it before
			 * waiting again.  Should that fail for want of a descriptor,
			 * the next stray result tries again. */
			q->rebuild = false;
			(void)kqe_queue_rebuild(q);
		}
		if (n > 0)
			return n;
		/* A wait never ends early, and a NULL timeout never returns 0:
		 * when every candidate proved stale, wait again. */
		if (deadline >= 0 && kqe_now() >= deadline)
			return 0;
	}
}


void kqe_collect_free(struct kqe_queue *q)
{
	free(q->evbuf);
	q->evbuf = NULL;
	q->evcap = 0;
}
