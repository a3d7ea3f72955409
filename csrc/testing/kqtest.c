/*
 * kqtest.c - a test-only Lua module (build/kqtest.so, never installed)
 * giving the specs the raw POSIX calls they need to make real events:
 * descriptors, processes, signals, files and limits.
 *
 * Conventions: misuse raises; an OS failure returns nil, "name: strerror",
 * errno, with errno saved on the line after the call.  Sections are by
 * topic; add new functions to the matching section and to its table.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../kq_compat.h"

static int t_fail(lua_State *L, const char *what, int en)
{
	luaL_pushfail(L);
	lua_pushfstring(L, "%s: %s", what, strerror(en));
	lua_pushinteger(L, en);
	return 3;
}

/* 0/-1 system call results: true or the triple. */
static int t_result(lua_State *L, int r, const char *what, int en)
{
	if (r < 0)
		return t_fail(L, what, en);
	lua_pushboolean(L, 1);
	return 1;
}

static int t_checkfd(lua_State *L, int arg)
{
	lua_Integer fd = kq_checkinteger(L, arg);
	luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, arg, "descriptor expected");
	return (int)fd;
}

/* ---- descriptors ------------------------------------------------------ */

static int t_pipe(lua_State *L)
{
	int p[2];
	int r = pipe(p), en = errno;
	if (r < 0)
		return t_fail(L, "pipe", en);
	lua_pushinteger(L, p[0]);
	lua_pushinteger(L, p[1]);
	return 2;
}

/* openpty() -> master, slave: a pseudo-terminal pair, both raw, so bytes
 * written to one end reach the other unchanged and at once. */
static int t_openpty(lua_State *L)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY), en = errno;
	if (m < 0)
		return t_fail(L, "posix_openpt", en);
	if (grantpt(m) < 0 || unlockpt(m) < 0) {
		en = errno;
		close(m);
		return t_fail(L, "grantpt", en);
	}
	const char *name = ptsname(m);
	int sl = name ? open(name, O_RDWR | O_NOCTTY) : -1;
	en = errno;
	if (sl < 0) {
		close(m);
		return t_fail(L, "open pty", en);
	}
	struct termios tio;
	if (tcgetattr(sl, &tio) == 0) {
		cfmakeraw(&tio);
		tcsetattr(sl, TCSANOW, &tio);
	}
	lua_pushinteger(L, m);
	lua_pushinteger(L, sl);
	return 2;
}

static int t_socketpair(lua_State *L)
{
	static const char *const types[] = {"stream", "dgram", NULL};
	int type = luaL_checkoption(L, 1, "stream", types) ? SOCK_DGRAM
							    : SOCK_STREAM;
	int sv[2];
	int r = socketpair(AF_UNIX, type, 0, sv), en = errno;
	if (r < 0)
		return t_fail(L, "socketpair", en);
	lua_pushinteger(L, sv[0]);
	lua_pushinteger(L, sv[1]);
	return 2;
}

static int t_write(lua_State *L)
{
	size_t len;
	int fd = t_checkfd(L, 1);
	const char *s = luaL_checklstring(L, 2, &len);
	ssize_t n = write(fd, s, len);
	int en = errno;
	if (n < 0)
		return t_fail(L, "write", en);
	lua_pushinteger(L, (lua_Integer)n);
	return 1;
}

static int t_read(lua_State *L)
{
	int fd = t_checkfd(L, 1);
	lua_Integer max = kq_optinteger(L, 2, 4096);
	char *p;
	ssize_t n;
	int en;

	luaL_argcheck(L, max > 0 && max <= 16 * 1024 * 1024, 2,
		      "size out of range");
	/* A scratch userdata: luaL_buffinitsize is 5.2 and later. */
	p = (char *)lua_newuserdata(L, (size_t)max);
	n = read(fd, p, (size_t)max);
	en = errno;
	if (n < 0)
		return t_fail(L, "read", en);
	lua_pushlstring(L, p, (size_t)n);
	return 1;
}

