/*
 * lua_fuzz.c - libFuzzer harness for the Lua side of kq.
 *
 * The binding (csrc/kq_[name].c) and the engine (csrc/engine/[name].c) are compiled
 * into the harness; kq.core is opened with luaopen_kq_core in one Lua
 * state kept for the whole run.  Each input is decoded into random Lua
 * values (nil, booleans, integers at and beyond every C limit, floats,
 * NaN, strings, nested tables, tables with metatables whose __index,
 * __newindex, __len or __gc run code, functions, coroutines, queues open
 * and closed, file handles, views of a kq.eventlist) and into calls of
 * kq.kevent, kq.kqueue, kq.close, kq.fileno, kq.type and the queue's
 * metamethods with those
 * values as arguments (changelists, eventlists, nevents, timeouts).
 *
 * The only acceptable outcomes of a call are a result or a Lua error
 * caught by lua_pcall; sanitizers catch the rest.  Results are checked for
 * shape (an integer count in range, or nil, message, errno).  A call never
 * waits: the timeout of every kevent call made here is forced to 0, and the
 * Lua snippets that call kevent again from a metamethod pass 0 too.  After
 * each input the queues are closed and collected, and the number of open
 * descriptors must be what it was before.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"
#include "../tests/support/fdcount.h"

int luaopen_kq_core(lua_State *L);

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "lua_fuzz: %s:%d: check failed: %s: ",	\
			__FILE__, __LINE__, #cond);			\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)

/* ---- input -------------------------------------------------------------- */

static const uint8_t *in_p;
static size_t in_n;

static uint8_t u8(void)
{
	if (in_n == 0)
		return 0;
	in_n--;
	return *in_p++;
}

/* ---- the Lua state ------------------------------------------------------ */

/* An allocator with a ceiling, so that an argument asking for gigabytes
 * gets a memory error instead of taking the machine. */
static size_t mem_used;
#define MEM_LIMIT ((size_t)256 << 20)

static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	(void)ud;
	if (ptr == NULL)
		osize = 0;
	if (nsize == 0) {
		free(ptr);
		mem_used -= osize;
		return NULL;
	}
	if (nsize > osize && mem_used + (nsize - osize) > MEM_LIMIT)
		return NULL;
	void *p = realloc(ptr, nsize);
	if (p != NULL)
		mem_used += nsize - osize;
	return p;
}

static lua_State *L;
static int fd_pr = -1, fd_pw = -1, fd_sa = -1, fd_sb = -1;

/*
 * Lua functions the generator hands out as values, metamethods and
 * methods.  None blocks: every kevent call passes timeout 0.  Q is the
 * input's queue, P_R, P_W, S_A, S_B real descriptors.
 */
static const char *const snippets[] = {
	"return function(...) return 1 end",
	"return function(...) error('boom') end",
	"return function(...) error(setmetatable({}, {__tostring = function() return 'x' end})) end",
	"return function(...) collectgarbage() return 3 end",
	"return function(t, k) if k == 'ident' then return P_R end ""\n"
	"if k == 'filter' then return -1 end if k == 'flags' then return 1 end end",
	"return function(...) Q:close() return 2 end",
	"return function(...) Q:kevent({{ident = 1, filter = -11, flags = 1}}, {}, 1, 0) return 0 end",
	"return function(...) return Q:kevent(nil, {}, 8, 0) end",
	"return function() return math.maxinteger end",
	"return function() return -1 end",
	"return function() return 2^53 end",
	"return function() return 0/0 end",
	"return function() local t = {} for i = 1, 200 do t[i] = {i} end return t end",
	"return function(...) coroutine.yield(1) end",
	"return function(t) if type(t) == 'table' then setmetatable(t, nil) end end",
	"return function(...) local q = kq.kqueue() return q and q:fileno() end",
	"return function(t, k, v) rawset(t, k, v) end",
	"return function(...) return S_A end",
	"return function(...) return 'str' end",
	"return function(t) if type(t) == 'table' then for k in pairs(t) do t[k] = nil end end end",
	"return function(...) kq.close(Q) collectgarbage() return 5 end",
	"return function(...) return Q:kevent({{ident = P_R, filter = -1, flags = 2}}, nil, 0, 0) end",
};
#define NSNIP (sizeof snippets / sizeof snippets[0])
static int snip_ref[NSNIP];

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	L = lua_newstate(l_alloc, NULL);
	CHECK(L != NULL, "lua_newstate");
	luaL_openlibs(L);
	luaL_requiref(L, "kq.core", luaopen_kq_core, 0);
	lua_setglobal(L, "kq");
	int sv[2];
	CHECK(pipe2(sv, O_CLOEXEC | O_NONBLOCK) == 0, "pipe");
	fd_pr = sv[0];
	fd_pw = sv[1];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0,
	      "socketpair");
	fd_sa = sv[0];
	fd_sb = sv[1];
	lua_pushinteger(L, fd_pr);
	lua_setglobal(L, "P_R");
	lua_pushinteger(L, fd_pw);
	lua_setglobal(L, "P_W");
	lua_pushinteger(L, fd_sa);
	lua_setglobal(L, "S_A");
	lua_pushinteger(L, fd_sb);
	lua_setglobal(L, "S_B");
	for (size_t i = 0; i < NSNIP; i++) {
		CHECK(luaL_dostring(L, snippets[i]) == LUA_OK, "snippet %zu: %s", i,
		      lua_tostring(L, -1));
		snip_ref[i] = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	/* A closed file handle and a closed queue, kept for the whole run. */
	CHECK(luaL_dostring(L, "CLOSEDF = io.open('/dev/null') CLOSEDF:close() "
			       "CLOSEDQ = kq.kqueue() CLOSEDQ:close()") == LUA_OK,
	      "%s", lua_tostring(L, -1));

}

