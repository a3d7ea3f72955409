/*
 * kq_kevent.c - kq.kevent(q, changelist, eventlist, nevents, timeout):
 * change tables to struct kevent, the call, and entries back to tables,
 * with Lua values as udata.
 *
 * udata.  A kevent udata is a pointer, a Lua value is not, so the queue's
 * user values 1 and 2 hold two tables:
 *   values   a luaL_ref table: token -> the Lua value of one change's udata;
 *   mirror   mirror[filter][ident] = token of that knote's current udata,
 *            or `true` for a knote whose udata is nil.
 * Every submitted change gets a fresh token, passed to the kernel as the
 * udata pointer, and an event's udata is values[token].  A change with a
 * nil udata needs no anchor: its token is -(its position in the call), so
 * tokens stay unique within a call (the error entries below are matched by
 * them) without a luaL_ref, and any token <= 0 reads as nil.  The mirror
 * tells which token to release when a knote goes (EV_DELETE, an EV_ONESHOT
 * delivery, a udata replaced by a modify, a failed change, the queue
 * closed), so a value stays alive exactly as long as its knote; it also
 * records every knote with a nil udata (`true`), because EV_ADD|EV_DELETE
 * needs to know whether the knote existed.
 *
 * Speed (bench/RESULTS.md, "Binding optimisation"): the field names are
 * interned once, as upvalues of kevent (kq_kevent_open), copied to stack
 * slots per call and pushed with lua_pushvalue (lua_pushstring of a C
 * string costs a string-cache lookup and a strcmp every time); lazy
 * metatables are recognised by identity; a change table without a
 * metatable is read with lua_rawget (kq_fastchange), the general path
 * only runs for the rest.
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

#include "kq_binding.h"

/*
 * The sentinel's filter: below every system's filter range (FreeBSD, macOS
 * and OpenBSD reject filter + EVFILT_SYSCOUNT < 0 with EINVAL, and their
 * counts are far below 32000; NetBSD's unsigned filter turns it into a huge
 * number it rejects too; the engine follows FreeBSD).
 */
#define KQ_SENTINEL_FILTER (-32000)

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
		"changelist[%d].%s: %s", (int)i, field, msg));
}

/*
 * An integer field of change table `t` (entry i), or `def` when absent
 * and optional.  Range checks are done by the caller by assigning to the
 * struct field and comparing back, which checks against the field's real
 * C type on every system.
 */
static lua_Integer kq_intfield(lua_State *L, int t, lua_Integer i,
			       const char *field, int key, int required,
			       lua_Integer def)
{
	lua_Integer v;
	int r, tt;

	kq_pushkey(L, key);
	tt = lua_gettable(L, t); /* lua_getfield without interning */

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
	r = kq_tointeger(L, -1, &v);
	if (r != KQ_INT_OK)
		kq_fielderror(L, i, field, kq_intmsg(r));
	lua_pop(L, 1);
	return v;
}

/*
 * ident: a non-negative integer, a Lua file handle (io.open), or an object
 * with a getfd() (LuaSocket) or fileno() (kq queues, others) method.
 */
