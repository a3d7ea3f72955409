/*
 * kq_kevent.c - kq.kevent(q, changelist, eventlist, nevents, timeout):
 * change tables to struct kevent, the call, and entries back to tables,
 * with Lua values as udata.
 *
 * udata.  A kevent udata is a pointer, a Lua value is not, so the queue's
 * user value holds two tables:
 *   values   a luaL_ref table: token -> the Lua value of one change's udata
 *            (a private light userdata stands for nil, so that every
 *            change gets a token of its own);
 *   mirror   mirror[filter][ident] = token of that knote's current udata.
 * Every submitted change gets a fresh token, passed to the kernel as the
 * udata pointer, and an event's udata is values[token].  The mirror tells
 * which token to release when a knote goes (EV_DELETE, an EV_ONESHOT
 * delivery, a udata replaced by a modify, a failed change, the queue
 * closed), so a value stays alive exactly as long as its knote.
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
 * This costs one kevent(2) per change when nevents is 0; registering in
 * bulk is what a list of EV_RECEIPT changes with room is for.
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

#include "kq_binding.h"

/*
 * The sentinel's filter: below every system's filter range (FreeBSD, macOS
 * and OpenBSD reject filter + EVFILT_SYSCOUNT < 0 with EINVAL, and their
 * counts are far below 32000; NetBSD's unsigned filter turns it into a huge
 * number it rejects too; the engine follows FreeBSD).
 */
#define KQ_SENTINEL_FILTER (-32000)

/* The udata token that stands for a nil udata. */
static const char kq_nil_udata = 0;
#define KQ_NIL_UDATA ((void *)&kq_nil_udata)

/* Stack slots used throughout one call. */
struct kq_call {
	lua_State *L;
	kq_queue *q;
	unsigned long epoch;
	int changes;     /* argument 2, or 0 */
	int events;      /* argument 3, or 0 */
	int values;      /* the values table */
	int mirror;      /* the mirror table */
	int lazy;        /* registry[KQ_LAZY_MT] (lazy data only) */
	size_t outbase;  /* first output slot in q->buf */
	lua_Integer written; /* entries written to the eventlist so far */
};

/*
 * Lua code may run between two uses of q->buf (a getfd method, an __index
 * on a change table, a finaliser run by an allocation).  If it used this
 * queue (kevent, close) the buffer may have moved or been freed: stop.
 */
static void kq_guard(struct kq_call *c)
{
	if (c->q->epoch != c->epoch)
		luaL_error(c->L, "kqueue used or closed during a kevent call on it");
}

static void kq_reserve(struct kq_call *c, size_t n)
{
	kq_queue *q = c->q;
	struct kevent *nb;

	if (n <= q->cap)
		return;
	if (n > SIZE_MAX / sizeof *nb)
		luaL_error(c->L, "kevent: too many changes");
	nb = (struct kevent *)realloc(q->buf, n * sizeof *nb);
	if (nb == NULL)
		luaL_error(c->L, "kevent: not enough memory");
	q->buf = nb;
	q->cap = n;
}

/* ---- changelist ------------------------------------------------------ */

static int kq_fielderror(lua_State *L, lua_Integer i, const char *field,
			 const char *msg)
{
	return luaL_argerror(L, 2, lua_pushfstring(L,
		"changelist[%I].%s: %s", (LUAI_UACINT)i, field, msg));
}

/*
 * An integer field of change table `t` (entry i), or `def` when absent
 * and optional.  Range checks are done by the caller by assigning to the
 * struct field and comparing back, which checks against the field's real
 * C type on every system.
 */
static lua_Integer kq_intfield(lua_State *L, int t, lua_Integer i,
			       const char *field, int required,
			       lua_Integer def)
{
	lua_Integer v;
	int isint;
	int tt = lua_getfield(L, t, field);

	if (tt == LUA_TNIL) {
		lua_pop(L, 1);
		if (required)
			kq_fielderror(L, i, field, "missing");
		return def;
	}
	/* Strings are not converted: a string here is a mistake. */
	if (tt != LUA_TNUMBER)
		kq_fielderror(L, i, field, lua_pushfstring(L,
			"integer expected, got %s", luaL_typename(L, -1)));
	v = lua_tointegerx(L, -1, &isint);
	if (!isint)
		kq_fielderror(L, i, field,
			      "number has no integer representation");
	lua_pop(L, 1);
	return v;
}

