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

/* zstd, loaded at run time from libzstd.so.1 when present (no build-time dependency): the stream buffers as
   zstd.h declares them, and the entry points used. */
#include <stddef.h>
typedef struct { const void *src; size_t size; size_t pos; } warden_zstd_in;
typedef struct { void *dst; size_t size; size_t pos; } warden_zstd_out;
typedef void *(*warden_zstd_create_fn)(void);
typedef size_t (*warden_zstd_free_fn)(void *);
typedef size_t (*warden_zstd_decompress_fn)(void *, warden_zstd_out *, warden_zstd_in *);
typedef unsigned (*warden_zstd_iserror_fn)(size_t);
typedef const char *(*warden_zstd_errorname_fn)(size_t);
#endif
