/*
 * family.h - the contract between the engine's floors and each filter
 * family: the filter operations (FreeBSD's filterops) plus the queue-level
 * hooks a family needs (its epoll results, a look before each collection,
 * teardown, fork).  Only kevent.c's table names the families; it hands
 * the table to the ground floor (families.c) once, as FreeBSD registers
 * its filterops, so that every floor reaches a family through the
 * table and adding a family touches that table and nothing else.
 */
#ifndef KQE_FAMILY_H
#define KQE_FAMILY_H

#include "queue.h"

#pragma GCC visibility push(hidden)

/* A filter's operations, called with the queue's lock held.
 *   attach/modify: 0 or an errno; a failed modify leaves the knote as it
 *       was (kevent.c replaces udata only after success).
 *   detach: undo attach; the caller then frees the knote.
 *   enable: 0 or an errno (a resource the knote needs now could not be
 *       had: the change fails and the knote stays disabled).
 *   event: fill the event from a knote taken off the ready list; 1 to
 *       deliver it, 0 when the condition has vanished (dropped silently as
 *       FreeBSD does, except that an EV_ONESHOT knote is delivered from its
 *       stored state), -1 to drop it even if EV_ONESHOT (epoll will report
 *       it again).
 *   after: once an event was delivered, reset what EV_CLEAR resets.
 *   delete_fast: fd filters: drop kn (EV_DELETE) without an fstat when the
 *       filter can tell a closed or reused descriptor itself: 0, EBADF or
 *       ENOENT, or -1 (kn untouched) to take the general path.
 *   check: fd filters, before any other change: settle whether the
 *       ident still names the file of the knotes kept for it, without an
 *       fstat where the filter can (dropping them, and setting *knp NULL,
 *       when it does not): 0, an errno, or -1 for fstat and stale.
 *   stale: fd filters: does the knote belong to another file than st? */
struct kqe_filter_ops {
	bool is_fd;   /* ident is a descriptor: EBADF above INT_MAX or when closed */
	int (*attach)(struct kqe_queue *q, struct knote *kn, const struct kevent *kev);
	int (*modify)(struct kqe_queue *q, struct knote *kn, const struct kevent *kev);
	void (*detach)(struct kqe_queue *q, struct knote *kn);
	int (*enable)(struct kqe_queue *q, struct knote *kn);
	void (*disable)(struct kqe_queue *q, struct knote *kn);
	int (*event)(struct kqe_queue *q, struct knote *kn, struct kevent *ev);
	void (*after)(struct kqe_queue *q, struct knote *kn);
	int (*delete_fast)(struct kqe_queue *q, struct knote *kn);
	int (*check)(struct kqe_queue *q, struct knote **knp, const struct kevent *kev);
	bool (*stale)(struct kqe_queue *q, struct knote *kn, const struct stat *st);
};

/* One family: the filters it serves, the epoll tags its descriptors carry,
 * and its hooks.  Every hook may be NULL.
 *   ready: epoll results buf[0..count) carrying one of its tags, the first
 *       one's tag among them; writes at most room events to out (a knote
 *       that does not fit goes to the ready list), returns how many, and
 *       sets *taken to the results it consumed (at least 1).
 *   poll: before each collection; must cost no syscall unless something
 *       is due.
 *   free: the queue is going away and has no knote left.
 *   atfork_queue: a fork child inherited q: close the descriptors the
 *       family keeps for it (no epoll_ctl: the epoll is the parent's).
 *   atfork: a fork child, once, for process-wide state.
 *   forked: the parent after a fork, for q, locked: the child holds copies
 *       of every descriptor open now.
 *   rearm: add: register in epoll epfd what the family registers in q's
 *       epoll, first dropping knotes whose descriptor no longer names their
 *       file; 0 or an errno (kqe_queue_rebuild then keeps the old epoll).
 *       !add: remove those registrations from epfd, errors ignored. */
