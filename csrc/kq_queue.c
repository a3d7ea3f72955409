/*
 * kq_queue.c - the queue handle: kq.kqueue(), close, __gc/__close,
 * __tostring, fileno and kq.type.  Modelled on liolib.c's file handle.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kq_binding.h"

/*
 * A kqueue is not inherited across fork (FreeBSD kqueue_fork.c): in the
 * child every queue must report closed, and the child must never close
 * the old number, which may by now name something else (libuv #1583).
 * Forks move this counter; a queue made in another generation is closed.
 * They are seen through a byte the system zeroes in a fork child
 * (kq_sys.h), or where there is none through pthread_atfork.  It holds no
 * Lua value, so several Lua states (and busted's reloads of the opener)
 * can share it.
 */
static volatile uint64_t kq_generation = 1; /* 64 bits: never wraps */
static volatile unsigned char *kq_alive;    /* 1 here, 0 in a fork child */
static int kq_fork_registered;

static void kq_atfork_child(void)
{
	kq_generation++;
}

/* The generation now.  A fork child is the process's only thread, so the
 * first look there moves the counter and marks the byte again. */
static uint64_t kq_gen(void)
{
	if (kq_alive != NULL && *kq_alive == 0) {
		*kq_alive = 1;
		kq_generation++;
	}
	return kq_generation;
}

/* Called by every run of the opener; sets up once.  Two Lua states
 * opening kq at the same moment in two threads could do it twice, which
 * is harmless: a child then sees the generation move by two.  (No
 * pthread_once: it needs libpthread on older C libraries.) */
void kq_fork_init(void)
{
	if (!kq_fork_registered) {
		kq_fork_registered = 1;
		kq_alive = kq_sys_fork_marker();
		if (kq_alive == NULL)
			(void)pthread_atfork(NULL, NULL, kq_atfork_child);
	}
}

int kq_queue_isopen(const kq_queue *q)
{
	return q->fd >= 0 && q->gen == kq_gen();
}

/* The error triple of section 6 of style.md: fail, "what: strerror", errno.
 * `en` was saved by the caller on the line after the failing call. */
int kq_pusherror(lua_State *L, const char *what, int en)
{
	luaL_pushfail(L);
	lua_pushfstring(L, "%s: %s", what, strerror(en));
	lua_pushinteger(L, en);
	return 3;
}

/* An open queue at `arg`, or raise: misuse raises (as io does), so a
 * closed queue is an error rather than a triple. */
kq_queue *kq_checkqueue(lua_State *L, int arg)
{
	kq_queue *q = (kq_queue *)luaL_checkudata(L, arg, KQ_QUEUE_MT);
	if (!kq_queue_isopen(q))
		luaL_error(L, "attempt to use a closed kqueue");
	return q;
}

/*
 * Close once: mark the handle closed first, so a failed close still leaves
 * it closed, then close the old descriptor.  Never retried on EINTR: on
 * Linux the descriptor is gone either way and a retry could close another
 * one.  In a fork child the descriptor is not ours and is left alone.
 */
static void kq_queue_shut(kq_queue *q)
{
	int fd = q->fd;
	int mine = q->gen == kq_gen();

	q->fd = -1;
	if (fd >= 0 && mine)
		(void)kq_sys_close(fd);
	/* The buffer is user value 3: the collector frees it. */
	q->buf = NULL;
	q->cap = 0;
}

/*
 * A kevent call's own scratch buffer of at least `need` entries: the
 * queue's idle one if big enough, taken (q->buf is NULL until given back,
 * so a nested call on the queue makes its own), else a new one.  Either
 * way the userdata holding it is pushed, so the call's stack keeps it
 * alive whatever happens to the queue meanwhile.  *cap is its size.
 */
struct kevent *kq_buffer_take(lua_State *L, int qarg, kq_queue *q, size_t need,
			      size_t *cap)
{
	struct kevent *b;
	size_t n;

	if (q->buf != NULL && q->cap >= need) {
		b = q->buf;
		*cap = q->cap;
		q->buf = NULL;
		q->cap = 0;
		(void)kq_getiuservalue(L, qarg, 3);
		return b;
	}
	/* Small calls share one size; a need that outgrows the idle buffer
	 * at least doubles it, so a growing need allocates log(n) times. */
	n = need < 64 ? 64 : need;
	if (need > q->cap && n / 2 < q->cap)
		n = q->cap * 2;
	if (n > SIZE_MAX / sizeof *b)
		luaL_error(L, "kevent: too many changes");
	b = (struct kevent *)kq_newuserdatauv(L, n * sizeof *b, 0);
	*cap = n;
	return b;
}

/*
 * The end of a call: its buffer (the userdata at `slot`) becomes the
 * queue's idle one, unless the queue was closed meanwhile or a nested call
 * already left one at least as big.  The user value is set every time: a
 * nested call that took the idle buffer and ended with an error never
 * gave it back, and only the user value keeps a buffer alive.
 */
