/*
 * kq_kevent.c - kq.kevent(q, changelist, eventlist, nevents, timeout): the
 * call protocol.  The stages it drives are in kq_change.c (changes read),
 * kq_udata.c (udata), kq_entry.c and kq_view.c (entries written).
 *
 * Exact outcomes.  The bookkeeping needs to know what became of every
 * change, which plain kevent(2) does not say when it runs out of room for
 * error entries.  So changes go to the kernel in chunks that can never run
 * out of room: with room = nevents - entries written so far,
 *   room > 0:  the next min(room, remaining, KQ_BUFMAX) changes plus one
 *              sentinel change that always fails, into a private buffer of
 *              chunk + 1 entries.  Every failure and receipt gets an entry,
 *              and since the sentinel always writes one the kernel collects
 *              no event in this call (semantics 2.1 step 4).  Entries come
 *              in change order and are matched by (ident, filter, token);
 *              tokens are unique, so the match is exact.
 *   room == 0: the next change alone with nevents = 0.  -1 means it failed:
 *              return the triple, later changes not applied (semantics
 *              2.2).  A success with EV_RECEIPT has no room for its entry:
 *              stop there and return the count written (kq decision, 2.2).
 * On a native kqueue this costs one kevent(2) per change when nevents is
 * 0 (registering in bulk is what a list of EV_RECEIPT changes with room is
 * for); the Linux engine says where it stopped (kq_sys_kevent_counted), so
 * there the rest of the list goes in one call.
 *
 * Only the standard kevent(2) contract is used, so this is exact on every
 * kqueue, native or engine.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kq_kevent.h"

/*
 * The sentinel's filter: below every system's filter range (FreeBSD, macOS
 * and OpenBSD reject filter + EVFILT_SYSCOUNT < 0 with EINVAL, and their
 * counts are far below 32000; NetBSD's unsigned filter turns it into a huge
 * number it rejects too; the engine follows FreeBSD).
 */
#define KQ_SENTINEL_FILTER (-32000)

/* ---- timeout --------------------------------------------------------- */

/*
 * Argument 5 as a timespec: nil is NULL (forever); seconds with fractions,
 * rounded up to the nanosecond so 0.5 ms never becomes a 0 ms spin;
 * infinity or more than INT32_MAX seconds is forever (clamped: macOS
 * rejects huge values); negative or NaN is an argument error.
 */
static struct timespec *kq_totimeout(lua_State *L, int arg,
				     struct timespec *ts)
{
	lua_Number t, s;

	if (lua_isnoneornil(L, arg))
		return NULL;
	t = luaL_checknumber(L, arg);
	if (!(t >= 0))
		luaL_argerror(L, arg, "timeout: non-negative number expected");
	if (t > (lua_Number)INT32_MAX)
		return NULL;
	s = floor(t);
	ts->tv_sec = (time_t)s;
	ts->tv_nsec = (long)ceil((t - s) * 1e9);
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
	return ts;
}

static void kq_now(struct timespec *ts)
{
	(void)clock_gettime(CLOCK_MONOTONIC, ts);
}

/* deadline - now into *left, clamped at zero. */
static void kq_remaining(const struct timespec *deadline, struct timespec *left)
{
	struct timespec now;

	kq_now(&now);
	left->tv_sec = deadline->tv_sec - now.tv_sec;
	left->tv_nsec = deadline->tv_nsec - now.tv_nsec;
	if (left->tv_nsec < 0) {
		left->tv_sec--;
		left->tv_nsec += 1000000000L;
	}
	if (left->tv_sec < 0) {
		left->tv_sec = 0;
		left->tv_nsec = 0;
	}
}

/* ---- the call -------------------------------------------------------- */

/* kq_apply/kq_collect: the queue was closed, or this is a fork child,
 * before a kevent(2) call (doc/reference.md, "Re-entrancy"). */
#define KQ_CLOSED (-2)

/* Push an entry's udata value (token: its knote's); the stack slot that
 * holds it, or 0 for nil, which is not pushed: an entry with no udata,
 * the commonest, costs nothing here. */
static int kq_push_udata(struct kq_call *c, lua_Integer token)
{
	if (token <= 0)
		return 0;
	kq_udata_push(c, token);
	return lua_gettop(c->L);
}

