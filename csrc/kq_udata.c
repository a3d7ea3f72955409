/*
 * kq_udata.c - udata.  A kevent udata is a pointer, a Lua value is not, so
 * the queue's user values 1 and 2 hold two tables:
 *   values   a luaL_ref table: token -> the Lua value of one change's udata;
 *   mirror   mirror[filter][ident] = token of that knote's current udata,
 *            or `true` for a knote whose udata is nil.
 * Every submitted change gets a fresh token, passed to the kernel as the
 * udata pointer, and an event's udata is values[token].  A change with a
 * nil udata needs no anchor: its token is -(its position in the call), so
 * tokens stay unique within a call (kq_kevent.c matches error entries by
 * them) without a luaL_ref, and any token <= 0 reads as nil.  The mirror
 * tells which token to release when a knote goes (EV_DELETE, an EV_ONESHOT
 * delivery, a udata replaced by a modify, a failed change, the queue
 * closed), so a value stays alive exactly as long as its knote; it also
 * records every knote with a nil udata (`true`), because EV_ADD|EV_DELETE
 * needs to know whether the knote existed.
 *
 * One name per job: kq_udata_anchor makes tokens, kq_udata_release drops
 * one, kq_udata_push reads one back; kq_knote_token / kq_knote_settoken
 * read and write the mirror; kq_udata_applied, kq_udata_failed,
 * kq_udata_unsubmitted and kq_udata_delivered say what became of a change
 * or an event.
 */
#include <errno.h>
#include <stdint.h>

#include "kq_kevent.h"

static int kq_knote_sub(struct kq_call *c, short filter, int create);

/* The protected part of kq_udata_anchor: arguments values, pending, and
 * the call as a light userdata.  luaL_ref runs no Lua code; it can only
 * fail for memory, which the caller then cleans up after. */
static int kq_udata_anchor_refs(lua_State *L)
{
	struct kq_call *c = (struct kq_call *)lua_touserdata(L, 3);
	size_t j;

	for (j = c->anchored; j < c->nanchor; j++) {
		intptr_t token = -(intptr_t)(j + 1);

		if ((intptr_t)c->buf[j].udata == 1) {
			lua_rawgeti(L, 2, (lua_Integer)(j + 1));
			token = luaL_ref(L, 1);
		}
		c->buf[j].udata = KQ_UDATA(token);
		c->anchored = j + 1;
	}
	return 0;
}

/*
 * Pass 2: a fresh token for each of the n changes read (see the file
 * comment): a luaL_ref for a udata, -(j + 1) for a nil one.  First the
 * mirror's table of every filter in the list is made, the last time this
 * call can run Lua code before the kernel hears of it; then the tokens,
 * which run none.  A memory error while making them releases those made
 * and raises: nothing was applied, nothing stays anchored.
 */
void kq_udata_anchor(struct kq_call *c, size_t n)
{
	lua_State *L = c->L;
	size_t j;
	int status;

	for (j = 0; j < n; j++)
		(void)kq_knote_sub(c, c->buf[j].filter, 1);
	c->anchored = 0;
	c->nanchor = n;
	if (lua_isnil(L, c->pending)) { /* no udata at all: no luaL_ref */
		for (j = 0; j < n; j++)
			c->buf[j].udata = KQ_UDATA(-(intptr_t)(j + 1));
		c->anchored = n;
		return;
	}
	lua_pushcfunction(L, kq_udata_anchor_refs);
	lua_pushvalue(L, c->values);
	lua_pushvalue(L, c->pending);
	lua_pushlightuserdata(L, c);
	status = lua_pcall(L, 3, 0, 0);
	if (status != 0) {
		for (j = 0; j < c->anchored; j++)
			kq_udata_release(c, kq_udata_token(&c->buf[j]));
		lua_error(L);
	}
}

/* Release an anchor; tokens <= 0 (nil udata, KQ_NILKNOTE) have none. */
void kq_udata_release(struct kq_call *c, lua_Integer token)
{
	if (token > 0)
		luaL_unref(c->L, c->values, (int)token);
}

/* Push values[token], nil for a nil udata (token <= 0).  Runs no Lua code
 * (the caller has room on the stack). */
void kq_udata_push(struct kq_call *c, lua_Integer token)
{
	if (token <= 0)
		lua_pushnil(c->L);
	else
		lua_rawgeti(c->L, c->values, token);
}

/* Make slot c->msub hold mirror[filter] (created when `create`) or nil;
 * returns whether it is a table.  The last filter's table is kept for the
 * call: mirror[filter] is only ever set when missing. */
