#ifndef KQ_SYSROOT_ERRNO_H
#define KQ_SYSROOT_ERRNO_H
#if defined(__FreeBSD__) || defined(__APPLE__)
int *__error(void);
#define errno (*__error())
#else
int *__errno(void);
#define errno (*__errno())
#endif
#define EPERM 1
#define ENOENT 2
#define ESRCH 3
#define EINTR 4
#define EIO 5
#define E2BIG 7
#define EBADF 9
#define ECHILD 10
#define ENOMEM 12
#define EACCES 13
#define EFAULT 14
#define EBUSY 16
#define EEXIST 17
#define EINVAL 22
#define ENFILE 23
#define EMFILE 24
#define ENOSPC 28
#define EPIPE 32
#define ERANGE 34
#define EAGAIN 35
#define EWOULDBLOCK EAGAIN
#if defined(__APPLE__)
#define ENOTSUP 45
#define EOPNOTSUPP 102
#elif defined(__FreeBSD__)
#define EOPNOTSUPP 45
#define ENOTSUP EOPNOTSUPP
#elif defined(__NetBSD__)
#define EOPNOTSUPP 45
#define ENOTSUP 86
#else
#define EOPNOTSUPP 45
#define ENOTSUP 91
#endif
#endif