/*
 * Write the first k entries at c->buf[c->outbase], each with the stack
 * slot of its udata value in its udata field (kq_push_udata: the token is
 * no longer needed), then drop those slots above `base`.  Writing may run Lua code
 * (allocations run finalisers), which may use this queue: it can no longer
 * touch these entries (this call's buffer) or their values.
 */
static void kq_output(struct kq_call *c, int base, size_t k)
{
	size_t m;

	for (m = 0; m < k; m++) {
		const struct kevent *e = &c->buf[c->outbase + m];
		int ud = (int)(intptr_t)e->udata;

		if (c->isviews)
			kq_views_put(&c->views, ++c->written, e, ud);
		else
			kq_entry_put(c, e, ud);
	}
	lua_settop(c->L, base);
}

/* Changes [i, i + chunk) with room for an entry each (see the file
 * comment).  -1 when done, an errno, or KQ_CLOSED. */
static int kq_apply_chunk(struct kq_call *c, size_t i, size_t chunk, size_t n)
{
	lua_State *L = c->L;
	struct kevent save, *b = c->buf;
	struct timespec zero = {0, 0};
	int r, en, base;
	size_t j, k = 0;

	if (!kq_queue_isopen(c->q)) {
		kq_udata_unsubmitted(c, i, n);
		return KQ_CLOSED;
	}
	/* Slot i + chunk exists: the buffer has n + 1 change slots.  Borrow
	 * it for the sentinel. */
	save = b[i + chunk];
	EV_SET(&b[i + chunk], 0, KQ_SENTINEL_FILTER, EV_ADD, 0, 0, NULL);
	r = kevent(c->q->fd, b + i, (int)chunk + 1, b + c->outbase,
		   (int)chunk + 1, &zero);
	en = errno;
	b[i + chunk] = save;
	if (r < 0) {
		kq_udata_unsubmitted(c, i, n);
		return en;
	}
	/* The bookkeeping runs no Lua code: every entry's udata value is
	 * pushed before its token may be released. */
	base = lua_gettop(L);
	for (j = 0; j < chunk; j++) {
		const struct kevent *ch = &b[i + j], *e = NULL;

		if (k < (size_t)r) {
			e = &b[c->outbase + k];
			if (!((e->flags & EV_ERROR) && e->ident == ch->ident &&
			      e->filter == ch->filter && e->udata == ch->udata))
				e = NULL;
		}
		if (e != NULL) {
			k++;
			b[c->outbase + k - 1].udata =
				KQ_UDATA(kq_push_udata(c, kq_udata_token(ch)));
		}
		if (e != NULL && e->data != 0)
			kq_udata_failed(c, ch, e->data);
		else
			kq_udata_applied(c, ch);
	}
	kq_output(c, base, k);
	return -1;
}

/*
 * Apply changes [0, n) of c->buf as the file comment says.  Returns -1
 * when done (all applied, or stopped by a receipt without room), an errno
 * for the triple, or KQ_CLOSED.  Before every kevent(2) call the queue
 * must still be open and of this process: Lua code run while entries
 * were written may have closed it, or forked.
 */
static int kq_apply(struct kq_call *c, size_t n, lua_Integer nevents)
{
	size_t i = 0;

	while (i < n) {
		lua_Integer room = nevents - c->written;

		if (room > 0) {
			size_t chunk = n - i;
			int r;

			if ((lua_Integer)chunk > room)
				chunk = (size_t)room;
			if (chunk > KQ_BUFMAX)
				chunk = KQ_BUFMAX;
			r = kq_apply_chunk(c, i, chunk, n);
			if (r != -1)
				return r;
			i += chunk;
		} else if (!kq_queue_isopen(c->q)) {
			kq_udata_unsubmitted(c, i, n);
			return KQ_CLOSED;
		} else if (KQ_SYS_COUNTED) {
			/* The engine tells where it stopped, so the rest of the
			 * list goes in one call with the same outcome. */
			int r, en, applied = 0;
			size_t j;

			r = kq_sys_kevent_counted(c->q->fd, c->buf + i,
						  (int)(n - i), &applied);
			en = errno;
			for (j = 0; j < (size_t)applied; j++)
				kq_udata_applied(c, &c->buf[i + j]);
			i += (size_t)applied;
			if (r < 0) {
				kq_udata_failed(c, &c->buf[i], en);
				kq_udata_unsubmitted(c, i + 1, n);
				return en;
			}
			/* Stopped early only by a receipt without room. */
			kq_udata_unsubmitted(c, i, n);
			return -1;
		} else {
			const struct kevent *ch = &c->buf[i];
			int r, en;

			r = kevent(c->q->fd, ch, 1, NULL, 0, NULL);
			en = errno;
			i++;
			if (r < 0) {
				kq_udata_failed(c, ch, en);
				kq_udata_unsubmitted(c, i, n);
				return en;
			}
			kq_udata_applied(c, ch);
			if (ch->flags & EV_RECEIPT) {
				/* Applied, no room for its receipt: stop
				 * (semantics 2.2; kq returns the count). */
				kq_udata_unsubmitted(c, i, n);
				return -1;
			}
		}
	}
	return -1;
}

