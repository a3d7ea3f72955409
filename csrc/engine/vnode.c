/*
 * vnode.c - EVFILT_VNODE (semantics §4.6, §6.2, §6.3), and the inotify
 * wake-up of READ knotes parked on regular files and of NOTE_LOWAT WRITE
 * knotes parked on pipes (readiness.c).
 *
 * One inotify instance per queue, made on first use and registered in the
 * queue's epoll (TAG_INOTIFY).  A knote watches "/proc/self/fd/N", which
 * names the open file even once it is unlinked.  inotify keeps one watch per
 * inode and instance, so knotes on one inode share a watch (struct
 * kqe_vwatch, found by its wd): the registered mask is the union of what its
 * knotes need, and the watch is removed with the last of them.
 *
 * A batch (one kqe_inotify_read) first gathers what each knote saw, then
 * looks at each touched knote's file at most once (fstat) to tell EXTEND
 * from WRITE and LINK/DELETE from ATTRIB, and finally ORs the requested
 * notes into the knote's fflags_out.  Without EV_CLEAR the knote stays
 * active, so the generic code returns the accumulated notes on every call.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* A vnode knote's own state (knote.u.vn.s). */
struct kqe_vnknote {
	int64_t size;       /* st_size at the last look (NOTE_EXTEND) */
	uint64_t dev, ino;  /* the file at attach (stale) */
	struct kqe_vwatch *watch; /* shared inotify watch, NULL when none */
	uint32_t nlink;     /* st_nlink at the last look */
	uint32_t batch;     /* notes gathered in the inotify batch */
	uint16_t nattrib;   /* IN_ATTRIB events in the batch */
	uint16_t vflags;    /* VN_* bits */
};

/* u.vn.vflags */
#define VN_DIR      0x01 /* the knote watches a directory */
#define VN_TOUCHED  0x02 /* in the batch's touched list */
#define VN_STAT     0x04 /* the batch needs a look at the file */
#define VN_MODIFIED 0x08 /* IN_MODIFY in the batch: EXTEND if the size grew */
#define VN_OVERFLOW 0x10 /* the kernel lost events: compare what can be */
#define VN_REVOKED  0x20 /* the file system went away: EV_EOF */

#define ENTRY_EVENTS (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)

