/*
 * longrun_test.c - what a server running for days meets, checked on the
 * engine's C API with real descriptors and processes (issue #10):
 *
 *   - strays: a watched descriptor closed here while a fork child (or a
 *     dup) keeps its file open, its number then reused.  epoll keeps the
 *     old registration, which must neither be delivered nor make an idle
 *     wait spin.  The engine's epoll waits are counted through the linker
 *     (-Wl,--wrap=epoll_wait,--wrap=epoll_pwait2; tests/c/Makefile), so an
 *     idle wait is checked by how many times it woke, not by a clock.
 *   - counters next to their limit: the 16-bit collection serial and the
 *     24-bit descriptor generation are set just below their wrap through
 *     the queue's state (queue.h), and events must keep coming exactly
 *     once per call across it.
 *   - two threads adding two queues into each other at once: one gets its
 *     error, both return (under ThreadSanitizer in check-threads).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/queue.h"
#include "../support/fdcount.h"

static int failures;

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: FAIL: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		failures++;						\
	}								\
} while (0)

/* ---- counting the engine's epoll waits ------------------------------------ */

static long waits;

int __real_epoll_wait(int epfd, struct epoll_event *ev, int n, int ms);
int __wrap_epoll_wait(int epfd, struct epoll_event *ev, int n, int ms);
int __real_epoll_pwait2(int epfd, struct epoll_event *ev, int n, const struct timespec *ts,
			const sigset_t *mask);
int __wrap_epoll_pwait2(int epfd, struct epoll_event *ev, int n, const struct timespec *ts,
			const sigset_t *mask);

int __wrap_epoll_wait(int epfd, struct epoll_event *ev, int n, int ms)
{
	__atomic_add_fetch(&waits, 1, __ATOMIC_RELAXED);
	return __real_epoll_wait(epfd, ev, n, ms);
}

int __wrap_epoll_pwait2(int epfd, struct epoll_event *ev, int n, const struct timespec *ts,
			const sigset_t *mask)
{
	__atomic_add_fetch(&waits, 1, __ATOMIC_RELAXED);
	return __real_epoll_pwait2(epfd, ev, n, ts, mask);
}

/* ---- helpers ------------------------------------------------------------------ */

static const struct timespec zero = { 0, 0 };
static const struct timespec idle = { 0, 200000000 }; /* 0.2 s */
static const struct timespec longwait = { 20, 0 };    /* only on a lost event */

static int change(int kq, uintptr_t ident, short filter, unsigned short flags, unsigned fflags,
		  void *udata)
{
	struct kevent ev;
	EV_SET(&ev, ident, filter, flags, fflags, 0, udata);
	return kqe_kevent(kq, &ev, 1, NULL, 0, NULL);
}

/* An idle wait of 0.2 s: no event, and at most a few epoll waits. */
static void check_idle(int kq, const char *what)
{
	struct kevent ev[4];
	long before = __atomic_load_n(&waits, __ATOMIC_RELAXED);
	int n = kqe_kevent(kq, NULL, 0, ev, 4, &idle);
	long woke = __atomic_load_n(&waits, __ATOMIC_RELAXED) - before;
	CHECK(n == 0, "%s: %d events (ident %lu)", what, n, n > 0 ? (unsigned long)ev[0].ident : 0UL);
	/* One wait, one more after the rebuild that drops a stray. */
	CHECK(woke <= 4, "%s: an idle wait woke %ld times", what, woke);
}

/* A child that keeps its copies of the descriptors until told to go. */
static pid_t keeper(int *tell)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		close(p[1]);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(p[0]);
	*tell = p[1];
	return pid;
}

/* A new socket pair with one end on number `at': returns the peer. */
static int pair_at(int at)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	if (sv[1] == at) {
		int t = sv[0];
		sv[0] = sv[1];
		sv[1] = t;
	}
	if (sv[0] != at) {
		if (dup3(sv[0], at, O_CLOEXEC) < 0)
			return -1;
		close(sv[0]);
	}
	return sv[1];
}