/*
 * ident: a non-negative integer, a Lua file handle (io.open), or an object
 * with a getfd() (LuaSocket) or fileno() (kq queues, others) method.
 */
static lua_Integer kq_identfield(lua_State *L, int t, lua_Integer i)
{
	luaL_Stream *fh;
	lua_Integer v;
	int isint, tt, top = lua_gettop(L);

	tt = lua_getfield(L, t, "ident");
	if (tt == LUA_TNIL)
		kq_fielderror(L, i, "ident", "missing");
	if (tt == LUA_TNUMBER) {
		v = lua_tointegerx(L, -1, &isint);
		if (!isint)
			kq_fielderror(L, i, "ident",
				      "number has no integer representation");
		lua_settop(L, top);
		return v;
	}
	fh = (luaL_Stream *)luaL_testudata(L, -1, LUA_FILEHANDLE);
	if (fh != NULL) {
		if (fh->closef == NULL || fh->f == NULL)
			kq_fielderror(L, i, "ident", "closed file");
		v = fileno(fh->f);
		lua_settop(L, top);
		return v;
	}
	/* Only values that can have methods are asked: indexing a userdata
	 * without __index would raise a message naming no field. */
	if (tt == LUA_TTABLE || (tt == LUA_TUSERDATA &&
	    luaL_getmetafield(L, -1, "__index") != LUA_TNIL)) {
		int obj = top + 1;

		lua_settop(L, obj);
		static const char *const methods[] = {"getfd", "fileno", NULL};
		const char *const *m;

		for (m = methods; *m != NULL; m++) {
			if (lua_getfield(L, obj, *m) == LUA_TNIL) {
				lua_pop(L, 1);
				continue;
			}
			lua_pushvalue(L, obj);
			lua_call(L, 1, 1);
			v = lua_tointegerx(L, -1, &isint);
			if (!isint)
				kq_fielderror(L, i, "ident", lua_pushfstring(L,
					"%s() returned %s, integer expected",
					*m, luaL_typename(L, -1)));
			lua_settop(L, top);
			return v;
		}
	}
	return kq_fielderror(L, i, "ident", lua_pushfstring(L,
		"integer, file or object with getfd/fileno expected, got %s",
		luaL_typename(L, -1)));
}

/*
 * Read change table `t` (entry i) into *ev.  Unknown keys are ignored:
 * change tables are often event tables handed back, or objects carrying
 * other fields, and a typo check would have to walk every table with
 * lua_next on the hot path.  udata is read later (kq_tokens).
 */
static void kq_tochange(lua_State *L, int t, lua_Integer i, struct kevent *ev)
{
	lua_Integer ident, filter, flags, fflags, data;

	ident = kq_identfield(L, t, i);
	filter = kq_intfield(L, t, i, "filter", 1, 0);
	flags = kq_intfield(L, t, i, "flags", 0, 0);
	fflags = kq_intfield(L, t, i, "fflags", 0, 0);
	data = kq_intfield(L, t, i, "data", 0, 0);

	memset(ev, 0, sizeof *ev);
	ev->ident = (uintptr_t)ident;
	if (ident < 0 || (lua_Integer)ev->ident != ident)
		kq_fielderror(L, i, "ident", "out of range");
	ev->filter = (short)filter;
	if ((lua_Integer)ev->filter != filter)
		kq_fielderror(L, i, "filter", "out of range");
	ev->flags = (unsigned short)flags;
	if (flags < 0 || (lua_Integer)ev->flags != flags)
		kq_fielderror(L, i, "flags", "out of range");
	ev->fflags = (unsigned int)fflags;
	if (fflags < 0 || (lua_Integer)ev->fflags != fflags)
		kq_fielderror(L, i, "fflags", "out of range");
	ev->data = data;
	if ((lua_Integer)ev->data != data)
		kq_fielderror(L, i, "data", "out of range");
}

/*
 * Pass 1: validate and convert the whole changelist into q->buf before any
 * kevent(2) call, so a malformed changelist applies nothing.  No token is
 * made yet (an argument error would strand it); the Lua index of each
 * change rides in its udata until kq_tokens.  Returns the count kept.
 */
