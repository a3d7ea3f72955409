#ifndef KQ_SYSROOT_FCNTL_H
#define KQ_SYSROOT_FCNTL_H
#include <sys/types.h>
#define O_RDONLY 0x0000
#define O_WRONLY 0x0001
#define O_RDWR 0x0002
#define O_NONBLOCK 0x0004
#if defined(__FreeBSD__)
#define O_CLOEXEC 0x00100000
#elif defined(__APPLE__)
#define O_CLOEXEC 0x01000000
#elif defined(__NetBSD__)
#define O_CLOEXEC 0x00400000
#else
#define O_CLOEXEC 0x00010000
#endif
#define F_GETFD 1
#define F_SETFD 2
#define F_GETFL 3
#define F_SETFL 4
#define FD_CLOEXEC 1
int fcntl(int fd, int cmd, ...);
int open(const char *path, int flags, ...);
#endif
