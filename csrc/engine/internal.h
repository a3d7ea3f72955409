/*
 * internal.h - what the engine's files share: the queue, the knote, the
 * filter table and the helpers each filter calls.  Never included by the
 * binding.
 *
 * Locking: every queue has one mutex, held while changes are applied and
 * events collected, and released around the blocking epoll wait so that
 * other threads can add, delete or trigger meanwhile.  Filter code is always
 * called with the queue's lock held.
 */
#ifndef KQE_INTERNAL_H
#define KQE_INTERNAL_H

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

/* Knote status bits. */
#define KN_ENABLED  0x01 /* delivery allowed (EV_DISABLE clears it) */
#define KN_QUEUED   0x02 /* linked in the queue's ready list */
#define KN_ACTIVE   0x04 /* the filter's condition holds / something fired */
#define KN_REQUEUE  0x08 /* level knote delivered this call: back on the tail afterwards */
#define KN_CREATED  0x10 /* set while attach runs on a brand new knote */

/* The knote flags that are stored at creation and shown in events. */
#define KN_STORED_FLAGS (EV_ONESHOT | EV_CLEAR | EV_DISPATCH | EV_RECEIPT)

struct kqe_queue;
struct kqe_fd;
struct kqe_fdfast;  /* readiness.c */
struct kqe_vwatch;  /* vnode.c */
struct kqe_vnstate; /* vnode.c */
struct kqe_vnknote; /* vnode.c */

struct knote {
	/* The first 16 bytes hold all that the delivery of a level READ
	 * knote's epoll result reads or writes (readiness.c, fast_result):
	 * malloc aligns to 16, so they share one cache line, and a delivered
	 * event touches that line only (the per-event cost on Linux is
	 * mostly cache lines, see bench/RESULTS.md). */
	int8_t filter;          /* EVFILT_* (-1 .. -EVFILT_SYSCOUNT) */
	uint8_t status;         /* KN_* */
	uint16_t flags;         /* stored flags (KN_STORED_FLAGS, EV_EOF for PROC) */
	/* q->call_serial of its last delivery.  16 bits: a wrap can only
	 * defer a level knote idle for 65536 calls by one call, never lose it. */
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

/* A filter: what each filter family implements.  attach/modify return 0 or
 * an errno.  event() fills the event from a knote taken off the ready list
 * and returns 1 to deliver it, 0 when the condition has vanished (the knote
 * is then dropped from the list silently, as FreeBSD does, except that an
 * EV_ONESHOT knote is delivered from its stored state), or -1 to drop it
 * without delivering even an EV_ONESHOT one (epoll will report it again).  after() runs
 * once an event was delivered and resets what EV_CLEAR resets. */
struct kqe_filter {
	bool is_fd;   /* ident is a descriptor: EBADF above INT_MAX or when closed */
	int (*attach)(struct kqe_queue *q, struct knote *kn, const struct kevent *kev);
	int (*modify)(struct kqe_queue *q, struct knote *kn, const struct kevent *kev);
	void (*detach)(struct kqe_queue *q, struct knote *kn);
	void (*enable)(struct kqe_queue *q, struct knote *kn);
	void (*disable)(struct kqe_queue *q, struct knote *kn);
	int (*event)(struct kqe_queue *q, struct knote *kn, struct kevent *ev);
	/* fd filters: delete kn without an fstat when the filter can tell a
	 * closed or reused descriptor itself: 0, EBADF or ENOENT, or -1 to
	 * take the general path. */
	int (*delete_fast)(struct kqe_queue *q, struct knote *kn);
	/* fd filters: does the knote belong to another file than st names? */
	bool (*stale)(struct kqe_queue *q, struct knote *kn, const struct stat *st);
	void (*after)(struct kqe_queue *q, struct knote *kn);
};

/* Tags in the top byte of epoll_event.data.u64: what a result belongs to. */
enum kqe_tag {
	TAG_FD = 0,      /* low 32 bits fd, next 24 bits the kqe_fd's generation */
	TAG_WAKE,        /* the queue's wake eventfd */
	TAG_TIMER,       /* the queue's timerfd */
	TAG_SIGNAL,      /* the process-wide signal eventfd */
	TAG_INOTIFY,     /* the queue's inotify instance */
	TAG_EDGE,        /* the queue's nested edge-triggered epoll */
	TAG_PROC,        /* a pidfd: low 32 bits the pid */
};
#define KQE_TAG(t, v) (((uint64_t)(t) << 56) | (uint64_t)(v))
#define KQE_TAG_OF(u) ((enum kqe_tag)((u) >> 56))
#define KQE_VAL_OF(u) ((u) & ((UINT64_C(1) << 56) - 1))

struct kqe_queue {
	pthread_mutex_t lock;
	int epfd;                 /* the queue's own descriptor */
	struct kqe_queue *orphan_next; /* in a fork child: see engine.c */
	uint64_t serial;          /* unique per queue in the process */
	int refs;                 /* registry + calls in progress */
	bool closed;
	bool exposed;             /* fileno() seen: keep epfd readable while ready */
	bool lazy_data;           /* see kqe_set_lazy_data */
	bool wake_pending;        /* the wake eventfd holds a count */
	int nwaiters;             /* threads blocked in epoll_wait */

