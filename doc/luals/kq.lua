---@meta kq
-- kq for lua-language-server (LuaLS): types of everything require("kq")
-- returns, for completion, hover and checks in editors.  Add this folder to
-- "Lua.workspace.library" (README.md, "Editor support").  The reference is
-- doc/reference.md; spec/luals_spec.lua holds this file to the module.
--
-- Constants typed `integer?` are platform-only: nil on a system whose
-- <sys/event.h> lacks them (doc/portability.md); test them before use.

---An object whose descriptor kq reads, as a LuaSocket socket or a luaposix
---wrapper: `getfd()` is tried first, then `fileno()`.
---@alias kq.fdobject { getfd: fun(self): integer } | { fileno: fun(self): integer }

---What a change watches: a descriptor (READ, WRITE, VNODE; also a Lua file,
---a queue or a `kq.fdobject`), a pid (PROC), a signal number (SIGNAL) or
---any number (TIMER, USER).
---@alias kq.ident integer | file* | kq.queue | kq.fdobject

---A change for `kq.kevent`'s changelist (`kq.change` makes one).
---@class kq.change
---@field ident kq.ident what to watch
---@field filter integer an `EVFILT_*` constant
---@field flags? integer `EV_*` actions and flags, combined with `kq.bor` (0)
---@field fflags? integer filter flags, `NOTE_*` (0)
---@field data? integer filter parameter: timer period, low-water mark, USER data (0)
---@field udata? any any Lua value, returned with each event of the knote

---An event, or an error entry (`EV_ERROR` set, `data` an errno or 0),
---as `kq.kevent` writes it into an eventlist.
---@class kq.event
---@field ident integer what fired (a descriptor even when the change gave a file or object)
---@field filter integer the `EVFILT_*` of the knote
---@field flags integer `EV_*` flags: `EV_EOF`, `EV_ERROR`, `EV_CLEAR`, ...
---@field fflags integer `NOTE_*` that happened, or the USER value
---@field data integer bytes ready, expirations, exit status, signal count, errno...
---@field udata any the udata of the knote, the very same value

---An eventlist from `kq.eventlist()`: after a call returning n, entries
---1..n are read-only views rewritten in place by the next call (keep one
---with `kq.copy`).
---@class kq.eventlist
---@field [integer] kq.event

---A kqueue: a full userdata (metatable `kq.queue`), closed by `close`, by
---the garbage collector or at the end of a `<close>` scope (Lua 5.4).
---@class kq.queue
local queue = {}

---Applies `changelist`, then collects up to `nevents` events into
---`eventlist[1..n]` (see `kq.kevent`).
---@param changelist? (kq.change|kq.event)[] changes, applied in order; nil or {} for none
---@param eventlist? kq.event[]|kq.eventlist table filled at [1..n]; nil to only register
---@param nevents? integer capacity of eventlist (required with a table; 0 without one)
---@param timeout? number seconds to wait (fractions allowed); nil waits for ever, 0 polls
---@return integer|nil n entries written (0: timed out), or nil on failure
---@return string? message "kevent: <strerror>"
---@return integer? errno
function queue:kevent(changelist, eventlist, nevents, timeout) end

---Closes the queue; may be repeated.
---@return true
function queue:close() end

---The queue's descriptor, readable while an event is pending.
---@return integer fd
function queue:fileno() end

---The queue's descriptor (alias of `fileno`, for LuaSocket's `socket.select`).
---@return integer fd
function queue:getfd() end

