/*
 * kq_constants.c - EVFILT_*, EV_* and NOTE_* as integers under their C
 * names, so the man pages apply unchanged.
 *
 * Each entry sits inside #ifdef: a constant the platform lacks is absent
 * (nil in Lua), never a stand-in such as 0, so callers can tell
 * "unsupported" from "no bits" (luaposix's fcntl.c shows the trap).  The
 * name is stringified from the macro itself and cannot drift.  NOTE_*
 * values overlap across filters; reverse maps live in lua/kq/init.lua,
 * one per filter.
 */
#include "kq_binding.h"

#define KQ_CONST(name) { #name, (lua_Integer)(name) }

static const struct kq_const {
	const char *name;
	lua_Integer value;
} kq_constants[] = {
#ifdef EVFILT_READ
	KQ_CONST(EVFILT_READ),
#endif
#ifdef EVFILT_WRITE
	KQ_CONST(EVFILT_WRITE),
#endif
#ifdef EVFILT_AIO
	KQ_CONST(EVFILT_AIO),
#endif
#ifdef EVFILT_VNODE
	KQ_CONST(EVFILT_VNODE),
#endif
#ifdef EVFILT_PROC
	KQ_CONST(EVFILT_PROC),
#endif
#ifdef EVFILT_SIGNAL
	KQ_CONST(EVFILT_SIGNAL),
#endif
#ifdef EVFILT_TIMER
	KQ_CONST(EVFILT_TIMER),
#endif
#ifdef EVFILT_PROCDESC
	KQ_CONST(EVFILT_PROCDESC),
#endif
#ifdef EVFILT_FS
	KQ_CONST(EVFILT_FS),
#endif
#ifdef EVFILT_LIO
	KQ_CONST(EVFILT_LIO),
#endif
#ifdef EVFILT_USER
	KQ_CONST(EVFILT_USER),
#endif
#ifdef EVFILT_SENDFILE
	KQ_CONST(EVFILT_SENDFILE),
#endif
#ifdef EVFILT_EMPTY
	KQ_CONST(EVFILT_EMPTY),
#endif
#ifdef EVFILT_SYSCOUNT
	KQ_CONST(EVFILT_SYSCOUNT),
#endif
#ifdef EV_ADD
	KQ_CONST(EV_ADD),
#endif
#ifdef EV_DELETE
	KQ_CONST(EV_DELETE),
#endif
#ifdef EV_ENABLE
	KQ_CONST(EV_ENABLE),
#endif
#ifdef EV_DISABLE
	KQ_CONST(EV_DISABLE),
#endif
#ifdef EV_FORCEONESHOT
	KQ_CONST(EV_FORCEONESHOT),
#endif
#ifdef EV_KEEPUDATA
	KQ_CONST(EV_KEEPUDATA),
#endif
#ifdef EV_ONESHOT
	KQ_CONST(EV_ONESHOT),
#endif
#ifdef EV_CLEAR
	KQ_CONST(EV_CLEAR),
#endif
#ifdef EV_RECEIPT
	KQ_CONST(EV_RECEIPT),
#endif
#ifdef EV_DISPATCH
	KQ_CONST(EV_DISPATCH),
#endif
#ifdef EV_SYSFLAGS
	KQ_CONST(EV_SYSFLAGS),
#endif
#ifdef EV_DROP
	KQ_CONST(EV_DROP),
#endif
#ifdef EV_FLAG1
	KQ_CONST(EV_FLAG1),
#endif
#ifdef EV_EOF
	KQ_CONST(EV_EOF),
#endif
#ifdef EV_ERROR
	KQ_CONST(EV_ERROR),
#endif
#ifdef NOTE_LOWAT
	KQ_CONST(NOTE_LOWAT),
#endif
#ifdef NOTE_FILE_POLL
	KQ_CONST(NOTE_FILE_POLL),
#endif
#ifdef NOTE_FFNOP
	KQ_CONST(NOTE_FFNOP),
#endif
#ifdef NOTE_FFAND
	KQ_CONST(NOTE_FFAND),
#endif
#ifdef NOTE_FFOR
	KQ_CONST(NOTE_FFOR),
#endif
#ifdef NOTE_FFCOPY
	KQ_CONST(NOTE_FFCOPY),
#endif
#ifdef NOTE_FFCTRLMASK
	KQ_CONST(NOTE_FFCTRLMASK),
#endif
#ifdef NOTE_FFLAGSMASK
	KQ_CONST(NOTE_FFLAGSMASK),
#endif
#ifdef NOTE_TRIGGER
	KQ_CONST(NOTE_TRIGGER),
#endif
#ifdef NOTE_DELETE
	KQ_CONST(NOTE_DELETE),
#endif
#ifdef NOTE_WRITE
	KQ_CONST(NOTE_WRITE),
#endif
#ifdef NOTE_EXTEND
	KQ_CONST(NOTE_EXTEND),
#endif
#ifdef NOTE_ATTRIB
	KQ_CONST(NOTE_ATTRIB),
#endif
#ifdef NOTE_LINK
	KQ_CONST(NOTE_LINK),
#endif
#ifdef NOTE_RENAME
	KQ_CONST(NOTE_RENAME),
#endif
#ifdef NOTE_REVOKE
	KQ_CONST(NOTE_REVOKE),
#endif
#ifdef NOTE_OPEN
	KQ_CONST(NOTE_OPEN),
#endif
#ifdef NOTE_CLOSE
	KQ_CONST(NOTE_CLOSE),
#endif
#ifdef NOTE_CLOSE_WRITE
	KQ_CONST(NOTE_CLOSE_WRITE),
#endif
#ifdef NOTE_READ
	KQ_CONST(NOTE_READ),
#endif
#ifdef NOTE_EXIT
	KQ_CONST(NOTE_EXIT),
#endif
#ifdef NOTE_FORK
	KQ_CONST(NOTE_FORK),
#endif
#ifdef NOTE_EXEC
	KQ_CONST(NOTE_EXEC),
#endif
#ifdef NOTE_PCTRLMASK
	KQ_CONST(NOTE_PCTRLMASK),
#endif
#ifdef NOTE_PDATAMASK
	KQ_CONST(NOTE_PDATAMASK),
#endif
#ifdef NOTE_TRACK
	KQ_CONST(NOTE_TRACK),
#endif
#ifdef NOTE_TRACKERR
	KQ_CONST(NOTE_TRACKERR),
#endif
#ifdef NOTE_CHILD
	KQ_CONST(NOTE_CHILD),
#endif
#ifdef NOTE_SECONDS
	KQ_CONST(NOTE_SECONDS),
#endif
#ifdef NOTE_MSECONDS
	KQ_CONST(NOTE_MSECONDS),
#endif
#ifdef NOTE_USECONDS
	KQ_CONST(NOTE_USECONDS),
#endif
#ifdef NOTE_NSECONDS
	KQ_CONST(NOTE_NSECONDS),
#endif
#ifdef NOTE_ABSTIME
	KQ_CONST(NOTE_ABSTIME),
#endif
	{NULL, 0}
};

/* Set every constant on the table on top of the stack. */
void kq_constants_open(lua_State *L)
{
	const struct kq_const *c;

	for (c = kq_constants; c->name != NULL; c++) {
		lua_pushinteger(L, c->value);
		lua_setfield(L, -2, c->name);
	}
}
