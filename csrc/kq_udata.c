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

/* Pass 2: a fresh token for every kept change (see the file comment):
 * a luaL_ref for a udata, -(j + 1) for a nil one. */
void kq_udata_anchor(struct kq_call *c, size_t n)
{
	lua_State *L = c->L;
	size_t j;

	for (j = 0; j < n; j++) {
		intptr_t idx, token;

		kq_guard(c);
		idx = (intptr_t)c->q->buf[j].udata;
		/* A nil udata seen by kq_fastchange stays nil unless Lua code
		 * ran since (it runs only on the general path). */
		if (idx < 0 && !c->ranlua) {
			c->q->buf[j].udata = KQ_UDATA(-(intptr_t)(j + 1));
			continue;
		}
		if (idx < 0)
			idx = -idx;
		lua_rawgeti(L, c->changes, (lua_Integer)idx);
		kq_pushkey(L, KQ_UV_UDATA);
		if (lua_gettable(L, -2) == LUA_TNIL) {
			token = -(intptr_t)(j + 1);
			lua_pop(L, 2);
		} else {
			token = luaL_ref(L, c->values);
			lua_pop(L, 1);
		}
		kq_guard(c);
		c->q->buf[j].udata = KQ_UDATA(token);
	}
}

/* Release an anchor; tokens <= 0 (nil udata, KQ_NILKNOTE) have none. */
void kq_udata_release(struct kq_call *c, lua_Integer token)
{
	if (token > 0)
		luaL_unref(c->L, c->values, (int)token);
}

/* Push values[token] and return its slot, for kq_entry_put; 0 and nothing
 * pushed for a nil udata (token <= 0). */
int kq_udata_push(struct kq_call *c, lua_Integer token)
{
	if (token <= 0)
		return 0;
	lua_rawgeti(c->L, c->values, token);
	return lua_gettop(c->L);
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
	for (; from < n; from++) {
		kq_guard(c);
		kq_udata_release(c, kq_udata_token(&c->q->buf[from]));
	}
}
