/*
 * kq_binding.h - what the binding's files share (the stages of one kevent
 * call share more: kq_kevent.h).  Internal: nothing here is exported
 * from the module except luaopen_kq_core.
 */
#ifndef KQ_BINDING_H
#define KQ_BINDING_H

#include <stddef.h>
#include <stdint.h>

#include "kq_compat.h"
#include "kq_sys.h"

/* Everything declared from here on stays inside the module even when the
 * build (LuaRocks' builtin) passes no -fvisibility=hidden; only
 * luaopen_kq_core asks for default visibility. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define KQ_VERSION "kq 0.1.0"

/* Registry names.  Namespaced so they cannot collide with other modules
 * (style.md section 4: lfs's generic "directory metatable" can). */
#define KQ_QUEUE_MT "kq.queue"
#define KQ_LAZY_MT "kq.lazyevent"

/*
 * At most this many entries move through the C buffer in one kevent(2)
 * call.  A caller passing nevents = 1e9 gets at most KQ_BUFMAX events per
 * call (the rest stay queued for the next call) instead of an allocation
 * sized by the argument.
 */
#define KQ_BUFMAX 4096

/*
 * The queue handle.  `fd` is -1 once closed; `gen` is the fork generation
 * the queue was made in (a queue from another generation is closed, see
 * kq_queue.c).  `buf` is the idle scratch array of `cap` struct kevent a
 * kevent call converts changes into and receives entries in, or NULL
 * while a call has taken it (kq_buffer_take): Lua code can run in the
 * middle of a call (a getfd method, an __index, a finaliser) and make a
 * nested call on the same queue, which then works on a buffer of its own.
 *
 * The queue's user values: 1 and 2 the udata tables `values` and `mirror`
 * (kq_udata.c), 3 the userdata that holds `buf`, so that the collector
 * frees it and an error thrown out of a call leaks nothing.
 */
typedef struct kq_queue {
	int fd;
	uint64_t gen;
	struct kevent *buf;
	size_t cap;
} kq_queue;

#define KQ_QUEUE_NUV 3

/* kq_queue.c */
void kq_fork_init(void);
int kq_queue_isopen(const kq_queue *q);
kq_queue *kq_checkqueue(lua_State *L, int arg);
struct kevent *kq_buffer_take(lua_State *L, int qarg, kq_queue *q, size_t need,
			      size_t *cap);
void kq_buffer_give(lua_State *L, int qarg, kq_queue *q, int slot,
		    struct kevent *buf, size_t cap);
int kq_pusherror(lua_State *L, const char *what, int en);
void kq_queue_open(lua_State *L);
int kq_kqueue(lua_State *L);
int kq_close(lua_State *L);
int kq_fileno(lua_State *L);
int kq_type(lua_State *L);

/* kq_kevent.c */
void kq_kevent_open(lua_State *L);

/* kq_view.c: an eventlist of read-only views (kq.eventlist).  One kevent
 * call's handle on such a list; `keys` is the stack slot of the interned
 * "ident", followed by "filter", "flags", "fflags", "data" and "udata". */
struct kq_viewlist;
struct kq_views {
	lua_State *L;
	struct kq_viewlist *vl;
	int list, keys, meta, header, views, values; /* stack slots */
};
int kq_eventlist(lua_State *L);
/* Whether the table at `list` is a kq.eventlist; if so pushes four
 * slots (its metatable, header, views, values) and fills *v. */
int kq_views_begin(lua_State *L, struct kq_views *v, int list, int keys);
/* eventlist[idx] = entry `ev`, udata value at stack slot `ud` (0: nil). */
void kq_views_put(struct kq_views *v, lua_Integer idx,
		  const struct kevent *ev, int ud);

/* kq_bits.c */
int kq_bor(lua_State *L);
int kq_band(lua_State *L);

/* kq_constants.c */
void kq_constants_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
