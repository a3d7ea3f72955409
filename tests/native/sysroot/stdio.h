#ifndef KQ_SYSROOT_STDIO_H
#define KQ_SYSROOT_STDIO_H
#include <stdarg.h>
#include <stddef.h>
typedef struct kq_sysroot_file FILE;
extern FILE *stdin, *stdout, *stderr;
#define EOF (-1)
#define BUFSIZ 1024
int fileno(FILE *f);
int fflush(FILE *f);
int fprintf(FILE *f, const char *fmt, ...);
int snprintf(char *s, size_t n, const char *fmt, ...);
int vsnprintf(char *s, size_t n, const char *fmt, va_list ap);
size_t fwrite(const void *p, size_t size, size_t n, FILE *f);
#endif
