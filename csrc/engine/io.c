/*
 * io.c - EVFILT_READ and EVFILT_WRITE on descriptors (semantics §4.1,
 * §4.2): the filter, and the delivery of epoll results for descriptors.
 *
 * Sockets, pipes, FIFOs and terminals go through epoll, each descriptor
 * with one registration (fd.c); regular files and directories are served
 * from the ready list (file.c); a kqueue watched by a kqueue has a filter
 * of its own (kqread.c).  The fast path below delivers the commonest
 * knote, a level READ knote alone on its descriptor, touching the first
 * 16 bytes of its descriptor's slot and of the knote only.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd.h"
#include "watch.h"

/* Delivery reads the first 16 bytes of a knote only (see queue.h). */
typedef char kqe_knote_head_check[(offsetof(struct knote, udata) + sizeof(void *) <= 16 &&
				   EVFILT_SYSCOUNT <= 127 && KN_KQREAD <= 0x80) ? 1 : -1];

/* ---- attach and detach ------------------------------------------------------ */

static int pipe_lowat_park(struct kqe_queue *q, struct knote *kn);

/* A pipe's WRITE knote with a NOTE_LOWAT mark: parked on inotify. */
static bool pipe_lowat(const struct knote *kn)
{
	return kn->filter == EVFILT_WRITE && kn->u.io.fde->kind == FDK_PIPE &&
	       (kn->sfflags & NOTE_LOWAT);
}

static int io_attach(struct kqe_queue *q, struct knote *kn, const struct kevent *kev)
{
	(void)kev;
	int fd = (int)kn->ident;
	struct kqe_fd *fde = kqe_fd_lookup(q, fd);
	if (fde && q->change_st && kqe_fd_stale(fde, q->change_st)) {
		/* The other direction's knote still names the old file: it goes. */
		kqe_fd_drop_stale(q, fde);
		fde = NULL;
	}
	if (fde == NULL) {
		/* Without change_st, io_check registered fd already. */
		fde = q->change_st ? kqe_fd_create(q, fd, q->change_st) : NULL;
		if (fde == NULL)
			return ENOMEM;
	}
	if (kn->filter == EVFILT_WRITE)
		kqe_fd_classify_late(q, fde); /* the checks below need the kind */
	if (fde->kind == FDK_KQ) {
		/* kqread.c serves READ on a queue; WRITE has no meaning there. */
		if (!fde->rd && !fde->wr)
			kqe_fd_release(q, fde);
		return EINVAL;
	}
	if (kn->filter == EVFILT_WRITE && fde->kind == FDK_PIPE) {
		/* FreeBSD refuses WRITE on a pipe whose reader is gone. */
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR)) {
			if (!fde->rd && !fde->wr)
				kqe_fd_release(q, fde);
			return EPIPE;
		}
	}
	kn->u.io.fde = fde;
	if (kn->filter == EVFILT_READ)
		fde->rd = kn;
	else
		fde->wr = kn;
	if (fde->kind == FDK_FILE)
		return kqe_file_attach(q, kn);
	int err = pipe_lowat(kn) ? pipe_lowat_park(q, kn) : 0;
	if (err == 0)
		err = kqe_fd_sync(q, fde, false);
	if (err) {
		if (fde->wr == kn && fde->x)
			kqe_watch_leave(q, kn, &fde->x->watch);
		if (kn->filter == EVFILT_READ)
			fde->rd = NULL;
		else
			fde->wr = NULL;
		if (!fde->rd && !fde->wr)
			kqe_fd_release(q, fde);
		else
			kqe_fd_sync(q, fde, false);
		return err;
	}
	return 0;
}

