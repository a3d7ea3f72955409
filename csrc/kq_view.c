/*
 * kq_view.c - kq.eventlist(): an eventlist whose entries are read-only
 * views, rewritten in place by kevent, and only where the new event
 * differs from the one the view showed.
 *
 * Why.  Filling a plain event table costs six table writes through the
 * Lua C API per event and per call, about 100 ns here, even when the same
 * knote lands in the same slot with the same fields (the steady state of
 * level-triggered readiness).  That alone is more than luv's whole cost
 * per event (bench/RESULTS.md).  kq cannot skip writing a field of a plain
 * table: the program may have changed it, and nothing tells.  A view is an
 * empty table whose fields are read, through its metatable's __index, from
 * a private table V that only this file writes; the view refuses every
 * assignment (__newindex raises, and an empty table has no field to
 * assign in place).  So kq knows exactly what V holds, keeps a copy in C
 * (the shadow) and writes only the fields that changed.
 *
 * Layout.  The eventlist is a plain table with its own metatable LM:
 *   LM[&kq_view_key]  the header (struct kq_viewlist), whose user value
 *                     is the slot array (a userdata of struct kq_viewslot,
 *                     the shadows, replaced by a bigger one as it grows)
 *   LM[1]             views: views[i] is the view T_i, kept at evl[i]
 *   LM[2]             values: values[i] is V_i, T_i's private fields
 *   LM[3]             (lazy data, Linux) the metatable of every V_i: its
 *                     __index computes data on its first read after a
 *                     call, from the shadow's ident, filter and kind, and
 *                     keeps the number in the shadow (the rule of
 *                     kq_kevent.c for plain tables); V_i finds its shadow
 *                     through V_i[&kq_view_slotkey] = i.
 * T_i's metatable is { __index = V_i, __newindex = refuse, __pairs,
 * __metatable = "kq.event" }, a table of its own: were it V_i,
 * view.__index would hand V_i out.
 *
 * No allocation while a shadow is in use.  An allocation can run the
 * collector, a finaliser, any Lua code, even a kevent call on this same
 * eventlist (which then works as on a plain list: the later write wins).
 * V_i is made with all its keys present, so every later write to it
 * reuses a node and allocates nothing; the shadow is updated just before
 * those writes; allocations (a new slot, putting T_i back in evl) happen
 * before the shadow is read or after it is done with, and the slot array
 * is looked up again after each of them.
 *
 * Not covered: rawset(view, k, x) gives the view a raw field that hides
 * V_i's; kq does not look for raw fields (that costs a lookup per event),
 * so such a view shows x until it is dropped.  The reference says so.
 */
#include <string.h>

#include "kq_binding.h"

/* Their addresses are keys no Lua code can make: the header's in LM,
 * and V_i's own index in V_i. */
static const char kq_view_key = 0;
static const char kq_view_slotkey = 0; /* for lazy data (kq_sys.h) */

enum { KQ_DATA_ABSENT, KQ_DATA_CACHED, KQ_DATA_VALUE };

/* The shadow of one entry: what V_i holds.  Wide enough for every
 * system's struct kevent field types (NetBSD's filter and flags are 32
 * bits), and small: a call reads one per event. */
struct kq_viewslot {
	const void *view;        /* T_i (lua_topointer), NULL until made */
	uintptr_t ident;
	int64_t data;            /* V_i.data (VALUE), or the cached lazy value */
	uint64_t ext0;           /* a lazy event's kind (kqe.h) */
	uint32_t fflags;
	int32_t filter;
	uint32_t flags;
	unsigned char hasudata;  /* V_i.udata is not nil */
	unsigned char datastate; /* KQ_DATA_*: V_i.data nil and not read yet,
				  * nil and read (s->data), or set */
};

struct kq_viewlist {
	size_t nslots;
	struct kq_viewslot *slots; /* the header's user value 1 */
};

static const char *const kq_view_fields[] = {
	"ident", "filter", "flags", "fflags", "data", "udata", NULL
};

/* The fields' order in the interned keys of struct kq_views. */
enum { KQ_F_IDENT, KQ_F_FILTER, KQ_F_FLAGS, KQ_F_FFLAGS, KQ_F_DATA,
       KQ_F_UDATA };

/* ---- the view's metamethods ------------------------------------------ */

static int kq_view_refuse(lua_State *L)
{
	return luaL_error(L, "kq event views are read-only (field '%s'): "
			  "copy the event with kq.copy(ev) to change it",
			  luaL_tolstring(L, 2, NULL));
}

