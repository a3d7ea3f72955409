/*
 * data_test.c - the `data` of READ and WRITE events as a plain C caller of
 * kqe_kevent() gets it (run by tests/c/Makefile, plain, under ASan + UBSan
 * and under valgrind).
 *
 * A queue in the engine's default mode computes `data` of a READ/WRITE
 * event itself when it delivers the event; a queue in lazy mode
 * (kqe_set_lazy_data, which the Lua binding always turns on) leaves it 0,
 * marks the event, and kqe_event_data() computes it later.  The Lua specs
 * see only the lazy side, so every case here registers the same descriptor
 * in one queue of each mode, collects from both (timeout 0) and checks,
 * at each step, that
 *
 *     default queue's ev.data == expected == kqe_event_data(lazy queue's ev)
 *
 * where "expected" is computed by the test from what it did (bytes written
 * and read, connections made, file offset, pipe size it set), following
 * FreeBSD as ../shared/docs/kqueue-semantics.md states it.  Where the
 * engine documents that Linux cannot give FreeBSD's value (datagram
 * sockets: the next datagram, not all queued bytes; AF_UNIX listeners: 1;
 * socket WRITE: SO_SNDBUF - SIOCOUTQ; terminal WRITE: 0), the test expects
 * the documented engine value and says so where it does.  Each check also
 * asserts the flags (stored flags, EV_EOF), fflags and udata of the event,
 * that a default-mode event is never marked lazy, that a lazy-mode event
 * on a socket, pipe, FIFO, terminal or queue is (with data 0), and that no
 * other event came.
 *
 * A level READ knote alone on a socket, pipe or terminal is delivered by a
 * path of its own (io.c, fast_result); READ with a WRITE knote on
 * the same descriptor, any EV_CLEAR/ONESHOT/DISPATCH or NOTE_LOWAT knote,
 * a result that did not fit and a re-enabled knote take the general one
 * (fd_result, io_event, the ready list).  "fast path vs general path" runs
 * both on one socket side by side.
 *
 * Three departures from FreeBSD that this test found were engine bugs, not
 * documented limits (READ on a pipe's write end; a never-connected stream
 * socket, and a listener made from one; a pipe's WRITE NOTE_LOWAT knote).
 * Each has a KNOWN_BUG_* switch at its case, now 0 since the engine was
 * fixed: 0 checks FreeBSD's behaviour; 1 expects the old, wrong one and
 * prints a note (to check the test itself against an unfixed engine).
 *
 * Loopback TCP and ptys move bytes in the kernel asynchronously: before an
 * assertion the test waits (bounded) until the descriptor holds what was
 * sent.  Those waits only wait; the assertion still compares with the
 * count the test sent.  A watchdog (alarm) turns a hang into a failure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "engine/kqe.h"
#include "../support/fdcount.h"

#define WATCHDOG 120
#define PIPE_SIZE 65536 /* set with F_SETPIPE_SZ on every pipe and FIFO */

static int failures;

#define CHECK_AT(line, cond, ...) do {					\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: FAIL: %s: ", __FILE__, (line), #cond); \
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		failures++;						\
	}								\
} while (0)

#define CHECK(cond, ...) CHECK_AT(__LINE__, cond, __VA_ARGS__)

static const struct timespec zero_ts = { 0, 0 };

static void nap(void)
{
	struct timespec ts = { 0, 1000000 }; /* 1 ms: polling, not timing */
	nanosleep(&ts, NULL);
}

/* ---- a pair of queues: [0] default mode, [1] lazy mode -------------------- */

static const char *const mode[2] = { "default", "lazy" };

struct qp {
	int q[2];
	/* Events of the lazy queue must carry the lazy mark (false for regular
	 * files, NOTE_LOWAT knotes and watched queues, whose data is computed
	 * at delivery). */
	bool lazy;
};

static void qp_open(struct qp *p)
{
	for (int m = 0; m < 2; m++) {
		p->q[m] = kqe_kqueue();
		CHECK(p->q[m] >= 0, "kqueue: %s", strerror(errno));
	}
	CHECK(kqe_set_lazy_data(p->q[1], 1) == 0, "set lazy: %s", strerror(errno));
	p->lazy = true;
}

static void qp_close(struct qp *p)
{
	for (int m = 0; m < 2; m++)
		CHECK(kqe_close(p->q[m]) == 0, "close %s queue: %s", mode[m], strerror(errno));
}

/* The udata of the knote (fd, filter), checked in every event. */
static void *tag(int fd, short filter)
{
	return (void *)(uintptr_t)(0x10000 + 4 * fd + (filter == EVFILT_WRITE));
}

static int change(int kq, int fd, short filter, unsigned short flags, unsigned fflags,
		  int64_t data)
{
	struct kevent ch;
	EV_SET(&ch, (uintptr_t)fd, filter, flags, fflags, data, tag(fd, filter));
	return kqe_kevent(kq, &ch, 1, NULL, 0, NULL);
}

/* The same change in both queues; it must succeed. */
#define CHANGE(p, fd, filter, flags, fflags, data) \
	change2(__LINE__, (p), (fd), (filter), (flags), (fflags), (data))

static void change2(int line, struct qp *p, int fd, short filter, unsigned short flags,
		    unsigned fflags, int64_t data)
{
	for (int m = 0; m < 2; m++)
		CHECK_AT(line, change(p->q[m], fd, filter, flags, fflags, data) == 0,
			 "%s queue: change fd %d filter %d flags 0x%x: %s", mode[m], fd, filter,
			 flags, strerror(errno));
}

static const char *fname(short filter)
{
	return filter == EVFILT_READ ? "READ" : filter == EVFILT_WRITE ? "WRITE" : "?";
}

/* ---- the assertion --------------------------------------------------------- */

#define NONE INT64_MIN /* as want.data: no event for (fd, filter) */

struct want {
	int fd;
	short filter;
	int64_t data;
	unsigned short flags;
	unsigned fflags;
	/* A socket error in fflags: only the queue collected first (the
	 * default one) reports it, the lazy one 0 (SO_ERROR is read once and
	 * cleared; doc/linux-engine.md, differences from FreeBSD). */
	bool ff_first_queue;
};

/* One collection from each queue of the pair: every wanted event comes
 * exactly once (or not at all, for data NONE) with the wanted data, flags,
 * fflags and udata, and nothing else comes.  In the lazy queue the data is
 * kqe_event_data()'s, computed at once after the collection. */
static void expect_events(int line, struct qp *p, const struct want *w, int nw)
{
	for (int m = 0; m < 2; m++) {
		struct kevent ev[16];
		int64_t data[16];
		int n = kqe_kevent(p->q[m], NULL, 0, ev, 16, &zero_ts);
		CHECK_AT(line, n >= 0, "%s queue: kevent: %s", mode[m], strerror(errno));
		if (n < 0)
			continue;
		for (int i = 0; i < n; i++) {
			data[i] = ev[i].data;
			if (m == 1 && kqe_event_data(&ev[i], &data[i]) < 0)
				CHECK_AT(line, 0, "lazy queue: kqe_event_data fd %d %s: %s",
					 (int)ev[i].ident, fname(ev[i].filter), strerror(errno));
		}
		bool seen[16] = { false };
		for (int j = 0; j < nw; j++) {
			int hits = 0;
			for (int i = 0; i < n; i++) {
				const struct kevent *e = &ev[i];
				if (e->ident != (uintptr_t)w[j].fd || e->filter != w[j].filter)
					continue;
				seen[i] = true;
				hits++;
				if (w[j].data == NONE) {
					CHECK_AT(line, 0, "%s queue: fd %d %s: an event (data %lld, flags 0x%x), none expected",
						 mode[m], w[j].fd, fname(w[j].filter),
						 (long long)data[i], e->flags);
					continue;
				}
				CHECK_AT(line, data[i] == w[j].data,
					 "%s queue: fd %d %s: data %lld, expected %lld", mode[m],
					 w[j].fd, fname(w[j].filter), (long long)data[i],
					 (long long)w[j].data);
				CHECK_AT(line, e->flags == w[j].flags,
					 "%s queue: fd %d %s: flags 0x%x, expected 0x%x", mode[m],
					 w[j].fd, fname(w[j].filter), e->flags, w[j].flags);
				unsigned ff = m == 1 && w[j].ff_first_queue ? 0 : w[j].fflags;
				CHECK_AT(line, e->fflags == ff,
					 "%s queue: fd %d %s: fflags %u, expected %u", mode[m],
					 w[j].fd, fname(w[j].filter), e->fflags, ff);
				CHECK_AT(line, e->udata == tag(w[j].fd, w[j].filter),
					 "%s queue: fd %d %s: udata %p", mode[m], w[j].fd,
					 fname(w[j].filter), e->udata);
				if (m == 0)
					CHECK_AT(line, e->ext[0] == 0 && !kqe_event_is_lazy(e),
						 "default queue: fd %d %s: marked lazy (ext[0] 0x%llx)",
						 w[j].fd, fname(w[j].filter),
						 (unsigned long long)e->ext[0]);
				else if (p->lazy)
					CHECK_AT(line, kqe_event_is_lazy(e) && e->data == 0,
						 "lazy queue: fd %d %s: not lazy (ext[0] 0x%llx, data %lld)",
						 w[j].fd, fname(w[j].filter),
						 (unsigned long long)e->ext[0], (long long)e->data);
				else
					CHECK_AT(line, e->ext[0] == 0 && !kqe_event_is_lazy(e),
						 "lazy queue: fd %d %s: marked lazy (ext[0] 0x%llx)",
						 w[j].fd, fname(w[j].filter),
						 (unsigned long long)e->ext[0]);
			}
			if (w[j].data != NONE)
				CHECK_AT(line, hits == 1, "%s queue: fd %d %s: %d events, expected 1 (data %lld)",
					 mode[m], w[j].fd, fname(w[j].filter), hits,
					 (long long)w[j].data);
		}
		for (int i = 0; i < n; i++)
			CHECK_AT(line, seen[i], "%s queue: unexpected event fd %d %s data %lld flags 0x%x",
				 mode[m], (int)ev[i].ident, fname(ev[i].filter),
				 (long long)data[i], ev[i].flags);
	}
}

