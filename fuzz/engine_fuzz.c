/*
 * engine_fuzz.c - libFuzzer harness for kq's Linux kqueue engine.
 *
 * Each input is decoded into a sequence of operations on one queue: changes
 * (add, delete, enable, disable, trigger, modify, with valid and invalid
 * filters, flags, fflags, data and idents), collections with a zero
 * timeout, writes, reads, shutdowns, descriptors closed and reopened, the
 * queue closed and reopened, and calls with bad arguments.  The targets are
 * real: two socketpairs, a pipe, a memfd (a regular file), a second queue
 * (nested), timers and user events.
 *
 * A model of the queue's knotes (existence, enabled, udata, stored flags)
 * is kept beside the engine, and after every step the harness checks:
 *   - kevent() returns -1 with a known errno, or at most nevents entries;
 *   - error entries have flags == EV_ERROR and come in change order;
 *   - every event belongs to a knote that exists and is enabled, carries its
 *     current udata and its stored flags, and appears once per call;
 *   - the engine's own tables agree with the model (knote count, ready list
 *     length and links, the timer heap);
 *   - no descriptor is left open once the queue and targets are closed.
 * Waits always use a zero timeout, so a run never blocks.
 *
 * Build: see fuzz/Makefile (clang -fsanitize=fuzzer,address,undefined).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/family.h"
#include "../tests/support/fdcount.h"

/* KQFUZZ_TRACE=1 in the environment prints every call, to read a crash. */
static int trace;

/* ---- the input ---------------------------------------------------------- */

struct input {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct input *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

static uint32_t u32(struct input *in)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v = v << 8 | u8(in);
	return v;
}

static uint64_t u64(struct input *in)
{
	return (uint64_t)u32(in) << 32 | u32(in);
}

/* ---- failures ----------------------------------------------------------- */

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "engine_fuzz: %s:%d: check failed: %s: ",	\
			__FILE__, __LINE__, #cond);			\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)


static void trace_kev(const char *what, const struct kevent *k)
{
	if (trace)
		fprintf(stderr, "  %s ident=%lu filter=%d flags=0x%x fflags=0x%x data=%lld udata=%p\n",
			what, (unsigned long)k->ident, k->filter, k->flags, k->fflags,
			(long long)k->data, k->udata);
}

static int known_errno(int e)
{
	switch (e) {
	case EBADF: case EINVAL: case ENOENT: case ENOTSUP: case EPIPE:
	case ENOMEM: case EMFILE: case ESRCH: case ENFILE: case ENOSPC:
		return 1;
	default:
		return 0;
	}
}

/* ---- targets ------------------------------------------------------------ */

enum { T_SP0A, T_SP0B, T_SP1A, T_SP1B, T_PIPER, T_PIPEW, T_MEMFD, T_KQ2, T_NFD };

static int fds[T_NFD];
static int kq = -1;
#define MAXFD 4096
static uint32_t fdgen[MAXFD];   /* bumped whenever a number is closed */

static void close_fd(int *fd)
{
	if (trace)
		fprintf(stderr, "  close %d\n", *fd);
	if (*fd >= 0) {
		if (*fd < MAXFD)
			fdgen[*fd]++;
		close(*fd);
	}
	*fd = -1;
}

static void open_pair(int which)
{
	int sv[2];
	if (which == T_PIPER) {
		if (pipe2(sv, O_CLOEXEC | O_NONBLOCK) < 0)
			sv[0] = sv[1] = -1;
	} else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
		sv[0] = sv[1] = -1;
	}
	fds[which] = sv[0];
	fds[which + 1] = sv[1];
}

static void open_memfd(void)
{
	fds[T_MEMFD] = memfd_create("kqfuzz", MFD_CLOEXEC);
	if (fds[T_MEMFD] >= 0) {
		if (write(fds[T_MEMFD], "0123456789", 10) != 10) {
			/* ignored: the file is just smaller */
		}
		lseek(fds[T_MEMFD], 5, SEEK_SET);
	}
}

