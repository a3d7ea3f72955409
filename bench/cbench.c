/*
 * cbench.c - the C contenders: raw epoll (the floor) and kq's engine called
 * through its kqueue API (csrc/engine/kqe.h), in default and lazy-data mode.
 *
 *   cbench SCENARIO CONTENDER SECONDS [N]
 *
 * SCENARIO: ready, data, reg, timer, wake, mem (see bench/RESULTS.md);
 * ab-ready, ab-data: scenario 1 or 2 with the raw epoll loop and the
 * engine (CONTENDER kqe or kqe-lazy) in one process, alternating.
 * CONTENDER: epoll, kqe, kqe-lazy; for mem: kqe-user, kqe-timer, kqe-read.
 * After a short untimed warm-up the scenario's unit of work is repeated
 * until SECONDS have passed; one line is printed:
 *   ns=<ns per unit> cpu=<cpu ns per unit> units=<count> [fds=<n>] [bytes=<n>]
 * ns is CLOCK_MONOTONIC time; cpu is CLOCK_PROCESS_CPUTIME_ID time over the
 * same stretch (user + system), which time stolen by other processes on a
 * shared machine does not inflate.
 * Any surprise (a short count, a failed call) exits 1 with a message.
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine/kqe.h"
#include "../tests/support/fdcount.h"
#include "churn.h"

#define NREADY 1000   /* scenarios 1 and 2: always-readable sockets */
#define EVCAP 1024    /* the reused eventlist */
#define NREG 10000    /* scenario 3: descriptors added then deleted */
#define CHUNK 1000    /* changelist length */

static double seconds = 0.25;
static long nparam;   /* N: timers (scenario 4), knotes (scenario 6) */

static void die(const char *what)
{
	fprintf(stderr, "cbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void fail(const char *msg)
{
	fprintf(stderr, "cbench: %s\n", msg);
	exit(1);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU time spent in the timed stretches (report() prints it per unit). */
static int64_t cpu_spent;
static int64_t cpu_mark;
#define CPU_START() (cpu_mark = cpu_ns())
#define CPU_STOP() (cpu_spent += cpu_ns() - cpu_mark)

static void raise_nofile(rlim_t want)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur >= want)
		return;
	struct rlimit nr = { want, rl.rlim_max > want ? rl.rlim_max : want };
	if (setrlimit(RLIMIT_NOFILE, &nr) < 0) {
		nr.rlim_cur = rl.rlim_max;
		nr.rlim_max = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nr);
	}
}

static int fdcount(void)
{
	int n = kq_fdcount();
	if (n < 0)
		die("/proc/self/fd");
	return n;
}

static size_t malloc_used(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

/* n socketpairs; fds[2i] and fds[2i+1] are the two ends. */
static int *make_pairs(int n)
{
	int *fds = malloc(2 * (size_t)n * sizeof *fds);
	if (fds == NULL)
		die("malloc");
	for (int i = 0; i < n; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds + 2 * i) < 0)
			die("socketpair");
	return fds;
}

static void report(int64_t ns, long units, const char *extra)
{
	printf("ns=%.2f cpu=%.2f units=%ld%s%s\n", (double)ns / (double)units,
	       (double)cpu_spent / (double)units, units, extra ? " " : "",
	       extra ? extra : "");
}

static void check(int got, int want, const char *what)
{
	if (got != want) {
		fprintf(stderr, "cbench: %s: got %d, want %d (%s)\n", what, got, want,
			got < 0 ? strerror(errno) : "count");
		exit(1);
	}
}

static int kq_open(int lazy)
{
	int kq = kqe_kqueue();
	if (kq < 0)
		die("kqe_kqueue");
	if (lazy && kqe_set_lazy_data(kq, 1) < 0)
		die("kqe_set_lazy_data");
	return kq;
}

/* Apply n changes in changelists of CHUNK, collecting nothing. */
static void kq_apply(int kq, struct kevent *ch, int n)
{
	for (int i = 0; i < n; i += CHUNK) {
		int len = n - i < CHUNK ? n - i : CHUNK;
		check(kqe_kevent(kq, ch + i, len, NULL, 0, NULL), 0, "kevent changes");
	}
}

/* ---- scenarios 1 and 2: readiness delivery ------------------------------ */

/* One wait: returns the events delivered (always NREADY); *sum collects
 * what the program reads from each event so nothing is optimised away. */
