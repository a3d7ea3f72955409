/*
 * watch.c - the queue's inotify instance and its watches.
 *
 * One inotify instance per queue, made on first use and registered in the
 * queue's epoll (TAG_INOTIFY).  A knote watches "/proc/self/fd/N", which
 * names the open file even once it is unlinked.  inotify keeps one watch
 * per inode and instance, so knotes on one inode share a watch (struct
 * kqe_vwatch, found by its wd): the registered mask is the union of what
 * its members need, and the watch is removed with the last of them.  Each
 * member is told of events through its own op (watch.h), so this file
 * knows no filter.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "watch.h"

struct vmember {
	struct knote *kn;
	struct kqe_vwatch **slot; /* where the knote keeps its watch */
	const struct kqe_watch_ops *ops;
	uint32_t mask;            /* the inotify events this knote needs */
};

struct kqe_vwatch {
	int wd;
	uint32_t mask;            /* as registered with inotify */
	uint64_t dev, ino;
	struct kqe_vwatch *hnext; /* hash chain */
	struct vmember *m;
	int n, cap;
};

struct kqe_watches {
	struct kqe_vwatch **tab;  /* watches by wd */
	size_t cap, count;
	bool reading;             /* a batch is running: keep this state */
};

/* ---- the table --------------------------------------------------------------- */

static struct kqe_vwatch *watch_find(struct kqe_watches *st, int wd)
{
	if (st == NULL || st->cap == 0)
		return NULL;
	for (struct kqe_vwatch *w = st->tab[(unsigned)wd & (st->cap - 1)]; w; w = w->hnext)
		if (w->wd == wd)
			return w;
	return NULL;
}

static int watch_insert(struct kqe_watches *st, struct kqe_vwatch *w)
{
	if ((st->count + 1) * 4 > st->cap * 3) {
		size_t ncap = st->cap ? st->cap * 2 : 16;
		struct kqe_vwatch **nt = calloc(ncap, sizeof *nt);
		if (nt == NULL)
			return ENOMEM;
		for (size_t i = 0; i < st->cap; i++) {
			struct kqe_vwatch *x = st->tab[i];
			while (x) {
				struct kqe_vwatch *next = x->hnext;
				size_t h = (unsigned)x->wd & (ncap - 1);
				x->hnext = nt[h];
				nt[h] = x;
				x = next;
			}
		}
		free(st->tab);
		st->tab = nt;
		st->cap = ncap;
	}
	size_t h = (unsigned)w->wd & (st->cap - 1);
	w->hnext = st->tab[h];
	st->tab[h] = w;
	st->count++;
	return 0;
}

static void watch_unlink(struct kqe_watches *st, struct kqe_vwatch *w)
{
	struct kqe_vwatch **pp = &st->tab[(unsigned)w->wd & (st->cap - 1)];
	while (*pp && *pp != w)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = w->hnext;
		st->count--;
	}
}

static void state_maybe_free(struct kqe_queue *q)
{
	struct kqe_watches *st = q->watches;
	if (st == NULL || st->count > 0 || st->reading)
		return;
	free(st->tab);
	free(st);
	q->watches = NULL;
	/* The inotify descriptor stays until the queue closes: made once. */
}

static void proc_path(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

static int watch_errno(int err)
{
	/* Out of watches (fs.inotify.max_user_watches) is a resource limit. */
	return err == ENOSPC ? ENOMEM : err;
}

static int inotify_get(struct kqe_queue *q)
{
	if (q->inotify_fd >= 0)
		return 0;
	int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0)
		return errno;
	int err = kqe_epoll_add(q, fd, EPOLLIN, KQE_TAG(TAG_INOTIFY, 0));
	if (err) {
		close(fd);
		return err;
	}
	q->inotify_fd = fd;
	return 0;
}

/* The watch lost its last member, or the kernel dropped it (rm = false). */
static void watch_free(struct kqe_queue *q, struct kqe_vwatch *w, bool rm)
{
	if (rm && q->inotify_fd >= 0)
		inotify_rm_watch(q->inotify_fd, w->wd); /* its IN_IGNORED finds no watch */
	watch_unlink(q->watches, w);
	free(w->m);
	free(w);
	state_maybe_free(q);
}

/* The ops told something in this batch, each once at its end. */
struct batch {
	const struct kqe_watch_ops *ops[4];
	int n;
};

static void tell(struct kqe_queue *q, struct batch *b, const struct vmember *m, uint32_t mask,
		 bool child, bool partner)
{
	int i = 0;
	while (i < b->n && b->ops[i] != m->ops)
		i++;
	if (i == b->n && b->n < 4 && m->ops->batch_end)
		b->ops[b->n++] = m->ops;
	m->ops->event(q, m->kn, mask, child, partner);
}