static void kq2_close(void)
{
	/* A queue's number, once reused by a new queue, names another file:
	 * the engine tells queues apart (every epoll descriptor shares one
	 * anonymous inode, so it keeps the queue's identity), and the model
	 * treats the number as closed, as for any other descriptor. */
	if (fds[T_KQ2] >= 0) {
		if (fds[T_KQ2] < MAXFD)
			fdgen[fds[T_KQ2]]++;
		CHECK(kqe_close(fds[T_KQ2]) == 0, "errno %d", errno);
	}
	fds[T_KQ2] = -1;
}

static void open_target(int t)
{
	switch (t) {
	case T_SP0A: case T_SP0B: open_pair(T_SP0A); break;
	case T_SP1A: case T_SP1B: open_pair(T_SP1A); break;
	case T_PIPER: case T_PIPEW: open_pair(T_PIPER); break;
	case T_MEMFD: open_memfd(); break;
	case T_KQ2: fds[T_KQ2] = kqe_kqueue(); break;
	}
}

static void close_target(int t)
{
	switch (t) {
	case T_SP0A: case T_SP0B: close_fd(&fds[T_SP0A]); close_fd(&fds[T_SP0B]); break;
	case T_SP1A: case T_SP1B: close_fd(&fds[T_SP1A]); close_fd(&fds[T_SP1B]); break;
	case T_PIPER: case T_PIPEW: close_fd(&fds[T_PIPER]); close_fd(&fds[T_PIPEW]); break;
	case T_MEMFD: close_fd(&fds[T_MEMFD]); break;
	case T_KQ2: kq2_close(); break;
	}
}

/* ---- the model ---------------------------------------------------------- */

#define MAXKN 256

struct mknote {
	int used;
	short filter;
	uintptr_t ident;
	int enabled;
	void *udata;
	uint16_t flags;   /* stored flags, as events show them (EV_EOF aside) */
	uint32_t gen;     /* fdgen of the ident at creation (fd filters) */
};

static struct mknote model[MAXKN];
static uintptr_t udata_serial;

static int is_fd_filter(short f)
{
	return f == EVFILT_READ || f == EVFILT_WRITE || f == EVFILT_VNODE;
}

static int implemented(short f)
{
	/* The families are registered by the first kqe_kqueue(). */
	const struct kqe_family *fam = kqe_family_of(f);
	return fam && fam->ops && fam->ops->attach;
}

static struct mknote *mfind(short filter, uintptr_t ident)
{
	for (int i = 0; i < MAXKN; i++)
		if (model[i].used && model[i].filter == filter && model[i].ident == ident)
			return &model[i];
	return NULL;
}

static struct mknote *mnew(void)
{
	for (int i = 0; i < MAXKN; i++)
		if (!model[i].used) {
			memset(&model[i], 0, sizeof model[i]);
			model[i].used = 1;
			return &model[i];
		}
	CHECK(0, "model full");
	return NULL;
}

static int mcount(void)
{
	int n = 0;
	for (int i = 0; i < MAXKN; i++)
		n += model[i].used;
	return n;
}

static uint32_t cur_gen(uintptr_t ident)
{
	return ident < MAXFD ? fdgen[ident] : 0;
}

static int fd_open_now(uintptr_t ident)
{
	if (ident > INT_MAX)
		return 0;
	return fcntl((int)ident, F_GETFD) >= 0;
}

/*
 * What the engine does before applying a change, made on the model: a
 * knote on a descriptor that now names another file is dropped; a change
 * that finds the descriptor closed drops the knote (EBADF).  Returns
 * whether a new READ/WRITE knote would be attached, which drops the other
 * direction's knote if it names an older file.
 */