static int ready_epoll(int epfd, struct epoll_event *evs, int with_data, long *sum)
{
	int n = epoll_wait(epfd, evs, EVCAP, -1);
	check(n, NREADY, "epoll_wait");
	long s = 0;
	for (int i = 0; i < n; i++) {
		if (with_data) {
			int v;
			if (ioctl(evs[i].data.fd, FIONREAD, &v) < 0)
				die("FIONREAD");
			s += v;
		} else {
			s += evs[i].data.fd;
		}
	}
	*sum += s;
	return n;
}

static int ready_kqe(int kq, struct kevent *evl, int mode, long *sum)
{
	int n = kqe_kevent(kq, NULL, 0, evl, EVCAP, NULL);
	check(n, NREADY, "kevent");
	long s = 0;
	for (int i = 0; i < n; i++) {
		if (mode == 0) {
			s += (long)evl[i].ident;
		} else if (mode == 1) {
			s += evl[i].data; /* default mode: filled in by the engine */
		} else {
			int64_t d;
			if (kqe_event_data(&evl[i], &d) < 0)
				die("kqe_event_data");
			s += d;
		}
	}
	*sum += s;
	return n;
}

static void bench_ready(const char *who, int with_data)
{
	int *fds = make_pairs(NREADY);
	int epoll = strcmp(who, "epoll") == 0;
	int lazy = strcmp(who, "kqe-lazy") == 0;
	if (!epoll && !lazy && strcmp(who, "kqe") != 0)
		fail("ready/data: contender must be epoll, kqe or kqe-lazy");
	for (int i = 0; i < NREADY; i++)
		if (write(fds[2 * i + 1], "x", 1) != 1)
			die("write");
	int epfd = -1, kq = -1;
	struct epoll_event *evs = calloc(EVCAP, sizeof *evs);
	struct kevent *evl = calloc(EVCAP, sizeof *evl);
	if (evs == NULL || evl == NULL)
		die("calloc");
	if (epoll) {
		epfd = epoll_create1(EPOLL_CLOEXEC);
		if (epfd < 0)
			die("epoll_create1");
		for (int i = 0; i < NREADY; i++) {
			struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[2 * i] };
			if (epoll_ctl(epfd, EPOLL_CTL_ADD, fds[2 * i], &ev) < 0)
				die("epoll_ctl");
		}
	} else {
		kq = kq_open(lazy);
		struct kevent ch[NREADY];
		for (int i = 0; i < NREADY; i++)
			EV_SET(&ch[i], fds[2 * i], EVFILT_READ, EV_ADD, 0, 0, NULL);
		kq_apply(kq, ch, NREADY);
	}
	/* mode: 0 ident only, 1 data filled in, 2 data computed on demand */
	int mode = with_data ? (lazy ? 2 : 1) : 0;
	long sum = 0, events = 0;
	for (int w = 0; w < 50; w++) /* warm-up */
		epoll ? ready_epoll(epfd, evs, with_data, &sum) : ready_kqe(kq, evl, mode, &sum);
	sum = 0;
	CPU_START();
	int64_t t0 = now_ns(), t1, limit = (int64_t)(seconds * 1e9);
	do {
		for (int k = 0; k < 10; k++)
			events += epoll ? ready_epoll(epfd, evs, with_data, &sum)
					: ready_kqe(kq, evl, mode, &sum);
		t1 = now_ns();
	} while (t1 - t0 < limit);
	CPU_STOP();
	if (with_data && sum != events)
		fail("data: every event should carry exactly 1 byte");
	report(t1 - t0, events, NULL);
}

/* Scenarios 1 and 2 interleaved in one process: the same sockets watched by
 * an epoll and by a queue, slices of 10 waits taken in turn from the raw
 * loop and the engine, so that both see the same machine (on a shared host
 * the speed of separate runs swings by more than the difference measured).
 * Prints ns per event of each and their ratio. */