/* Iterator of pairs(view): the non-nil fields in kq_view_fields order,
 * read through the view (so data is resolved). */
static int kq_view_next(lua_State *L)
{
	int i = 0;

	if (!lua_isnil(L, 2)) {
		const char *k = lua_tostring(L, 2);

		while (k != NULL && kq_view_fields[i] != NULL &&
		       strcmp(kq_view_fields[i], k) != 0)
			i++;
		if (k == NULL || kq_view_fields[i] == NULL)
			return luaL_error(L, "invalid key to 'next'");
		i++;
	}
	for (; kq_view_fields[i] != NULL; i++) {
		lua_pushstring(L, kq_view_fields[i]);
		if (lua_gettable(L, 1) != LUA_TNIL) {
			lua_pushstring(L, kq_view_fields[i]);
			lua_insert(L, -2);
			return 2;
		}
		lua_pop(L, 1);
	}
	lua_pushnil(L);
	return 1;
}

static int kq_view_pairs(lua_State *L)
{
	lua_pushcfunction(L, kq_view_next);
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	return 3;
}

/* Lazy data (kq_sys.h; where the system has none, KQ_SYS_LAZY is 0 and
 * this is never installed).  __index of every V_i of one list: `data` of a lazy event, computed on
 * its first read from the descriptor then, and kept in the shadow so that
 * later reads give the same number.  V_i.data stays nil (every read comes
 * here), so the next delivery only resets the shadow: no table write.
 * One closure per list, not per entry, so that it stays in cache when a
 * loop reads the data of a thousand events.  Upvalues: the header, the
 * interned "data".  A failure (descriptor gone) reads as 0. */
static int kq_view_lazydata(lua_State *L)
{
	struct kq_viewlist *vl =
		(struct kq_viewlist *)lua_touserdata(L, lua_upvalueindex(1));
	lua_Integer i;
	struct kq_viewslot *s;
	int64_t data = 0;

	if (!lua_rawequal(L, 2, lua_upvalueindex(2)) || vl == NULL ||
	    lua_type(L, 1) != LUA_TTABLE ||
	    lua_rawgetp(L, 1, &kq_view_slotkey) != LUA_TNUMBER)
		return 0;
	i = lua_tointeger(L, -1);
	lua_pop(L, 1);
	if (i < 1 || (size_t)i > vl->nslots)
		return 0;
	s = &vl->slots[i - 1];
	if (s->datastate == KQ_DATA_ABSENT) {
		if (kq_sys_event_data(s->ident, s->filter, s->ext0,
				      &data) < 0)
			data = 0;
		s->data = data;
		s->datastate = KQ_DATA_CACHED;
	}
	data = s->data;
	lua_pushinteger(L, (lua_Integer)data);
	return 1;
}

/* ---- the list --------------------------------------------------------- */

/* kq.eventlist() -> an empty eventlist whose entries will be views. */
int kq_eventlist(lua_State *L)
{
	struct kq_viewlist *vl;

	lua_settop(L, 0);
	lua_newtable(L);              /* 1: the eventlist */
	lua_createtable(L, 2, 3);     /* 2: LM */
	lua_pushliteral(L, "kq.eventlist");
	lua_setfield(L, 2, "__name");
	lua_pushliteral(L, "kq.eventlist");
	lua_setfield(L, 2, "__metatable");
	lua_newtable(L);
	lua_rawseti(L, 2, 1);
	lua_newtable(L);
	lua_rawseti(L, 2, 2);
	vl = (struct kq_viewlist *)kq_newuserdatauv(L, sizeof *vl, 1);
	memset(vl, 0, sizeof *vl);
	if (KQ_SYS_LAZY) {
		/* LM[3]: the metatable of every V_i, computing lazy data. */
		lua_createtable(L, 0, 1);
		lua_pushvalue(L, -2);
		lua_pushliteral(L, "data");
		lua_pushcclosure(L, kq_view_lazydata, 2);
		lua_setfield(L, -2, "__index");
		lua_rawseti(L, 2, 3);
	}
	lua_rawsetp(L, 2, &kq_view_key);
	lua_setmetatable(L, 1);
	return 1;
}

int kq_views_begin(lua_State *L, struct kq_views *v, int list, int keys)
{
	memset(v, 0, sizeof *v);
	if (!lua_getmetatable(L, list))
		return 0;
	if (lua_rawgetp(L, -1, &kq_view_key) != LUA_TUSERDATA) {
		lua_pop(L, 2);
		return 0;
	}
	v->L = L;
	v->list = list;
	v->keys = keys;
	v->meta = lua_gettop(L) - 1;
	v->header = lua_gettop(L);
	v->vl = (struct kq_viewlist *)lua_touserdata(L, -1);
	lua_rawgeti(L, -2, 1);
	v->views = lua_gettop(L);
	lua_rawgeti(L, -3, 2);
	v->values = lua_gettop(L);
	return 1;
}

