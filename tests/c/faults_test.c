/*
 * faults_test.c - the engine under resource faults.
 *
 * Allocation failure: the engine's calls to malloc, calloc and realloc are
 * routed through this file by the linker (-Wl,--wrap=malloc,--wrap=calloc,
 * --wrap=realloc; see tests/c/Makefile), so no test hook is compiled into
 * the engine.  A scenario touching every allocation site (queue, knote
 * table growth, fd table, epoll buffer, timer heap, registry) runs once
 * with allocation n failing, for n = 1, 2, ... until a run completes with
 * no failure injected.  Each call must either succeed or fail with ENOMEM
 * (or report the change as failed with ENOMEM); after a failure the queue
 * must be usable and show no half-applied change: a failed EV_ADD leaves
 * no knote.  ASan's leak checker (or valgrind) sees any memory lost on the
 * failure paths; descriptors are counted.
 *
 * Descriptor exhaustion: with RLIMIT_NOFILE lowered, kqe_kqueue() and the
 * changes that need a descriptor (a timer's timerfd, a process's pidfd)
 * fail with EMFILE, nothing leaks, and everything works again once the
 * limit is raised.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine/kqe.h"
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

/* ---- allocation failure injection ---------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static long alloc_count;   /* allocations seen since arming */
static long fail_at;       /* fail the fail_at-th allocation; 0 = never */
static int injected;       /* a failure was injected in this run */

static int should_fail(void)
{
	if (fail_at == 0)
		return 0;
	if (++alloc_count == fail_at) {
		injected = 1;
		return 1;
	}
	return 0;
}

void *__wrap_malloc(size_t n)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_realloc(p, n);
}

/* ---- helpers ---------------------------------------------------------------- */

static const struct timespec zero_ts = { 0, 0 };

static int change(int kq, uintptr_t ident, short filter, unsigned short flags,
		  unsigned fflags, int64_t data)
{
	struct kevent ev;
	EV_SET(&ev, ident, filter, flags, fflags, data, NULL);
	return kqe_kevent(kq, &ev, 1, NULL, 0, NULL);
}

/* Does the knote exist?  EV_DELETE answers, without allocating. */
static int knote_exists(int kq, uintptr_t ident, short filter)
{
	int saved = (int)fail_at;
	fail_at = 0;
	int r = change(kq, ident, filter, EV_DELETE, 0, 0);
	int e = errno;
	fail_at = saved;
	return r == 0 ? 1 : (e == ENOENT ? 0 : -1);
}

/*
 * A change under injection: success, or ENOMEM with no knote left behind
 * when it was an EV_ADD of a new knote.  Returns 1 if applied.
 */
static int try_add(int kq, uintptr_t ident, short filter, unsigned short flags,
		   unsigned fflags, int64_t data, const char *what)
{
	errno = 0;
	int r = change(kq, ident, filter, flags, fflags, data);
	if (r == 0)
		return 1;
	CHECK(errno == ENOMEM, "%s: errno %d (%s)", what, errno, strerror(errno));
	long saved = fail_at;
	fail_at = 0;
	CHECK(knote_exists(kq, ident, filter) == 0, "%s: failed EV_ADD left a knote", what);
	fail_at = saved;
	return 0;
}

/* ---- the allocation scenario ------------------------------------------------ */

