/* vnode.c - EVFILT_VNODE.  Not implemented yet: answers ENOTSUP. */
#include "internal.h"

const struct kqe_filter kqe_filter_vnode = { .attach = NULL };
void kqe_inotify_read(struct kqe_queue *q) { (void)q; }