static void model_prechange(const struct kevent *kev)
{
	if (!is_fd_filter(kev->filter) || !implemented(kev->filter))
		return;
	unsigned fl = kev->flags & ~EV_SYSFLAGS;
	if ((fl & (EV_ENABLE | EV_DISABLE)) == (EV_ENABLE | EV_DISABLE) ||
	    (fl & (EV_ADD | EV_KEEPUDATA)) == (EV_ADD | EV_KEEPUDATA) || kev->ident > INT_MAX)
		return;
	struct mknote *m = mfind(kev->filter, kev->ident);
	if (!fd_open_now(kev->ident)) {
		if (m && trace)
			fprintf(stderr, "    model: closed (%d, %lu)\n", m->filter, (unsigned long)m->ident);
		if (m)
			m->used = 0;
		return;
	}
	if (trace && m && m->gen != cur_gen(kev->ident))
		fprintf(stderr, "    model: stale (%d, %lu) gen %u now %u\n", kev->filter, (unsigned long)kev->ident, m->gen, cur_gen(kev->ident));
	if (m && m->gen != cur_gen(kev->ident)) {
		m->used = 0;
		m = NULL;
	}
	if (m == NULL && (fl & EV_ADD) &&
	    (kev->filter == EVFILT_READ || kev->filter == EVFILT_WRITE)) {
		short other = kev->filter == EVFILT_READ ? EVFILT_WRITE : EVFILT_READ;
		struct mknote *o = mfind(other, kev->ident);
		if (o && o->gen != cur_gen(kev->ident)) {
			if (trace)
				fprintf(stderr, "    model: other direction stale\n");
			o->used = 0;
		}
	}
}

/* The change succeeded (err 0) or failed: update the model. */
static void model_apply(const struct kevent *kev, int err)
{
	unsigned fl = kev->flags & ~EV_SYSFLAGS;
	struct mknote *m = mfind(kev->filter, kev->ident);
	if (err) {
		/* A failed change leaves an existing knote as it was, except
		 * that one found on a closed descriptor is gone. */
		if (err == EBADF && m && is_fd_filter(kev->filter))
			m->used = 0;
		return;
	}
	CHECK(implemented(kev->filter), "change on filter %d succeeded", kev->filter);
	if (trace)
		fprintf(stderr, "    model: %s (%d, %lu)\n", m ? "has" : "lacks", kev->filter,
			(unsigned long)kev->ident);
	if (m == NULL) {
		CHECK(fl & EV_ADD, "change without EV_ADD succeeded on a missing knote");
		m = mnew();
		m->filter = kev->filter;
		m->ident = kev->ident;
		m->enabled = !(fl & EV_DISABLE);
		m->udata = kev->udata;
		m->flags = fl & KN_STORED_FLAGS;
		if (fl & EV_FORCEONESHOT)
			m->flags |= EV_ONESHOT;
		if (kev->filter == EVFILT_TIMER && !(kev->fflags & NOTE_ABSTIME))
			m->flags |= EV_CLEAR;
		if (kev->filter == EVFILT_SIGNAL || kev->filter == EVFILT_PROC)
			m->flags |= EV_CLEAR;
		m->gen = is_fd_filter(kev->filter) ? cur_gen(kev->ident) : 0;
		return;
	}
	if (fl & EV_DELETE) {
		m->used = 0;
		return;
	}
	if (!(fl & EV_KEEPUDATA))
		m->udata = kev->udata;
	if (fl & EV_DISABLE)
		m->enabled = 0;
	if (fl & EV_ENABLE)
		m->enabled = 1;
	if (fl & EV_FORCEONESHOT)
		m->flags |= EV_ONESHOT;
}

