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
---@field EVFILT_USER integer? platform-only: user-triggered events (not on older OpenBSD)
---@field EVFILT_PROCDESC integer? platform-only: process descriptors (FreeBSD)
---@field EVFILT_FS integer? platform-only: file system events (not on OpenBSD)
---@field EVFILT_LIO integer? platform-only: lio_listio (FreeBSD)
---@field EVFILT_SENDFILE integer? platform-only: sendfile (FreeBSD)
---@field EVFILT_EMPTY integer? platform-only: write buffer empty (FreeBSD, NetBSD)
---@field EVFILT_SYSCOUNT integer? platform-only: the number of filters, not a filter
---@field EV_ADD integer add the knote, or modify it
---@field EV_DELETE integer remove the knote
---@field EV_ENABLE integer allow delivery
---@field EV_DISABLE integer hold delivery back
---@field EV_ONESHOT integer delete the knote after its first event
---@field EV_CLEAR integer reset the state after delivery
---@field EV_RECEIPT integer an entry for each successful change
---@field EV_DISPATCH integer disable the knote after each delivery
---@field EV_FORCEONESHOT integer? platform-only: make a knote ONESHOT and queue it (FreeBSD, Linux engine)
---@field EV_KEEPUDATA integer? platform-only: a modify keeps udata (FreeBSD, Linux engine)
---@field EV_SYSFLAGS integer mask of the system's bits
---@field EV_DROP integer? platform-only: kernel-internal
---@field EV_FLAG1 integer? platform-only: kernel-internal
---@field EV_ERROR integer an error entry or receipt: `data` is the errno or 0
---@field EV_EOF integer end of file, peer gone, process exited
---@field NOTE_LOWAT integer `data` is a low-water mark
---@field NOTE_FILE_POLL integer? platform-only: READ on a file always ready (FreeBSD, Linux engine)
---@field NOTE_FFNOP integer? platform-only (with EVFILT_USER): keep the stored value
---@field NOTE_FFAND integer? platform-only (with EVFILT_USER): AND into the stored value
---@field NOTE_FFOR integer? platform-only (with EVFILT_USER): OR into the stored value
---@field NOTE_FFCOPY integer? platform-only (with EVFILT_USER): replace the stored value
---@field NOTE_FFCTRLMASK integer? platform-only (with EVFILT_USER): mask of the operation bits
---@field NOTE_FFLAGSMASK integer? platform-only (with EVFILT_USER): mask of the user value
---@field NOTE_TRIGGER integer? platform-only (with EVFILT_USER): trigger the knote
---@field NOTE_DELETE integer unlinked
---@field NOTE_WRITE integer written
---@field NOTE_EXTEND integer grew
---@field NOTE_ATTRIB integer attributes changed
---@field NOTE_LINK integer link count changed
---@field NOTE_RENAME integer renamed
---@field NOTE_REVOKE integer access revoked
---@field NOTE_OPEN integer? platform-only: opened (FreeBSD, NetBSD, Linux engine)
---@field NOTE_CLOSE integer? platform-only: a read-only descriptor closed (FreeBSD, NetBSD, Linux engine)
---@field NOTE_CLOSE_WRITE integer? platform-only: a writing descriptor closed (FreeBSD, NetBSD, Linux engine)
---@field NOTE_READ integer? platform-only: read (FreeBSD, NetBSD, Linux engine)
---@field NOTE_EXIT integer the process exited; `data` is its wait(2) status
---@field NOTE_FORK integer the process forked (ENOTSUP under the Linux engine)
---@field NOTE_EXEC integer the process called exec (ENOTSUP under the Linux engine)
---@field NOTE_PCTRLMASK integer mask of the control bits
---@field NOTE_PDATAMASK integer mask of the pid with NOTE_CHILD
---@field NOTE_TRACK integer? platform-only: follow forks (ENOTSUP on macOS and the Linux engine)
---@field NOTE_TRACKERR integer? platform-only: a child could not be tracked
---@field NOTE_CHILD integer? platform-only: the event is for a tracked child
---@field NOTE_SECONDS integer? platform-only: timer unit seconds (none: milliseconds, everywhere)
---@field NOTE_MSECONDS integer? platform-only: milliseconds (nil on macOS)
---@field NOTE_USECONDS integer? platform-only: microseconds
---@field NOTE_NSECONDS integer? platform-only: nanoseconds
---@field NOTE_ABSTIME integer? platform-only: `data` is an absolute deadline (nil on macOS)
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
