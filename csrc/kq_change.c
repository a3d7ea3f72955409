/*
 * kq_change.c - pass 1 of a kevent call: the changelist, a Lua array of
 * change tables, validated and converted into struct kevent before any
 * kevent(2) call, so that a malformed changelist applies nothing.
 *
 * Each change table is read exactly once, udata included, and nothing is
 * anchored while they are read: an __index may raise, yield (an error
 * here), close the queue or replace changelist entries, and all the call
 * has made so far is garbage (doc/reference.md, "Re-entrancy").
 *
 * Speed (bench/RESULTS.md, "Binding optimisation"): a change table without
 * a metatable is read with lua_rawget through the interned keys
 * (kq_fastchange); the general path, which may run Lua code (__index,
 * getfd), only runs for the rest.
 */
#include <stdint.h>
#include <string.h>

#include "kq_kevent.h"

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
			/* LuaSocket's getfd() of a closed socket is -1. */
			if (v < 0 && m == methods)
				kq_fielderror(L, i, "ident", "closed socket");
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
 * lua_next on the hot path.
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
 * missing) returns 0 having pushed and changed nothing, and kq_tochange
 * reads the table: reading one without a metatable runs no Lua code, so
 * nobody can tell it was read twice.  On success the udata value is
 * pushed.
 */
static int kq_fastchange(lua_State *L, int t, lua_Integer i,
			 struct kevent *ev)
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
	kq_setchange(L, i, v[KQ_UV_IDENT], v[KQ_UV_FILTER], v[KQ_UV_FLAGS],
		     v[KQ_UV_FFLAGS], v[KQ_UV_DATA], ev);
	kq_pushkey(L, KQ_UV_UDATA);
	(void)lua_rawget(L, t);
	return 1;
}

/*
 * Pass 1: the whole changelist into c->buf (the call's own) before any
 * kevent(2) call.  No token is made yet (an error would strand it): a
 * change's udata value goes to the table at c->pending, under the
 * change's position, and its udata field says 1 (a value) or 0 (nil)
 * until kq_udata_anchor.  Every change goes to the kernel, filter 0
 * included: it is NetBSD's EVFILT_READ (kq_udata_applied has FreeBSD's
 * skip).  Returns the count read.
 */
size_t kq_changes_read(struct kq_call *c, size_t n)
{
	lua_State *L = c->L;
	size_t i;

	for (i = 1; i <= n; i++) {
		struct kevent *ev = &c->buf[i - 1];
		int t;

		if (lua_rawgeti(L, c->changes, (lua_Integer)i) != LUA_TTABLE)
			luaL_argerror(L, 2, lua_pushfstring(L,
				"changelist[%d]: table expected, got %s",
				(int)i, luaL_typename(L, -1)));
		t = lua_gettop(L);
		if (!kq_fastchange(L, t, (lua_Integer)i, ev)) {
			kq_tochange(L, t, (lua_Integer)i, ev);
			kq_pushkey(L, KQ_UV_UDATA);
			(void)lua_gettable(L, t);
		}
		/* The udata value is on top. */
		if (lua_isnil(L, -1)) {
			ev->udata = KQ_UDATA(0);
		} else {
			if (lua_isnil(L, c->pending)) {
				lua_newtable(L); /* may run Lua: nothing held */
				lua_replace(L, c->pending);
			}
			lua_rawseti(L, c->pending, (lua_Integer)i);
			ev->udata = KQ_UDATA(1);
		}
		lua_settop(L, t - 1);
	}
	return n;
}