static size_t kq_convert(struct kq_call *c, size_t n)
{
	lua_State *L = c->L;
	size_t i, kept = 0;
	struct kevent ev;

	for (i = 1; i <= n; i++) {
		if (lua_rawgeti(L, c->changes, (lua_Integer)i) != LUA_TTABLE)
			luaL_argerror(L, 2, lua_pushfstring(L,
				"changelist[%I]: table expected, got %s",
				(LUAI_UACINT)i, luaL_typename(L, -1)));
		kq_tochange(L, lua_gettop(L), (lua_Integer)i, &ev);
		lua_pop(L, 1);
		/* FreeBSD skips a change with filter 0 (kqueue_register is
		 * never called for it); so do we, on every system. */
		if (ev.filter == 0)
			continue;
		ev.udata = (void *)(intptr_t)i;
		kq_guard(c);
		c->q->buf[kept++] = ev;
	}
	return kept;
}

/* Pass 2: a fresh token for every kept change (see the file comment). */
static void kq_tokens(struct kq_call *c, size_t n)
{
	lua_State *L = c->L;
	size_t j;

	for (j = 0; j < n; j++) {
		intptr_t idx, token;

		kq_guard(c);
		idx = (intptr_t)c->q->buf[j].udata;
		lua_rawgeti(L, c->changes, (lua_Integer)idx);
		if (lua_getfield(L, -1, "udata") == LUA_TNIL) {
			lua_pop(L, 1);
			lua_pushlightuserdata(L, KQ_NIL_UDATA);
		}
		token = luaL_ref(L, c->values);
		lua_pop(L, 1);
		kq_guard(c);
		c->q->buf[j].udata = (void *)token;
	}
}

/* ---- udata bookkeeping ----------------------------------------------- */

static lua_Integer kq_token(const struct kevent *ev)
{
	return (lua_Integer)(intptr_t)ev->udata;
}

static void kq_release(struct kq_call *c, lua_Integer token)
{
	if (token > 0)
		luaL_unref(c->L, c->values, (int)token);
}

/* Push values[token], nil for the nil stand-in or an unknown token. */
static void kq_pushudata(struct kq_call *c, lua_Integer token)
{
	lua_State *L = c->L;

	if (token <= 0) {
		lua_pushnil(L);
		return;
	}
	lua_rawgeti(L, c->values, token);
	if (lua_touserdata(L, -1) == KQ_NIL_UDATA) {
		lua_pop(L, 1);
		lua_pushnil(L);
	}
}

/* Push mirror[filter] (created when `create`), or nil. */
static int kq_mirrorsub(struct kq_call *c, const struct kevent *ev, int create)
{
	lua_State *L = c->L;

	if (lua_rawgeti(L, c->mirror, ev->filter) == LUA_TTABLE || !create)
		return lua_istable(L, -1);
	lua_pop(L, 1);
	lua_newtable(L);
	lua_pushvalue(L, -1);
	lua_rawseti(L, c->mirror, ev->filter);
	return 1;
}