/* ---- values ------------------------------------------------------------- */

static const char *const kq_names[] = {
	"EVFILT_READ", "EVFILT_WRITE", "EVFILT_TIMER", "EVFILT_USER", "EVFILT_SIGNAL",
	"EVFILT_PROC", "EVFILT_VNODE", "EVFILT_AIO", "EV_ADD", "EV_DELETE", "EV_ENABLE",
	"EV_DISABLE", "EV_ONESHOT", "EV_CLEAR", "EV_RECEIPT", "EV_DISPATCH", "EV_ERROR",
	"EV_EOF", "NOTE_TRIGGER", "NOTE_FFCOPY", "NOTE_EXIT", "NOTE_SECONDS",
	"NOTE_NSECONDS", "NOTE_ABSTIME", "EV_KEEPUDATA", "EV_FORCEONESHOT",
};
#define NNAMES (sizeof kq_names / sizeof kq_names[0])

static void push_value(int depth);

static void push_int(void)
{
	static const lua_Integer special[] = { LUA_MININTEGER, LUA_MAXINTEGER, INT_MAX,
		(lua_Integer)INT_MAX + 1, UINT32_MAX, (lua_Integer)UINT32_MAX + 1, -1, 65535,
		65536, 32767, -32768, -32769, SHRT_MIN, 1000000000, -2, 0x7fffffffffff };
	uint8_t s = u8();
	if (s & 0x80)
		lua_pushinteger(L, special[s % (sizeof special / sizeof special[0])]);
	else
		lua_pushinteger(L, (lua_Integer)(s % 16) - 3);
}

static void push_float(void)
{
	static const double f[] = { NAN, INFINITY, -INFINITY, 0.5, 1e9, 1e300, -0.0, 9.2e18,
		-1.5, 2147483648.0, 4294967296.0, 1e-9, 0.0, 3.0, -1e300, 0.000001 };
	lua_pushnumber(L, f[u8() % 16]);
}

static void push_string(void)
{
	static const char *const s[] = { "", "x", "5", "0x10", "1e9", "-1", "ident",
		"udata", "data", "\0zero", "nan", "0.5" };
	uint8_t b = u8();
	if (b == 255) {
		char big[5000];
		memset(big, 'a', sizeof big);
		lua_pushlstring(L, big, sizeof big);
		return;
	}
	lua_pushstring(L, s[b % (sizeof s / sizeof s[0])]);
}

static void push_snippet(void)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, snip_ref[u8() % NSNIP]);
}

static void push_ident(void)
{
	uint8_t b = u8();
	switch (b % 8) {
	case 0: lua_pushinteger(L, fd_pr); break;
	case 1: lua_pushinteger(L, fd_pw); break;
	case 2: lua_pushinteger(L, fd_sa); break;
	case 3: lua_pushinteger(L, fd_sb); break;
	case 4: lua_getglobal(L, "Q"); break;     /* a queue as ident: its fileno */
	case 5: lua_getglobal(L, "io"); lua_getfield(L, -1, "stdout"); lua_remove(L, -2); break;
	default: push_int(); break;
	}
}

