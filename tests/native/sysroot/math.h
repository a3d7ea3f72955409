#ifndef KQ_SYSROOT_MATH_H
#define KQ_SYSROOT_MATH_H
#define HUGE_VAL __builtin_huge_val()
#define INFINITY __builtin_inff()
#define NAN __builtin_nanf("")
#define isnan(x) __builtin_isnan(x)
#define isinf(x) __builtin_isinf(x)
#define isfinite(x) __builtin_isfinite(x)
double floor(double x);
double ceil(double x);
double fmod(double x, double y);
double modf(double x, double *i);
double ldexp(double x, int e);
double frexp(double x, int *e);
double pow(double x, double y);
#endif
