/*
 * engine.c - kqueue() and kevent() for Linux: the registry of queues, the
 * order in which kevent() applies changes, and the collection of events
 * from the ready list and from epoll.
 *
 * The reference is FreeBSD's kern_event.c as described in
 * shared/docs/kqueue-semantics.md (cited below as "semantics §N").
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

const struct kqe_filter *const kqe_filters[EVFILT_SYSCOUNT + 1] = {
	[-EVFILT_READ] = &kqe_filter_io,
	[-EVFILT_WRITE] = &kqe_filter_io,
	[-EVFILT_VNODE] = &kqe_filter_vnode,
	[-EVFILT_PROC] = &kqe_filter_proc,
	[-EVFILT_SIGNAL] = &kqe_filter_signal,
	[-EVFILT_TIMER] = &kqe_filter_timer,
	[-EVFILT_USER] = &kqe_filter_user,
};

/* Largest epoll batch asked for at once; bigger eventlists loop. */
#define EVBUF_MAX 4096

/* ---- the registry: queue descriptor -> queue ---------------------------- */

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kqe_queue **registry;
static int registry_cap;
static int registry_count; /* the array is freed when it empties */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* A kqueue is not inherited across fork (semantics §5).  The child forgets
 * every queue without closing or editing the inherited epoll descriptors:
 * an epoll_ctl in the child would change the parent's interest list, and
 * the number may be reused by the child for something else.  The parent's
 * engine memory stays allocated in the child; it is never reachable. */
static struct kqe_queue *orphans; /* a fork child's inherited queues */

static void atfork_child(void)
{
	pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
	registry_lock = fresh;
	/* The inherited queues are never used again here, and freeing their
	 * parts could trip over locks other threads held at fork: they stay
	 * reachable on a list, so leak checkers see no loss. */
	for (int fd = 0; fd < registry_cap; fd++) {
		if (registry[fd]) {
			registry[fd]->orphan_next = orphans;
			orphans = registry[fd];
		}
	}
	free(registry); /* glibc's malloc is usable again in a fork child */
	registry = NULL;
	registry_cap = 0;
	registry_count = 0;
	kqe_signal_atfork_child();
}

static void atfork_setup(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
}

static int registry_insert(struct kqe_queue *q)
{
	pthread_mutex_lock(&registry_lock);
	if (q->epfd >= registry_cap) {
		int ncap = registry_cap ? registry_cap : 64;
		while (ncap <= q->epfd)
			ncap *= 2;
		struct kqe_queue **n = realloc(registry, (size_t)ncap * sizeof *n);
		if (n == NULL) {
			pthread_mutex_unlock(&registry_lock);
			return ENOMEM;
		}
		memset(n + registry_cap, 0, (size_t)(ncap - registry_cap) * sizeof *n);
		registry = n;
		registry_cap = ncap;
	}
	registry[q->epfd] = q;
	registry_count++;
	static uint64_t next_serial;
	q->serial = ++next_serial; /* under registry_lock */
	pthread_mutex_unlock(&registry_lock);
	return 0;
}

struct kqe_queue *kqe_queue_get(int fd)
{
	struct kqe_queue *q = NULL;
	pthread_mutex_lock(&registry_lock);
	if (fd >= 0 && fd < registry_cap && registry[fd] && !registry[fd]->closed) {
		q = registry[fd];
		q->refs++;
	}
	pthread_mutex_unlock(&registry_lock);
	return q;
}

uint64_t kqe_queue_serial(int fd)
{
	struct kqe_queue *q = kqe_queue_get(fd);
	uint64_t serial = q ? q->serial : 0;
	if (q)
		kqe_queue_put(q);
	return serial;
}

