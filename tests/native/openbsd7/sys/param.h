/* Stand-in <sys/param.h> for OpenBSD 7.8: the release macro only
 * (YYYYMM of the release), written for kq's header checks. */
#ifndef KQ_STANDIN_SYS_PARAM_H
#define KQ_STANDIN_SYS_PARAM_H
#define OpenBSD 202510
#define OpenBSD7_8 1
#endif