/* Returns 0 when it ran to the end (whatever was injected). */
static void alloc_scenario(void)
{
	int kq = kqe_kqueue();
	if (kq < 0) {
		CHECK(errno == ENOMEM, "kqueue: errno %d", errno);
		return;
	}
	int sv[2], p[2];
	long saved = fail_at;
	fail_at = 0;
	int ok = socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 && pipe(p) == 0;
	fail_at = saved;
	CHECK(ok, "socketpair/pipe");
	if (!ok)
		return;

	/* Enough knotes to grow the (filter, ident) table more than once. */
	for (uintptr_t i = 0; i < 200; i++)
		try_add(kq, i, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, "user add");
	/* Timers: the heap grows past its first capacity. */
	for (uintptr_t i = 0; i < 40; i++)
		try_add(kq, i, EVFILT_TIMER, EV_ADD, NOTE_SECONDS, 100, "timer add");
	try_add(kq, 1000, EVFILT_TIMER, EV_ADD | EV_ONESHOT, NOTE_NSECONDS, 1, "timer now");
	/* Descriptors: the fd table, both directions, a high number. */
	try_add(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD, 0, 0, "read add");
	try_add(kq, (uintptr_t)sv[0], EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, "write add");
	try_add(kq, (uintptr_t)p[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, "pipe add");
	saved = fail_at;
	fail_at = 0;
	int high = dup2(p[1], 700);
	fail_at = saved;
	if (high >= 0)
		try_add(kq, (uintptr_t)high, EVFILT_WRITE, EV_ADD, 0, 0, "high fd add");
	if (write(sv[1], "hello", 5) != 5 || write(p[1], "x", 1) != 1)
		CHECK(0, "write");
	/* Triggers and collections: the epoll buffer, the ready list. */
	for (uintptr_t i = 0; i < 200; i += 7) {
		errno = 0;
		int r = change(kq, i, EVFILT_USER, 0, NOTE_TRIGGER, 0);
		CHECK(r == 0 || errno == ENOENT, "trigger: errno %d", errno);
	}
	struct kevent ev[300];
	for (int round = 0; round < 3; round++) {
		errno = 0;
		int n = kqe_kevent(kq, NULL, 0, ev, 300, &zero_ts);
		CHECK(n >= 0 || errno == ENOMEM, "collect: errno %d", errno);
		for (int i = 0; i < n; i++)
			CHECK(!(ev[i].flags & EV_ERROR), "error entry among events");
	}
	/* A batch with room: failures come back as entries, ENOMEM only. */
	struct kevent ch[8], out[8];
	for (int i = 0; i < 8; i++)
		EV_SET(&ch[i], 5000 + (uintptr_t)i, EVFILT_USER, EV_ADD | EV_RECEIPT, 0, 0, NULL);
	int n = kqe_kevent(kq, ch, 8, out, 8, &zero_ts);
	CHECK(n == 8, "receipts: %d", n);
	for (int i = 0; i < n; i++) {
		CHECK(out[i].flags == EV_ERROR && (out[i].data == 0 || out[i].data == ENOMEM),
		      "receipt %d data %lld", i, (long long)out[i].data);
		if (out[i].data == ENOMEM)
			CHECK(knote_exists(kq, out[i].ident, EVFILT_USER) == 0,
			      "failed batch EV_ADD left a knote");
	}
	/* After whatever failed, with allocation back: the queue works. */
	saved = fail_at;
	fail_at = 0;
	CHECK(change(kq, 9999, EVFILT_USER, EV_ADD, 0, 0) == 0, "add after fault");
	CHECK(change(kq, 9999, EVFILT_USER, 0, NOTE_TRIGGER, 0) == 0, "trigger after fault");
	int found = 0;
	for (int round = 0; round < 10 && !found; round++) {
		n = kqe_kevent(kq, NULL, 0, ev, 300, &zero_ts);
		for (int i = 0; i < n; i++)
			found |= ev[i].ident == 9999 && ev[i].filter == EVFILT_USER;
	}
	CHECK(found, "event after fault not delivered");
	fail_at = saved;

	CHECK(kqe_close(kq) == 0, "close");
	fail_at = 0;
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
	if (high >= 0)
		close(high);
}

static void test_alloc_failures(void)
{
	int before = kq_fdcount();
	long n;
	for (n = 1; n < 100000; n++) {
		alloc_count = 0;
		injected = 0;
		fail_at = n;
		alloc_scenario();
		fail_at = 0;
		CHECK(kq_fdcount() == before, "allocation %ld: descriptors %d, were %d", n, kq_fdcount(),
		      before);
		if (!injected)
			break;
		if (failures > 20)
			break;
	}
	printf("allocation failure injected at each of %ld allocation points\n", n - 1);
	CHECK(n > 10, "too few allocation points reached: %ld", n - 1);
}

/* ---- descriptor exhaustion ---------------------------------------------- */

static void test_emfile(void)
{
	struct rlimit old, rl;
	CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0, "getrlimit");
	int before = kq_fdcount();
	/* Room for exactly two more descriptors: fill every free number
	 * below a lowered limit with placeholders, then free two. */
	rl = old;
	rl.rlim_cur = (rlim_t)before + 64;
	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit");
	static int fillers[70000];
	int nf = 0;
	for (;;) {
		int fd = dup(2);
		if (fd < 0)
			break;
		fillers[nf++] = fd;
	}
	CHECK(nf >= 2, "placeholders %d", nf);
	close(fillers[--nf]);
	close(fillers[--nf]);

	int kqs[8], nk = 0;
	for (int i = 0; i < 8; i++) {
		errno = 0;
		int kq = kqe_kqueue();
		if (kq < 0) {
			CHECK(errno == EMFILE, "kqueue: errno %d", errno);
			break;
		}
		kqs[nk++] = kq;
	}
	CHECK(nk >= 1 && nk < 8, "queues made under the limit: %d", nk);
	/* No descriptor left: a timer needs the queue's timerfd. */
	errno = 0;
	CHECK(change(kqs[0], 1, EVFILT_TIMER, EV_ADD, 0, 10) == -1 && errno == EMFILE,
	      "timer add: errno %d", errno);
	errno = 0;
	CHECK(change(kqs[0], 1, EVFILT_TIMER, EV_DELETE, 0, 0) == -1 && errno == ENOENT,
	      "failed timer left a knote: errno %d", errno);
	/* A process knote needs a pidfd. */
	errno = 0;
	int r = change(kqs[0], (uintptr_t)getpid(), EVFILT_PROC, EV_ADD, NOTE_EXIT, 0);
	CHECK(r == -1 && (errno == EMFILE || errno == ENOTSUP), "proc add: errno %d", errno);
	/* USER knotes need no descriptor: still fine. */
	CHECK(change(kqs[0], 1, EVFILT_USER, EV_ADD, 0, 0) == 0, "user add: errno %d", errno);
	CHECK(change(kqs[0], 1, EVFILT_USER, 0, NOTE_TRIGGER, 0) == 0, "trigger");
	struct kevent ev[2];
	CHECK(kqe_kevent(kqs[0], NULL, 0, ev, 2, &zero_ts) == 1, "user event under EMFILE");
	for (int i = 0; i < nk; i++)
		CHECK(kqe_close(kqs[i]) == 0, "close");
	while (nf > 0)
		close(fillers[--nf]);
	CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0, "restore rlimit");
	CHECK(kq_fdcount() == before, "descriptors %d, were %d", kq_fdcount(), before);
	/* Everything works again. */
	int kq = kqe_kqueue();
	CHECK(kq >= 0, "kqueue after");
	CHECK(change(kq, 1, EVFILT_TIMER, EV_ADD | EV_ONESHOT, NOTE_NSECONDS, 1) == 0,
	      "timer after: errno %d", errno);
	struct timespec ts = { 5, 0 };
	CHECK(kqe_kevent(kq, NULL, 0, ev, 2, &ts) == 1, "timer fires after");
	kqe_close(kq);
	CHECK(kq_fdcount() == before, "descriptors at the end %d, were %d", kq_fdcount(), before);
}

