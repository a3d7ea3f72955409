/*
 * kq_core.c - the opener of kq.core: the library table, the kq.queue
 * metatable, the constants, _VERSION and backend.
 */
#include "kq_binding.h"

static const luaL_Reg kq_funcs[] = {
	{"kqueue", kq_kqueue},
	{"close", kq_close},
	{"fileno", kq_fileno},
	/* luasocket's socket.select duck-types on getfd. */
	{"getfd", kq_fileno},
	{"type", kq_type},
	{"eventlist", kq_eventlist},
	{"bor", kq_bor},
	{"band", kq_band},
	{NULL, NULL}
};

/* Declared first to keep -Wmissing-prototypes quiet (LPeg does the same);
 * default visibility because the build hides everything else and
 * LUAMOD_API is plain extern in 5.4. */
__attribute__((visibility("default"))) int luaopen_kq_core(lua_State *L);

__attribute__((visibility("default"))) int luaopen_kq_core(lua_State *L)
{
	kq_fork_init();
	luaL_newlib(L, kq_funcs); /* checks the Lua core and number types */
	kq_queue_open(L);
	kq_kevent_open(L); /* kevent, with its upvalues */
	kq_constants_open(L);
	lua_pushliteral(L, KQ_VERSION);
	lua_setfield(L, -2, "_VERSION");
	lua_pushliteral(L, KQ_BACKEND);
	lua_setfield(L, -2, "backend");
	return 1;
}
