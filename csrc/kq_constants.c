/*
 * kq_constants.c - EVFILT_*, EV_* and NOTE_* as integers under their C
 * names, so the man pages apply unchanged.
 *
 * Every name any of FreeBSD, macOS, OpenBSD, NetBSD (and the Linux
 * engine) defines is listed, each inside #ifdef: a constant the platform
 * lacks is absent (nil in Lua), never a stand-in such as 0, so callers
 * can tell "unsupported" from "no bits" (luaposix's fcntl.c shows the
 * trap).  The name is stringified from the macro itself and cannot drift;
 * tests/native/constants.txt holds every system's values and
 * `make check-headers` holds this list to it.  NOTE_* values overlap
 * across filters; reverse maps live in lua/kq/init.lua, one per filter.
 *
 * Filters keep their sign (FreeBSD's are negative, NetBSD's count up from
 * 0).  Flags and notes are bits of unsigned fields, so they are exported
 * as non-negative numbers even where a header spells a mask as a
 * negative int (macOS: NOTE_PCTRLMASK is ~NOTE_PDATAMASK).
 */
#include "kq_binding.h"

#define KQ_FILTER(name) { #name, (lua_Integer)(name) }
#define KQ_BITS(name) { #name, (lua_Integer)(unsigned int)(name) }

/* macOS spells NOTE_REAP and NOTE_EXIT_REPARENTED through deprecated
 * enumerators; exporting the number is not using the feature. */
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif

static const struct kq_const {
	const char *name;
	lua_Integer value;
} kq_constants[] = {
#ifdef EVFILT_READ
	KQ_FILTER(EVFILT_READ),
#endif
#ifdef EVFILT_WRITE
	KQ_FILTER(EVFILT_WRITE),
#endif
#ifdef EVFILT_AIO
	KQ_FILTER(EVFILT_AIO),
#endif
#ifdef EVFILT_VNODE
	KQ_FILTER(EVFILT_VNODE),
#endif
#ifdef EVFILT_PROC
	KQ_FILTER(EVFILT_PROC),
#endif
#ifdef EVFILT_SIGNAL
	KQ_FILTER(EVFILT_SIGNAL),
#endif
#ifdef EVFILT_TIMER
	KQ_FILTER(EVFILT_TIMER),
#endif
#ifdef EVFILT_PROCDESC
	KQ_FILTER(EVFILT_PROCDESC),
#endif
#ifdef EVFILT_MACHPORT
	KQ_FILTER(EVFILT_MACHPORT),
#endif
#ifdef EVFILT_DEVICE
	KQ_FILTER(EVFILT_DEVICE),
#endif
#ifdef EVFILT_FS
	KQ_FILTER(EVFILT_FS),
#endif
#ifdef EVFILT_EXCEPT
	KQ_FILTER(EVFILT_EXCEPT),
#endif
#ifdef EVFILT_LIO
	KQ_FILTER(EVFILT_LIO),
#endif
#ifdef EVFILT_USER
	KQ_FILTER(EVFILT_USER),
#endif
#ifdef EVFILT_VM
	KQ_FILTER(EVFILT_VM),
#endif
#ifdef EVFILT_SENDFILE
	KQ_FILTER(EVFILT_SENDFILE),
#endif
#ifdef EVFILT_EMPTY
	KQ_FILTER(EVFILT_EMPTY),
#endif
#ifdef EVFILT_JAIL
	KQ_FILTER(EVFILT_JAIL),
#endif
#ifdef EVFILT_JAILDESC
	KQ_FILTER(EVFILT_JAILDESC),
#endif
#ifdef EVFILT_SYSCOUNT
	KQ_FILTER(EVFILT_SYSCOUNT),
#endif
#ifdef EVFILT_THREADMARKER
	KQ_FILTER(EVFILT_THREADMARKER),
#endif
#ifdef EV_ADD
	KQ_BITS(EV_ADD),
#endif
#ifdef EV_DELETE
	KQ_BITS(EV_DELETE),
#endif
#ifdef EV_ENABLE
	KQ_BITS(EV_ENABLE),
#endif
#ifdef EV_DISABLE
	KQ_BITS(EV_DISABLE),
#endif
#ifdef EV_ONESHOT
	KQ_BITS(EV_ONESHOT),
#endif
#ifdef EV_CLEAR
	KQ_BITS(EV_CLEAR),
#endif
#ifdef EV_RECEIPT
	KQ_BITS(EV_RECEIPT),
#endif
#ifdef EV_DISPATCH
	KQ_BITS(EV_DISPATCH),
#endif
#ifdef EV_FORCEONESHOT
	KQ_BITS(EV_FORCEONESHOT),
#endif
#ifdef EV_UDATA_SPECIFIC
	KQ_BITS(EV_UDATA_SPECIFIC),
#endif
#ifdef EV_DISPATCH2
	KQ_BITS(EV_DISPATCH2),
#endif
#ifdef EV_KEEPUDATA
	KQ_BITS(EV_KEEPUDATA),
#endif
#ifdef EV_VANISHED
	KQ_BITS(EV_VANISHED),
#endif
#ifdef EV_SYSFLAGS
	KQ_BITS(EV_SYSFLAGS),
#endif
#ifdef EV_DROP
	KQ_BITS(EV_DROP),
#endif
#ifdef EV_FLAG0
	KQ_BITS(EV_FLAG0),
#endif
#ifdef EV_POLL
	KQ_BITS(EV_POLL),
#endif
#ifdef EV_FLAG1
	KQ_BITS(EV_FLAG1),
#endif
#ifdef EV_OOBAND
	KQ_BITS(EV_OOBAND),
#endif
#ifdef EV_FLAG2
	KQ_BITS(EV_FLAG2),
#endif
#ifdef EV_ERROR
	KQ_BITS(EV_ERROR),
#endif
#ifdef EV_EOF
	KQ_BITS(EV_EOF),
#endif
#ifdef NOTE_LOWAT
	KQ_BITS(NOTE_LOWAT),
#endif
#ifdef NOTE_FILE_POLL
	KQ_BITS(NOTE_FILE_POLL),
#endif
#ifdef NOTE_EOF
	KQ_BITS(NOTE_EOF),
#endif
#ifdef NOTE_OOB
	KQ_BITS(NOTE_OOB),
#endif
#ifdef NOTE_DELETE
	KQ_BITS(NOTE_DELETE),
#endif
#ifdef NOTE_WRITE
	KQ_BITS(NOTE_WRITE),
#endif
#ifdef NOTE_EXTEND
	KQ_BITS(NOTE_EXTEND),
#endif
#ifdef NOTE_ATTRIB
	KQ_BITS(NOTE_ATTRIB),
#endif
#ifdef NOTE_LINK
	KQ_BITS(NOTE_LINK),
#endif
#ifdef NOTE_RENAME
	KQ_BITS(NOTE_RENAME),
#endif
#ifdef NOTE_REVOKE
	KQ_BITS(NOTE_REVOKE),
#endif
#ifdef NOTE_OPEN
	KQ_BITS(NOTE_OPEN),
#endif
#ifdef NOTE_TRUNCATE
	KQ_BITS(NOTE_TRUNCATE),
#endif
#ifdef NOTE_NONE
	KQ_BITS(NOTE_NONE),
#endif
#ifdef NOTE_CLOSE
	KQ_BITS(NOTE_CLOSE),
#endif
#ifdef NOTE_FUNLOCK
	KQ_BITS(NOTE_FUNLOCK),
#endif
#ifdef NOTE_CLOSE_WRITE
	KQ_BITS(NOTE_CLOSE_WRITE),
#endif
#ifdef NOTE_LEASE_DOWNGRADE
	KQ_BITS(NOTE_LEASE_DOWNGRADE),
#endif
#ifdef NOTE_READ
	KQ_BITS(NOTE_READ),
#endif
#ifdef NOTE_LEASE_RELEASE
	KQ_BITS(NOTE_LEASE_RELEASE),
#endif
#ifdef NOTE_EXIT
	KQ_BITS(NOTE_EXIT),
#endif
#ifdef NOTE_FORK
	KQ_BITS(NOTE_FORK),
#endif
#ifdef NOTE_EXEC
	KQ_BITS(NOTE_EXEC),
#endif
#ifdef NOTE_PDSIGCHLD
	KQ_BITS(NOTE_PDSIGCHLD),
#endif
#ifdef NOTE_REAP
	KQ_BITS(NOTE_REAP),
#endif
#ifdef NOTE_SIGNAL
	KQ_BITS(NOTE_SIGNAL),
#endif
#ifdef NOTE_EXITSTATUS
	KQ_BITS(NOTE_EXITSTATUS),
#endif
#ifdef NOTE_EXIT_DETAIL
	KQ_BITS(NOTE_EXIT_DETAIL),
#endif
#ifdef NOTE_PCTRLMASK
	KQ_BITS(NOTE_PCTRLMASK),
#endif
#ifdef NOTE_PDATAMASK
	KQ_BITS(NOTE_PDATAMASK),
#endif
#ifdef NOTE_EXIT_REPARENTED
	KQ_BITS(NOTE_EXIT_REPARENTED),
#endif
#ifdef NOTE_EXIT_DETAIL_MASK
	KQ_BITS(NOTE_EXIT_DETAIL_MASK),
#endif
#ifdef NOTE_EXIT_DECRYPTFAIL
	KQ_BITS(NOTE_EXIT_DECRYPTFAIL),
#endif
#ifdef NOTE_EXIT_MEMORY
	KQ_BITS(NOTE_EXIT_MEMORY),
#endif
#ifdef NOTE_EXIT_CSERROR
	KQ_BITS(NOTE_EXIT_CSERROR),
#endif
#ifdef NOTE_TRACK
	KQ_BITS(NOTE_TRACK),
#endif
#ifdef NOTE_TRACKERR
	KQ_BITS(NOTE_TRACKERR),
#endif
#ifdef NOTE_CHILD
	KQ_BITS(NOTE_CHILD),
#endif
#ifdef NOTE_JAIL_CHILD
	KQ_BITS(NOTE_JAIL_CHILD),
#endif
#ifdef NOTE_JAIL_SET
	KQ_BITS(NOTE_JAIL_SET),
#endif
#ifdef NOTE_JAIL_ATTACH
	KQ_BITS(NOTE_JAIL_ATTACH),
#endif
#ifdef NOTE_JAIL_REMOVE
	KQ_BITS(NOTE_JAIL_REMOVE),
#endif
#ifdef NOTE_JAIL_MULTI
	KQ_BITS(NOTE_JAIL_MULTI),
#endif
#ifdef NOTE_JAIL_CTRLMASK
	KQ_BITS(NOTE_JAIL_CTRLMASK),
#endif
#ifdef NOTE_CHANGE
	KQ_BITS(NOTE_CHANGE),
#endif
#ifdef NOTE_VM_PRESSURE
	KQ_BITS(NOTE_VM_PRESSURE),
#endif
#ifdef NOTE_VM_PRESSURE_TERMINATE
	KQ_BITS(NOTE_VM_PRESSURE_TERMINATE),
#endif
#ifdef NOTE_VM_PRESSURE_SUDDEN_TERMINATE
	KQ_BITS(NOTE_VM_PRESSURE_SUDDEN_TERMINATE),
#endif
#ifdef NOTE_VM_ERROR
	KQ_BITS(NOTE_VM_ERROR),
#endif
#ifdef NOTE_MSECONDS
	KQ_BITS(NOTE_MSECONDS),
#endif
#ifdef NOTE_SECONDS
	KQ_BITS(NOTE_SECONDS),
#endif
#ifdef NOTE_USECONDS
	KQ_BITS(NOTE_USECONDS),
#endif
#ifdef NOTE_NSECONDS
	KQ_BITS(NOTE_NSECONDS),
#endif
#ifdef NOTE_ABSTIME
	KQ_BITS(NOTE_ABSTIME),
#endif
#ifdef NOTE_ABSOLUTE
	KQ_BITS(NOTE_ABSOLUTE),
#endif
#ifdef NOTE_LEEWAY
	KQ_BITS(NOTE_LEEWAY),
#endif
#ifdef NOTE_CRITICAL
	KQ_BITS(NOTE_CRITICAL),
#endif
#ifdef NOTE_BACKGROUND
	KQ_BITS(NOTE_BACKGROUND),
#endif
#ifdef NOTE_MACH_CONTINUOUS_TIME
	KQ_BITS(NOTE_MACH_CONTINUOUS_TIME),
#endif
#ifdef NOTE_MACHTIME
	KQ_BITS(NOTE_MACHTIME),
#endif
#ifdef NOTE_FFNOP
	KQ_BITS(NOTE_FFNOP),
#endif
#ifdef NOTE_FFAND
	KQ_BITS(NOTE_FFAND),
#endif
#ifdef NOTE_FFOR
	KQ_BITS(NOTE_FFOR),
#endif
#ifdef NOTE_FFCOPY
	KQ_BITS(NOTE_FFCOPY),
#endif
#ifdef NOTE_FFCTRLMASK
	KQ_BITS(NOTE_FFCTRLMASK),
#endif
#ifdef NOTE_FFLAGSMASK
	KQ_BITS(NOTE_FFLAGSMASK),
#endif
#ifdef NOTE_TRIGGER
	KQ_BITS(NOTE_TRIGGER),
#endif
	{NULL, 0}
};

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/* Set every constant on the table on top of the stack. */
void kq_constants_open(lua_State *L)
{
	const struct kq_const *c;

	for (c = kq_constants; c->name != NULL; c++) {
		lua_pushinteger(L, c->value);
		lua_setfield(L, -2, c->name);
	}
}
