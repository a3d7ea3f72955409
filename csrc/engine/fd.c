/*
 * fd.c - one watched descriptor: its slot (struct kqe_fd), its epoll
 * registration, and whether the fast path delivers it.
 *
 * A descriptor's epoll registration is the union of its READ and WRITE
 * knotes (epoll allows one registration per descriptor and instance).
 * Level knotes use level-triggered epoll, EV_CLEAR knotes edge-triggered;
 * when one descriptor mixes the two, the EV_CLEAR direction moves to a
 * second, nested epoll owned by the queue, so both knotes keep their own
 * semantics without dup()ing the descriptor.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fd.h"

/* What a descriptor costs the queue, and where the fast path reads it
 * (fd.h). */
typedef char kqe_fd_size_check[(sizeof(struct kqe_fd) == 48 &&
				offsetof(struct kqe_fd, wr) == 16) ? 1 : -1];

static uint64_t fd_tag(const struct kqe_fd *fde)
{
	return KQE_TAG(TAG_FD, (uint64_t)fde->gen << 32 | (uint32_t)fde->fd);
}

/* ---- the fast path's flag ------------------------------------------------- */

/* Called whenever what the fast path depends on may have changed (the
 * knotes, their registration, the kind).  The fast path needs the READ
 * knote alone in the queue's epoll, level-triggered (so no EV_CLEAR, no
 * NOTE_LOWAT), on a descriptor whose data is one FIONREAD.  What can
 * change without passing here (enabled, queued, EV_ONESHOT from
 * EV_FORCEONESHOT, delivered this call) is checked on each result. */
void kqe_fd_fast_update(struct kqe_queue *q, struct kqe_fd *fde)
{
	(void)q;
	struct knote *rd = fde->rd;
	fde->fast = (fde->kind == FDK_SOCK || fde->kind == FDK_PIPE || fde->kind == FDK_CHR) &&
		    !fde->shared && rd && !fde->wr && fde->main_mask == KQE_RD_EVENTS &&
		    fde->edge_mask == 0 && !kqe_knote_edge(rd);
}

enum kqe_fdkind kqe_fd_settle(struct kqe_queue *q, struct kqe_fd *fde)
{
	/* Once per descriptor (one or two getsockopt calls at its first
	 * event, never per event). */
	if (fde->kind == FDK_SOCKET)
		fde->kind = kqe_fd_socket_kind(fde->fd);
	else if (fde->kind == FDK_POLLABLE)
		fde->kind = kqe_fd_pollable_kind(fde->fd);
	else
		return fde->kind;
	kqe_fd_fast_update(q, fde);
	return fde->kind;
}

enum kqe_fdkind kqe_fd_classify_late(struct kqe_queue *q, struct kqe_fd *fde)
{
	struct stat st;
	if (fde->kind != FDK_POLLABLE)
		return fde->kind;
	fde->kind = fstat(fde->fd, &st) == 0 ? kqe_fd_classify(fde->fd, &st) : FDK_OTHER;
	kqe_fd_fast_update(q, fde);
	return fde->kind;
}

/* ---- the per-descriptor table -------------------------------------------- */

/* fd's slot, its page made if need be (zeroed: not in use); NULL without
 * memory.  Pages stay until the queue goes, so a slot never moves. */
static struct kqe_fd *fd_slot_make(struct kqe_queue *q, int fd)
{
	if (fd >= q->nfds) {
		/* A quarter more than needed: geometric growth of the page
		 * table (pointers), pages made only where descriptors are. */
		int need = (fd >> KQE_FDPAGE_SHIFT) + 1;
		int n = need < INT_MAX / KQE_FDPAGE - need / 4 - 1 ? need + need / 4 + 1
								    : INT_MAX / KQE_FDPAGE;
		struct kqe_fd **t = realloc(q->fdpages, (size_t)n * sizeof *t);
		if (t == NULL)
			return NULL;
		int had = q->nfds >> KQE_FDPAGE_SHIFT;
		memset(t + had, 0, (size_t)(n - had) * sizeof *t);
		q->fdpages = t;
		q->nfds = n * KQE_FDPAGE;
	}
	struct kqe_fd **page = &q->fdpages[fd >> KQE_FDPAGE_SHIFT];
	if (*page == NULL) {
		*page = aligned_alloc(64, KQE_FDPAGE * sizeof **page);
		if (*page == NULL)
			return NULL;
		memset(*page, 0, KQE_FDPAGE * sizeof **page);
	}
	return &(*page)[fd & (KQE_FDPAGE - 1)];
}

/* fde's identity from st: false without memory. */
static bool fd_set_id(struct kqe_fd *fde, const struct stat *st)
{
	if (fde->x == NULL && (fde->x = calloc(1, sizeof *fde->x)) == NULL)
		return false;
	fde->x->dev = st->st_dev;
	fde->x->ino = st->st_ino;
	fde->has_id = true;
	return true;
}

