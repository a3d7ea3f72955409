/*
 * queue.h - the engine's ground floor: the queue, the knote, and what
 * every floor above may ask of them (queue.c, knote.c).  Nothing here
 * knows a filter.  The floors, bottom up (doc/linux-engine.md, "Layout"):
 *
 *   1  queue.c knote.c             the queue's life, knote table, ready list
 *   2  the families (family.h)     one file or a few per filter family
 *   3  kevent.c collect.c kqread.c apply changes, collect events, and the
 *                                  filter of a kqueue watched by a kqueue
 *
 * A file calls only into its own floor or below; the layer check
 * (tests/layers.sh) holds the build to it.
 *
 * Locking: every queue has one mutex, held while changes are applied and
 * events collected, and released around the blocking epoll wait so that
 * other threads can add, delete or trigger meanwhile.  Filter code is
 * always called with the queue's lock held.  The wake state (wakefd,
 * wake_pending, exposed) has a lock of its own, a leaf: nothing else is
 * taken while it is held, so one queue may wake another from under its
 * own lock without any lock order between queues.
 */
#ifndef KQE_QUEUE_H
#define KQE_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "kqe.h"

/* Private symbols: the module exports only luaopen_*. */
#define KQE_HIDDEN __attribute__((visibility("hidden")))
#pragma GCC visibility push(hidden)

/* Debug builds (-DKQE_DEBUG, tests/c/Makefile check-debug) check the
 * engine's invariants as FreeBSD's KASSERT does; release builds compile
 * them away. */
#ifdef KQE_DEBUG
KQE_HIDDEN void kqe_assert_fail(const char *what, const char *file, int line);
#define KQE_ASSERT(c, what) ((c) ? (void)0 : kqe_assert_fail(what, __FILE__, __LINE__))
#define KQE_ASSERT_LOCKED(q) KQE_ASSERT(kqe_queue_owned(q), "queue lock not held")
#else
#define KQE_ASSERT(c, what) ((void)0)
#define KQE_ASSERT_LOCKED(q) ((void)0)
#endif

/* Knote status bits. */
#define KN_ENABLED  0x01 /* delivery allowed (EV_DISABLE clears it) */
#define KN_QUEUED   0x02 /* linked in the queue's ready list */
#define KN_ACTIVE   0x04 /* the filter's condition holds / something fired */
#define KN_REQUEUE  0x08 /* level knote delivered this call: back on the tail afterwards */
#define KN_CREATED  0x10 /* set while attach runs on a brand new knote */
#define KN_KQREAD   0x20 /* READ on a kqueue: kqread.c's filter, not io.c's */
#define KN_DISARMED 0x40 /* kqread.c: its epoll registration is switched off */

/* The knote flags that are stored at creation and shown in events. */
#define KN_STORED_FLAGS (EV_ONESHOT | EV_CLEAR | EV_DISPATCH | EV_RECEIPT)

struct kqe_queue;
struct kqe_fd;     /* fd.h */
struct kqe_vwatch; /* watch.h */
struct kqe_vnknote; /* vnode.c */
struct kqe_watches; /* watch.c */
struct kqe_vnbatch; /* vnode.c */

struct knote {
	/* The first 16 bytes hold all that the delivery of a level READ
	 * knote's epoll result reads or writes (io.c, fast_result): malloc
	 * aligns to 16, so they share one cache line, and a delivered event
	 * touches that line only (the per-event cost on Linux is mostly cache
	 * lines, bench/RESULTS.md). */
	int8_t filter;          /* EVFILT_* (-1 .. -EVFILT_SYSCOUNT) */
	uint8_t status;         /* KN_* */
	uint16_t flags;         /* stored flags (KN_STORED_FLAGS, EV_EOF for PROC) */
	/* q->call_serial of its last delivery.  16 bits wrap every 65,536
	 * collections; a false match can only defer a knote by one round of
	 * the collection, never block or lose it (collect.c, "serials"). */
	uint16_t delivered_call;
	uint16_t revents;       /* READ/WRITE on epoll: last epoll events seen */
	void *udata;

