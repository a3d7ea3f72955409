/*
 * proc.c - EVFILT_PROC: NOTE_EXIT of a process (semantics §4.5, §6.2, §6.3).
 *
 * Each knote holds a pidfd (pidfd_open, Linux 5.3) registered in the
 * queue's epoll with EPOLLIN and the tag (TAG_PROC, pid).  A pidfd becomes
 * readable once the whole process has exited; proc_result() then reads
 * the status with
 * waitid(P_PIDFD, WEXITED | WNOHANG | WNOWAIT): the process is NOT reaped,
 * so the program's own waitpid() still sees it.  The wait(2) status word is
 * rebuilt from the siginfo and kept in the knote (data_out, fflags_out,
 * KN_ACTIVE), and the pidfd is removed from epoll and closed at once: an
 * exited process stays readable forever, and a pidfd left armed would be
 * reported on every wait (libkqueue spins at 100% CPU there).
 *
 * Differences from FreeBSD (doc/linux-engine-proc.md):
 *  - NOTE_FORK, NOTE_EXEC and NOTE_TRACK need the proc connector
 *    (CAP_NET_ADMIN): ENOTSUP.
 *  - waitid() gives ECHILD for a process that is not our child (or that
 *    the program already reaped): NOTE_EXIT is still reported, once, with
 *    data taken from /proc/<pid>/stat while the zombie is still there
 *    (checked through the pidfd), else 0.
 *  - One descriptor per watched process: EMFILE when none is left.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "family.h"

/* Raw system calls: the numbers are the same on every architecture since
 * Linux 5.1, and glibc only wraps them from 2.36 on. */
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#define KQE_P_PIDFD ((idtype_t)3) /* P_PIDFD, Linux 5.4 */

/* The notes Linux cannot watch without privileges (§6.3). */
#define PROC_UNSUPPORTED (NOTE_FORK | NOTE_EXEC | NOTE_TRACK)

static int proc_pidfd_open(pid_t pid)
{
	/* Always close-on-exec: the kernel sets O_CLOEXEC on every pidfd. */
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* The pidfd leaves epoll explicitly before it is closed: a fork child may
 * hold a copy of the descriptor, and epoll forgets a registration only when
 * the last copy of the open file goes. */
static void proc_unwatch(struct kqe_queue *q, struct knote *kn)
{
	int fd = kn->u.proc.pidfd;
	if (fd < 0)
		return;
	if (q->epfd >= 0)
		(void)epoll_ctl(q->epfd, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	kn->u.proc.pidfd = -1;
}

/* Best effort for a process we cannot wait for: the exit_code field (52)
 * of /proc/<pid>/stat, a wait(2) word, read while the zombie is still
 * there.  The read is trusted only if the pidfd's process still exists
 * afterwards: while it does, the number cannot name another process. */
static int64_t proc_zombie_status(int pidfd, pid_t pid)
{
	char path[40], buf[2048];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* The command name (field 2) may hold anything: start after the last
	 * ')'; the next field is the state (field 3). */
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return 0;
	p++;
	for (int field = 3; field < 52; field++) {
		while (*p == ' ')
			p++;
		while (*p != ' ' && *p != '\0' && *p != '\n')
			p++;
		if (*p != ' ')
			return 0; /* an older kernel without exit_code */
	}
	char *end;
	long code = strtol(p, &end, 10);
	if (end == p)
		return 0;
	/* Signal 0 to a zombie succeeds (or EPERM); once reaped: ESRCH. */
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0 && errno != EPERM)
		return 0;
	return code & 0xffff;
}

/* The wait(2) status of an exited process, without reaping it. */
static int64_t proc_exit_status(int pidfd, pid_t pid)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	if (waitid(KQE_P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) == 0 &&
	    si.si_pid != 0) {
		switch (si.si_code) {
		case CLD_EXITED:
			return (int64_t)(si.si_status & 0xff) << 8;
		case CLD_KILLED:
			return si.si_status & 0x7f;
		case CLD_DUMPED:
			return (si.si_status & 0x7f) | 0x80;
		default:
			return 0;
		}
	}
	/* ECHILD: not our child, or already reaped by the program.  Or no
	 * status although the pidfd was readable (a child traced by another
	 * process).  The process has exited either way: report it now, so
	 * that the pidfd never stays armed. */
	return proc_zombie_status(pidfd, pid);
}

static int proc_check_notes(uint32_t fflags)
{
	return (fflags & PROC_UNSUPPORTED) ? ENOTSUP : 0;
}

