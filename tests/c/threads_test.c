/*
 * threads_test.c - the engine shared by OS threads (run under
 * ThreadSanitizer by tests/c/Makefile, and under ASan).
 *
 * One thread waits in kqe_kevent() while others add, delete, trigger and
 * close; a change that makes an event ready must wake the waiter, including
 * an EVFILT_USER NOTE_TRIGGER sent to a waiter blocked with a NULL timeout.
 * "Blocked" is made certain, not guessed with sleeps: the test watches the
 * queue's waiter count (queue.h) before acting.
 *
 * No elapsed time is asserted.  A watchdog (alarm) turns a hang into a
 * failure after WATCHDOG seconds.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/queue.h"

#define WATCHDOG 120

static int failures;

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: FAIL: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		failures++;						\
	}								\
} while (0)

static const struct timespec zero_ts = { 0, 0 };

static void nap(void)
{
	struct timespec ts = { 0, 1000000 }; /* 1 ms: polling, not timing */
	nanosleep(&ts, NULL);
}

/* Spin until `n` threads are blocked in the queue's wait. */
static void wait_for_waiters(int kq, int n)
{
	for (;;) {
		struct kqe_queue *q = kqe_queue_get(kq);
		if (q == NULL)
			return;
		pthread_mutex_lock(&q->lock);
		int w = q->nwaiters;
		pthread_mutex_unlock(&q->lock);
		kqe_queue_put(q);
		if (w >= n)
			return;
		nap();
	}
}

static int change(int kq, uintptr_t ident, short filter, unsigned short flags,
		  unsigned fflags, int64_t data, void *udata)
{
	struct kevent ev;
	EV_SET(&ev, ident, filter, flags, fflags, data, udata);
	return kqe_kevent(kq, &ev, 1, NULL, 0, NULL);
}

/* ---- a waiter thread --------------------------------------------------- */

struct waiter {
	pthread_t th;
	int kq;
	const struct timespec *timeout;
	int n;               /* result */
	int err;
	struct kevent ev[8];
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	errno = 0;
	w->n = kqe_kevent(w->kq, NULL, 0, w->ev, 8, w->timeout);
	w->err = errno;
	return NULL;
}

static void start_waiter(struct waiter *w, int kq, const struct timespec *timeout)
{
	memset(w, 0, sizeof *w);
	w->kq = kq;
	w->timeout = timeout;
	if (pthread_create(&w->th, NULL, waiter_main, w) != 0) {
		perror("pthread_create");
		exit(2);
	}
}

/* ---- the cases ----------------------------------------------------------- */

/* NOTE_TRIGGER from another thread wakes a waiter blocked with no timeout. */
static void test_user_trigger_wakes(void)
{
	int kq = kqe_kqueue();
	CHECK(kq >= 0, "kqueue: %s", strerror(errno));
	CHECK(change(kq, 7, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, (void *)0x77) == 0, "add");
	struct waiter w;
	start_waiter(&w, kq, NULL);
	wait_for_waiters(kq, 1);
	CHECK(change(kq, 7, EVFILT_USER, 0, NOTE_TRIGGER | NOTE_FFCOPY | 5, 0, (void *)0x77) == 0,
	      "trigger");
	pthread_join(w.th, NULL);
	CHECK(w.n == 1, "n %d errno %d", w.n, w.err);
	CHECK(w.ev[0].ident == 7 && w.ev[0].filter == EVFILT_USER && w.ev[0].fflags == 5 &&
	      w.ev[0].udata == (void *)0x77, "event %lu %d 0x%x", (unsigned long)w.ev[0].ident,
	      w.ev[0].filter, w.ev[0].fflags);
	kqe_close(kq);
}

/* A knote added by another thread while one waits: a timer that fires,
 * data on a pipe watched from then on. */
