#ifndef KQ_SYSROOT_SYS_MMAN_H
#define KQ_SYSROOT_SYS_MMAN_H
#include <sys/types.h>
#define PROT_READ 0x01
#define PROT_WRITE 0x02
#define MAP_PRIVATE 0x0002
#define MAP_ANON 0x1000 /* the four systems agree */
#define MAP_FAILED ((void *)-1)
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int munmap(void *addr, size_t len);
/* minherit(2): a page given to a fork child as zeros.  FreeBSD 12 and
 * later: INHERIT_ZERO; OpenBSD and NetBSD: MAP_INHERIT_ZERO (numbered
 * after NetBSD's MAP_INHERIT_DONATE_COPY there).  macOS has no such
 * inheritance. */
#if defined(__FreeBSD__)
#define INHERIT_ZERO 3
int minherit(void *addr, size_t len, int inherit);
#elif defined(__OpenBSD__)
#define MAP_INHERIT_ZERO 3
int minherit(void *addr, size_t len, int inherit);
#elif defined(__NetBSD__)
#define MAP_INHERIT_ZERO 4
int minherit(void *addr, size_t len, int inherit);
#endif
#endif