	/* knotes by (filter, ident) */
	struct knote **htab;
	size_t hcap, hcount;

	/* the ready list */
	struct knote *rhead, *rtail;
	size_t nready;

	/* descriptors: fd-indexed */
	struct kqe_fd **fds;
	int nfds;
	struct kqe_fdfast *fast;  /* fast delivery, readiness.c; nfast <= nfds */
	int nfast;
	int edge_epfd;            /* nested epoll for mixed edge/level fds, -1 */
	struct kqe_fd *unconn;    /* sockets seen unconnected (readiness.c) */

	int wakefd;               /* eventfd, -1 until needed */

	/* timers */
	int timerfd;              /* -1 until the first timer */
	struct knote **theap;
	uint32_t tcount, tcap;
	int64_t tarmed;           /* deadline the timerfd is armed for, or 0 */

	/* signals */
	struct knote *siglist;
	uint64_t sig_serial;      /* global serial when last scanned */
	bool sig_registered;      /* the signal eventfd is in our epoll */

	/* vnode / files */
	int inotify_fd;           /* -1 until needed */
	struct kqe_vnstate *vnstate; /* inotify watches (vnode.c), NULL when none */
	struct knote *filelist;   /* READ/WRITE knotes on regular files (u.io.fnext) */

	/* epoll result buffer */
	struct epoll_event *evbuf;
	int evcap;
	bool evbuf_busy;