/* The kernel dropped the watch (IN_IGNORED: inode gone or unmounted). */
static void watch_gone(struct kqe_queue *q, struct batch *b, struct kqe_vwatch *w)
{
	for (int i = 0; i < w->n; i++) {
		*w->m[i].slot = NULL;
		tell(q, b, &w->m[i], IN_IGNORED, false, false);
	}
	watch_free(q, w, false);
}

/* Bring the registered mask to the union of the members' masks, through a
 * descriptor naming the watched inode: fd, or a member's checked with fstat
 * (a descriptor may have been closed, or reused for another file). */
static int watch_sync(struct kqe_queue *q, struct kqe_vwatch *w, int fd)
{
	uint32_t want = 0;
	for (int i = 0; i < w->n; i++)
		want |= w->m[i].mask;
	if (want == w->mask)
		return 0;
	for (int i = 0; fd < 0 && i < w->n; i++) {
		struct stat sb;
		int cand = (int)w->m[i].kn->ident;
		if (fstat(cand, &sb) == 0 && (uint64_t)sb.st_dev == w->dev &&
		    (uint64_t)sb.st_ino == w->ino)
			fd = cand;
	}
	if (fd < 0)
		return 0; /* keep the wider mask: events are filtered per knote */
	char path[32];
	proc_path(path, sizeof path, fd);
	int wd = inotify_add_watch(q->inotify_fd, path, want);
	if (wd < 0)
		return watch_errno(errno);
	if (wd != w->wd) {
		/* Another inode after all (a race on the descriptor): undo. */
		if (watch_find(q->watches, wd) == NULL)
			inotify_rm_watch(q->inotify_fd, wd);
		return 0;
	}
	w->mask = want;
	return 0;
}

int kqe_watch_join(struct kqe_queue *q, int fd, const struct stat *sb, struct knote *kn,
		   struct kqe_vwatch **slot, uint32_t mask, const struct kqe_watch_ops *ops)
{
	int err = inotify_get(q);
	if (err)
		return err;
	if (q->watches == NULL && (q->watches = calloc(1, sizeof *q->watches)) == NULL)
		return ENOMEM;
	struct kqe_watches *st = q->watches;
	char path[32];
	proc_path(path, sizeof path, fd);
	int wd = inotify_add_watch(q->inotify_fd, path, mask | IN_MASK_ADD);
	if (wd < 0) {
		err = watch_errno(errno);
		state_maybe_free(q);
		return err;
	}
	struct kqe_vwatch *w = watch_find(st, wd);
	if (w && (w->dev != (uint64_t)sb->st_dev || w->ino != (uint64_t)sb->st_ino)) {
		/* The kernel dropped that watch and gave its number to this
		 * inode before we read the IN_IGNORED: the old one is gone. */
		struct batch b = { .n = 0 };
		st->reading = true; /* keep the table through the members' ops */
		watch_gone(q, &b, w);
		for (int i = 0; i < b.n; i++)
			b.ops[i]->batch_end(q);
		st->reading = false;
		w = NULL;
	}
	if (w == NULL) {
		w = calloc(1, sizeof *w);
		if (w)
			w->wd = wd;
		if (w == NULL || watch_insert(st, w) != 0) {
			free(w);
			inotify_rm_watch(q->inotify_fd, wd);
			state_maybe_free(q);
			return ENOMEM;
		}
		w->dev = (uint64_t)sb->st_dev;
		w->ino = (uint64_t)sb->st_ino;
	}
	if (w->n == w->cap) {
		int ncap = w->cap ? w->cap * 2 : 2;
		struct vmember *m = realloc(w->m, (size_t)ncap * sizeof *m);
		if (m == NULL) {
			if (w->n == 0)
				watch_free(q, w, true);
			return ENOMEM;
		}
		w->m = m;
		w->cap = ncap;
	}
	w->m[w->n++] = (struct vmember){ .kn = kn, .slot = slot, .ops = ops, .mask = mask };
	w->mask |= mask;
	*slot = w;
	return 0;
}

void kqe_watch_leave(struct kqe_queue *q, struct knote *kn, struct kqe_vwatch **slot)
{
	struct kqe_vwatch *w = *slot;
	if (w == NULL)
		return;
	*slot = NULL;
	for (int i = 0; i < w->n; i++) {
		if (w->m[i].kn == kn) {
			w->m[i] = w->m[--w->n];
			break;
		}
	}
	if (w->n == 0)
		watch_free(q, w, true);
	else
		(void)watch_sync(q, w, -1); /* narrower now, if a member can tell */
}

