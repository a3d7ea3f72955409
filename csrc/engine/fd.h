/*
 * fd.h - descriptors watched by READ and WRITE knotes: what a descriptor
 * is and what its `data` is (fdkind.c), and one descriptor's slot: its
 * epoll registration, its knotes (fd.c).  Shared by io.c and file.c.
 */
#ifndef KQE_FD_H
#define KQE_FD_H

#include "family.h"

#pragma GCC visibility push(hidden)

/* ---- fdkind.c: what a descriptor is, and its READ/WRITE data ------------ */

enum kqe_fdkind {
	FDK_OTHER = 0, FDK_SOCK, FDK_LISTEN_TCP, FDK_LISTEN_OTHER, FDK_PIPE,
	FDK_CHR, FDK_FILE, FDK_KQ,
	FDK_SOCKET, /* a socket not yet known to be a listener or not */
	/* Registered in epoll before anything else was asked of it (fd.c,
	 * kqe_fd_check): not a regular file, a directory or a queue; what
	 * else it is gets settled where that matters (kqe_fd_settle,
	 * kqe_fd_classify_late). */
	FDK_POLLABLE,
};

/* The kind of descriptor fd described by st (FDK_KQ for a queue). */
KQE_HIDDEN enum kqe_fdkind kqe_fd_classify(int fd, const struct stat *st);
/* A socket's settled kind: FDK_SOCK, FDK_LISTEN_TCP or FDK_LISTEN_OTHER. */
KQE_HIDDEN enum kqe_fdkind kqe_fd_socket_kind(int fd);
/* The settled kind of a descriptor epoll accepted: a socket's, asked with
 * getsockopt (the commonest case, one call), else by fstat. */
KQE_HIDDEN enum kqe_fdkind kqe_fd_pollable_kind(int fd);
/* The exact READ/WRITE data for a descriptor of a given kind (not FDK_KQ);
 * -1 with errno when the descriptor cannot tell. */
KQE_HIDDEN int kqe_fd_data(int fd, enum kqe_fdkind kind, short filter, int64_t *data);

/* ---- fd.c: one descriptor's registration -------------------------------- */

/* What few descriptors need, allocated when first needed: a file's
 * identity (has_id), an inotify watch. */
struct kqe_fdx {
	dev_t dev;
	ino_t ino;
	/* Parked on inotify (watch.c): a file's READ knote, or a pipe's WRITE
	 * knote with NOTE_LOWAT. */
	struct kqe_vwatch *watch;
};

/*
 * One watched descriptor: a slot of q->fdpages, at a fixed address until
 * the queue goes (knotes point to it), with no allocation of its own, 48
 * bytes: memory per READ knote, bench/RESULTS.md.  The first 16 bytes
 * hold all that delivering the commonest knote reads (io.c, the fast
 * path: a level READ knote alone on a socket, pipe or terminal, whose
 * data is one FIONREAD; on Linux a delivered event costs mostly the
 * cache lines it touches): pages are 64-byte aligned and slots 48 bytes,
 * so those 16 bytes never straddle a line.
 */
struct kqe_fd {
	struct knote *rd;
	uint32_t gen;        /* tells results for an older kqe_fd on this number */
	uint8_t kind;        /* enum kqe_fdkind */
	bool used : 1;       /* the slot holds a descriptor */
	bool fast : 1;       /* rd is delivered by the fast path (kqe_fd_fast_update) */
	/* The file's identity is in x.  A kqe_fd registered first (fd.c,
	 * kqe_fd_check) has none: while it is in the queue's epoll, epoll
	 * tells whether the number still names its file, and it learns its
	 * identity (one fstat) before it leaves epoll with knotes left, or
	 * when the process forks. */
	bool has_id : 1;
	/* FDK_PIPE: a pipe's or FIFO's write end.  FreeBSD accepts READ there
	 * and never fires it (semantics §4.1); Linux gives such a knote
	 * nothing but EPOLLERR once the reader is gone, level-triggered, so
	 * it is learnt from the first EPOLLERR (only a write end shows one)
	 * and the READ knote leaves epoll for good (kqe_fd_sync). */
	bool wr_end : 1;
	/* FDK_SOCKET: a stream socket seen neither connected nor listening
	 * (io.c).  Nothing is delivered for it meanwhile, its registration is
	 * edge-triggered so that the EPOLLHUP Linux shows does not spin, and
	 * it is on q->unconn. */
	bool unconn : 1;
	bool nowatch : 1;    /* a pipe whose watch the kernel dropped: edges only */
	/* Open when the process forked: a child holds a copy, so closing it
	 * here leaves epoll reporting it.  Each result is checked with fstat
	 * (io.c), and the knotes go once the number names another file or
	 * none (FreeBSD drops them at close). */
	bool shared : 1;
	bool stale : 1;      /* the number names another file: knotes going */
	struct knote *wr;
	struct kqe_fdx *x;   /* NULL until needed */
	int fd;
	uint32_t main_mask;  /* events registered in the queue's epoll, 0 = none */
	uint32_t edge_mask;  /* events registered in the nested edge epoll */
	int unext;           /* the next descriptor on q->unconn, -1 */
};

#define KQE_FDPAGE_SHIFT 6 /* 64 slots a page */
#define KQE_FDPAGE (1 << KQE_FDPAGE_SHIFT)

#define KQE_RD_EVENTS (EPOLLIN | EPOLLRDHUP)
#define KQE_WR_EVENTS (EPOLLOUT)

