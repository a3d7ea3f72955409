#ifndef KQ_SYSROOT_UNISTD_H
#define KQ_SYSROOT_UNISTD_H
#include <sys/types.h>
int close(int fd);
ssize_t read(int fd, void *buf, size_t n);
ssize_t write(int fd, const void *buf, size_t n);
off_t lseek(int fd, off_t off, int whence);
int pipe(int fds[2]);
int dup(int fd);
int dup2(int fd, int to);
pid_t getpid(void);
pid_t fork(void);
int isatty(int fd);
#endif