static void bench_ab(const char *who, int with_data)
{
	int lazy = strcmp(who, "kqe-lazy") == 0;
	if (!lazy && strcmp(who, "kqe") != 0)
		fail("ab-ready/ab-data: contender must be kqe or kqe-lazy");
	int *fds = make_pairs(NREADY);
	for (int i = 0; i < NREADY; i++)
		if (write(fds[2 * i + 1], "x", 1) != 1)
			die("write");
	struct epoll_event *evs = calloc(EVCAP, sizeof *evs);
	struct kevent *evl = calloc(EVCAP, sizeof *evl);
	if (evs == NULL || evl == NULL)
		die("calloc");
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1");
	int kq = kq_open(lazy);
	struct kevent ch[NREADY];
	for (int i = 0; i < NREADY; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[2 * i] };
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fds[2 * i], &ev) < 0)
			die("epoll_ctl");
		EV_SET(&ch[i], fds[2 * i], EVFILT_READ, EV_ADD, 0, 0, NULL);
	}
	kq_apply(kq, ch, NREADY);
	int mode = with_data ? (lazy ? 2 : 1) : 0;
	long sum = 0, events[2] = { 0, 0 };
	int64_t spent[2] = { 0, 0 }, limit = (int64_t)(seconds * 1e9);
	for (int w = 0; w < 50; w++) { /* warm-up */
		ready_epoll(epfd, evs, with_data, &sum);
		ready_kqe(kq, evl, mode, &sum);
	}
	sum = 0;
	CPU_START();
	while (spent[0] + spent[1] < limit) {
		for (int side = 0; side < 2; side++) {
			int64_t t0 = now_ns();
			for (int k = 0; k < 10; k++)
				events[side] += side == 0 ? ready_epoll(epfd, evs, with_data, &sum)
							  : ready_kqe(kq, evl, mode, &sum);
			spent[side] += now_ns() - t0;
		}
	}
	CPU_STOP();
	if (with_data && sum != events[0] + events[1])
		fail("ab-data: every event should carry exactly 1 byte");
	double raw = (double)spent[0] / (double)events[0];
	double eng = (double)spent[1] / (double)events[1];
	printf("ns=%.2f floor=%.2f ratio=%.3f units=%ld\n", eng, raw, eng / raw, events[1]);
}

/* ---- scenario 3: registration -------------------------------------------- */

static void bench_reg(const char *who)
{
	raise_nofile(NREG + 64);
	int *fds = make_pairs(NREG / 2);
	int epoll = strcmp(who, "epoll") == 0;
	int lazy = strcmp(who, "kqe-lazy") == 0;
	if (!epoll && !lazy && strcmp(who, "kqe") != 0)
		fail("reg: contender must be epoll, kqe or kqe-lazy");
	int epfd = -1, kq = -1;
	struct kevent *add = calloc(NREG, sizeof *add), *del = calloc(NREG, sizeof *del);
	if (add == NULL || del == NULL)
		die("calloc");
	if (epoll) {
		epfd = epoll_create1(EPOLL_CLOEXEC);
		if (epfd < 0)
			die("epoll_create1");
	} else {
		kq = kq_open(lazy);
		for (int i = 0; i < NREG; i++) {
			EV_SET(&add[i], fds[i], EVFILT_READ, EV_ADD, 0, 0, NULL);
			EV_SET(&del[i], fds[i], EVFILT_READ, EV_DELETE, 0, 0, NULL);
		}
	}
	long changes = 0;
	int64_t t0 = 0, t1, limit = (int64_t)(seconds * 1e9);
	for (int cycle = -1;; cycle++) { /* cycle -1 is the warm-up */
		if (cycle == 0) {
			CPU_START();
			t0 = now_ns();
		}
		if (epoll) {
			for (int i = 0; i < NREG; i++) {
				struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[i] };
				if (epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &ev) < 0)
					die("epoll_ctl ADD");
			}
			for (int i = 0; i < NREG; i++)
				if (epoll_ctl(epfd, EPOLL_CTL_DEL, fds[i], NULL) < 0)
					die("epoll_ctl DEL");
		} else {
			kq_apply(kq, add, NREG);
			kq_apply(kq, del, NREG);
		}
		if (cycle >= 0)
			changes += 2 * NREG;
		t1 = now_ns();
		if (cycle >= 0 && t1 - t0 >= limit)
			break;
	}
	CPU_STOP();
	report(t1 - t0, changes, NULL);
}

/* ---- scenario 7: registration, one change per call ------------------------ */

/* EV_ADD then EV_DELETE of one connected socket, one change per call, as a
 * server registers each connection it accepts (the raw floor: one
 * epoll_ctl per change). */
