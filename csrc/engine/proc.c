/* proc.c - EVFILT_PROC.  Not implemented yet: answers ENOTSUP. */
#include "internal.h"

const struct kqe_filter kqe_filter_proc = { .attach = NULL };
void kqe_proc_result(struct kqe_queue *q, pid_t pid) { (void)q; (void)pid; }