static int proc_attach(struct kqe_queue *q, struct knote *kn, const struct kevent *kev)
{
	int err = proc_check_notes(kev->fflags);
	if (err)
		return err;
	kn->u.proc.pidfd = -1;
	if (kn->ident == 0 || kn->ident > INT_MAX)
		return ESRCH;
	int fd = proc_pidfd_open((pid_t)kn->ident);
	if (fd < 0) {
		switch (errno) {
		case EINVAL: /* a thread id, not a process */
		case ESRCH:
			return ESRCH;
		case ENOSYS:
			return ENOTSUP;
		default: /* EMFILE, ENFILE, ENOMEM */
			return errno;
		}
	}
	err = kqe_epoll_add(q, fd, EPOLLIN, KQE_TAG(TAG_PROC, kn->ident));
	if (err) {
		close(fd);
		return err == ENOSPC ? ENOMEM : err;
	}
	kn->u.proc.pidfd = fd;
	kn->flags |= EV_CLEAR; /* forced (§3) */
	/* A zombie's pidfd is readable already: the next collection reports
	 * it, within this very kevent() call when it has an eventlist. */
	return 0;
}

static int proc_modify(struct kqe_queue *q, struct knote *kn, const struct kevent *kev)
{
	(void)q;
	int err = proc_check_notes(kev->fflags);
	if (err)
		return err;
	/* Parameters are replaced.  An exit already recorded stays (FreeBSD
	 * keeps the fired event of a knote whose notes change afterwards). */
	kn->sfflags = kev->fflags;
	kn->sdata = kev->data;
	return 0;
}

static void proc_detach(struct kqe_queue *q, struct knote *kn)
{
	proc_unwatch(q, kn);
}

static int proc_event(struct kqe_queue *q, struct knote *kn, struct kevent *ev)
{
	(void)q;
	EV_SET(ev, kn->ident, EVFILT_PROC, kn->flags, kn->fflags_out, kn->data_out, kn->udata);
	return 1;
}

static void proc_result(struct kqe_queue *q, pid_t pid)
{
	struct knote *kn = kqe_knote_find(q, EVFILT_PROC, (uintptr_t)pid);
	if (kn == NULL || kn->u.proc.pidfd < 0)
		return; /* already recorded */
	int64_t status = proc_exit_status(kn->u.proc.pidfd, pid);
	proc_unwatch(q, kn);
	if (!(kn->sfflags & NOTE_EXIT)) {
		/* Nothing asked for: the knote goes silently (FreeBSD EV_DROP). */
		kqe_knote_drop(q, kn);
		return;
	}
	kn->flags |= EV_EOF | EV_ONESHOT;
	kn->fflags_out |= NOTE_EXIT;
	kn->data_out = status;
	kqe_knote_activate(q, kn); /* a disabled knote keeps it for EV_ENABLE */
}

static const struct kqe_filter_ops proc_ops = {
	.attach = proc_attach,
	.modify = proc_modify,
	.detach = proc_detach,
	.event = proc_event,
};

static int proc_ready(struct kqe_queue *q, const struct epoll_event *buf, int count,
		      struct kevent *out, int room, int *taken)
{
	(void)count, (void)out, (void)room;
	*taken = 1;
	proc_result(q, (pid_t)KQE_VAL_OF(buf[0].data.u64));
	return 0;
}

/* A fork child inherited q: its pidfds are the parent's copies. */
static void proc_atfork_queue(struct kqe_queue *q)
{
	for (size_t i = 0; i < q->hcap; i++)
		for (struct knote *kn = q->htab[i]; kn; kn = kn->hnext)
			if (kn->filter == EVFILT_PROC && kn->u.proc.pidfd >= 0) {
				close(kn->u.proc.pidfd);
				kn->u.proc.pidfd = -1;
			}
}

static int proc_rearm(struct kqe_queue *q, int epfd, bool add)
{
	int err = 0;
	for (size_t i = 0; err == 0 && i < q->hcap; i++)
		for (struct knote *kn = q->htab[i]; err == 0 && kn; kn = kn->hnext)
			if (kn->filter == EVFILT_PROC && kn->u.proc.pidfd >= 0)
				err = kqe_epoll_rearm(epfd, add, kn->u.proc.pidfd, EPOLLIN,
						      KQE_TAG(TAG_PROC, kn->ident));
	return err;
}

const struct kqe_family kqe_family_proc = {
	.name = "proc",
	.ops = &proc_ops,
	.filters = { EVFILT_PROC },
	.tags = { TAG_PROC },
	.ready = proc_ready,
	.atfork_queue = proc_atfork_queue,
	.rearm = proc_rearm,
};
