/*
 * benchutil.c - the few system calls the Lua benchmarks need, identical for
 * every Lua contender (kq, luv, cqueues) so that none of them measures with
 * another's helpers: a monotonic clock, the process CPU clock, socketpairs, a byte written, the
 * open-descriptor count, RLIMIT_NOFILE, malloc's in-use byte count, and the
 * connection-churn scenario's listener, accept, request/answer and client
 * (churn.h).  Built for each Lua version (bench/Makefile).
 * Built as bench/build/benchutil.so; never installed.
 */
#include <errno.h>
#include <malloc.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include "../tests/support/fdcount.h"
#include "churn.h"

/* Lua 5.1 and LuaJIT: integers travel as doubles (exact below 2^53, which
 * every value here is). */
#if LUA_VERSION_NUM < 502
#ifndef luaL_newlib
#define luaL_newlib(L, l) (lua_newtable(L), luaL_register((L), NULL, (l)))
#endif
#define luaL_len(L, i) ((lua_Integer)lua_objlen((L), (i)))
#endif

/* now() -> CLOCK_MONOTONIC in ns, an integer. */
static int bu_now(lua_State *L)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000000000 + ts.tv_nsec);
	return 1;
}

/* cputime() -> CLOCK_PROCESS_CPUTIME_ID in ns (user + system). */
static int bu_cputime(lua_State *L)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000000000 + ts.tv_nsec);
	return 1;
}

/* socketpairs(n) -> {a1, b1, a2, b2, ...}: n AF_UNIX stream pairs. */
static int bu_socketpairs(lua_State *L)
{
	lua_Integer n = luaL_checkinteger(L, 1);
	lua_createtable(L, (int)(2 * n), 0);
	for (lua_Integer i = 0; i < n; i++) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			return luaL_error(L, "socketpair #%d: %s", (int)i + 1, strerror(errno));
		lua_pushinteger(L, sv[0]);
		lua_rawseti(L, -2, 2 * i + 1);
		lua_pushinteger(L, sv[1]);
		lua_rawseti(L, -2, 2 * i + 2);
	}
	return 1;
}

/* write1(fd): one byte, or an error. */
static int bu_write1(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1);
	if (write(fd, "x", 1) != 1)
		return luaL_error(L, "write(%d): %s", fd, strerror(errno));
	return 0;
}

/* closeall({fd, ...}) */
static int bu_closeall(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_Integer n = luaL_len(L, 1);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, 1, i);
		close((int)lua_tointeger(L, -1));
		lua_pop(L, 1);
	}
	return 0;
}

/* fdcount() -> descriptors open in this process (/proc/self/fd). */
static int bu_fdcount(lua_State *L)
{
	int n = kq_fdcount();
	if (n < 0)
		return luaL_error(L, "/proc/self/fd: %s", strerror(errno));
	lua_pushinteger(L, n);
	return 1;
}

/* nofile(n) -> the soft RLIMIT_NOFILE after trying to raise it to n (the
 * hard limit too when allowed). */
static int bu_nofile(lua_State *L)
{
	rlim_t want = (rlim_t)luaL_checkinteger(L, 1);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < want) {
		struct rlimit nr = { want, rl.rlim_max > want ? rl.rlim_max : want };
		if (setrlimit(RLIMIT_NOFILE, &nr) < 0) {
			nr.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
			nr.rlim_max = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &nr);
		}
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	lua_pushinteger(L, (lua_Integer)rl.rlim_cur);
	return 1;
}

/* malloc_used() -> bytes in use in malloc'ed chunks (mallinfo2). */
static int bu_malloc_used(lua_State *L)
{
	struct mallinfo2 mi = mallinfo2();
	lua_pushinteger(L, (lua_Integer)(mi.uordblks + mi.hblkhd));
	return 1;
}

/* listen() -> fd, port: a nonblocking TCP listener on 127.0.0.1. */
static int bu_listen(lua_State *L)
{
	int port, fd = churn_listen(&port);
	if (fd < 0)
		return luaL_error(L, "listen: %s", strerror(errno));
	lua_pushinteger(L, fd);
	lua_pushinteger(L, port);
	return 2;
}