static void keeper_done(pid_t pid, int tell)
{
	close(tell);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

/* ---- strays ------------------------------------------------------------------ */

/* The parent closes its copy of a watched socket that a fork child keeps,
 * without EV_DELETE (as FreeBSD allows), and reuses the number. */
static void test_fork_close_reuse(bool exposed, bool write_too)
{
	const char *what = exposed ? "fork, exposed queue" : "fork";
	int kq = kqe_kqueue();
	CHECK(kq >= 0, "kqueue: %s", strerror(errno));
	if (exposed)
		kqe_expose(kq);
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	int a = sv[0], b = sv[1];
	CHECK(change(kq, (uintptr_t)a, EVFILT_READ, EV_ADD, 0, NULL) == 0, "add READ");
	if (write_too)
		CHECK(change(kq, (uintptr_t)a, EVFILT_WRITE, EV_ADD, 0, NULL) == 0, "add WRITE");
	int tell = -1;
	pid_t pid = keeper(&tell);
	CHECK(pid > 0, "fork");
	close(a); /* the child keeps its copy: epoll keeps the registration */
	/* The old file becomes ready: nothing may be delivered for a closed
	 * number (FreeBSD dropped the knotes at close). */
	CHECK(write(b, "x", 1) == 1, "write");
	check_idle(kq, what);
	/* The number reused by another socket, registered.  (Unless the
	 * engine took that free number meanwhile, for an exposed queue's new
	 * epoll: then another number.) */
	int a2 = a, peer;
	if (fcntl(a, F_GETFD) < 0) {
		peer = pair_at(a);
	} else {
		int sv2[2];
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv2) == 0, "pair");
		a2 = sv2[0], peer = sv2[1];
	}
	CHECK(peer >= 0, "number %d not reused", a);
	CHECK(change(kq, (uintptr_t)a2, EVFILT_READ, EV_ADD, 0, (void *)1) == 0, "add READ again");
	CHECK(write(b, "y", 1) == 1, "write again");
	check_idle(kq, what);
	/* The new file's events come, once each call, with its udata. */
	CHECK(write(peer, "z", 1) == 1, "write new");
	struct kevent ev[4];
	int n = kqe_kevent(kq, NULL, 0, ev, 4, &longwait);
	CHECK(n == 1 && ev[0].ident == (uintptr_t)a2 && ev[0].udata == (void *)1 && ev[0].data == 1,
	      "%s: new socket: n %d", what, n);
	if (exposed) {
		/* Seen from outside, the queue still tells of its events. */
		CHECK(change(kq, 7, EVFILT_USER, EV_ADD | EV_CLEAR, 0, NULL) == 0, "user");
		CHECK(change(kq, 7, EVFILT_USER, 0, NOTE_TRIGGER, NULL) == 0, "trigger");
		struct epoll_event pe;
		int p = epoll_create1(EPOLL_CLOEXEC);
		pe.events = EPOLLIN;
		pe.data.u64 = 0;
		CHECK(epoll_ctl(p, EPOLL_CTL_ADD, kq, &pe) == 0, "outside poll: %s", strerror(errno));
		CHECK(__real_epoll_wait(p, &pe, 1, 20000) == 1, "queue not readable from outside");
		close(p);
	}
	keeper_done(pid, tell);
	close(a2);
	close(peer);
	close(b);
	CHECK(kqe_close(kq) == 0, "close");
}

/* The same with a dup instead of a child. */
static void test_dup_close_reuse(void)
{
	int kq = kqe_kqueue();
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	int a = sv[0], b = sv[1];
	CHECK(change(kq, (uintptr_t)a, EVFILT_WRITE, EV_ADD, 0, NULL) == 0, "add WRITE");
	int keep = dup(a);
	close(a);
	int a2 = a, peer = pair_at(a);
	CHECK(peer >= 0, "number not reused");
	/* An EV_DELETE on the number: the old knote goes (ENOENT: it named
	 * another file), its registration stays with the dup's file. */
	errno = 0;
	CHECK(change(kq, (uintptr_t)a2, EVFILT_WRITE, EV_DELETE, 0, NULL) < 0 &&
	      (errno == ENOENT || errno == EBADF), "delete: errno %d", errno);
	check_idle(kq, "dup");
	close(keep);
	close(a2);
	close(peer);
	close(b);
	CHECK(kqe_close(kq) == 0, "close");
}