static int kq_knote_sub(struct kq_call *c, short filter, int create)
{
	lua_State *L = c->L;

	if (!c->msubok || c->msubfilter != filter) {
		lua_rawgeti(L, c->mirror, filter);
		lua_replace(L, c->msub);
		c->msubok = 1;
		c->msubfilter = filter;
	}
	if (lua_type(L, c->msub) == LUA_TTABLE)
		return 1;
	if (!create)
		return 0;
	lua_newtable(L);
	lua_pushvalue(L, -1);
	lua_rawseti(L, c->mirror, filter);
	lua_replace(L, c->msub);
	return 1;
}

/* What mirror[filter][ident] holds: a token, KQ_NILKNOTE for a knote with
 * a nil udata, 0 for none. */
static lua_Integer kq_knote_token(struct kq_call *c, const struct kevent *ev)
{
	lua_State *L = c->L;
	lua_Integer token = 0;
	int tt;

	if (!kq_knote_sub(c, ev->filter, 0))
		return 0;
	tt = lua_rawgeti(L, c->msub, (lua_Integer)ev->ident);
	if (tt == LUA_TNUMBER)
		token = lua_tointeger(L, -1);
	else if (tt != LUA_TNIL)
		token = KQ_NILKNOTE;
	lua_pop(L, 1);
	return token;
}

/* Set mirror[filter][ident]: a token > 0, KQ_NILKNOTE, or 0 (none). */
static void kq_knote_settoken(struct kq_call *c, const struct kevent *ev,
			 lua_Integer token)
{
	lua_State *L = c->L;

	if (!kq_knote_sub(c, ev->filter, token != 0))
		return;
	if (token > 0)
		lua_pushinteger(L, token);
	else if (token == KQ_NILKNOTE)
		lua_pushboolean(L, 1);
	else
		lua_pushnil(L);
	lua_rawseti(L, c->msub, (lua_Integer)ev->ident);
}

/* A change `ch` that the kernel applied. */
void kq_udata_applied(struct kq_call *c, const struct kevent *ch)
{
	lua_Integer old = kq_knote_token(c, ch);
	lua_Integer token = kq_udata_token(ch);
	unsigned short fl = ch->flags;
	/* EV_ADD|EV_DELETE deletes an existing knote and adds a missing one
	 * (FreeBSD kqueue_register). */
	int deleted = (fl & EV_DELETE) && (!(fl & EV_ADD) || old != 0);

	/* No filter is 0 here: FreeBSD and the engine skip the change
	 * without a word (kq_sys.h), others fail it; no knote to anchor. */
	if (KQ_SYS_FILTER0_SKIPPED && ch->filter == 0) {
		kq_udata_release(c, token);
		return;
	}
	if (deleted) {
		if (old != 0)
			kq_knote_settoken(c, ch, 0);
		kq_udata_release(c, old);
		kq_udata_release(c, token);
	} else if ((fl & KQ_EV_KEEPUDATA) && !(fl & EV_ADD)) {
		/* the knote keeps its udata (0 where there is no such flag) */
		kq_udata_release(c, token);
	} else {
		/* A new knote, or a modify: udata replaced, even by nil. */
		if (token > 0)
			kq_knote_settoken(c, ch, token);
		else if (old != KQ_NILKNOTE)
			kq_knote_settoken(c, ch, KQ_NILKNOTE);
		kq_udata_release(c, old);
	}
}

/* A change `ch` that failed with errno `en`. */
void kq_udata_failed(struct kq_call *c, const struct kevent *ch, int64_t en)
{
	/* ENOENT on a change that could not create the knote proves there is
	 * none: forget an anchor left by a knote that went silently (closing
	 * its descriptor on the BSDs). */
	if (en == ENOENT && !(ch->flags & EV_ADD)) {
		lua_Integer old = kq_knote_token(c, ch);
		if (old != 0) {
			kq_knote_settoken(c, ch, 0);
			kq_udata_release(c, old);
		}
	}
	kq_udata_release(c, kq_udata_token(ch));
}

/* An event delivered: with EV_ONESHOT the knote went with the delivery, so
 * drop its anchor, but only the one the mirror holds, never a token twice
 * (a nil udata has the mark KQ_NILKNOTE there).  The caller has pushed
 * the value first (kq_udata_push). */
void kq_udata_delivered(struct kq_call *c, const struct kevent *ev)
{
	lua_Integer token = kq_udata_token(ev), m;

	if (!(ev->flags & EV_ONESHOT))
		return;
	m = kq_knote_token(c, ev);
	if (token > 0 ? m == token : m == KQ_NILKNOTE) {
		kq_knote_settoken(c, ev, 0);
		kq_udata_release(c, token);
	}
}

/* Release the tokens of changes [from, n) of the buffer that were never
 * submitted. */
void kq_udata_unsubmitted(struct kq_call *c, size_t from, size_t n)
{
	for (; from < n; from++)
		kq_udata_release(c, kq_udata_token(&c->buf[from]));
}
