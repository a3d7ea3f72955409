/*
 * readiness.c - EVFILT_READ and EVFILT_WRITE on descriptors.
 *
 * Sockets, pipes, FIFOs, terminals and nested queues go through epoll; each
 * descriptor has one struct kqe_fd whose epoll registration is the union of
 * its READ and WRITE knotes (epoll allows one registration per descriptor
 * and epoll instance).  Level knotes use level-triggered epoll, EV_CLEAR
 * knotes edge-triggered; when one descriptor mixes the two, the EV_CLEAR
 * direction moves to a second, nested epoll owned by the queue, so both
 * knotes keep their own semantics without dup()ing the descriptor.
 *
 * Regular files and directories cannot be polled (epoll says EPERM): their
 * READ is ready while size - offset != 0 and WRITE always is; they are
 * served from the ready list (semantics §4.1, §4.2).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "internal.h"

struct kqe_fd {
	int fd;
	uint32_t gen;        /* tells results for an older kqe_fd on this number */
	dev_t dev;
	ino_t ino;
	struct knote *rd, *wr;
	uint32_t main_mask;  /* events registered in the queue's epoll, 0 = none */
	uint32_t edge_mask;  /* events registered in the nested edge epoll */
	enum kqe_fdkind kind;
	bool fast;           /* q->fast[fd] holds rd (see fd_fast_update) */
	/* FDK_PIPE: a pipe's or FIFO's write end.  FreeBSD accepts READ there
	 * and never fires it (semantics §4.1); Linux gives such a knote
	 * nothing but EPOLLERR once the reader is gone, level-triggered, so
	 * it is learnt from the first EPOLLERR (only a write end shows one)
	 * and the READ knote leaves epoll for good (fd_sync). */
	bool wr_end;
	/* FDK_SOCKET: a stream socket seen neither connected nor listening
	 * (sock_unconnected).  Nothing is delivered for it meanwhile, its
	 * registration is edge-triggered so that the EPOLLHUP Linux shows
	 * does not spin, and it is on q->unconn (kqe_unconn_poll). */
	bool unconn;
	struct kqe_fd *unext; /* q->unconn */
	uint64_t kq_serial;  /* FDK_KQ: which queue (all epolls share one inode) */
	/* Parked on inotify (vnode.c): a file's READ knote, or a pipe's WRITE
	 * knote with NOTE_LOWAT (pipe_lowat_park). */
	struct kqe_vwatch *watch;
	bool nowatch;        /* a pipe: no inotify watch could be had */
};

/* q->fast[fd]: what delivers an epoll result for the commonest knote, a
 * level READ knote alone on a socket, pipe or terminal, without reading
 * the kqe_fd (kqe_fd_results): on Linux a delivered event costs mostly the
 * cache lines it touches.  Copies, set only by fd_fast_set.  A table of its
 * own beside q->fds (one pointer per number), written only for such
 * knotes: registration costs cache lines too, and adding or deleting any
 * other knote, or a socket's READ knote before its first event settles the
 * socket's kind, touches q->fds alone (bench/RESULTS.md, S2 session 2). */
struct kqe_fdfast {
	struct knote *kn;    /* the kqe_fd's rd, or NULL: take the general path */
	uint32_t gen;        /* the kqe_fd's gen */
	uint8_t kind;        /* the kqe_fd's kind (an enum kqe_fdkind) */
};

/* Delivery reads the first 16 bytes of a knote only (see internal.h). */
typedef char kqe_knote_head_check[(offsetof(struct knote, udata) + sizeof(void *) <= 16 &&
				   EVFILT_SYSCOUNT <= 127 && KN_CREATED <= 0x80) ? 1 : -1];

#define RD_EVENTS (EPOLLIN | EPOLLRDHUP)
#define WR_EVENTS (EPOLLOUT)

/* ---- what a descriptor is ------------------------------------------------ */

static enum kqe_fdkind classify(int fd, const struct stat *st)
{
	switch (st->st_mode & S_IFMT) {
	/* A queue is an epoll descriptor, an anonymous inode, which Linux
	 * shows with no type or as a regular file, never as one of these
	 * three: they need no look at the registry (its lock, at every
	 * EV_ADD of a new descriptor). */
	case S_IFIFO:
		return FDK_PIPE;
	case S_IFCHR:
		return FDK_CHR;
	case S_IFSOCK:
		/* Listener or not is settled at the first event delivered
		 * (socket_kind): registration stays at fstat + epoll_ctl, and a
		 * socket that starts listening after EV_ADD is still seen as a
		 * listener.  A socket neither connected nor listening delivers
		 * nothing (sock_unconnected), so it settles nothing either. */
		return FDK_SOCKET;
	default:
		break;
	}
	struct kqe_queue *other = kqe_queue_get(fd);
	if (other) {
		kqe_queue_put(other);
		return FDK_KQ;
	}
	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
		return FDK_FILE;
	default:
		return FDK_OTHER;
	}
}