/* accept(fd) -> a nonblocking connection's fd, or nil when none waits. */
static int bu_accept(lua_State *L)
{
	int fd = accept4((int)luaL_checkinteger(L, 1), NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EAGAIN)
			return 0;
		return luaL_error(L, "accept: %s", strerror(errno));
	}
	lua_pushinteger(L, fd);
	return 1;
}

/* serve(fd) -> true when fd held the churn request and was answered; fd
 * is closed either way (as churn_serve in cbench.c, in one call: the
 * Lua servers differ only in how they wait and register). */
static int bu_serve(lua_State *L)
{
	int fd = (int)luaL_checkinteger(L, 1);
	char buf[256];
	ssize_t r = read(fd, buf, sizeof buf);
	int ok = r == (ssize_t)sizeof CHURN_REQUEST - 1 &&
		 write(fd, CHURN_ANSWER, sizeof CHURN_ANSWER - 1) ==
			 (ssize_t)sizeof CHURN_ANSWER - 1;
	close(fd);
	lua_pushboolean(L, ok);
	return 1;
}

/* churn_client(port) -> pid; stop_client(pid) (churn.h). */
static int bu_churn_client(lua_State *L)
{
	pid_t pid = churn_client_start((int)luaL_checkinteger(L, 1));
	if (pid < 0)
		return luaL_error(L, "fork: %s", strerror(errno));
	lua_pushinteger(L, pid);
	return 1;
}

static int bu_stop_client(lua_State *L)
{
	churn_client_stop((pid_t)luaL_checkinteger(L, 1));
	return 0;
}

/* six_writes(list, n): what a binding writing plain event tables must do
 * at the least, without any kqueue: the six fields of list[1..n] (tables
 * made beforehand) set with lua_rawset from interned keys (upvalues), as
 * kq does (csrc/kq_entry.c).  Scenario 1's bound for a plain eventlist. */
static int bu_six_writes(lua_State *L)
{
	lua_Integer n = luaL_checkinteger(L, 2);
	luaL_checktype(L, 1, LUA_TTABLE);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, 1, (int)i);
		for (int k = 1; k <= 6; k++) {
			lua_pushvalue(L, lua_upvalueindex(k));
			if (k <= 4)
				lua_pushinteger(L, i + k);
			else
				lua_pushnil(L);
			lua_rawset(L, -3);
		}
		lua_pop(L, 1);
	}
	return 0;
}

/* read_change(self, changelist, eventlist, nevents): what a binding must
 * do at the least for a one-change kevent call, without any kqueue: a
 * method call from Lua, and changelist[1]'s five fields read with
 * lua_rawget from interned keys (upvalues).  Scenario 7's bound. */
static int bu_read_change(lua_State *L)
{
	lua_Integer sum = 0;
	lua_rawgeti(L, 2, 1);
	for (int k = 1; k <= 5; k++) {
		lua_pushvalue(L, lua_upvalueindex(k));
		lua_rawget(L, -2);
		sum += lua_tointeger(L, -1);
		lua_pop(L, 1);
	}
	lua_pushinteger(L, sum == -1 ? -1 : 0);
	return 1;
}

static void bu_keyed(lua_State *L, lua_CFunction f, const char *name)
{
	static const char *const keys[] = { "ident", "filter", "flags", "fflags", "data", "udata" };
	for (int k = 0; k < 6; k++)
		lua_pushstring(L, keys[k]);
	lua_pushcclosure(L, f, 6);
	lua_setfield(L, -2, name);
}

static const luaL_Reg bu_funcs[] = {
	{ "listen", bu_listen },
	{ "accept", bu_accept },
	{ "serve", bu_serve },
	{ "churn_client", bu_churn_client },
	{ "stop_client", bu_stop_client },
	{ "now", bu_now },
	{ "cputime", bu_cputime },
	{ "socketpairs", bu_socketpairs },
	{ "write1", bu_write1 },
	{ "closeall", bu_closeall },
	{ "fdcount", bu_fdcount },
	{ "nofile", bu_nofile },
	{ "malloc_used", bu_malloc_used },
	{ NULL, NULL },
};

__attribute__((visibility("default"))) int luaopen_benchutil(lua_State *L);
int luaopen_benchutil(lua_State *L)
{
	luaL_newlib(L, bu_funcs);
	bu_keyed(L, bu_six_writes, "six_writes");
	bu_keyed(L, bu_read_change, "read_change");
	return 1;
}