static void bench_reg1(const char *who)
{
	int *fds = make_pairs(1);
	int epoll = strcmp(who, "epoll") == 0;
	if (!epoll && strcmp(who, "kqe") != 0)
		fail("reg1: contender must be epoll or kqe");
	int fd = fds[0], epfd = -1, kq = -1;
	struct kevent add, del;
	EV_SET(&add, fd, EVFILT_READ, EV_ADD, 0, 0, NULL);
	EV_SET(&del, fd, EVFILT_READ, EV_DELETE, 0, 0, NULL);
	if (epoll) {
		epfd = epoll_create1(EPOLL_CLOEXEC);
		if (epfd < 0)
			die("epoll_create1");
	} else {
		kq = kq_open(1);
	}
	long changes = 0;
	int64_t t0 = 0, t1, limit = (int64_t)(seconds * 1e9);
	for (int batch = -1;; batch++) { /* batch -1 is the warm-up */
		if (batch == 0) {
			CPU_START();
			t0 = now_ns();
		}
		for (int i = 0; i < 1000; i++) {
			if (epoll) {
				struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
				if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
					die("epoll_ctl ADD");
				if (epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
					die("epoll_ctl DEL");
			} else {
				check(kqe_kevent(kq, &add, 1, NULL, 0, NULL), 0, "kevent EV_ADD");
				check(kqe_kevent(kq, &del, 1, NULL, 0, NULL), 0, "kevent EV_DELETE");
			}
		}
		if (batch >= 0)
			changes += 2000;
		t1 = now_ns();
		if (batch >= 0 && t1 - t0 >= limit)
			break;
	}
	CPU_STOP();
	report(t1 - t0, changes, NULL);
}

/* ---- scenario 8: connection churn ------------------------------------------ */

/* One connection's turn once readable: read the request, answer, close
 * (without EV_DELETE or EPOLL_CTL_DEL: closing ends the registration, as
 * kqueue programs rely on).  1 when it was served. */
static int churn_serve(int fd)
{
	char buf[256];
	ssize_t r = read(fd, buf, sizeof buf);
	if (r < 0 && errno == EAGAIN)
		return 0;
	int served = r == (ssize_t)sizeof CHURN_REQUEST - 1 &&
		     write(fd, CHURN_ANSWER, sizeof CHURN_ANSWER - 1) ==
			     (ssize_t)sizeof CHURN_ANSWER - 1;
	close(fd);
	return served;
}

/* A server accepting short-lived connections from churn.h's client: the
 * listener and each connection registered level-triggered for READ; ns
 * per connection served. */
static void bench_churn(const char *who)
{
	int epoll = strcmp(who, "epoll") == 0;
	if (!epoll && strcmp(who, "kqe") != 0)
		fail("churn: contender must be epoll or kqe");
	int port, lfd = churn_listen(&port);
	if (lfd < 0)
		die("listen");
	int ep = -1, kq = -1;
	struct epoll_event evs[256];
	struct kevent evl[256], ch;
	if (epoll) {
		ep = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
			die("epoll");
	} else {
		kq = kq_open(1);
		EV_SET(&ch, lfd, EVFILT_READ, EV_ADD, 0, 0, NULL);
		check(kqe_kevent(kq, &ch, 1, NULL, 0, NULL), 0, "kevent listener");
	}
	pid_t client = churn_client_start(port);
	if (client < 0)
		die("fork");
	long served = 0, counted = 0;
	int64_t t0 = 0, t1 = 0, limit = (int64_t)(seconds * 1e9);
	while (counted == 0 || t1 - t0 < limit) {
		int n = epoll ? epoll_wait(ep, evs, 256, -1) : kqe_kevent(kq, NULL, 0, evl, 256, NULL);
		if (n < 0 && errno != EINTR)
			die("wait");
		for (int i = 0; i < n; i++) {
			int fd = epoll ? evs[i].data.fd : (int)evl[i].ident;
			if (fd != lfd) {
				served += churn_serve(fd);
				continue;
			}
			int c;
			while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
				if (epoll) {
					struct epoll_event ev = { .events = EPOLLIN, .data.fd = c };
					if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0)
						die("epoll_ctl ADD");
				} else {
					EV_SET(&ch, c, EVFILT_READ, EV_ADD, 0, 0, NULL);
					check(kqe_kevent(kq, &ch, 1, NULL, 0, NULL), 0, "kevent EV_ADD");
				}
			}
		}
		if (counted == 0 && served >= 200) { /* warmed up */
			counted = served;
			CPU_START();
			t0 = now_ns();
		}
		t1 = now_ns();
	}
	CPU_STOP();
	churn_client_stop(client);
	report(t1 - t0, served - counted, NULL);
}