/* Room for slot `idx` (1-based): a bigger array, the old one copied.
 * The allocation may run a nested kevent call on this list that grows it
 * too: sizes are read again after it. */
static void kq_views_grow(struct kq_views *v, lua_Integer idx)
{
	lua_State *L = v->L;
	struct kq_viewlist *vl = v->vl;
	size_t n = vl->nslots * 2;
	struct kq_viewslot *ns;

	if ((size_t)idx <= vl->nslots)
		return;
	if (n < 16)
		n = 16;
	if (n < (size_t)idx)
		n = (size_t)idx;
	ns = (struct kq_viewslot *)kq_newuserdatauv(L, n * sizeof *ns, 0);
	if ((size_t)idx <= vl->nslots) {
		lua_pop(L, 1);
		return;
	}
	memset(ns, 0, n * sizeof *ns);
	if (vl->nslots > 0)
		memcpy(ns, vl->slots, vl->nslots * sizeof *ns);
	kq_setiuservalue(L, v->header, 1);
	vl->slots = ns;
	vl->nslots = n;
}


static void kq_views_setint(struct kq_views *v, int vt, int field,
			    lua_Integer value)
{
	lua_pushvalue(v->L, v->keys + field);
	lua_pushinteger(v->L, value);
	lua_rawset(v->L, vt);
}

/* Make T_i, its metatable and V_i, with V_i holding all six keys.  The
 * metatable is not V_i itself: a read of view.__index would then return
 * V_i, and the program could write into it. */
static void kq_views_make(struct kq_views *v, lua_Integer idx)
{
	lua_State *L = v->L;
	int t, mt, vt, k;

	/* Made in the order a field read visits them (T_i, its metatable,
	 * V_i), so that they tend to lie next to each other in memory. */
	lua_createtable(L, 0, 0); /* T_i */
	t = lua_gettop(L);
	/* Four keys, four nodes: no __name, __metatable names it. */
	lua_createtable(L, 0, 4);
	mt = lua_gettop(L);
	lua_createtable(L, 0, 7); /* V_i: six fields and its index */
	vt = lua_gettop(L);
	for (k = KQ_F_IDENT; k <= KQ_F_UDATA; k++)
		kq_views_setint(v, vt, k, 0);
	lua_pushvalue(L, vt);
	lua_setfield(L, mt, "__index");
	lua_pushcfunction(L, kq_view_refuse);
	lua_setfield(L, mt, "__newindex");
	lua_pushcfunction(L, kq_view_pairs);
	lua_setfield(L, mt, "__pairs");
	lua_pushliteral(L, "kq.event");
	lua_setfield(L, mt, "__metatable");
	lua_pushvalue(L, mt);
	lua_setmetatable(L, t);
	if (KQ_SYS_LAZY) {
		lua_pushinteger(L, idx);
		lua_rawsetp(L, vt, &kq_view_slotkey);
		lua_rawgeti(L, v->meta, 3);
		lua_setmetatable(L, vt);
	}
	lua_pushvalue(L, t);
	lua_rawseti(L, v->views, idx);
	lua_pushvalue(L, vt);
	lua_rawseti(L, v->values, idx);
	/* A fresh slot (re-read: the allocations above may have run a nested
	 * call on this list, which is then simply overridden here): the
	 * shadow says "all zero, data set", which the first write below then
	 * corrects field by field. */
	{
		struct kq_viewslot *s = &v->vl->slots[idx - 1];

		memset(s, 0, sizeof *s);
		s->view = lua_topointer(L, t);
		s->hasudata = 1;
		s->datastate = KQ_DATA_VALUE;
	}
	lua_settop(L, t - 1);
}

/* The fields of V_i that differ from `ev` (bits 1 << KQ_F_*), with the
 * shadow brought up to date.  Only what changed is stored: in the steady
 * state the shadow is read, never written. */
