/* Stand-in <sys/param.h> for NetBSD 9: the version macro only
 * (MMmmrrpp00), written for kq's header checks. */
#ifndef KQ_STANDIN_SYS_PARAM_H
#define KQ_STANDIN_SYS_PARAM_H
#define __NetBSD_Version__ 900000000
#endif