struct kqe_vwatch **kqe_fd_watch(struct kqe_fd *fde)
{
	if (fde->x == NULL && (fde->x = calloc(1, sizeof *fde->x)) == NULL)
		return NULL;
	return &fde->x->watch;
}

/* A kqe_fd for fd with generation gen, its identity and kind from st, or
 * none yet (st NULL: registered first, FDK_POLLABLE). */
static struct kqe_fd *fd_new(struct kqe_queue *q, int fd, uint32_t gen, const struct stat *st)
{
	struct kqe_fd *fde = fd_slot_make(q, fd);
	if (fde == NULL)
		return NULL;
	*fde = (struct kqe_fd){ .used = true, .fd = fd, .gen = gen, .unext = -1,
				.kind = FDK_POLLABLE };
	if (st) {
		if (!fd_set_id(fde, st)) {
			fde->used = false;
			return NULL;
		}
		fde->kind = (uint8_t)kqe_fd_classify(fd, st);
	}
	return fde;
}

/* 24 bits in the epoll tag.  A result is matched against the current
 * kqe_fd of its number; one for an older kqe_fd on the same number can
 * only be in hand while another thread deleted and re-added that number
 * during our wait, 16 million times over for a false match. */
static uint32_t fd_next_gen(struct kqe_queue *q)
{
	return q->fdgen++ & 0xffffff;
}

struct kqe_fd *kqe_fd_create(struct kqe_queue *q, int fd, const struct stat *st)
{
	return fd_new(q, fd, fd_next_gen(q), st);
}

static void unconn_unlink(struct kqe_queue *q, struct kqe_fd *fde)
{
	int *pp = &q->unconn;
	while (*pp >= 0 && *pp != fde->fd)
		pp = &kqe_fd_lookup(q, *pp)->unext;
	if (*pp >= 0)
		*pp = fde->unext;
	fde->unext = -1;
	fde->unconn = false;
}

void kqe_fd_release(struct kqe_queue *q, struct kqe_fd *fde)
{
	/* Last knote gone: leave epoll.  Errors are expected when the file was
	 * closed (epoll already forgot it) or the number was reused. */
	if (fde->main_mask && q->epfd >= 0)
		epoll_ctl(q->epfd, EPOLL_CTL_DEL, fde->fd, NULL);
	if (fde->edge_mask && q->edge_epfd >= 0)
		epoll_ctl(q->edge_epfd, EPOLL_CTL_DEL, fde->fd, NULL);
	if (fde->unconn)
		unconn_unlink(q, fde);
	free(fde->x);
	*fde = (struct kqe_fd){ .unext = -1 };
}

void kqe_fds_free(struct kqe_queue *q)
{
	for (int i = 0; i < q->nfds; i += KQE_FDPAGE) {
		struct kqe_fd *page = q->fdpages[i >> KQE_FDPAGE_SHIFT];
		for (int j = 0; page && j < KQE_FDPAGE; j++)
			free(page[j].x);
		free(page);
	}
	free(q->fdpages);
	q->unconn = -1;
	q->fdpages = NULL;
	q->nfds = 0;
	if (q->edge_epfd >= 0)
		close(q->edge_epfd);
	q->edge_epfd = -1;
}

void kqe_fds_atfork(struct kqe_queue *q)
{
	if (q->edge_epfd >= 0)
		close(q->edge_epfd);
	q->edge_epfd = -1;
}

bool kqe_fd_stale(const struct kqe_fd *fde, const struct stat *st)
{
	/* Anonymous-inode descriptors (eventfd, timerfd) share one inode: for
	 * them a reused number goes unnoticed here (documented); epoll's
	 * answer (kqe_fd_check) tells them apart. */
	return !fde->has_id || fde->x->dev != st->st_dev || fde->x->ino != st->st_ino;
}

/* fde, registered and with no identity, is about to leave epoll with
 * knotes left, or the process forked: from now on only its identity can
 * tell a reused number (fd.h).  Learnt while epoll can still tell whether
 * the number names fde's file (it may not: a stale knote being dropped).
 * false without memory (nothing changed). */
static bool fd_learn_id(struct kqe_queue *q, struct kqe_fd *fde)
{
	struct stat st = { 0 }; /* no file has inode 0: if the number is */
	if (kqe_fd_current(q, fde)) /* not fde's now, its next change finds */
		(void)fstat(fde->fd, &st); /* fde stale */
	return fd_set_id(fde, &st);
}

/* ---- does the number still name the file? ---------------------------------- */

