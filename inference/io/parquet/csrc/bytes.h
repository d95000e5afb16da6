/*
 * Byte-level helpers shared by the units of the Parquet reader: a bounded cursor with
 * ULEB128 varints (Thrift's compact protocol, snappy's length preamble, the RLE
 * hybrid's run headers) and little-endian loads of 1 to 4 bytes.
 */
#ifndef LINREG_PQ_BYTES_H
#define LINREG_PQ_BYTES_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#endif

/* bytes [p, end); bad is set when a read would pass end or meets something malformed */
typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    int bad;
} Cursor;

/* An unsigned LEB128 varint of at most 10 bytes (0 and bad set when cut short or longer). */
static inline uint64_t read_varint(Cursor *c) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (c->p >= c->end) {
            c->bad = 1;
            return 0;
        }
        uint8_t b = *c->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            return v;
        }
    }
    c->bad = 1;
    return 0;
}

/* n (0..4) bytes at p as a little-endian unsigned integer */
static inline uint32_t load_le(const uint8_t *p, int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; i++) {
        v |= (uint32_t)p[i] << (8 * i);
    }
    return v;
}

#endif
