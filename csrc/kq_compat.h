/*
 * kq_compat.h - the one place that knows which Lua kq is built for:
 * 5.1, 5.2, 5.3, 5.4 or LuaJIT 2.1 (which reports 5.1 and carries some
 * of 5.2's auxiliary library).  Everything else in the binding and in
 * csrc/testing/kqtest.c is written against the 5.4 API, plus the kq_*
 * helpers below where 5.4 itself has no single call for the job.  What a
 * user gets on each version is in doc/reference.md ("Lua versions").
 *
 * Where an older Lua lacks a 5.4 function, it is defined here under its
 * 5.4 name (as compat-5.3 does): call sites stay as the 5.4 manual reads.
 */
#ifndef KQ_COMPAT_H
#define KQ_COMPAT_H

#include <math.h>
#include <stdio.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h" /* LUA_FILEHANDLE on 5.1; LUA_JITLIBNAME on LuaJIT */

#if !defined(LUA_VERSION_NUM) || LUA_VERSION_NUM < 501 || \
	LUA_VERSION_NUM > 504
#error "kq builds for Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT 2.1"
#endif

#if defined(__GNUC__)
#define KQ_COMPAT_UNUSED __attribute__((unused))
#else
#define KQ_COMPAT_UNUSED
#endif
#define KQ_COMPAT static inline KQ_COMPAT_UNUSED

/* ---- integers ------------------------------------------------------------
 * From 5.3 numbers have an integer subtype.  Before (5.1, 5.2, LuaJIT)
 * every number is a double, exact for integers up to 2^53 in magnitude, and
 * lua_tointeger truncates silently.  kq never rounds an argument: an
 * integer argument must be integral (else "number has no integer
 * representation", as 5.4 says for 1.5 or 2^64) and, on doubles, within
 * +-2^53 (else "out of range"). */

#define KQ_INT_OK 1
#define KQ_INT_NOTINT 0
#define KQ_INT_RANGE (-1)

/* The number at idx (the caller has checked lua_type is LUA_TNUMBER) as an
 * exact integer in *v: KQ_INT_OK, KQ_INT_NOTINT or KQ_INT_RANGE. */
KQ_COMPAT int kq_tointeger(lua_State *L, int idx, lua_Integer *v)
{
#if LUA_VERSION_NUM >= 503
	int isint;

	*v = lua_tointegerx(L, idx, &isint);
	return isint ? KQ_INT_OK : KQ_INT_NOTINT;
#else
	lua_Number d = lua_tonumber(L, idx);

	*v = 0;
	if (d != floor(d)) /* also NaN and the infinities */
		return KQ_INT_NOTINT;
	/* Beyond 64 bits 5.4 has no integer for it either: say the same. */
	if (d < -9223372036854775808.0 || d >= 9223372036854775808.0)
		return KQ_INT_NOTINT;
	if (d < -9007199254740992.0 || d > 9007199254740992.0)
		return KQ_INT_RANGE;
	/* lua_Integer is ptrdiff_t there: 32 bits on a 32-bit system. */
	*v = (lua_Integer)d;
	if ((lua_Number)*v != d)
		return KQ_INT_RANGE;
	return KQ_INT_OK;
#endif
}

/* The message for a kq_tointeger result other than KQ_INT_OK. */
KQ_COMPAT const char *kq_intmsg(int r)
{
	return r == KQ_INT_RANGE ? "out of range"
				 : "number has no integer representation";
}

/* luaL_checkinteger and luaL_optinteger that never round (see above). */
KQ_COMPAT lua_Integer kq_checkinteger(lua_State *L, int arg)
{
#if LUA_VERSION_NUM >= 503
	return luaL_checkinteger(L, arg);
#else
	lua_Integer v;
	int r;

	(void)luaL_checknumber(L, arg);
	r = kq_tointeger(L, arg, &v);
	if (r != KQ_INT_OK)
		luaL_argerror(L, arg, kq_intmsg(r));
	return v;
#endif
}

KQ_COMPAT lua_Integer kq_optinteger(lua_State *L, int arg, lua_Integer def)
{
	if (lua_isnoneornil(L, arg))
		return def;
	return kq_checkinteger(L, arg);
}

/* ---- the 5.4 API on older versions ---------------------------------- */