---The module: functions, the Lua helpers and the constants.
---@class kq
---@field _VERSION string "kq 0.1.0"
---@field backend "linux"|"native" "linux": kq's own engine; "native": the system's kqueue(2)
---@field EVFILT_READ integer a descriptor is readable
---@field EVFILT_WRITE integer a descriptor is writable
---@field EVFILT_AIO integer asynchronous I/O (ENOTSUP under the Linux engine)
---@field EVFILT_VNODE integer changes to a file or directory
---@field EVFILT_PROC integer a process exited (forked, exec'd)
---@field EVFILT_SIGNAL integer a signal was delivered
---@field EVFILT_TIMER integer a timer expired
---@field EVFILT_PROCDESC integer? platform-only (FreeBSD, Linux engine): process descriptors (ENOTSUP under the Linux engine)
---@field EVFILT_MACHPORT integer? platform-only (macOS): Mach port messages
---@field EVFILT_DEVICE integer? platform-only (OpenBSD): device changes
---@field EVFILT_FS integer? platform-only (FreeBSD, macOS, NetBSD, Linux engine): file system events (ENOTSUP under the Linux engine)
---@field EVFILT_EXCEPT integer? platform-only (macOS, OpenBSD): exceptional conditions on a descriptor
---@field EVFILT_LIO integer? platform-only (FreeBSD, Linux engine): lio_listio completion (ENOTSUP under the Linux engine)
---@field EVFILT_USER integer user-triggered events (its number differs between systems)
---@field EVFILT_VM integer? platform-only (macOS): virtual memory pressure
---@field EVFILT_SENDFILE integer? platform-only (FreeBSD, Linux engine): sendfile progress (ENOTSUP under the Linux engine)
---@field EVFILT_EMPTY integer? platform-only (FreeBSD, NetBSD 10, Linux engine): a write buffer emptied (ENOTSUP under the Linux engine)
---@field EVFILT_JAIL integer? platform-only (FreeBSD 15): jail changes
---@field EVFILT_JAILDESC integer? platform-only (FreeBSD 15): jail descriptors
---@field EVFILT_SYSCOUNT integer the number of filters, not a filter
---@field EVFILT_THREADMARKER integer? platform-only (macOS): kernel-internal, not a filter
---@field EV_ADD integer add the knote, or modify it
---@field EV_DELETE integer remove the knote
---@field EV_ENABLE integer allow delivery
---@field EV_DISABLE integer hold delivery back
---@field EV_ONESHOT integer delete the knote after its first event
---@field EV_CLEAR integer reset the state after delivery
---@field EV_RECEIPT integer an entry for each successful change
---@field EV_DISPATCH integer disable the knote after each delivery
---@field EV_FORCEONESHOT integer? platform-only (FreeBSD, Linux engine): make a knote ONESHOT and queue it now
---@field EV_UDATA_SPECIFIC integer? platform-only (macOS): udata is part of the knote's identity
---@field EV_DISPATCH2 integer? platform-only (macOS): EV_DISPATCH with EV_UDATA_SPECIFIC
---@field EV_KEEPUDATA integer? platform-only (FreeBSD, Linux engine): a modify keeps the knote's udata
---@field EV_VANISHED integer? platform-only (macOS): report knotes the system removed
---@field EV_SYSFLAGS integer mask of the system's bits, cleared from changes
---@field EV_DROP integer? platform-only (FreeBSD, Linux engine): kernel-internal
---@field EV_FLAG0 integer? platform-only (macOS): kernel-internal
---@field EV_POLL integer? platform-only (macOS): kernel-internal
---@field EV_FLAG1 integer kernel-internal
---@field EV_OOBAND integer? platform-only (macOS): out-of-band data pending
---@field EV_FLAG2 integer? platform-only (FreeBSD): kernel-internal
---@field EV_ERROR integer an error entry or receipt: `data` is the errno or 0
---@field EV_EOF integer end of file, peer gone, process exited
---@field NOTE_LOWAT integer `data` is a low-water mark (READ, WRITE)
---@field NOTE_FILE_POLL integer? platform-only (FreeBSD, Linux engine): READ on a regular file is always ready
---@field NOTE_EOF integer? platform-only (OpenBSD): READ on a file fires at end of file
---@field NOTE_OOB integer? platform-only (macOS, OpenBSD): out-of-band data (READ)
---@field NOTE_DELETE integer the file was unlinked (VNODE)
---@field NOTE_WRITE integer the file was written (VNODE)
---@field NOTE_EXTEND integer the file grew (VNODE)
---@field NOTE_ATTRIB integer attributes changed (VNODE)
---@field NOTE_LINK integer link count changed (VNODE)
---@field NOTE_RENAME integer the file was renamed (VNODE)
---@field NOTE_REVOKE integer access was revoked (VNODE)
---@field NOTE_OPEN integer? platform-only (FreeBSD, NetBSD 10, Linux engine): the file was opened (VNODE)
---@field NOTE_TRUNCATE integer? platform-only (OpenBSD): the file was truncated (VNODE)
---@field NOTE_NONE integer? platform-only (macOS): no note (VNODE)
---@field NOTE_CLOSE integer? platform-only (FreeBSD, NetBSD 10, Linux engine): a read-only descriptor was closed (VNODE)
---@field NOTE_FUNLOCK integer? platform-only (macOS): the file was unlocked (VNODE)
---@field NOTE_CLOSE_WRITE integer? platform-only (FreeBSD, NetBSD 10, Linux engine): a writing descriptor was closed (VNODE)
---@field NOTE_LEASE_DOWNGRADE integer? platform-only (macOS): a lease downgrade was asked (VNODE)
---@field NOTE_READ integer? platform-only (FreeBSD, NetBSD 10, Linux engine): the file was read (VNODE)
---@field NOTE_LEASE_RELEASE integer? platform-only (macOS): a lease release was asked (VNODE)
---@field NOTE_EXIT integer the process exited; `data` is its wait(2) status (PROC)
---@field NOTE_FORK integer the process forked (PROC; ENOTSUP under the Linux engine)
---@field NOTE_EXEC integer the process called exec (PROC; ENOTSUP under the Linux engine)
---@field NOTE_PDSIGCHLD integer? platform-only (FreeBSD 15): SIGCHLD for a process descriptor (PROCDESC)
---@field NOTE_REAP integer? platform-only (FreeBSD 15, macOS): the process was reaped (PROC)
---@field NOTE_SIGNAL integer? platform-only (FreeBSD 15, macOS): the process got a signal (PROC)
---@field NOTE_EXITSTATUS integer? platform-only (macOS): put the exit status in `data` (PROC)
---@field NOTE_EXIT_DETAIL integer? platform-only (macOS): report why the process exited (PROC)
---@field NOTE_PCTRLMASK integer mask of the control bits (PROC; its value differs)
---@field NOTE_PDATAMASK integer mask of the pid carried with NOTE_CHILD (PROC)
---@field NOTE_EXIT_REPARENTED integer? platform-only (macOS): exit detail: reparented (PROC)
---@field NOTE_EXIT_DETAIL_MASK integer? platform-only (macOS): mask of the exit details (PROC)
---@field NOTE_EXIT_DECRYPTFAIL integer? platform-only (macOS): exit detail: decryption failed (PROC)
---@field NOTE_EXIT_MEMORY integer? platform-only (macOS): exit detail: memory pressure (PROC)
---@field NOTE_EXIT_CSERROR integer? platform-only (macOS): exit detail: code signing error (PROC)
---@field NOTE_TRACK integer follow forks (PROC; ENOTSUP under the Linux engine and on macOS)
---@field NOTE_TRACKERR integer output: a child could not be tracked (PROC)
---@field NOTE_CHILD integer output: the event is for a tracked child (PROC)
---@field NOTE_JAIL_CHILD integer? platform-only (FreeBSD 15): a child jail was created (JAIL)
---@field NOTE_JAIL_SET integer? platform-only (FreeBSD 15): the jail was changed (JAIL)
---@field NOTE_JAIL_ATTACH integer? platform-only (FreeBSD 15): a process attached to the jail (JAIL)
---@field NOTE_JAIL_REMOVE integer? platform-only (FreeBSD 15): the jail was removed (JAIL)
---@field NOTE_JAIL_MULTI integer? platform-only (FreeBSD 15): several jail events were merged (JAIL)
---@field NOTE_JAIL_CTRLMASK integer? platform-only (FreeBSD 15): mask of the control bits (JAIL)
---@field NOTE_CHANGE integer? platform-only (OpenBSD): the device changed (DEVICE)
---@field NOTE_VM_PRESSURE integer? platform-only (macOS): memory pressure (VM)
---@field NOTE_VM_PRESSURE_TERMINATE integer? platform-only (macOS): the process will be ended for memory (VM)
---@field NOTE_VM_PRESSURE_SUDDEN_TERMINATE integer? platform-only (macOS): the process may be ended at once (VM)
---@field NOTE_VM_ERROR integer? platform-only (macOS): the VM filter failed (VM)
---@field NOTE_MSECONDS integer? platform-only (FreeBSD, OpenBSD, NetBSD 10, Linux engine): `data` in milliseconds, the default unit (TIMER)
---@field NOTE_SECONDS integer? platform-only (FreeBSD, macOS, OpenBSD, NetBSD 10, Linux engine): `data` in seconds (TIMER; values differ, doc/portability.md)
---@field NOTE_USECONDS integer? platform-only (FreeBSD, macOS, OpenBSD, NetBSD 10, Linux engine): `data` in microseconds (TIMER; values differ)
---@field NOTE_NSECONDS integer? platform-only (FreeBSD, macOS, OpenBSD, NetBSD 10, Linux engine): `data` in nanoseconds (TIMER; values differ)
---@field NOTE_ABSTIME integer? platform-only (FreeBSD, OpenBSD, NetBSD 10, Linux engine): `data` is an absolute deadline (TIMER)
---@field NOTE_ABSOLUTE integer? platform-only (macOS): `data` is an absolute deadline (TIMER; macOS's NOTE_ABSTIME)
---@field NOTE_LEEWAY integer? platform-only (macOS): `data` comes with a leeway (TIMER)
---@field NOTE_CRITICAL integer? platform-only (macOS): no timer coalescing (TIMER)
---@field NOTE_BACKGROUND integer? platform-only (macOS): more timer coalescing (TIMER)
---@field NOTE_MACH_CONTINUOUS_TIME integer? platform-only (macOS): on the continuous Mach clock (TIMER)
---@field NOTE_MACHTIME integer? platform-only (macOS): `data` in Mach absolute time units (TIMER)
---@field NOTE_FFNOP integer keep the stored value (USER)
---@field NOTE_FFAND integer AND the low 24 bits into the stored value (USER)
---@field NOTE_FFOR integer OR the low 24 bits into the stored value (USER)
---@field NOTE_FFCOPY integer replace the stored value by the low 24 bits (USER)
---@field NOTE_FFCTRLMASK integer mask of the operation bits (USER)
---@field NOTE_FFLAGSMASK integer mask of the user value (USER)
---@field NOTE_TRIGGER integer trigger the knote (USER)
local kq = {}

---Creates a queue (close-on-exec).
---@return kq.queue|nil queue or nil when the system refuses (EMFILE...)
---@return string? message "kqueue: <strerror>"
---@return integer? errno
function kq.kqueue() end

---Applies `changelist` to `q`, then collects up to `nevents` events into
---`eventlist[1..n]`.  A failed change gives an `EV_ERROR` entry while there
---is room; misuse raises an error naming the argument.
---@param q kq.queue an open queue
---@param changelist? (kq.change|kq.event)[] changes, applied in order; nil or {} for none
---@param eventlist? kq.event[]|kq.eventlist table filled at [1..n]; nil to only register
---@param nevents? integer capacity of eventlist (required with a table; 0 without one)
---@param timeout? number seconds to wait (fractions allowed); nil waits for ever, 0 polls
---@return integer|nil n entries written (0: timed out), or nil on failure
---@return string? message "kevent: <strerror>"
---@return integer? errno
function kq.kevent(q, changelist, eventlist, nevents, timeout) end

---Closes `q`, dropping every knote; may be repeated.
---@param q kq.queue
---@return true
function kq.close(q) end

---The descriptor of open queue `q`.
---@param q kq.queue
---@return integer fd
function kq.fileno(q) end

---The descriptor of open queue `q` (alias of `kq.fileno`).
---@param q kq.queue
---@return integer fd
function kq.getfd(q) end

---"kqueue" for an open queue, "closed kqueue" for a closed one, else nil.
---@param v any
---@return "kqueue"|"closed kqueue"|nil
function kq.type(v) end

---A new, empty eventlist of read-only views: the fast choice for loops.
---@return kq.eventlist
function kq.eventlist() end

---A plain table with the six fields of an event, view or change.
---@param ev kq.event|kq.change
---@return kq.event
function kq.copy(ev) end

---Bitwise OR of non-negative integers, on every Lua (exact below 2^53 on
---Lua 5.1, 5.2 and LuaJIT).
---@param a integer
---@param ... integer
---@return integer
function kq.bor(a, ...) end

---Bitwise AND of non-negative integers, on every Lua (exact below 2^53 on
---Lua 5.1, 5.2 and LuaJIT).
---@param a integer
---@param ... integer
---@return integer
function kq.band(a, ...) end

---One line for an event or error entry, with symbolic names:
---"ident=5 filter=READ flags=CLEAR|EOF fflags=0 data=3 udata=nil".
---@param ev kq.event|kq.change
---@return string
function kq.describe(ev) end

---The name of filter `n` without "EVFILT_" ("READ"), or nil.
---@param n integer
---@return string?
function kq.filtername(n) end

---`EV_*` bits as "CLEAR|EOF" ("0" for none, unknown bits in hex).
---@param flags integer
---@return string
function kq.flagnames(flags) end

---`NOTE_*` bits of `filter` as "WRITE|EXTEND" (VNODE, PROC, TIMER);
---otherwise the number as a string.
---@param filter integer
---@param fflags integer
---@return string
function kq.fflagnames(filter, fflags) end

---A change table; flags, fflags and data default to 0.  Checks nothing.
---@param ident kq.ident
---@param filter integer
---@param flags? integer
---@param fflags? integer
---@param data? integer
---@param udata? any
---@return kq.change
function kq.change(ident, filter, flags, fflags, data, udata) end

return kq