/* Collect events into the eventlist; returns the count, -1 (errno in
 * *en) or KQ_CLOSED.  EINTR is retried with the time remaining: no change
 * is ever submitted twice, since collection passes none. */
static int kq_collect(struct kq_call *c, int cap, struct timespec *tsp,
		      int *en)
{
	struct timespec deadline, left;
	int r, k, base;

	if (tsp != NULL && (tsp->tv_sec != 0 || tsp->tv_nsec != 0)) {
		kq_now(&deadline);
		deadline.tv_sec += tsp->tv_sec;
		deadline.tv_nsec += tsp->tv_nsec;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}
	for (;;) {
		if (!kq_queue_isopen(c->q))
			return KQ_CLOSED;
		r = kevent(c->q->fd, NULL, 0, c->buf + c->outbase, cap, tsp);
		*en = errno;
		if (r >= 0 || *en != EINTR)
			break;
		if (tsp != NULL && (tsp->tv_sec != 0 || tsp->tv_nsec != 0)) {
			kq_remaining(&deadline, &left);
			tsp = &left;
		}
	}
	if (r < 0)
		return -1;
	/* Every value pushed and every ONESHOT anchor dropped before any Lua
	 * code can run (kq_output). */
	base = lua_gettop(c->L);
	for (k = 0; k < r; k++) {
		struct kevent *ev = &c->buf[c->outbase + (size_t)k];
		int slot = kq_push_udata(c, kq_udata_token(ev));

		if (ev->flags & EV_ONESHOT)
			kq_udata_delivered(c, ev); /* may release the token */
		ev->udata = KQ_UDATA(slot);
	}
	kq_output(c, base, (size_t)r);
	return r;
}

/* The call's result: its buffer goes back to the queue first. */
static int kq_done(struct kq_call *c, lua_Integer n, int en)
{
	kq_buffer_give(c->L, 1, c->q, c->bufslot, c->buf, c->bufcap);
	if (en >= 0)
		return kq_pusherror(c->L, "kevent", en);
	lua_pushinteger(c->L, n);
	return 1;
}

/* Closed mid-call: what was written is returned, else EBADF, as kevent(2)
 * answers for a descriptor closed by another thread. */
static int kq_closed(struct kq_call *c)
{
	if (c->written > 0)
		return kq_done(c, c->written, -1);
	return kq_done(c, 0, EBADF);
}

/*
 * kq.kevent(q, changelist, eventlist, nevents, timeout) -> n
 *   or nil, "kevent: <strerror>", errno.
 * eventlist nil and nevents nil or 0 register only; a table eventlist
 * needs nevents (an integer >= 0, its capacity).  Misuse raises.  The
 * timeout is looked at in FreeBSD's order (semantics 2.1): only when no
 * entry was written and nevents > 0, so a bad timeout raises after the
 * changes were applied, and is ignored when nevents is 0.
 */