static void queue_free(struct kqe_queue *q)
{
	/* Nobody else can reach q now: drop every knote, then the helpers. */
	for (size_t i = 0; i < q->hcap; i++) {
		while (q->htab[i])
			kqe_knote_drop(q, q->htab[i]);
	}
	kqe_timers_free(q);
	kqe_fds_free(q);
	if (q->wakefd >= 0)
		close(q->wakefd);
	if (q->inotify_fd >= 0)
		close(q->inotify_fd);
	if (q->edge_epfd >= 0)
		close(q->edge_epfd);
	if (q->epfd >= 0)
		close(q->epfd);
	free(q->htab);
	free(q->evbuf);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

void kqe_queue_put(struct kqe_queue *q)
{
	pthread_mutex_lock(&registry_lock);
	int left = --q->refs;
	pthread_mutex_unlock(&registry_lock);
	if (left == 0)
		queue_free(q);
}

/* ---- small shared helpers ---------------------------------------------- */

int64_t kqe_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no syscall */
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int kqe_epoll_add(struct kqe_queue *q, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };
	return epoll_ctl(q->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? errno : 0;
}

void kqe_wake(struct kqe_queue *q)
{
	if (q->wakefd < 0) {
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0)
			return; /* no descriptor left: waiters see it at their timeout */
		if (kqe_epoll_add(q, fd, EPOLLIN, KQE_TAG(TAG_WAKE, 0)) != 0) {
			close(fd);
			return;
		}
		q->wakefd = fd;
	}
	uint64_t one = 1;
	if (write(q->wakefd, &one, sizeof one) == sizeof one)
		q->wake_pending = true;
}

static void wake_consume(struct kqe_queue *q)
{
	/* An exposed queue keeps the eventfd readable while events wait in the
	 * ready list; otherwise the wake has done its job. */
	if (q->exposed && q->nready > 0)
		return;
	uint64_t v;
	if (read(q->wakefd, &v, sizeof v) < 0 && errno != EAGAIN)
		return;
	q->wake_pending = false;
}

/* ---- kqueue(), close ---------------------------------------------------- */

int kqe_kqueue(void)
{
	pthread_once(&atfork_once, atfork_setup);
	struct kqe_queue *q = calloc(1, sizeof *q);
	if (q == NULL) {
		errno = ENOMEM;
		return -1;
	}
	pthread_mutex_init(&q->lock, NULL);
	q->wakefd = q->timerfd = q->inotify_fd = q->edge_epfd = -1;
	q->refs = 1;
	q->epfd = epoll_create1(EPOLL_CLOEXEC);
	int err = q->epfd < 0 ? errno : registry_insert(q);
	if (err) {
		queue_free(q);
		errno = err;
		return -1;
	}
	return q->epfd;
}