struct vmember {
	struct knote *kn;
	struct kqe_vwatch **slot; /* where the knote keeps its watch */
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

struct kqe_vnstate {
	struct kqe_vwatch **tab;  /* watches by wd */
	size_t cap, count;
	struct knote **touched;   /* VNODE knotes that saw something this batch */
	size_t ntouched, tcap;
	bool reading;             /* a batch is running: keep this state */
};

/* ---- the watch table ----------------------------------------------------- */

static struct kqe_vwatch *watch_find(struct kqe_vnstate *st, int wd)
{
	if (st == NULL || st->cap == 0)
		return NULL;
	for (struct kqe_vwatch *w = st->tab[(unsigned)wd & (st->cap - 1)]; w; w = w->hnext)
		if (w->wd == wd)
			return w;
	return NULL;
}

static int watch_insert(struct kqe_vnstate *st, struct kqe_vwatch *w)
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

static void watch_unlink(struct kqe_vnstate *st, struct kqe_vwatch *w)
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
	struct kqe_vnstate *st = q->vnstate;
	if (st == NULL || st->count > 0 || st->reading)
		return;
	free(st->tab);
	free(st->touched);
	free(st);
	q->vnstate = NULL;
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

/* The watch lost its last knote, or the kernel dropped it (rm = false). */
static void watch_free(struct kqe_queue *q, struct kqe_vwatch *w, bool rm)
{
	if (rm && q->inotify_fd >= 0)
		inotify_rm_watch(q->inotify_fd, w->wd); /* its IN_IGNORED finds no watch */
	watch_unlink(q->vnstate, w);
	free(w->m);
	free(w);
	state_maybe_free(q);
}

static void activate(struct kqe_queue *q, struct knote *kn)
{
	/* A knote on the requeue list goes back to the ready list when this
	 * collection ends; linking it now would break that list. */
	if (kn->status & KN_REQUEUE) {
		kn->status |= KN_ACTIVE;
		return;
	}
	kqe_knote_activate(q, kn);
}

/* An I/O knote woken by inotify, activated when its condition holds now:
 * FreeBSD evaluates a knote at the change that activates it, and an
 * EV_ONESHOT knote is then delivered from the ready list without a second
 * look (drain_ready).  A READ knote parked on a file: a oneshot one only
 * if the file has something to read past its offset (a write in place at
 * EOF leaves nothing); others are looked at again when collected.  A
 * pipe's NOTE_LOWAT WRITE knote: the reader read, so the free space grew;
 * activated only if it now reaches the mark. */
static void wake_io(struct kqe_queue *q, struct knote *kn)
{
	bool met = kn->filter == EVFILT_READ
			   ? !(kn->flags & EV_ONESHOT) || kqe_io_read_met(kn)
			   : kqe_io_lowat_met(kn);
	if (met)
		activate(q, kn);
}

/* The kernel dropped the watch (IN_IGNORED: inode gone or unmounted). */
static void watch_gone(struct kqe_queue *q, struct kqe_vwatch *w)
{
	for (int i = 0; i < w->n; i++) {
		struct knote *kn = w->m[i].kn;
		*w->m[i].slot = NULL;
		if (kn->filter == EVFILT_READ)
			activate(q, kn); /* looked at again, and polled from now on */
		else if (kn->filter == EVFILT_WRITE)
			wake_io(q, kn);
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
		if (watch_find(q->vnstate, wd) == NULL)
			inotify_rm_watch(q->inotify_fd, wd);
		return 0;
	}
	w->mask = want;
	return 0;
}

/* kn joins the watch of the inode that fd (described by sb) names. */
static int watch_join(struct kqe_queue *q, int fd, const struct stat *sb, struct knote *kn,
		      struct kqe_vwatch **slot, uint32_t mask)
{
	int err = inotify_get(q);
	if (err)
		return err;
	if (q->vnstate == NULL && (q->vnstate = calloc(1, sizeof *q->vnstate)) == NULL)
		return ENOMEM;
	struct kqe_vnstate *st = q->vnstate;
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
		watch_gone(q, w);
		st = q->vnstate;
		w = NULL;
	}
	if (w == NULL) {
		if (st == NULL && (st = q->vnstate = calloc(1, sizeof *st)) == NULL) {
			inotify_rm_watch(q->inotify_fd, wd);
			return ENOMEM;
		}
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
	w->m[w->n++] = (struct vmember){ .kn = kn, .slot = slot, .mask = mask };
	w->mask |= mask;
	*slot = w;
	return 0;
}

static void watch_leave(struct kqe_queue *q, struct knote *kn, struct kqe_vwatch **slot)
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

/* ---- READ on regular files (readiness.c) ----------------------------------- */

int kqe_file_watch(struct kqe_queue *q, struct knote *kn, struct kqe_vwatch **slot)
{
	if (*slot)
		return 0;
	struct stat sb;
	if (fstat((int)kn->ident, &sb) < 0)
		return errno;
	/* A pipe's WRITE knote: a read of the pipe (IN_ACCESS, from any
	 * process) is what makes room. */
	uint32_t mask = kn->filter == EVFILT_WRITE
				? IN_ACCESS
				: IN_MODIFY | IN_ATTRIB | (S_ISDIR(sb.st_mode) ? ENTRY_EVENTS : 0);
	return watch_join(q, (int)kn->ident, &sb, kn, slot, mask);
}

void kqe_file_unwatch(struct kqe_queue *q, struct knote *kn, struct kqe_vwatch **slot)
{
	watch_leave(q, kn, slot);
}

/* ---- EVFILT_VNODE ------------------------------------------------------------ */

/* What a VNODE knote needs from inotify.  The base events keep the size and
 * link count seen up to date whatever is requested; the open/close/read
 * family costs a wake-up per use of the file, so only when asked. */
static uint32_t vnode_mask(uint32_t sfflags, bool dir)
{
	uint32_t m = IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
	m |= dir ? ENTRY_EVENTS : IN_MODIFY;
	if (sfflags & NOTE_OPEN)
		m |= IN_OPEN;
	if (sfflags & NOTE_CLOSE)
		m |= IN_CLOSE_NOWRITE;
	if (sfflags & NOTE_CLOSE_WRITE)
		m |= IN_CLOSE_WRITE;
	if (sfflags & NOTE_READ)
		m |= IN_ACCESS;
	return m;
}

static int vn_attach(struct kqe_queue *q, struct knote *kn, const struct kevent *kev)
{
	(void)kev;
	const struct stat *sb = q->change_st;
	switch (sb->st_mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
	case S_IFLNK:
	case S_IFCHR:
	case S_IFBLK:
		break;
	default:
		/* sockets, pipes, FIFOs and anonymous inodes (kqueues, eventfds) */
		return EINVAL;
	}
	/* The vnode state lives outside the knote, so that the knotes of
	 * every other filter stay small (bench scenario 6). */
	struct kqe_vnknote *vs = calloc(1, sizeof *vs);
	if (vs == NULL)
		return ENOMEM;
	kn->u.vn.s = vs;
	vs->dev = (uint64_t)sb->st_dev;
	vs->ino = (uint64_t)sb->st_ino;
	vs->size = (int64_t)sb->st_size;
	vs->nlink = (uint32_t)sb->st_nlink;
	vs->vflags = S_ISDIR(sb->st_mode) ? VN_DIR : 0;
	vs->watch = NULL;
	int err = watch_join(q, (int)kn->ident, sb, kn, &vs->watch,
			     vnode_mask(kn->sfflags, (vs->vflags & VN_DIR) != 0));
	if (err) {
		free(vs);
		kn->u.vn.s = NULL;
	}
	return err;
}

static struct vmember *member_of(struct kqe_vwatch *w, struct knote *kn)
{
	for (int i = 0; i < w->n; i++)
		if (w->m[i].kn == kn)
			return &w->m[i];
	return NULL;
}

static int vn_modify(struct kqe_queue *q, struct knote *kn, const struct kevent *kev)
{
	/* Parameters are replaced, not ORed; notes gathered so far stay. */
	struct kqe_vwatch *w = kn->u.vn.s->watch;
	struct vmember *m = w ? member_of(w, kn) : NULL;
	if (m) {
		uint32_t old = m->mask;
		m->mask = vnode_mask(kev->fflags, (kn->u.vn.s->vflags & VN_DIR) != 0);
		int err = watch_sync(q, w, (int)kn->ident);
		if (err) {
			m->mask = old;
			return err;
		}
	}
	kn->sfflags = kev->fflags;
	kn->sdata = kev->data;
	return 0;
}

static void vn_detach(struct kqe_queue *q, struct knote *kn)
{
	if (kn->u.vn.s == NULL)
		return;
	watch_leave(q, kn, &kn->u.vn.s->watch);
	free(kn->u.vn.s);
	kn->u.vn.s = NULL;
}

static bool vn_stale(struct kqe_queue *q, struct knote *kn, const struct stat *st)
{
	(void)q;
	return kn->u.vn.s->dev != (uint64_t)st->st_dev || kn->u.vn.s->ino != (uint64_t)st->st_ino;
}

static int vn_event(struct kqe_queue *q, struct knote *kn, struct kevent *ev)
{
	(void)q;
	bool revoked = (kn->u.vn.s->vflags & VN_REVOKED) != 0;
	EV_SET(ev, kn->ident, EVFILT_VNODE, kn->flags | (revoked ? EV_EOF : 0), kn->fflags_out, 0,
	       kn->udata);
	return kn->fflags_out != 0 || revoked;
}

const struct kqe_filter kqe_filter_vnode = {
	.is_fd = true,
	.attach = vn_attach,
	.modify = vn_modify,
	.detach = vn_detach,
	.event = vn_event,
	.stale = vn_stale,
};

/* ---- reading inotify ---------------------------------------------------------- */

/* Only requested notes count (libkqueue #1 leaked the others). */
static void vn_note(struct kqe_queue *q, struct knote *kn, uint32_t notes)
{
	notes &= kn->sfflags;
	if (notes == 0)
		return;
	kn->fflags_out |= notes;
	activate(q, kn);
}

static void touch(struct kqe_queue *q, struct kqe_vnstate *st, struct knote *kn)
{
	if (kn->u.vn.s->vflags & VN_TOUCHED)
		return;
	if (st->ntouched == st->tcap) {
		size_t ncap = st->tcap ? st->tcap * 2 : 16;
		struct knote **t = realloc(st->touched, ncap * sizeof *t);
		if (t == NULL) {
			/* No memory for the batch: report what is known now. */
			uint32_t notes = kn->u.vn.s->batch;
			if (kn->u.vn.s->nattrib)
				notes |= NOTE_ATTRIB;
			kn->u.vn.s->batch = 0;
			kn->u.vn.s->nattrib = 0;
			kn->u.vn.s->vflags &= ~(VN_STAT | VN_MODIFIED | VN_OVERFLOW);
			vn_note(q, kn, notes);
			return;
		}
		st->touched = t;
		st->tcap = ncap;
	}
	kn->u.vn.s->vflags |= VN_TOUCHED;
	st->touched[st->ntouched++] = kn;
}

/* The end of a batch for one knote: one fstat when needed. */
static void finish(struct kqe_queue *q, struct knote *kn)
{
	uint32_t notes = kn->u.vn.s->batch;
	uint16_t vf = kn->u.vn.s->vflags;
	uint32_t nattrib = kn->u.vn.s->nattrib;
	kn->u.vn.s->batch = 0;
	kn->u.vn.s->nattrib = 0;
	kn->u.vn.s->vflags &= ~(VN_TOUCHED | VN_STAT | VN_MODIFIED | VN_OVERFLOW);
	if (vf & VN_STAT) {
		struct stat sb;
		if (fstat((int)kn->ident, &sb) == 0 && (uint64_t)sb.st_dev == kn->u.vn.s->dev &&
		    (uint64_t)sb.st_ino == kn->u.vn.s->ino) {
			int64_t size = (int64_t)sb.st_size;
			int64_t dl = (int64_t)sb.st_nlink - (int64_t)kn->u.vn.s->nlink;
			uint64_t links = (uint64_t)(dl < 0 ? -dl : dl);
			if ((vf & VN_MODIFIED) && size > kn->u.vn.s->size)
				notes |= NOTE_EXTEND;
			if (vf & VN_OVERFLOW) {
				if (size != kn->u.vn.s->size)
					notes |= NOTE_WRITE | (size > kn->u.vn.s->size ? NOTE_EXTEND : 0);
				if (dl != 0)
					notes |= (vf & VN_DIR) ? NOTE_LINK
							       : (dl > 0 ? NOTE_LINK : NOTE_DELETE);
			}
			if (nattrib > 0) {
				/* IN_ATTRIB also reports a link count change: links up
				 * is LINK, down is DELETE (an unlink, or a rename over
				 * the file); more IN_ATTRIBs than moved links carried
				 * a real attribute change too. */
				if (vf & VN_DIR) {
					notes |= NOTE_ATTRIB;
				} else {
					if (dl > 0)
						notes |= NOTE_LINK;
					else if (dl < 0)
						notes |= NOTE_DELETE;
					if (nattrib > links)
						notes |= NOTE_ATTRIB;
				}
			}
			kn->u.vn.s->size = size;
			kn->u.vn.s->nlink = (uint32_t)sb.st_nlink;
		} else if (nattrib > 0) {
			notes |= NOTE_ATTRIB; /* descriptor closed or reused: no more known */
		}
	}
	vn_note(q, kn, notes);
}

/* One inotify event for the members of its watch.  partner: a rename
 * within the same directory (MOVED_FROM and MOVED_TO side by side). */
static void dispatch(struct kqe_queue *q, struct kqe_vnstate *st, struct kqe_vwatch *w,
		     const struct inotify_event *e, bool partner)
{
	uint32_t m = e->mask;
	bool child = e->len > 0; /* about an entry of a watched directory */
	for (int i = 0; i < w->n; i++) {
		struct knote *kn = w->m[i].kn;
		if (kn->filter == EVFILT_READ) {
			if (m & IN_UNMOUNT)
				activate(q, kn); /* revoked: EV_EOF whatever it holds */
			else if ((m & (IN_MODIFY | IN_ATTRIB | ENTRY_EVENTS)) &&
				 (!child || (m & ENTRY_EVENTS)))
				wake_io(q, kn); /* its event() looks at the file */
			continue;
		}
		if (kn->filter == EVFILT_WRITE) {
			if (m & IN_ACCESS)
				wake_io(q, kn); /* a pipe was read: room for the mark? */
			continue;
		}
		if (m & IN_UNMOUNT) {
			/* FreeBSD's revoke: EV_EOF, and the knote goes with it. */
			kn->u.vn.s->vflags |= VN_REVOKED;
			kn->flags |= EV_ONESHOT;
			kn->fflags_out |= kn->sfflags & NOTE_REVOKE;
			activate(q, kn);
			continue;
		}
		uint32_t notes = 0;
		uint16_t vf = 0;
		if (child) {
			bool isdir = (m & IN_ISDIR) != 0;
			if (m & (IN_CREATE | IN_DELETE)) {
				notes = NOTE_WRITE | (isdir ? NOTE_LINK : 0);
			} else if (m & (IN_MOVED_FROM | IN_MOVED_TO)) {
				notes = NOTE_WRITE;
				if (!partner)
					notes |= NOTE_EXTEND | (isdir ? NOTE_LINK : 0);
			}
			if (isdir && notes)
				vf |= VN_STAT; /* our link count moved: keep it current */
		} else {
			if (m & IN_MODIFY) {
				notes |= NOTE_WRITE;
				vf |= VN_STAT | VN_MODIFIED;
			}
			if (m & IN_ATTRIB) {
				vf |= VN_STAT;
				if (kn->u.vn.s->nattrib < UINT16_MAX)
					kn->u.vn.s->nattrib++;
			}
			if (m & IN_DELETE_SELF)
				notes |= NOTE_DELETE;
			if (m & IN_MOVE_SELF)
				notes |= NOTE_RENAME;
			if (m & IN_OPEN)
				notes |= NOTE_OPEN;
			if (m & IN_CLOSE_NOWRITE)
				notes |= NOTE_CLOSE;
			if (m & IN_CLOSE_WRITE)
				notes |= NOTE_CLOSE_WRITE;
			if (m & IN_ACCESS)
				notes |= NOTE_READ;
		}
		if (notes == 0 && vf == 0)
			continue;
		kn->u.vn.s->batch |= notes;
		kn->u.vn.s->vflags |= vf;
		touch(q, st, kn);
	}
}

/* Events were lost: every knote compares its file with what it saw last. */
static void overflow(struct kqe_queue *q, struct kqe_vnstate *st)
{
	for (size_t i = 0; i < st->cap; i++) {
		for (struct kqe_vwatch *w = st->tab[i]; w; w = w->hnext) {
			for (int j = 0; j < w->n; j++) {
				struct knote *kn = w->m[j].kn;
				if (kn->filter == EVFILT_READ || kn->filter == EVFILT_WRITE) {
					wake_io(q, kn);
					continue;
				}
				kn->u.vn.s->vflags |= VN_STAT | VN_OVERFLOW;
				touch(q, st, kn);
			}
		}
	}
}

#define EVBUF_SIZE 16384
#define EVENT_MAX (sizeof(struct inotify_event) + NAME_MAX + 1)

void kqe_inotify_read(struct kqe_queue *q)
{
	if (q->inotify_fd < 0)
		return;
	char buf[EVBUF_SIZE] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct kqe_vnstate *st = q->vnstate;
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
					watch_gone(q, w);
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
					dispatch(q, st, w, e, partner);
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
		overflow(q, st);
	for (size_t i = 0; i < st->ntouched; i++)
		finish(q, st->touched[i]);
	st->ntouched = 0;
	st->reading = false;
	state_maybe_free(q);
}
