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

/* The mirror's value for a knote whose udata is nil (kq_mirrorget). */
#define KQ_NILKNOTE ((lua_Integer)-1)

/* Stack slots used throughout one call. */
struct kq_call {
	lua_State *L;
	kq_queue *q;
	unsigned long epoch;
	int changes;     /* argument 2, or 0 */
	int events;      /* argument 3, or 0 */
	int values;      /* the values table */
	int mirror;      /* the mirror table */
	int msub;        /* mirror[msubfilter] or nil, when msubok */
	int msubok;
	short msubfilter;
	int lazymt;      /* the lazy metatable of kind lazykind, when lazyok */
	int lazyok;
	uint64_t lazykind;
	int ranlua;      /* pass 1 took the general path (Lua may have run) */
	size_t outbase;  /* first output slot in q->buf */
	lua_Integer written; /* entries written to the eventlist so far */
	int isviews;     /* the eventlist is a kq.eventlist (kq_view.c) */
	struct kq_views views;
};

/*
 * Lua code may run between two uses of q->buf (a getfd method, an __index
 * on a change table, a finaliser run by an allocation).  If it used this
 * queue (kevent, close) the buffer may have moved or been freed: stop.
 */
static inline void kq_guard(struct kq_call *c)
{
	if (c->q->epoch != c->epoch)
		luaL_error(c->L, "kqueue used or closed during a kevent call on it");
}

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
int kq_udata_push(struct kq_call *c, lua_Integer token);
void kq_udata_applied(struct kq_call *c, const struct kevent *ch);
void kq_udata_failed(struct kq_call *c, const struct kevent *ch, int64_t en);
void kq_udata_delivered(struct kq_call *c, const struct kevent *ev);

/* kq_entry.c */
void kq_entry_put(struct kq_call *c, const struct kevent *ev, int ud);

#endif
