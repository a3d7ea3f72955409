/*
 * kq_kevent.h - what the stages of one kq.kevent call share (internal):
 *   kq_change.c  change tables read into struct kevent (pass 1)
 *   kq_udata.c   udata as tokens, and the mirror of each knote's token
 *   kq_entry.c   an entry written to a plain eventlist (kq_view.c: views)
 *   kq_kevent.c  the call: argument checks, kevent(2), collection
 */
#ifndef KQ_KEVENT_H
#define KQ_KEVENT_H

#include <stdint.h>

#include "kq_binding.h"

/*
 * Upvalues of kq_kevent, made once per load of the module: the interned
 * field names, the lazy-event metatable names, the table of lazy-event
 * metatables (registry[KQ_LAZY_MT], one metatable per kind) and the
 * kq.queue metatable.  Valid in every function called from kq_kevent.
 */
enum {
	KQ_UV_IDENT = 1,
	KQ_UV_FILTER,
	KQ_UV_FLAGS,
	KQ_UV_FFLAGS,
	KQ_UV_DATA,
	KQ_UV_UDATA,
	KQ_UV_NAME,     /* "__name" */
	KQ_UV_LAZYNAME, /* KQ_LAZY_MT */
	KQ_UV_LAZYREG,  /* registry[KQ_LAZY_MT] */
	KQ_UV_QUEUEMT,  /* registry[KQ_QUEUE_MT] */
	KQ_NUPVALUES = KQ_UV_QUEUEMT
};

/* kq_kevent copies the interned strings (upvalues 1 to KQ_UV_LAZYNAME)
 * to its stack slots 6 to 13 (after its 5 arguments): a stack slot is a
 * little cheaper to read than an upvalue, and every event reads six. */
#define KQ_NARGS 5
#define kq_key(k) (KQ_NARGS + (k))
#define kq_pushkey(L, k) lua_pushvalue((L), kq_key(k))

/* The mirror's value for a knote whose udata is nil (kq_knote_token). */
#define KQ_NILKNOTE ((lua_Integer)-1)

/*
 * One call: its scratch buffer and the stack slots it uses throughout.
 * Lua code runs at known points only (doc/reference.md, "Re-entrancy"):
 * while change tables are read, while the mirror's tables are made before
 * the first token, and while entries are written.  Everything between a
 * kevent(2) call and the bookkeeping of its results runs none, so the
 * mirror always matches what the kernel was last told.
 */
struct kq_call {
	lua_State *L;
	kq_queue *q;
	struct kevent *buf; /* this call's own (kq_buffer_take) */
	size_t bufcap;
	int bufslot;     /* the userdata holding buf */
	int changes;     /* argument 2, or 0 */
	int events;      /* argument 3, or 0 */
	int values;      /* the values table */
	int mirror;      /* the mirror table */
	int msub;        /* mirror[msubfilter] or nil, when msubok */
	int msubok;
	short msubfilter;
	int pending;     /* udata values read in pass 1, by change; nil if none */
	size_t anchored; /* changes whose token kq_udata_anchor made, */
	size_t nanchor;  /* of this many */
	int lazymt;      /* the lazy metatable of kind lazykind, when lazyok */
	int lazyok;
	uint64_t lazykind;
	size_t outbase;  /* first output slot in buf */
	lua_Integer written; /* entries written to the eventlist so far */
	int isviews;     /* the eventlist is a kq.eventlist (kq_view.c) */
	struct kq_views views;
};

/* kq_change.c */
size_t kq_changes_read(struct kq_call *c, size_t n);

/* kq_udata.c */
static inline lua_Integer kq_udata_token(const struct kevent *ev)
{
	return (lua_Integer)(intptr_t)ev->udata;
}
void kq_udata_anchor(struct kq_call *c, size_t n);
void kq_udata_release(struct kq_call *c, lua_Integer token);
void kq_udata_unsubmitted(struct kq_call *c, size_t from, size_t n);
void kq_udata_push(struct kq_call *c, lua_Integer token);
void kq_udata_applied(struct kq_call *c, const struct kevent *ch);
void kq_udata_failed(struct kq_call *c, const struct kevent *ch, int64_t en);
void kq_udata_delivered(struct kq_call *c, const struct kevent *ev);

/* kq_entry.c */
void kq_entry_put(struct kq_call *c, const struct kevent *ev, int ud);

#endif