/* One descriptor, one filter; fflags 0. */
#define EXPECT(p, fd, filter, data, flags) do {				\
	struct want w_[1] = { { (fd), (filter), (data), (flags), 0, false } };	\
	expect_events(__LINE__, (p), w_, 1);				\
} while (0)

#define EXPECT_FF(p, fd, filter, data, flags, ff) do {			\
	struct want w_[1] = { { (fd), (filter), (data), (flags), (ff), false } };\
	expect_events(__LINE__, (p), w_, 1);				\
} while (0)

/* READ and WRITE of one descriptor in one collection. */
#define EXPECT_RW(p, fd, rdata, rflags, wdata, wflags) do {		\
	struct want w_[2] = { { (fd), EVFILT_READ, (rdata), (rflags), 0, false },	\
			      { (fd), EVFILT_WRITE, (wdata), (wflags), 0, false } };	\
	expect_events(__LINE__, (p), w_, 2);				\
} while (0)

/* Two descriptors, one knote each, in one collection. */
#define EXPECT2(p, fd1, f1, d1, fl1, fd2, f2, d2, fl2) do {		\
	struct want w_[2] = { { (fd1), (f1), (d1), (fl1), 0, false },	\
			      { (fd2), (f2), (d2), (fl2), 0, false } };	\
	expect_events(__LINE__, (p), w_, 2);				\
} while (0)

/* ---- descriptors and bytes ------------------------------------------------- */

static char buf[PIPE_SIZE + 4096];

#define PUT(fd, n) put(__LINE__, (fd), (n))
#define TAKE(fd, n) take(__LINE__, (fd), (n))

/* Write exactly n bytes (one write). */
static void put(int line, int fd, size_t n)
{
	memset(buf, 'x', n);
	ssize_t r = write(fd, buf, n);
	CHECK_AT(line, r == (ssize_t)n, "write %zu bytes to fd %d: %zd (%s)", n, fd, r,
		 r < 0 ? strerror(errno) : "short");
}

/* Read exactly n bytes (one read). */
static void take(int line, int fd, size_t n)
{
	ssize_t r = read(fd, buf, n);
	CHECK_AT(line, r == (ssize_t)n, "read %zu bytes from fd %d: %zd (%s)", n, fd, r,
		 r < 0 ? strerror(errno) : "short");
}

static void stream_pair(int sv[2])
{
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0,
	      "socketpair: %s", strerror(errno));
}

static void make_pipe(int p[2])
{
	CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	CHECK(fcntl(p[1], F_SETPIPE_SZ, PIPE_SIZE) == PIPE_SIZE, "F_SETPIPE_SZ: %s",
	      strerror(errno));
}

/* Free send space as the engine documents it for sockets (semantics §6.3:
 * Linux has no exact query): SO_SNDBUF - SIOCOUTQ. */
static int64_t sock_space(int fd)
{
	int sndbuf = 0, queued = 0;
	socklen_t len = sizeof sndbuf;
	CHECK(getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) == 0 &&
	      ioctl(fd, SIOCOUTQ, &queued) == 0, "SO_SNDBUF/SIOCOUTQ: %s", strerror(errno));
	return sndbuf > queued ? sndbuf - queued : 0;
}

static int64_t sndbuf_of(int fd)
{
	int sndbuf = 0;
	socklen_t len = sizeof sndbuf;
	CHECK(getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) == 0, "SO_SNDBUF: %s",
	      strerror(errno));
	return sndbuf;
}

/* Wait (at most 5 s) until fd holds n readable bytes: loopback TCP and
 * ptys deliver asynchronously.  Only a wait; CHECKs that it got there. */
#define SETTLE(fd, n) CHECK(settle_inq((fd), (n)), "fd %d never held %d bytes", (fd), (n))

static bool settle_inq(int fd, int n)
{
	for (int i = 0; i < 5000; i++) {
		int v = -1;
		if (ioctl(fd, FIONREAD, &v) == 0 && v == n)
			return true;
		nap();
	}
	return false;
}

/* ---- TCP over loopback ------------------------------------------------------- */

static int tcp_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0, "socket: %s", strerror(errno));
	return fd;
}

/* Bind fd to 127.0.0.1, any port, and listen; *addr says where. */
static void listen_on(int fd, struct sockaddr_in *addr)
{
	memset(addr, 0, sizeof *addr);
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof *addr;
	CHECK(bind(fd, (struct sockaddr *)addr, sizeof *addr) == 0 && listen(fd, 16) == 0 &&
	      getsockname(fd, (struct sockaddr *)addr, &len) == 0,
	      "bind/listen: %s", strerror(errno));
}

static int tcp_listener(struct sockaddr_in *addr)
{
	int fd = tcp_socket();
	listen_on(fd, addr);
	return fd;
}

/* A blocking connect, then non-blocking with TCP_NODELAY (each write goes
 * out at once). */
static int tcp_connect(const struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	CHECK(fd >= 0 && connect(fd, (const struct sockaddr *)addr, sizeof *addr) == 0,
	      "connect: %s", strerror(errno));
	CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0 &&
	      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0,
	      "socket options: %s", strerror(errno));
	return fd;
}

/* Connections waiting in a TCP listener's accept queue, as the kernel
 * reports them for a listener (tcpi_unacked); waits (at most 5 s) for n. */
static bool settle_backlog(int lfd, unsigned n)
{
	for (int i = 0; i < 5000; i++) {
		struct tcp_info ti;
		socklen_t len = sizeof ti;
		if (getsockopt(lfd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_unacked == n)
			return true;
		nap();
	}
	return false;
}

static int tcp_accept(int lfd)
{
	int fd = -1;
	for (int i = 0; i < 5000 && fd < 0; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && errno != EAGAIN)
			break;
		if (fd < 0)
			nap();
	}
	CHECK(fd >= 0, "accept: %s", strerror(errno));
	return fd;
}

/* ---- the cases ------------------------------------------------------------- */

/* Unix stream socket: 0, 1, 3 and 1000 bytes, then partial reads. */
static void test_stream_counts(void)
{
	static const struct {
		int sent;
		int reads[3]; /* then data = what is left, 0 ends */
	} t[] = {
		{ 0, { 0 } },
		{ 1, { 1, 0 } },
		{ 3, { 1, 1, 0 } },
		{ 1000, { 400, 599, 0 } },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct qp p;
		int sv[2];
		qp_open(&p);
		stream_pair(sv);
		CHANGE(&p, sv[1], EVFILT_READ, EV_ADD, 0, 0);
		if (t[i].sent)
			PUT(sv[0], (size_t)t[i].sent);
		int left = t[i].sent;
		EXPECT(&p, sv[1], EVFILT_READ, left ? left : NONE, 0);
		for (int k = 0; k < 3 && t[i].reads[k]; k++) {
			TAKE(sv[1], (size_t)t[i].reads[k]);
			left -= t[i].reads[k];
			EXPECT(&p, sv[1], EVFILT_READ, left ? left : NONE, 0);
		}
		qp_close(&p);
		close(sv[0]);
		close(sv[1]);
	}
}

/* A level READ knote delivered at every call while bytes come and go
 * between calls (after the first event, which settles the socket's kind,
 * these go through the fast path). */
static void test_level_follows(void)
{
	struct qp p;
	int sv[2];
	qp_open(&p);
	stream_pair(sv);
	CHANGE(&p, sv[1], EVFILT_READ, EV_ADD, 0, 0);
	EXPECT(&p, sv[1], EVFILT_READ, NONE, 0);
	PUT(sv[0], 5);
	EXPECT(&p, sv[1], EVFILT_READ, 5, 0);
	EXPECT(&p, sv[1], EVFILT_READ, 5, 0);
	PUT(sv[0], 10);
	EXPECT(&p, sv[1], EVFILT_READ, 15, 0);
	TAKE(sv[1], 7);
	EXPECT(&p, sv[1], EVFILT_READ, 8, 0);
	PUT(sv[0], 4096);
	EXPECT(&p, sv[1], EVFILT_READ, 4104, 0);
	TAKE(sv[1], 4103);
	EXPECT(&p, sv[1], EVFILT_READ, 1, 0);
	TAKE(sv[1], 1);
	EXPECT(&p, sv[1], EVFILT_READ, NONE, 0);
	EXPECT(&p, sv[1], EVFILT_READ, NONE, 0);
	PUT(sv[0], 1);
	EXPECT(&p, sv[1], EVFILT_READ, 1, 0);
	qp_close(&p);
	close(sv[0]);
	close(sv[1]);
}