/* ---- counters next to their limit -------------------------------------------- */

static void set_state(int kq, uint16_t serial, uint32_t fdgen)
{
	struct kqe_queue *q = kqe_queue_get(kq);
	kqe_queue_lock(q);
	q->call_serial = serial;
	q->fdgen = fdgen;
	kqe_queue_unlock(q);
	kqe_queue_put(q);
}

static void test_wraps(void)
{
	int kq = kqe_kqueue();
	int sv[2], sv2[2];
	/* The generation: the next kqe_fd gets 0xffffff, then 0. */
	set_state(kq, 0xfff0, 0xffffff);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv2) == 0, "socketpair");
	CHECK(change(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD, 0, (void *)1) == 0, "level");
	CHECK(change(kq, (uintptr_t)sv2[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, (void *)2) == 0,
	      "clear");
	CHECK(change(kq, 9, EVFILT_USER, EV_ADD | EV_CLEAR, 0, (void *)3) == 0, "user");
	CHECK(write(sv[1], "x", 1) == 1, "write");
	struct kevent ev[8];
	/* Across the serial's wrap: the level knote every call, the USER and
	 * EV_CLEAR ones exactly when fired. */
	for (int call = 0; call < 64; call++) {
		bool fire = call % 3 == 0;
		if (fire) {
			CHECK(change(kq, 9, EVFILT_USER, 0, NOTE_TRIGGER, (void *)3) == 0, "trigger");
			CHECK(write(sv2[1], "y", 1) == 1, "write clear");
		}
		int n = kqe_kevent(kq, NULL, 0, ev, 8, fire ? &longwait : &zero);
		int level = 0, user = 0, clear = 0;
		for (int i = 0; i < n; i++) {
			level += ev[i].udata == (void *)1;
			clear += ev[i].udata == (void *)2;
			user += ev[i].udata == (void *)3;
		}
		CHECK(level == 1, "call %d: level knote %d times", call, level);
		CHECK(user == (fire ? 1 : 0), "call %d: USER %d times", call, user);
		if (fire) {
			/* An edge may come in a later call, never twice. */
			if (clear == 0)
				clear = kqe_kevent(kq, NULL, 0, ev, 8, &longwait) > 0;
			CHECK(clear == 1, "call %d: EV_CLEAR %d times", call, clear);
		}
	}
	close(sv[0]), close(sv[1]), close(sv2[0]), close(sv2[1]);
	CHECK(kqe_close(kq) == 0, "close");
}

/* ---- wake-ups at the descriptor limit ------------------------------------------ */

struct waiter {
	int kq, n, err;
	const struct timespec *ts;
};

static void *wait_one(void *p)
{
	struct waiter *w = p;
	struct kevent ev[2];
	w->n = kqe_kevent(w->kq, NULL, 0, ev, 2, w->ts);
	w->err = errno;
	return NULL;
}

/* Wait until the thread blocks in the queue's epoll wait. */
static void until_waiting(int kq)
{
	for (;;) {
		struct kqe_queue *q = kqe_queue_get(kq);
		if (q == NULL)
			return;
		kqe_queue_lock(q);
		int n = q->nwaiters;
		kqe_queue_unlock(q);
		kqe_queue_put(q);
		if (n > 0)
			return;
		struct timespec pause = { 0, 1000000 };
		nanosleep(&pause, NULL);
	}
}

