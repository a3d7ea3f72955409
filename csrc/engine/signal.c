/* signal.c - EVFILT_SIGNAL.  Not implemented yet: answers ENOTSUP. */
#include "internal.h"

const struct kqe_filter kqe_filter_signal = { .attach = NULL };
void kqe_signals_scan(struct kqe_queue *q) { (void)q; }
bool kqe_signals_changed(struct kqe_queue *q) { (void)q; return false; }
void kqe_signal_atfork_child(void) {}