int kqe_close(int kq)
{
	pthread_mutex_lock(&registry_lock);
	struct kqe_queue *q = (kq >= 0 && kq < registry_cap) ? registry[kq] : NULL;
	if (q) {
		registry[kq] = NULL;
		if (--registry_count == 0) {
			/* Nothing left: give the memory back, so that a program
			 * (or valgrind at exit) sees no engine allocation. */
			free(registry);
			registry = NULL;
			registry_cap = 0;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	if (q == NULL) {
		errno = EBADF;
		return -1;
	}
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	if (q->nwaiters > 0) {
		/* A thread is about to wait, or waits, on this descriptor: wake
		 * it so it sees the queue closed and returns EBADF, and leave the
		 * number open until it has let go (the last put closes it), so
		 * that it can never wait on a number reused meanwhile. */
		kqe_wake(q);
	} else {
		/* The number is released now, as close(2) would. */
		close(q->epfd);
		q->epfd = -1;
	}
	pthread_mutex_unlock(&q->lock);
	kqe_queue_put(q);
	return 0;
}

/* ---- Linux extensions (kqe.h) ------------------------------------------ */

int kqe_expose(int kq)
{
	struct kqe_queue *q = kqe_queue_get(kq);
	if (q == NULL) {
		errno = EBADF;
		return -1;
	}
	pthread_mutex_lock(&q->lock);
	if (!q->exposed) {
		q->exposed = true;
		if (q->nready > 0 && !q->wake_pending)
			kqe_wake(q);
	}
	pthread_mutex_unlock(&q->lock);
	kqe_queue_put(q);
	return 0;
}

int kqe_set_lazy_data(int kq, int on)
{
	struct kqe_queue *q = kqe_queue_get(kq);
	if (q == NULL) {
		errno = EBADF;
		return -1;
	}
	pthread_mutex_lock(&q->lock);
	q->lazy_data = on != 0;
	pthread_mutex_unlock(&q->lock);
	kqe_queue_put(q);
	return 0;
}

int kqe_event_is_lazy(const struct kevent *ev)
{
	return (ev->ext[0] & KQE_LAZY_MASK) == KQE_LAZY_MAGIC;
}

int kqe_event_data(const struct kevent *ev, int64_t *data)
{
	if (!kqe_event_is_lazy(ev) || ev->ident > INT_MAX) {
		*data = ev->data;
		return 0;
	}
	return kqe_fd_data((int)ev->ident, (enum kqe_fdkind)((ev->ext[0] >> 8) & 0xff),
			   ev->filter, data);
}

/* ---- applying one change (semantics §2.1, §3) ------------------------- */

static void knote_enable(struct kqe_queue *q, struct knote *kn)
{
	const struct kqe_filter *f = kqe_filters[-kn->filter];
	kn->status |= KN_ENABLED;
	if (f->enable)
		f->enable(q, kn);
	if (kn->status & KN_ACTIVE)
		kqe_ready_push(q, kn);
}

static void knote_disable(struct kqe_queue *q, struct knote *kn)
{
	const struct kqe_filter *f = kqe_filters[-kn->filter];
	kn->status &= ~KN_ENABLED;
	kqe_ready_remove(q, kn); /* a queued event is not returned */
	if (f->disable)
		f->disable(q, kn);
}

/* Returns 0 or an errno; *created tells whether a knote was made. */
static int apply_change(struct kqe_queue *q, const struct kevent *kev, bool *created)
{
	unsigned flags = kev->flags & ~EV_SYSFLAGS;
	*created = false;
	if (kev->filter >= 0 || kev->filter < -EVFILT_SYSCOUNT)
		return EINVAL;
	if ((flags & (EV_ENABLE | EV_DISABLE)) == (EV_ENABLE | EV_DISABLE))
		return EINVAL;
	if ((flags & (EV_ADD | EV_KEEPUDATA)) == (EV_ADD | EV_KEEPUDATA))
		return EINVAL;
	const struct kqe_filter *f = kqe_filters[-kev->filter];
	if (f == NULL || f->attach == NULL)
		return ENOTSUP;

	struct knote *kn = kqe_knote_find(q, kev->filter, kev->ident);
	struct stat st;
	q->change_st = NULL;
	if (kn && f->delete_fast && (flags & (EV_ADD | EV_DELETE)) == EV_DELETE) {
		/* Deleting a knote that epoll watches needs no fstat: epoll's
		 * own answer tells a closed descriptor or a reused number. */
		int err = f->delete_fast(q, kn);
		if (err >= 0)
			return err;
	}
	if (f->is_fd) {
		if (kev->ident > INT_MAX)
			return EBADF;
		if (fstat((int)kev->ident, &st) < 0) {
			/* FreeBSD drops knotes at close(); Linux cannot see it, so
			 * a knote found on a closed descriptor goes now. */
			if (kn)
				kqe_knote_drop(q, kn);
			return EBADF;
		}
		if (kn && f->stale && f->stale(q, kn, &st)) {
			/* The number names another file now: that file starts clean. */
			kqe_knote_drop(q, kn);
			kn = NULL;
		}
		q->change_st = &st;
	}

	if (kn == NULL) {
		if (!(flags & EV_ADD))
			return ENOENT;
		kn = calloc(1, sizeof *kn);
		if (kn == NULL)
			return ENOMEM;
		kn->ident = kev->ident;
		kn->filter = kev->filter;
		kn->flags = flags & KN_STORED_FLAGS;
		if (flags & EV_FORCEONESHOT)
			kn->flags |= EV_ONESHOT;
		kn->status = (flags & EV_DISABLE) ? 0 : KN_ENABLED;
		kn->status |= KN_CREATED;
		kn->udata = kev->udata;
		kn->sfflags = kev->fflags;
		kn->sdata = kev->data;
		kn->delivered_call = q->call_serial - 1;
		int err = kqe_knote_insert(q, kn);
		if (err == 0)
			err = f->attach(q, kn, kev);
		if (err) {
			kqe_ready_remove(q, kn);
			kqe_knote_unlink(q, kn);
			free(kn);
			return err;
		}
		kn->status &= ~KN_CREATED;
		*created = true;
		return 0;
	}

	if (flags & EV_DELETE) {
		kqe_knote_drop(q, kn);
		return 0;
	}
	/* A modify: every change but a delete replaces udata (EV_ENABLE and
	 * NOTE_TRIGGER too) unless EV_KEEPUDATA; stored flags stay.  udata is
	 * replaced only once the filter accepted the change: a failed change
	 * leaves the knote as it was (the binding releases the failed change's
	 * udata, so a knote keeping it would hand out a freed value). */
	if (f->modify) {
		int err = f->modify(q, kn, kev);
		if (err)
			return err;
	} else {
		kn->sfflags = kev->fflags;
		kn->sdata = kev->data;
	}
	if (!(flags & EV_KEEPUDATA))
		kn->udata = kev->udata;
	if (flags & EV_DISABLE)
		knote_disable(q, kn);
	if (flags & EV_ENABLE)
		knote_enable(q, kn);
	if (flags & EV_FORCEONESHOT) {
		/* FreeBSD: make it ONESHOT and queue it now; a ONESHOT knote is
		 * delivered from its stored state even if idle. */
		kn->flags |= EV_ONESHOT;
		kn->status |= KN_ACTIVE;
		if (kn->status & KN_ENABLED)
			kqe_ready_push(q, kn);
	}
	return 0;
}

static void error_entry(struct kevent *out, const struct kevent *kev, int err, bool created)
{
	*out = *kev;
	out->flags = EV_ERROR;
	out->data = err;
	/* FreeBSD returns the change's fflags, except 0 when the change made
	 * (or failed to make) a knote, and only the user bits of a USER modify. */
	if (created || (err && (kev->flags & EV_ADD)))
		out->fflags = 0;
	else if (kev->filter == EVFILT_USER)
		out->fflags = kev->fflags & NOTE_FFLAGSMASK;
}

/* ---- collecting events -------------------------------------------------- */

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
		rev->status &= ~KN_REQUEUE;
		rev->rnext = NULL;
		if ((rev->status & (KN_ACTIVE | KN_ENABLED)) == (KN_ACTIVE | KN_ENABLED))
			kqe_ready_push(q, rev);
		rev = next;
	}
}

