/*
 * kevent.c - kqueue() and kevent() for Linux: the table of filter families,
 * the order in which kevent() applies changes (semantics §2.1, §3), and the
 * engine's public functions (kqe.h).  The top floor (queue.h): the only
 * file that names the families.
 *
 * The reference is FreeBSD's kern_event.c as described in
 * shared/docs/kqueue-semantics.md (cited below as "semantics §N").
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "collect.h"
#include "fd.h"

/* Every family: adding one means adding it here. */
static const struct kqe_family *const families[] = {
	&kqe_family_io,
	&kqe_family_kqread,
	&kqe_family_user,
	&kqe_family_timer,
	&kqe_family_signal,
	&kqe_family_proc,
	&kqe_family_vnode,
	&kqe_family_watch,
};

/* ---- queue life, with the families ------------------------------------- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* What the floors above the ground keep for q, freed when it goes. */
static void teardown(struct kqe_queue *q)
{
	/* Nobody else can reach q now: drop every knote, then the rest.  The
	 * lock is taken all the same, for the filters' assertions. */
	kqe_queue_lock(q);
	for (size_t i = 0; i < q->hcap; i++) {
		while (q->htab[i])
			kqe_knote_drop(q, q->htab[i]);
	}
	kqe_families_free(q);
	kqe_collect_free(q);
	kqe_queue_unlock(q);
}

/* A kqueue is not inherited across fork (semantics §5): the child closes
 * its copies of every queue's descriptors and forgets the queues. */
static void atfork_child(void)
{
	kqe_queues_atfork_child(kqe_families_atfork_queue);
	kqe_families_atfork();
}

/* The parent after a fork: every descriptor open now has a copy in the
 * child, and closing it here no longer makes epoll forget it. */
static void atfork_parent(void)
{
	kqe_queues_each(kqe_families_forked);
}

static void init(void)
{
	kqe_families_register(families, (int)(sizeof families / sizeof families[0]));
	pthread_atfork(NULL, atfork_parent, atfork_child);
}

int kqe_kqueue(void)
{
	pthread_once(&init_once, init);
	struct kqe_queue *q = kqe_queue_new(teardown);
	return q ? q->epfd : -1;
}

int kqe_close(int kq)
{
	return kqe_queue_close(kq);
}

/* ---- Linux extensions (kqe.h) ------------------------------------------ */

int kqe_expose(int kq)
{
	struct kqe_queue *q = kqe_queue_get(kq);
	if (q == NULL) {
		errno = EBADF;
		return -1;
	}
	kqe_expose_locked(q);
	kqe_queue_put(q);
	return 0;
}

int kqe_set_lazy_data(int kq, int on)
{
	struct kqe_queue *q = kqe_queue_get(kq);
	if (q == NULL) {
		errno = EBADF;
		return -1;
	}
	kqe_queue_lock(q);
	q->lazy_data = on != 0;
	kqe_queue_unlock(q);
	kqe_queue_put(q);
	return 0;
}

int kqe_event_is_lazy(const struct kevent *ev)
{
	return (ev->ext[0] & KQE_LAZY_MASK) == KQE_LAZY_MAGIC;
}

int kqe_event_data(const struct kevent *ev, int64_t *data)
{
	if (!kqe_event_is_lazy(ev) || ev->ident > INT_MAX) {
		*data = ev->data;
		return 0;
	}
	return kqe_fd_data((int)ev->ident, (enum kqe_fdkind)((ev->ext[0] >> 8) & 0xff),
			   ev->filter, data);
}

/* ---- applying one change (semantics §2.1, §3) ------------------------- */

/* Is fd, described by st, a queue?  A socket, pipe or terminal never is,
 * and needs no look at the registry. */
static bool is_queue(int fd, const struct stat *st)
{
	switch (st->st_mode & S_IFMT) {
	case S_IFSOCK:
	case S_IFIFO:
	case S_IFCHR:
		return false;
	default:
		return kqe_queue_serial(fd) != 0;
	}
}


/* 0, or an errno when the filter could not get what the knote needs now
 * (it then stays disabled). */
static int knote_enable(struct kqe_queue *q, struct knote *kn)
{
	const struct kqe_filter_ops *f = kqe_knote_ops(kn);
	kn->status |= KN_ENABLED;
	if (f->enable) {
		int err = f->enable(q, kn);
		if (err) {
			kn->status &= ~KN_ENABLED;
			return err;
		}
	}
	if (kn->status & KN_ACTIVE)
		kqe_ready_push(q, kn);
	return 0;
}