static void test_add_wakes(void)
{
	int kq = kqe_kqueue();
	struct waiter w;
	start_waiter(&w, kq, NULL);
	wait_for_waiters(kq, 1);
	CHECK(change(kq, 1, EVFILT_TIMER, EV_ADD | EV_ONESHOT, NOTE_MSECONDS, 5, NULL) == 0,
	      "timer add: %s", strerror(errno));
	pthread_join(w.th, NULL);
	CHECK(w.n == 1 && w.ev[0].filter == EVFILT_TIMER && w.ev[0].data == 1,
	      "timer: n %d errno %d", w.n, w.err);

	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	start_waiter(&w, kq, NULL);
	wait_for_waiters(kq, 1);
	CHECK(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_ADD, 0, 0, NULL) == 0, "read add");
	CHECK(write(p[1], "abc", 3) == 3, "write");
	pthread_join(w.th, NULL);
	CHECK(w.n == 1 && w.ev[0].filter == EVFILT_READ && (int)w.ev[0].ident == p[0] &&
	      w.ev[0].data == 3, "read: n %d data %lld", w.n, (long long)w.ev[0].data);
	kqe_close(kq);
	close(p[0]);
	close(p[1]);
}

/* Deleting and disabling from another thread: the waiter never gets an
 * event of a knote gone or disabled before the condition arose. */
static void test_delete_disable_while_waiting(void)
{
	int kq = kqe_kqueue();
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	CHECK(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_ADD, 0, 0, NULL) == 0, "add");
	CHECK(change(kq, 1, EVFILT_USER, EV_ADD, 0, 0, NULL) == 0, "add user 1");
	CHECK(change(kq, 2, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL) == 0, "add user 2");
	struct waiter w;
	start_waiter(&w, kq, NULL);
	wait_for_waiters(kq, 1);
	CHECK(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_DELETE, 0, 0, NULL) == 0, "delete");
	CHECK(change(kq, 1, EVFILT_USER, EV_DISABLE, 0, 0, NULL) == 0, "disable");
	CHECK(write(p[1], "x", 1) == 1, "write");
	CHECK(change(kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL) == 0, "trigger disabled");
	CHECK(change(kq, 2, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL) == 0, "trigger 2");
	pthread_join(w.th, NULL);
	CHECK(w.n == 1 && w.ev[0].ident == 2 && w.ev[0].filter == EVFILT_USER,
	      "n %d first ident %lu filter %d", w.n, (unsigned long)w.ev[0].ident, w.ev[0].filter);
	/* The disabled knote kept its trigger: EV_ENABLE delivers it. */
	CHECK(change(kq, 1, EVFILT_USER, EV_ENABLE, 0, 0, NULL) == 0, "enable");
	struct kevent ev[4];
	int n = kqe_kevent(kq, NULL, 0, ev, 4, &zero_ts);
	CHECK(n == 1 && ev[0].ident == 1, "after enable n %d", n);
	kqe_close(kq);
	close(p[0]);
	close(p[1]);
}

/* Closing the queue while a thread waits in it: the waiter gets EBADF. */
static void test_close_while_waiting(void)
{
	int kq = kqe_kqueue();
	CHECK(change(kq, 1, EVFILT_USER, EV_ADD, 0, 0, NULL) == 0, "add");
	struct waiter w;
	start_waiter(&w, kq, NULL);
	wait_for_waiters(kq, 1);
	CHECK(kqe_close(kq) == 0, "close: %s", strerror(errno));
	pthread_join(w.th, NULL);
	CHECK(w.n == -1 && w.err == EBADF, "n %d errno %d", w.n, w.err);
	errno = 0;
	CHECK(kqe_kevent(kq, NULL, 0, w.ev, 1, &zero_ts) == -1 && errno == EBADF, "after close");
}

/* A watched descriptor closed while another thread waits: the wait goes
 * on (nothing to report), a trigger still wakes it, no event ever comes
 * from the closed pipe, a change on the closed number gives EBADF, and a
 * new pipe on the same number starts clean. */