/* An event (not an error entry) was returned. */
static void model_event(const struct kevent *ev, const struct kevent *batch, int k)
{
	CHECK(!(ev->flags & EV_ERROR), "event with EV_ERROR among events");
	for (int j = 0; j < k; j++)
		CHECK(batch[j].ident != ev->ident || batch[j].filter != ev->filter,
		      "knote (%d, %lu) delivered twice in one call", ev->filter,
		      (unsigned long)ev->ident);
	struct mknote *m = mfind(ev->filter, ev->ident);
	CHECK(m != NULL, "event for a deleted knote (%d, %lu)", ev->filter,
	      (unsigned long)ev->ident);
	CHECK(m->enabled, "event for a disabled knote (%d, %lu)", ev->filter,
	      (unsigned long)ev->ident);
	CHECK(ev->udata == m->udata, "udata %p, model %p (filter %d ident %lu)", ev->udata,
	      m->udata, ev->filter, (unsigned long)ev->ident);
	CHECK((ev->flags & ~EV_EOF) == m->flags, "flags 0x%x, stored 0x%x (filter %d)",
	      ev->flags, m->flags, ev->filter);
	/* A ONESHOT knote is delivered from its stored state (FreeBSD), so an
	 * EV_FORCEONESHOT timer that never fired shows data 0. */
	if (ev->filter == EVFILT_TIMER && !(m->flags & EV_ONESHOT))
		CHECK(ev->data >= 1, "timer data %lld", (long long)ev->data);
	if (ev->filter == EVFILT_USER)
		CHECK((ev->fflags & ~NOTE_FFLAGSMASK) == 0, "user fflags 0x%x", ev->fflags);
	if (kqe_event_is_lazy(ev)) {
		int64_t d;
		(void)kqe_event_data(ev, &d);
	}
	if (m->flags & EV_ONESHOT)
		m->used = 0;
	else if (m->flags & EV_DISPATCH)
		m->enabled = 0;
}

/* ---- the engine's own tables -------------------------------------------- */

static void check_queue(int fd, int with_model)
{
	struct kqe_queue *q = kqe_queue_get(fd);
	CHECK(q != NULL, "queue %d unknown", fd);
	pthread_mutex_lock(&q->lock);
	size_t n = 0;
	for (size_t i = 0; i < q->hcap; i++)
		for (struct knote *kn = q->htab[i]; kn; kn = kn->hnext) {
			n++;
			CHECK(!(kn->status & KN_REQUEUE), "KN_REQUEUE left set");
			CHECK(!(kn->status & KN_CREATED), "KN_CREATED left set");
			if (with_model) {
				struct mknote *m = mfind(kn->filter, kn->ident);
				CHECK(m != NULL, "engine knote (%d, %lu) not in the model",
				      kn->filter, (unsigned long)kn->ident);
				CHECK(!!(kn->status & KN_ENABLED) == m->enabled,
				      "enabled %d, model %d", !!(kn->status & KN_ENABLED),
				      m->enabled);
				CHECK(kn->udata == m->udata, "stored udata %p, model %p",
				      kn->udata, m->udata);
			}
		}
	CHECK(n == q->hcount, "hcount %zu, knotes %zu", q->hcount, n);
	if (with_model)
		CHECK((int)n == mcount(), "engine has %zu knotes, model %d", n, mcount());
	size_t r = 0;
	struct knote *prev = NULL;
	for (struct knote *kn = q->rhead; kn; kn = kn->rnext) {
		CHECK(kn->rprev == prev, "ready list back link broken");
		CHECK(kn->status & KN_QUEUED, "ready knote without KN_QUEUED");
		CHECK(kn->status & KN_ENABLED, "disabled knote on the ready list");
		CHECK(kqe_knote_find(q, kn->filter, kn->ident) == kn, "ready knote not in table");
		prev = kn;
		CHECK(++r <= n, "ready list longer than the table");
	}
	CHECK(q->rtail == prev, "ready tail wrong");
	CHECK(r == q->nready, "nready %zu, list %zu", q->nready, r);
	CHECK(q->requeue == NULL, "requeue list left");
	for (uint32_t i = 0; i < q->tcount; i++) {
		struct knote *kn = q->theap[i];
		CHECK(kn->filter == EVFILT_TIMER && kn->u.timer.heap_index == i, "heap slot");
		if (i > 0)
			CHECK(q->theap[(i - 1) / 2]->u.timer.deadline <= kn->u.timer.deadline,
			      "heap order");
	}
	CHECK(!q->evbuf_busy && q->nwaiters == 0, "busy state left");
	pthread_mutex_unlock(&q->lock);
	kqe_queue_put(q);
}

/* ---- changes ------------------------------------------------------------ */

static const short raw_filters[] = { 0, 0, EVFILT_AIO, EVFILT_PROCDESC, EVFILT_FS,
	EVFILT_LIO, EVFILT_SENDFILE, EVFILT_EMPTY, -14, -100, 1, 7, SHRT_MIN, SHRT_MAX };