static void knote_disable(struct kqe_queue *q, struct knote *kn)
{
	const struct kqe_filter_ops *f = kqe_knote_ops(kn);
	kn->status &= ~KN_ENABLED;
	kqe_ready_remove(q, kn); /* a queued event is not returned */
	if (f->disable)
		f->disable(q, kn);
}

/* Returns 0 or an errno; *created tells whether a knote was made. */
static int apply_change(struct kqe_queue *q, const struct kevent *kev, bool *created)
{
	unsigned flags = kev->flags & ~EV_SYSFLAGS;
	KQE_ASSERT_LOCKED(q);
	*created = false;
	if (kev->filter >= 0 || kev->filter < -EVFILT_SYSCOUNT)
		return EINVAL;
	if ((flags & (EV_ENABLE | EV_DISABLE)) == (EV_ENABLE | EV_DISABLE))
		return EINVAL;
	if ((flags & (EV_ADD | EV_KEEPUDATA)) == (EV_ADD | EV_KEEPUDATA))
		return EINVAL;
	const struct kqe_family *fam = kqe_family_of(kev->filter);
	if (fam == NULL || fam->ops == NULL || fam->ops->attach == NULL)
		return ENOTSUP;

	struct knote *kn = kqe_knote_find(q, kev->filter, kev->ident);
	const struct kqe_filter_ops *f = kn ? kqe_knote_ops(kn) : fam->ops;
	struct stat st;
	q->change_st = NULL;
	if (kn && f->delete_fast && (flags & (EV_ADD | EV_DELETE)) == EV_DELETE) {
		/* Deleting a knote that epoll watches needs no fstat: epoll's
		 * own answer tells a closed descriptor or a reused number. */
		int err = f->delete_fast(q, kn);
		if (err >= 0)
			return err;
	}
	int checked = -1;
	if (f->is_fd && kev->ident > INT_MAX)
		return EBADF;
	if (f->is_fd && f->check)
		checked = f->check(q, &kn, kev);
	if (checked > 0)
		return checked;
	if (f->is_fd && checked < 0) {
		if (fstat((int)kev->ident, &st) < 0) {
			/* FreeBSD drops knotes at close(); Linux cannot see it, so
			 * a knote found on a closed descriptor goes now. */
			if (kn)
				kqe_knote_drop(q, kn);
			return EBADF;
		}
		if (kn && f->stale && f->stale(q, kn, &st)) {
			/* The number names another file now: that file starts clean. */
			kqe_knote_drop(q, kn);
			kn = NULL;
		}
		q->change_st = &st;
	}
	/* A change the filter's check settled names no queue (io.c). */
	bool kqread = false;
	if (kn == NULL && (flags & EV_ADD) && q->change_st &&
	    (kev->filter == EVFILT_READ || kev->filter == EVFILT_WRITE) &&
	    is_queue((int)kev->ident, &st)) {
		/* A kqueue has a READ filter of its own (kqread.c) and no WRITE.
		 * The other direction's knote on this number names an older file
		 * if it is io.c's, or a queue closed since: it goes, as FreeBSD
		 * dropped it at close. */
		short other = kev->filter == EVFILT_READ ? EVFILT_WRITE : EVFILT_READ;
		struct knote *old = kqe_knote_find(q, other, kev->ident);
		if (old && (!(old->status & KN_KQREAD) || kqe_family_kqread.ops->stale(q, old, &st)))
			kqe_knote_drop(q, old);
		if (kev->filter == EVFILT_WRITE)
			return EINVAL;
		f = kqe_family_kqread.ops;
		kqread = true;
	}

	if (kn == NULL) {
		if (!(flags & EV_ADD))
			return ENOENT;
		kn = calloc(1, sizeof *kn);
		if (kn == NULL)
			return ENOMEM;
		kn->ident = kev->ident;
		kn->filter = kev->filter;
		kn->flags = flags & KN_STORED_FLAGS;
		if (flags & EV_FORCEONESHOT)
			kn->flags |= EV_ONESHOT;
		kn->status = (flags & EV_DISABLE) ? 0 : KN_ENABLED;
		kn->status |= KN_CREATED | (kqread ? KN_KQREAD : 0);
		kn->udata = kev->udata;
		kn->sfflags = kev->fflags;
		kn->sdata = kev->data;
		kn->delivered_call = q->call_serial - 1;
		int err = kqe_knote_insert(q, kn);
		if (err == 0)
			err = f->attach(q, kn, kev);
		if (err) {
			kqe_knote_free(q, kn);
			return err;
		}
		kn->status &= ~KN_CREATED;
		*created = true;
		return 0;
	}

	if (flags & EV_DELETE) {
		kqe_knote_drop(q, kn);
		return 0;
	}
	/* A modify: every change but a delete replaces udata (EV_ENABLE and
	 * NOTE_TRIGGER too) unless EV_KEEPUDATA; stored flags stay.  udata is
	 * replaced only once the filter accepted the change: a failed change
	 * leaves the knote as it was (the binding releases the failed change's
	 * udata, so a knote keeping it would hand out a freed value). */
	if (f->modify) {
		int err = f->modify(q, kn, kev);
		if (err)
			return err;
	} else {
		kn->sfflags = kev->fflags;
		kn->sdata = kev->data;
	}
	if (flags & EV_DISABLE)
		knote_disable(q, kn);
	if (flags & EV_ENABLE) {
		/* Fails only for want of kernel memory (doc/limits.md): the knote
		 * stays disabled and keeps its udata. */
		int err = knote_enable(q, kn);
		if (err)
			return err;
	}
	if (!(flags & EV_KEEPUDATA))
		kn->udata = kev->udata;
	if (flags & EV_FORCEONESHOT) {
		/* FreeBSD: make it ONESHOT and queue it now; a ONESHOT knote is
		 * delivered from its stored state even if idle. */
		kn->flags |= EV_ONESHOT;
		kn->status |= KN_ACTIVE;
		if (kn->status & KN_ENABLED)
			kqe_ready_push(q, kn);
	}
	return 0;
}

