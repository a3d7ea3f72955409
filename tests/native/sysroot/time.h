#ifndef KQ_SYSROOT_TIME_H
#define KQ_SYSROOT_TIME_H
#include <sys/types.h>
struct timespec {
	time_t tv_sec;
	long tv_nsec;
};
typedef int clockid_t;
#define CLOCK_REALTIME 0
#if defined(__FreeBSD__)
#define CLOCK_MONOTONIC 4
#elif defined(__APPLE__)
#define CLOCK_MONOTONIC 6
#else
#define CLOCK_MONOTONIC 3
#endif
int clock_gettime(clockid_t clock, struct timespec *ts);
int nanosleep(const struct timespec *req, struct timespec *rem);
time_t time(time_t *t);
#endif