static const unsigned short flag_bits[] = { EV_ADD, EV_DELETE, EV_ENABLE, EV_DISABLE,
	EV_ONESHOT, EV_CLEAR, EV_RECEIPT, EV_DISPATCH, EV_FORCEONESHOT, EV_KEEPUDATA,
	EV_EOF, EV_ERROR };

static void gen_change(struct input *in, struct kevent *kev)
{
	uint8_t sel = u8(in);
	uintptr_t ident = 0;
	short filter = EVFILT_USER;
	uint32_t fflags = 0;
	int64_t data = 0;
	switch (sel % 8) {
	case 0: case 1: { /* a descriptor target */
		int t = u8(in) % T_NFD;
		ident = fds[t] >= 0 ? (uintptr_t)fds[t] : 900;
		uint8_t f = u8(in);
		filter = (f & 3) == 0 ? EVFILT_VNODE : (f & 1) ? EVFILT_READ : EVFILT_WRITE;
		if (f & 4)
			fflags = NOTE_LOWAT;
		if (f & 8)
			fflags |= NOTE_FILE_POLL;
		data = (f >> 4) & 7;
		if (filter == EVFILT_VNODE)
			fflags = u8(in) & 0x7ff;
		break;
	}
	case 2: { /* a bad descriptor */
		static const uintptr_t bad[] = { 900, (uintptr_t)INT_MAX + 1, UINTPTR_MAX,
			(uintptr_t)INT_MAX };
		ident = bad[u8(in) % 4];
		filter = (u8(in) & 1) ? EVFILT_READ : EVFILT_WRITE;
		break;
	}
	case 3: case 4: { /* a timer */
		uint8_t s = u8(in);
		ident = (s & 4) ? UINTPTR_MAX - (s & 3) : (s & 3);
		filter = EVFILT_TIMER;
		static const uint32_t units[] = { 0, NOTE_NSECONDS, NOTE_USECONDS,
			NOTE_MSECONDS, NOTE_SECONDS };
		uint8_t x = u8(in);
		fflags = units[x % 5];
		if (x & 0x80)
			fflags |= NOTE_ABSTIME;
		if (x & 0x40)
			fflags = u32(in); /* anything, mostly invalid */
		switch ((x >> 3) & 7) {
		case 0: data = 0; break;
		case 1: data = -1; break;
		case 2: data = INT64_MAX; break;
		case 3: data = (int64_t)u64(in); break;
		default: data = u8(in) % 4; break;
		}
		break;
	}
	case 5: case 6: { /* a user event */
		uint8_t s = u8(in);
		ident = s & 3;
		filter = EVFILT_USER;
		fflags = (uint32_t)(s >> 2 & 3) << 30 | (s & 0x10 ? NOTE_TRIGGER : 0) | u8(in);
		if (s & 0x20)
			fflags = u32(in);
		data = (int64_t)(s >> 6);
		break;
	}
	default: { /* raw or unimplemented filters */
		uint8_t s = u8(in);
		switch (s % 4) {
		case 0:
			filter = raw_filters[u8(in) % (sizeof raw_filters / sizeof raw_filters[0])];
			break;
		case 1: /* a signal nobody minds */
			filter = EVFILT_SIGNAL;
			ident = (s & 4) ? SIGURG : (s & 8) ? 0 : (s & 16) ? 1000 : SIGWINCH;
			break;
		default: /* a process: this one, init, one that cannot exist */
			filter = EVFILT_PROC;
			ident = (s & 4) ? (uintptr_t)getpid() : (s & 8) ? 0x3ffffff0 : 1;
			fflags = (s & 16) ? NOTE_EXIT : (uint32_t)u8(in) << 24;
			break;
		}
		ident = filter == EVFILT_PROC || filter == EVFILT_SIGNAL ? ident : u8(in);
		fflags = fflags ? fflags : u8(in);
		break;
	}
	}
	uint8_t fsel = u8(in);
	unsigned short flags;
	if (fsel < 24) {
		flags = (unsigned short)(u8(in) << 8 | u8(in)); /* anything */
	} else {
		static const unsigned short common[] = { EV_ADD, EV_DELETE, EV_ENABLE,
			EV_DISABLE, 0, EV_ADD | EV_CLEAR, EV_ADD | EV_ONESHOT,
			EV_ADD | EV_DISPATCH, EV_ADD | EV_DISABLE, EV_FORCEONESHOT };
		flags = common[fsel % 10];
		uint8_t extra = u8(in);
		for (int b = 0; b < 12; b++)
			if ((extra & 0xf) == b && (extra >> 4) & 1)
				flags |= flag_bits[b];
		if (extra & 0x20)
			flags |= EV_RECEIPT;
	}
	EV_SET(kev, ident, filter, flags, fflags, data, (void *)++udata_serial);
}