static unsigned kq_views_diff(struct kq_viewslot *s, const struct kevent *ev,
			      int ud, int lazy)
{
	unsigned set = 0;
	unsigned char datastate = lazy ? KQ_DATA_ABSENT : KQ_DATA_VALUE;

	if (s->ident != (uintptr_t)ev->ident)
		set |= 1u << KQ_F_IDENT;
	if (s->filter != (int32_t)ev->filter)
		set |= 1u << KQ_F_FILTER;
	if (s->flags != (uint32_t)ev->flags)
		set |= 1u << KQ_F_FLAGS;
	if (s->fflags != (uint32_t)ev->fflags)
		set |= 1u << KQ_F_FFLAGS;
	/* A udata value is compared by the program's value, not by token:
	 * tokens are reused once released, so write any non-nil one. */
	if (ud != 0 || s->hasudata)
		set |= 1u << KQ_F_UDATA;
	/* V_i.data is written only between nil (lazy) and a number, or from
	 * one number to another; a lazy value read in the last call is just
	 * forgotten (KQ_DATA_CACHED to KQ_DATA_ABSENT), in the shadow. */
	if (lazy) {
		if (s->datastate == KQ_DATA_VALUE)
			set |= 1u << KQ_F_DATA;
		else if (s->datastate == KQ_DATA_CACHED)
			s->datastate = KQ_DATA_ABSENT;
	} else if (s->datastate != KQ_DATA_VALUE ||
		   s->data != (int64_t)ev->data) {
		set |= 1u << KQ_F_DATA;
	}
	if (lazy && s->ext0 != kq_sys_event_kind(ev))
		s->ext0 = kq_sys_event_kind(ev);
	if (set == 0)
		return 0;
	s->ident = (uintptr_t)ev->ident;
	s->filter = (int32_t)ev->filter;
	s->flags = (uint32_t)ev->flags;
	s->fflags = (uint32_t)ev->fflags;
	s->data = lazy ? 0 : (int64_t)ev->data;
	s->hasudata = ud != 0;
	s->datastate = datastate;
	return set;
}

/* Write the fields in `set` into V_i (existing nodes: no allocation). */
static void kq_views_write(struct kq_views *v, lua_Integer idx,
			   const struct kevent *ev, int ud, int lazy,
			   unsigned set)
{
	lua_State *L = v->L;
	int vt;

	lua_rawgeti(L, v->values, idx);
	vt = lua_gettop(L);
	if (set & (1u << KQ_F_IDENT))
		kq_views_setint(v, vt, KQ_F_IDENT, (lua_Integer)ev->ident);
	if (set & (1u << KQ_F_FILTER))
		kq_views_setint(v, vt, KQ_F_FILTER, ev->filter);
	if (set & (1u << KQ_F_FLAGS))
		kq_views_setint(v, vt, KQ_F_FLAGS, ev->flags);
	if (set & (1u << KQ_F_FFLAGS))
		kq_views_setint(v, vt, KQ_F_FFLAGS, (lua_Integer)ev->fflags);
	if (set & (1u << KQ_F_DATA)) {
		lua_pushvalue(L, v->keys + KQ_F_DATA);
		if (lazy)
			lua_pushnil(L);
		else
			lua_pushinteger(L, (lua_Integer)ev->data);
		lua_rawset(L, vt);
	}
	if (set & (1u << KQ_F_UDATA)) {
		lua_pushvalue(L, v->keys + KQ_F_UDATA);
		if (ud != 0)
			lua_pushvalue(L, ud);
		else
			lua_pushnil(L);
		lua_rawset(L, vt);
	}
	lua_pop(L, 1);
}

/*
 * The hot path: in the steady state of level-triggered readiness nothing
 * differs, and the cost is one shadow comparison plus one look at evl[idx].
 */
void kq_views_put(struct kq_views *v, lua_Integer idx,
		  const struct kevent *ev, int ud)
{
	lua_State *L = v->L;
	struct kq_viewlist *vl = v->vl;
	struct kq_viewslot *s;
	const void *view;
	unsigned set;
	int lazy = kq_sys_event_is_lazy(ev);

	if ((size_t)idx > vl->nslots || vl->slots[idx - 1].view == NULL) {
		kq_views_grow(v, idx);
		kq_views_make(v, idx);
	}
	/* The shadow is updated before any write (see the file comment). */
	s = &vl->slots[idx - 1];
	view = s->view;
	set = kq_views_diff(s, ev, ud, lazy);
	if (set != 0)
		kq_views_write(v, idx, ev, ud, lazy, set);

	/* evl[idx] is T_i again if the program put something else there. */
	lua_rawgeti(L, v->list, idx);
	if (lua_topointer(L, -1) != view) {
		lua_rawgeti(L, v->views, idx);
		lua_rawseti(L, v->list, idx);
	}
	lua_pop(L, 1);
}