/*
 * epoll knows a registration by its (file, number) pair, so EPOLL_CTL_ADD
 * of a number fails with EEXIST exactly when the file the number names
 * now is registered already: while a kqe_fd is registered, one epoll_ctl
 * tells whether its number still names its file, in place of an fstat,
 * and when it does not the new file is registered by the same call
 * (doc/linux-engine.md, "Applying changes").
 */

/* EPOLL_CTL_ADD of fd under the tag of a new kqe_fd: 0 or an errno. */
static int fd_add(struct kqe_queue *q, int fd, uint32_t events, uint32_t gen)
{
	struct epoll_event ev = {
		.events = events,
		.data.u64 = KQE_TAG(TAG_FD, (uint64_t)gen << 32 | (uint32_t)fd),
	};
	return epoll_ctl(q->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? errno : 0;
}

int kqe_fd_check(struct kqe_queue *q, int fd, uint32_t events, bool *dropped)
{
	struct kqe_fd *fde = kqe_fd_lookup(q, fd);
	*dropped = false;
	if (fde && fde->main_mask == 0)
		return -1; /* not registered: its identity tells (fd.h) */
	if (fde == NULL && (events == 0 || kqe_queue_serial(fd) != 0))
		return -1; /* nothing to check, or a queue (kqread.c's) */
	/* Under the next kqe_fd's tag, taken only if the new file stays. */
	int err = fd_add(q, fd, events ? events : KQE_RD_EVENTS, q->fdgen & 0xffffff);
	if (err == EEXIST && fde)
		return 0; /* still fde's file */
	if (err == ENOMEM || err == ENOSPC)
		return ENOMEM;
	if (err == 0 && events && (fde == NULL || kqe_queue_serial(fd) == 0)) {
		/* Registered anew for the change's READ knote: fd's file is
		 * not fde's, which FreeBSD dropped at close with its knotes. */
		if (fde) {
			kqe_fd_drop_stale(q, fde);
			*dropped = true;
		}
		fde = fd_new(q, fd, fd_next_gen(q), NULL);
		if (fde) {
			fde->main_mask = events;
			return 0;
		}
		(void)epoll_ctl(q->epfd, EPOLL_CTL_DEL, fd, NULL);
		return ENOMEM;
	}
	if (err == 0)
		(void)epoll_ctl(q->epfd, EPOLL_CTL_DEL, fd, NULL);
	/* Closed, or another file than fde's (registered, EPERM: a regular
	 * file, EINVAL or ELOOP: an epoll instance), or a stray registration
	 * of fd's file (EEXIST): the general path, which drops what it must
	 * as before any of this (fstat: closed; kqe_fd_stale: another file). */
	return err == EBADF && fde == NULL ? EBADF : -1;
}

bool kqe_fd_current(struct kqe_queue *q, struct kqe_fd *fde)
{
	if (fde->has_id) {
		struct stat st;
		return fstat(fde->fd, &st) == 0 && !kqe_fd_stale(fde, &st);
	}
	if (fde->main_mask == 0)
		return false; /* cannot be (fd.h); stale is the safe answer */
	int err = fd_add(q, fde->fd, KQE_RD_EVENTS, q->fdgen & 0xffffff);
	if (err == 0)
		(void)epoll_ctl(q->epfd, EPOLL_CTL_DEL, fde->fd, NULL);
	return err == EEXIST;
}

/* ---- the registration ------------------------------------------------------ */

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

static int epoll_apply(int epfd, struct kqe_fd *fde, uint32_t *cur, uint32_t want, bool rearm)
{
	if (*cur == want && !(rearm && want))
		return 0;
	int op = *cur == 0 ? EPOLL_CTL_ADD : want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
	struct epoll_event ev = {
		.events = want,
		.data.u64 = fd_tag(fde),
	};
	if (epoll_ctl(epfd, op, fde->fd, &ev) < 0) {
		int err = errno;
		if (op == EPOLL_CTL_DEL) {
			*cur = 0;
			return 0;
		}
		if (err == ELOOP || err == EPERM)
			err = EINVAL;
		if (err == ENOSPC)
			err = ENOMEM; /* the epoll watch limit: a resource limit, as FreeBSD says */
		return err;
	}
	*cur = want;
	return 0;
}

int kqe_fd_sync(struct kqe_queue *q, struct kqe_fd *fde, bool rearm)
{
	if (fde->stale)
		return 0; /* its knotes are being dropped */
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
	bool wr_nested = wr_on && (kqe_knote_edge(wr) || (rd_on && kqe_knote_edge(rd)));
	if (rd_on)
		main = KQE_RD_EVENTS | (kqe_knote_edge(rd) ? EPOLLET : 0);
	if (wr_on && !wr_nested)
		main |= KQE_WR_EVENTS;
	if (wr_nested)
		edge = KQE_WR_EVENTS | (kqe_knote_edge(wr) ? EPOLLET : 0);
	if (fde->unconn) {
		/* Edge-triggered everywhere while the socket shows EPOLLHUP for
		 * want of a connection; placement stays, so nothing moves. */
		main |= main ? EPOLLET : 0;
		edge |= edge ? EPOLLET : 0;
	}
	/* The nested epoll is made as soon as the descriptor's knotes could
	 * need it, enabled or not, so that an EV_ENABLE never has to make a
	 * descriptor: a failure is reported by the change that adds the
	 * knote, when nothing has been applied. */
	bool may_nest = wr && (kqe_knote_edge(wr) || (rd && kqe_knote_edge(rd)));
	if (main == 0 && fde->main_mask != 0 && !fde->has_id && (rd || wr) &&
	    !fd_learn_id(q, fde))
		return ENOMEM; /* registered as before: epoll can still tell */
	int err = may_nest ? edge_epoll(q) : 0;
	if (err == 0)
		err = epoll_apply(q->epfd, fde, &fde->main_mask, main, rearm);
	if (err == 0 && (edge || fde->edge_mask))
		err = epoll_apply(q->edge_epfd, fde, &fde->edge_mask, edge, rearm);
	kqe_fd_fast_update(q, fde);
	return err;
}

void kqe_fd_unconn_set(struct kqe_queue *q, struct kqe_fd *fde, bool on)
{
	/* Level again when taken off: EPOLL_CTL_MOD evaluates the descriptor
	 * again, so what is ready then is reported. */
	if (fde->unconn == on)
		return;
	if (on) {
		fde->unconn = true;
		fde->unext = q->unconn;
		q->unconn = fde->fd;
	} else {
		unconn_unlink(q, fde);
	}
	kqe_fd_sync(q, fde, false);
}

/* ---- a new epoll instance (families.c, kqe_queue_rebuild) ---------------------- */

void kqe_fd_drop_stale(struct kqe_queue *q, struct kqe_fd *fde)
{
	int fd = fde->fd;
	/* Its registrations name a file the number no longer reaches: no
	 * epoll_ctl on the number may touch them, or the new file's. */
	fde->stale = true;
	fde->main_mask = fde->edge_mask = 0;
	while ((fde = kqe_fd_lookup(q, fd)) != NULL) {
		struct knote *kn = fde->rd ? fde->rd : fde->wr;
		if (kn == NULL) {
			kqe_fd_release(q, fde); /* registered for a change that failed */
			break;
		}
		kqe_knote_drop(q, kn); /* the last one frees fde */
	}
}

bool kqe_fd_gone(struct kqe_queue *q, struct kqe_fd *fde)
{
	if (kqe_fd_current(q, fde))
		return false;
	kqe_fd_drop_stale(q, fde);
	return true;
}

int kqe_fds_rearm(struct kqe_queue *q, int epfd, bool add)
{
	if (!add) {
		for (int fd = 0; fd < q->nfds; fd++) {
			struct kqe_fd *fde = kqe_fd_lookup(q, fd);
			if (fde && fde->main_mask)
				(void)kqe_epoll_rearm(epfd, false, fd, 0, 0);
		}
		return 0;
	}
	/* The nested edge epoll may hold strays too: a new one as well. */
	int edge = -1;
	if (q->edge_epfd >= 0 && (edge = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return errno;
	int err = 0;
	for (int fd = 0; err == 0 && fd < q->nfds; fd++) {
		struct kqe_fd *fde = kqe_fd_lookup(q, fd);
		if (fde == NULL || (!fde->main_mask && !fde->edge_mask) || kqe_fd_gone(q, fde))
			continue;
		if (fde->main_mask)
			err = kqe_epoll_add_to(epfd, fd, fde->main_mask, fd_tag(fde));
		if (err == 0 && fde->edge_mask)
			err = kqe_epoll_add_to(edge, fd, fde->edge_mask, fd_tag(fde));
	}
	if (err == 0 && edge >= 0)
		err = kqe_epoll_add_to(epfd, edge, EPOLLIN, KQE_TAG(TAG_EDGE, 0));
	if (err) {
		if (edge >= 0)
			close(edge);
		return err;
	}
	if (edge >= 0) {
		close(q->edge_epfd);
		q->edge_epfd = edge;
	}
	return 0;
}

void kqe_fds_forked(struct kqe_queue *q)
{
	for (int fd = 0; fd < q->nfds; fd++) {
		struct kqe_fd *fde = kqe_fd_lookup(q, fd);
		if (fde && !fde->shared) {
			/* Closing the number no longer makes epoll forget it, so
			 * epoll can no longer tell: the identity must. */
			if (!fde->has_id)
				(void)fd_learn_id(q, fde); /* without memory, epoll
							    * still tells, mostly */
			fde->shared = true;
			kqe_fd_fast_update(q, fde);
		}
	}
}
