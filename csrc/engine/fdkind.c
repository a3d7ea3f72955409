/*
 * fdkind.c - what a descriptor is, and the `data` FreeBSD gives for READ
 * and WRITE on it (semantics §4.1, §4.2, §6.3).  Pure functions of the
 * descriptor: the binding's lazy data (kqe_event_data) ends here too.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "fd.h"

enum kqe_fdkind kqe_fd_classify(int fd, const struct stat *st)
{
	switch (st->st_mode & S_IFMT) {
	/* A queue is an epoll descriptor, an anonymous inode, which Linux
	 * shows with no type or as a regular file, never as one of these
	 * three: they need no look at the registry (its lock, at every
	 * EV_ADD of a new descriptor). */
	case S_IFIFO:
		return FDK_PIPE;
	case S_IFCHR:
		return FDK_CHR;
	case S_IFSOCK:
		/* Listener or not is settled at the first event delivered
		 * (kqe_fd_settle): registration stays at fstat + epoll_ctl, and
		 * a socket that starts listening after EV_ADD is still seen as a
		 * listener. */
		return FDK_SOCKET;
	default:
		break;
	}
	if (kqe_queue_serial(fd) != 0)
		return FDK_KQ;
	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
		return FDK_FILE;
	default:
		return FDK_OTHER;
	}
}

/* FDK_SOCK, FDK_LISTEN_TCP or FDK_LISTEN_OTHER; -1 if fd is no socket. */
static int socket_kind(int fd)
{
	int on = 0, domain = 0;
	socklen_t len = sizeof on;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0)
		return errno == ENOTSOCK ? -1 : FDK_SOCK;
	if (!on)
		return FDK_SOCK;
	len = sizeof domain;
	(void)getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
	return (domain == AF_INET || domain == AF_INET6) ? FDK_LISTEN_TCP : FDK_LISTEN_OTHER;
}

enum kqe_fdkind kqe_fd_socket_kind(int fd)
{
	int kind = socket_kind(fd);
	return kind < 0 ? FDK_SOCK : (enum kqe_fdkind)kind;
}

enum kqe_fdkind kqe_fd_pollable_kind(int fd)
{
	int kind = socket_kind(fd);
	if (kind >= 0)
		return (enum kqe_fdkind)kind;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return FDK_OTHER; /* closed: its next change tells */
	return kqe_fd_classify(fd, &st);
}

static int read_data(int fd, enum kqe_fdkind kind, int64_t *data)
{
	int v = 0;
	switch (kind) {
	case FDK_LISTEN_TCP: {
		/* For a listener the kernel reports the accept queue here. */
		struct tcp_info ti;
		socklen_t len = sizeof ti;
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
			return -1;
		*data = ti.tcpi_unacked;
		return 0;
	}
	case FDK_LISTEN_OTHER:
		*data = 1; /* Linux has no backlog query but for TCP */
		return 0;
	case FDK_FILE: {
		struct stat st;
		if (fstat(fd, &st) < 0)
			return -1;
		off_t off = lseek(fd, 0, SEEK_CUR);
		if (off < 0)
			return S_ISDIR(st.st_mode) ? 0 : -1;
		*data = (int64_t)st.st_size - (int64_t)off;
		return 0;
	}
	default:
		if (ioctl(fd, FIONREAD, &v) < 0)
			return errno == ENOTTY || errno == EINVAL ? 0 : -1;
		*data = v;
		return 0;
	}
}

static int write_data(int fd, enum kqe_fdkind kind, int64_t *data)
{
	int v = 0;
	switch (kind) {
	case FDK_SOCK: {
		/* Free send space; Linux has no exact query (semantics §6.3). */
		int sndbuf = 0, queued = 0;
		socklen_t len = sizeof sndbuf;
		if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) < 0 ||
		    ioctl(fd, SIOCOUTQ, &queued) < 0)
			return -1;
		*data = sndbuf > queued ? sndbuf - queued : 0;
		return 0;
	}
	case FDK_PIPE: {
		int size = fcntl(fd, F_GETPIPE_SZ);
		if (size < 0 || ioctl(fd, FIONREAD, &v) < 0)
			return -1;
		*data = size > v ? size - v : 0;
		return 0;
	}
	default:
		return 0; /* files: 0, as FreeBSD */
	}
}

int kqe_fd_data(int fd, enum kqe_fdkind kind, short filter, int64_t *data)
{
	*data = 0;
	return filter == EVFILT_READ ? read_data(fd, kind, data) : write_data(fd, kind, data);
}