	uintptr_t ident;
	int64_t sdata;          /* the change's data: the filter's parameter */
	int64_t data_out;       /* accumulated data to deliver (counts) */
	struct knote *hnext;    /* hash chain */
	struct knote *rnext, *rprev; /* ready list */
	uint32_t sfflags;       /* the change's fflags: the filter's parameter */
	uint32_t fflags_out;    /* accumulated fflags to deliver */
	union {
		struct {                /* READ, WRITE */
			struct kqe_fd *fde;
			union {
				struct {            /* on epoll */
					int sockerr;      /* socket error kept for fflags
							   * (reading SO_ERROR clears it) */
				} ep;
				struct knote *fnext; /* on a regular file: q->filelist */
			} on;
		} io;
		struct {                /* READ on a kqueue (kqread.c) */
			uint64_t serial;    /* which queue the ident named */
			uint64_t seen;      /* its nenqueued at the last delivery */
		} kq;
		struct {                /* TIMER */
			int64_t deadline;   /* CLOCK_MONOTONIC ns of the next expiry */
			uint32_t heap_index;
		} timer;
		struct {                /* SIGNAL */
			uint64_t seen;      /* global delivery count already accounted */
			struct knote *next; /* the queue's signal knotes */
		} sig;
		struct {                /* PROC */
			int pidfd;          /* in epoll; -1 once the exit is recorded */
		} proc;
		struct {                /* VNODE: state allocated by vnode.c */
			struct kqe_vnknote *s;
		} vn;
		struct {                /* USER */
			uint32_t value;     /* stored 24-bit fflags */
		} user;
	} u;
};

/* Tags in the top byte of epoll_event.data.u64: what a result belongs to.
 * TAG_WAKE is 0, and is handled by the ground floor itself, so that a zero
 * in a family's tag list (family.h) means "no tag". */
enum kqe_tag {
	TAG_WAKE = 0,    /* the queue's wake eventfd */
	TAG_FD,          /* low 32 bits fd, next 24 bits the kqe_fd's generation */
	TAG_TIMER,       /* the queue's timerfd */
	TAG_SIGNAL,      /* the process-wide signal eventfd */
	TAG_INOTIFY,     /* the queue's inotify instance */
	TAG_EDGE,        /* the queue's nested edge-triggered epoll */
	TAG_PROC,        /* a pidfd: low 32 bits the pid */
	TAG_KQ,          /* a watched kqueue: low 32 bits its descriptor */
	TAG_COUNT
};
#define KQE_TAG(t, v) (((uint64_t)(t) << 56) | (uint64_t)(v))
#define KQE_TAG_OF(u) ((enum kqe_tag)((u) >> 56))
#define KQE_VAL_OF(u) ((u) & ((UINT64_C(1) << 56) - 1))

struct kqe_queue {
	pthread_mutex_t lock;
	/* The queue's descriptor (what kqueue() returned, the registry's key),
	 * and the epoll instance it waits on and registers in: the same,
	 * until the engine had to replace the epoll of a queue watched from
	 * outside (families.c, kqe_queue_rebuild). */
	int pubfd;
#ifdef KQE_DEBUG
	pthread_t owner;          /* who holds lock, for KQE_ASSERT_LOCKED */
	bool owned;
#endif
	int epfd;                 /* the epoll instance */
	uint64_t serial;          /* unique per queue in the process */
	int refs;                 /* registry + calls in progress (registry_lock) */
	bool closed;
	bool lazy_data;           /* see kqe_set_lazy_data */
	/* epoll holds a registration the engine no longer owns (a file closed
	 * here but kept open by a fork child or a dup, then its number
	 * reused): the epoll is rebuilt before the next wait (collect.c). */
	bool rebuild;
	int nwaiters;             /* threads blocked in epoll_wait */
	/* Called once the last reference goes, before the ground floor frees
	 * what it owns: the floors above free theirs (kevent.c). */
	void (*teardown)(struct kqe_queue *q);

	/* The wake state, under wake_lock (a leaf, see the top). */
	pthread_mutex_t wake_lock;
	int wakefd;               /* eventfd, made with the queue */
	bool exposed;             /* seen from outside: readable while ready */
	bool wake_pending;        /* the wake eventfd holds a count */

	/* knotes by (filter, ident) */
	struct knote **htab;
	size_t hcap, hcount;

	/* the ready list; nready is also read without the lock (kqread.c) */
	struct knote *rhead, *rtail;
	size_t nready;
	/* Knotes that entered the ready list anew (a requeue after delivery
	 * is no new event): what an EV_CLEAR knote watching this queue from
	 * another compares (kqread.c).  64 bits: never wraps. */
	uint64_t nenqueued;

	/* descriptors: fd-indexed pages of slots (fd.h) */
	struct kqe_fd **fdpages;
	int nfds;                 /* slots the page table covers */
	int edge_epfd;            /* nested epoll for mixed edge/level fds, -1 */
	int unconn;               /* sockets seen unconnected (io.c): a list by fd, -1 */
	uint32_t fdgen;           /* generation for the next struct kqe_fd */

	/* timers (timer.c) */
	int timerfd;              /* -1 until the first timer */
	struct knote **theap;
	uint32_t tcount, tcap;
	int64_t tarmed;           /* deadline the timerfd is armed for, or 0 */