static int t_close(lua_State *L)
{
	int r = close(t_checkfd(L, 1)), en = errno;
	return t_result(L, r, "close", en);
}

static int t_dup(lua_State *L)
{
	int r = dup(t_checkfd(L, 1)), en = errno;
	if (r < 0)
		return t_fail(L, "dup", en);
	lua_pushinteger(L, r);
	return 1;
}

static int t_dup2(lua_State *L)
{
	int r = dup2(t_checkfd(L, 1), t_checkfd(L, 2)), en = errno;
	if (r < 0)
		return t_fail(L, "dup2", en);
	lua_pushinteger(L, r);
	return 1;
}

/* Without /proc (the BSDs, macOS): every number below the hard limit
 * (descriptors above a lowered soft limit stay open), at most 2^17, in
 * poll(2) calls of at most the soft limit; POLLNVAL marks closed ones. */
static lua_Integer t_fdcount_poll(void)
{
	struct pollfd p[256];
	struct rlimit rl;
	lua_Integer n = 0;
	int lim = 1 << 17, batch = 256, base, i, k;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)lim)
		lim = (int)rl.rlim_max;
	if (rl.rlim_cur < (rlim_t)batch)
		batch = rl.rlim_cur > 0 ? (int)rl.rlim_cur : 1;
	for (base = 0; base < lim; base += k) {
		k = lim - base < batch ? lim - base : batch;
		for (i = 0; i < k; i++) {
			p[i].fd = base + i;
			p[i].events = 0;
			p[i].revents = 0;
		}
		if (poll(p, (nfds_t)k, 0) < 0)
			return -1;
		for (i = 0; i < k; i++)
			if (!(p[i].revents & POLLNVAL))
				n++;
	}
	return n;
}

/* Open descriptors: entries in /proc/self/fd less the one opendir uses,
 * or counted with poll where there is no /proc. */
static int t_fdcount(lua_State *L)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	lua_Integer n = 0;

	if (d == NULL) {
		lua_pushinteger(L, t_fdcount_poll());
		return 1;
	}
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	lua_pushinteger(L, n - 1);
	return 1;
}

static int t_is_cloexec(lua_State *L)
{
	int fl = fcntl(t_checkfd(L, 1), F_GETFD), en = errno;
	if (fl < 0)
		return t_fail(L, "fcntl", en);
	lua_pushboolean(L, fl & FD_CLOEXEC);
	return 1;
}

static int t_poll_in(lua_State *L)
{
	struct pollfd p;
	int r, en;

	p.fd = t_checkfd(L, 1);
	p.events = POLLIN;
	p.revents = 0;
	r = poll(&p, 1, (int)kq_optinteger(L, 2, 0));
	en = errno;
	if (r < 0)
		return t_fail(L, "poll", en);
	lua_pushboolean(L, r > 0 && (p.revents & POLLIN));
	return 1;
}

static int t_fionread(lua_State *L)
{
	int n = 0;
	int r = ioctl(t_checkfd(L, 1), FIONREAD, &n), en = errno;
	if (r < 0)
		return t_fail(L, "ioctl", en);
	lua_pushinteger(L, n);
	return 1;
}

/* ---- sockets ---------------------------------------------------------- */

static int t_shutdown(lua_State *L)
{
	static const char *const how[] = {"rd", "wr", "rdwr", NULL};
	static const int hv[] = {SHUT_RD, SHUT_WR, SHUT_RDWR};
	int fd = t_checkfd(L, 1);
	int r = shutdown(fd, hv[luaL_checkoption(L, 2, NULL, how)]);
	int en = errno;
	return t_result(L, r, "shutdown", en);
}