static int drain_ready(struct kqe_queue *q, struct kevent *out, int nevents, int n)
{
	struct knote *kn;
	while (n < nevents && (kn = kqe_ready_pop(q)) != NULL) {
		const struct kqe_filter *f = kqe_filters[-kn->filter];
		if (kn->delivered_call == q->call_serial) {
			/* Delivered already in this call and active again (a
			 * timer expiring meanwhile): once per call, as FreeBSD's
			 * scan; back on the tail when the collection ends. */
			kn->status |= KN_REQUEUE;
			kn->rnext = q->requeue;
			q->requeue = kn;
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
		pthread_mutex_unlock(&q->lock);
		m = wait_epoll(epfd, buf, cap, tp);
		err = errno;
		pthread_mutex_lock(&q->lock);
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
	int n = *np; /* a local: no store and reload around each call */
	for (int i = 0; i < m; i++) {
		uint64_t u = buf[i].data.u64;
		switch (KQE_TAG_OF(u)) {
		case TAG_FD: {
			/* The run of descriptor results that starts here. */
			int taken;
			n += kqe_fd_results(q, buf + i, m - i, out + n, nevents - n, &taken);
			i += taken - 1;
			break;
		}
		case TAG_EDGE:
			n += kqe_edge_results(q, out + n, nevents - n);
			break;
		case TAG_WAKE:
			wake_consume(q);
			break;
		case TAG_TIMER:
			kqe_timers_expire(q, true);
			break;
		case TAG_SIGNAL:
			kqe_signals_scan(q);
			break;
		case TAG_INOTIFY:
			kqe_inotify_read(q);
			break;
		case TAG_PROC:
			kqe_proc_result(q, (pid_t)KQE_VAL_OF(u));
			break;
		}
	}
	*np = n;
	if (own)
		q->evbuf_busy = false;
	if (m < 0) {
		errno = err;
		return -1;
	}
	return m;
}

/* Sources that need a look before each collection, all without syscalls
 * unless something is due. */
static void poll_userspace_sources(struct kqe_queue *q)
{
	if (q->siglist && kqe_signals_changed(q))
		kqe_signals_scan(q);
	if (q->tcount)
		kqe_timers_expire(q, false);
	if (q->filelist)
		kqe_files_poll(q);
	if (q->unconn)
		kqe_unconn_poll(q);
}

static int collect(struct kqe_queue *q, struct kevent *out, int nevents,
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
		poll_userspace_sources(q);
		n = drain_ready(q, out, nevents, n);
		if (n < nevents) {
			int64_t wait_ns = 0;
			if (n == 0) {
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
		if (n > 0)
			return n;
		/* A wait never ends early, and a NULL timeout never returns 0:
		 * when every candidate proved stale, wait again. */
		if (deadline >= 0 && kqe_now() >= deadline)
			return 0;
	}
}

/* READ data of a kqueue watched by another: the number of events queued,
 * once what its epoll holds has been moved into its ready list. */
int kqe_queue_pending(struct kqe_queue *q)
{
	pthread_mutex_lock(&q->lock);
	poll_userspace_sources(q);
	int n = 0;
	struct kevent none; /* no room: results go to the ready list */
	if (!q->closed)
		(void)epoll_collect(q, &none, 0, &n, 0);
	int pending = (int)q->nready;
	pthread_mutex_unlock(&q->lock);
	return pending;
}

/* kevent() that also says where change processing stopped: *napplied is
 * the number of changes fully processed (the failing one excluded, a
 * receipt that stopped for want of room included). */
static int kevent_counted(int kq, const struct kevent *changelist, int nchanges,
			  struct kevent *eventlist, int nevents,
			  const struct timespec *timeout, int *napplied)
{
	*napplied = 0;
	struct kqe_queue *q = kqe_queue_get(kq);
	if (q == NULL) {
		errno = EBADF;
		return -1;
	}
	if (nchanges < 0 || (nchanges > 0 && changelist == NULL)) {
		kqe_queue_put(q);
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&q->lock);
	int nerr = 0, result = 0, err = 0;
	for (int i = 0; i < nchanges; i++, *napplied = i) {
		/* Copy first: the caller may pass one array as both lists. */
		struct kevent kev = changelist[i];
		if (kev.filter == 0)
			continue; /* FreeBSD skips such a change */
		bool created;
		int e = apply_change(q, &kev, &created);
		bool receipt = (kev.flags & EV_RECEIPT) != 0;
		if (e == 0 && !receipt)
			continue;
		if (nerr < nevents && eventlist) {
			error_entry(&eventlist[nerr++], &kev, e, created);
			continue;
		}
		if (e) {
			/* No room: fail at once; later changes are not applied. */
			err = e;
			result = -1;
		} else {
			*napplied = i + 1;
		}
		/* A receipt without room stops processing too; kq returns the
		 * entries written so far (semantics §2.2, kq decision). */
		goto done;
	}
	if (nerr > 0) {
		result = nerr; /* error entries: returned at once, no events */
		goto done;
	}
	if (nevents == 0)
		goto done; /* the timeout is ignored, not even validated */
	if (nevents < 0 || eventlist == NULL ||
	    (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 ||
			 timeout->tv_nsec >= 1000000000))) {
		err = EINVAL;
		result = -1;
		goto done;
	}
	result = collect(q, eventlist, nevents, timeout);
	if (result < 0)
		err = errno;
done:
	if (result == 0 && nerr > 0)
		result = nerr;
	pthread_mutex_unlock(&q->lock);
	kqe_queue_put(q);
	if (result < 0)
		errno = err;
	return result;
}

int kqe_kevent(int kq, const struct kevent *changelist, int nchanges,
	       struct kevent *eventlist, int nevents, const struct timespec *timeout)
{
	int napplied;
	return kevent_counted(kq, changelist, nchanges, eventlist, nevents, timeout,
			      &napplied);
}

int kqe_kevent_counted(int kq, const struct kevent *changelist, int nchanges, int *napplied)
{
	return kevent_counted(kq, changelist, nchanges, NULL, 0, NULL, napplied);
}
