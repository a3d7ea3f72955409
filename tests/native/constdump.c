/*
 * constdump.c - for tests/native/headers_spec.lua: a Lua module holding
 * exactly what csrc/kq_constants.c exports when compiled here against one
 * system's stand-in <sys/event.h> (tests/native/<system>/), so the values
 * can be compared with tests/native/constants.txt.
 */
#include "kq_binding.h"

__attribute__((visibility("default"))) int luaopen_kqconstdump(lua_State *L);

__attribute__((visibility("default"))) int luaopen_kqconstdump(lua_State *L)
{
	lua_newtable(L);
	kq_constants_open(L);
	return 1;
}