int kqe_watch_remask(struct kqe_queue *q, struct kqe_vwatch *w, struct knote *kn, uint32_t mask,
		     int fd)
{
	for (int i = 0; i < w->n; i++) {
		if (w->m[i].kn != kn)
			continue;
		uint32_t old = w->m[i].mask;
		w->m[i].mask = mask;
		int err = watch_sync(q, w, fd);
		if (err)
			w->m[i].mask = old;
		return err;
	}
	return 0;
}

/* ---- reading inotify ----------------------------------------------------------- */

/* Events were lost: every member is told, and compares what it can. */
static void overflow(struct kqe_queue *q, struct batch *b)
{
	struct kqe_watches *st = q->watches;
	for (size_t i = 0; i < st->cap; i++)
		for (struct kqe_vwatch *w = st->tab[i]; w; w = w->hnext)
			for (int j = 0; j < w->n; j++)
				tell(q, b, &w->m[j], IN_Q_OVERFLOW, false, false);
}

static void dispatch(struct kqe_queue *q, struct batch *b, struct kqe_vwatch *w,
		     const struct inotify_event *e, bool partner)
{
	bool child = e->len > 0; /* about an entry of a watched directory */
	for (int i = 0; i < w->n; i++)
		tell(q, b, &w->m[i], e->mask, child, partner);
}

#define EVBUF_SIZE 16384
#define EVENT_MAX (sizeof(struct inotify_event) + NAME_MAX + 1)

static void inotify_read(struct kqe_queue *q)
{
	if (q->inotify_fd < 0)
		return;
	char buf[EVBUF_SIZE] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct kqe_watches *st = q->watches;
	struct batch b = { .n = 0 };
	bool lost = false;
	if (st)
		st->reading = true;
	for (;;) {
		ssize_t r = read(q->inotify_fd, buf, sizeof buf);
		if (r <= 0)
			break;
		const char *end = buf + r, *prev = NULL;
		for (const char *p = buf; p < end;) {
			const struct inotify_event *e = (const struct inotify_event *)p;
			const char *next = p + sizeof *e + e->len;
			if (e->mask & IN_Q_OVERFLOW) {
				lost = true;
			} else {
				struct kqe_vwatch *w = watch_find(st, e->wd);
				if (w && (e->mask & IN_IGNORED)) {
					watch_gone(q, &b, w);
				} else if (w) {
					bool partner = false;
					const struct inotify_event *o = NULL;
					if ((e->mask & IN_MOVED_FROM) && next < end)
						o = (const struct inotify_event *)next;
					else if ((e->mask & IN_MOVED_TO) && prev)
						o = (const struct inotify_event *)prev;
					if (o && o->wd == e->wd && o->cookie == e->cookie &&
					    (o->mask & (IN_MOVED_FROM | IN_MOVED_TO)))
						partner = true;
					dispatch(q, &b, w, e, partner);
				}
			}
			prev = p;
			p = next;
		}
		/* A full buffer may have left events behind; otherwise epoll
		 * reports what came meanwhile.  One read per batch as a rule. */
		if ((size_t)r + EVENT_MAX <= sizeof buf)
			break;
	}
	if (st == NULL)
		return;
	if (lost)
		overflow(q, &b);
	for (int i = 0; i < b.n; i++)
		b.ops[i]->batch_end(q);
	st->reading = false;
	state_maybe_free(q);
}

static int watch_ready(struct kqe_queue *q, const struct epoll_event *buf, int count,
		       struct kevent *out, int room, int *taken)
{
	(void)buf, (void)count, (void)out, (void)room;
	*taken = 1;
	inotify_read(q);
	return 0;
}

static void watch_teardown(struct kqe_queue *q)
{
	if (q->inotify_fd >= 0)
		close(q->inotify_fd);
	q->inotify_fd = -1;
}

static int watch_rearm(struct kqe_queue *q, int epfd, bool add)
{
	if (q->inotify_fd < 0)
		return 0;
	return kqe_epoll_rearm(epfd, add, q->inotify_fd, EPOLLIN, KQE_TAG(TAG_INOTIFY, 0));
}

/* No filter of its own: the inotify source that VNODE, file READ and pipe
 * WRITE knotes share. */
const struct kqe_family kqe_family_watch = {
	.name = "inotify",
	.tags = { TAG_INOTIFY, TAG_WAKE },
	.ready = watch_ready,
	.free = watch_teardown,
	.atfork_queue = watch_teardown,
	.rearm = watch_rearm,
};