static void test_fd_closed_while_waiting(void)
{
	int kq = kqe_kqueue();
	int p[2];
	CHECK(pipe(p) == 0, "pipe");
	CHECK(change(kq, (uintptr_t)p[0], EVFILT_READ, EV_ADD, 0, 0, (void *)1) == 0, "add");
	CHECK(change(kq, 9, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL) == 0, "add user");
	struct waiter w;
	/* A first wake makes the engine's wake descriptor now, so that it
	 * cannot take the number closed below. */
	start_waiter(&w, kq, NULL);
	wait_for_waiters(kq, 1);
	CHECK(change(kq, 9, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL) == 0, "trigger");
	pthread_join(w.th, NULL);
	CHECK(w.n == 1, "first wake n %d", w.n);
	start_waiter(&w, kq, NULL);
	wait_for_waiters(kq, 1);
	int rfd = p[0];
	close(p[0]);
	close(p[1]);
	CHECK(change(kq, 9, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL) == 0, "trigger");
	pthread_join(w.th, NULL);
	CHECK(w.n == 1 && w.ev[0].filter == EVFILT_USER, "n %d filter %d", w.n, w.ev[0].filter);
	errno = 0;
	CHECK(change(kq, (uintptr_t)rfd, EVFILT_READ, EV_ENABLE, 0, 0, NULL) == -1 &&
	      errno == EBADF, "enable on closed fd: errno %d", errno);
	int q[2];
	CHECK(pipe(q) == 0, "pipe 2");
	CHECK(q[0] == rfd || q[1] == rfd, "number reused (%d %d, was %d)", q[0], q[1], rfd);
	errno = 0;
	CHECK(change(kq, (uintptr_t)rfd, EVFILT_READ, EV_DELETE, 0, 0, NULL) == -1 &&
	      errno == ENOENT, "old knote gone: errno %d", errno);
	struct kevent ev[4];
	CHECK(kqe_kevent(kq, NULL, 0, ev, 4, &zero_ts) == 0, "no stale event");
	kqe_close(kq);
	close(q[0]);
	close(q[1]);
}

/* ---- stress: many threads on one queue ----------------------------------- */

#define NTHREADS 4
#define ROUNDS 3000

static int stress_kq;
static atomic_int stress_stop;
static atomic_long delivered;
static atomic_int hits_ok = 1;

static void *stress_changer(void *arg)
{
	long id = (long)arg;
	unsigned seed = (unsigned)id * 2654435761u;
	int p[2];
	if (pipe(p) != 0)
		return NULL;
	for (int i = 0; i < ROUNDS; i++) {
		seed = seed * 1103515245 + 12345;
		uintptr_t ident = 100 * (uintptr_t)id + (seed >> 16) % 8;
		int r;
		switch ((seed >> 8) % 9) {
		case 0: r = change(stress_kq, ident, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL); break;
		case 1: r = change(stress_kq, ident, EVFILT_USER, EV_DELETE, 0, 0, NULL); break;
		case 2: case 3:
			r = change(stress_kq, ident, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL); break;
		case 4: r = change(stress_kq, ident, EVFILT_USER, EV_DISABLE, 0, 0, NULL); break;
		case 5: r = change(stress_kq, ident, EVFILT_USER, EV_ENABLE, 0, 0, NULL); break;
		case 6:
			r = change(stress_kq, ident, EVFILT_TIMER, EV_ADD | EV_ONESHOT, NOTE_USECONDS,
				   (seed >> 4) % 200, NULL);
			break;
		case 7:
			r = change(stress_kq, (uintptr_t)p[0], EVFILT_READ,
				   (seed & 1) ? EV_ADD : EV_DELETE, 0, 0, NULL);
			if (write(p[1], "s", 1) != 1) {
				char buf[256];
				if (read(p[0], buf, sizeof buf) < 0) {
					/* drained by nobody: fine */
				}
			}
			break;
		default: {
			struct kevent ev[4];
			r = kqe_kevent(stress_kq, NULL, 0, ev, 4, &zero_ts);
			if (r > 0)
				atomic_fetch_add(&delivered, r);
			r = r < 0 ? -1 : 0;
			break;
		}
		}
		if (r < 0 && errno != ENOENT)
			atomic_store(&hits_ok, 0);
	}
	struct kevent ev;
	EV_SET(&ev, (uintptr_t)p[0], EVFILT_READ, EV_DELETE, 0, 0, NULL);
	(void)kqe_kevent(stress_kq, &ev, 1, NULL, 0, NULL);
	close(p[0]);
	close(p[1]);
	return NULL;
}

static void *stress_waiter(void *arg)
{
	(void)arg;
	while (!atomic_load(&stress_stop)) {
		struct kevent ev[16];
		int n = kqe_kevent(stress_kq, NULL, 0, ev, 16, NULL);
		if (n < 0) {
			atomic_store(&hits_ok, 0);
			break;
		}
		atomic_fetch_add(&delivered, n);
	}
	return NULL;
}