static int kq_kevent(lua_State *L)
{
	struct kq_call c;
	kq_queue *q = (kq_queue *)lua_touserdata(L, 1);
	lua_Integer nevents;
	size_t nraw, n;
	int cap, en;

	/* luaL_checkudata without the registry lookup: compare with the
	 * kq.queue metatable kept as an upvalue; anything else takes the
	 * usual path (and its error message). */
	if (q != NULL && lua_getmetatable(L, 1)) {
		if (!lua_rawequal(L, -1, lua_upvalueindex(KQ_UV_QUEUEMT)))
			q = NULL;
		lua_pop(L, 1);
	} else {
		q = NULL;
	}
	if (q == NULL)
		q = (kq_queue *)luaL_checkudata(L, 1, KQ_QUEUE_MT);
	if (!kq_queue_isopen(q))
		q = kq_checkqueue(L, 1); /* raises */
	memset(&c, 0, sizeof c);
	c.L = L;
	c.q = q;
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		c.changes = 2;
	}
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		c.events = 3;
		nevents = kq_checkinteger(L, 4);
	} else {
		nevents = kq_optinteger(L, 4, 0);
	}
	luaL_argcheck(L, nevents >= 0, 4, "nevents: non-negative integer expected");
	luaL_argcheck(L, nevents == 0 || c.events != 0, 3,
		      "table expected when nevents > 0");
	cap = nevents > KQ_BUFMAX ? KQ_BUFMAX : (int)nevents;
	lua_settop(L, KQ_NARGS);
	/* The keys, the six slots below, the four of a kq.eventlist, the
	 * temporaries of one entry or change, and one udata value per entry
	 * of one kevent(2) call (kq_output). */
	luaL_checkstack(L, KQ_UV_LAZYNAME + 10 + 16 + cap, "kevent");
	{
		int k;

		for (k = 1; k <= KQ_UV_LAZYNAME; k++)
			lua_pushvalue(L, lua_upvalueindex(k));
	}

	kq_getiuservalue(L, 1, 1);
	c.values = lua_gettop(L);
	kq_getiuservalue(L, 1, 2);
	c.mirror = lua_gettop(L);
	lua_pushnil(L);
	c.msub = lua_gettop(L);
	lua_pushnil(L);
	c.lazymt = lua_gettop(L);
	lua_pushnil(L);
	c.pending = lua_gettop(L);
	if (c.events != 0)
		c.isviews = kq_views_begin(L, &c.views, c.events,
					   kq_key(KQ_UV_IDENT));

	nraw = c.changes ? lua_rawlen(L, 2) : 0;
	if (nraw > (size_t)INT_MAX - KQ_BUFMAX - 2)
		luaL_argerror(L, 2, "too many changes");
	/* Changes, one spare slot for the sentinel, then the output. */
	c.outbase = nraw + 1;
	c.buf = kq_buffer_take(L, 1, q, nraw + 1 + (size_t)cap + 1, &c.bufcap);
	c.bufslot = lua_gettop(L);
	n = c.changes ? kq_changes_read(&c, nraw) : 0;
	kq_udata_anchor(&c, n);

	en = kq_apply(&c, n, nevents);
	if (en == KQ_CLOSED)
		return kq_closed(&c);
	if (en >= 0)
		return kq_done(&c, 0, en);
	/* Entries written: return them at once, collecting nothing and never
	 * waiting (semantics 2.1 step 4). */
	if (c.written > 0)
		return kq_done(&c, c.written, -1);
	/* nevents 0: at once; the timeout is ignored, not even validated. */
	if (nevents == 0)
		return kq_done(&c, 0, -1);
	{
		struct timespec ts, *tsp = kq_totimeout(L, 5, &ts);
		int r = kq_collect(&c, cap, tsp, &en);

		if (r == KQ_CLOSED)
			return kq_closed(&c);
		if (r < 0)
			return kq_done(&c, 0, en);
		return kq_done(&c, r, -1);
	}
}

/*
 * lib.kevent = kq_kevent with its upvalues (kq_kevent.h).
 * Expects the library table on top; the kq.queue metatable must exist.
 * registry[KQ_LAZY_MT] is made here if missing and shared by every load
 * of the module, so event tables filled by an earlier load stay ours.
 */
void kq_kevent_open(lua_State *L)
{
	lua_pushliteral(L, "ident");
	lua_pushliteral(L, "filter");
	lua_pushliteral(L, "flags");
	lua_pushliteral(L, "fflags");
	lua_pushliteral(L, "data");
	lua_pushliteral(L, "udata");
	lua_pushliteral(L, "__name");
	lua_pushliteral(L, KQ_LAZY_MT);
	if (lua_getfield(L, LUA_REGISTRYINDEX, KQ_LAZY_MT) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setfield(L, LUA_REGISTRYINDEX, KQ_LAZY_MT);
	}
	luaL_getmetatable(L, KQ_QUEUE_MT);
	lua_pushcclosure(L, kq_kevent, KQ_NUPVALUES);
	lua_setfield(L, -2, "kevent");
}