/* One socket, three pairs of queues: READ alone (the fast path), READ with
 * a level WRITE knote, READ with a disabled WRITE knote (both the general
 * path).  Same READ data in all six queues at every step. */
static void test_fast_vs_general(void)
{
	struct qp alone, rw, rwoff;
	int sv[2];
	int fd;
	qp_open(&alone);
	qp_open(&rw);
	qp_open(&rwoff);
	stream_pair(sv);
	fd = sv[1];
	CHANGE(&alone, fd, EVFILT_READ, EV_ADD, 0, 0);
	CHANGE(&rw, fd, EVFILT_READ, EV_ADD, 0, 0);
	CHANGE(&rw, fd, EVFILT_WRITE, EV_ADD, 0, 0);
	CHANGE(&rwoff, fd, EVFILT_READ, EV_ADD, 0, 0);
	CHANGE(&rwoff, fd, EVFILT_WRITE, EV_ADD | EV_DISABLE, 0, 0);
	static const int steps[] = { 3, 0, 100, -50, 2000, -2053, 1, -1 };
	int have = 0;
	EXPECT(&alone, fd, EVFILT_READ, NONE, 0);
	EXPECT_RW(&rw, fd, NONE, 0, sndbuf_of(fd), 0);
	EXPECT(&rwoff, fd, EVFILT_READ, NONE, 0);
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		if (steps[i] > 0)
			PUT(sv[0], (size_t)steps[i]);
		else if (steps[i] < 0)
			TAKE(fd, (size_t)-steps[i]);
		have += steps[i];
		int64_t want = have ? have : NONE;
		EXPECT(&alone, fd, EVFILT_READ, want, 0);
		/* Nothing written from fd: all of its send buffer is free. */
		EXPECT_RW(&rw, fd, want, 0, sndbuf_of(fd), 0);
		EXPECT(&rwoff, fd, EVFILT_READ, want, 0);
	}
	/* Deleting WRITE puts READ back on the fast path, enabling it in rwoff
	 * takes it off: data stays right through both. */
	CHANGE(&rw, fd, EVFILT_WRITE, EV_DELETE, 0, 0);
	CHANGE(&rwoff, fd, EVFILT_WRITE, EV_ENABLE, 0, 0);
	PUT(sv[0], 9);
	EXPECT(&alone, fd, EVFILT_READ, 9, 0);
	EXPECT(&rw, fd, EVFILT_READ, 9, 0);
	EXPECT_RW(&rwoff, fd, 9, 0, sndbuf_of(fd), 0);
	TAKE(fd, 4);
	EXPECT(&alone, fd, EVFILT_READ, 5, 0);
	EXPECT(&rw, fd, EVFILT_READ, 5, 0);
	EXPECT_RW(&rwoff, fd, 5, 0, sndbuf_of(fd), 0);
	qp_close(&alone);
	qp_close(&rw);
	qp_close(&rwoff);
	close(sv[0]);
	close(sv[1]);
}

/* READ EV_CLEAR with a level WRITE (WRITE moves to the nested epoll), and
 * READ level with WRITE EV_CLEAR: READ data still = bytes available. */
static void test_mixed_edge_level(void)
{
	struct qp a, b;
	int sv[2];
	qp_open(&a);
	qp_open(&b);
	stream_pair(sv);
	int fd = sv[1];
	CHANGE(&a, fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0);
	CHANGE(&a, fd, EVFILT_WRITE, EV_ADD, 0, 0);
	CHANGE(&b, fd, EVFILT_READ, EV_ADD, 0, 0);
	CHANGE(&b, fd, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0);
	EXPECT_RW(&a, fd, NONE, 0, sndbuf_of(fd), 0);
	EXPECT_RW(&b, fd, NONE, 0, sndbuf_of(fd), EV_CLEAR);
	PUT(sv[0], 6);
	EXPECT_RW(&a, fd, 6, EV_CLEAR, sndbuf_of(fd), 0);
	EXPECT_RW(&b, fd, 6, 0, NONE, 0);
	EXPECT_RW(&a, fd, NONE, 0, sndbuf_of(fd), 0);
	PUT(sv[0], 7);
	EXPECT_RW(&a, fd, 13, EV_CLEAR, sndbuf_of(fd), 0);
	EXPECT_RW(&b, fd, 13, 0, NONE, 0);
	qp_close(&a);
	qp_close(&b);
	close(sv[0]);
	close(sv[1]);
}

/* Socket WRITE: SO_SNDBUF - SIOCOUTQ (semantics §6.3), which for FreeBSD's
 * rule must be at most SO_SNDBUF - bytes still queued, and all of SO_SNDBUF
 * when nothing is. */
static void test_socket_write(void)
{
	struct qp p;
	int sv[2];
	qp_open(&p);
	stream_pair(sv);
	int fd = sv[0];
	int64_t sndbuf = sndbuf_of(fd);
	CHANGE(&p, fd, EVFILT_WRITE, EV_ADD, 0, 0);
	EXPECT(&p, fd, EVFILT_WRITE, sndbuf, 0);
	PUT(fd, 1000);
	int64_t space = sock_space(fd);
	CHECK(space <= sndbuf - 1000, "space %lld with 1000 of %lld queued", (long long)space,
	      (long long)sndbuf);
	EXPECT(&p, fd, EVFILT_WRITE, space, 0);
	TAKE(sv[1], 1000);
	EXPECT(&p, fd, EVFILT_WRITE, sndbuf, 0);
	qp_close(&p);
	close(sv[0]);
	close(sv[1]);
}

/* Datagram sockets: the engine documents the size of the next datagram
 * (FIONREAD) where FreeBSD gives all queued bytes (semantics §4.1, §6.3). */
static void test_dgram(void)
{
	for (int family = 0; family < 2; family++) {
		struct qp p;
		int rx, tx;
		qp_open(&p);
		if (family == 0) {
			int sv[2];
			CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0,
			      "socketpair: %s", strerror(errno));
			rx = sv[1];
			tx = sv[0];
		} else {
			struct sockaddr_in a;
			socklen_t len = sizeof a;
			memset(&a, 0, sizeof a);
			a.sin_family = AF_INET;
			a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			rx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			tx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			CHECK(rx >= 0 && tx >= 0 && bind(rx, (struct sockaddr *)&a, sizeof a) == 0 &&
			      getsockname(rx, (struct sockaddr *)&a, &len) == 0 &&
			      connect(tx, (struct sockaddr *)&a, sizeof a) == 0,
			      "udp: %s", strerror(errno));
		}
		CHANGE(&p, rx, EVFILT_READ, EV_ADD, 0, 0);
		EXPECT(&p, rx, EVFILT_READ, NONE, 0);
		PUT(tx, 5);
		PUT(tx, 7);
		PUT(tx, 11);
		if (family == 1) {
			struct pollfd pf = { .fd = rx, .events = POLLIN };
			CHECK(poll(&pf, 1, 5000) == 1, "udp datagram never came");
		}
		/* Engine: 5, the next datagram (FreeBSD: 23). */
		EXPECT(&p, rx, EVFILT_READ, 5, 0);
		CHECK(recv(rx, buf, sizeof buf, 0) == 5, "datagram 1");
		if (family == 1)
			SETTLE(rx, 7);
		EXPECT(&p, rx, EVFILT_READ, 7, 0);
		CHECK(recv(rx, buf, sizeof buf, 0) == 7, "datagram 2");
		if (family == 1)
			SETTLE(rx, 11);
		EXPECT(&p, rx, EVFILT_READ, 11, 0);
		CHECK(recv(rx, buf, sizeof buf, 0) == 11, "datagram 3");
		EXPECT(&p, rx, EVFILT_READ, NONE, 0);
		qp_close(&p);
		close(rx);
		close(tx);
	}
}

