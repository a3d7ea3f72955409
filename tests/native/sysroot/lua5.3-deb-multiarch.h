/* Debian's luaconf.h includes this for its library path; the path is
 * not used by kq. */
#define DEB_HOST_MULTIARCH "kq-standin"