int kqe_fd_data(int fd, enum kqe_fdkind kind, short filter, int64_t *data)
{
	int v = 0;
	*data = 0;
	if (filter == EVFILT_READ) {
		switch (kind) {
		case FDK_LISTEN_TCP: {
			/* For a listener the kernel reports the accept queue here. */
			struct tcp_info ti;
			socklen_t len = sizeof ti;
			if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
				return -1;
			*data = ti.tcpi_unacked;
			return 0;
		}
		case FDK_LISTEN_OTHER:
			*data = 1; /* Linux has no backlog query but for TCP */
			return 0;
		case FDK_FILE: {
			struct stat st;
			if (fstat(fd, &st) < 0)
				return -1;
			off_t off = lseek(fd, 0, SEEK_CUR);
			if (off < 0)
				return S_ISDIR(st.st_mode) ? 0 : -1;
			*data = (int64_t)st.st_size - (int64_t)off;
			return 0;
		}
		case FDK_KQ: {
			struct kqe_queue *q = kqe_queue_get(fd);
			if (q == NULL) {
				errno = EBADF;
				return -1;
			}
			*data = kqe_queue_pending(q);
			kqe_queue_put(q);
			return 0;
		}
		default:
			if (ioctl(fd, FIONREAD, &v) < 0)
				return errno == ENOTTY || errno == EINVAL ? 0 : -1;
			*data = v;
			return 0;
		}
	}
	switch (kind) {
	case FDK_SOCK: {
		/* Free send space; Linux has no exact query (semantics §6.3). */
		int sndbuf = 0, queued = 0;
		socklen_t len = sizeof sndbuf;
		if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) < 0 ||
		    ioctl(fd, SIOCOUTQ, &queued) < 0)
			return -1;
		*data = sndbuf > queued ? sndbuf - queued : 0;
		return 0;
	}
	case FDK_PIPE: {
		int size = fcntl(fd, F_GETPIPE_SZ);
		if (size < 0 || ioctl(fd, FIONREAD, &v) < 0)
			return -1;
		*data = size > v ? size - v : 0;
		return 0;
	}
	default:
		return 0; /* files: 0, as FreeBSD */
	}
}

static inline void fd_fast_update(struct kqe_queue *q, struct kqe_fd *fde);

/* An unsettled socket's kind, settled once per descriptor (one or two
 * getsockopt calls at its first event, never per event). */
