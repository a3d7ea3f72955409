/*
 * vnode.c - EVFILT_VNODE (semantics §4.6, §6.2, §6.3) on the queue's
 * inotify watches (watch.c).
 *
 * A batch (one read of the inotify descriptor) first gathers what each
 * knote saw, then looks at each touched knote's file at most once (fstat)
 * to tell EXTEND from WRITE and LINK/DELETE from ATTRIB, and finally ORs
 * the requested notes into the knote's fflags_out.  Without EV_CLEAR the
 * knote stays active, so the generic code returns the accumulated notes
 * on every call.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "watch.h"

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


/* The knotes touched in the current batch (q->vnbatch). */
struct kqe_vnbatch {
	struct knote **touched;
	size_t ntouched, tcap;
};

static const struct kqe_watch_ops vn_watch_ops;

/* What a VNODE knote needs from inotify.  The base events keep the size and
 * link count seen up to date whatever is requested; the open/close/read
 * family costs a wake-up per use of the file, so only when asked. */
static uint32_t vnode_mask(uint32_t sfflags, bool dir)
{
	uint32_t m = IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
	m |= dir ? KQE_IN_ENTRY : IN_MODIFY;
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
	int err = kqe_watch_join(q, (int)kn->ident, sb, kn, &vs->watch,
				 vnode_mask(kn->sfflags, (vs->vflags & VN_DIR) != 0), &vn_watch_ops);
	if (err) {
		free(vs);
		kn->u.vn.s = NULL;
	}
	return err;
}

static int vn_modify(struct kqe_queue *q, struct knote *kn, const struct kevent *kev)
{
	/* Parameters are replaced, not ORed; notes gathered so far stay. */
	struct kqe_vwatch *w = kn->u.vn.s->watch;
	if (w) {
		int err = kqe_watch_remask(q, w, kn,
					   vnode_mask(kev->fflags, (kn->u.vn.s->vflags & VN_DIR) != 0),
					   (int)kn->ident);
		if (err)
			return err;
	}
	kn->sfflags = kev->fflags;
	kn->sdata = kev->data;
	return 0;
}

static void vn_detach(struct kqe_queue *q, struct knote *kn)
{
	if (kn->u.vn.s == NULL)
		return;
	kqe_watch_leave(q, kn, &kn->u.vn.s->watch);
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

static const struct kqe_filter_ops vn_ops = {
	.is_fd = true,
	.attach = vn_attach,
	.modify = vn_modify,
	.detach = vn_detach,
	.event = vn_event,
	.stale = vn_stale,
};

/* ---- what inotify tells a VNODE knote ---------------------------------------- */

/* Only requested notes count (libkqueue #1 leaked the others). */
static void vn_note(struct kqe_queue *q, struct knote *kn, uint32_t notes)
{
	notes &= kn->sfflags;
	if (notes == 0)
		return;
	kn->fflags_out |= notes;
	kqe_knote_activate(q, kn);
}

static void touch(struct kqe_queue *q, struct knote *kn)
{
	if (kn->u.vn.s->vflags & VN_TOUCHED)
		return;
	struct kqe_vnbatch *b = q->vnbatch;
	if (b == NULL && (b = q->vnbatch = calloc(1, sizeof *b)) == NULL)
		goto now;
	if (b->ntouched == b->tcap) {
		size_t ncap = b->tcap ? b->tcap * 2 : 16;
		struct knote **t = realloc(b->touched, ncap * sizeof *t);
		if (t == NULL)
			goto now;
		b->touched = t;
		b->tcap = ncap;
	}
	kn->u.vn.s->vflags |= VN_TOUCHED;
	b->touched[b->ntouched++] = kn;
	return;
now: {
	/* No memory for the batch: report what is known now. */
	uint32_t notes = kn->u.vn.s->batch;
	if (kn->u.vn.s->nattrib)
		notes |= NOTE_ATTRIB;
	kn->u.vn.s->batch = 0;
	kn->u.vn.s->nattrib = 0;
	kn->u.vn.s->vflags &= ~(VN_STAT | VN_MODIFIED | VN_OVERFLOW);
	vn_note(q, kn, notes);
}
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

static void vn_watch_event(struct kqe_queue *q, struct knote *kn, uint32_t m, bool child,
			   bool partner)
{
	if (m & IN_IGNORED)
		return; /* the inode is gone: its IN_DELETE_SELF said so already */
	if (m & IN_Q_OVERFLOW) {
		/* Events were lost: compare the file with what was seen last. */
		kn->u.vn.s->vflags |= VN_STAT | VN_OVERFLOW;
		touch(q, kn);
		return;
	}
	if (m & IN_UNMOUNT) {
		/* FreeBSD's revoke: EV_EOF, and the knote goes with it. */
		kn->u.vn.s->vflags |= VN_REVOKED;
		kn->flags |= EV_ONESHOT;
		kn->fflags_out |= kn->sfflags & NOTE_REVOKE;
		kqe_knote_activate(q, kn);
		return;
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
		return;
	kn->u.vn.s->batch |= notes;
	kn->u.vn.s->vflags |= vf;
	touch(q, kn);
}

static void vn_batch_end(struct kqe_queue *q)
{
	struct kqe_vnbatch *b = q->vnbatch;
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->ntouched; i++)
		finish(q, b->touched[i]);
	b->ntouched = 0;
}

static const struct kqe_watch_ops vn_watch_ops = {
	.event = vn_watch_event,
	.batch_end = vn_batch_end,
};

static void vn_free(struct kqe_queue *q)
{
	if (q->vnbatch) {
		free(q->vnbatch->touched);
		free(q->vnbatch);
		q->vnbatch = NULL;
	}
}

const struct kqe_family kqe_family_vnode = {
	.name = "vnode",
	.ops = &vn_ops,
	.filters = { EVFILT_VNODE },
	.free = vn_free,
};