/* Pipe: READ = bytes in the pipe, WRITE = pipe size - bytes in it. */
static void test_pipe(void)
{
	struct qp p;
	int pp[2];
	qp_open(&p);
	make_pipe(pp);
	int r = pp[0], w = pp[1];
	CHANGE(&p, r, EVFILT_READ, EV_ADD, 0, 0);
	CHANGE(&p, w, EVFILT_WRITE, EV_ADD, 0, 0);
	EXPECT2(&p, r, EVFILT_READ, NONE, 0, w, EVFILT_WRITE, PIPE_SIZE, 0);
	PUT(w, 11);
	PUT(w, 11);
	EXPECT2(&p, r, EVFILT_READ, 22, 0, w, EVFILT_WRITE, PIPE_SIZE - 22, 0);
	TAKE(r, 5);
	EXPECT2(&p, r, EVFILT_READ, 17, 0, w, EVFILT_WRITE, PIPE_SIZE - 17, 0);
	TAKE(r, 17);
	EXPECT2(&p, r, EVFILT_READ, NONE, 0, w, EVFILT_WRITE, PIPE_SIZE, 0);
	/* Full: no WRITE event. */
	PUT(w, PIPE_SIZE);
	EXPECT2(&p, r, EVFILT_READ, PIPE_SIZE, 0, w, EVFILT_WRITE, NONE, 0);
	/* 600 bytes free: FreeBSD would report WRITE (ready at >= PIPE_BUF,
	 * 512) with data 600; Linux says writable only once a page of the
	 * pipe's ring is free, so the engine reports nothing yet. */
	TAKE(r, 600);
	EXPECT2(&p, r, EVFILT_READ, PIPE_SIZE - 600, 0, w, EVFILT_WRITE, NONE, 0);
	/* A page read frees a page of the ring: WRITE again, data = 4096. */
	TAKE(r, 3496);
	EXPECT2(&p, r, EVFILT_READ, PIPE_SIZE - 4096, 0, w, EVFILT_WRITE, 4096, 0);
	TAKE(r, 1000);
	EXPECT2(&p, r, EVFILT_READ, PIPE_SIZE - 5096, 0, w, EVFILT_WRITE, 5096, 0);
	/* The writer goes: EV_EOF with what is left, at every call. */
	CHANGE(&p, w, EVFILT_WRITE, EV_DELETE, 0, 0);
	close(w);
	EXPECT(&p, r, EVFILT_READ, PIPE_SIZE - 5096, EV_EOF);
	TAKE(r, PIPE_SIZE - 5100);
	EXPECT(&p, r, EVFILT_READ, 4, EV_EOF);
	EXPECT(&p, r, EVFILT_READ, 4, EV_EOF);
	TAKE(r, 4);
	EXPECT(&p, r, EVFILT_READ, 0, EV_EOF);
	qp_close(&p);
	close(r);

	/* EV_CLEAR: each write once, the writer's close once, with the bytes. */
	qp_open(&p);
	make_pipe(pp);
	r = pp[0];
	w = pp[1];
	CHANGE(&p, r, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0);
	PUT(w, 10);
	EXPECT(&p, r, EVFILT_READ, 10, EV_CLEAR);
	EXPECT(&p, r, EVFILT_READ, NONE, 0);
	PUT(w, 5);
	EXPECT(&p, r, EVFILT_READ, 15, EV_CLEAR);
	close(w);
	EXPECT(&p, r, EVFILT_READ, 15, EV_CLEAR | EV_EOF);
	EXPECT(&p, r, EVFILT_READ, NONE, 0);
	qp_close(&p);
	close(r);
}

/*
 * ENGINE BUG, FIXED: once a pipe's reader is gone, epoll reports EPOLLERR
 * on the write end at every wait, and the engine delivered a READ knote on
 * that write end at every call (flags 0, data = bytes in the pipe), where
 * FreeBSD never fires it (semantics §4.1; sys_pipe.c gives such a knote a
 * filter that never fires).  The engine now learns the write end from that
 * EPOLLERR and takes the READ knote out of epoll (io.c,
 * pipe_write_end).  1 expects the old, wrong event; 0 expects none.
 */
#define KNOWN_BUG_READ_ON_PIPE_WRITE_END 0

/* FreeBSD: READ on a pipe's write end is accepted and never fires
 * (semantics §4.1); WRITE on a pipe whose reader went gives EV_EOF. */
static void test_pipe_ends(void)
{
	struct qp p;
	int pp[2];
	qp_open(&p);
	make_pipe(pp);
	int r = pp[0], w = pp[1];
	CHANGE(&p, w, EVFILT_READ, EV_ADD, 0, 0);
	CHANGE(&p, w, EVFILT_WRITE, EV_ADD, 0, 0);
	PUT(w, 100);
	EXPECT_RW(&p, w, NONE, 0, PIPE_SIZE - 100, 0);
	close(r);
	/* WRITE: EV_EOF; engine data stays size - bytes in the pipe (FreeBSD
	 * leaves the last value computed).  READ on the write end: FreeBSD
	 * still never fires it. */
#if KNOWN_BUG_READ_ON_PIPE_WRITE_END
	printf("note: known engine bug: READ on a pipe's write end fires once the reader is gone\n");
	EXPECT_RW(&p, w, 100, 0, PIPE_SIZE - 100, EV_EOF);
	EXPECT_RW(&p, w, 100, 0, PIPE_SIZE - 100, EV_EOF);
#else
	EXPECT_RW(&p, w, NONE, 0, PIPE_SIZE - 100, EV_EOF);
	EXPECT_RW(&p, w, NONE, 0, PIPE_SIZE - 100, EV_EOF);
#endif
	qp_close(&p);
	close(w);
}

/* FIFO: as a pipe; the EOF is lost when a new writer opens it. */
static void test_fifo(const char *dir)
{
	char path[256];
	snprintf(path, sizeof path, "%s/fifo", dir);
	CHECK(mkfifo(path, 0600) == 0, "mkfifo: %s", strerror(errno));
	struct qp p;
	qp_open(&p);
	int r = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	CHECK(r >= 0, "open fifo: %s", strerror(errno));
	CHANGE(&p, r, EVFILT_READ, EV_ADD, 0, 0);
	EXPECT(&p, r, EVFILT_READ, NONE, 0); /* no writer yet: no EOF either */
	int w = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	CHECK(w >= 0, "open fifo writer: %s", strerror(errno));
	CHECK(fcntl(w, F_SETPIPE_SZ, PIPE_SIZE) == PIPE_SIZE, "F_SETPIPE_SZ: %s", strerror(errno));
	CHANGE(&p, w, EVFILT_WRITE, EV_ADD, 0, 0);
	EXPECT2(&p, r, EVFILT_READ, NONE, 0, w, EVFILT_WRITE, PIPE_SIZE, 0);
	PUT(w, 6);
	EXPECT2(&p, r, EVFILT_READ, 6, 0, w, EVFILT_WRITE, PIPE_SIZE - 6, 0);
	PUT(w, 300);
	TAKE(r, 2);
	EXPECT2(&p, r, EVFILT_READ, 304, 0, w, EVFILT_WRITE, PIPE_SIZE - 304, 0);
	CHANGE(&p, w, EVFILT_WRITE, EV_DELETE, 0, 0);
	close(w);
	EXPECT(&p, r, EVFILT_READ, 304, EV_EOF);
	TAKE(r, 300);
	EXPECT(&p, r, EVFILT_READ, 4, EV_EOF);
	TAKE(r, 4);
	EXPECT(&p, r, EVFILT_READ, 0, EV_EOF);
	w = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	CHECK(w >= 0, "reopen fifo writer: %s", strerror(errno));
	EXPECT(&p, r, EVFILT_READ, NONE, 0);
	PUT(w, 2);
	EXPECT(&p, r, EVFILT_READ, 2, 0);
	qp_close(&p);
	close(w);
	close(r);
	unlink(path);
}

/* TCP over loopback: READ = bytes received, WRITE of an idle socket = all
 * of SO_SNDBUF, EOF after the peer's FIN with the bytes still there. */
static void test_tcp(void)
{
	struct sockaddr_in addr;
	int l = tcp_listener(&addr);
	int c = tcp_connect(&addr);
	int s = tcp_accept(l);
	struct qp p, pw;
	qp_open(&p);
	qp_open(&pw);
	CHANGE(&p, s, EVFILT_READ, EV_ADD, 0, 0);
	CHANGE(&pw, s, EVFILT_WRITE, EV_ADD, 0, 0);
	EXPECT(&p, s, EVFILT_READ, NONE, 0);
	EXPECT(&pw, s, EVFILT_WRITE, sndbuf_of(s), 0);
	static const int sends[] = { 1, 3, 1000, 6000 };
	int have = 0;
	for (size_t i = 0; i < sizeof sends / sizeof sends[0]; i++) {
		PUT(c, (size_t)sends[i]);
		have += sends[i];
		SETTLE(s, have);
		EXPECT(&p, s, EVFILT_READ, have, 0);
	}
	TAKE(s, 5000);
	have -= 5000;
	EXPECT(&p, s, EVFILT_READ, have, 0);
	EXPECT(&pw, s, EVFILT_WRITE, sndbuf_of(s), 0);
	TAKE(s, (size_t)have);
	EXPECT(&p, s, EVFILT_READ, NONE, 0);
	/* 8 bytes, then the peer stops writing: EV_EOF, data 8, fflags 0. */
	PUT(c, 8);
	CHECK(shutdown(c, SHUT_WR) == 0, "shutdown: %s", strerror(errno));
	struct pollfd pf = { .fd = s, .events = POLLRDHUP };
	CHECK(poll(&pf, 1, 5000) == 1, "FIN never came");
	SETTLE(s, 8);
	EXPECT(&p, s, EVFILT_READ, 8, EV_EOF);
	TAKE(s, 3);
	EXPECT(&p, s, EVFILT_READ, 5, EV_EOF);
	TAKE(s, 5);
	EXPECT(&p, s, EVFILT_READ, 0, EV_EOF);
	qp_close(&p);
	qp_close(&pw);
	close(c);
	close(s);
	close(l);
}

/* TCP listener: READ data = connections waiting to be accepted. */
static void test_listener(void)
{
	struct sockaddr_in addr;
	int l = tcp_listener(&addr);
	struct qp p;
	qp_open(&p);
	CHANGE(&p, l, EVFILT_READ, EV_ADD, 0, 0);
	EXPECT(&p, l, EVFILT_READ, NONE, 0);
	int c[3];
	c[0] = tcp_connect(&addr);
	CHECK(settle_backlog(l, 1), "first connection never queued");
	EXPECT(&p, l, EVFILT_READ, 1, 0);
	EXPECT(&p, l, EVFILT_READ, 1, 0);
	c[1] = tcp_connect(&addr);
	c[2] = tcp_connect(&addr);
	CHECK(settle_backlog(l, 3), "three connections never queued");
	EXPECT(&p, l, EVFILT_READ, 3, 0);
	int a = tcp_accept(l);
	EXPECT(&p, l, EVFILT_READ, 2, 0);
	int b = tcp_accept(l);
	int d = tcp_accept(l);
	EXPECT(&p, l, EVFILT_READ, NONE, 0);
	qp_close(&p);
	for (int i = 0; i < 3; i++)
		close(c[i]);
	close(a);
	close(b);
	close(d);
	close(l);
}