static void push_const(void)
{
	lua_getglobal(L, "kq");
	lua_getfield(L, -1, kq_names[u8() % NNAMES]);
	lua_remove(L, -2);
}

/* A change table, biased towards well-formed ones. */
static void push_change(int depth)
{
	static const char *const fields[] = { "ident", "filter", "flags", "fflags", "data",
		"udata" };
	lua_createtable(L, 0, 6);
	uint8_t mask = u8();
	for (int i = 0; i < 6; i++) {
		if (mask & (1 << i))
			continue; /* absent */
		uint8_t how = u8();
		if (how < 160) {
			switch (i) {
			case 0: push_ident(); break;
			case 1: {
				static const int f[] = { -1, -2, -7, -11, -11, -7, -6, -5, -4, 0,
					-3, -13, -14, -100, 1 };
				lua_pushinteger(L, f[u8() % 15]);
				break;
			}
			case 2: {
				static const int fl[] = { 1, 2, 4, 8, 0, 0x21, 0x11, 0x81, 0x41, 0x9,
					0x100, 0x200, 0x201, 0xc, 0x4001, 0xffff };
				lua_pushinteger(L, fl[u8() % 16]);
				break;
			}
			case 3: {
				static const lua_Integer ff[] = { 0, 0x01000000, 0xc1000001, 0x2,
					0x8, 0x10, 0x80000000, 0x3 };
				lua_pushinteger(L, ff[u8() % 8]);
				break;
			}
			case 4:
				lua_pushinteger(L, (lua_Integer)(u8() % 8));
				break;
			default:
				push_value(depth + 1);
				break;
			}
		} else {
			push_value(depth + 1);
		}
		lua_setfield(L, -2, fields[i]);
	}
}

/* A metatable on the table on top of the stack. */
static void set_metatable(int depth)
{
	static const char *const mm[] = { "__index", "__newindex", "__len", "__gc", "__close",
		"__metatable", "__tostring", "__call", "__mode", "__name" };
	lua_createtable(L, 0, 4);
	uint8_t mask = u8();
	for (int i = 0; i < 10; i++) {
		if (!(mask & (1 << (i % 8))) || (i >= 8 && !(u8() & 1)))
			continue;
		if (i == 8)
			lua_pushstring(L, (u8() & 1) ? "k" : "v");
		else if (u8() & 1)
			push_snippet();
		else
			push_value(depth + 1);
		lua_setfield(L, -2, mm[i]);
	}
	lua_setmetatable(L, -2);
}

static void push_value(int depth)
{
	if (!lua_checkstack(L, 8) || depth > 5) {
		lua_pushnil(L);
		return;
	}
	uint8_t k = u8();
	switch (k % 18) {
	case 0: lua_pushnil(L); break;
	case 1: lua_pushboolean(L, k & 0x80); break;
	case 2: push_int(); break;
	case 3: push_float(); break;
	case 4: push_string(); break;
	case 5: push_const(); break;
	case 6: case 7: push_change(depth); break;
	case 8: case 9: { /* a sequence, maybe with holes */
		int n = u8() % 6;
		lua_createtable(L, n, 0);
		for (int i = 1; i <= n; i++) {
			push_value(depth + 1);
			lua_rawseti(L, -2, i + ((k & 0x40) && i > 2 ? 3 : 0));
		}
		if (k & 0x20)
			set_metatable(depth);
		break;
	}
	case 10: { /* a change list of change tables */
		int n = 1 + u8() % 4;
		lua_createtable(L, n, 0);
		for (int i = 1; i <= n; i++) {
			push_change(depth + 1);
			if (u8() & 1)
				set_metatable(depth + 1);
			lua_rawseti(L, -2, i);
		}
		break;
	}
	case 11: /* an empty table with a metatable: a read-only proxy and friends */
		lua_newtable(L);
		set_metatable(depth);
		break;
	case 12: push_snippet(); break;
	case 13: /* the queue, or a view of the kept eventlist (or nil) */
		if (k & 0x80) {
			lua_getglobal(L, "EVL");
			lua_rawgeti(L, -1, 1 + (k & 3));
			lua_remove(L, -2);
		} else {
			lua_getglobal(L, "Q");
		}
		break;
	case 14: lua_getglobal(L, (k & 0x80) ? "CLOSEDQ" : "CLOSEDF"); break;
	case 15: lua_newthread(L); break;
	case 16: lua_pushlightuserdata(L, (void *)(uintptr_t)u8()); break;
	default: push_ident(); break;
	}
}

