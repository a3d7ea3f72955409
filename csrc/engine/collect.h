/*
 * collect.h - the collection of events (collect.c), for kevent.c.
 */
#ifndef KQE_COLLECT_H
#define KQE_COLLECT_H

#include "family.h"

#pragma GCC visibility push(hidden)

/* Collect at most nevents events into out, waiting up to timeout (NULL:
 * for ever); the queue's lock is held and released around the wait.
 * Returns the count, or -1 with errno (EINTR, EBADF when closed). */
KQE_HIDDEN int kqe_collect(struct kqe_queue *q, struct kevent *out, int nevents,
			   const struct timespec *timeout);
KQE_HIDDEN void kqe_collect_free(struct kqe_queue *q);

#pragma GCC visibility pop

#endif