/*
 * ENGINE BUG, FIXED: a stream socket that was never connected (fresh from
 * socket(), not listening) shows EPOLLHUP to epoll, and the engine
 * delivered a READ or WRITE knote on it at once with EV_EOF (READ data 0;
 * WRITE data SO_SNDBUF); FreeBSD delivers nothing (no EOF before a
 * connection, and WRITE waits for one, semantics §4.2).  And for `data`:
 * that first event settled the socket's kind as "not a listener" for good
 * (fd.c, kqe_fd_settle), so after listen() the READ knote reported
 * data 0 (FIONREAD fails on a listener) instead of the connections waiting,
 * in both modes.  The engine now delivers nothing for EPOLLHUP alone on a
 * socket whose kind is not settled (io.c, sock_unconnected), so the
 * kind is settled by the first real event.  1 expects the old, wrong
 * values; 0 expects FreeBSD's.
 */
#define KNOWN_BUG_NEVER_CONNECTED_SOCKET 0

/* A socket registered before listen(): a listener all the same. */
static void test_listen_after_add(void)
{
	struct sockaddr_in addr;
	struct qp p;

	/* EV_ADD, then listen() with no collection between. */
	qp_open(&p);
	int l = tcp_socket();
	CHANGE(&p, l, EVFILT_READ, EV_ADD, 0, 0);
	listen_on(l, &addr);
	EXPECT(&p, l, EVFILT_READ, NONE, 0);
	int c = tcp_connect(&addr);
	CHECK(settle_backlog(l, 1), "connection never queued");
	EXPECT(&p, l, EVFILT_READ, 1, 0);
	qp_close(&p);
	close(c);
	close(l);

	/* A collection before listen(). */
	qp_open(&p);
	l = tcp_socket();
	CHANGE(&p, l, EVFILT_READ, EV_ADD, 0, 0);
#if KNOWN_BUG_NEVER_CONNECTED_SOCKET
	printf("note: known engine bug: a never-connected stream socket gives EV_EOF, and a "
	       "listener it becomes reports data 0\n");
	EXPECT(&p, l, EVFILT_READ, 0, EV_EOF);
#else
	EXPECT(&p, l, EVFILT_READ, NONE, 0);
#endif
	listen_on(l, &addr);
	EXPECT(&p, l, EVFILT_READ, NONE, 0);
	int cc[2];
	cc[0] = tcp_connect(&addr);
	cc[1] = tcp_connect(&addr);
	CHECK(settle_backlog(l, 2), "connections never queued");
#if KNOWN_BUG_NEVER_CONNECTED_SOCKET
	EXPECT(&p, l, EVFILT_READ, 0, 0);
#else
	EXPECT(&p, l, EVFILT_READ, 2, 0);
#endif
	qp_close(&p);

	/* WRITE on a TCP socket before and after it connects. */
	qp_open(&p);
	int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(t >= 0, "socket: %s", strerror(errno));
	CHANGE(&p, t, EVFILT_WRITE, EV_ADD, 0, 0);
#if KNOWN_BUG_NEVER_CONNECTED_SOCKET
	EXPECT(&p, t, EVFILT_WRITE, sndbuf_of(t), EV_EOF);
#else
	EXPECT(&p, t, EVFILT_WRITE, NONE, 0);
#endif
	CHECK(connect(t, (struct sockaddr *)&addr, sizeof addr) == 0, "connect: %s", strerror(errno));
	EXPECT(&p, t, EVFILT_WRITE, sndbuf_of(t), 0);
	qp_close(&p);
	close(t);
	close(cc[0]);
	close(cc[1]);
	close(l);

	/* READ on a never-connected unix stream socket. */
	qp_open(&p);
	int u = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CHECK(u >= 0, "socket: %s", strerror(errno));
	CHANGE(&p, u, EVFILT_READ, EV_ADD, 0, 0);
#if KNOWN_BUG_NEVER_CONNECTED_SOCKET
	EXPECT(&p, u, EVFILT_READ, 0, EV_EOF);
#else
	EXPECT(&p, u, EVFILT_READ, NONE, 0);
#endif
	qp_close(&p);
	close(u);
}

/* Sockets registered before connect(): nothing while unconnected, WRITE
 * (and READ when bytes come) once connected, and a refused connect as
 * EV_EOF on both with the error in fflags (FreeBSD keeps so_error on the
 * socket, so both knotes report it; the engine reads SO_ERROR once and
 * keeps it in both knotes of the queue that read it: the other queue of
 * the pair gets 0, as documented).  The AF_UNIX socket is collected several times before
 * its connect(), which wakes nothing on the connecting socket. */
static void test_connect_after_add(const char *dir)
{
	struct sockaddr_in addr;
	struct qp p;
	int l = tcp_listener(&addr);
	/* A port where nobody listens: a listener's, closed. */
	struct sockaddr_in gone;
	int tmp = tcp_listener(&gone);
	close(tmp);

	/* Refused. */
	qp_open(&p);
	int t = tcp_socket();
	CHANGE(&p, t, EVFILT_READ, EV_ADD, 0, 0);
	CHANGE(&p, t, EVFILT_WRITE, EV_ADD, 0, 0);
	EXPECT_RW(&p, t, NONE, 0, NONE, 0);
	CHECK(connect(t, (struct sockaddr *)&gone, sizeof gone) < 0 &&
	      (errno == EINPROGRESS || errno == ECONNREFUSED), "connect: %s", strerror(errno));
	struct pollfd pf = { .fd = t, .events = POLLIN };
	CHECK(poll(&pf, 1, 5000) == 1 && (pf.revents & POLLERR), "the refusal never came");
	for (int i = 0; i < 2; i++) {
		struct want w[2] = {
			{ t, EVFILT_READ, 0, EV_EOF, ECONNREFUSED, true },
			{ t, EVFILT_WRITE, sock_space(t), EV_EOF, ECONNREFUSED, true },
		};
		expect_events(__LINE__, &p, w, 2);
	}
	qp_close(&p);
	close(t);

	/* Non-blocking TCP connect: WRITE once established. */
	qp_open(&p);
	t = tcp_socket();
	CHANGE(&p, t, EVFILT_READ, EV_ADD, 0, 0);
	CHANGE(&p, t, EVFILT_WRITE, EV_ADD, 0, 0);
	EXPECT_RW(&p, t, NONE, 0, NONE, 0);
	EXPECT_RW(&p, t, NONE, 0, NONE, 0);
	CHECK(connect(t, (struct sockaddr *)&addr, sizeof addr) == 0 || errno == EINPROGRESS,
	      "connect: %s", strerror(errno));
	pf = (struct pollfd){ .fd = t, .events = POLLOUT };
	CHECK(poll(&pf, 1, 5000) == 1 && pf.revents == POLLOUT, "never connected");
	EXPECT_RW(&p, t, NONE, 0, sock_space(t), 0);
	int s = tcp_accept(l);
	PUT(s, 5);
	SETTLE(t, 5);
	EXPECT_RW(&p, t, 5, 0, sock_space(t), 0);
	qp_close(&p);
	close(s);
	close(t);
	close(l);

	/* AF_UNIX. */
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/csock", dir);
	int ul = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CHECK(ul >= 0 && bind(ul, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(ul, 8) == 0,
	      "unix listener: %s", strerror(errno));
	qp_open(&p);
	int u = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CHECK(u >= 0, "socket: %s", strerror(errno));
	CHANGE(&p, u, EVFILT_READ, EV_ADD, 0, 0);
	CHANGE(&p, u, EVFILT_WRITE, EV_ADD, 0, 0);
	for (int i = 0; i < 3; i++)
		EXPECT_RW(&p, u, NONE, 0, NONE, 0);
	CHECK(connect(u, (struct sockaddr *)&sa, sizeof sa) == 0, "unix connect: %s", strerror(errno));
	EXPECT_RW(&p, u, NONE, 0, sock_space(u), 0);
	int ua = accept4(ul, NULL, NULL, SOCK_CLOEXEC);
	CHECK(ua >= 0, "accept: %s", strerror(errno));
	PUT(ua, 7);
	EXPECT_RW(&p, u, 7, 0, sock_space(u), 0);
	qp_close(&p);
	close(ua);
	close(u);
	close(ul);
	unlink(sa.sun_path);
}

/* AF_UNIX listener: Linux has no backlog query for it; the engine documents
 * data = 1 whatever the count (semantics §6.3; FreeBSD: the count). */
static void test_unix_listener(const char *dir)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/sock", dir);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CHECK(l >= 0 && bind(l, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(l, 8) == 0,
	      "unix listener: %s", strerror(errno));
	struct qp p;
	qp_open(&p);
	CHANGE(&p, l, EVFILT_READ, EV_ADD, 0, 0);
	EXPECT(&p, l, EVFILT_READ, NONE, 0);
	int c[2];
	for (int i = 0; i < 2; i++) {
		c[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK(c[i] >= 0 && connect(c[i], (struct sockaddr *)&sa, sizeof sa) == 0,
		      "unix connect: %s", strerror(errno));
	}
	EXPECT(&p, l, EVFILT_READ, 1, 0); /* engine: 1 (FreeBSD: 2) */
	qp_close(&p);
	close(c[0]);
	close(c[1]);
	close(l);
	unlink(sa.sun_path);
}

