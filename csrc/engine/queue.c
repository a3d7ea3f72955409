/*
 * queue.c - the life of a queue: the registry that maps a queue's
 * descriptor to its state, references, creation and close, fork, the wake
 * eventfd, epoll registration and the clock.  The ground floor: it calls
 * no filter (what the floors above keep is freed through q->teardown).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "queue.h"

/* ---- the registry: queue descriptor -> queue ---------------------------- */

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kqe_queue **registry;
static int registry_cap;
static int registry_count; /* the array is freed when it empties */
static uint64_t next_serial = 1;

/* A fork child's inherited queues: never used again, kept reachable so
 * that leak checkers see no loss (freeing their parts could trip over a
 * lock another thread of the parent held at the fork). */
struct orphan_link {
	struct orphan_link *next;
	struct kqe_queue *q;
};
static struct orphan_link *orphan_list;

static int registry_insert(struct kqe_queue *q)
{
	pthread_mutex_lock(&registry_lock);
	if (q->pubfd >= registry_cap) {
		int ncap = registry_cap ? registry_cap : 64;
		while (ncap <= q->pubfd)
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
	registry[q->pubfd] = q;
	registry_count++;
	/* 64 bits: at a million queues a second, 584,000 years to wrap. */
	q->serial = next_serial++;
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
	uint64_t serial = 0;
	pthread_mutex_lock(&registry_lock);
	if (fd >= 0 && fd < registry_cap && registry[fd] && !registry[fd]->closed)
		serial = registry[fd]->serial;
	pthread_mutex_unlock(&registry_lock);
	return serial;
}

/* The descriptors the ground floor made for q. */
static void close_own(struct kqe_queue *q)
{
	if (q->wakefd >= 0)
		close(q->wakefd);
	if (q->epfd >= 0)
		close(q->epfd);
	if (q->pubfd >= 0 && q->pubfd != q->epfd)
		close(q->pubfd);
	q->wakefd = q->epfd = q->pubfd = -1;
}

static void queue_free(struct kqe_queue *q)
{
	/* Nobody else can reach q now: the floors above free their parts,
	 * then the descriptors and tables owned here go. */
	if (q->teardown)
		q->teardown(q);
	close_own(q);
	free(q->htab);
	pthread_mutex_destroy(&q->wake_lock);
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

struct kqe_queue *kqe_queue_new(void (*teardown)(struct kqe_queue *q))
{
	struct kqe_queue *q = calloc(1, sizeof *q);
	if (q == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_mutex_init(&q->wake_lock, NULL);
	q->wakefd = q->timerfd = q->inotify_fd = q->edge_epfd = q->unconn = -1;
	q->refs = 1;
	q->teardown = teardown;
	q->epfd = q->pubfd = epoll_create1(EPOLL_CLOEXEC);
	int err = q->epfd < 0 ? errno : 0;
	/* The wake eventfd is made now, not when first needed: a wake-up that
	 * found no descriptor left would be lost without a word (a trigger from
	 * another thread, a close, a descriptor polled from outside), so it is
	 * kqueue() that fails with EMFILE instead. */
	if (err == 0 && (q->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		err = errno;
	if (err == 0)
		err = kqe_epoll_add(q, q->wakefd, EPOLLIN, KQE_TAG(TAG_WAKE, 0));
	if (err == 0)
		err = registry_insert(q);
	if (err) {
		q->teardown = NULL; /* nothing above was made */
		queue_free(q);
		errno = err;
		return NULL;
	}
	return q;
}

int kqe_queue_close(int kq)
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
	kqe_queue_lock(q);
	q->closed = true;
	if (q->nwaiters > 0) {
		/* A thread is about to wait, or waits, on q->epfd: wake it so it
		 * sees the queue closed and returns EBADF, and leave that number
		 * open until it has let go (the last put closes it), so that it
		 * can never wait on a number reused meanwhile.  The queue's own
		 * number, where a rebuild split them, goes now. */
		kqe_wake(q);
		if (q->pubfd != q->epfd) {
			close(q->pubfd);
			q->pubfd = -1;
		}
	} else {
		/* The number is released now, as close(2) would. */
		close(q->epfd);
		if (q->pubfd != q->epfd)
			close(q->pubfd);
		q->epfd = q->pubfd = -1;
	}
	kqe_queue_unlock(q);
	kqe_queue_put(q);
	return 0;
}

void kqe_queue_lock(struct kqe_queue *q)
{
	pthread_mutex_lock(&q->lock);
#ifdef KQE_DEBUG
	q->owner = pthread_self();
	q->owned = true;
#endif
}

void kqe_queue_unlock(struct kqe_queue *q)
{
#ifdef KQE_DEBUG
	KQE_ASSERT(kqe_queue_owned(q), "unlock of a queue this thread does not hold");
	q->owned = false;
#endif
	pthread_mutex_unlock(&q->lock);
}

#ifdef KQE_DEBUG
bool kqe_queue_owned(struct kqe_queue *q)
{
	return q->owned && pthread_equal(q->owner, pthread_self());
}

void kqe_assert_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "kq engine: assertion failed: %s (%s:%d)\n", what, file, line);
	abort();
}
#else
bool kqe_queue_owned(struct kqe_queue *q)
{
	(void)q;
	return true;
}
#endif

/* ---- fork ---------------------------------------------------------------- */

void kqe_queues_atfork_child(void (*each)(struct kqe_queue *q))
{
	/* Only this thread exists in the child: locks another thread held at
	 * the fork stay held for ever, so every lock is made anew. */
	pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
	registry_lock = fresh;
	for (int fd = 0; fd < registry_cap; fd++) {
		struct kqe_queue *q = registry[fd];
		if (q == NULL)
			continue;
		q->lock = fresh;
		q->wake_lock = fresh;
		/* The descriptors are the parent's: closing the child's copies
		 * changes nothing for the parent (no epoll_ctl is made here),
		 * and the child's table then looks as on FreeBSD, where a
		 * kqueue is not inherited. */
		if (each)
			each(q);
		close_own(q);
		q->closed = true;
		struct orphan_link *l = malloc(sizeof *l);
		if (l) {
			l->q = q;
			l->next = orphan_list;
			orphan_list = l;
		}
	}
	free(registry); /* glibc's malloc is usable again in a fork child */
	registry = NULL;
	registry_cap = 0;
	registry_count = 0;
}

/* ---- small shared helpers ---------------------------------------------- */

int64_t kqe_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no syscall */
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int kqe_epoll_add_to(int epfd, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? errno : 0;
}

int kqe_epoll_add(struct kqe_queue *q, int fd, uint32_t events, uint64_t tag)
{
	return kqe_epoll_add_to(q->epfd, fd, events, tag);
}

void kqe_queues_each(void (*fn)(struct kqe_queue *q))
{
	pthread_mutex_lock(&registry_lock);
	int n = 0;
	struct kqe_queue **all = registry_count ? malloc((size_t)registry_count * sizeof *all) : NULL;
	for (int fd = 0; all && fd < registry_cap; fd++) {
		if (registry[fd] && !registry[fd]->closed) {
			registry[fd]->refs++;
			all[n++] = registry[fd];
		}
	}
	pthread_mutex_unlock(&registry_lock);
	for (int i = 0; i < n; i++) {
		kqe_queue_lock(all[i]);
		fn(all[i]);
		kqe_queue_unlock(all[i]);
		kqe_queue_put(all[i]);
	}
	free(all);
}

/* ---- wake-ups ------------------------------------------------------------- */

/* wake_lock held.  The write fails only at a count of 2^64 - 2, which a
 * reader resets long before (one read per wake-up consumed). */
static void wake_write(struct kqe_queue *q)
{
	uint64_t one = 1;
	if (q->wakefd >= 0 && write(q->wakefd, &one, sizeof one) == sizeof one)
		__atomic_store_n(&q->wake_pending, true, __ATOMIC_RELAXED);
}

void kqe_wake(struct kqe_queue *q)
{
	pthread_mutex_lock(&q->wake_lock);
	wake_write(q);
	pthread_mutex_unlock(&q->wake_lock);
}

void kqe_wake_consume(struct kqe_queue *q)
{
	/* An exposed queue keeps the eventfd readable while events wait in the
	 * ready list; otherwise the wake has done its job. */
	pthread_mutex_lock(&q->wake_lock);
	if (!(q->exposed && __atomic_load_n(&q->nready, __ATOMIC_RELAXED) > 0)) {
		uint64_t v;
		if (read(q->wakefd, &v, sizeof v) >= 0 || errno == EAGAIN)
			__atomic_store_n(&q->wake_pending, false, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&q->wake_lock);
}

void kqe_expose_locked(struct kqe_queue *q)
{
	/* Callable with or without q->lock: one queue exposes another from
	 * under its own lock (kqread.c); only the leaf lock is taken.  A push
	 * to the ready list counts nready before it looks at `exposed' under
	 * this lock, so one of the two sides always writes the wake. */
	pthread_mutex_lock(&q->wake_lock);
	if (!q->exposed) {
		__atomic_store_n(&q->exposed, true, __ATOMIC_RELEASE);
		if (__atomic_load_n(&q->nready, __ATOMIC_RELAXED) > 0 && !q->wake_pending)
			wake_write(q);
	}
	pthread_mutex_unlock(&q->wake_lock);
}