static enum kqe_fdkind socket_kind(struct kqe_queue *q, struct kqe_fd *fde)
{
	if (fde->kind != FDK_SOCKET)
		return fde->kind;
	int on = 0, domain = 0;
	socklen_t len = sizeof on;
	fde->kind = FDK_SOCK;
	if (getsockopt(fde->fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on) {
		len = sizeof domain;
		getsockopt(fde->fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
		fde->kind = (domain == AF_INET || domain == AF_INET6) ? FDK_LISTEN_TCP
								     : FDK_LISTEN_OTHER;
	}
	fd_fast_update(q, fde);
	return fde->kind;
}

/* ---- the per-descriptor table -------------------------------------------- */

static struct kqe_fd *fd_lookup(struct kqe_queue *q, int fd)
{
	return fd < q->nfds ? q->fds[fd] : NULL;
}

static bool knote_edge(const struct knote *kn);

/* Point q->fast[fde->fd] at kn, or clear it (kn NULL).  The table grows to
 * q->nfds at the first fast knote beyond it; without memory the knote
 * simply stays on the general path, which delivers the same events. */
static __attribute__((noinline)) void fd_fast_set(struct kqe_queue *q, struct kqe_fd *fde,
						   struct knote *kn)
{
	int fd = fde->fd;
	if (kn && fd >= q->nfast) {
		int n = q->nfds; /* > fd: fde is in q->fds */
		struct kqe_fdfast *t = realloc(q->fast, (size_t)n * sizeof *t);
		if (t == NULL)
			return; /* fde->fast stays false: nothing to clear later */
		memset(t + q->nfast, 0, (size_t)(n - q->nfast) * sizeof *t);
		q->fast = t;
		q->nfast = n;
	}
	if (kn)
		q->fast[fd] = (struct kqe_fdfast){ .kn = kn, .gen = fde->gen,
						   .kind = (uint8_t)fde->kind };
	else
		q->fast[fd] = (struct kqe_fdfast){ 0 };
	fde->fast = kn != NULL;
}

/* Keep q->fast[fd] right: called whenever what it depends on may have
 * changed (the knotes, their registration, the kind).  The fast path needs
 * the READ knote alone in the queue's epoll, level-triggered (so no
 * EV_CLEAR, no NOTE_LOWAT), on a descriptor whose data is one FIONREAD.
 * What can change without passing here (enabled, queued, EV_ONESHOT from
 * EV_FORCEONESHOT, delivered this call) is checked on each result.  The
 * kind is looked at first: an unsettled socket, a file or a kqueue costs
 * a compare here and no write. */
static inline void fd_fast_update(struct kqe_queue *q, struct kqe_fd *fde)
{
	struct knote *rd = fde->rd;
	bool fast = (fde->kind == FDK_SOCK || fde->kind == FDK_PIPE || fde->kind == FDK_CHR) &&
		    rd && !fde->wr && fde->main_mask == RD_EVENTS && fde->edge_mask == 0 &&
		    !knote_edge(rd);
	if (fast ? !fde->fast || q->fast[fde->fd].kn != rd : fde->fast)
		fd_fast_set(q, fde, fast ? rd : NULL);
}

static struct kqe_fd *fd_create(struct kqe_queue *q, int fd, const struct stat *st)
{
	if (fd >= q->nfds) {
		int n = q->nfds ? q->nfds : 64;
		while (n <= fd)
			n *= 2;
		struct kqe_fd **t = realloc(q->fds, (size_t)n * sizeof *t);
		if (t == NULL)
			return NULL;
		memset(t + q->nfds, 0, (size_t)(n - q->nfds) * sizeof *t);
		q->fds = t;
		q->nfds = n;
	}
	struct kqe_fd *fde = calloc(1, sizeof *fde);
	if (fde == NULL)
		return NULL;
	fde->fd = fd;
	fde->gen = q->fdgen++ & 0xffffff;
	fde->dev = st->st_dev;
	fde->ino = st->st_ino;
	fde->kind = classify(fd, st);
	if (fde->kind == FDK_KQ)
		fde->kq_serial = kqe_queue_serial(fd);
	q->fds[fd] = fde;
	return fde;
}

static void unconn_unlink(struct kqe_queue *q, struct kqe_fd *fde)
{
	struct kqe_fd **pp = &q->unconn;
	while (*pp && *pp != fde)
		pp = &(*pp)->unext;
	if (*pp)
		*pp = fde->unext;
	fde->unext = NULL;
	fde->unconn = false;
}

static void fd_release(struct kqe_queue *q, struct kqe_fd *fde)
{
	/* Last knote gone: leave epoll.  Errors are expected when the file was
	 * closed (epoll already forgot it) or the number was reused. */
	if (fde->main_mask && q->epfd >= 0)
		epoll_ctl(q->epfd, EPOLL_CTL_DEL, fde->fd, NULL);
	if (fde->edge_mask && q->edge_epfd >= 0)
		epoll_ctl(q->edge_epfd, EPOLL_CTL_DEL, fde->fd, NULL);
	if (fde->fast)
		q->fast[fde->fd] = (struct kqe_fdfast){ 0 };
	if (fde->unconn)
		unconn_unlink(q, fde);
	q->fds[fde->fd] = NULL;
	free(fde);
}

void kqe_fds_free(struct kqe_queue *q)
{
	for (int i = 0; i < q->nfds; i++)
		free(q->fds[i]);
	free(q->fds);
	free(q->fast);
	q->unconn = NULL;
	q->fds = NULL;
	q->fast = NULL;
	q->nfds = q->nfast = 0;
}

static bool knote_edge(const struct knote *kn)
{
	/* NOTE_LOWAT knotes are edge-registered too, so that data below the
	 * mark does not make a level registration spin.  Above the mark a
	 * level one stays active and is looked at again at each collection
	 * (io_after); below it, a new edge must come: data arriving, space
	 * freed on a socket, or for a pipe's WRITE knote a read of the pipe
	 * seen by inotify (pipe_lowat_park). */
	return (kn->flags & EV_CLEAR) || (kn->sfflags & NOTE_LOWAT);
}

static int edge_epoll(struct kqe_queue *q)
{
	if (q->edge_epfd >= 0)
		return 0;
	int fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0)
		return errno;
	int err = kqe_epoll_add(q, fd, EPOLLIN, KQE_TAG(TAG_EDGE, 0));
	if (err) {
		close(fd);
		return err;
	}
	q->edge_epfd = fd;
	return 0;
}

static int epoll_apply(struct kqe_queue *q, int epfd, struct kqe_fd *fde, uint32_t *cur,
		       uint32_t want, bool rearm)
{
	if (*cur == want && !(rearm && want))
		return 0;
	int op = *cur == 0 ? EPOLL_CTL_ADD : want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
	struct epoll_event ev = {
		.events = want,
		.data.u64 = KQE_TAG(TAG_FD, (uint64_t)fde->gen << 32 | (uint32_t)fde->fd),
	};
	if (epoll_ctl(epfd, op, fde->fd, &ev) < 0) {
		int err = errno;
		if (op == EPOLL_CTL_DEL) {
			*cur = 0;
			return 0;
		}
		if (err == ELOOP)
			err = EINVAL; /* a queue watching itself, directly or not */
		if (err == EPERM)
			err = EINVAL;
		if (err == ENOSPC)
			err = ENOMEM; /* the epoll watch limit: a resource limit, as FreeBSD says */
		return err;
	}
	*cur = want;
	(void)q;
	return 0;
}

/* Bring the epoll registrations of one descriptor in line with its enabled
 * knotes.  rearm forces an EPOLL_CTL_MOD, which makes epoll evaluate the
 * descriptor again (EV_ENABLE must deliver what is pending). */
static int fd_sync(struct kqe_queue *q, struct kqe_fd *fde, bool rearm)
{
	struct knote *rd = fde->rd, *wr = fde->wr;
	bool rd_on = rd && (rd->status & KN_ENABLED) && !fde->wr_end;
	bool wr_on = wr && (wr->status & KN_ENABLED);
	uint32_t main = 0, edge = 0;
	/* Placement.  An epoll instance holds one registration per fd, and an
	 * edge-triggered registration reports every ready direction at each
	 * wake-up, so two EV_CLEAR knotes sharing one fire each other (every
	 * READ edge fired an EV_CLEAR WRITE knote again).  Moving a knote from
	 * one instance to the other re-reports it, too.  So READ always lives
	 * in the queue's epoll, an edge WRITE always in the nested one, and a
	 * level WRITE in the queue's epoll unless READ there is edge.  Only
	 * level knotes ever move, and reporting a level knote again is right. */
	bool wr_nested = wr_on && (knote_edge(wr) || (rd_on && knote_edge(rd)));
	if (rd_on)
		main = RD_EVENTS | (knote_edge(rd) ? EPOLLET : 0);
	if (wr_on && !wr_nested)
		main |= WR_EVENTS;
	if (wr_nested)
		edge = WR_EVENTS | (knote_edge(wr) ? EPOLLET : 0);
	if (fde->unconn) {
		/* Edge-triggered everywhere while the socket shows EPOLLHUP for
		 * want of a connection; placement stays, so nothing moves. */
		main |= main ? EPOLLET : 0;
		edge |= edge ? EPOLLET : 0;
	}
	int err = edge ? edge_epoll(q) : 0;
	if (err == 0)
		err = epoll_apply(q, q->epfd, fde, &fde->main_mask, main, rearm);
	if (err == 0 && (edge || fde->edge_mask))
		err = epoll_apply(q, q->edge_epfd, fde, &fde->edge_mask, edge, rearm);
	fd_fast_update(q, fde);
	return err;
}

/* ---- regular files ------------------------------------------------------- */

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

/* A READ knote on a file that is not ready waits on inotify (vnode.c):
 * an append, a truncate or a link change activates it, and io_event looks
 * at the file again.  As on FreeBSD, only a change of the file re-arms a
 * knote that found nothing: an lseek alone does not.  Returns true when
 * parked; look at the file once more then, for a change made before the
 * watch was in place. */
static bool file_park(struct kqe_queue *q, struct knote *kn)
{
	return kqe_file_watch(q, kn, &kn->u.io.fde->watch) == 0;
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
		if (kn->filter == EVFILT_READ && kn->u.io.fde->watch)
			continue; /* parked: inotify activates it */
		int64_t data;
		if (file_ready(kn, &data) ||
		    (kn->filter == EVFILT_READ && file_park(q, kn) && file_ready(kn, &data)))
			kqe_knote_activate(q, kn);
	}
}