/* Regular file: READ data = size - offset, ready while not 0 (so not at
 * exact EOF, and negative past it); WRITE always ready with data 0. */
static void test_file(const char *dir)
{
	char path[256];
	snprintf(path, sizeof path, "%s/file", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0, "open file: %s", strerror(errno));
	int wfd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	CHECK(wfd >= 0, "open file for append: %s", strerror(errno));
	PUT(wfd, 10);
	CHECK(lseek(fd, 3, SEEK_SET) == 3, "lseek: %s", strerror(errno));
	struct qp p;
	qp_open(&p);
	p.lazy = false; /* files: data computed at delivery in both modes */
	CHANGE(&p, fd, EVFILT_READ, EV_ADD, 0, 0);
	EXPECT(&p, fd, EVFILT_READ, 7, 0);
	EXPECT(&p, fd, EVFILT_READ, 7, 0);
	TAKE(fd, 2);
	EXPECT(&p, fd, EVFILT_READ, 5, 0);
	CHECK(lseek(fd, 12, SEEK_SET) == 12, "lseek: %s", strerror(errno));
	EXPECT(&p, fd, EVFILT_READ, -2, 0);
	PUT(wfd, 5);
	EXPECT(&p, fd, EVFILT_READ, 3, 0);
	CHECK(lseek(fd, 15, SEEK_SET) == 15, "lseek: %s", strerror(errno));
	EXPECT(&p, fd, EVFILT_READ, NONE, 0); /* exact EOF */
	PUT(wfd, 5);
	EXPECT(&p, fd, EVFILT_READ, 5, 0);
	/* A fresh knote at offset 9 of the 20 bytes. */
	CHANGE(&p, fd, EVFILT_READ, EV_DELETE, 0, 0);
	CHECK(lseek(fd, 9, SEEK_SET) == 9, "lseek: %s", strerror(errno));
	CHANGE(&p, fd, EVFILT_READ, EV_ADD, 0, 0);
	EXPECT(&p, fd, EVFILT_READ, 11, 0);
	/* NOTE_FILE_POLL: ready at exact EOF, data 0. */
	CHANGE(&p, fd, EVFILT_READ, EV_DELETE, 0, 0);
	CHECK(lseek(fd, 20, SEEK_SET) == 20, "lseek: %s", strerror(errno));
	CHANGE(&p, fd, EVFILT_READ, EV_ADD, NOTE_FILE_POLL, 0);
	EXPECT(&p, fd, EVFILT_READ, 0, 0);
	CHANGE(&p, fd, EVFILT_READ, EV_DELETE, 0, 0);
	/* EV_CLEAR: once, then again only when the file changes; a truncate
	 * below the offset gives a negative count. */
	CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek: %s", strerror(errno));
	CHANGE(&p, fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0);
	EXPECT(&p, fd, EVFILT_READ, 20, EV_CLEAR);
	EXPECT(&p, fd, EVFILT_READ, NONE, 0);
	PUT(wfd, 5);
	EXPECT(&p, fd, EVFILT_READ, 25, EV_CLEAR);
	EXPECT(&p, fd, EVFILT_READ, NONE, 0);
	CHECK(lseek(fd, 8, SEEK_SET) == 8, "lseek: %s", strerror(errno));
	CHECK(ftruncate(wfd, 3) == 0, "ftruncate: %s", strerror(errno));
	EXPECT(&p, fd, EVFILT_READ, -5, EV_CLEAR);
	CHANGE(&p, fd, EVFILT_READ, EV_DELETE, 0, 0);
	/* WRITE on a file. */
	CHANGE(&p, fd, EVFILT_WRITE, EV_ADD, 0, 0);
	EXPECT(&p, fd, EVFILT_WRITE, 0, 0);
	EXPECT(&p, fd, EVFILT_WRITE, 0, 0);
	qp_close(&p);
	close(fd);
	close(wfd);
	unlink(path);

	/* A directory: its size - offset too. */
	int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	CHECK(d >= 0 && fstat(d, &st) == 0 && st.st_size > 0, "directory: %s", strerror(errno));
	qp_open(&p);
	p.lazy = false;
	CHANGE(&p, d, EVFILT_READ, EV_ADD, 0, 0);
	EXPECT(&p, d, EVFILT_READ, (int64_t)st.st_size, 0);
	qp_close(&p);
	close(d);
}

/* The peer closes: EV_EOF with the bytes still buffered, repeated while
 * level, once with EV_CLEAR. */
static void test_eof(void)
{
	struct qp p, pc;
	int sv[2];
	qp_open(&p);
	qp_open(&pc);
	stream_pair(sv);
	CHANGE(&p, sv[1], EVFILT_READ, EV_ADD, 0, 0);
	CHANGE(&pc, sv[1], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0);
	PUT(sv[0], 8);
	EXPECT(&p, sv[1], EVFILT_READ, 8, 0);
	EXPECT(&pc, sv[1], EVFILT_READ, 8, EV_CLEAR);
	close(sv[0]);
	EXPECT(&p, sv[1], EVFILT_READ, 8, EV_EOF);
	EXPECT(&pc, sv[1], EVFILT_READ, 8, EV_CLEAR | EV_EOF);
	EXPECT(&pc, sv[1], EVFILT_READ, NONE, 0);
	TAKE(sv[1], 3);
	EXPECT(&p, sv[1], EVFILT_READ, 5, EV_EOF);
	EXPECT(&p, sv[1], EVFILT_READ, 5, EV_EOF);
	TAKE(sv[1], 5);
	EXPECT(&p, sv[1], EVFILT_READ, 0, EV_EOF);
	EXPECT(&pc, sv[1], EVFILT_READ, NONE, 0);
	qp_close(&p);
	qp_close(&pc);
	close(sv[1]);

	/* Closed before the knote is added: EV_EOF at once. */
	qp_open(&p);
	stream_pair(sv);
	PUT(sv[0], 12);
	close(sv[0]);
	CHANGE(&p, sv[1], EVFILT_READ, EV_ADD, 0, 0);
	EXPECT(&p, sv[1], EVFILT_READ, 12, EV_EOF);
	qp_close(&p);
	close(sv[1]);
}

/*
 * ENGINE BUG, FIXED: a WRITE knote with NOTE_LOWAT on a pipe (level, no
 * EV_CLEAR) that stopped firing because the free space fell below the mark
 * never fired again when the reader drained the pipe, although space >=
 * mark (FreeBSD fires: the knote is evaluated again after a read).
 * NOTE_LOWAT knotes are edge-registered in epoll, and since Linux 5.5 a
 * pipe read wakes writers only when the pipe was full, so no edge came.
 * The engine now parks such a knote on the pipe's inode with inotify
 * (IN_ACCESS: a read), which brings it back when the mark is met
 * (io.c, pipe_lowat_park).  1 expects the old silence; 0 expects
 * FreeBSD's event.
 */
#define KNOWN_BUG_PIPE_WRITE_LOWAT 0

/* NOTE_LOWAT: nothing below the mark, the bytes available at or above it;
 * EOF fires below it.  Data is computed at delivery in lazy mode too. */