/* ---- scenario 4: timers --------------------------------------------------- */

/* One cycle: a fresh queue, nt oneshot 1 ms timers, all collected.  Returns
 * the ns spent registering and collecting; *fds_used the descriptors open
 * while they were pending, minus those open before the queue existed. */
static int64_t timer_cycle(int lazy, long nt, struct kevent *ch, struct kevent *evl,
			   int *fds_used)
{
	int before = fdcount();
	int kq = kq_open(lazy);
	for (long i = 0; i < nt; i++)
		EV_SET(&ch[i], (uintptr_t)i + 1, EVFILT_TIMER, EV_ADD | EV_ONESHOT, 0, 1, NULL);
	CPU_START();
	int64_t t0 = now_ns();
	kq_apply(kq, ch, (int)nt);
	int64_t t1 = now_ns();
	CPU_STOP();
	*fds_used = fdcount() - before;
	CPU_START();
	int64_t t2 = now_ns();
	long got = 0;
	while (got < nt) {
		int n = kqe_kevent(kq, NULL, 0, evl, EVCAP, NULL);
		if (n <= 0)
			die("kevent timers");
		for (int i = 0; i < n; i++)
			if (evl[i].filter != EVFILT_TIMER || evl[i].data != 1)
				fail("timer: unexpected event");
		got += n;
	}
	int64_t t3 = now_ns();
	CPU_STOP();
	kqe_close(kq);
	return (t1 - t0) + (t3 - t2);
}

static void bench_timer(const char *who)
{
	int lazy = strcmp(who, "kqe-lazy") == 0;
	if (!lazy && strcmp(who, "kqe") != 0)
		fail("timer: contender must be kqe or kqe-lazy");
	long nt = nparam > 0 ? nparam : 100000;
	struct kevent *ch = calloc((size_t)nt, sizeof *ch);
	struct kevent *evl = calloc(EVCAP, sizeof *evl);
	if (ch == NULL || evl == NULL)
		die("calloc");
	int fds, maxfds = 0;
	timer_cycle(lazy, nt / 10 + 1, ch, evl, &fds); /* warm-up */
	cpu_spent = 0;
	int64_t spent = 0, limit = (int64_t)(seconds * 1e9);
	long timers = 0;
	do {
		spent += timer_cycle(lazy, nt, ch, evl, &fds);
		if (fds > maxfds)
			maxfds = fds;
		timers += nt;
	} while (spent < limit);
	char extra[64];
	snprintf(extra, sizeof extra, "fds=%d", maxfds);
	report(spent, timers, extra);
}

/* ---- scenario 5: wake-up ------------------------------------------------ */

static void bench_wake(const char *who)
{
	int epoll = strcmp(who, "epoll") == 0;
	int lazy = strcmp(who, "kqe-lazy") == 0;
	if (!epoll && !lazy && strcmp(who, "kqe") != 0)
		fail("wake: contender must be epoll, kqe or kqe-lazy");
	int epfd = -1, efd = -1, kq = -1;
	struct kevent trig, ev;
	if (epoll) {
		/* The floor: an eventfd written, waited for, read back. */
		epfd = epoll_create1(EPOLL_CLOEXEC);
		efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (epfd < 0 || efd < 0)
			die("epoll_create1/eventfd");
		struct epoll_event e = { .events = EPOLLIN, .data.fd = efd };
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &e) < 0)
			die("epoll_ctl");
	} else {
		kq = kq_open(lazy);
		struct kevent add;
		EV_SET(&add, 1, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL);
		kq_apply(kq, &add, 1);
		EV_SET(&trig, 1, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
	}
	long rounds = 0;
	int64_t t0 = 0, t1, limit = (int64_t)(seconds * 1e9);
	for (int batch = -1;; batch++) { /* batch -1 is the warm-up */
		if (batch == 0) {
			CPU_START();
			t0 = now_ns();
		}
		for (int k = 0; k < 1000; k++) {
			if (epoll) {
				uint64_t one = 1, v;
				struct epoll_event e;
				if (write(efd, &one, sizeof one) != sizeof one)
					die("eventfd write");
				check(epoll_wait(epfd, &e, 1, -1), 1, "epoll_wait");
				if (read(efd, &v, sizeof v) != sizeof v)
					die("eventfd read");
			} else {
				/* Trigger and wait in one call, as a kqueue program does. */
				check(kqe_kevent(kq, &trig, 1, &ev, 1, NULL), 1, "kevent");
				if (ev.filter != EVFILT_USER)
					fail("wake: unexpected event");
			}
		}
		if (batch >= 0)
			rounds += 1000;
		t1 = now_ns();
		if (batch >= 0 && t1 - t0 >= limit)
			break;
	}
	CPU_STOP();
	report(t1 - t0, rounds, NULL);
}

