/*
 * fdcount.h - how many descriptors this process has open, for the leak
 * checks of the test, fuzz and bench programs (Linux: /proc/self/fd).
 * Header-only so that each program, built on its own, can include it.
 */
#ifndef KQ_TEST_FDCOUNT_H
#define KQ_TEST_FDCOUNT_H

#include <dirent.h>

/* Open descriptors, not counting the one opendir() holds; -1 when
 * /proc/self/fd cannot be read. */
static inline int kq_fdcount(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

#endif