#ifndef luaL_pushfail
#define luaL_pushfail(L) lua_pushnil(L)
#endif

#if LUA_VERSION_NUM < 503
/* Before 5.3 these return nothing; 5.3 made them return the type. */
KQ_COMPAT int kq_compat_rawgeti(lua_State *L, int t, lua_Integer n)
{
	/* Before 5.3 the index is an int: a wider one (a descriptor number
	 * as a mirror key) goes through lua_rawget. */
	if (n >= -2147483647 - 1 && n <= 2147483647) {
		lua_rawgeti(L, t, (int)n);
	} else {
		if (t < 0 && t > LUA_REGISTRYINDEX)
			t = lua_gettop(L) + t + 1;
		lua_pushnumber(L, (lua_Number)n);
		lua_rawget(L, t);
	}
	return lua_type(L, -1);
}

KQ_COMPAT void kq_compat_rawseti(lua_State *L, int t, lua_Integer n)
{
	if (n >= -2147483647 - 1 && n <= 2147483647) {
		lua_rawseti(L, t, (int)n);
	} else {
		if (t < 0 && t > LUA_REGISTRYINDEX)
			t = lua_gettop(L) + t + 1;
		lua_pushnumber(L, (lua_Number)n);
		lua_insert(L, -2);
		lua_rawset(L, t);
	}
}

KQ_COMPAT int kq_compat_rawget(lua_State *L, int t)
{
	lua_rawget(L, t);
	return lua_type(L, -1);
}

KQ_COMPAT int kq_compat_gettable(lua_State *L, int t)
{
	lua_gettable(L, t);
	return lua_type(L, -1);
}

KQ_COMPAT int kq_compat_getfield(lua_State *L, int t, const char *k)
{
	lua_getfield(L, t, k);
	return lua_type(L, -1);
}

KQ_COMPAT int kq_compat_rawgetp(lua_State *L, int t, const void *p)
{
#if LUA_VERSION_NUM == 502
	lua_rawgetp(L, t, p);
#else
	if (t < 0 && t > LUA_REGISTRYINDEX)
		t = lua_gettop(L) + t + 1;
	lua_pushlightuserdata(L, (void *)p);
	lua_rawget(L, t);
#endif
	return lua_type(L, -1);
}

#define lua_rawgetp kq_compat_rawgetp
#define lua_rawgeti kq_compat_rawgeti
#define lua_rawseti kq_compat_rawseti
#define lua_rawget kq_compat_rawget
#define lua_gettable kq_compat_gettable
#define lua_getfield kq_compat_getfield
#endif /* < 5.3 */

#if LUA_VERSION_NUM == 501
/* Lua 5.1 and LuaJIT. */
#define lua_rawlen(L, i) lua_objlen((L), (i))

KQ_COMPAT void kq_compat_rawsetp(lua_State *L, int t, const void *p)
{
	if (t < 0 && t > LUA_REGISTRYINDEX)
		t = lua_gettop(L) + t + 1;
	lua_pushlightuserdata(L, (void *)p);
	lua_insert(L, -2);
	lua_rawset(L, t);
}

#define lua_rawsetp kq_compat_rawsetp

KQ_COMPAT const char *kq_compat_tolstring(lua_State *L, int i, size_t *len)
{
	switch (lua_type(L, i)) {
	case LUA_TSTRING:
	case LUA_TNUMBER:
		lua_pushvalue(L, i);
		break;
	case LUA_TBOOLEAN:
		lua_pushstring(L, lua_toboolean(L, i) ? "true" : "false");
		break;
	case LUA_TNIL:
		lua_pushliteral(L, "nil");
		break;
	default:
		lua_pushfstring(L, "%s: %p", luaL_typename(L, i),
				lua_topointer(L, i));
		break;
	}
	return lua_tolstring(L, -1, len);
}
#define luaL_tolstring kq_compat_tolstring

#ifndef LUA_JITLIBNAME
/* Plain 5.1 has none of 5.2's auxiliary library; LuaJIT has these. */
KQ_COMPAT void kq_compat_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
	int i;

	luaL_checkstack(L, nup, "too many upvalues");
	for (; l->name != NULL; l++) {
		for (i = 0; i < nup; i++)
			lua_pushvalue(L, -nup);
		lua_pushcclosure(L, l->func, nup);
		lua_setfield(L, -(nup + 2), l->name);
	}
	lua_pop(L, nup);
}
#define luaL_setfuncs kq_compat_setfuncs
#define luaL_newlib(L, l) \
	(lua_createtable((L), 0, (int)(sizeof(l) / sizeof((l)[0]) - 1)), \
	 luaL_setfuncs((L), (l), 0))

