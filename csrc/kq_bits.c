/*
 * kq_bits.c - kq.bor(a, b, ...) and kq.band(a, b, ...): flags and masks
 * combined the same way on every Lua.  5.1, 5.2 and LuaJIT have no
 * bitwise operators (LuaJIT's bit library works on 32 bits and returns
 * signed results, too narrow for NOTE_* masks and 64-bit data), so code
 * that must run everywhere calls these.  Exact for every non-negative
 * integer the Lua can hold exactly (doc/reference.md, "Lua versions").
 */
#include <stdint.h>

#include "kq_binding.h"

/* Argument i as a non-negative integer, or an argument error naming it. */
static uint64_t kq_checkbits(lua_State *L, int i)
{
	lua_Integer v = kq_checkinteger(L, i);

	luaL_argcheck(L, v >= 0, i, "non-negative integer expected");
	return (uint64_t)v;
}

int kq_bor(lua_State *L)
{
	int i, n = lua_gettop(L);
	uint64_t r = kq_checkbits(L, 1);

	for (i = 2; i <= n; i++)
		r |= kq_checkbits(L, i);
	lua_pushinteger(L, (lua_Integer)r);
	return 1;
}

int kq_band(lua_State *L)
{
	int i, n = lua_gettop(L);
	uint64_t r = kq_checkbits(L, 1);

	for (i = 2; i <= n; i++)
		r &= kq_checkbits(L, i);
	lua_pushinteger(L, (lua_Integer)r);
	return 1;
}