/* SO_LINGER {1, 0}: close sends an RST. */
static int t_set_linger0(lua_State *L)
{
	struct linger lg;
	int r, en;

	lg.l_onoff = 1;
	lg.l_linger = 0;
	r = setsockopt(t_checkfd(L, 1), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	en = errno;
	return t_result(L, r, "setsockopt", en);
}

/* ---- files ------------------------------------------------------------ */

/* open(path, "r"|"w"|"rw"|"a" [, create]) -> fd; "w" and "a" create. */
static int t_open(lua_State *L)
{
	static const char *const modes[] = {"r", "w", "rw", "a", NULL};
	static const int mv[] = {O_RDONLY, O_WRONLY, O_RDWR,
				 O_WRONLY | O_APPEND};
	const char *path = luaL_checkstring(L, 1);
	int mode = luaL_checkoption(L, 2, "r", modes);
	int flags = mv[mode] | O_CLOEXEC;
	int fd, en;

	if (lua_toboolean(L, 3))
		flags |= O_CREAT;
	fd = open(path, flags, 0644);
	en = errno;
	if (fd < 0)
		return t_fail(L, "open", en);
	lua_pushinteger(L, fd);
	return 1;
}

static int t_lseek(lua_State *L)
{
	static const char *const wh[] = {"set", "cur", "end", NULL};
	static const int wv[] = {SEEK_SET, SEEK_CUR, SEEK_END};
	int fd = t_checkfd(L, 1);
	off_t off = (off_t)kq_checkinteger(L, 2);
	off_t r = lseek(fd, off, wv[luaL_checkoption(L, 3, "set", wh)]);
	int en = errno;
	if (r < 0)
		return t_fail(L, "lseek", en);
	lua_pushinteger(L, (lua_Integer)r);
	return 1;
}

static int t_ftruncate(lua_State *L)
{
	int r = ftruncate(t_checkfd(L, 1), (off_t)kq_checkinteger(L, 2));
	int en = errno;
	return t_result(L, r, "ftruncate", en);
}

static int t_fchmod(lua_State *L)
{
	int r = fchmod(t_checkfd(L, 1), (mode_t)kq_checkinteger(L, 2));
	int en = errno;
	return t_result(L, r, "fchmod", en);
}

static int t_mkfifo(lua_State *L)
{
	int r = mkfifo(luaL_checkstring(L, 1), 0600), en = errno;
	return t_result(L, r, "mkfifo", en);
}

static int t_unlink(lua_State *L)
{
	int r = unlink(luaL_checkstring(L, 1)), en = errno;
	return t_result(L, r, "unlink", en);
}

static int t_rename(lua_State *L)
{
	int r = rename(luaL_checkstring(L, 1), luaL_checkstring(L, 2));
	int en = errno;
	return t_result(L, r, "rename", en);
}

static int t_link(lua_State *L)
{
	int r = link(luaL_checkstring(L, 1), luaL_checkstring(L, 2));
	int en = errno;
	return t_result(L, r, "link", en);
}

static int t_mkdir(lua_State *L)
{
	int r = mkdir(luaL_checkstring(L, 1), 0700), en = errno;
	return t_result(L, r, "mkdir", en);
}

static int t_rmdir(lua_State *L)
{
	int r = rmdir(luaL_checkstring(L, 1)), en = errno;
	return t_result(L, r, "rmdir", en);
}

/* ---- processes -------------------------------------------------------- */

static int t_fork(lua_State *L)
{
	pid_t pid = fork();
	int en = errno;
	if (pid < 0)
		return t_fail(L, "fork", en);
	lua_pushinteger(L, pid);
	return 1;
}

/* _exit: no atexit handlers, no stdio flush, no Lua state teardown. */
static int t__exit(lua_State *L)
{
	_exit((int)kq_optinteger(L, 1, 0));
	return 0;
}

static int t_getpid(lua_State *L)
{
	lua_pushinteger(L, getpid());
	return 1;
}

static int t_kill(lua_State *L)
{
	int r = kill((pid_t)kq_checkinteger(L, 1), (int)kq_checkinteger(L, 2));
	int en = errno;
	return t_result(L, r, "kill", en);
}

/* waitpid(pid [, nohang]) -> pid, status (the raw wait(2) word). */
static int t_waitpid(lua_State *L)
{
	int status = 0;
	pid_t r = waitpid((pid_t)kq_checkinteger(L, 1), &status,
			  lua_toboolean(L, 2) ? WNOHANG : 0);
	int en = errno;
	if (r < 0)
		return t_fail(L, "waitpid", en);
	lua_pushinteger(L, r);
	lua_pushinteger(L, status);
	return 2;
}

/* ---- signals ---------------------------------------------------------- */

#define T_NSIG 65
static volatile sig_atomic_t t_counts[T_NSIG];

static void t_counter(int sig)
{
	if (sig > 0 && sig < T_NSIG)
		t_counts[sig]++;
}

static int t_checksig(lua_State *L, int arg)
{
	lua_Integer s = kq_checkinteger(L, arg);
	luaL_argcheck(L, s > 0 && s < T_NSIG, arg, "signal number expected");
	return (int)s;
}

static int t_raise(lua_State *L)
{
	int r = raise(t_checksig(L, 1)), en = errno;
	return t_result(L, r != 0 ? -1 : 0, "raise", en);
}

/* signal(sig, "ignore"|"default"|"count"): "count" installs a handler
 * that counts deliveries (read with counter(sig)), and resets the count. */
static int t_signal(lua_State *L)
{
	static const char *const acts[] = {"ignore", "default", "count", NULL};
	int sig = t_checksig(L, 1);
	int act = luaL_checkoption(L, 2, NULL, acts);
	struct sigaction sa;
	int r, en;

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	if (act == 0) {
		sa.sa_handler = SIG_IGN;
	} else if (act == 1) {
		sa.sa_handler = SIG_DFL;
	} else {
		t_counts[sig] = 0;
		sa.sa_handler = t_counter;
	}
	r = sigaction(sig, &sa, NULL);
	en = errno;
	return t_result(L, r, "sigaction", en);
}

static int t_getcounter(lua_State *L)
{
	lua_pushinteger(L, t_counts[t_checksig(L, 1)]);
	return 1;
}

static int t_sigmask(lua_State *L, int how)
{
	sigset_t set;
	int r;

	sigemptyset(&set);
	sigaddset(&set, t_checksig(L, 1));
	r = sigprocmask(how, &set, NULL);
	return t_result(L, r, "sigprocmask", r < 0 ? errno : 0);
}

static int t_sigblock(lua_State *L)
{
	return t_sigmask(L, SIG_BLOCK);
}

static int t_sigunblock(lua_State *L)
{
	return t_sigmask(L, SIG_UNBLOCK);
}

/* sigstate(sig) -> disposition, blocked, pending: disposition is
 * "default", "ignore", "count" (kqtest's counting handler) or "other"
 * (any other handler, the engine's included); blocked and pending are
 * booleans for the calling thread. */
static int t_sigstate(lua_State *L)
{
	int sig = t_checksig(L, 1);
	struct sigaction sa;
	sigset_t set;
	const char *disp;

	if (sigaction(sig, NULL, &sa) < 0)
		return t_fail(L, "sigaction", errno);
	if (sa.sa_handler == SIG_DFL)
		disp = "default";
	else if (sa.sa_handler == SIG_IGN)
		disp = "ignore";
	else if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == t_counter)
		disp = "count";
	else
		disp = "other";
	lua_pushstring(L, disp);
	sigprocmask(SIG_BLOCK, NULL, &set);
	lua_pushboolean(L, sigismember(&set, sig) == 1);
	sigpending(&set);
	lua_pushboolean(L, sigismember(&set, sig) == 1);
	return 3;
}