static lua_Integer kq_identfield(lua_State *L, int t, lua_Integer i)
{
	FILE *fh;
	lua_Integer v = 0;
	int r, tt, top = lua_gettop(L);

	kq_pushkey(L, KQ_UV_IDENT);
	tt = lua_gettable(L, t);
	if (tt == LUA_TNIL)
		kq_fielderror(L, i, "ident", "missing");
	if (tt == LUA_TNUMBER) {
		r = kq_tointeger(L, -1, &v);
		if (r != KQ_INT_OK)
			kq_fielderror(L, i, "ident", kq_intmsg(r));
		lua_settop(L, top);
		return v;
	}
	if (kq_tofile(L, -1, &fh)) {
		if (fh == NULL)
			kq_fielderror(L, i, "ident", "closed file");
		v = fileno(fh);
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
			/* A numeric string is taken, as lua_tointegerx does. */
			if (!lua_isnumber(L, -1) ||
			    kq_tointeger(L, -1, &v) != KQ_INT_OK)
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
static void kq_setchange(lua_State *L, lua_Integer i, lua_Integer ident,
			 lua_Integer filter, lua_Integer flags,
			 lua_Integer fflags, lua_Integer data,
			 struct kevent *ev)
{
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

static void kq_tochange(lua_State *L, int t, lua_Integer i, struct kevent *ev)
{
	lua_Integer ident, filter, flags, fflags, data;

	ident = kq_identfield(L, t, i);
	filter = kq_intfield(L, t, i, "filter", KQ_UV_FILTER, 1, 0);
	flags = kq_intfield(L, t, i, "flags", KQ_UV_FLAGS, 0, 0);
	fflags = kq_intfield(L, t, i, "fflags", KQ_UV_FFLAGS, 0, 0);
	data = kq_intfield(L, t, i, "data", KQ_UV_DATA, 0, 0);
	kq_setchange(L, i, ident, filter, flags, fflags, data, ev);
}

/*
 * The common case: a change table without a metatable (so every read is
 * raw and runs no Lua code) whose fields are all integers, read with
 * lua_rawget, udata included.  Anything else (a metatable, ident given as
 * a file or object, a field of another type, a float, a required field
 * missing) returns 0 having changed nothing, and kq_tochange reads the
 * table again and raises the same errors as always.  *udnil tells whether
 * the udata field is nil.
 */
static int kq_fastchange(lua_State *L, int t, lua_Integer i,
			 struct kevent *ev, int *udnil)
{
	lua_Integer v[KQ_UV_DATA + 1];
	int f;

	if (lua_getmetatable(L, t)) {
		lua_pop(L, 1);
		return 0;
	}
	for (f = KQ_UV_IDENT; f <= KQ_UV_DATA; f++) {
		int tt;

		kq_pushkey(L, f);
		tt = lua_rawget(L, t);
		if (tt == LUA_TNIL && f > KQ_UV_FILTER) {
			v[f] = 0;
		} else if (tt != LUA_TNUMBER) {
			lua_pop(L, 1);
			return 0;
		} else {
			if (kq_tointeger(L, -1, &v[f]) != KQ_INT_OK) {
				lua_pop(L, 1);
				return 0;
			}
		}
		lua_pop(L, 1);
	}
	kq_pushkey(L, KQ_UV_UDATA);
	*udnil = lua_rawget(L, t) == LUA_TNIL;
	lua_pop(L, 1);
	kq_setchange(L, i, v[KQ_UV_IDENT], v[KQ_UV_FILTER], v[KQ_UV_FLAGS],
		     v[KQ_UV_FFLAGS], v[KQ_UV_DATA], ev);
	return 1;
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
				"changelist[%d]: table expected, got %s",
				(int)i, luaL_typename(L, -1)));
		int udnil = 0;

		if (!kq_fastchange(L, lua_gettop(L), (lua_Integer)i, &ev,
				   &udnil)) {
			c->ranlua = 1;
			kq_tochange(L, lua_gettop(L), (lua_Integer)i, &ev);
		}
		lua_pop(L, 1);
		/* Every change goes to the kernel, filter 0 included: it is
		 * NetBSD's EVFILT_READ (kq_applied has FreeBSD's skip). */
		/* -i: known to have a nil udata (see kq_tokens). */
		ev.udata = KQ_UDATA(udnil ? -(intptr_t)i : (intptr_t)i);
		kq_guard(c);
		c->q->buf[kept++] = ev;
	}
	return kept;
}

/* Pass 2: a fresh token for every kept change (see the file comment):
 * a luaL_ref for a udata, -(j + 1) for a nil one. */
static void kq_tokens(struct kq_call *c, size_t n)
{
	lua_State *L = c->L;
	size_t j;

	for (j = 0; j < n; j++) {
		intptr_t idx, token;

		kq_guard(c);
		idx = (intptr_t)c->q->buf[j].udata;
		/* A nil udata seen by kq_fastchange stays nil unless Lua code
		 * ran since (it runs only on the general path). */
		if (idx < 0 && !c->ranlua) {
			c->q->buf[j].udata = KQ_UDATA(-(intptr_t)(j + 1));
			continue;
		}
		if (idx < 0)
			idx = -idx;
		lua_rawgeti(L, c->changes, (lua_Integer)idx);
		kq_pushkey(L, KQ_UV_UDATA);
		if (lua_gettable(L, -2) == LUA_TNIL) {
			token = -(intptr_t)(j + 1);
			lua_pop(L, 2);
		} else {
			token = luaL_ref(L, c->values);
			lua_pop(L, 1);
		}
		kq_guard(c);
		c->q->buf[j].udata = KQ_UDATA(token);
	}
}