/* An edge knote: EV_CLEAR, or NOTE_LOWAT (kept edge-registered so that
 * data below the mark does not make a level registration spin; above the
 * mark a level one stays active and is looked at again each collection,
 * io.c). */
static inline bool kqe_knote_edge(const struct knote *kn)
{
	return (kn->flags & EV_CLEAR) || (kn->sfflags & NOTE_LOWAT);
}

/* fd's slot, in use or not, or NULL (its page does not exist). */
static inline struct kqe_fd *kqe_fd_slot(const struct kqe_queue *q, int fd)
{
	struct kqe_fd *page = fd < q->nfds ? q->fdpages[fd >> KQE_FDPAGE_SHIFT] : NULL;
	return page ? &page[fd & (KQE_FDPAGE - 1)] : NULL;
}

static inline struct kqe_fd *kqe_fd_lookup(const struct kqe_queue *q, int fd)
{
	struct kqe_fd *fde = kqe_fd_slot(q, fd);
	return fde && fde->used ? fde : NULL;
}

/* Its watch slot (watch.c), made when first needed: NULL without memory. */
KQE_HIDDEN struct kqe_vwatch **kqe_fd_watch(struct kqe_fd *fde);

KQE_HIDDEN struct kqe_fd *kqe_fd_create(struct kqe_queue *q, int fd, const struct stat *st);
/* Before a READ or WRITE change on fd is applied: does the engine's kqe_fd
 * for fd, if any, still name the file fd names?  Asked of epoll, without
 * an fstat.  `events`: nonzero for a change that adds an enabled READ
 * knote; then a number the engine keeps nothing current for is registered
 * now with those events, under a new kqe_fd of kind FDK_POLLABLE.
 *   0     settled: fd's kqe_fd (if any) names fd's file;
 *   -1    the general path: fstat, and kqe_fd_stale (true for a kqe_fd
 *         with no identity: the check found it closed or stale);
 *   else  an errno (EBADF: fd is closed).
 * *dropped tells that fd's old kqe_fd and its knotes were dropped (a new
 * READ knote's registration replaced them). */
KQE_HIDDEN int kqe_fd_check(struct kqe_queue *q, int fd, uint32_t events, bool *dropped);
/* Does fd still name fde's file?  One fstat or one epoll_ctl. */
KQE_HIDDEN bool kqe_fd_current(struct kqe_queue *q, struct kqe_fd *fde);
/* An FDK_POLLABLE descriptor's kind, from fstat (FDK_SOCKET for a socket):
 * where EPOLLHUP, EPOLLERR or a WRITE knote need more than a guess. */
KQE_HIDDEN enum kqe_fdkind kqe_fd_classify_late(struct kqe_queue *q, struct kqe_fd *fde);
KQE_HIDDEN void kqe_fd_release(struct kqe_queue *q, struct kqe_fd *fde);
/* Bring the epoll registrations in line with the enabled knotes; rearm
 * forces an EPOLL_CTL_MOD (epoll evaluates the descriptor again).
 * 0 or an errno. */
KQE_HIDDEN int kqe_fd_sync(struct kqe_queue *q, struct kqe_fd *fde, bool rearm);
/* Keep fde->fast right after what it depends on changed. */
KQE_HIDDEN void kqe_fd_fast_update(struct kqe_queue *q, struct kqe_fd *fde);
/* An unsettled socket's or FDK_POLLABLE kind, settled once (fdkind.c) and
 * kept: at the descriptor's first delivered event. */
KQE_HIDDEN enum kqe_fdkind kqe_fd_settle(struct kqe_queue *q, struct kqe_fd *fde);
/* Put fde on q->unconn or take it off (its registration follows). */
KQE_HIDDEN void kqe_fd_unconn_set(struct kqe_queue *q, struct kqe_fd *fde, bool on);
/* Does fde describe another file than st (the number was reused)?  True
 * for a kqe_fd with no identity (fd.h: it is registered, then, and
 * kqe_fd_check asks epoll instead). */
KQE_HIDDEN bool kqe_fd_stale(const struct kqe_fd *fde, const struct stat *st);
KQE_HIDDEN void kqe_fds_free(struct kqe_queue *q);
KQE_HIDDEN void kqe_fds_atfork(struct kqe_queue *q);
/* Drop the knotes of a descriptor whose number was closed or names
 * another file now (FreeBSD dropped them at close); fde goes with them. */
KQE_HIDDEN void kqe_fd_drop_stale(struct kqe_queue *q, struct kqe_fd *fde);
/* Has fde's number been closed, or reused for another file?  Then its
 * knotes are dropped (fde freed) and true returned.  One system call. */
KQE_HIDDEN bool kqe_fd_gone(struct kqe_queue *q, struct kqe_fd *fde);
KQE_HIDDEN int kqe_fds_rearm(struct kqe_queue *q, int epfd, bool add);
KQE_HIDDEN void kqe_fds_forked(struct kqe_queue *q);

/* ---- io.c and file.c, between each other --------------------------------- */

/* file.c: READ/WRITE knotes on regular files and directories. */
KQE_HIDDEN int kqe_file_attach(struct kqe_queue *q, struct knote *kn);
KQE_HIDDEN void kqe_file_detach(struct kqe_queue *q, struct knote *kn);
KQE_HIDDEN void kqe_file_enable(struct kqe_queue *q, struct knote *kn);
KQE_HIDDEN int kqe_file_event(struct knote *kn, struct kevent *ev);
KQE_HIDDEN void kqe_files_poll(struct kqe_queue *q);

#pragma GCC visibility pop

#endif
