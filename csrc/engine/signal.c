/*
 * signal.c - EVFILT_SIGNAL (semantics §4.4, §6.2, §6.3): ident is a signal
 * number, data the deliveries since the last retrieval, EV_CLEAR forced.
 *
 * FreeBSD counts every attempt to deliver the signal, beside its normal
 * disposition; Linux has no such hook (a signalfd keeps one pending
 * instance of a standard signal), so the engine counts in a handler of its
 * own, installed while a signal is watched, and wakes queues through one
 * process-wide eventfd.  How and where it differs from FreeBSD:
 * doc/linux-engine-signals.md.  Two points the code below depends on:
 *   - The eventfd is never read: reading it from one queue could empty it
 *     before another queue's epoll_wait reported its edge (epoll checks
 *     readiness again and drops the result).  It is registered
 *     edge-triggered in every queue with signal knotes, and every write
 *     gives each an edge; the count cannot overflow in practice (2^64 - 2).
 *   - The counters are 64-bit and only ever compared for equality or
 *     subtracted, so even a wrap would be harmless.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "family.h"

/* Signals 1..64; the kernel's _NSIG is 65 on every Linux architecture we
 * build for except MIPS (128), where the higher ones never fire. */
#define KQE_NSIG 65

/* The global table, under sig_lock.  The handler reads only `prev' of an
 * installed signal, written before the engine's handler is installed and
 * left alone until it has been removed. */
static struct sigslot {
	unsigned watchers;     /* live knotes for this signal, every queue */
	bool installed;        /* the engine's handler is in place */
	bool was_blocked;      /* blocked in the registering thread before */
	struct sigaction prev; /* the program's disposition before */
} slots[KQE_NSIG];

static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;

/* Touched by the handler: __atomic builtins only. */
static uint64_t counters[KQE_NSIG]; /* deliveries per signal, ever */
static uint64_t g_serial;           /* deliveries of any watched signal */
static uint64_t g_chained;          /* calls of a program handler */
static int g_evfd = -1;             /* the process-wide eventfd */
static unsigned g_watchers;         /* live knotes, every signal (sig_lock) */

/* ---- the handler ---------------------------------------------------------- */

static bool is_fault(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE ||
	       sig == SIGTRAP || sig == SIGSYS;
}

static void on_signal(int sig, siginfo_t *si, void *ctx)
{
	if (sig <= 0 || sig >= KQE_NSIG)
		return;
	int saved_errno = errno;
	/* The counter before the serial: a scan that sees the new serial sees
	 * the new count too. */
	__atomic_add_fetch(&counters[sig], 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&g_serial, 1, __ATOMIC_SEQ_CST);
	int fd = __atomic_load_n(&g_evfd, __ATOMIC_SEQ_CST);
	if (fd >= 0) {
		uint64_t one = 1;
		ssize_t r = write(fd, &one, sizeof one);
		(void)r; /* EAGAIN at 2^64 - 2 writes: never in practice */
	}
	const struct sigaction *p = &slots[sig].prev;
	void (*h)(int) = p->sa_handler;
	if (h == SIG_DFL || h == SIG_IGN) {
		if (is_fault(sig) && si && si->si_code > 0) {
			/* A real fault: returning would run the instruction
			 * again forever.  Let the default action happen. */
			struct sigaction dfl;
			memset(&dfl, 0, sizeof dfl);
			dfl.sa_handler = SIG_DFL;
			sigemptyset(&dfl.sa_mask);
			sigaction(sig, &dfl, NULL);
		}
		errno = saved_errno;
		return; /* ignored, or a default action suppressed while watched */
	}
	__atomic_add_fetch(&g_chained, 1, __ATOMIC_SEQ_CST);
	errno = saved_errno;
	if (p->sa_flags & SA_SIGINFO)
		p->sa_sigaction(sig, si, ctx);
	else
		h(sig);
}

/* ---- the table ------------------------------------------------------------ */

/* Is this ident a signal the engine can watch?  Others never fire. */
static bool sig_live(uintptr_t ident)
{
	return ident > 0 && ident < KQE_NSIG && ident != SIGKILL && ident != SIGSTOP;
}

/* The process-wide eventfd, made on first use; sig_lock held. */
static int evfd_get(void)
{
	if (g_evfd < 0) {
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0)
			return -1;
		__atomic_store_n(&g_evfd, fd, __ATOMIC_SEQ_CST);
	}
	return g_evfd;
}

/* Nothing watched anywhere: every queue has dropped its registration and
 * every handler is gone, so the descriptor goes too (a program that stops
 * watching signals gets its descriptor count back).  The number is cleared
 * first; only a handler already past loading it could still write.
 * sig_lock held. */
static void evfd_release(void)
{
	if (g_watchers == 0 && g_evfd >= 0) {
		int fd = __atomic_exchange_n(&g_evfd, -1, __ATOMIC_SEQ_CST);
		close(fd);
	}
}