/* ---- the filter operations ------------------------------------------------ */

/* Does fde describe another file than st (the number was closed and
 * reused)?  Queues all share one anonymous inode, so a queue is known by
 * its serial; other anonymous-inode descriptors (eventfd, timerfd) share
 * one inode too, and for them a reused number goes unnoticed (documented). */
static bool fde_stale(const struct kqe_fd *fde, const struct stat *st)
{
	if (fde->kind == FDK_KQ)
		return kqe_queue_serial(fde->fd) != fde->kq_serial;
	return fde->dev != st->st_dev || fde->ino != st->st_ino;
}

static int io_attach(struct kqe_queue *q, struct knote *kn, const struct kevent *kev)
{
	(void)kev;
	int fd = (int)kn->ident;
	struct kqe_fd *fde = fd_lookup(q, fd);
	if (fde && fde_stale(fde, q->change_st)) {
		/* The other direction's knote still names the old file: it goes. */
		struct knote *old = fde->rd ? fde->rd : fde->wr;
		if (old)
			kqe_knote_drop(q, old); /* the last one frees fde */
		fde = fd_lookup(q, fd);
		if (fde) {
			old = fde->rd ? fde->rd : fde->wr;
			if (old)
				kqe_knote_drop(q, old);
		}
		fde = fd_lookup(q, fd);
	}
	if (fde == NULL) {
		fde = fd_create(q, fd, q->change_st);
		if (fde == NULL)
			return ENOMEM;
	}
	if (fde->kind == FDK_KQ) {
		if (kn->filter == EVFILT_WRITE || fd == q->epfd)
			goto einval;
		struct kqe_queue *inner = kqe_queue_get(fd);
		if (inner == NULL)
			goto einval;
		/* Its ready list must show on its descriptor from now on. */
		pthread_mutex_lock(&inner->lock);
		if (!inner->exposed) {
			inner->exposed = true;
			if (inner->nready > 0 && !inner->wake_pending)
				kqe_wake(inner);
		}
		pthread_mutex_unlock(&inner->lock);
		kqe_queue_put(inner);
	}
	if (kn->filter == EVFILT_WRITE && fde->kind == FDK_PIPE) {
		/* FreeBSD refuses WRITE on a pipe whose reader is gone. */
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR)) {
			if (!fde->rd && !fde->wr)
				fd_release(q, fde);
			return EPIPE;
		}
	}
	kn->u.io.fde = fde;
	if (kn->filter == EVFILT_READ)
		fde->rd = kn;
	else
		fde->wr = kn;

	if (fde->kind == FDK_FILE) {
		kn->u.io.on.fnext = q->filelist;
		q->filelist = kn;
		int64_t data;
		bool ready = file_ready(kn, &data);
		/* READ parks when not ready, and with EV_CLEAR always: only a
		 * change of the file makes a new event then.  If no watch can be
		 * had, kqe_files_poll polls it instead. */
		if (kn->filter == EVFILT_READ && (!ready || (kn->flags & EV_CLEAR)) &&
		    file_park(q, kn) && !ready)
			ready = file_ready(kn, &data);
		if ((kn->status & KN_ENABLED) && ready)
			kqe_knote_activate(q, kn);
		return 0;
	}
	int err = fd_sync(q, fde, false);
	if (err) {
		if (kn->filter == EVFILT_READ)
			fde->rd = NULL;
		else
			fde->wr = NULL;
		if (!fde->rd && !fde->wr)
			fd_release(q, fde);
		else
			fd_sync(q, fde, false);
		return err;
	}
	return 0;
einval:
	if (!fde->rd && !fde->wr)
		fd_release(q, fde);
	return EINVAL;
}

static void io_detach(struct kqe_queue *q, struct knote *kn)
{
	struct kqe_fd *fde = kn->u.io.fde;
	if (fde == NULL)
		return;
	if (fde->kind == FDK_FILE) {
		file_list_remove(q, kn);
		if (fde->rd == kn)
			kqe_file_unwatch(q, kn, &fde->watch);
	}
	if (fde->kind == FDK_PIPE && fde->wr == kn)
		kqe_file_unwatch(q, kn, &fde->watch); /* pipe_lowat_park */
	if (fde->rd == kn)
		fde->rd = NULL;
	if (fde->wr == kn)
		fde->wr = NULL;
	if (!fde->rd && !fde->wr)
		fd_release(q, fde);
	else if (fde->kind != FDK_FILE)
		fd_sync(q, fde, false);
}

