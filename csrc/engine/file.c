/*
 * file.c - READ and WRITE on regular files and directories (semantics
 * §4.1, §4.2).  They cannot be polled (epoll says EPERM): READ is ready
 * while size - offset != 0 (or always with NOTE_FILE_POLL), WRITE always
 * is; both are served from the ready list.  A READ knote that finds
 * nothing waits on an inotify watch of its file (watch.c) instead of being
 * looked at every collection.
 */
#include <sys/inotify.h>
#include <sys/stat.h>

#include "fd.h"
#include "watch.h"

static void file_list_remove(struct kqe_queue *q, struct knote *kn)
{
	struct knote **pp = &q->filelist;
	while (*pp && *pp != kn)
		pp = &(*pp)->u.io.on.fnext;
	if (*pp)
		*pp = kn->u.io.on.fnext;
}

static bool file_ready(struct knote *kn, int64_t *data)
{
	if (kn->filter == EVFILT_WRITE) {
		*data = 0;
		return true;
	}
	if (kqe_fd_data((int)kn->ident, FDK_FILE, EVFILT_READ, data) < 0)
		return false;
	return *data != 0 || (kn->sfflags & NOTE_FILE_POLL);
}

/* What inotify tells a parked READ knote: a change of the file activates
 * it when its condition holds now (FreeBSD evaluates a knote at the change
 * that activates it, and an EV_ONESHOT knote is then delivered from the
 * ready list without a second look); only a oneshot one is looked at here
 * (a write in place at EOF leaves nothing), others when collected.  A
 * lost watch or an unmount activates it (looked at again, and polled from
 * now on; revoked: EV_EOF whatever it holds). */
static void file_watch_event(struct kqe_queue *q, struct knote *kn, uint32_t m, bool child,
			     bool partner)
{
	(void)partner;
	bool wake;
	if (m & (IN_UNMOUNT | IN_IGNORED)) {
		kqe_knote_activate(q, kn);
		return;
	}
	if (m & IN_Q_OVERFLOW)
		wake = true;
	else
		wake = (m & (IN_MODIFY | IN_ATTRIB | KQE_IN_ENTRY)) && (!child || (m & KQE_IN_ENTRY));
	if (!wake)
		return;
	int64_t data;
	if (!(kn->flags & EV_ONESHOT) ||
	    kqe_fd_data((int)kn->ident, FDK_FILE, EVFILT_READ, &data) < 0 ||
	    data != 0 || (kn->sfflags & NOTE_FILE_POLL))
		kqe_knote_activate(q, kn);
}

static const struct kqe_watch_ops file_watch_ops = {
	.event = file_watch_event,
};

/* Park a READ knote on its file's inode.  As on FreeBSD, only a change of
 * the file re-arms a knote that found nothing: an lseek alone does not.
 * Returns true when parked; the caller looks at the file once more then,
 * for a change made before the watch was in place. */
static bool file_park(struct kqe_queue *q, struct knote *kn)
{
	struct kqe_vwatch **slot = kqe_fd_watch(kn->u.io.fde);
	if (slot == NULL)
		return false; /* no memory: polled instead */
	if (*slot)
		return true;
	struct stat sb;
	if (fstat((int)kn->ident, &sb) < 0)
		return false;
	uint32_t mask = IN_MODIFY | IN_ATTRIB | (S_ISDIR(sb.st_mode) ? KQE_IN_ENTRY : 0);
	return kqe_watch_join(q, (int)kn->ident, &sb, kn, slot, mask, &file_watch_ops) == 0;
}

int kqe_file_attach(struct kqe_queue *q, struct knote *kn)
{
	kn->u.io.on.fnext = q->filelist;
	q->filelist = kn;
	int64_t data;
	bool ready = file_ready(kn, &data);
	/* READ parks when not ready, and with EV_CLEAR always: only a change
	 * of the file makes a new event then.  If no watch can be had,
	 * kqe_files_poll polls it instead. */
	if (kn->filter == EVFILT_READ && (!ready || (kn->flags & EV_CLEAR)) && file_park(q, kn) &&
	    !ready)
		ready = file_ready(kn, &data);
	if ((kn->status & KN_ENABLED) && ready)
		kqe_knote_activate(q, kn);
	return 0;
}

void kqe_file_detach(struct kqe_queue *q, struct knote *kn)
{
	struct kqe_fd *fde = kn->u.io.fde;
	file_list_remove(q, kn);
	if (fde->rd == kn && fde->x)
		kqe_watch_leave(q, kn, &fde->x->watch);
}

void kqe_file_enable(struct kqe_queue *q, struct knote *kn)
{
	(void)q;
	int64_t data;
	if (file_ready(kn, &data))
		kn->status |= KN_ACTIVE;
}

int kqe_file_event(struct knote *kn, struct kevent *ev)
{
	int64_t data = 0;
	bool ready = file_ready(kn, &data);
	ev->data = data;
	return ready;
}

/* Regular-file knotes that are not queued are looked at once per
 * collection (fstat, lseek), except READ knotes parked on inotify, which
 * cost nothing until their file changes.  A knote that cannot be parked
 * (no inotify watch left) stays polled here. */
void kqe_files_poll(struct kqe_queue *q)
{
	for (struct knote *kn = q->filelist; kn; kn = kn->u.io.on.fnext) {
		if ((kn->status & (KN_ENABLED | KN_QUEUED | KN_REQUEUE)) != KN_ENABLED)
			continue;
		if (kn->filter == EVFILT_WRITE && (kn->flags & EV_CLEAR))
			continue; /* fired once; nothing new can happen to a file's space */
		if (kn->filter == EVFILT_READ && kn->u.io.fde->x && kn->u.io.fde->x->watch)
			continue; /* parked: inotify activates it */
		int64_t data;
		if (file_ready(kn, &data) ||
		    (kn->filter == EVFILT_READ && file_park(q, kn) && file_ready(kn, &data)))
			kqe_knote_activate(q, kn);
	}
}