struct kqe_family {
	const char *name;
	const struct kqe_filter_ops *ops;
	short filters[2];          /* EVFILT_* served (0: none) */
	uint8_t status;            /* or: knotes with this KN_* bit, any filter */
	enum kqe_tag tags[2];      /* epoll tags handled (TAG_WAKE: none) */
	int (*ready)(struct kqe_queue *q, const struct epoll_event *buf, int count,
		     struct kevent *out, int room, int *taken);
	void (*poll)(struct kqe_queue *q);
	void (*free)(struct kqe_queue *q);
	void (*atfork_queue)(struct kqe_queue *q);
	void (*atfork)(void);
	void (*forked)(struct kqe_queue *q);
	int (*rearm)(struct kqe_queue *q, int epfd, bool add);
};

/* ---- families.c: the registered table (ground floor) ----------------- */

/* Register the families, once, before the first queue (kevent.c). */
KQE_HIDDEN void kqe_families_register(const struct kqe_family *const *fams, int n);
/* The operations for a knote (a READ knote on a kqueue has its own). */
KQE_HIDDEN const struct kqe_filter_ops *kqe_knote_ops(const struct knote *kn);
/* The family serving a filter, or NULL (ENOTSUP for a filter it lacks). */
KQE_HIDDEN const struct kqe_family *kqe_family_of(short filter);
/* Detach kn from its filter, then free it (FreeBSD's knote_drop). */
KQE_HIDDEN void kqe_knote_drop(struct kqe_queue *q, struct knote *kn);
/* An event was just written for kn: ONESHOT, CLEAR, DISPATCH, requeue. */
KQE_HIDDEN void kqe_knote_delivered(struct kqe_queue *q, struct knote *kn);
/* Every family's poll hook (before a collection). */
KQE_HIDDEN void kqe_families_poll(struct kqe_queue *q);
/* Hand epoll results to their families; returns the events written to
 * out (at most room; with room 0 everything goes to the ready list, and
 * out is never written). */
KQE_HIDDEN int kqe_families_dispatch(struct kqe_queue *q, const struct epoll_event *buf, int m,
				     struct kevent *out, int room);
/* The queue is going away, or a fork child inherited it. */
KQE_HIDDEN void kqe_families_free(struct kqe_queue *q);
KQE_HIDDEN void kqe_families_atfork_queue(struct kqe_queue *q);
KQE_HIDDEN void kqe_families_atfork(void);
KQE_HIDDEN void kqe_families_forked(struct kqe_queue *q);
/* Move every registration of q to a new epoll instance, leaving behind
 * those the engine no longer owns (q->rebuild); 0 or an errno, and then
 * nothing changed. */
KQE_HIDDEN int kqe_queue_rebuild(struct kqe_queue *q);
/* One registration for a rearm hook: added to epfd, or removed from it. */
KQE_HIDDEN int kqe_epoll_rearm(int epfd, bool add, int fd, uint32_t events, uint64_t tag);
/* The events q holds, once what its epoll reports has been moved to its
 * ready list (READ data of a kqueue watched by another), and its
 * nenqueued then (NULL: not wanted); q unlocked. */
KQE_HIDDEN int kqe_queue_pending(struct kqe_queue *q, uint64_t *enqueued);

/* The families (one file or a few each). */
KQE_HIDDEN extern const struct kqe_family kqe_family_io;     /* io.c, fd.c, file.c */
KQE_HIDDEN extern const struct kqe_family kqe_family_user;   /* user.c */
KQE_HIDDEN extern const struct kqe_family kqe_family_timer;  /* timer.c */
KQE_HIDDEN extern const struct kqe_family kqe_family_signal; /* signal.c */
KQE_HIDDEN extern const struct kqe_family kqe_family_proc;   /* proc.c */
KQE_HIDDEN extern const struct kqe_family kqe_family_vnode;  /* vnode.c */
KQE_HIDDEN extern const struct kqe_family kqe_family_watch;  /* watch.c: inotify */
KQE_HIDDEN extern const struct kqe_family kqe_family_kqread; /* kqread.c: KN_KQREAD */

/* signal.c, for the wait in collect.c: did only the engine's own signal
 * handler (no handler of the program) run meanwhile?  Then an EINTR is
 * not one. */
struct kqe_sigmark {
	uint64_t serial, chained;
};
KQE_HIDDEN void kqe_signal_mark(struct kqe_sigmark *m);
KQE_HIDDEN bool kqe_signal_interrupt_ours(const struct kqe_sigmark *m);

#pragma GCC visibility pop

#endif