/* One change alone with nevents 0: 0 or -1 and errno. */
static void op_single(struct input *in)
{
	struct kevent ch;
	gen_change(in, &ch);
	model_prechange(&ch);
	errno = 0;
	int r = kqe_kevent(kq, &ch, 1, NULL, 0, NULL);
	int e = errno;
	trace_kev("single", &ch);
	if (trace)
		fprintf(stderr, "    -> %d errno %d\n", r, r < 0 ? e : 0);
	CHECK(r == 0 || r == -1, "r %d", r);
	if (r < 0)
		CHECK(known_errno(e), "errno %d", e);
	if (ch.filter == 0) {
		CHECK(r == 0, "filter 0 not skipped");
		return;
	}
	model_apply(&ch, r < 0 ? e : 0);
}

/* A batch of changes with room for every entry: each failure or receipt
 * writes one, in change order; with none, events are collected. */
static void op_batch(struct input *in)
{
	struct kevent ch[8], out[24];
	int nc = 1 + u8(in) % 8;
	int extra = u8(in) % 8;
	for (int i = 0; i < nc; i++)
		gen_change(in, &ch[i]);
	struct kevent copy[8];
	memcpy(copy, ch, sizeof ch);
	struct timespec zero = { 0, 0 };
	errno = 0;
	int r = kqe_kevent(kq, ch, nc, out, nc + extra, &zero);
	int e = errno;
	for (int i = 0; i < nc; i++)
		trace_kev("batch", &ch[i]);
	if (trace)
		fprintf(stderr, "    -> %d\n", r);
	for (int i = 0; i < r; i++)
		trace_kev("out", &out[i]);
	CHECK(memcmp(copy, ch, sizeof ch) == 0, "changelist modified");
	CHECK(r >= -1 && r <= nc + extra, "r %d", r);
	if (r < 0) {
		/* Only possible from the collection: nothing may be wrong. */
		CHECK(0, "batch with room failed: errno %d", e);
	}
	int k = 0;
	int have_entries = r > 0 && (out[0].flags & EV_ERROR);
	for (int i = 0; i < nc; i++) {
		model_prechange(&ch[i]);
		if (ch[i].filter == 0)
			continue;
		int err = 0;
		if (have_entries && k < r && out[k].udata == ch[i].udata) {
			CHECK(out[k].flags == EV_ERROR, "entry flags 0x%x", out[k].flags);
			CHECK(out[k].ident == ch[i].ident && out[k].filter == ch[i].filter,
			      "entry does not echo its change");
			err = (int)out[k].data;
			CHECK(err == 0 ? (ch[i].flags & EV_RECEIPT) != 0 : known_errno(err),
			      "entry data %d", err);
			k++;
		} else {
			CHECK(!(ch[i].flags & EV_RECEIPT) || ch[i].filter == 0,
			      "receipt without entry");
		}
		model_apply(&ch[i], err);
	}
	if (have_entries) {
		CHECK(k == r, "%d entries matched of %d", k, r);
		return;
	}
	for (int i = 0; i < r; i++)
		model_event(&out[i], out, i);
}

