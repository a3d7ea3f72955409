#ifndef KQ_SYSROOT_STDLIB_H
#define KQ_SYSROOT_STDLIB_H
#include <stddef.h>
void *malloc(size_t n);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t n);
void free(void *p);
void abort(void) __attribute__((noreturn));
void exit(int status) __attribute__((noreturn));
char *getenv(const char *name);
long strtol(const char *s, char **end, int base);
double strtod(const char *s, char **end);
#endif
