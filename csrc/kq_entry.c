/*
 * kq_entry.c - one entry (event or error) written into a plain eventlist
 * table; kq_view.c does the same for a kq.eventlist.  A table already at
 * that index is reused, its six fields overwritten with rawset.
 *
 * Speed (bench/RESULTS.md, "Binding optimisation"): the field names are
 * interned once, as upvalues of kevent (kq_kevent_open), copied to stack
 * slots per call and pushed with lua_pushvalue (lua_pushstring of a C
 * string costs a string-cache lookup and a strcmp every time); lazy
 * metatables are recognised by identity.
 */
#include <stdint.h>
#include <string.h>

#include "kq_kevent.h"

/* Lazy data (kq_sys.h; Linux only, elsewhere kq_sys_event_is_lazy is 0
 * and this is never reached).  __index of a lazy event table: compute `data` on first read, from the
 * descriptor at that moment, and cache it with rawset so that a second
 * read is stable.  If the engine cannot compute it (the descriptor was
 * closed meanwhile) data reads as 0: a field read is no place to raise.
 * Upvalues: the kind (ext[0], as its bytes: see kq_pushlazymt), then the
 * interned "data", "ident" and "filter". */
static int kq_lazyindex(lua_State *L)
{
	uintptr_t ident;
	int filter;
	uint64_t kind = 0;
	int64_t data = 0;
	size_t len;
	const char *k;

	/* Interned strings: equal keys are the same object. */
	if (!lua_rawequal(L, 2, lua_upvalueindex(2)))
		return 0;
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_pushvalue(L, lua_upvalueindex(3));
	lua_rawget(L, 1);
	ident = (uintptr_t)lua_tointeger(L, -1);
	lua_pushvalue(L, lua_upvalueindex(4));
	lua_rawget(L, 1);
	filter = (int)lua_tointeger(L, -1);
	k = lua_tolstring(L, lua_upvalueindex(1), &len);
	if (k != NULL && len == sizeof kind)
		memcpy(&kind, k, sizeof kind);
	if (kq_sys_event_data(ident, filter, kind, &data) < 0)
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
 * A plain eventlist (kq_output sends a kq.eventlist to kq_views_put):
 * eventlist[c->written + 1] = entry `ev`, with the udata value at stack
 * slot `ud` (0: nil).  A table already there is reused, all six fields
 * overwritten with rawset; otherwise a new one is made.
 */
void kq_entry_put(struct kq_call *c, const struct kevent *ev, int ud)
{
	lua_State *L = c->L;
	lua_Integer idx;
	int base, t, mt = 0, lazy = 0;

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
	lazy = kq_sys_event_is_lazy(ev);
	if (lazy) {
		int same;

		kq_pushlazymt(c, kq_sys_event_kind(ev));
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
	if (mt != 0 && kq_ourmt(L, mt)) {
		lua_pushnil(L);
		lua_setmetatable(L, t);
	}
	{
		int64_t data = (int64_t)ev->data;

		/* A table carrying the caller's own metatable gets data now. */
		if (lazy && kq_sys_event_data(ev->ident, ev->filter,
					      kq_sys_event_kind(ev),
					      &data) < 0)
			data = 0;
		kq_setint(L, t, KQ_UV_DATA, (lua_Integer)data);
	}
	lua_settop(L, base);
}