static void io_detach(struct kqe_queue *q, struct knote *kn)
{
	struct kqe_fd *fde = kn->u.io.fde;
	if (fde == NULL)
		return;
	if (fde->kind == FDK_FILE)
		kqe_file_detach(q, kn);
	if (fde->kind == FDK_PIPE && fde->wr == kn && fde->x)
		kqe_watch_leave(q, kn, &fde->x->watch); /* pipe_lowat_park */
	if (fde->rd == kn)
		fde->rd = NULL;
	if (fde->wr == kn)
		fde->wr = NULL;
	if (!fde->rd && !fde->wr)
		kqe_fd_release(q, fde);
	else if (fde->kind != FDK_FILE)
		kqe_fd_sync(q, fde, false);
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

/* Before any change but a fast delete: epoll, not fstat, tells whether
 * the number still names the knotes' file, and registers it at once for
 * a new enabled READ knote (kqe_fd_check).  0, an errno, or -1 for the
 * general path (fstat and io_stale). */
static int io_check(struct kqe_queue *q, struct knote **knp, const struct kevent *kev)
{
	unsigned flags = kev->flags;
	uint32_t events = 0;
	if (kev->filter == EVFILT_READ && (flags & (EV_ADD | EV_DISABLE)) == EV_ADD)
		events = KQE_RD_EVENTS |
			 (((flags & EV_CLEAR) || (kev->fflags & NOTE_LOWAT)) ? EPOLLET : 0);
	bool dropped;
	int err = kqe_fd_check(q, (int)kev->ident, events, &dropped);
	if (dropped)
		*knp = NULL;
	return err;
}

static bool io_stale(struct kqe_queue *q, struct knote *kn, const struct stat *st)
{
	(void)q;
	return kqe_fd_stale(kn->u.io.fde, st);
}

/* ---- sockets and pipes ------------------------------------------------------ */

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

/* Sockets seen unconnected, once per collection: those with an enabled
 * WRITE knote are looked at (one poll each).  Edge-triggered, they would
 * hear of a TCP connection (its state change wakes every waiter) or of a
 * listener's first connection, but an AF_UNIX connect() wakes nothing on
 * the connecting socket, and WRITE must fire after it.  Once connected or
 * listening, the registration is level again and epoll reports it in this
 * very collection.  Only sockets registered before connect() or listen()
 * and collected meanwhile are ever on this list. */
static void unconn_poll(struct kqe_queue *q)
{
	struct kqe_fd *fde;
	for (int fd = q->unconn, next; fd >= 0; fd = next) {
		fde = kqe_fd_lookup(q, fd);
		next = fde->unext;
		if (!fde->wr || !(fde->wr->status & KN_ENABLED))
			continue;
		struct pollfd p = { .fd = fde->fd, .events = POLLIN | POLLOUT | POLLRDHUP };
		if (poll(&p, 1, 0) < 0)
			continue;
		if ((p.revents & POLLNVAL) || !sock_unconnected(fde->fd, p.revents, true))
			kqe_fd_unconn_set(q, fde, false);
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
	kqe_fd_sync(q, fde, false);
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
	if (p.revents & (POLLERR | POLLHUP))
		kqe_fd_classify_late(q, fde); /* a socket or a pipe's end? */
	if (rd && fde->kind == FDK_PIPE && (p.revents & POLLERR)) {
		pipe_write_end(q, fde);
		return;
	}
	if (fde->kind == FDK_SOCKET) {
		bool unconn = sock_unconnected(fde->fd, p.revents, true);
		kqe_fd_unconn_set(q, fde, unconn);
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
	/* Parameters are replaced, not ORed (semantics §3); a modify that
	 * fails leaves them as they were. */
	bool was_edge = kqe_knote_edge(kn);
	uint32_t old_fflags = kn->sfflags;
	int64_t old_data = kn->sdata;
	kn->sfflags = kev->fflags;
	kn->sdata = kev->data;
	struct kqe_fd *fde = kn->u.io.fde;
	if (fde->kind == FDK_FILE)
		return 0;
	int err = pipe_lowat(kn) ? pipe_lowat_park(q, kn) : 0;
	if (err == 0 && kqe_knote_edge(kn) != was_edge)
		err = kqe_fd_sync(q, fde, false);
	if (err) {
		kn->sfflags = old_fflags;
		kn->sdata = old_data;
		kqe_fd_sync(q, fde, false);
		return err;
	}
	if (fde->kind == FDK_PIPE && fde->wr == kn && !(kn->sfflags & NOTE_LOWAT) && fde->x)
		kqe_watch_leave(q, kn, &fde->x->watch); /* no mark: no more parking */
	/* FreeBSD evaluates the filter again after every modify of an enabled
	 * knote (kqueue_register, done_ev_add): a lowered NOTE_LOWAT mark
	 * already met, or a re-added EV_CLEAR knote with data waiting, fires
	 * now.  EV_ENABLE does it in io_enable; a knote being disabled needs
	 * none. */
	if ((kn->status & KN_ENABLED) && !(kev->flags & (EV_ENABLE | EV_DISABLE)))
		io_reevaluate(q, kn);
	return 0;
}

static int io_enable(struct kqe_queue *q, struct knote *kn)
{
	struct kqe_fd *fde = kn->u.io.fde;
	if (fde->kind == FDK_FILE) {
		kqe_file_enable(q, kn);
		return 0;
	}
	/* Back into epoll if a lazy disarm took it out, then evaluate now,
	 * which is how what happened while disabled gets delivered.  Not a
	 * forced EPOLL_CTL_MOD: that re-reports the whole registration, and
	 * an EV_CLEAR knote of the other direction would fire for nothing.
	 * epoll_ctl can still fail for kernel memory: the knote then stays
	 * disabled and its descriptor registered as before. */
	int err = kqe_fd_sync(q, fde, false);
	if (err) {
		kn->status &= ~KN_ENABLED;
		kqe_fd_sync(q, fde, false);
		return err;
	}
	io_reevaluate(q, kn);
	return 0;
}

static void io_disable(struct kqe_queue *q, struct knote *kn)
{
	(void)q;
	/* Lazy: epoll stays armed until it reports with nobody enabled. */
	kn->status &= ~KN_ACTIVE;
}

/* ---- NOTE_LOWAT on a pipe's WRITE end ------------------------------------------ */

static bool lowat_met(struct knote *kn)
{
	int64_t data;
	if (kqe_fd_data((int)kn->ident, kn->u.io.fde->kind, kn->filter, &data) < 0)
		return true; /* let the event op find out (a closed descriptor) */
	return data >= kn->sdata;
}

/* A read of the pipe (IN_ACCESS, from any process), a lost watch or lost
 * events: the free space may have grown; activated only if it now reaches
 * the mark. */
static void pipe_watch_event(struct kqe_queue *q, struct knote *kn, uint32_t m, bool child,
			     bool partner)
{
	(void)child, (void)partner;
	if ((m & (IN_ACCESS | IN_IGNORED | IN_Q_OVERFLOW)) && lowat_met(kn))
		kqe_knote_activate(q, kn);
}

static const struct kqe_watch_ops pipe_watch_ops = {
	.event = pipe_watch_event,
};

/* A pipe's WRITE knote with NOTE_LOWAT, parked on the pipe's inode when
 * the mark is set: since Linux 5.5 a read of a pipe wakes writers (and so
 * gives epoll an edge) only when the pipe was full, so once the free space
 * is below the mark, nothing would ever report that a read brought it back
 * (FreeBSD evaluates the knote at every read).  inotify's IN_ACCESS does,
 * from a read in any process.  Nothing spins meanwhile, and a level knote
 * above the mark costs nothing more: it is looked at each collection
 * anyway.  No watch to be had (no inotify left) fails the change that sets
 * the mark.  0 or an errno. */
static int pipe_lowat_park(struct kqe_queue *q, struct knote *kn)
{
	struct kqe_vwatch **slot = kqe_fd_watch(kn->u.io.fde);
	if (slot == NULL)
		return ENOMEM;
	if (*slot)
		return 0;
	struct stat sb;
	if (fstat((int)kn->ident, &sb) < 0)
		return errno;
	return kqe_watch_join(q, (int)kn->ident, &sb, kn, slot, IN_ACCESS, &pipe_watch_ops);
}

/* ---- events ------------------------------------------------------------------- */

/* Fill an event from the last epoll result or, for files, from the file. */
static int io_event(struct kqe_queue *q, struct knote *kn, struct kevent *ev)
{
	struct kqe_fd *fde = kn->u.io.fde;
	EV_SET(ev, kn->ident, kn->filter, kn->flags, 0, 0, kn->udata);
	if (fde->kind == FDK_FILE)
		return kqe_file_event(kn, ev);
	uint32_t events = kn->revents;
	bool eof = kn->filter == EVFILT_READ ? (events & (EPOLLRDHUP | EPOLLHUP)) != 0
					      : (events & (EPOLLHUP | EPOLLERR)) != 0;
	if (eof) {
		ev->flags |= EV_EOF;
		ev->fflags = (uint32_t)kn->u.io.on.ep.sockerr;
	}
	bool lowat = (kn->sfflags & NOTE_LOWAT) != 0;
	if (kqe_fd_settle(q, fde) == FDK_OTHER)
		return 1;
	if (q->lazy_data && !lowat) {
		/* Left to kqe_event_data(): no syscall per delivered event. */
		ev->ext[0] = KQE_LAZY_MAGIC | ((uint64_t)fde->kind << 8);
		return 1;
	}
	if (lowat && fde->kind == FDK_PIPE && kn->filter == EVFILT_WRITE &&
	    !(fde->x && fde->x->watch) && !fde->nowatch && pipe_lowat_park(q, kn) != 0)
		fde->nowatch = true; /* the kernel dropped the watch, and no other came */
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
	if (fde->kind != FDK_FILE && !kqe_fd_current(q, fde))
		return -1;
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

/* The delivery of a fast knote (see kqe_fd_fast_update), exactly what the
 * general path below does for it, but reading only the first 16 bytes of
 * its descriptor's slot and of the knote: no other field unless EOF. */
static int fast_result(struct kqe_queue *q, int fd, const struct kqe_fd *s,
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
static int fd_results(struct kqe_queue *q, const struct epoll_event *buf, int count,
		   struct kevent *out, int room, int *taken)
{
	int n = 0, i = 0;
	for (; i < count && KQE_TAG_OF(buf[i].data.u64) == TAG_FD; i++) {
		uint64_t tagval = KQE_VAL_OF(buf[i].data.u64);
		uint32_t events = buf[i].events;
		int fd = (int)(tagval & 0xffffffff);
		uint32_t gen = (uint32_t)(tagval >> 32) & 0xffffff;
		const struct kqe_fd *s = kqe_fd_slot(q, fd);
		struct knote *kn = s && s->fast ? s->rd : NULL;
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
	struct kqe_fd *fde = kqe_fd_lookup(q, fd);
	if (fde == NULL || fde->gen != gen || (fde->shared && kqe_fd_gone(q, fde))) {
		/* A registration the engine no longer owns: its file was closed
		 * here but lives on in a fork child or a dup (or another thread
		 * deleted it during our wait).  epoll will not let it go; a new
		 * epoll instance does (kqe_queue_rebuild). */
		q->rebuild = true;
		return 0;
	}
	if (!fde->rd && !fde->wr) {
		kqe_fd_release(q, fde); /* registered for a change that failed */
		return 0;
	}
	int n = 0;
	bool wanted = false;
	/* EPOLLHUP without EPOLLRDHUP (an unconnected socket, a pipe whose
	 * writer is gone) and EPOLLERR need to know what fd is. */
	if ((events & EPOLLERR) || (events & (EPOLLHUP | EPOLLRDHUP)) == EPOLLHUP)
		kqe_fd_classify_late(q, fde);
	if (fde->kind == FDK_SOCKET) {
		/* Neither connected nor listening: nothing fires (and the
		 * socket's kind stays open).  Anything else ends that state. */
		uint32_t asked = from_edge ? fde->edge_mask : fde->main_mask;
		bool unconn = sock_unconnected(fd, events, (asked & EPOLLRDHUP) != 0);
		kqe_fd_unconn_set(q, fde, unconn);
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
		uint32_t dir = i == 0 ? KQE_RD_EVENTS : KQE_WR_EVENTS;
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
			if (kqe_knote_edge(kn))
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
		kqe_fd_sync(q, fde, false); /* the lazy disarm of ONESHOT/DISPATCH/DISABLE */
	return n;
}

/* The nested edge epoll reported: take its results. */
static int edge_results(struct kqe_queue *q, struct kevent *out, int room)
{
	struct epoll_event buf[64];
	int m = epoll_wait(q->edge_epfd, buf, 64, 0);
	int n = 0;
	for (int i = 0; i < m; i++)
		n += fd_result(q, KQE_VAL_OF(buf[i].data.u64), buf[i].events, true, out + n,
			       room - n);
	return n;
}


static int io_ready(struct kqe_queue *q, const struct epoll_event *buf, int count,
		    struct kevent *out, int room, int *taken)
{
	if (KQE_TAG_OF(buf[0].data.u64) == TAG_EDGE) {
		*taken = 1;
		return edge_results(q, out, room);
	}
	return fd_results(q, buf, count, out, room, taken);
}

static void io_poll(struct kqe_queue *q)
{
	if (q->filelist)
		kqe_files_poll(q);
	if (q->unconn >= 0)
		unconn_poll(q);
}

/* READ and WRITE share every operation: the filter is in the knote. */
static const struct kqe_filter_ops io_ops = {
	.is_fd = true,
	.attach = io_attach,
	.modify = io_modify,
	.detach = io_detach,
	.enable = io_enable,
	.disable = io_disable,
	.event = io_event_queued,
	.after = io_after,
	.check = io_check,
	.stale = io_stale,
	.delete_fast = io_delete_fast,
};

const struct kqe_family kqe_family_io = {
	.name = "io",
	.ops = &io_ops,
	.filters = { EVFILT_READ, EVFILT_WRITE },
	.tags = { TAG_FD, TAG_EDGE },
	.ready = io_ready,
	.poll = io_poll,
	.free = kqe_fds_free,
	.atfork_queue = kqe_fds_atfork,
	.forked = kqe_fds_forked,
	.rearm = kqe_fds_rearm,
};