static void test_lowat(void)
{
	struct qp p;
	int sv[2];
	qp_open(&p);
	p.lazy = false;
	stream_pair(sv);
	int fd = sv[1];
	CHANGE(&p, fd, EVFILT_READ, EV_ADD, NOTE_LOWAT, 5);
	PUT(sv[0], 3);
	EXPECT(&p, fd, EVFILT_READ, NONE, 0);
	EXPECT(&p, fd, EVFILT_READ, NONE, 0);
	PUT(sv[0], 2);
	EXPECT(&p, fd, EVFILT_READ, 5, 0);
	EXPECT(&p, fd, EVFILT_READ, 5, 0);
	PUT(sv[0], 3);
	EXPECT(&p, fd, EVFILT_READ, 8, 0);
	TAKE(fd, 6);
	EXPECT(&p, fd, EVFILT_READ, NONE, 0);
	PUT(sv[0], 3);
	EXPECT(&p, fd, EVFILT_READ, 5, 0);
	TAKE(fd, 3);
	EXPECT(&p, fd, EVFILT_READ, NONE, 0);
	/* A lowered mark already met fires at the modify. */
	CHANGE(&p, fd, EVFILT_READ, EV_ADD, NOTE_LOWAT, 2);
	EXPECT(&p, fd, EVFILT_READ, 2, 0);
	CHANGE(&p, fd, EVFILT_READ, EV_ADD, NOTE_LOWAT, 100);
	EXPECT(&p, fd, EVFILT_READ, NONE, 0);
	/* EOF below the mark. */
	close(sv[0]);
	EXPECT(&p, fd, EVFILT_READ, 2, EV_EOF);
	qp_close(&p);
	close(fd);

	/* On a pipe. */
	int pp[2];
	qp_open(&p);
	p.lazy = false;
	make_pipe(pp);
	CHANGE(&p, pp[0], EVFILT_READ, EV_ADD, NOTE_LOWAT, 10);
	PUT(pp[1], 4);
	EXPECT(&p, pp[0], EVFILT_READ, NONE, 0);
	PUT(pp[1], 6);
	EXPECT(&p, pp[0], EVFILT_READ, 10, 0);
	TAKE(pp[0], 1);
	EXPECT(&p, pp[0], EVFILT_READ, NONE, 0);
	TAKE(pp[0], 9);
	CHANGE(&p, pp[0], EVFILT_READ, EV_DELETE, 0, 0);
	/* WRITE on the pipe: free space against the mark. */
	CHANGE(&p, pp[1], EVFILT_WRITE, EV_ADD, NOTE_LOWAT, 65000);
	EXPECT(&p, pp[1], EVFILT_WRITE, PIPE_SIZE, 0);
	PUT(pp[1], 1000);
	EXPECT(&p, pp[1], EVFILT_WRITE, NONE, 0);
	TAKE(pp[0], 1000);
#if KNOWN_BUG_PIPE_WRITE_LOWAT
	printf("note: known engine bug: a pipe's WRITE NOTE_LOWAT knote does not fire again once drained\n");
	EXPECT(&p, pp[1], EVFILT_WRITE, NONE, 0);
#else
	EXPECT(&p, pp[1], EVFILT_WRITE, PIPE_SIZE, 0);
	EXPECT(&p, pp[1], EVFILT_WRITE, PIPE_SIZE, 0);
	/* Below the mark again, a read that stays below, one that meets it. */
	PUT(pp[1], 1000);
	EXPECT(&p, pp[1], EVFILT_WRITE, NONE, 0);
	TAKE(pp[0], 100);
	EXPECT(&p, pp[1], EVFILT_WRITE, NONE, 0);
	TAKE(pp[0], 500);
	EXPECT(&p, pp[1], EVFILT_WRITE, PIPE_SIZE - 400, 0);
	TAKE(pp[0], 400);
#endif
	qp_close(&p);
	close(pp[0]);
	close(pp[1]);

	/* WRITE on a socket: free send space against the mark. */
	qp_open(&p);
	p.lazy = false;
	stream_pair(sv);
	int64_t sndbuf = sndbuf_of(sv[0]);
	CHANGE(&p, sv[0], EVFILT_WRITE, EV_ADD, NOTE_LOWAT, sndbuf - 100);
	EXPECT(&p, sv[0], EVFILT_WRITE, sndbuf, 0);
	PUT(sv[0], 1000);
	EXPECT(&p, sv[0], EVFILT_WRITE, NONE, 0);
	TAKE(sv[1], 1000);
	EXPECT(&p, sv[0], EVFILT_WRITE, sndbuf, 0);
	qp_close(&p);
	close(sv[0]);
	close(sv[1]);

	/* NOTE_LOWAT with EV_CLEAR: once per arrival that leaves the mark met. */
	qp_open(&p);
	p.lazy = false;
	stream_pair(sv);
	CHANGE(&p, sv[1], EVFILT_READ, EV_ADD | EV_CLEAR, NOTE_LOWAT, 5);
	PUT(sv[0], 3);
	EXPECT(&p, sv[1], EVFILT_READ, NONE, 0);
	PUT(sv[0], 2);
	EXPECT(&p, sv[1], EVFILT_READ, 5, EV_CLEAR);
	EXPECT(&p, sv[1], EVFILT_READ, NONE, 0);
	PUT(sv[0], 1);
	EXPECT(&p, sv[1], EVFILT_READ, 6, EV_CLEAR);
	TAKE(sv[1], 6);
	PUT(sv[0], 2);
	EXPECT(&p, sv[1], EVFILT_READ, NONE, 0);
	qp_close(&p);
	close(sv[0]);
	close(sv[1]);
}

/* EV_CLEAR, EV_ONESHOT, EV_DISPATCH and EV_FORCEONESHOT on a socket. */
static void test_flag_variants(void)
{
	int sv[2];
	struct qp p;

	/* EV_CLEAR: once per arrival, with everything buffered. */
	qp_open(&p);
	stream_pair(sv);
	CHANGE(&p, sv[1], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0);
	PUT(sv[0], 3);
	EXPECT(&p, sv[1], EVFILT_READ, 3, EV_CLEAR);
	EXPECT(&p, sv[1], EVFILT_READ, NONE, 0);
	PUT(sv[0], 4);
	EXPECT(&p, sv[1], EVFILT_READ, 7, EV_CLEAR);
	TAKE(sv[1], 7);
	EXPECT(&p, sv[1], EVFILT_READ, NONE, 0);
	PUT(sv[0], 1);
	EXPECT(&p, sv[1], EVFILT_READ, 1, EV_CLEAR);
	qp_close(&p);
	close(sv[0]);
	close(sv[1]);

	/* EV_ONESHOT: one event, then the knote is gone. */
	qp_open(&p);
	stream_pair(sv);
	CHANGE(&p, sv[1], EVFILT_READ, EV_ADD | EV_ONESHOT, 0, 0);
	PUT(sv[0], 21);
	EXPECT(&p, sv[1], EVFILT_READ, 21, EV_ONESHOT);
	EXPECT(&p, sv[1], EVFILT_READ, NONE, 0);
	for (int m = 0; m < 2; m++)
		CHECK(change(p.q[m], sv[1], EVFILT_READ, EV_DELETE, 0, 0) < 0 && errno == ENOENT,
		      "%s queue: oneshot knote still there", mode[m]);
	/* Added again while 21 bytes wait: at once. */
	CHANGE(&p, sv[1], EVFILT_READ, EV_ADD | EV_ONESHOT, 0, 0);
	PUT(sv[0], 2);
	EXPECT(&p, sv[1], EVFILT_READ, 23, EV_ONESHOT);
	qp_close(&p);
	close(sv[0]);
	close(sv[1]);

	/* EV_DISPATCH: one event, none while disabled, EV_ENABLE delivers
	 * with what is there now. */
	qp_open(&p);
	stream_pair(sv);
	CHANGE(&p, sv[1], EVFILT_READ, EV_ADD | EV_DISPATCH, 0, 0);
	PUT(sv[0], 3);
	EXPECT(&p, sv[1], EVFILT_READ, 3, EV_DISPATCH);
	EXPECT(&p, sv[1], EVFILT_READ, NONE, 0);
	PUT(sv[0], 40);
	EXPECT(&p, sv[1], EVFILT_READ, NONE, 0);
	CHANGE(&p, sv[1], EVFILT_READ, EV_ENABLE, 0, 0);
	EXPECT(&p, sv[1], EVFILT_READ, 43, EV_DISPATCH);
	TAKE(sv[1], 10);
	CHANGE(&p, sv[1], EVFILT_READ, EV_ENABLE, 0, 0);
	EXPECT(&p, sv[1], EVFILT_READ, 33, EV_DISPATCH);
	TAKE(sv[1], 33);
	CHANGE(&p, sv[1], EVFILT_READ, EV_ENABLE, 0, 0);
	EXPECT(&p, sv[1], EVFILT_READ, NONE, 0);
	PUT(sv[0], 2);
	EXPECT(&p, sv[1], EVFILT_READ, 2, EV_DISPATCH);
	qp_close(&p);
	close(sv[0]);
	close(sv[1]);

	/* EV_FORCEONESHOT on a level knote: queued now, delivered once. */
	qp_open(&p);
	stream_pair(sv);
	CHANGE(&p, sv[1], EVFILT_READ, EV_ADD, 0, 0);
	PUT(sv[0], 17);
	EXPECT(&p, sv[1], EVFILT_READ, 17, 0);
	PUT(sv[0], 1);
	CHANGE(&p, sv[1], EVFILT_READ, EV_FORCEONESHOT, 0, 0);
	EXPECT(&p, sv[1], EVFILT_READ, 18, EV_ONESHOT);
	EXPECT(&p, sv[1], EVFILT_READ, NONE, 0);
	qp_close(&p);
	close(sv[0]);
	close(sv[1]);

	/* A disabled knote enabled later, and EV_ADD|EV_DISABLE. */
	qp_open(&p);
	stream_pair(sv);
	CHANGE(&p, sv[1], EVFILT_READ, EV_ADD | EV_DISABLE, 0, 0);
	PUT(sv[0], 30);
	EXPECT(&p, sv[1], EVFILT_READ, NONE, 0);
	TAKE(sv[1], 6);
	CHANGE(&p, sv[1], EVFILT_READ, EV_ENABLE, 0, 0);
	EXPECT(&p, sv[1], EVFILT_READ, 24, 0);
	EXPECT(&p, sv[1], EVFILT_READ, 24, 0);
	qp_close(&p);
	close(sv[0]);
	close(sv[1]);
}

/* nevents 1 with READ and WRITE ready on one socket: the one that does not
 * fit waits on the ready list and is delivered at the next call, with its
 * data computed then (bytes are added between calls). */
