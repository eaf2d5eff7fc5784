#ifndef WARDEN_CZLIB_SHIM_H
#define WARDEN_CZLIB_SHIM_H
#include <zlib.h>

/* inflateInit2 is a macro; Swift imports functions only. */
static inline int warden_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
/* deflateInit2 is a macro too. */
static inline int warden_deflateInit2(z_streamp strm, int level, int windowBits) {
    return deflateInit2(strm, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY);
}
#endif