/* EV_DELETE of a knote whose descriptor epoll watches: the epoll_ctl that
 * the delete needs anyway answers EBADF for a closed descriptor and ENOENT
 * when the number now names a file that was never registered, which are
 * FreeBSD's answers too (semantics §5).  Registration then costs no fstat
 * on the way out. */
static int io_delete_fast(struct kqe_queue *q, struct knote *kn)
{
	struct kqe_fd *fde = kn->u.io.fde;
	struct knote *other = fde->rd == kn ? fde->wr : fde->rd;
	/* Only the common shape: the last knote, registered in the main epoll. */
	if (fde->kind == FDK_FILE || other != NULL || fde->main_mask == 0 || fde->edge_mask)
		return -1;
	int err = 0;
	if (epoll_ctl(q->epfd, EPOLL_CTL_DEL, fde->fd, NULL) < 0)
		err = errno;
	fde->main_mask = 0; /* gone either way: fd_release must not try again */
	kqe_knote_drop(q, kn);
	if (err == EBADF || err == ENOENT)
		return err;
	return 0;
}

static bool io_stale(struct kqe_queue *q, struct knote *kn, const struct stat *st)
{
	(void)q;
	return fde_stale(kn->u.io.fde, st);
}

/* Is this socket neither connected nor listening, by what epoll or poll
 * reported (ev)?  Linux shows a stream socket fresh from socket(), or only
 * bound, as EPOLLHUP (and EPOLLOUT) at every wait: TCP_CLOSE.  FreeBSD
 * fires neither READ nor WRITE there (no EOF before a connection, and WRITE
 * waits for one, semantics §4.2).  A connection that ended shows
 * EPOLLRDHUP too, a failed connect EPOLLERR (and EPOLLRDHUP once SO_ERROR
 * was read), a connecting socket nothing, a listener or a datagram socket
 * no EPOLLHUP: those are reported as they are.  Where EPOLLRDHUP was not
 * asked for (a WRITE registration alone), one poll tells; that happens
 * only for EPOLLHUP alone on a socket whose kind is not settled yet.
 * Called for FDK_SOCKET only: a socket that delivered an event is settled
 * (socket_kind), and a connected socket never looks unconnected again. */
static bool sock_unconnected(int fd, uint32_t ev, bool rdhup_asked)
{
	if ((ev & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) != EPOLLHUP)
		return false;
	if (rdhup_asked)
		return true;
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };
	return poll(&p, 1, 0) == 1 &&
	       (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)) == POLLHUP;
}

/* Put fde on or off q->unconn; fd_sync makes its registration edge-
 * triggered while on it (level again after: EPOLL_CTL_MOD evaluates the
 * descriptor again, so what is ready then is reported). */
static void sock_unconn_set(struct kqe_queue *q, struct kqe_fd *fde, bool on)
{
	if (fde->unconn == on)
		return;
	if (on) {
		fde->unconn = true;
		fde->unext = q->unconn;
		q->unconn = fde;
	} else {
		unconn_unlink(q, fde);
	}
	fd_sync(q, fde, false);
}

/* Sockets seen unconnected, once per collection: those with an enabled
 * WRITE knote are looked at (one poll each).  Edge-triggered, they would
 * hear of a TCP connection (its state change wakes every waiter) or of a
 * listener's first connection, but an AF_UNIX connect() wakes nothing on
 * the connecting socket, and WRITE must fire after it.  Once connected or
 * listening, the registration is level again and epoll reports it in this
 * very collection.  Only sockets registered before connect() or listen()
 * and collected meanwhile are ever on this list. */
void kqe_unconn_poll(struct kqe_queue *q)
{
	struct kqe_fd *fde = q->unconn, *next;
	for (; fde; fde = next) {
		next = fde->unext;
		if (!fde->wr || !(fde->wr->status & KN_ENABLED))
			continue;
		struct pollfd p = { .fd = fde->fd, .events = POLLIN | POLLOUT | POLLRDHUP };
		if (poll(&p, 1, 0) < 0)
			continue;
		if ((p.revents & POLLNVAL) || !sock_unconnected(fde->fd, p.revents, true))
			sock_unconn_set(q, fde, false);
	}
}

/* EPOLLERR on a socket: read the error once (SO_ERROR clears it) and keep
 * it for fflags in both knotes of the descriptor, so that READ and WRITE
 * both report it, as on FreeBSD where it stays on the socket. */