/* ---- calls -------------------------------------------------------------- */

/* The timeout argument at index idx: anything that could make a wait is
 * replaced by 0; bad values (negative, NaN, non-numbers) are kept. */
static void clamp_timeout(int idx)
{
	idx = lua_absindex(L, idx);
	if (lua_isnil(L, idx)) {
		lua_pushinteger(L, 0);
		lua_replace(L, idx);
		return;
	}
	int isnum;
	lua_Number t = lua_tonumberx(L, idx, &isnum);
	if (isnum && t > 0) {
		lua_pushinteger(L, 0);
		lua_replace(L, idx);
	}
}

/* What kq.kevent returned: n in [0, nevents], or nil, message, errno. */
static void check_kevent_results(int base, lua_Integer nevents_cap)
{
	int nres = lua_gettop(L) - base;
	CHECK(nres >= 1, "no result");
	if (lua_isinteger(L, base + 1)) {
		lua_Integer n = lua_tointeger(L, base + 1);
		CHECK(n >= 0 && (nevents_cap < 0 || n <= nevents_cap), "count %lld of %lld",
		      (long long)n, (long long)nevents_cap);
	} else {
		CHECK(lua_isnil(L, base + 1) && nres == 3 && lua_type(L, base + 2) == LUA_TSTRING &&
		      lua_isinteger(L, base + 3),
		      "result shape: %s", luaL_typename(L, base + 1));
	}
}

static void call_kevent(void)
{
	int base = lua_gettop(L);
	lua_getglobal(L, "kq");
	lua_getfield(L, -1, "kevent");
	lua_remove(L, -2);
	uint8_t shape = u8();
	/* self: usually the queue */
	if (shape & 1)
		push_value(0);
	else
		lua_getglobal(L, "Q");
	/* changelist */
	if (shape & 2)
		push_value(0);
	else
		push_value(1) /* still random, from one level down */;
	/* eventlist: a plain table, the kept kq.eventlist(), a fresh one */
	if (shape & 4) {
		switch (u8() % 3) {
		case 0: lua_newtable(L); break;
		case 1: lua_getglobal(L, "EVL"); break;
		default:
			lua_getglobal(L, "kq");
			lua_getfield(L, -1, "eventlist");
			lua_remove(L, -2);
			if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
				lua_pop(L, 1);
				lua_pushnil(L);
			}
			break;
		}
	} else {
		push_value(0);
	}
	/* nevents */
	lua_Integer cap = -1;
	if (shape & 8) {
		static const lua_Integer nv[] = { 0, 1, 2, 8, 1000000000, LUA_MAXINTEGER, -1, 4096,
			4097 };
		cap = nv[u8() % 9];
		lua_pushinteger(L, cap);
	} else {
		push_value(0);
		if (lua_isinteger(L, -1))
			cap = lua_tointeger(L, -1);
		else if (lua_type(L, -1) == LUA_TNUMBER)
			cap = -1; /* a float with an integer value is accepted too */
	}
	/* timeout */
	push_value(0);
	clamp_timeout(-1);
	/* Sometimes fewer arguments; never 4, which would leave the timeout
	 * out (nil: wait forever) after nevents. */
	int nargs = (shape & 0x20) ? 3 - (shape >> 6) % 3 : 5;
	lua_settop(L, base + 1 + nargs);
	/* A float nevents like 2.0 counts too: take the cap from the value. */
	if (nargs >= 4 && lua_type(L, base + 5) == LUA_TNUMBER) {
		lua_Number v = lua_tonumber(L, base + 5);
		cap = v >= 0 && v < 9.2e18 ? (lua_Integer)v : -1;
	}
	int st = lua_pcall(L, nargs, LUA_MULTRET, 0);
	if (st == LUA_OK)
		check_kevent_results(base, cap);
	else
		CHECK(st == LUA_ERRRUN || st == LUA_ERRMEM, "pcall status %d", st);
	lua_settop(L, base);
}