static void test_small_eventlist(void)
{
	struct qp p;
	int sv[2];
	qp_open(&p);
	stream_pair(sv);
	int fd = sv[1];
	CHANGE(&p, fd, EVFILT_READ, EV_ADD, 0, 0);
	CHANGE(&p, fd, EVFILT_WRITE, EV_ADD, 0, 0);
	int have = 0, reads[2] = { 0, 0 }, writes[2] = { 0, 0 };
	for (int call = 0; call < 8; call++) {
		PUT(sv[0], 1);
		have++;
		int64_t sndbuf = sndbuf_of(fd);
		for (int m = 0; m < 2; m++) {
			struct kevent ev[1];
			int n = kqe_kevent(p.q[m], NULL, 0, ev, 1, &zero_ts);
			CHECK(n == 1, "%s queue: call %d: %d events", mode[m], call, n);
			if (n != 1)
				continue;
			int64_t data = ev[0].data;
			if (m == 1)
				CHECK(kqe_event_is_lazy(&ev[0]) && kqe_event_data(&ev[0], &data) == 0,
				      "lazy queue: call %d: not lazy, or %s", call, strerror(errno));
			else
				CHECK(!kqe_event_is_lazy(&ev[0]), "default queue: lazy event");
			CHECK(ev[0].ident == (uintptr_t)fd && ev[0].flags == 0 &&
			      ev[0].udata == tag(fd, ev[0].filter),
			      "%s queue: call %d: ident %d flags 0x%x", mode[m], call,
			      (int)ev[0].ident, ev[0].flags);
			if (ev[0].filter == EVFILT_READ) {
				reads[m]++;
				CHECK(data == have, "%s queue: call %d: READ data %lld, expected %d",
				      mode[m], call, (long long)data, have);
			} else {
				writes[m]++;
				CHECK(ev[0].filter == EVFILT_WRITE && data == sndbuf,
				      "%s queue: call %d: filter %d data %lld, expected WRITE %lld",
				      mode[m], call, ev[0].filter, (long long)data, (long long)sndbuf);
			}
		}
	}
	for (int m = 0; m < 2; m++)
		CHECK(reads[m] >= 3 && writes[m] >= 3, "%s queue: %d READ and %d WRITE events in 8 calls",
		      mode[m], reads[m], writes[m]);
	qp_close(&p);
	close(sv[0]);
	close(sv[1]);
}

/* A queue watched by another: READ data = events pending in it, counted
 * at delivery in both modes (kqread.c). */
static void test_nested_queue(void)
{
	int inner = kqe_kqueue();
	CHECK(inner >= 0, "kqueue: %s", strerror(errno));
	struct qp p;
	qp_open(&p);
	p.lazy = false;
	CHANGE(&p, inner, EVFILT_READ, EV_ADD, 0, 0);
	EXPECT(&p, inner, EVFILT_READ, NONE, 0);
	for (int i = 1; i <= 3; i++) {
		struct kevent ch[2];
		EV_SET(&ch[0], (uintptr_t)i, EVFILT_USER, EV_ADD, 0, 0, NULL);
		EV_SET(&ch[1], (uintptr_t)i, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
		CHECK(kqe_kevent(inner, ch, 2, NULL, 0, NULL) == 0, "user: %s", strerror(errno));
	}
	EXPECT(&p, inner, EVFILT_READ, 3, 0);
	struct kevent ch;
	EV_SET(&ch, 2, EVFILT_USER, EV_DELETE, 0, 0, NULL);
	CHECK(kqe_kevent(inner, &ch, 1, NULL, 0, NULL) == 0, "delete: %s", strerror(errno));
	EXPECT(&p, inner, EVFILT_READ, 2, 0);
	qp_close(&p);
	CHECK(kqe_close(inner) == 0, "close inner");
}

/* Pseudo-terminal: READ = FIONREAD of the terminal (canonical mode: the
 * complete lines only), on both sides; WRITE on a terminal: 0 (engine,
 * doc/linux-engine.md). */
static void test_pty(void)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) {
		printf("note: pty case skipped: posix_openpt/grantpt/unlockpt: %s\n", strerror(errno));
		if (m >= 0)
			close(m);
		return;
	}
	const char *name = ptsname(m);
	int s = name ? open(name, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
	if (s < 0) {
		printf("note: pty case skipped: open %s: %s\n", name ? name : "(no ptsname)",
		       strerror(errno));
		close(m);
		return;
	}
	CHECK(fcntl(m, F_SETFL, O_NONBLOCK) == 0 && fcntl(s, F_SETFL, O_NONBLOCK) == 0,
	      "O_NONBLOCK: %s", strerror(errno));
	struct termios t;
	CHECK(tcgetattr(s, &t) == 0, "tcgetattr: %s", strerror(errno));
	t.c_lflag |= ICANON | ECHO;
	t.c_oflag |= OPOST | ONLCR;
	CHECK(tcsetattr(s, TCSANOW, &t) == 0, "tcsetattr: %s", strerror(errno));

	struct qp p;
	qp_open(&p);
	CHANGE(&p, s, EVFILT_READ, EV_ADD, 0, 0);
	CHANGE(&p, m, EVFILT_READ, EV_ADD, 0, 0);
	EXPECT2(&p, s, EVFILT_READ, NONE, 0, m, EVFILT_READ, NONE, 0);
	/* Canonical: "ab" is no line yet; its echo shows it was processed. */
	PUT(m, 2);
	SETTLE(m, 2);
	EXPECT2(&p, s, EVFILT_READ, NONE, 0, m, EVFILT_READ, 2, 0);
	CHECK(write(m, "\n", 1) == 1, "write newline");
	SETTLE(m, 4); /* echo "xx\r\n" */
	EXPECT2(&p, s, EVFILT_READ, 3, 0, m, EVFILT_READ, 4, 0);
	EXPECT2(&p, s, EVFILT_READ, 3, 0, m, EVFILT_READ, 4, 0);
	TAKE(s, 3);
	TAKE(m, 4);
	EXPECT2(&p, s, EVFILT_READ, NONE, 0, m, EVFILT_READ, NONE, 0);

	/* Raw: every byte counts at once; no echo, no output processing. */
	cfmakeraw(&t);
	CHECK(tcsetattr(s, TCSANOW, &t) == 0, "tcsetattr raw: %s", strerror(errno));
	PUT(m, 5);
	SETTLE(s, 5);
	EXPECT2(&p, s, EVFILT_READ, 5, 0, m, EVFILT_READ, NONE, 0);
	PUT(s, 7);
	SETTLE(m, 7);
	EXPECT2(&p, s, EVFILT_READ, 5, 0, m, EVFILT_READ, 7, 0);
	TAKE(s, 2);
	TAKE(m, 3);
	EXPECT2(&p, s, EVFILT_READ, 3, 0, m, EVFILT_READ, 4, 0);
	PUT(m, 1000);
	SETTLE(s, 1003);
	EXPECT2(&p, s, EVFILT_READ, 1003, 0, m, EVFILT_READ, 4, 0);
	TAKE(s, 1003);
	TAKE(m, 4);
	EXPECT2(&p, s, EVFILT_READ, NONE, 0, m, EVFILT_READ, NONE, 0);

	/* WRITE on the terminal. */
	CHANGE(&p, s, EVFILT_WRITE, EV_ADD, 0, 0);
	EXPECT(&p, s, EVFILT_WRITE, 0, 0);
	qp_close(&p);
	close(s);
	close(m);
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "data_test: watchdog: the test hung\n";
	ssize_t r = write(2, msg, sizeof msg - 1);
	(void)r;
	_exit(3);
}

static char tmpdir[64];

static void test_fifo_d(void) { test_fifo(tmpdir); }
static void test_unix_listener_d(void) { test_unix_listener(tmpdir); }
static void test_connect_after_add_d(void) { test_connect_after_add(tmpdir); }
static void test_file_d(void) { test_file(tmpdir); }

int main(void)
{
	signal(SIGALRM, on_alarm);
	signal(SIGPIPE, SIG_IGN);
	alarm(WATCHDOG);
	snprintf(tmpdir, sizeof tmpdir, "%s", "/tmp/kq-data-test-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	int fds_before = kq_fdcount();
	struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
		{ "unix stream: 0, 1, 3, 1000 bytes, partial reads", test_stream_counts },
		{ "level READ follows bytes added and removed between calls", test_level_follows },
		{ "fast path (READ alone) vs general path (READ + WRITE)", test_fast_vs_general },
		{ "READ and WRITE mixing EV_CLEAR and level", test_mixed_edge_level },
		{ "socket WRITE: SO_SNDBUF - SIOCOUTQ", test_socket_write },
		{ "datagram sockets (unix, UDP): the next datagram", test_dgram },
		{ "pipe: READ bytes, WRITE size - bytes, EOF", test_pipe },
		{ "pipe: READ on the write end, reader gone", test_pipe_ends },
		{ "FIFO", test_fifo_d },
		{ "TCP loopback: READ, WRITE, EOF", test_tcp },
		{ "TCP listener: 0, 1, 3 pending connections", test_listener },
		{ "a socket registered before listen()", test_listen_after_add },
		{ "a socket registered before connect(): connected, refused", test_connect_after_add_d },
		{ "AF_UNIX listener", test_unix_listener_d },
		{ "regular file: size - offset", test_file_d },
		{ "EOF: bytes left, level and EV_CLEAR", test_eof },
		{ "NOTE_LOWAT", test_lowat },
		{ "EV_CLEAR, EV_ONESHOT, EV_DISPATCH, EV_FORCEONESHOT, EV_DISABLE", test_flag_variants },
		{ "eventlist of one: ready-list delivery", test_small_eventlist },
		{ "a queue watched by another", test_nested_queue },
		{ "pseudo-terminal", test_pty },
	};
	for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		int before = failures;
		tests[i].fn();
		printf("%s: %s\n", failures == before ? "ok" : "FAIL", tests[i].name);
	}
	CHECK(kq_fdcount() == fds_before, "descriptors %d, were %d", kq_fdcount(), fds_before);
	CHECK(rmdir(tmpdir) == 0, "rmdir %s: %s", tmpdir, strerror(errno));
	printf("data_test: %d failure(s)\n", failures);
	return failures ? 1 : 0;
}