	/* signals (signal.c) */
	struct knote *siglist;
	uint64_t sig_serial;      /* global serial when last scanned */
	bool sig_registered;      /* the signal eventfd is in our epoll */

	/* inotify (watch.c) and regular files (file.c) */
	int inotify_fd;           /* -1 until needed */
	struct kqe_watches *watches; /* inotify watches, NULL when none */
	struct kqe_vnbatch *vnbatch; /* vnode.c: knotes touched in an inotify batch */
	struct knote *filelist;   /* READ/WRITE knotes on regular files (u.io.on.fnext) */

	/* epoll result buffer (collect.c) */
	struct epoll_event *evbuf;
	int evcap;
	bool evbuf_busy;

	uint16_t call_serial;     /* counts collections; see knote.delivered_call */
	struct knote *requeue;    /* level knotes to put back after a collection */
	const struct stat *change_st; /* fstat of the ident while an fd change runs */
};

/* ---- queue.c ------------------------------------------------------------ */

/* A new queue with its epoll and wake eventfd, registered under its
 * descriptor; teardown is called when its last reference goes.  NULL with
 * errno. */
KQE_HIDDEN struct kqe_queue *kqe_queue_new(void (*teardown)(struct kqe_queue *q));
/* Take q out of the registry and close it (kqe_close's contract). */
KQE_HIDDEN int kqe_queue_close(int fd);
KQE_HIDDEN struct kqe_queue *kqe_queue_get(int fd); /* +1 ref or NULL */
KQE_HIDDEN void kqe_queue_put(struct kqe_queue *q);
KQE_HIDDEN uint64_t kqe_queue_serial(int fd);       /* which queue fd is; 0 if none */
KQE_HIDDEN bool kqe_queue_owned(struct kqe_queue *q); /* debug: this thread holds lock */
KQE_HIDDEN void kqe_queue_lock(struct kqe_queue *q);
KQE_HIDDEN void kqe_queue_unlock(struct kqe_queue *q);
/* A fork child: forget every queue and close the descriptors inherited
 * from the parent (a kqueue is not inherited across fork); each(q) first
 * closes what the floors above keep for q. */
KQE_HIDDEN void kqe_queues_atfork_child(void (*each)(struct kqe_queue *q));

/* Wake-ups (the leaf wake_lock is taken inside). */
KQE_HIDDEN void kqe_wake(struct kqe_queue *q);      /* wake a blocked waiter */
KQE_HIDDEN void kqe_wake_consume(struct kqe_queue *q); /* TAG_WAKE result */
KQE_HIDDEN void kqe_expose_locked(struct kqe_queue *q); /* expose; any lock state */
KQE_HIDDEN int kqe_epoll_add(struct kqe_queue *q, int fd, uint32_t events, uint64_t tag);
KQE_HIDDEN int kqe_epoll_add_to(int epfd, int fd, uint32_t events, uint64_t tag);
/* fn(q) for every registered queue, with q's lock held (fork, parent). */
KQE_HIDDEN void kqe_queues_each(void (*fn)(struct kqe_queue *q));
KQE_HIDDEN int64_t kqe_now(void);                   /* CLOCK_MONOTONIC in ns */

/* ---- knote.c: the (filter, ident) table and the ready list -------------- */

KQE_HIDDEN struct knote *kqe_knote_find(struct kqe_queue *q, short filter, uintptr_t ident);
KQE_HIDDEN int kqe_knote_insert(struct kqe_queue *q, struct knote *kn);
KQE_HIDDEN void kqe_knote_unlink(struct kqe_queue *q, struct knote *kn);
/* Off every list (hash, ready, requeue) and freed; the caller has
 * detached it from its filter first (FreeBSD's knote_drop). */
KQE_HIDDEN void kqe_knote_free(struct kqe_queue *q, struct knote *kn);
KQE_HIDDEN void kqe_ready_push(struct kqe_queue *q, struct knote *kn);
/* The same for a level knote back after its delivery: no new event. */
KQE_HIDDEN void kqe_ready_repush(struct kqe_queue *q, struct knote *kn);
KQE_HIDDEN void kqe_ready_remove(struct kqe_queue *q, struct knote *kn);
KQE_HIDDEN struct knote *kqe_ready_pop(struct kqe_queue *q);
/* A filter's condition now holds: mark active and queue when enabled. */
KQE_HIDDEN void kqe_knote_activate(struct kqe_queue *q, struct knote *kn);
/* Put kn on q->requeue: back on the ready list when the collection ends. */
KQE_HIDDEN void kqe_requeue_push(struct kqe_queue *q, struct knote *kn);

#pragma GCC visibility pop

#endif
