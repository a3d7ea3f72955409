#ifndef KQ_SYSROOT_SYS_TYPES_H
#define KQ_SYSROOT_SYS_TYPES_H
#include <stddef.h>
#include <stdint.h>
typedef long ssize_t;
typedef int64_t off_t;
typedef int pid_t;
typedef uint32_t uid_t;
typedef uint32_t gid_t;
typedef uint16_t mode_t;
#if defined(__FreeBSD__) && defined(__i386__)
typedef int32_t time_t; /* FreeBSD keeps a 32-bit time_t on i386 only */
#else
typedef int64_t time_t;
#endif
typedef long suseconds_t;
typedef unsigned char u_char;
typedef unsigned short u_short;
typedef unsigned int u_int;
typedef unsigned long u_long;
#endif
