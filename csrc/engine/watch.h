/*
 * watch.h - the queue's inotify watches (watch.c): one watch per inode,
 * shared by the knotes that need it, each notified through its own op.
 * Used by VNODE knotes (vnode.c), READ knotes parked on regular files
 * (file.c) and NOTE_LOWAT WRITE knotes parked on pipes (io.c).
 */
#ifndef KQE_WATCH_H
#define KQE_WATCH_H

#include <sys/inotify.h>

#include "family.h"

#pragma GCC visibility push(hidden)

/* The events about entries of a watched directory. */
#define KQE_IN_ENTRY (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)

/* What a member is told.  event: one inotify event about the watched
 * inode (child: about an entry of a watched directory; partner: a rename
 * within the same directory, MOVED_FROM and MOVED_TO side by side), or
 * IN_IGNORED when the kernel dropped the watch (the member's slot is
 * already NULL), or IN_Q_OVERFLOW when events were lost.  batch_end: once
 * after the events of one read of the inotify descriptor, for each op
 * that was told something. */
struct kqe_watch_ops {
	void (*event)(struct kqe_queue *q, struct knote *kn, uint32_t mask, bool child,
		      bool partner);
	void (*batch_end)(struct kqe_queue *q);
};

/* kn joins the watch of the inode that fd (described by sb) names, asking
 * for `mask'; *slot receives the watch and goes back to NULL when the
 * kernel drops it.  0 or an errno (ENOMEM when out of inotify watches). */
KQE_HIDDEN int kqe_watch_join(struct kqe_queue *q, int fd, const struct stat *sb,
			      struct knote *kn, struct kqe_vwatch **slot, uint32_t mask,
			      const struct kqe_watch_ops *ops);
KQE_HIDDEN void kqe_watch_leave(struct kqe_queue *q, struct knote *kn, struct kqe_vwatch **slot);
/* kn's mask becomes `mask' (fd names the inode, or -1); 0 or an errno. */
KQE_HIDDEN int kqe_watch_remask(struct kqe_queue *q, struct kqe_vwatch *w, struct knote *kn,
				uint32_t mask, int fd);

#pragma GCC visibility pop

#endif