/* The token mirror[filter][ident] holds, 0 for none. */
static lua_Integer kq_mirrorget(struct kq_call *c, const struct kevent *ev)
{
	lua_State *L = c->L;
	lua_Integer token = 0;

	if (kq_mirrorsub(c, ev, 0)) {
		lua_rawgeti(L, -1, (lua_Integer)ev->ident);
		token = lua_tointeger(L, -1);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return token;
}

static void kq_mirrorset(struct kq_call *c, const struct kevent *ev,
			 lua_Integer token)
{
	lua_State *L = c->L;

	if (!kq_mirrorsub(c, ev, token != 0)) {
		lua_pop(L, 1);
		return;
	}
	if (token != 0)
		lua_pushinteger(L, token);
	else
		lua_pushnil(L);
	lua_rawseti(L, -2, (lua_Integer)ev->ident);
	lua_pop(L, 1);
}

/* A change `ch` that the kernel applied. */
static void kq_applied(struct kq_call *c, const struct kevent *ch)
{
	lua_Integer old = kq_mirrorget(c, ch);
	lua_Integer token = kq_token(ch);
	unsigned short fl = ch->flags;
	/* EV_ADD|EV_DELETE deletes an existing knote and adds a missing one
	 * (FreeBSD kqueue_register). */
	int deleted = (fl & EV_DELETE) && (!(fl & EV_ADD) || old != 0);

	if (deleted) {
		kq_mirrorset(c, ch, 0);
		kq_release(c, old);
		kq_release(c, token);
	} else if ((fl & EV_KEEPUDATA) && !(fl & EV_ADD)) {
		kq_release(c, token); /* the knote keeps its udata */
	} else {
		/* A new knote, or a modify: udata replaced, even by nil. */
		kq_mirrorset(c, ch, token);
		kq_release(c, old);
	}
}

/* A change `ch` that failed with errno `en`. */
static void kq_failed(struct kq_call *c, const struct kevent *ch, int64_t en)
{
	/* ENOENT on a change that could not create the knote proves there is
	 * none: forget an anchor left by a knote that went silently (closing
	 * its descriptor on the BSDs). */
	if (en == ENOENT && !(ch->flags & EV_ADD)) {
		lua_Integer old = kq_mirrorget(c, ch);
		if (old != 0) {
			kq_mirrorset(c, ch, 0);
			kq_release(c, old);
		}
	}
	kq_release(c, kq_token(ch));
}

/* ---- output ---------------------------------------------------------- */

#ifdef KQ_HAVE_LAZY_DATA
/* __index of a lazy event table: compute `data` on first read, from the
 * descriptor at that moment, and cache it with rawset so that a second
 * read is stable.  If the engine cannot compute it (the descriptor was
 * closed meanwhile) data reads as 0: a field read is no place to raise. */
static int kq_lazyindex(lua_State *L)
{
	struct kevent ev;
	int64_t data = 0;

	if (lua_type(L, 2) != LUA_TSTRING || strcmp(lua_tostring(L, 2), "data"))
		return 0;
	memset(&ev, 0, sizeof ev);
	lua_pushliteral(L, "ident");
	lua_rawget(L, 1);
	ev.ident = (uintptr_t)lua_tointeger(L, -1);
	lua_pushliteral(L, "filter");
	lua_rawget(L, 1);
	ev.filter = (short)lua_tointeger(L, -1);
	ev.ext[0] = (uint64_t)lua_tointeger(L, lua_upvalueindex(1));
	if (kqe_event_data(&ev, &data) < 0)
		data = 0;
	lua_pushliteral(L, "data");
	lua_pushinteger(L, (lua_Integer)data);
	lua_rawset(L, 1);
	lua_pushinteger(L, (lua_Integer)data);
	return 1;
}

/* Push registry[KQ_LAZY_MT], made on first use, and note its slot. */
static void kq_pushlazyreg(struct kq_call *c)
{
	lua_State *L = c->L;

	if (lua_getfield(L, LUA_REGISTRYINDEX, KQ_LAZY_MT) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setfield(L, LUA_REGISTRYINDEX, KQ_LAZY_MT);
	}
	c->lazy = lua_gettop(L);
}

/* Push the metatable for lazy events of kind ext0: one per kind, kept in
 * registry[KQ_LAZY_MT], each __index holding its ext[0] as an upvalue. */
static void kq_pushlazymt(struct kq_call *c, uint64_t ext0)
{
	lua_State *L = c->L;

	if (lua_rawgeti(L, c->lazy, (lua_Integer)ext0) == LUA_TTABLE)
		return;
	lua_pop(L, 1);
	lua_createtable(L, 0, 2);
	lua_pushliteral(L, KQ_LAZY_MT);
	lua_setfield(L, -2, "__name");
	lua_pushinteger(L, (lua_Integer)ext0);
	lua_pushcclosure(L, kq_lazyindex, 1);
	lua_setfield(L, -2, "__index");
	lua_pushvalue(L, -1);
	lua_rawseti(L, c->lazy, (lua_Integer)ext0);
}
#endif

/* Whether the metatable on top of the stack is a lazy-event one of ours. */
static int kq_ourmt(lua_State *L)
{
	int ours;

	lua_pushliteral(L, "__name");
	lua_rawget(L, -2);
	ours = lua_type(L, -1) == LUA_TSTRING &&
	       strcmp(lua_tostring(L, -1), KQ_LAZY_MT) == 0;
	lua_pop(L, 1);
	return ours;
}

static void kq_setint(lua_State *L, int t, const char *k, lua_Integer v)
{
	lua_pushstring(L, k);
	lua_pushinteger(L, v);
	lua_rawset(L, t);
}

/*
 * eventlist[c->written + 1] = entry `ev`, udata value on top of the stack
 * (popped).  A table already there is reused, all six fields overwritten
 * with rawset; otherwise a new one is made.
 */
static void kq_putentry(struct kq_call *c, const struct kevent *ev)
{
	lua_State *L = c->L;
	lua_Integer idx = ++c->written;
	int t, hasmt, ours = 0, lazy = 0;

	if (lua_rawgeti(L, c->events, idx) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_createtable(L, 0, 6);
		lua_pushvalue(L, -1);
		lua_rawseti(L, c->events, idx);
	}
	t = lua_gettop(L);
	lua_pushliteral(L, "udata");
	lua_pushvalue(L, t - 1);
	lua_rawset(L, t);
	kq_setint(L, t, "ident", (lua_Integer)ev->ident);
	kq_setint(L, t, "filter", ev->filter);
	kq_setint(L, t, "flags", ev->flags);
	kq_setint(L, t, "fflags", (lua_Integer)ev->fflags);

	hasmt = lua_getmetatable(L, t);
	if (hasmt) {
		ours = kq_ourmt(L);
		lua_pop(L, 1);
	}
#ifdef KQ_HAVE_LAZY_DATA
	lazy = !(ev->flags & EV_ERROR) && kqe_event_is_lazy(ev);
	if (lazy && (!hasmt || ours)) {
		/* data left nil; the metatable computes it on first read. */
		lua_pushliteral(L, "data");
		lua_pushnil(L);
		lua_rawset(L, t);
		kq_pushlazymt(c, ev->ext[0]);
		lua_setmetatable(L, t);
		lua_pop(L, 2);
		return;
	}
#endif
	if (hasmt && ours) {
		lua_pushnil(L);
		lua_setmetatable(L, t);
	}
	{
		int64_t data = (int64_t)ev->data;
#ifdef KQ_HAVE_LAZY_DATA
		/* A table carrying the caller's own metatable gets data now. */
		if (lazy && kqe_event_data(ev, &data) < 0)
			data = 0;
#endif
		kq_setint(L, t, "data", (lua_Integer)data);
	}
	(void)lazy;
	lua_pop(L, 2);
}

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

/* Release the tokens of changes [from, n) that were never submitted. */
static void kq_drop(struct kq_call *c, size_t from, size_t n)
{
	for (; from < n; from++) {
		kq_guard(c);
		kq_release(c, kq_token(&c->q->buf[from]));
	}
}

/*
 * Apply changes [0, n) of q->buf as the file comment says.  Returns -1
 * when done (all applied, or stopped by a receipt without room), or an
 * errno for the triple.
 */
static int kq_apply(struct kq_call *c, size_t n, lua_Integer nevents)
{
	size_t i = 0;

	while (i < n) {
		lua_Integer room = nevents - c->written;

		if (room > 0) {
			size_t chunk = n - i, j;
			struct kevent save, *b;
			struct timespec zero = {0, 0};
			int r, k = 0, en;

			if ((lua_Integer)chunk > room)
				chunk = (size_t)room;
			if (chunk > KQ_BUFMAX)
				chunk = KQ_BUFMAX;
			kq_guard(c);
			b = c->q->buf;
			/* Slot i + chunk exists: the buffer has n + 1 change
			 * slots.  Borrow it for the sentinel. */
			save = b[i + chunk];
			EV_SET(&b[i + chunk], 0, KQ_SENTINEL_FILTER, EV_ADD, 0,
			       0, NULL);
			r = kevent(c->q->fd, b + i, (int)chunk + 1,
				   b + c->outbase, (int)chunk + 1, &zero);
			en = errno;
			b[i + chunk] = save;
			if (r < 0) {
				kq_drop(c, i, n);
				return en;
			}
			for (j = 0; j < chunk; j++) {
				struct kevent ch, e;
				int has = 0;

				kq_guard(c);
				ch = c->q->buf[i + j];
				e = ch;
				if (k < r) {
					e = c->q->buf[c->outbase + (size_t)k];
					has = (e.flags & EV_ERROR) &&
					      e.ident == ch.ident &&
					      e.filter == ch.filter &&
					      e.udata == ch.udata;
				}
				if (has) {
					k++;
					kq_pushudata(c, kq_token(&ch));
					kq_putentry(c, &e);
				}
				if (has && e.data != 0)
					kq_failed(c, &ch, e.data);
				else
					kq_applied(c, &ch);
			}
			i += chunk;
		} else {
			struct kevent ch;
			int r, en;

			kq_guard(c);
			ch = c->q->buf[i];
			r = kevent(c->q->fd, &ch, 1, NULL, 0, NULL);
			en = errno;
			i++;
			if (r < 0) {
				kq_failed(c, &ch, en);
				kq_drop(c, i, n);
				return en;
			}
			kq_applied(c, &ch);
			if (ch.flags & EV_RECEIPT) {
				/* Applied, no room for its receipt: stop
				 * (semantics 2.2; kq returns the count). */
				kq_drop(c, i, n);
				return -1;
			}
		}
	}
	return -1;
}

/* Collect events into the eventlist; returns the count or -1 (errno in
 * *en).  EINTR is retried with the time remaining: no change is ever
 * submitted twice, since collection passes none. */
static int kq_collect(struct kq_call *c, int cap, struct timespec *tsp,
		      int *en)
{
	struct timespec deadline, left;
	int r, k;

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
		kq_guard(c);
		r = kevent(c->q->fd, NULL, 0, c->q->buf + c->outbase, cap, tsp);
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
	for (k = 0; k < r; k++) {
		struct kevent ev;
		lua_Integer token;

		kq_guard(c);
		ev = c->q->buf[c->outbase + (size_t)k];
		token = kq_token(&ev);
		kq_pushudata(c, token);
		/* The knote went with this delivery: drop its anchor, but only
		 * the one the mirror holds, never a token twice. */
		if ((ev.flags & EV_ONESHOT) && token > 0 &&
		    kq_mirrorget(c, &ev) == token) {
			kq_mirrorset(c, &ev, 0);
			kq_release(c, token);
		}
		kq_putentry(c, &ev);
	}
	return r;
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
int kq_kevent(lua_State *L)
{
	struct kq_call c;
	kq_queue *q = kq_checkqueue(L, 1);
	lua_Integer nevents;
	size_t nraw, n;
	int cap, en;

	memset(&c, 0, sizeof c);
	c.L = L;
	c.q = q;
	c.epoch = ++q->epoch;
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		c.changes = 2;
	}
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		c.events = 3;
		nevents = luaL_checkinteger(L, 4);
	} else {
		nevents = luaL_optinteger(L, 4, 0);
	}
	luaL_argcheck(L, nevents >= 0, 4, "non-negative integer expected");
	luaL_argcheck(L, nevents == 0 || c.events != 0, 3,
		      "table expected when nevents > 0");
	cap = nevents > KQ_BUFMAX ? KQ_BUFMAX : (int)nevents;
	lua_settop(L, 5);

	lua_getiuservalue(L, 1, 1);
	lua_getfield(L, -1, "values");
	c.values = lua_gettop(L);
	lua_getfield(L, -2, "mirror");
	c.mirror = lua_gettop(L);
#ifdef KQ_HAVE_LAZY_DATA
	kq_pushlazyreg(&c);
#endif

	nraw = c.changes ? lua_rawlen(L, 2) : 0;
	if (nraw > (size_t)INT_MAX - KQ_BUFMAX - 2)
		luaL_argerror(L, 2, "too many changes");
	/* Changes, one spare slot for the sentinel, then the output. */
	c.outbase = nraw + 1;
	kq_reserve(&c, nraw + 1 + (size_t)cap + 1);
	n = c.changes ? kq_convert(&c, nraw) : 0;
	kq_tokens(&c, n);

	en = kq_apply(&c, n, nevents);
	if (en >= 0)
		return kq_pusherror(L, "kevent", en);
	/* Entries written: return them at once, collecting nothing and never
	 * waiting (semantics 2.1 step 4). */
	if (c.written > 0) {
		lua_pushinteger(L, c.written);
		return 1;
	}
	/* nevents 0: at once; the timeout is ignored, not even validated. */
	if (nevents == 0) {
		lua_pushinteger(L, 0);
		return 1;
	}
	{
		struct timespec ts, *tsp = kq_totimeout(L, 5, &ts);
		int r = kq_collect(&c, cap, tsp, &en);

		if (r < 0)
			return kq_pusherror(L, "kevent", en);
		lua_pushinteger(L, r);
		return 1;
	}
}