/* 1,000 queues open at once, then closed; 1,000,000 USER knotes in one. */
static void test_scale(void)
{
	int before = kq_fdcount();
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	int want = 1000;
	if (rl.rlim_cur < (rlim_t)before + 1100) {
		rlim_t need = (rlim_t)before + 1100;
		if (rl.rlim_max >= need) {
			rl.rlim_cur = need;
			setrlimit(RLIMIT_NOFILE, &rl);
		} else {
			want = (int)rl.rlim_cur - before - 10;
		}
	}
	static int kqs[1000];
	int n = 0;
	for (int i = 0; i < want; i++) {
		kqs[n] = kqe_kqueue();
		CHECK(kqs[n] >= 0, "kqueue %d: errno %d", i, errno);
		if (kqs[n] < 0)
			break;
		change(kqs[n], 1, EVFILT_USER, EV_ADD, 0, 0);
		n++;
	}
	for (int i = 0; i < n; i++)
		CHECK(kqe_close(kqs[i]) == 0, "close %d", i);
	CHECK(kq_fdcount() == before, "after %d queues: %d descriptors, were %d", n, kq_fdcount(), before);

	int kq = kqe_kqueue();
	enum { MANY = 1000000 };
	static struct kevent ch[4096];
	int added = 0;
	for (int base = 0; base < MANY; base += 4096) {
		int k = MANY - base < 4096 ? MANY - base : 4096;
		for (int i = 0; i < k; i++)
			EV_SET(&ch[i], (uintptr_t)(base + i), EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0,
			       NULL);
		int r = kqe_kevent(kq, ch, k, NULL, 0, NULL);
		CHECK(r == 0, "bulk add at %d: errno %d", base, errno);
		if (r == 0)
			added += k;
	}
	CHECK(added == MANY, "added %d", added);
	/* Trigger a few, collect exactly those. */
	for (int i = 0; i < 10; i++)
		EV_SET(&ch[i], (uintptr_t)(i * 99991), EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
	CHECK(kqe_kevent(kq, ch, 10, NULL, 0, NULL) == 0, "triggers");
	struct kevent ev[32];
	CHECK(kqe_kevent(kq, NULL, 0, ev, 32, &zero_ts) == 10, "ten events");
	CHECK(kqe_close(kq) == 0, "close big queue");
	CHECK(kq_fdcount() == before, "descriptors %d, were %d", kq_fdcount(), before);
}

int main(void)
{
	struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
		{ "allocation failure at every allocation point", test_alloc_failures },
		{ "descriptor exhaustion (EMFILE)", test_emfile },
		{ "1,000 queues; 1,000,000 USER knotes", test_scale },
	};
	for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		int before = failures;
		tests[i].fn();
		printf("%s: %s\n", failures == before ? "ok" : "FAIL", tests[i].name);
	}
	printf("faults_test: %d failure(s)\n", failures);
	return failures ? 1 : 0;
}