static void error_entry(struct kevent *out, const struct kevent *kev, int err, bool created)
{
	*out = *kev;
	out->flags = EV_ERROR;
	out->data = err;
	/* FreeBSD returns the change's fflags, except 0 when the change made
	 * (or failed to make) a knote, and only the user bits of a USER modify. */
	if (created || (err && (kev->flags & EV_ADD)))
		out->fflags = 0;
	else if (kev->filter == EVFILT_USER)
		out->fflags = kev->fflags & NOTE_FFLAGSMASK;
}

/* kevent() that also says where change processing stopped: *napplied is
 * the number of changes fully processed (the failing one excluded, a
 * receipt that stopped for want of room included). */
static int kevent_counted(int kq, const struct kevent *changelist, int nchanges,
			  struct kevent *eventlist, int nevents,
			  const struct timespec *timeout, int *napplied)
{
	*napplied = 0;
	struct kqe_queue *q = kqe_queue_get(kq);
	if (q == NULL) {
		errno = EBADF;
		return -1;
	}
	if (nchanges < 0 || (nchanges > 0 && changelist == NULL)) {
		kqe_queue_put(q);
		errno = EINVAL;
		return -1;
	}
	kqe_queue_lock(q);
	int nerr = 0, result = 0, err = 0;
	for (int i = 0; i < nchanges; i++, *napplied = i) {
		/* Copy first: the caller may pass one array as both lists. */
		struct kevent kev = changelist[i];
		if (kev.filter == 0)
			continue; /* FreeBSD skips such a change */
		bool created;
		int e = apply_change(q, &kev, &created);
		bool receipt = (kev.flags & EV_RECEIPT) != 0;
		if (e == 0 && !receipt)
			continue;
		if (nerr < nevents && eventlist) {
			error_entry(&eventlist[nerr++], &kev, e, created);
			continue;
		}
		if (e) {
			/* No room: fail at once; later changes are not applied. */
			err = e;
			result = -1;
		} else {
			*napplied = i + 1;
		}
		/* A receipt without room stops processing too; kq returns the
		 * entries written so far (semantics §2.2, kq decision). */
		goto done;
	}
	if (nerr > 0) {
		result = nerr; /* error entries: returned at once, no events */
		goto done;
	}
	if (nevents == 0)
		goto done; /* the timeout is ignored, not even validated */
	if (nevents < 0 || eventlist == NULL ||
	    (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 ||
			 timeout->tv_nsec >= 1000000000))) {
		err = EINVAL;
		result = -1;
		goto done;
	}
	result = kqe_collect(q, eventlist, nevents, timeout);
	if (result < 0)
		err = errno;
done:
	if (result == 0 && nerr > 0)
		result = nerr;
	kqe_queue_unlock(q);
	kqe_queue_put(q);
	if (result < 0)
		errno = err;
	return result;
}

int kqe_kevent(int kq, const struct kevent *changelist, int nchanges,
	       struct kevent *eventlist, int nevents, const struct timespec *timeout)
{
	int napplied;
	return kevent_counted(kq, changelist, nchanges, eventlist, nevents, timeout,
			      &napplied);
}

int kqe_kevent_counted(int kq, const struct kevent *changelist, int nchanges, int *napplied)
{
	return kevent_counted(kq, changelist, nchanges, NULL, 0, NULL, napplied);
}