	uint16_t call_serial;     /* counts collections; see knote.delivered_call */
	uint32_t fdgen;           /* generation for the next struct kqe_fd */
	struct knote *requeue;    /* level knotes to put back after a collection */
	const struct stat *change_st; /* fstat of the ident while an fd change runs */
};

/* engine.c */
KQE_HIDDEN extern const struct kqe_filter *const kqe_filters[EVFILT_SYSCOUNT + 1];
KQE_HIDDEN struct kqe_queue *kqe_queue_get(int fd); /* +1 ref or NULL */
KQE_HIDDEN void kqe_queue_put(struct kqe_queue *q);
KQE_HIDDEN void kqe_wake(struct kqe_queue *q);      /* wake a blocked waiter */
KQE_HIDDEN int kqe_epoll_add(struct kqe_queue *q, int fd, uint32_t events, uint64_t tag);
KQE_HIDDEN int64_t kqe_now(void);                   /* CLOCK_MONOTONIC in ns */
KQE_HIDDEN int kqe_queue_pending(struct kqe_queue *q); /* READ data for a nested kq */
KQE_HIDDEN uint64_t kqe_queue_serial(int fd);      /* which queue fd is; 0 if none */

/* knote.c: the (filter, ident) table and the ready list */
KQE_HIDDEN struct knote *kqe_knote_find(struct kqe_queue *q, short filter, uintptr_t ident);
KQE_HIDDEN int kqe_knote_insert(struct kqe_queue *q, struct knote *kn);
KQE_HIDDEN void kqe_knote_unlink(struct kqe_queue *q, struct knote *kn);
KQE_HIDDEN void kqe_ready_push(struct kqe_queue *q, struct knote *kn);
KQE_HIDDEN void kqe_ready_remove(struct kqe_queue *q, struct knote *kn);
KQE_HIDDEN struct knote *kqe_ready_pop(struct kqe_queue *q);
/* A filter's condition now holds: mark active and queue when enabled. */
KQE_HIDDEN void kqe_knote_activate(struct kqe_queue *q, struct knote *kn);
/* Remove a knote completely (filter detach, lists, memory). */
KQE_HIDDEN void kqe_knote_drop(struct kqe_queue *q, struct knote *kn);
/* An event was just written for kn: ONESHOT, CLEAR, DISPATCH, requeue. */
KQE_HIDDEN void kqe_knote_delivered(struct kqe_queue *q, struct knote *kn);

/* readiness.c: READ and WRITE */
KQE_HIDDEN extern const struct kqe_filter kqe_filter_io; /* READ and WRITE */
KQE_HIDDEN int kqe_fd_results(struct kqe_queue *q, const struct epoll_event *buf, int count,
			      struct kevent *out, int room, int *taken);
KQE_HIDDEN int kqe_edge_results(struct kqe_queue *q, struct kevent *out, int room);
KQE_HIDDEN void kqe_fds_free(struct kqe_queue *q);
KQE_HIDDEN void kqe_files_poll(struct kqe_queue *q);
KQE_HIDDEN void kqe_unconn_poll(struct kqe_queue *q);
KQE_HIDDEN bool kqe_io_lowat_met(struct knote *kn); /* data >= NOTE_LOWAT mark, or unknown */
KQE_HIDDEN bool kqe_io_read_met(struct knote *kn);  /* a file READ knote's condition, or unknown */

/* the other filters; a NULL entry in kqe_filters answers ENOTSUP */
KQE_HIDDEN extern const struct kqe_filter kqe_filter_user, kqe_filter_timer,
	kqe_filter_signal, kqe_filter_proc, kqe_filter_vnode;

/* timer.c */
KQE_HIDDEN void kqe_timers_expire(struct kqe_queue *q, bool timerfd_fired);
KQE_HIDDEN void kqe_timers_free(struct kqe_queue *q);

/* signal.c */
KQE_HIDDEN void kqe_signals_scan(struct kqe_queue *q);
KQE_HIDDEN bool kqe_signals_changed(struct kqe_queue *q);
KQE_HIDDEN void kqe_signal_atfork_child(void);
/* Around the epoll wait: did only the engine's own signal handler (no
 * handler of the program) run meanwhile?  Then an EINTR is not one. */
struct kqe_sigmark {
	uint64_t serial, chained;
};
KQE_HIDDEN void kqe_signal_mark(struct kqe_sigmark *m);
KQE_HIDDEN bool kqe_signal_interrupt_ours(const struct kqe_sigmark *m);

/* proc.c */
KQE_HIDDEN void kqe_proc_result(struct kqe_queue *q, pid_t pid);

/* vnode.c: inotify, for VNODE and to wake READ knotes on regular files.
 * kqe_file_watch parks a READ knote on its file's inode: a change there
 * activates it (its event() checks again).  It parks a NOTE_LOWAT WRITE
 * knote on a pipe's inode too: a read of the pipe activates it when
 * kqe_io_lowat_met says the mark is reached.  *slot receives the watch,
 * and goes back to NULL if the kernel drops the watch; 0 or an errno. */
KQE_HIDDEN void kqe_inotify_read(struct kqe_queue *q);
KQE_HIDDEN int kqe_file_watch(struct kqe_queue *q, struct knote *kn, struct kqe_vwatch **slot);
KQE_HIDDEN void kqe_file_unwatch(struct kqe_queue *q, struct knote *kn, struct kqe_vwatch **slot);

/* The exact READ/WRITE data for a descriptor of a given kind. */
enum kqe_fdkind {
	FDK_OTHER = 0, FDK_SOCK, FDK_LISTEN_TCP, FDK_LISTEN_OTHER, FDK_PIPE,
	FDK_CHR, FDK_FILE, FDK_KQ,
	FDK_SOCKET, /* a socket not yet known to be a listener or not */
};
KQE_HIDDEN int kqe_fd_data(int fd, enum kqe_fdkind kind, short filter, int64_t *data);

#pragma GCC visibility pop

#endif
