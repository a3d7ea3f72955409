/*
 * churn.h - the client of the connection-churn scenario, shared by cbench.c
 * and benchutil.c so that every server contender faces the same load: a
 * child process keeping CHURN_INFLIGHT short-lived TCP connections to
 * 127.0.0.1:port in flight, each one connect, send CHURN_REQUEST, read the
 * answer until the server closes, close.  It runs until killed
 * (churn_client_stop), or until its parent dies.
 */
#ifndef BENCH_CHURN_H
#define BENCH_CHURN_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHURN_INFLIGHT 16
#define CHURN_REQUEST "GET / HTTP/1.0\r\n\r\n"
#define CHURN_ANSWER "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"

/* A nonblocking listening socket on 127.0.0.1, any port: its fd, *port. */
static int churn_listen(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof a;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 1024) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/* Start a connection in slot i (epoll data = i); -1 on failure. */
static int churn_connect(int ep, const struct sockaddr_in *a, int i)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)a, sizeof *a) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = (uint32_t)i };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void churn_client_loop(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int fds[CHURN_INFLIGHT];
	int sent[CHURN_INFLIGHT];
	for (int i = 0; i < CHURN_INFLIGHT; i++) {
		while ((fds[i] = churn_connect(ep, &a, i)) < 0)
			usleep(1000);
		sent[i] = 0;
	}
	struct epoll_event evs[CHURN_INFLIGHT];
	char buf[512];
	for (;;) {
		int n = epoll_wait(ep, evs, CHURN_INFLIGHT, 1000);
		if (n < 0 && errno != EINTR)
			_exit(1);
		for (int k = 0; k < n; k++) {
			int i = (int)evs[k].data.u32, fd = fds[i];
			if (!sent[i]) {
				/* Connected (or failed: the write tells). */
				ssize_t w = write(fd, CHURN_REQUEST, sizeof CHURN_REQUEST - 1);
				struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
				if (w == (ssize_t)sizeof CHURN_REQUEST - 1 &&
				    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) == 0) {
					sent[i] = 1;
					continue;
				}
			} else {
				ssize_t r;
				while ((r = read(fd, buf, sizeof buf)) > 0)
					;
				if (r < 0 && errno == EAGAIN)
					continue;
			}
			/* The answer read to its end (or a failure): next one. */
			close(fd);
			sent[i] = 0;
			while ((fds[i] = churn_connect(ep, &a, i)) < 0)
				usleep(1000); /* out of ports or descriptors: wait */
		}
	}
}

/* The client in a child process: its pid, or -1. */
static pid_t churn_client_start(int port)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	churn_client_loop(port);
	_exit(0);
}

static void churn_client_stop(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

#endif