/* ---- time and limits -------------------------------------------------- */

/* sleep(seconds): nanosleep, resumed after a signal handler runs. */
static int t_sleep(lua_State *L)
{
	lua_Number s = luaL_checknumber(L, 1);
	struct timespec ts, rem;

	luaL_argcheck(L, s >= 0 && s < 1e6, 1, "seconds out of range");
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - floor(s)) * 1e9);
	while (nanosleep(&ts, &rem) < 0 && errno == EINTR)
		ts = rem;
	return 0;
}

/* setrlimit_nofile(n) -> old soft limit; the hard limit is kept. */
static int t_setrlimit_nofile(lua_State *L)
{
	struct rlimit rl;
	rlim_t old;
	int r, en;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return t_fail(L, "getrlimit", errno);
	old = rl.rlim_cur;
	rl.rlim_cur = (rlim_t)kq_checkinteger(L, 1);
	r = setrlimit(RLIMIT_NOFILE, &rl);
	en = errno;
	if (r < 0)
		return t_fail(L, "setrlimit", en);
	lua_pushinteger(L, (lua_Integer)old);
	return 1;
}

/* ---- tables of numbers ------------------------------------------------ */

#define T_NUM(name) { #name, name }

static const struct t_num {
	const char *name;
	int value;
} t_signals[] = {
	T_NUM(SIGHUP), T_NUM(SIGINT), T_NUM(SIGKILL), T_NUM(SIGTERM),
	T_NUM(SIGUSR1), T_NUM(SIGUSR2), T_NUM(SIGCHLD), T_NUM(SIGALRM),
	T_NUM(SIGPIPE), T_NUM(SIGSTOP), T_NUM(SIGCONT),
	{NULL, 0}
}, t_errnos[] = {
	T_NUM(ENOENT), T_NUM(EBADF), T_NUM(EINVAL), T_NUM(EPIPE),
	T_NUM(ESRCH), T_NUM(ENOTSUP), T_NUM(EINTR), T_NUM(EMFILE),
	T_NUM(ECONNRESET), T_NUM(EEXIST), T_NUM(ENOMEM), T_NUM(EAGAIN),
	T_NUM(ECHILD), T_NUM(ELOOP),
	{NULL, 0}
};