static void test_wakes_at_limit(void)
{
	struct rlimit old, lim;
	getrlimit(RLIMIT_NOFILE, &old);
	int kq = kqe_kqueue();
	CHECK(change(kq, 1, EVFILT_USER, EV_ADD | EV_CLEAR, 0, NULL) == 0, "user");
	lim = old;
	lim.rlim_cur = (rlim_t)kq_fdcount() + 8;
	setrlimit(RLIMIT_NOFILE, &lim);
	/* Every number below the limit taken: none is left. */
	int spare[64], nspare = 0;
	while (nspare < 64 && (spare[nspare] = dup(0)) >= 0)
		nspare++;
	CHECK(nspare < 64 && errno == EMFILE, "descriptors not used up");
	/* Another thread's trigger wakes a waiter with no timeout. */
	struct waiter w = { kq, 0, 0, NULL };
	pthread_t t;
	pthread_create(&t, NULL, wait_one, &w);
	until_waiting(kq);
	CHECK(change(kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, NULL) == 0, "trigger at the limit");
	pthread_join(t, NULL);
	CHECK(w.n == 1, "waiter woken by a trigger at the limit: n %d errno %d", w.n, w.err);
	/* Closing the queue wakes a waiter with no timeout: EBADF. */
	w.n = 0;
	pthread_create(&t, NULL, wait_one, &w);
	until_waiting(kq);
	CHECK(kqe_close(kq) == 0, "close at the limit");
	pthread_join(t, NULL);
	CHECK(w.n < 0 && w.err == EBADF, "waiter after close: n %d errno %d", w.n, w.err);
	while (nspare > 0)
		close(spare[--nspare]);
	setrlimit(RLIMIT_NOFILE, &old);
}

/* ---- two queues into each other, at once ---------------------------------------- */

struct pair_arg {
	int from, to, result, err;
	pthread_barrier_t *go;
};

static void *add_nested(void *p)
{
	struct pair_arg *a = p;
	struct kevent ev;
	EV_SET(&ev, (uintptr_t)a->to, EVFILT_READ, EV_ADD, 0, 0, NULL);
	pthread_barrier_wait(a->go);
	a->result = kqe_kevent(a->from, &ev, 1, NULL, 0, NULL);
	a->err = errno;
	return NULL;
}

static void test_cross_nesting(void)
{
	for (int round = 0; round < 200; round++) {
		int q1 = kqe_kqueue(), q2 = kqe_kqueue();
		pthread_barrier_t go;
		pthread_barrier_init(&go, NULL, 2);
		struct pair_arg a = { q1, q2, 0, 0, &go }, b = { q2, q1, 0, 0, &go };
		pthread_t ta, tb;
		pthread_create(&ta, NULL, add_nested, &a);
		pthread_create(&tb, NULL, add_nested, &b);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		pthread_barrier_destroy(&go);
		int ok = (a.result == 0) + (b.result == 0);
		CHECK(ok == 1, "round %d: %d of 2 succeeded", round, ok);
		int failed = a.result < 0 ? a.err : b.err;
		CHECK(failed == EINVAL, "round %d: the other got errno %d", round, failed);
		kqe_close(q1);
		kqe_close(q2);
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	int fds_before = kq_fdcount();
	test_fork_close_reuse(false, false);
	printf("%s: fork, close, reuse\n", failures ? "FAIL" : "ok");
	int f = failures;
	test_fork_close_reuse(false, true);
	printf("%s: fork, close, reuse (READ and WRITE)\n", failures > f ? "FAIL" : "ok");
	f = failures;
	test_fork_close_reuse(true, true);
	printf("%s: fork, close, reuse, queue watched from outside\n", failures > f ? "FAIL" : "ok");
	f = failures;
	test_dup_close_reuse();
	printf("%s: dup, close, reuse\n", failures > f ? "FAIL" : "ok");
	f = failures;
	test_wraps();
	printf("%s: the collection serial and descriptor generation at their wrap\n",
	       failures > f ? "FAIL" : "ok");
	f = failures;
	test_wakes_at_limit();
	printf("%s: a waiter woken by a trigger and by close at the descriptor limit\n",
	       failures > f ? "FAIL" : "ok");
	f = failures;
	test_cross_nesting();
	printf("%s: two threads nesting two queues into each other\n", failures > f ? "FAIL" : "ok");
	CHECK(kq_fdcount() == fds_before, "descriptors %d, were %d", kq_fdcount(), fds_before);
	printf("longrun_test: %d failure(s)\n", failures);
	return failures ? 1 : 0;
}