KQ_COMPAT void *kq_compat_testudata(lua_State *L, int i, const char *tname)
{
	void *p = lua_touserdata(L, i);

	if (p == NULL || !lua_getmetatable(L, i))
		return NULL;
	luaL_getmetatable(L, tname);
	if (!lua_rawequal(L, -1, -2))
		p = NULL;
	lua_pop(L, 2);
	return p;
}
#define luaL_testudata kq_compat_testudata

KQ_COMPAT void kq_compat_setmetatable(lua_State *L, const char *tname)
{
	luaL_getmetatable(L, tname);
	lua_setmetatable(L, -2);
}
#define luaL_setmetatable kq_compat_setmetatable
#endif /* plain 5.1 */
#endif /* 5.1 and LuaJIT */

/* ---- user values ----------------------------------------------------------
 * 5.4 gives a userdata n user values.  5.2 and 5.3 give it one, which
 * holds a table of the n; 5.1 and LuaJIT give it an environment table,
 * used the same way.  Only userdata made by kq_newuserdatauv with
 * nuv > 0 may be asked for their user values. */

#if LUA_VERSION_NUM >= 504
#define kq_newuserdatauv(L, size, nuv) lua_newuserdatauv((L), (size), (nuv))
#define kq_setiuservalue(L, idx, n) ((void)lua_setiuservalue((L), (idx), (n)))
#define kq_getiuservalue(L, idx, n) lua_getiuservalue((L), (idx), (n))
#else
#if LUA_VERSION_NUM == 501
#define kq_compat_getuvtable(L, i) lua_getfenv((L), (i))
#define kq_compat_setuvtable(L, i) ((void)lua_setfenv((L), (i)))
#else
#define kq_compat_getuvtable(L, i) ((void)lua_getuservalue((L), (i)))
#define kq_compat_setuvtable(L, i) lua_setuservalue((L), (i))
#endif

KQ_COMPAT void *kq_newuserdatauv(lua_State *L, size_t size, int nuv)
{
	void *p = lua_newuserdata(L, size);

	if (nuv > 0) {
		lua_createtable(L, nuv, 0);
		kq_compat_setuvtable(L, -2);
	}
	return p;
}

/* Pops the value on top into user value n of the userdata at idx. */
KQ_COMPAT void kq_setiuservalue(lua_State *L, int idx, int n)
{
	if (idx < 0 && idx > LUA_REGISTRYINDEX)
		idx = lua_gettop(L) + idx + 1;
	kq_compat_getuvtable(L, idx);
	lua_insert(L, -2);
	lua_rawseti(L, -2, n);
	lua_pop(L, 1);
}

/* Pushes user value n of the userdata at idx; returns its type. */
KQ_COMPAT int kq_getiuservalue(lua_State *L, int idx, int n)
{
	int tt;

	kq_compat_getuvtable(L, idx);
	tt = lua_rawgeti(L, -1, n);
	lua_remove(L, -2);
	return tt;
}
#endif

/* ---- Lua files -------------------------------------------------------------
 * Whether the value at idx is a Lua file handle (io.open); if so *f is
 * its FILE, or NULL once closed.  5.2 and later: a luaL_Stream whose closef
 * is NULL once closed.  5.1: a FILE* set to NULL by close.  LuaJIT: a
 * struct whose first member is the FILE*, set to NULL by close. */
KQ_COMPAT int kq_tofile(lua_State *L, int idx, FILE **f)
{
#if LUA_VERSION_NUM >= 502
	luaL_Stream *s = (luaL_Stream *)luaL_testudata(L, idx, LUA_FILEHANDLE);

	if (s == NULL)
		return 0;
	*f = s->closef == NULL ? NULL : s->f;
	return 1;
#else
	FILE **s = (FILE **)luaL_testudata(L, idx, LUA_FILEHANDLE);

	if (s == NULL)
		return 0;
	*f = *s;
	return 1;
#endif
}

#endif