/* ---- udata bookkeeping ----------------------------------------------- */

static lua_Integer kq_token(const struct kevent *ev)
{
	return (lua_Integer)(intptr_t)ev->udata;
}

/* Release an anchor; tokens <= 0 (nil udata, KQ_NILKNOTE) have none. */
static void kq_release(struct kq_call *c, lua_Integer token)
{
	if (token > 0)
		luaL_unref(c->L, c->values, (int)token);
}

/* Push values[token] and return its slot, for kq_putentry; 0 and nothing
 * pushed for a nil udata (token <= 0). */
static int kq_pushudata(struct kq_call *c, lua_Integer token)
{
	if (token <= 0)
		return 0;
	lua_rawgeti(c->L, c->values, token);
	return lua_gettop(c->L);
}

/* Make slot c->msub hold mirror[filter] (created when `create`) or nil;
 * returns whether it is a table.  The last filter's table is kept for the
 * call: mirror[filter] is only ever set when missing. */
static int kq_mirrorsub(struct kq_call *c, short filter, int create)
{
	lua_State *L = c->L;

	if (!c->msubok || c->msubfilter != filter) {
		lua_rawgeti(L, c->mirror, filter);
		lua_replace(L, c->msub);
		c->msubok = 1;
		c->msubfilter = filter;
	}
	if (lua_type(L, c->msub) == LUA_TTABLE)
		return 1;
	if (!create)
		return 0;
	lua_newtable(L);
	lua_pushvalue(L, -1);
	lua_rawseti(L, c->mirror, filter);
	lua_replace(L, c->msub);
	return 1;
}

/* What mirror[filter][ident] holds: a token, KQ_NILKNOTE for a knote with
 * a nil udata, 0 for none. */
static lua_Integer kq_mirrorget(struct kq_call *c, const struct kevent *ev)
{
	lua_State *L = c->L;
	lua_Integer token = 0;
	int tt;

	if (!kq_mirrorsub(c, ev->filter, 0))
		return 0;
	tt = lua_rawgeti(L, c->msub, (lua_Integer)ev->ident);
	if (tt == LUA_TNUMBER)
		token = lua_tointeger(L, -1);
	else if (tt != LUA_TNIL)
		token = KQ_NILKNOTE;
	lua_pop(L, 1);
	return token;
}