static void sock_error_keep(struct kqe_fd *fde)
{
	int soerr = 0;
	socklen_t len = sizeof soerr;
	if (getsockopt(fde->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr) {
		if (fde->rd)
			fde->rd->u.io.on.ep.sockerr = soerr;
		if (fde->wr)
			fde->wr->u.io.on.ep.sockerr = soerr;
	}
}

static inline bool sock_kind(enum kqe_fdkind kind)
{
	return kind == FDK_SOCKET || kind == FDK_SOCK || kind == FDK_LISTEN_TCP;
}

/* EPOLLERR on a pipe or FIFO: only a write end whose reader is gone shows
 * it (a read end shows EPOLLHUP; an O_RDWR FIFO is its own reader).  A
 * READ knote there never fires (semantics §4.1), and its registration,
 * which epoll would report at every wait from now on, goes. */
static void pipe_write_end(struct kqe_queue *q, struct kqe_fd *fde)
{
	if (fde->wr_end)
		return;
	fde->wr_end = true;
	fd_sync(q, fde, false);
}

/* Evaluate an enabled epoll-backed knote now, as FreeBSD's f_event at
 * registration, and queue it when its direction is ready.  poll(2) asks
 * about this knote's direction only (its bits equal epoll's on Linux);
 * one syscall per modify or EV_ENABLE, none per delivered event.  Whether
 * NOTE_LOWAT is met is decided by io_event, as for epoll results. */
static void io_reevaluate(struct kqe_queue *q, struct knote *kn)
{
	bool rd = kn->filter == EVFILT_READ;
	/* POLLRDHUP for WRITE too: it tells an unconnected socket (POLLHUP
	 * alone) from one whose connection ended; WRITE does not fire on it. */
	struct pollfd p = { .fd = (int)kn->ident,
			    .events = rd ? (POLLIN | POLLRDHUP) : (POLLOUT | POLLRDHUP) };
	if (poll(&p, 1, 0) != 1 || (p.revents & POLLNVAL))
		return;
	struct kqe_fd *fde = kn->u.io.fde;
	if (rd && fde->kind == FDK_PIPE && (p.revents & POLLERR)) {
		pipe_write_end(q, fde);
		return;
	}
	if (fde->kind == FDK_SOCKET) {
		bool unconn = sock_unconnected(fde->fd, p.revents, true);
		sock_unconn_set(q, fde, unconn);
		if (unconn)
			return;
	}
	uint32_t fire = rd ? (POLLIN | POLLRDHUP | POLLHUP | POLLERR) : (POLLOUT | POLLHUP | POLLERR);
	if (!(p.revents & fire))
		return;
	kn->revents = (uint16_t)p.revents;
	if ((p.revents & POLLERR) && sock_kind(fde->kind))
		sock_error_keep(fde);
	kqe_knote_activate(q, kn);
}

static int io_modify(struct kqe_queue *q, struct knote *kn, const struct kevent *kev)
{
	/* Parameters are replaced, not ORed (semantics §3). */
	bool was_edge = knote_edge(kn);
	kn->sfflags = kev->fflags;
	kn->sdata = kev->data;
	struct kqe_fd *fde = kn->u.io.fde;
	if (fde->kind == FDK_PIPE && fde->wr == kn && !(kn->sfflags & NOTE_LOWAT))
		kqe_file_unwatch(q, kn, &fde->watch); /* no mark: no more parking */
	if (fde->kind != FDK_FILE) {
		int err = 0;
		if (knote_edge(kn) != was_edge)
			err = fd_sync(q, fde, false);
		/* FreeBSD evaluates the filter again after every modify of an
		 * enabled knote (kqueue_register, done_ev_add): a lowered
		 * NOTE_LOWAT mark already met, or a re-added EV_CLEAR knote
		 * with data waiting, fires now.  EV_ENABLE does it in
		 * io_enable; a knote being disabled needs none. */
		if (err == 0 && (kn->status & KN_ENABLED) &&
		    !(kev->flags & (EV_ENABLE | EV_DISABLE)))
			io_reevaluate(q, kn);
		return err;
	}
	return 0;
}

static void io_enable(struct kqe_queue *q, struct knote *kn)
{
	struct kqe_fd *fde = kn->u.io.fde;
	if (fde->kind == FDK_FILE) {
		int64_t data;
		if (file_ready(kn, &data))
			kn->status |= KN_ACTIVE;
		return;
	}
	/* Back into epoll if a lazy disarm took it out, then evaluate now,
	 * which is how what happened while disabled gets delivered.  Not a
	 * forced EPOLL_CTL_MOD: that re-reports the whole registration, and
	 * an EV_CLEAR knote of the other direction would fire for nothing. */
	fd_sync(q, fde, false);
	io_reevaluate(q, kn);
}

static void io_disable(struct kqe_queue *q, struct knote *kn)
{
	(void)q;
	/* Lazy: epoll stays armed until it reports with nobody enabled. */
	kn->status &= ~KN_ACTIVE;
}

/* A pipe's WRITE knote with NOTE_LOWAT, parked on the pipe's inode at its
 * first evaluation: since Linux 5.5 a read of a pipe wakes writers (and so
 * gives epoll an edge) only when the pipe was full, so once the free space
 * is below the mark, nothing would ever report that a read brought it back
 * (FreeBSD evaluates the knote at every read).  inotify's IN_ACCESS does,
 * from a read in any process; vnode.c activates the knote when the mark is
 * met (kqe_io_lowat_met).  Nothing spins meanwhile, and a level knote above
 * the mark costs nothing more: it is looked at each collection anyway.
 * Without a watch (no inotify left), only epoll's edges come. */
static void pipe_lowat_park(struct kqe_queue *q, struct knote *kn)
{
	struct kqe_fd *fde = kn->u.io.fde;
	if (fde->watch || fde->nowatch)
		return;
	if (kqe_file_watch(q, kn, &fde->watch) != 0)
		fde->nowatch = true;
}

bool kqe_io_read_met(struct knote *kn)
{
	int64_t data;
	if (kn->u.io.fde->kind != FDK_FILE ||
	    kqe_fd_data((int)kn->ident, FDK_FILE, EVFILT_READ, &data) < 0)
		return true; /* let the event op find out (a closed descriptor) */
	return data != 0 || (kn->sfflags & NOTE_FILE_POLL);
}

bool kqe_io_lowat_met(struct knote *kn)
{
	int64_t data;
	if (kqe_fd_data((int)kn->ident, kn->u.io.fde->kind, kn->filter, &data) < 0)
		return true; /* let the event op find out (a closed descriptor) */
	return data >= kn->sdata;
}

/* Fill an event from the last epoll result or, for files, from the file. */
static int io_event(struct kqe_queue *q, struct knote *kn, struct kevent *ev)
{
	struct kqe_fd *fde = kn->u.io.fde;
	EV_SET(ev, kn->ident, kn->filter, kn->flags, 0, 0, kn->udata);
	if (fde->kind == FDK_FILE) {
		int64_t data = 0;
		bool ready = file_ready(kn, &data);
		ev->data = data;
		return ready;
	}
	uint32_t events = kn->revents;
	bool eof = kn->filter == EVFILT_READ ? (events & (EPOLLRDHUP | EPOLLHUP)) != 0
					      : (events & (EPOLLHUP | EPOLLERR)) != 0;
	if (eof) {
		ev->flags |= EV_EOF;
		ev->fflags = (uint32_t)kn->u.io.on.ep.sockerr;
	}
	bool lowat = (kn->sfflags & NOTE_LOWAT) != 0;
	if (fde->kind == FDK_OTHER)
		return 1;
	socket_kind(q, fde);
	if (q->lazy_data && !lowat) {
		/* Left to kqe_event_data(): no syscall per delivered event. */
		ev->ext[0] = KQE_LAZY_MAGIC | ((uint64_t)fde->kind << 8);
		return 1;
	}
	if (lowat && fde->kind == FDK_PIPE && kn->filter == EVFILT_WRITE)
		pipe_lowat_park(q, kn); /* before the look: no read is missed */
	int64_t data = 0;
	if (kqe_fd_data(fde->fd, fde->kind, kn->filter, &data) < 0)
		data = 0;
	ev->data = data;
	if (lowat && !eof && data < kn->sdata)
		return 0;
	return 1;
}

/* The event op for a knote taken off the ready list (eventlist overflow,
 * EV_FORCEONESHOT, NOTE_LOWAT requeue).  Unlike a fresh epoll result, such
 * a knote may outlive its descriptor: FreeBSD drops knotes at close(2), so
 * an event for a number closed (or reused for another file) meanwhile must
 * not be delivered.  One fstat per such event; these paths are not the hot
 * one (epoll results go through io_event directly).  The knote is left
 * inactive; a later change on the number drops or replaces it. */
static int io_event_queued(struct kqe_queue *q, struct knote *kn, struct kevent *ev)
{
	struct kqe_fd *fde = kn->u.io.fde;
	if (fde->kind != FDK_FILE) {
		struct stat st;
		if (fstat(fde->fd, &st) < 0 || st.st_dev != fde->dev ||
		    st.st_ino != fde->ino)
			return -1;
	}
	return io_event(q, kn, ev);
}

static void io_after(struct kqe_queue *q, struct knote *kn)
{
	(void)q;
	/* Level knotes on epoll are reported again by epoll itself; NOTE_LOWAT
	 * and file knotes (served from the ready list) stay active and are
	 * checked again at the next collection. */
	bool userspace_level = !(kn->flags & EV_CLEAR) &&
			       (kn->u.io.fde->kind == FDK_FILE || (kn->sfflags & NOTE_LOWAT));
	if (!userspace_level)
		kn->status &= ~KN_ACTIVE;
}

/* The delivery of a fast knote (q->fast, see fd_fast_update), exactly what
 * the general path below does for it, but reading only its q->fast entry
 * and the knote's first 16 bytes: no kqe_fd, no other knote field unless
 * EOF. */
static int fast_result(struct kqe_queue *q, int fd, const struct kqe_fdfast *s,
		       struct knote *kn, uint32_t events, struct kevent *ev)
{
	int64_t data = 0;
	uint64_t ext0 = 0;
	if (q->lazy_data) {
		ext0 = KQE_LAZY_MAGIC | ((uint64_t)s->kind << 8);
	} else {
		/* kqe_fd_data for these kinds; a failure gives 0, as there.
		 * First, so that little is live across the call. */
		int v;
		if (ioctl(fd, FIONREAD, &v) == 0)
			data = v;
	}
	unsigned short flags = kn->flags;
	unsigned int fflags = 0;
	if (events & (EPOLLRDHUP | EPOLLHUP)) {
		flags |= EV_EOF;
		fflags = (unsigned int)kn->u.io.on.ep.sockerr;
	}
	ev->ident = (uintptr_t)fd;
	ev->filter = EVFILT_READ;
	ev->flags = flags;
	ev->fflags = fflags;
	ev->data = data;
	ev->udata = kn->udata;
	ev->ext[0] = ext0;
	ev->ext[1] = 0;
	ev->ext[2] = 0;
	ev->ext[3] = 0;
	kn->revents = (uint16_t)events;
	kn->delivered_call = q->call_serial;
	kn->status &= ~KN_ACTIVE;
	return 1;
}

static int fd_result(struct kqe_queue *q, uint64_t tagval, uint32_t events, bool from_edge,
		     struct kevent *out, int room) __attribute__((noinline));

/* The results of the queue's epoll from buf[0] up to the first that is not
 * a descriptor's (at most count): *taken says how many.  Writes at most
 * room events; a knote that does not fit goes to the ready list, so
 * nothing is lost.  One call for the run, so that the common case below
 * costs no call and no register saving per event. */
int kqe_fd_results(struct kqe_queue *q, const struct epoll_event *buf, int count,
		   struct kevent *out, int room, int *taken)
{
	int n = 0, i = 0;
	for (; i < count && KQE_TAG_OF(buf[i].data.u64) == TAG_FD; i++) {
		uint64_t tagval = KQE_VAL_OF(buf[i].data.u64);
		uint32_t events = buf[i].events;
		int fd = (int)(tagval & 0xffffffff);
		uint32_t gen = (uint32_t)(tagval >> 32) & 0xffffff;
		const struct kqe_fdfast *s = fd < q->nfast ? &q->fast[fd] : NULL;
		struct knote *kn = s ? s->kn : NULL;
		/* The common case: a level READ knote, enabled, neither queued
		 * nor delivered in this call, with a readable (not failed)
		 * descriptor: fd_result would deliver it and change nothing else. */
		if (kn && s->gen == gen && n < room &&
		    (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) &&
		    !(events & (EPOLLERR | EPOLLOUT)) &&
		    (kn->status & (KN_ENABLED | KN_QUEUED)) == KN_ENABLED &&
		    kn->delivered_call != q->call_serial &&
		    !(kn->flags & (EV_ONESHOT | EV_CLEAR | EV_DISPATCH)))
			n += fast_result(q, fd, s, kn, events, out + n);
		else
			n += fd_result(q, tagval, events, false, out + n, room - n);
	}
	*taken = i;
	return n;
}

/* One epoll result for a descriptor, in general: any knotes, either epoll.
 * Writes at most room events; a knote that does not fit goes to the ready
 * list, so nothing is lost. */
static int fd_result(struct kqe_queue *q, uint64_t tagval, uint32_t events, bool from_edge,
		     struct kevent *out, int room)
{
	int fd = (int)(tagval & 0xffffffff);
	uint32_t gen = (uint32_t)(tagval >> 32) & 0xffffff;
	struct kqe_fd *fde = fd_lookup(q, fd);
	if (fde == NULL || fde->gen != gen)
		return 0; /* a result for a knote deleted meanwhile */
	int n = 0;
	bool wanted = false;
	if (fde->kind == FDK_SOCKET) {
		/* Neither connected nor listening: nothing fires (and the
		 * socket's kind stays open).  Anything else ends that state. */
		uint32_t asked = from_edge ? fde->edge_mask : fde->main_mask;
		bool unconn = sock_unconnected(fd, events, (asked & EPOLLRDHUP) != 0);
		sock_unconn_set(q, fde, unconn);
		if (unconn)
			return 0;
	}
	if (events & EPOLLERR) {
		if (fde->kind == FDK_PIPE && fde->rd)
			pipe_write_end(q, fde); /* a write end: its READ knote never fires */
		else if (sock_kind(fde->kind))
			sock_error_keep(fde);
	}
	struct knote *kns[2] = { fde->wr_end ? NULL : fde->rd, fde->wr };
	for (int i = 0; i < 2; i++) {
		struct knote *kn = kns[i];
		if (kn == NULL)
			continue;
		uint32_t dir = i == 0 ? RD_EVENTS : WR_EVENTS;
		bool in_edge = (fde->edge_mask & dir) != 0;
		if (in_edge != from_edge || !(kn->status & KN_ENABLED))
			continue;
		uint32_t fire = i == 0 ? (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)
				       : (EPOLLOUT | EPOLLHUP | EPOLLERR);
		if (!(events & fire))
			continue;
		wanted = true;
		kn->revents = (uint16_t)events;
		if (kn->delivered_call == q->call_serial || (kn->status & KN_QUEUED)) {
			/* Already delivered in this call, or waiting its turn.  An
			 * edge is reported once, so keep it for the next call rather
			 * than lose data that came after the delivery; when the data
			 * was already counted this costs one extra event, which an
			 * EV_CLEAR reader survives and a lost edge would not (a level
			 * knote is reported again by epoll itself). */
			if (knote_edge(kn))
				kqe_knote_activate(q, kn);
			continue;
		}
		if (n < room) {
			/* Active while delivered, as from the ready list: io_after
			 * keeps a userspace-level knote (NOTE_LOWAT, edge-registered)
			 * active, and kqe_knote_delivered requeues only an active
			 * one; without this a NOTE_LOWAT level knote fired once. */
			kn->status |= KN_ACTIVE;
			int r = io_event(q, kn, &out[n]);
			if (r <= 0) {
				kn->status &= ~KN_ACTIVE;
			} else if (!(kn->flags & (EV_ONESHOT | EV_CLEAR | EV_DISPATCH)) &&
				   !(kn->sfflags & NOTE_LOWAT)) {
				/* The common case, a plain level knote: all that
				 * kqe_knote_delivered would do (epoll reports it
				 * again by itself), without its indirect calls. */
				n++;
				kn->delivered_call = q->call_serial;
				kn->status &= ~KN_ACTIVE;
			} else {
				n++;
				kqe_knote_delivered(q, kn);
			}
		} else {
			kqe_knote_activate(q, kn);
		}
	}
	if (!wanted)
		fd_sync(q, fde, false); /* the lazy disarm of ONESHOT/DISPATCH/DISABLE */
	return n;
}

/* The nested edge epoll reported: take its results. */
int kqe_edge_results(struct kqe_queue *q, struct kevent *out, int room)
{
	struct epoll_event buf[64];
	int m = epoll_wait(q->edge_epfd, buf, 64, 0);
	int n = 0;
	for (int i = 0; i < m; i++)
		n += fd_result(q, KQE_VAL_OF(buf[i].data.u64), buf[i].events, true, out + n,
			       room - n);
	return n;
}

/* READ and WRITE share every operation: the filter is in the knote. */
const struct kqe_filter kqe_filter_io = {
	.is_fd = true,
	.attach = io_attach,
	.modify = io_modify,
	.detach = io_detach,
	.enable = io_enable,
	.disable = io_disable,
	.event = io_event_queued,
	.after = io_after,
	.stale = io_stale,
	.delete_fast = io_delete_fast,
};