static void op_wait(struct input *in)
{
	struct kevent out[16];
	int n = 1 + u8(in) % 16;
	struct timespec zero = { 0, 0 };
	errno = 0;
	int r = kqe_kevent(kq, NULL, 0, out, n, &zero);
	CHECK(r >= 0 && r <= n, "r %d errno %d", r, errno);
	if (trace)
		fprintf(stderr, "  wait %d -> %d\n", n, r);
	for (int i = 0; i < r; i++)
		trace_kev("event", &out[i]);
	for (int i = 0; i < r; i++)
		model_event(&out[i], out, i);
}

static void op_io(struct input *in)
{
	uint8_t s = u8(in);
	int t = (s >> 2) % (T_MEMFD + 1);
	int fd = fds[t];
	if (fd < 0)
		return;
	char buf[256];
	switch (s & 3) {
	case 0: { /* write */
		size_t n = 1 + u8(in) % sizeof buf;
		memset(buf, 'x', n);
		ssize_t w = write(fd, buf, n);
		(void)w;
		break;
	}
	case 1: { /* read */
		ssize_t r = read(fd, buf, 1 + u8(in) % sizeof buf);
		(void)r;
		break;
	}
	case 2: /* shutdown a socket, or seek the file */
		if (t == T_MEMFD)
			lseek(fd, u8(in) % 16, SEEK_SET);
		else
			shutdown(fd, u8(in) % 3);
		break;
	default: /* close and reopen the pair (new files, maybe the same numbers) */
		close_target(t);
		open_target(t);
		break;
	}
}

static void op_kq2(struct input *in)
{
	if (fds[T_KQ2] < 0) {
		open_target(T_KQ2);
		if (trace)
			fprintf(stderr, "  kq2 opened: %d\n", fds[T_KQ2]);
		return;
	}
	uint8_t s = u8(in);
	struct kevent ch[2], out[4];
	struct timespec zero = { 0, 0 };
	switch (s % 4) {
	case 0: /* a USER knote, triggered */
		EV_SET(&ch[0], s >> 2, EVFILT_USER, EV_ADD | ((s & 0x40) ? EV_CLEAR : 0), 0, 0, NULL);
		EV_SET(&ch[1], s >> 2, EVFILT_USER, 0, NOTE_TRIGGER, 0, NULL);
		CHECK(kqe_kevent(fds[T_KQ2], ch, 2, NULL, 0, NULL) == 0, "kq2 errno %d", errno);
		break;
	case 1: { /* drain it */
		int r = kqe_kevent(fds[T_KQ2], NULL, 0, out, 4, &zero);
		CHECK(r >= 0 && r <= 4, "kq2 r %d", r);
		break;
	}
	case 2: /* make it watch the first queue: allowed unless that is a cycle */
		EV_SET(&ch[0], (uintptr_t)kq, EVFILT_READ, (s & 4) ? EV_ADD : EV_DELETE, 0, 0,
		       NULL);
		errno = 0;
		if (kqe_kevent(fds[T_KQ2], ch, 1, NULL, 0, NULL) < 0)
			CHECK(errno == EINVAL || errno == ENOENT, "kq2 watch errno %d", errno);
		break;
	default:
		close_target(T_KQ2);
		open_target(T_KQ2);
		break;
	}
	if (fds[T_KQ2] >= 0)
		check_queue(fds[T_KQ2], 0);
}