static void t_numtable(lua_State *L, const char *field,
		       const struct t_num *t)
{
	lua_newtable(L);
	for (; t->name != NULL; t++) {
		lua_pushinteger(L, t->value);
		lua_setfield(L, -2, t->name);
	}
	lua_setfield(L, -2, field);
}

static const luaL_Reg t_funcs[] = {
	/* descriptors */
	{"pipe", t_pipe},
	{"socketpair", t_socketpair},
	{"openpty", t_openpty},
	{"write", t_write},
	{"read", t_read},
	{"close", t_close},
	{"dup", t_dup},
	{"dup2", t_dup2},
	{"fdcount", t_fdcount},
	{"is_cloexec", t_is_cloexec},
	{"poll_in", t_poll_in},
	{"fionread", t_fionread},
	/* sockets */
	{"shutdown", t_shutdown},
	{"set_linger0", t_set_linger0},
	/* files */
	{"open", t_open},
	{"lseek", t_lseek},
	{"ftruncate", t_ftruncate},
	{"fchmod", t_fchmod},
	{"mkfifo", t_mkfifo},
	{"unlink", t_unlink},
	{"rename", t_rename},
	{"link", t_link},
	{"mkdir", t_mkdir},
	{"rmdir", t_rmdir},
	/* processes */
	{"fork", t_fork},
	{"_exit", t__exit},
	{"getpid", t_getpid},
	{"kill", t_kill},
	{"waitpid", t_waitpid},
	/* signals */
	{"raise", t_raise},
	{"signal", t_signal},
	{"counter", t_getcounter},
	{"sigblock", t_sigblock},
	{"sigunblock", t_sigunblock},
	{"sigstate", t_sigstate},
	/* time and limits */
	{"sleep", t_sleep},
	{"setrlimit_nofile", t_setrlimit_nofile},
	{NULL, NULL}
};

__attribute__((visibility("default"))) int luaopen_kqtest(lua_State *L);

__attribute__((visibility("default"))) int luaopen_kqtest(lua_State *L)
{
	luaL_newlib(L, t_funcs);
	t_numtable(L, "signals", t_signals);
#ifdef SIGRTMIN
	/* SIGRTMIN is a function call on glibc, not a constant. */
	lua_getfield(L, -1, "signals");
	lua_pushinteger(L, SIGRTMIN);
	lua_setfield(L, -2, "SIGRTMIN");
	lua_pop(L, 1);
#endif
	t_numtable(L, "errno", t_errnos);
	return 1;
}