/* One more knote watches sig; the first installs the handler.  sig_lock
 * held.  Never fails: a signal the system will not let us catch (glibc's
 * reserved ones) is accepted and never fires. */
static void sig_watch(int sig)
{
	struct sigslot *s = &slots[sig];
	g_watchers++;
	if (s->watchers++ > 0)
		return;
	struct sigaction prev, sa;
	if (sigaction(sig, NULL, &prev) < 0)
		return;
	if (sig == SIGCHLD && prev.sa_handler == SIG_IGN)
		return; /* FreeBSD discards an ignored SIGCHLD: never counted */
	if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction == on_signal) {
		/* Our own handler, put back by someone who had saved it: never
		 * chain to it (it would call itself forever). */
		prev.sa_handler = SIG_DFL;
		prev.sa_flags &= ~SA_SIGINFO;
	}
	s->prev = prev;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO;
	if (prev.sa_handler == SIG_DFL || prev.sa_handler == SIG_IGN) {
		/* An ignored signal never interrupts the program's calls. */
		sigemptyset(&sa.sa_mask);
		sa.sa_flags |= SA_RESTART;
	} else {
		/* The program's handler runs as it asked to. */
		sa.sa_mask = prev.sa_mask;
		sa.sa_flags |= prev.sa_flags & (SA_RESTART | SA_ONSTACK | SA_NODEFER);
	}
	if (sig == SIGCHLD)
		sa.sa_flags |= prev.sa_flags & (SA_NOCLDSTOP | SA_NOCLDWAIT);
	if (sigaction(sig, &sa, NULL) < 0)
		return;
	s->installed = true;
	/* Unblock so the handler runs.  A signal already pending is delivered
	 * before pthread_sigmask returns, before the caller takes the
	 * knote's baseline: it is not counted. */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, sig);
	if (pthread_sigmask(SIG_UNBLOCK, &set, &old) == 0)
		s->was_blocked = sigismember(&old, sig) == 1;
}

/* Put back what the program had: block first, so that a signal arriving
 * meanwhile waits for the program's disposition instead of finding
 * neither; then the disposition, unless the program changed it itself
 * while watched. */
static void sig_restore(int sig, struct sigslot *s, bool in_fork_child)
{
	if (s->was_blocked) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, sig);
		if (in_fork_child)
			sigprocmask(SIG_BLOCK, &set, NULL);
		else
			pthread_sigmask(SIG_BLOCK, &set, NULL);
	}
	struct sigaction cur;
	if (sigaction(sig, &s->prev, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO &&
						     cur.sa_sigaction == on_signal))
		sigaction(sig, &cur, NULL); /* the program's own later choice */
}

/* One knote fewer; the last restores.  sig_lock held. */
static void sig_unwatch(int sig)
{
	struct sigslot *s = &slots[sig];
	if (s->watchers == 0)
		return;
	g_watchers--;
	if (--s->watchers == 0) {
		if (s->installed)
			sig_restore(sig, s, false);
		s->installed = false;
		s->was_blocked = false;
	}
	evfd_release();
}

/* ---- the filter ----------------------------------------------------------- */

static int signal_attach(struct kqe_queue *q, struct knote *kn, const struct kevent *kev)
{
	(void)kev;
	kn->flags |= EV_CLEAR; /* forced, and shown in events */
	kn->u.sig.next = NULL;
	if (!sig_live(kn->ident))
		return 0; /* accepted, never fires */
	pthread_mutex_lock(&sig_lock);
	int fd = evfd_get();
	if (fd < 0) {
		int err = errno;
		pthread_mutex_unlock(&sig_lock);
		return err;
	}
	if (!q->sig_registered) {
		int err = kqe_epoll_add(q, fd, EPOLLIN | EPOLLET, KQE_TAG(TAG_SIGNAL, 0));
		if (err) {
			evfd_release();
			pthread_mutex_unlock(&sig_lock);
			return err;
		}
		q->sig_registered = true;
	}
	sig_watch((int)kn->ident);
	pthread_mutex_unlock(&sig_lock);
	/* The baseline after unblocking: a signal pending before EV_ADD has
	 * just been counted by the handler and is not ours. */
	kn->u.sig.seen = __atomic_load_n(&counters[kn->ident], __ATOMIC_SEQ_CST);
	kn->u.sig.next = q->siglist;
	q->siglist = kn;
	return 0;
}

static void signal_detach(struct kqe_queue *q, struct knote *kn)
{
	if (!sig_live(kn->ident))
		return;
	struct knote **pp = &q->siglist;
	while (*pp && *pp != kn)
		pp = &(*pp)->u.sig.next;
	if (*pp == NULL)
		return; /* never attached (a failed EV_ADD) */
	*pp = kn->u.sig.next;
	pthread_mutex_lock(&sig_lock);
	if (q->siglist == NULL && q->sig_registered) {
		/* No signal knote left: stop the edges.  A closed queue's epoll
		 * is gone already, and with it the registration. */
		if (q->epfd >= 0 && g_evfd >= 0)
			epoll_ctl(q->epfd, EPOLL_CTL_DEL, g_evfd, NULL);
		q->sig_registered = false;
	}
	sig_unwatch((int)kn->ident);
	pthread_mutex_unlock(&sig_lock);
}

