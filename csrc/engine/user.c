/*
 * user.c - EVFILT_USER: events the program triggers itself (semantics §4.7).
 *
 * No kernel object: a trigger queues the knote in userspace, so a trigger
 * from the waiting thread costs no syscall.  A trigger from another thread
 * wakes a blocked waiter through the queue's wake eventfd (knote.c).
 */
#include <errno.h>

#include "family.h"

static int user_attach(struct kqe_queue *q, struct knote *kn, const struct kevent *kev)
{
	(void)q;
	/* At EV_ADD the low 24 bits are stored as they are, and a knote that
	 * is being created is not triggered even with NOTE_TRIGGER (FreeBSD). */
	kn->u.user.value = kev->fflags & NOTE_FFLAGSMASK;
	kn->sdata = kev->data;
	return 0;
}

static int user_modify(struct kqe_queue *q, struct knote *kn, const struct kevent *kev)
{
	uint32_t v = kev->fflags & NOTE_FFLAGSMASK;
	switch (kev->fflags & NOTE_FFCTRLMASK) {
	case NOTE_FFAND:
		kn->u.user.value &= v;
		break;
	case NOTE_FFOR:
		kn->u.user.value |= v;
		break;
	case NOTE_FFCOPY:
		kn->u.user.value = v;
		break;
	default: /* NOTE_FFNOP */
		break;
	}
	kn->sdata = kev->data;
	if (kev->fflags & NOTE_TRIGGER)
		kn->status |= KN_ACTIVE;
	if (kev->flags & EV_CLEAR) {
		/* A change carrying EV_CLEAR resets a level USER knote. */
		kn->status &= ~KN_ACTIVE;
		kqe_ready_remove(q, kn);
	}
	if ((kn->status & (KN_ACTIVE | KN_ENABLED)) == (KN_ACTIVE | KN_ENABLED))
		kqe_ready_push(q, kn);
	return 0;
}

static int user_event(struct kqe_queue *q, struct knote *kn, struct kevent *ev)
{
	(void)q;
	/* kq decision: the stored value with the top 8 bits zero. */
	EV_SET(ev, kn->ident, EVFILT_USER, kn->flags, kn->u.user.value, kn->sdata, kn->udata);
	return 1;
}

static const struct kqe_filter_ops user_ops = {
	.attach = user_attach,
	.modify = user_modify,
	.event = user_event,
};

const struct kqe_family kqe_family_user = {
	.name = "user",
	.ops = &user_ops,
	.filters = { EVFILT_USER },
};