/* Set mirror[filter][ident]: a token > 0, KQ_NILKNOTE, or 0 (none). */
static void kq_mirrorset(struct kq_call *c, const struct kevent *ev,
			 lua_Integer token)
{
	lua_State *L = c->L;

	if (!kq_mirrorsub(c, ev->filter, token != 0))
		return;
	if (token > 0)
		lua_pushinteger(L, token);
	else if (token == KQ_NILKNOTE)
		lua_pushboolean(L, 1);
	else
		lua_pushnil(L);
	lua_rawseti(L, c->msub, (lua_Integer)ev->ident);
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

#ifndef KQ_FILTER_ZERO_EXISTS
	/* No filter is 0 here: FreeBSD and the engine skip the change
	 * without a word (kq_sys.h), others fail it; no knote to anchor. */
	if (ch->filter == 0) {
		kq_release(c, token);
		return;
	}
#endif
	if (deleted) {
		if (old != 0)
			kq_mirrorset(c, ch, 0);
		kq_release(c, old);
		kq_release(c, token);
#ifdef EV_KEEPUDATA /* FreeBSD and the engine only */
	} else if ((fl & EV_KEEPUDATA) && !(fl & EV_ADD)) {
		kq_release(c, token); /* the knote keeps its udata */
#endif
	} else {
		/* A new knote, or a modify: udata replaced, even by nil. */
		if (token > 0)
			kq_mirrorset(c, ch, token);
		else if (old != KQ_NILKNOTE)
			kq_mirrorset(c, ch, KQ_NILKNOTE);
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
 * closed meanwhile) data reads as 0: a field read is no place to raise.
 * Upvalues: the kind (ext[0], as its bytes: see kq_pushlazymt), then the
 * interned "data", "ident" and "filter". */
static int kq_lazyindex(lua_State *L)
{
	struct kevent ev;
	int64_t data = 0;

	/* Interned strings: equal keys are the same object. */
	if (!lua_rawequal(L, 2, lua_upvalueindex(2)))
		return 0;
	luaL_checktype(L, 1, LUA_TTABLE);
	memset(&ev, 0, sizeof ev);
	lua_pushvalue(L, lua_upvalueindex(3));
	lua_rawget(L, 1);
	ev.ident = (uintptr_t)lua_tointeger(L, -1);
	lua_pushvalue(L, lua_upvalueindex(4));
	lua_rawget(L, 1);
	ev.filter = (short)lua_tointeger(L, -1);
	{
		size_t len;
		const char *kind = lua_tolstring(L, lua_upvalueindex(1), &len);

		if (kind != NULL && len == sizeof ev.ext[0])
			memcpy(&ev.ext[0], kind, sizeof ev.ext[0]);
	}
	if (kqe_event_data(&ev, &data) < 0)
		data = 0;
	lua_pushvalue(L, 2);
	lua_pushinteger(L, (lua_Integer)data);
	lua_rawset(L, 1);
	lua_pushinteger(L, (lua_Integer)data);
	return 1;
}

/* Push the metatable for lazy events of kind ext0: one per kind, kept in
 * registry[KQ_LAZY_MT] (an upvalue), each __index holding its ext[0] as an
 * upvalue.  The kind is keyed by its 8 bytes as a string: it is above 2^53,
 * which a number cannot hold exactly on Lua 5.1, 5.2 and LuaJIT.  The last
 * kind's metatable is kept in a slot for the call. */
static void kq_pushlazymt(struct kq_call *c, uint64_t ext0)
{
	lua_State *L = c->L;

	if (c->lazyok && c->lazykind == ext0) {
		lua_pushvalue(L, c->lazymt);
		return;
	}
	lua_pushlstring(L, (const char *)&ext0, sizeof ext0);
	if (lua_rawget(L, lua_upvalueindex(KQ_UV_LAZYREG)) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_createtable(L, 0, 2);
		kq_pushkey(L, KQ_UV_NAME);
		kq_pushkey(L, KQ_UV_LAZYNAME);
		lua_rawset(L, -3);
		lua_pushlstring(L, (const char *)&ext0, sizeof ext0);
		kq_pushkey(L, KQ_UV_DATA);
		kq_pushkey(L, KQ_UV_IDENT);
		kq_pushkey(L, KQ_UV_FILTER);
		lua_pushcclosure(L, kq_lazyindex, 4);
		lua_setfield(L, -2, "__index");
		lua_pushlstring(L, (const char *)&ext0, sizeof ext0);
		lua_pushvalue(L, -2);
		lua_rawset(L, lua_upvalueindex(KQ_UV_LAZYREG));
	}
	lua_pushvalue(L, -1);
	lua_replace(L, c->lazymt);
	c->lazyok = 1;
	c->lazykind = ext0;
}
#endif

/* Whether the metatable at `mt` is a lazy-event one of ours: its __name is
 * KQ_LAZY_MT (both interned, so rawequal compares them). */
static int kq_ourmt(lua_State *L, int mt)
{
	int ours;

	kq_pushkey(L, KQ_UV_NAME);
	lua_rawget(L, mt);
	ours = lua_rawequal(L, -1, kq_key(KQ_UV_LAZYNAME));
	lua_pop(L, 1);
	return ours;
}

static void kq_setint(lua_State *L, int t, int key, lua_Integer v)
{
	kq_pushkey(L, key);
	lua_pushinteger(L, v);
	lua_rawset(L, t);
}

/*
 * eventlist[c->written + 1] = entry `ev`, with the udata value at stack
 * slot `ud` (0: nil).  A table already there is reused, all six fields
 * overwritten with rawset; otherwise a new one is made.
 */
static void kq_putentry(struct kq_call *c, const struct kevent *ev, int ud)
{
	lua_State *L = c->L;
	lua_Integer idx;
	int base, t, mt = 0, lazy = 0;

	if (c->isviews) {
		kq_views_put(&c->views, ++c->written, ev, ud);
		return;
	}
	idx = ++c->written;
	base = lua_gettop(L);
	t = base + 1;

	if (lua_rawgeti(L, c->events, idx) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_createtable(L, 0, 6);
		lua_pushvalue(L, -1);
		lua_rawseti(L, c->events, idx);
	}
	kq_pushkey(L, KQ_UV_UDATA);
	if (ud != 0)
		lua_pushvalue(L, ud);
	else
		lua_pushnil(L);
	lua_rawset(L, t);
	kq_setint(L, t, KQ_UV_IDENT, (lua_Integer)ev->ident);
	kq_setint(L, t, KQ_UV_FILTER, ev->filter);
	kq_setint(L, t, KQ_UV_FLAGS, ev->flags);
	kq_setint(L, t, KQ_UV_FFLAGS, (lua_Integer)ev->fflags);

	if (lua_getmetatable(L, t))
		mt = t + 1;
#ifdef KQ_HAVE_LAZY_DATA
	lazy = kq_entry_is_lazy(ev);
	if (lazy) {
		int same;

		kq_pushlazymt(c, ev->ext[0]);
		/* Already the right one (a reused table): nothing to set. */
		same = mt != 0 && lua_rawequal(L, mt, -1);
		if (mt == 0 || same || kq_ourmt(L, mt)) {
			/* data left nil; the metatable computes it on first
			 * read. */
			kq_pushkey(L, KQ_UV_DATA);
			lua_pushnil(L);
			lua_rawset(L, t);
			if (!same)
				lua_setmetatable(L, t);
			lua_settop(L, base);
			return;
		}
		lua_pop(L, 1);
	}
#endif
	if (mt != 0 && kq_ourmt(L, mt)) {
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
		kq_setint(L, t, KQ_UV_DATA, (lua_Integer)data);
	}
	(void)lazy;
	lua_settop(L, base);
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
					int ud = kq_pushudata(c,
							      kq_token(&ch));

					kq_putentry(c, &e, ud);
					if (ud != 0)
						lua_pop(c->L, 1);
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
#ifdef kq_sys_kevent_counted
			/* The engine tells where it stopped, so the rest of the
			 * list goes in one call with the same outcome. */
			int applied = 0;
			size_t j;

			kq_guard(c);
			r = kq_sys_kevent_counted(c->q->fd, c->q->buf + i,
						  (int)(n - i), &applied);
			en = errno;
			for (j = 0; j < (size_t)applied; j++) {
				kq_guard(c);
				ch = c->q->buf[i + j];
				kq_applied(c, &ch);
			}
			i += (size_t)applied;
			if (r < 0) {
				kq_guard(c);
				ch = c->q->buf[i];
				kq_failed(c, &ch, en);
				kq_drop(c, i + 1, n);
				return en;
			}
			/* Stopped early only by a receipt without room. */
			kq_drop(c, i, n);
			return -1;
#else
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
#endif
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
		int ud;

		kq_guard(c);
		ev = c->q->buf[c->outbase + (size_t)k];
		token = kq_token(&ev);
		/* Pushed first: a release below frees values[token]. */
		ud = kq_pushudata(c, token);
		/* The knote went with this delivery: drop its anchor, but only
		 * the one the mirror holds, never a token twice (a nil udata
		 * has the mark KQ_NILKNOTE there). */
		if (ev.flags & EV_ONESHOT) {
			lua_Integer m = kq_mirrorget(c, &ev);

			if (token > 0 ? m == token : m == KQ_NILKNOTE) {
				kq_mirrorset(c, &ev, 0);
				kq_release(c, token);
			}
		}
		kq_putentry(c, &ev, ud);
		if (ud != 0)
			lua_pop(c->L, 1);
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
	c.epoch = ++q->epoch;
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
	/* The keys, the four slots below, the four of a kq.eventlist and the
	 * temporaries of one entry or change exceed the LUA_MINSTACK slots a
	 * C function gets. */
	luaL_checkstack(L, KQ_UV_LAZYNAME + 8 + 16, "kevent");
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
	if (c.events != 0)
		c.isviews = kq_views_begin(L, &c.views, c.events,
					   kq_key(KQ_UV_IDENT));

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

/*
 * lib.kevent = kq_kevent with its upvalues (see the enum at the top).
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