static void call_other(void)
{
	static const char *const fns[] = { "kqueue", "close", "fileno", "getfd", "type" };
	int base = lua_gettop(L);
	uint8_t s = u8();
	lua_getglobal(L, "kq");
	lua_getfield(L, -1, fns[s % 5]);
	lua_remove(L, -2);
	int nargs = (s >> 3) % 3;
	for (int i = 0; i < nargs; i++)
		push_value(0);
	int st = lua_pcall(L, nargs, LUA_MULTRET, 0);
	CHECK(st == LUA_OK || st == LUA_ERRRUN || st == LUA_ERRMEM, "pcall status %d", st);
	if (st == LUA_OK && s % 5 == 0 && lua_gettop(L) > base) {
		/* kq.kqueue(): keep the new queue as Q now and then */
		if ((s & 0x80) && lua_type(L, base + 1) == LUA_TUSERDATA) {
			lua_pushvalue(L, base + 1);
			lua_setglobal(L, "Q");
		}
	}
	lua_settop(L, base);
}

static void call_meta(void)
{
	/* tostring(Q), Q's __close and __gc by hand, with odd self values */
	static const char *const code[] = {
		"return tostring(Q)",
		"local m = getmetatable(Q) return m.__close(Q)",
		"local m = getmetatable(Q) return m.__gc(Q)",
		"local m = getmetatable(Q) return m.__gc(...)",
		"local m = getmetatable(Q) return m.__tostring(...)",
		"return kq.type(...)",
		"return Q.kevent(...)",
	};
	int base = lua_gettop(L);
	uint8_t s = u8();
	int k = s % 7;
	if (luaL_loadstring(L, code[k]) != LUA_OK)
		CHECK(0, "%s", lua_tostring(L, -1));
	int nargs = k >= 3 ? 1 + (s >> 4) % 3 : 0;
	for (int i = 0; i < nargs; i++)
		push_value(0);
	if (k == 6 && nargs >= 1) {
		/* Q.kevent(a, b, c): the fourth and fifth arguments absent, so
		 * nevents is 0 or an error, and nothing waits. */
	}
	int st = lua_pcall(L, nargs, LUA_MULTRET, 0);
	CHECK(st == LUA_OK || st == LUA_ERRRUN || st == LUA_ERRMEM, "pcall status %d", st);
	lua_settop(L, base);
}

static void make_events(void)
{
	uint8_t s = u8();
	char buf[64];
	memset(buf, 'e', sizeof buf);
	ssize_t r;
	switch (s % 4) {
	case 0: r = write(fd_pw, buf, 1 + s % 32); break;
	case 1: r = write(fd_sb, buf, 1 + s % 32); break;
	case 2: r = read(fd_pr, buf, sizeof buf); break;
	default: r = read(fd_sa, buf, sizeof buf); break;
	}
	(void)r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (L == NULL)
		setup();
	in_p = data;
	in_n = size;
	int before = kq_fdcount();
	/* EVL: an eventlist of views kept for the whole input, so that its
	 * shadows see every kind of entry, queue and udata in turn (per input,
	 * not per run: what it holds must go with the input). */
	CHECK(luaL_dostring(L, "Q = kq.kqueue() EVL = kq.eventlist()") == LUA_OK, "%s",
	      lua_tostring(L, -1));
	for (int steps = 0; in_n > 0 && steps < 64; steps++) {
		switch (u8() % 8) {
		case 0: case 1: case 2: case 3: call_kevent(); break;
		case 4: call_other(); break;
		case 5: call_meta(); break;
		case 6: make_events(); break;
		default: lua_gc(L, LUA_GCCOLLECT); break;
		}
		CHECK(lua_gettop(L) == 0, "stack left with %d values", lua_gettop(L));
	}
	/* Close the queue, drop every value made, collect. */
	CHECK(luaL_dostring(L, "if kq.type(Q) == 'kqueue' then Q:close() end Q = nil EVL = nil") ==
		      LUA_OK,
	      "%s", lua_tostring(L, -1));
	lua_settop(L, 0);
	lua_gc(L, LUA_GCCOLLECT);
	lua_gc(L, LUA_GCCOLLECT);
	/* Drain what was written, so that the next input starts clean. */
	char buf[4096];
	while (read(fd_pr, buf, sizeof buf) > 0) {
	}
	while (read(fd_sa, buf, sizeof buf) > 0) {
	}
	int after = kq_fdcount();
	CHECK(before == after, "descriptors: %d before, %d after", before, after);
	return 0;
}