void kq_buffer_give(lua_State *L, int qarg, kq_queue *q, int slot,
		    struct kevent *buf, size_t cap)
{
	if (!kq_queue_isopen(q) || (q->buf != NULL && q->cap >= cap))
		return;
	lua_pushvalue(L, slot);
	kq_setiuservalue(L, qarg, 3);
	q->buf = buf;
	q->cap = cap;
}

int kq_kqueue(lua_State *L)
{
	kq_queue *q;
	int fd, en, cloexec;

	/* Closed first, metatable set, then the system call: a memory error
	 * can never leave a half-built handle (liolib.c newprefile). */
	q = (kq_queue *)kq_newuserdatauv(L, sizeof *q, KQ_QUEUE_NUV);
	q->fd = -1;
	q->gen = kq_gen();
	q->buf = NULL;
	q->cap = 0;
	luaL_setmetatable(L, KQ_QUEUE_MT);
	/* The udata anchors (kq_udata.c): values, mirror.  User value 3,
	 * the scratch buffer, comes with the first kevent call. */
	lua_newtable(L);
	kq_setiuservalue(L, -2, 1);
	lua_newtable(L);
	kq_setiuservalue(L, -2, 2);

	fd = kq_sys_kqueue_cloexec(&cloexec);
	en = errno;
	if (fd < 0)
		return kq_pusherror(L, "kqueue", en);
	/* Close-on-exec at creation where the system can (kq_sys.h): a fork
	 * and exec in another thread between kqueue() and fcntl() would leak
	 * the queue into the new program.  Elsewhere set after, as FreeBSD's
	 * flua and CPython do.  F_SETFD with FD_CLOEXEC, not F_SETFL
	 * (cqueues' slip). */
	if (!cloexec) {
		int fl = fcntl(fd, F_GETFD);
		if (fl >= 0 && !(fl & FD_CLOEXEC))
			(void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
	}
	/* Leave READ/WRITE data to be computed when a program reads it
	 * (a no-op where the system has no such mode). */
	kq_sys_set_lazy(fd);
	q->fd = fd;
	return 1;
}

/* q:close() / kq.close(q): true; a second close is silent and returns
 * true again (as lfs and cqueues do), pinned by spec/queue_spec.lua. */
int kq_close(lua_State *L)
{
	kq_queue *q = (kq_queue *)luaL_checkudata(L, 1, KQ_QUEUE_MT);
	kq_queue_shut(q);
	/* Drop every udata anchor now rather than at collection. */
	lua_pushnil(L);
	kq_setiuservalue(L, 1, 1);
	lua_pushnil(L);
	kq_setiuservalue(L, 1, 2);
	lua_pushnil(L);
	kq_setiuservalue(L, 1, 3);
	lua_pushboolean(L, 1);
	return 1;
}

/* __gc and __close: must not raise (an error in __close propagates). */
static int kq_gc(lua_State *L)
{
	kq_queue *q = (kq_queue *)luaL_checkudata(L, 1, KQ_QUEUE_MT);
	kq_queue_shut(q);
	return 0;
}

static int kq_tostring(lua_State *L)
{
	kq_queue *q = (kq_queue *)luaL_checkudata(L, 1, KQ_QUEUE_MT);
	if (kq_queue_isopen(q))
		lua_pushfstring(L, "kqueue (fd %d)", q->fd);
	else
		lua_pushliteral(L, "kqueue (closed)");
	return 1;
}

/* q:fileno(): the descriptor, for poll loops and nesting.  From now on the
 * engine keeps it readable while events are pending (kq_sys.h). */
int kq_fileno(lua_State *L)
{
	kq_queue *q = kq_checkqueue(L, 1);
	(void)kq_sys_expose(q->fd);
	lua_pushinteger(L, q->fd);
	return 1;
}

/* kq.type(v): "kqueue", "closed kqueue" or nil, like io.type. */
int kq_type(lua_State *L)
{
	kq_queue *q;

	luaL_checkany(L, 1);
	q = (kq_queue *)luaL_testudata(L, 1, KQ_QUEUE_MT);
	if (q == NULL)
		luaL_pushfail(L);
	else if (kq_queue_isopen(q))
		lua_pushliteral(L, "kqueue");
	else
		lua_pushliteral(L, "closed kqueue");
	return 1;
}

static const luaL_Reg kq_meta[] = {
	{"__gc", kq_gc},
	{"__close", kq_gc},
	{"__tostring", kq_tostring},
	{NULL, NULL}
};

/*
 * Fill the kq.queue metatable, whether it is new or not: busted runs the
 * opener once per spec file against the same registry, and a metatable
 * filled only when luaL_newmetatable reports it new would keep the old
 * library table as __index (cqueues #109, fixed by #112).  Expects the
 * library table on top of the stack; leaves the stack as it was.
 */
void kq_queue_open(lua_State *L)
{
	luaL_newmetatable(L, KQ_QUEUE_MT);
	luaL_setfuncs(L, kq_meta, 0);
	/* luaL_newmetatable sets __name from 5.3 on; 5.1 and 5.2 do not. */
	lua_pushliteral(L, KQ_QUEUE_MT);
	lua_setfield(L, -2, "__name");
	/* The library is the method table, so q:kevent is kq.kevent (LPeg). */
	lua_pushvalue(L, -2);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}