static void op_misc(struct input *in)
{
	uint8_t s = u8(in);
	if (trace)
		fprintf(stderr, "  misc %d\n", s % 7);
	struct kevent ev[2];
	struct timespec bad = { 0, 1000000000 };
	switch (s % 8) {
	case 0: /* not a queue */
		errno = 0;
		CHECK(kqe_kevent(fds[T_SP0A] >= 0 ? fds[T_SP0A] : -1, NULL, 0, NULL, 0, NULL) < 0 &&
		      errno == EBADF, "socket as queue");
		CHECK(kqe_kevent(-1, NULL, 0, ev, 2, NULL) < 0 && errno == EBADF, "-1 as queue");
		CHECK(kqe_close(-1) < 0 && errno == EBADF, "close(-1)");
		break;
	case 1:
		errno = 0;
		CHECK(kqe_kevent(kq, ev, -1, NULL, 0, NULL) < 0 && errno == EINVAL, "nchanges < 0");
		CHECK(kqe_kevent(kq, NULL, 1, NULL, 0, NULL) < 0 && errno == EINVAL, "NULL changes");
		CHECK(kqe_kevent(kq, NULL, 0, ev, -5, NULL) < 0 && errno == EINVAL, "nevents < 0");
		CHECK(kqe_kevent(kq, NULL, 0, ev, 2, &bad) < 0 && errno == EINVAL, "tv_nsec 1e9");
		bad.tv_sec = -1;
		bad.tv_nsec = 0;
		CHECK(kqe_kevent(kq, NULL, 0, ev, 2, &bad) < 0 && errno == EINVAL, "tv_sec < 0");
		CHECK(kqe_kevent(kq, NULL, 0, NULL, 2, NULL) < 0 && errno == EINVAL, "NULL events");
		CHECK(kqe_kevent(kq, NULL, 0, ev, 0, &bad) == 0, "nevents 0 ignores the timeout");
		break;
	case 2:
		raise(SIGURG);
		break;
	case 3:
		kqe_set_lazy_data(kq, s & 8);
		break;
	case 4:
		kqe_expose(kq);
		break;
	case 5: { /* one array as both lists */
		struct kevent both[4];
		int nc = 1 + (s >> 3) % 4;
		for (int i = 0; i < nc; i++)
			gen_change(in, &both[i]);
		struct kevent copy[4];
		memcpy(copy, both, sizeof both);
		struct timespec zero = { 0, 0 };
		int r = kqe_kevent(kq, both, nc, both, nc, &zero);
		CHECK(r >= -1 && r <= nc, "r %d", r);
		/* Outcomes per change cannot be told apart here: start over. */
		kqe_close(kq);
		memset(model, 0, sizeof model);
		kq = kqe_kqueue();
		CHECK(kq >= 0, "kqueue errno %d", errno);
		break;
	}
	default: /* close the queue and open another */
		CHECK(kqe_close(kq) == 0, "close errno %d", errno);
		errno = 0;
		CHECK(kqe_kevent(kq, NULL, 0, ev, 1, NULL) < 0 && errno == EBADF,
		      "closed queue usable");
		CHECK(kqe_close(kq) < 0 && errno == EBADF, "second close");
		memset(model, 0, sizeof model);
		kq = kqe_kqueue();
		CHECK(kq >= 0, "kqueue errno %d", errno);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	signal(SIGURG, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	trace = getenv("KQFUZZ_TRACE") != NULL;
	int before = kq_fdcount();
	memset(model, 0, sizeof model);
	for (int t = 0; t < T_NFD; t++)
		fds[t] = -1;
	kq = kqe_kqueue();
	CHECK(kq >= 0, "kqueue errno %d", errno);
	open_target(T_SP0A);
	open_target(T_SP1A);
	open_target(T_PIPER);
	open_target(T_MEMFD);
	if (u8(&in) & 1)
		kqe_set_lazy_data(kq, 1);
	if (trace)
		fprintf(stderr, "kq %d sp0 %d %d sp1 %d %d pipe %d %d memfd %d kq2 %d\n", kq,
			fds[0], fds[1], fds[2], fds[3], fds[4], fds[5], fds[6], fds[T_KQ2]);
	for (int steps = 0; in.n > 0 && steps < 200; steps++) {
		switch (u8(&in) % 10) {
		case 0: case 1: case 2: op_single(&in); break;
		case 3: case 4: op_batch(&in); break;
		case 5: case 6: op_wait(&in); break;
		case 7: op_io(&in); break;
		case 8: op_kq2(&in); break;
		default: op_misc(&in); break;
		}
		check_queue(kq, 1);
	}
	CHECK(kqe_close(kq) == 0, "close errno %d", errno);
	for (int t = 0; t < T_NFD; t++)
		close_target(t);
	int after = kq_fdcount();
	CHECK(before == after, "descriptors: %d before, %d after", before, after);
	return 0;
}