static int signal_modify(struct kqe_queue *q, struct knote *kn, const struct kevent *kev)
{
	(void)q;
	/* Nothing to re-arm: the parameters are stored and unused. */
	kn->sfflags = kev->fflags;
	kn->sdata = kev->data;
	return 0;
}

static int signal_event(struct kqe_queue *q, struct knote *kn, struct kevent *ev)
{
	(void)q;
	EV_SET(ev, kn->ident, EVFILT_SIGNAL, kn->flags, 0, kn->data_out, kn->udata);
	return 1;
}

static const struct kqe_filter_ops signal_ops = {
	.attach = signal_attach,
	.modify = signal_modify,
	.detach = signal_detach,
	.event = signal_event,
};

/* ---- collection ----------------------------------------------------------- */

static bool signals_changed(struct kqe_queue *q)
{
	return __atomic_load_n(&g_serial, __ATOMIC_SEQ_CST) != q->sig_serial;
}

static void signals_scan(struct kqe_queue *q)
{
	/* The serial before the counters (the handler bumps them the other
	 * way round): nothing counted after this load can be missed, since it
	 * moves the serial again. */
	q->sig_serial = __atomic_load_n(&g_serial, __ATOMIC_SEQ_CST);
	for (struct knote *kn = q->siglist; kn; kn = kn->u.sig.next) {
		uint64_t c = __atomic_load_n(&counters[kn->ident], __ATOMIC_SEQ_CST);
		if (c == kn->u.sig.seen)
			continue;
		kn->data_out += (int64_t)(c - kn->u.sig.seen);
		kn->u.sig.seen = c;
		kqe_knote_activate(q, kn); /* a disabled knote keeps counting */
	}
}

void kqe_signal_mark(struct kqe_sigmark *m)
{
	m->serial = __atomic_load_n(&g_serial, __ATOMIC_SEQ_CST);
	m->chained = __atomic_load_n(&g_chained, __ATOMIC_SEQ_CST);
}

bool kqe_signal_interrupt_ours(const struct kqe_sigmark *m)
{
	/* A watched signal ran the engine's handler, and no handler of the
	 * program ran from it.  A handler of an unwatched signal running at
	 * the same moment cannot be told apart; the EINTR is then lost, and
	 * the wait goes on. */
	return __atomic_load_n(&g_serial, __ATOMIC_SEQ_CST) != m->serial &&
	       __atomic_load_n(&g_chained, __ATOMIC_SEQ_CST) == m->chained;
}

/* ---- fork ------------------------------------------------------------------ */

static void signal_atfork(void)
{
	/* The child has no queue: give back what the program had set, and
	 * start over.  Another thread of the parent may have held sig_lock at
	 * the fork; the child has only this one thread. */
	pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
	sig_lock = fresh;
	for (int sig = 1; sig < KQE_NSIG; sig++) {
		struct sigslot *s = &slots[sig];
		if (s->watchers > 0 && s->installed)
			sig_restore(sig, s, true);
	}
	memset(slots, 0, sizeof slots);
	g_watchers = 0;
	/* The eventfd is shared with the parent: a write here would wake the
	 * parent's queues.  The child makes its own when it needs one. */
	int fd = __atomic_exchange_n(&g_evfd, -1, __ATOMIC_SEQ_CST);
	if (fd >= 0)
		close(fd);
}

/* ---- the family ------------------------------------------------------------- */

static int signal_ready(struct kqe_queue *q, const struct epoll_event *buf, int count,
			struct kevent *out, int room, int *taken)
{
	(void)buf, (void)count, (void)out, (void)room;
	*taken = 1;
	signals_scan(q);
	return 0;
}

/* Before each collection: a signal counted since the last look (no
 * syscall: the serial is in memory). */
static void signal_poll(struct kqe_queue *q)
{
	if (q->siglist && signals_changed(q))
		signals_scan(q);
}

static int signal_rearm(struct kqe_queue *q, int epfd, bool add)
{
	if (!q->sig_registered)
		return 0;
	int fd = __atomic_load_n(&g_evfd, __ATOMIC_SEQ_CST);
	return kqe_epoll_rearm(epfd, add, fd, EPOLLIN | EPOLLET, KQE_TAG(TAG_SIGNAL, 0));
}

const struct kqe_family kqe_family_signal = {
	.name = "signal",
	.ops = &signal_ops,
	.filters = { EVFILT_SIGNAL },
	.tags = { TAG_SIGNAL },
	.ready = signal_ready,
	.poll = signal_poll,
	.atfork = signal_atfork,
	.rearm = signal_rearm,
};
