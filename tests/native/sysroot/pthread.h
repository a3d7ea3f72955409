#ifndef KQ_SYSROOT_PTHREAD_H
#define KQ_SYSROOT_PTHREAD_H
/* Opaque as far as kq is concerned: the layouts differ by system. */
typedef struct kq_sysroot_mutex { void *opaque[8]; } pthread_mutex_t;
typedef struct kq_sysroot_once { long state; void *opaque[8]; } pthread_once_t;
#define PTHREAD_MUTEX_INITIALIZER { { 0 } }
#define PTHREAD_ONCE_INIT { 0, { 0 } }
int pthread_atfork(void (*prepare)(void), void (*parent)(void),
		   void (*child)(void));
int pthread_once(pthread_once_t *once, void (*init)(void));
int pthread_mutex_lock(pthread_mutex_t *m);
int pthread_mutex_unlock(pthread_mutex_t *m);
#endif