static void test_stress(void)
{
	stress_kq = kqe_kqueue();
	CHECK(change(stress_kq, 1, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL) == 0, "add");
	pthread_t w[2], c[NTHREADS];
	for (int i = 0; i < 2; i++)
		pthread_create(&w[i], NULL, stress_waiter, NULL);
	for (long i = 0; i < NTHREADS; i++)
		pthread_create(&c[i], NULL, stress_changer, (void *)(i + 1));
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(c[i], NULL);
	/* Release both waiters: each trigger wakes one; repeat until gone. */
	atomic_store(&stress_stop, 1);
	for (int i = 0; i < 2; i++) {
		for (;;) {
			change(stress_kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 20000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			if (pthread_timedjoin_np(w[i], NULL, &ts) == 0)
				break;
		}
	}
	CHECK(atomic_load(&hits_ok), "a change failed with an unexpected errno");
	CHECK(atomic_load(&delivered) > 0, "nothing delivered");
	/* The queue is still consistent and usable. */
	struct kqe_queue *q = kqe_queue_get(stress_kq);
	pthread_mutex_lock(&q->lock);
	size_t n = 0;
	for (struct knote *kn = q->rhead; kn; kn = kn->rnext)
		n++;
	CHECK(n == q->nready, "ready list %zu, nready %zu", n, q->nready);
	CHECK(q->nwaiters == 0 && !q->evbuf_busy, "busy state left");
	pthread_mutex_unlock(&q->lock);
	kqe_queue_put(q);
	CHECK(change(stress_kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL) == 0, "trigger");
	struct kevent ev[64];
	int got = 0, r;
	while ((r = kqe_kevent(stress_kq, NULL, 0, ev, 64, &zero_ts)) > 0)
		for (int i = 0; i < r; i++)
			got += ev[i].ident == 1 && ev[i].filter == EVFILT_USER;
	CHECK(got == 1, "final trigger delivered %d times", got);
	kqe_close(stress_kq);
}

/* Many threads opening, using and closing queues at once. */
static void *queue_churn(void *arg)
{
	(void)arg;
	for (int i = 0; i < 300; i++) {
		int kq = kqe_kqueue();
		if (kq < 0) {
			atomic_store(&hits_ok, 0);
			continue;
		}
		change(kq, 1, EVFILT_USER, EV_ADD, NOTE_TRIGGER, 0, NULL);
		change(kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
		change(kq, 2, EVFILT_TIMER, EV_ADD, 0, 1000, NULL);
		struct kevent ev[2];
		if (kqe_kevent(kq, NULL, 0, ev, 2, &zero_ts) != 1)
			atomic_store(&hits_ok, 0);
		if (kqe_close(kq) != 0)
			atomic_store(&hits_ok, 0);
	}
	return NULL;
}

static void test_queue_churn(void)
{
	atomic_store(&hits_ok, 1);
	pthread_t t[NTHREADS];
	for (int i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, queue_churn, NULL);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	CHECK(atomic_load(&hits_ok), "a queue operation failed");
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "threads_test: watchdog: a wait never returned\n";
	ssize_t r = write(2, msg, sizeof msg - 1);
	(void)r;
	_exit(3);
}

int main(void)
{
	signal(SIGALRM, on_alarm);
	alarm(WATCHDOG);
	struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
		{ "user trigger wakes a NULL-timeout waiter", test_user_trigger_wakes },
		{ "a knote added by another thread wakes the waiter", test_add_wakes },
		{ "delete/disable from another thread", test_delete_disable_while_waiting },
		{ "close while a thread waits", test_close_while_waiting },
		{ "watched fd closed while a thread waits", test_fd_closed_while_waiting },
		{ "stress: changers and waiters on one queue", test_stress },
		{ "queues opened and closed by many threads", test_queue_churn },
	};
	for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		int before = failures;
		tests[i].fn();
		printf("%s: %s\n", failures == before ? "ok" : "FAIL", tests[i].name);
	}
	printf("threads_test: %d failure(s)\n", failures);
	return failures ? 1 : 0;
}