/* ---- scenario 6: memory ---------------------------------------------------- */

static void bench_mem(const char *who)
{
	int kind = strcmp(who, "kqe-user") == 0 ? 0 : strcmp(who, "kqe-timer") == 0 ? 1
		 : strcmp(who, "kqe-read") == 0 ? 2 : -1;
	if (kind < 0)
		fail("mem: contender must be kqe-user, kqe-timer or kqe-read");
	long n = nparam > 0 ? nparam : 100000;
	int *fds = NULL;
	if (kind == 2) {
		/* One READ knote per descriptor: n descriptors. */
		raise_nofile((rlim_t)n + 64);
		fds = make_pairs((int)(n / 2));
	}
	struct kevent *ch = calloc((size_t)n, sizeof *ch);
	if (ch == NULL)
		die("calloc");
	for (long i = 0; i < n; i++) {
		if (kind == 0)
			EV_SET(&ch[i], (uintptr_t)i + 1, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, NULL);
		else if (kind == 1) /* an hour: never fires here */
			EV_SET(&ch[i], (uintptr_t)i + 1, EVFILT_TIMER, EV_ADD, NOTE_SECONDS, 3600, NULL);
		else
			EV_SET(&ch[i], fds[i], EVFILT_READ, EV_ADD, 0, 0, NULL);
	}
	int kq = kq_open(1);
	struct kevent *evl = calloc(EVCAP, sizeof *evl);
	if (evl == NULL)
		die("calloc");
	/* The queue's own buffers first: its epoll result buffer. */
	struct timespec zero = { 0, 0 };
	check(kqe_kevent(kq, NULL, 0, evl, EVCAP, &zero), 0, "kevent");
	size_t m0 = malloc_used();
	CPU_START();
	int64_t t0 = now_ns();
	kq_apply(kq, ch, (int)n);
	int64_t t1 = now_ns();
	CPU_STOP();
	if (kind == 2) {
		/* What a READ knote costs once it has delivered an event (its
		 * descriptor settled, its fast-delivery entry made): every
		 * socket readable, collected until each was seen. */
		char *seen = calloc((size_t)n + 64, 1);
		long left = n;
		for (long i = 0; i < n; i++)
			if (write(fds[i], "x", 1) != 1)
				die("write");
		while (left > 0) {
			int got = kqe_kevent(kq, NULL, 0, evl, EVCAP, &zero);
			if (got <= 0)
				fail("mem: a READ knote never fired");
			for (int j = 0; j < got; j++)
				if (evl[j].ident < (uintptr_t)n + 64 && !seen[evl[j].ident]++)
					left--;
		}
		free(seen);
	}
	size_t m1 = malloc_used();
	kqe_close(kq);
	char extra[64];
	snprintf(extra, sizeof extra, "bytes=%.1f", (double)(m1 - m0) / (double)n);
	report(t1 - t0, n, extra);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: cbench SCENARIO CONTENDER SECONDS [N]\n");
		return 2;
	}
	seconds = atof(argv[3]);
	nparam = argc > 4 ? atol(argv[4]) : 0;
	const char *s = argv[1], *who = argv[2];
	if (strcmp(s, "ready") == 0)
		bench_ready(who, 0);
	else if (strcmp(s, "data") == 0)
		bench_ready(who, 1);
	else if (strcmp(s, "ab-ready") == 0)
		bench_ab(who, 0);
	else if (strcmp(s, "ab-data") == 0)
		bench_ab(who, 1);
	else if (strcmp(s, "reg") == 0)
		bench_reg(who);
	else if (strcmp(s, "timer") == 0)
		bench_timer(who);
	else if (strcmp(s, "wake") == 0)
		bench_wake(who);
	else if (strcmp(s, "mem") == 0)
		bench_mem(who);
	else if (strcmp(s, "reg1") == 0)
		bench_reg1(who);
	else if (strcmp(s, "churn") == 0)
		bench_churn(who);
	else
		fail("unknown scenario");
	return 0;
}
