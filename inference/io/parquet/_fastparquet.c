/*
 * inference.batch._fastparquet: one flat numeric Parquet column chunk decoded page by
 * page straight into a column of a C-contiguous matrix.
 *
 * ColumnChunkReader(fd, offset, length, physical_type, codec, max_definition_level,
 *                   num_values)
 *     .read(out, column, rows) -> bool
 *     .close()
 *
 * The chunk's bytes [offset, offset + length) are read with pread(2), so readers of
 * several chunks may share one file descriptor. A reader holds at most three buffers:
 * the raw bytes of the current page (its header, its body and a little lookahead for
 * the next header), the decompressed page, and the dictionary's values; each is
 * bounded by MAX_PAGE_BYTES (plus MAX_HEADER_BYTES for the raw one).
 *
 * What is decoded (anything else makes read() answer False, and the reader is spent):
 *   - page headers in the Thrift compact protocol (parquet.thrift's PageHeader), with
 *     unknown fields of any type skipped;
 *   - DICTIONARY_PAGE (PLAIN or PLAIN_DICTIONARY values), first in the chunk;
 *   - DATA_PAGE (v1) and DATA_PAGE_V2 with PLAIN, PLAIN_DICTIONARY or RLE_DICTIONARY
 *     values and, for an optional column (max definition level 1), RLE definition
 *     levels that are all 1 (no nulls); no repetition levels;
 *   - codecs UNCOMPRESSED and SNAPPY (raw snappy blocks, decoded here).
 * Every length read from the file is checked against the bytes that hold it; the
 * dictionary indices against the dictionary's size.
 *
 * The values are stored in the host's byte order, so the reader works on
 * little-endian hosts only: elsewhere the constructor raises ValueError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__GNUC__) || defined(__clang__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#endif

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FASTPARQUET_LITTLE_ENDIAN 1
#else
#define FASTPARQUET_LITTLE_ENDIAN 0
#endif

/* parquet.thrift enums */
enum { T_INT32 = 1, T_INT64 = 2, T_FLOAT = 4, T_DOUBLE = 5 };
enum { C_UNCOMPRESSED = 0, C_SNAPPY = 1 };
enum { P_DATA = 0, P_INDEX = 1, P_DICTIONARY = 2, P_DATA_V2 = 3 };
enum { E_PLAIN = 0, E_PLAIN_DICTIONARY = 2, E_RLE = 3, E_RLE_DICTIONARY = 8 };

#define MAX_PAGE_BYTES ((int64_t)256 << 20)
#define MAX_HEADER_BYTES ((int64_t)1 << 20)
/* bytes read past a page's body, so the next page header usually comes with it */
#define LOOKAHEAD_BYTES 1024
/* the first look at a page header */
#define HEADER_PROBE_BYTES 1024
#define THRIFT_MAX_DEPTH 32
#define INDEX_BATCH 1024

/* output kinds: (physical type, out item) */
enum { K_D2D, K_D2F, K_F2F, K_F2D, K_I64, K_I32 };

/* ------------------------------------------------------------- thrift compact */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    int bad; /* ran out of bytes or met something malformed */
} Cursor;

static uint64_t read_varint(Cursor *c) {
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

static int64_t read_zigzag(Cursor *c) {
    uint64_t u = read_varint(c);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static int32_t read_i32(Cursor *c) {
    int64_t v = read_zigzag(c);
    if (v < INT32_MIN || v > INT32_MAX) {
        c->bad = 1;
        return 0;
    }
    return (int32_t)v;
}

static void skip_bytes(Cursor *c, uint64_t n) {
    if (c->bad || n > (uint64_t)(c->end - c->p)) {
        c->bad = 1;
        return;
    }
    c->p += n;
}

/* compact types */
enum {
    CT_STOP = 0,
    CT_TRUE = 1,
    CT_FALSE = 2,
    CT_BYTE = 3,
    CT_I16 = 4,
    CT_I32 = 5,
    CT_I64 = 6,
    CT_DOUBLE = 7,
    CT_BINARY = 8,
    CT_LIST = 9,
    CT_SET = 10,
    CT_MAP = 11,
    CT_STRUCT = 12,
    CT_UUID = 13,
};

static void skip_value(Cursor *c, int type, int depth);

static void skip_struct(Cursor *c, int depth) {
    if (depth > THRIFT_MAX_DEPTH) {
        c->bad = 1;
        return;
    }
    while (!c->bad) {
        if (c->p >= c->end) {
            c->bad = 1;
            return;
        }
        uint8_t b = *c->p++;
        if (b == 0) {
            return;
        }
        if ((b >> 4) == 0) {
            read_zigzag(c); /* explicit field id */
        }
        skip_value(c, b & 0x0f, depth + 1);
    }
}

/* a value of a container element or a field; booleans in a field carry no byte */
static void skip_elements(Cursor *c, int type, uint64_t n, int depth) {
    /* every element takes at least one byte, so more elements than bytes is short */
    if (n > (uint64_t)(c->end - c->p)) {
        c->bad = 1;
        return;
    }
    for (uint64_t i = 0; i < n && !c->bad; i++) {
        if (type == CT_TRUE || type == CT_FALSE) {
            skip_bytes(c, 1); /* a boolean element is one byte */
        } else {
            skip_value(c, type, depth);
        }
    }
}

static void skip_value(Cursor *c, int type, int depth) {
    if (depth > THRIFT_MAX_DEPTH) {
        c->bad = 1;
        return;
    }
    switch (type) {
    case CT_TRUE:
    case CT_FALSE:
        return;
    case CT_BYTE:
        skip_bytes(c, 1);
        return;
    case CT_I16:
    case CT_I32:
    case CT_I64:
        read_varint(c);
        return;
    case CT_DOUBLE:
        skip_bytes(c, 8);
        return;
    case CT_UUID:
        skip_bytes(c, 16);
        return;
    case CT_BINARY:
        skip_bytes(c, read_varint(c));
        return;
    case CT_LIST:
    case CT_SET: {
        if (c->p >= c->end) {
            c->bad = 1;
            return;
        }
        uint8_t b = *c->p++;
        uint64_t n = b >> 4;
        if (n == 15) {
            n = read_varint(c);
        }
        if (!c->bad) {
            skip_elements(c, b & 0x0f, n, depth + 1);
        }
        return;
    }
    case CT_MAP: {
        uint64_t n = read_varint(c);
        if (c->bad || n == 0) {
            return;
        }
        if (c->p >= c->end) {
            c->bad = 1;
            return;
        }
        uint8_t kv = *c->p++;
        if (n > (uint64_t)(c->end - c->p)) {
            c->bad = 1;
            return;
        }
        for (uint64_t i = 0; i < n && !c->bad; i++) {
            skip_elements(c, kv >> 4, 1, depth + 1);
            skip_elements(c, kv & 0x0f, 1, depth + 1);
        }
        return;
    }
    case CT_STRUCT:
        skip_struct(c, depth + 1);
        return;
    default:
        c->bad = 1;
        return;
    }
}

/* Reads the next field header: returns 0 at STOP (or when bad), else 1 with *id and
 * *type set; *last is the previous field id (the compact protocol sends deltas). */
static int next_field(Cursor *c, int *last, int *id, int *type) {
    if (c->bad) {
        return 0;
    }
    if (c->p >= c->end) {
        c->bad = 1;
        return 0;
    }
    uint8_t b = *c->p++;
    if (b == 0) {
        return 0;
    }
    int delta = b >> 4;
    if (delta == 0) {
        int64_t v = read_zigzag(c);
        if (v < INT16_MIN || v > INT16_MAX) {
            c->bad = 1;
            return 0;
        }
        *id = (int)v;
    } else {
        *id = *last + delta;
    }
    *last = *id;
    *type = b & 0x0f;
    return !c->bad;
}

typedef struct {
    int has_type, has_usize, has_csize;
    int32_t type, uncompressed_size, compressed_size;
    /* DataPageHeader (v1) or DataPageHeaderV2 or DictionaryPageHeader */
    int has_sub;
    int32_t num_values, encoding, def_encoding;
    int has_num_values, has_encoding, has_def_encoding;
    /* v2 */
    int32_t num_nulls, num_rows, def_len, rep_len;
    int has_num_nulls, has_num_rows, has_def_len, has_rep_len;
    int is_compressed;
} PageHeader;

static int32_t field_i32(Cursor *c, int type) {
    if (type != CT_I32) {
        c->bad = 1;
        return 0;
    }
    return read_i32(c);
}

/* DataPageHeader (which = P_DATA), DictionaryPageHeader (P_DICTIONARY) or
 * DataPageHeaderV2 (P_DATA_V2), the fields this reader needs. */
static void parse_sub_header(Cursor *c, int which, PageHeader *h) {
    int last = 0, id, type;
    while (next_field(c, &last, &id, &type)) {
        if (id == 1) {
            h->num_values = field_i32(c, type);
            h->has_num_values = 1;
        } else if (which == P_DATA && id == 2) {
            h->encoding = field_i32(c, type);
            h->has_encoding = 1;
        } else if (which == P_DATA && id == 3) {
            h->def_encoding = field_i32(c, type);
            h->has_def_encoding = 1;
        } else if (which == P_DICTIONARY && id == 2) {
            h->encoding = field_i32(c, type);
            h->has_encoding = 1;
        } else if (which == P_DATA_V2 && id == 2) {
            h->num_nulls = field_i32(c, type);
            h->has_num_nulls = 1;
        } else if (which == P_DATA_V2 && id == 3) {
            h->num_rows = field_i32(c, type);
            h->has_num_rows = 1;
        } else if (which == P_DATA_V2 && id == 4) {
            h->encoding = field_i32(c, type);
            h->has_encoding = 1;
        } else if (which == P_DATA_V2 && id == 5) {
            h->def_len = field_i32(c, type);
            h->has_def_len = 1;
        } else if (which == P_DATA_V2 && id == 6) {
            h->rep_len = field_i32(c, type);
            h->has_rep_len = 1;
        } else if (which == P_DATA_V2 && id == 7) {
            if (type == CT_TRUE) {
                h->is_compressed = 1;
            } else if (type == CT_FALSE) {
                h->is_compressed = 0;
            } else {
                c->bad = 1;
            }
        } else {
            skip_value(c, type, 1);
        }
    }
}

/* Parses a PageHeader from [p, end): 1 with *size the header's bytes, 0 if malformed
 * or cut short. */
static int parse_page_header(const uint8_t *p, const uint8_t *end, PageHeader *h,
                             int64_t *size) {
    memset(h, 0, sizeof(*h));
    h->is_compressed = 1;
    Cursor c = {p, end, 0};
    int last = 0, id, type;
    while (next_field(&c, &last, &id, &type)) {
        switch (id) {
        case 1:
            h->type = field_i32(&c, type);
            h->has_type = 1;
            break;
        case 2:
            h->uncompressed_size = field_i32(&c, type);
            h->has_usize = 1;
            break;
        case 3:
            h->compressed_size = field_i32(&c, type);
            h->has_csize = 1;
            break;
        case 5:
        case 7:
        case 8:
            /* the sub-header of the page's type (field 1 comes first); any other is
             * skipped, and a page without its own sub-header is refused later */
            if (type != CT_STRUCT) {
                c.bad = 1;
                break;
            }
            if (!h->has_type || h->has_sub ||
                !((id == 5 && h->type == P_DATA) || (id == 7 && h->type == P_DICTIONARY) ||
                  (id == 8 && h->type == P_DATA_V2))) {
                skip_value(&c, type, 0);
                break;
            }
            h->has_sub = 1;
            parse_sub_header(&c, h->type, h);
            break;
        default:
            skip_value(&c, type, 0);
            break;
        }
    }
    if (c.bad || !h->has_type || !h->has_usize || !h->has_csize) {
        return 0;
    }
    *size = c.p - p;
    return 1;
}

/* ------------------------------------------------------------------ snappy */

static inline uint32_t load_le(const uint8_t *p, int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; i++) {
        v |= (uint32_t)p[i] << (8 * i);
    }
    return v;
}

/* Decompresses a raw snappy block of exactly dst_len bytes: 1 on success. */
static int snappy_decompress(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len) {
    Cursor c = {src, src + src_len, 0};
    uint64_t ulen = read_varint(&c);
    if (c.bad || ulen != dst_len) {
        return 0;
    }
    const uint8_t *ip = c.p, *iend = src + src_len;
    uint8_t *op = dst, *oend = dst + dst_len;
    while (ip < iend) {
        uint8_t tag = *ip++;
        size_t len, off;
        /* Short literals and copies (most tags of a compressible page) move 16 bytes
         * unconditionally while both buffers have room to spare; the bytes written
         * past the tag's end are overwritten by the next tags. */
        if (LIKELY(iend - ip >= 20 && oend - op >= 20)) {
            if ((tag & 3) == 0 && (tag >> 2) < 16) {
                len = (size_t)(tag >> 2) + 1;
                memcpy(op, ip, 16);
                op += len;
                ip += len;
                continue;
            }
            if ((tag & 3) == 1) {
                len = 4 + ((tag >> 2) & 7);
                off = ((size_t)(tag >> 5) << 8) | *ip++;
            } else if ((tag & 3) == 2) {
                len = (size_t)(tag >> 2) + 1;
                off = load_le(ip, 2);
                ip += 2;
            } else {
                goto slow; /* a long literal, or a copy with a 4-byte offset */
            }
            if (off == 0 || off > (size_t)(op - dst) || len > (size_t)(oend - op)) {
                return 0;
            }
            if (len <= 16 && off >= 8) {
                /* the second 8 bytes may start in the first: those are written */
                memcpy(op, op - off, 8);
                memcpy(op + 8, op - off + 8, 8);
                op += len;
                continue;
            }
            goto copy;
        }
    slow:
        switch (tag & 3) {
        case 0: {
            len = tag >> 2;
            if (len >= 60) {
                int nb = (int)len - 59;
                if (iend - ip < nb) {
                    return 0;
                }
                len = load_le(ip, nb);
                ip += nb;
            }
            len += 1;
            if ((size_t)(iend - ip) < len || (size_t)(oend - op) < len) {
                return 0;
            }
            memcpy(op, ip, len);
            op += len;
            ip += len;
            continue;
        }
        case 1:
            if (ip >= iend) {
                return 0;
            }
            len = 4 + ((tag >> 2) & 7);
            off = ((size_t)(tag >> 5) << 8) | *ip++;
            break;
        case 2:
            if (iend - ip < 2) {
                return 0;
            }
            len = (size_t)(tag >> 2) + 1;
            off = load_le(ip, 2);
            ip += 2;
            break;
        default:
            if (iend - ip < 4) {
                return 0;
            }
            len = (size_t)(tag >> 2) + 1;
            off = load_le(ip, 4);
            ip += 4;
            break;
        }
        if (off == 0 || off > (size_t)(op - dst) || len > (size_t)(oend - op)) {
            return 0;
        }
    copy:;
        const uint8_t *from = op - off;
        if (off >= len) {
            memcpy(op, from, len);
            op += len;
        } else if (off >= 8) {
            /* overlapping: 8 bytes at a time never read bytes not yet written */
            while (len >= 8) {
                memcpy(op, from, 8);
                op += 8;
                from += 8;
                len -= 8;
            }
            while (len--) {
                *op++ = *from++;
            }
        } else {
            while (len--) {
                *op++ = *from++;
            }
        }
    }
    return op == oend;
}

/* A piece of a PLAIN page's values: the page is the concatenation of its pieces. */
typedef struct {
    const uint8_t *p, *end;
} Seg;

/* pieces at most (a page that snappy could not compress is a literal per 64 KiB) */
#define MAX_SEGS 64

/* If the snappy block [src, src + src_len) holds only literals (at most MAX_SEGS) and
 * decompresses to dst_len bytes, sets segs to them and returns their count; else 0.
 * The page's bytes are then read where they lie, without decompressing them. */
static int snappy_literals(const uint8_t *src, size_t src_len, size_t dst_len, Seg *segs) {
    Cursor c = {src, src + src_len, 0};
    uint64_t ulen = read_varint(&c);
    if (c.bad || ulen != dst_len) {
        return 0;
    }
    const uint8_t *ip = c.p, *iend = src + src_len;
    size_t total = 0;
    int k = 0;
    while (ip < iend) {
        uint8_t tag = *ip++;
        if ((tag & 3) != 0 || k == MAX_SEGS) {
            return 0;
        }
        size_t len = tag >> 2;
        if (len >= 60) {
            int nb = (int)len - 59;
            if (iend - ip < nb) {
                return 0;
            }
            len = load_le(ip, nb);
            ip += nb;
        }
        len += 1;
        if ((size_t)(iend - ip) < len) {
            return 0;
        }
        segs[k].p = ip;
        segs[k].end = ip + len;
        k++;
        ip += len;
        total += len;
    }
    return k > 0 && total == dst_len ? k : 0;
}

/* ------------------------------------------------- RLE / bit-packed hybrid */

typedef struct {
    const uint8_t *p, *end;
    int bit_width;
    int packed;            /* current run: bit-packed (1) or RLE (0) */
    int64_t left;          /* values left in the current run */
    uint32_t value;        /* the RLE run's value */
    const uint8_t *run;    /* bit-packed: the run's bytes */
    const uint8_t *run_end;
    uint64_t bit;          /* bit-packed: the next value's bit offset in the run */
} Hybrid;

static void hybrid_init(Hybrid *h, const uint8_t *p, const uint8_t *end, int bit_width) {
    memset(h, 0, sizeof(*h));
    h->p = p;
    h->end = end;
    h->bit_width = bit_width;
}

/* Starts the next run: 0 if there is none or it is malformed. */
static int hybrid_next_run(Hybrid *h) {
    Cursor c = {h->p, h->end, 0};
    uint64_t header = read_varint(&c);
    if (c.bad) {
        return 0;
    }
    int bw = h->bit_width;
    if (header & 1) {
        uint64_t groups = header >> 1;
        if (groups == 0 || groups > ((uint64_t)1 << 40)) {
            return 0;
        }
        uint64_t bytes = groups * (uint64_t)bw;
        uint64_t avail = (uint64_t)(h->end - c.p);
        uint64_t values = groups * 8;
        if (bytes > avail) {
            /* a final run cut short: only the values whose bits are all there */
            bytes = avail;
            if (bw > 0) {
                values = avail * 8 / (uint64_t)bw;
            }
        }
        if (values == 0) {
            return 0;
        }
        h->packed = 1;
        h->run = c.p;
        h->run_end = c.p + bytes;
        h->bit = 0;
        h->left = (int64_t)values;
        h->p = c.p + bytes;
    } else {
        uint64_t count = header >> 1;
        int nb = (bw + 7) / 8;
        if (count == 0 || count > ((uint64_t)1 << 40) || h->end - c.p < nb) {
            return 0;
        }
        h->packed = 0;
        h->value = load_le(c.p, nb);
        h->left = (int64_t)count;
        h->p = c.p + nb;
    }
    return 1;
}

/* the bit-packed value at h->bit (its bits lie within the run) */
static inline uint32_t hybrid_unpack(const Hybrid *h) {
    uint64_t byte = h->bit >> 3;
    int shift = (int)(h->bit & 7);
    uint64_t word = 0;
    size_t avail = (size_t)(h->run_end - h->run) - byte;
    if (LIKELY(avail >= 8)) {
        memcpy(&word, h->run + byte, 8);
    } else {
        for (size_t i = 0; i < avail; i++) {
            word |= (uint64_t)h->run[byte + i] << (8 * i);
        }
    }
    return (uint32_t)((word >> shift) & (((uint64_t)1 << h->bit_width) - 1));
}

/* Checks that the next n levels (bit width 1) are all 1: 1 if so. */
static int levels_all_one(Hybrid *h, int64_t n) {
    while (n > 0) {
        if (h->left == 0 && !hybrid_next_run(h)) {
            return 0;
        }
        int64_t k = h->left < n ? h->left : n;
        if (!h->packed) {
            if (h->value != 1) {
                return 0;
            }
        } else {
            for (int64_t i = 0; i < k; i++) {
                if (!((h->run[h->bit >> 3] >> (h->bit & 7)) & 1)) {
                    return 0;
                }
                h->bit++;
            }
        }
        h->left -= k;
        n -= k;
    }
    return 1;
}

/* ----------------------------------------------------------------- reader */

typedef struct {
    PyObject_HEAD
    int fd;
    int physical_type, codec, max_def;
    int value_size;
    int64_t chunk_end;
    int64_t num_values;
    int64_t delivered;    /* values handed to the caller */
    int64_t paged;        /* values in the data pages met so far */
    int64_t next_page;    /* file offset of the next page header */
    int spent, busy, closed;
    int data_seen;
    /* raw file bytes [raw_pos, raw_pos + raw_len) */
    uint8_t *raw;
    int64_t raw_cap, raw_pos, raw_len;
    /* decompressed page */
    uint8_t *page;
    int64_t page_cap;
    /* dictionary values */
    uint8_t *dict;
    int64_t dict_cap, dict_n;
    int has_dict;
    /* the current data page */
    int64_t page_left;
    int dict_encoded;
    const uint8_t *vals, *vals_end; /* PLAIN: the current piece's values left */
    Seg segs[MAX_SEGS];             /* PLAIN: the page's pieces */
    int nseg, seg_i;                /* how many; the next one */
    Hybrid idx;
} Reader;

/* ------------------------------------------------------------ buffer pool */

/* Page buffers freed by finished readers are kept (up to POOL_SLOTS buffers and
 * POOL_BYTES bytes) for the next readers: a fresh buffer costs a page fault per 4 KiB
 * page, as much as decoding it. The pool is shared by threads, hence the lock. */
#define POOL_SLOTS 64
#define POOL_BYTES ((int64_t)64 << 20)
/* capacities are rounded up to this, so pages of slightly different sizes share them */
#define BUFFER_ROUND ((int64_t)64 << 10)

static struct {
    uint8_t *buf;
    int64_t cap;
} pool[POOL_SLOTS];
static int pool_n;
static int64_t pool_bytes;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

/* A buffer of at least need bytes (*cap set to its size), or NULL. */
static uint8_t *buffer_get(int64_t need, int64_t *cap) {
    uint8_t *b = NULL;
    pthread_mutex_lock(&pool_lock);
    int best = -1;
    for (int i = 0; i < pool_n; i++) {
        if (pool[i].cap >= need && (best < 0 || pool[i].cap < pool[best].cap)) {
            best = i;
        }
    }
    if (best >= 0) {
        b = pool[best].buf;
        *cap = pool[best].cap;
        pool_bytes -= pool[best].cap;
        pool[best] = pool[--pool_n];
    }
    pthread_mutex_unlock(&pool_lock);
    if (b != NULL) {
        return b;
    }
    int64_t n = (need + BUFFER_ROUND - 1) / BUFFER_ROUND * BUFFER_ROUND;
    b = malloc((size_t)n);
    if (b != NULL) {
        *cap = n;
    }
    return b;
}

/* Gives a buffer back (NULL is fine): to the pool if it has room, else to free(). */
static void buffer_put(uint8_t *b, int64_t cap) {
    if (b == NULL) {
        return;
    }
    pthread_mutex_lock(&pool_lock);
    if (pool_n < POOL_SLOTS && pool_bytes + cap <= POOL_BYTES) {
        pool[pool_n].buf = b;
        pool[pool_n].cap = cap;
        pool_n++;
        pool_bytes += cap;
        b = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    free(b);
}

/* Makes *buf hold at least need bytes; its contents are not kept. */
static int grow(uint8_t **buf, int64_t *cap, int64_t need) {
    if (need <= *cap) {
        return 1;
    }
    buffer_put(*buf, *cap);
    *buf = NULL;
    *cap = 0;
    int64_t n;
    uint8_t *b = buffer_get(need, &n);
    if (b == NULL) {
        return 0;
    }
    *buf = b;
    *cap = n;
    return 1;
}

static int pread_all(int fd, uint8_t *buf, int64_t n, int64_t pos) {
    while (n > 0) {
        ssize_t got = pread(fd, buf, (size_t)n, (off_t)pos);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return 0;
        }
        if (got == 0) {
            return 0; /* the file ends before the chunk does */
        }
        buf += got;
        pos += got;
        n -= got;
    }
    return 1;
}

/* Makes raw hold the file bytes [pos, pos + n) (within the chunk): 1 on success. */
static int ensure_raw(Reader *r, int64_t pos, int64_t n) {
    if (pos >= r->raw_pos && pos + n <= r->raw_pos + r->raw_len) {
        return 1;
    }
    int64_t keep = 0;
    if (pos >= r->raw_pos && pos < r->raw_pos + r->raw_len) {
        keep = r->raw_pos + r->raw_len - pos;
    }
    if (n > r->raw_cap) {
        int64_t cap;
        uint8_t *b = buffer_get(n, &cap);
        if (b == NULL) {
            return 0;
        }
        if (keep) {
            memcpy(b, r->raw + (pos - r->raw_pos), (size_t)keep);
        }
        buffer_put(r->raw, r->raw_cap);
        r->raw = b;
        r->raw_cap = cap;
    } else if (keep) {
        memmove(r->raw, r->raw + (pos - r->raw_pos), (size_t)keep);
    }
    r->raw_pos = pos;
    r->raw_len = keep;
    if (!pread_all(r->fd, r->raw + keep, n - keep, pos + keep)) {
        r->raw_len = 0;
        return 0;
    }
    r->raw_len = n;
    return 1;
}

static int encoding_of_values(int32_t e) {
    return e == E_PLAIN || e == E_PLAIN_DICTIONARY || e == E_RLE_DICTIONARY;
}

/* The body [body, body + csize) of a page decompressed to usize bytes: the result
 * points into raw (uncompressed) or into dst (grown as needed); NULL on failure. */
static const uint8_t *decompress(Reader *r, int compressed, const uint8_t *body, int64_t csize,
                                 int64_t usize, uint8_t **dst, int64_t *dst_cap) {
    if (!compressed || r->codec == C_UNCOMPRESSED) {
        return csize == usize ? body : NULL;
    }
    if (!grow(dst, dst_cap, usize > 0 ? usize : 1)) {
        return NULL;
    }
    if (!snappy_decompress(body, (size_t)csize, *dst, (size_t)usize)) {
        return NULL;
    }
    return *dst;
}

/* Loads pages until one with values: 1 on success, 0 if the data is not plain. */
static int load_page(Reader *r) {
    for (;;) {
        int64_t pos = r->next_page;
        int64_t left = r->chunk_end - pos;
        if (left <= 0) {
            return 0;
        }
        PageHeader h;
        int64_t hsize = 0;
        int64_t probe = left < HEADER_PROBE_BYTES ? left : HEADER_PROBE_BYTES;
        if (!ensure_raw(r, pos, probe)) {
            return 0;
        }
        /* whatever raw already holds past pos is looked at too */
        int64_t have = r->raw_pos + r->raw_len - pos;
        const uint8_t *hp = r->raw + (pos - r->raw_pos);
        if (!parse_page_header(hp, hp + have, &h, &hsize)) {
            int64_t most = left < MAX_HEADER_BYTES ? left : MAX_HEADER_BYTES;
            if (have >= most || !ensure_raw(r, pos, most)) {
                return 0;
            }
            hp = r->raw + (pos - r->raw_pos);
            if (!parse_page_header(hp, hp + most, &h, &hsize)) {
                return 0;
            }
        }
        int64_t csize = h.compressed_size, usize = h.uncompressed_size;
        if (csize < 0 || usize < 0 || csize > MAX_PAGE_BYTES || usize > MAX_PAGE_BYTES ||
            csize > left - hsize) {
            return 0;
        }
        int64_t after = left - hsize - csize;
        int64_t look = after < LOOKAHEAD_BYTES ? after : LOOKAHEAD_BYTES;
        if (!ensure_raw(r, pos, hsize + csize + look)) {
            return 0;
        }
        const uint8_t *body = r->raw + (pos - r->raw_pos) + hsize;
        r->next_page = pos + hsize + csize;

        if (h.type == P_DICTIONARY) {
            if (!h.has_sub || !h.has_num_values || r->has_dict || r->data_seen ||
                h.num_values < 0 || !h.has_encoding ||
                (h.encoding != E_PLAIN && h.encoding != E_PLAIN_DICTIONARY) ||
                (int64_t)h.num_values * r->value_size != usize) {
                return 0;
            }
            const uint8_t *v = decompress(r, 1, body, csize, usize, &r->dict, &r->dict_cap);
            if (v == NULL) {
                return 0;
            }
            if (v != r->dict) { /* uncompressed: the values are in raw, which moves */
                if (!grow(&r->dict, &r->dict_cap, usize > 0 ? usize : 1)) {
                    return 0;
                }
                memcpy(r->dict, v, (size_t)usize);
            }
            r->dict_n = h.num_values;
            r->has_dict = 1;
            continue;
        }
        if (h.type != P_DATA && h.type != P_DATA_V2) {
            return 0;
        }
        if (!h.has_sub || !h.has_num_values || h.num_values < 0 || !h.has_encoding ||
            !encoding_of_values(h.encoding) || h.num_values > r->num_values - r->paged) {
            return 0;
        }
        r->data_seen = 1;
        int64_t n = h.num_values;
        const uint8_t *levels, *levels_end, *values, *values_end;
        /* PLAIN values that snappy left as literals are read where they lie */
        int plain_snappy = h.encoding == E_PLAIN && r->codec == C_SNAPPY;
        int nseg = 0;
        if (h.type == P_DATA) {
            if (r->max_def == 1 && (!h.has_def_encoding || h.def_encoding != E_RLE)) {
                return 0;
            }
            if (plain_snappy) {
                nseg = snappy_literals(body, (size_t)csize, (size_t)usize, r->segs);
            }
            if (nseg > 0 && r->max_def == 1) {
                /* the levels must lie in the first piece, else the page is decompressed */
                int64_t first = r->segs[0].end - r->segs[0].p;
                if (first < 4 || load_le(r->segs[0].p, 4) > (uint64_t)(first - 4)) {
                    nseg = 0;
                }
            }
            const uint8_t *p, *first_end;
            if (nseg > 0) {
                p = r->segs[0].p;
                first_end = r->segs[0].end;
            } else {
                p = decompress(r, 1, body, csize, usize, &r->page, &r->page_cap);
                if (p == NULL) {
                    return 0;
                }
                first_end = p + usize;
            }
            if (r->max_def == 1) {
                if (first_end - p < 4) {
                    return 0;
                }
                uint32_t len = load_le(p, 4);
                if (len > (uint64_t)(first_end - p - 4)) {
                    return 0;
                }
                levels = p + 4;
                levels_end = levels + len;
            } else {
                levels = levels_end = p;
            }
            values = levels_end;
            values_end = nseg > 0 ? first_end : p + usize;
            if (nseg > 0) {
                r->segs[0].p = values;
            }
        } else {
            if (!h.has_num_nulls || !h.has_num_rows || !h.has_def_len || !h.has_rep_len ||
                h.num_nulls != 0 || h.num_rows != h.num_values || h.rep_len != 0 ||
                h.def_len < 0 || h.def_len > csize || h.def_len > usize ||
                (r->max_def == 0 && h.def_len != 0)) {
                return 0;
            }
            levels = body;
            levels_end = body + h.def_len;
            if (plain_snappy && h.is_compressed) {
                nseg = snappy_literals(body + h.def_len, (size_t)(csize - h.def_len),
                                       (size_t)(usize - h.def_len), r->segs);
            }
            if (nseg > 0) {
                values = r->segs[0].p;
                values_end = r->segs[0].end;
            } else {
                values = decompress(r, h.is_compressed, body + h.def_len, csize - h.def_len,
                                    usize - h.def_len, &r->page, &r->page_cap);
                if (values == NULL) {
                    return 0;
                }
                values_end = values + (usize - h.def_len);
            }
        }
        if (r->max_def == 1) {
            Hybrid lv;
            hybrid_init(&lv, levels, levels_end, 1);
            if (!levels_all_one(&lv, n)) {
                return 0;
            }
        }
        r->paged += n;
        if (h.encoding == E_PLAIN) {
            if (nseg == 0) {
                r->segs[0].p = values;
                r->segs[0].end = values_end;
                nseg = 1;
            }
            int64_t bytes = 0;
            for (int i = 0; i < nseg; i++) {
                bytes += r->segs[i].end - r->segs[i].p;
            }
            if (bytes != n * r->value_size) {
                return 0;
            }
            r->dict_encoded = 0;
            r->nseg = nseg;
            r->seg_i = 1;
            r->vals = r->segs[0].p;
            r->vals_end = r->segs[0].end;
        } else {
            if (!r->has_dict) {
                return 0;
            }
            if (n > 0) {
                if (values_end - values < 1 || values[0] > 32) {
                    return 0;
                }
                hybrid_init(&r->idx, values + 1, values_end, values[0]);
            }
            r->dict_encoded = 1;
        }
        r->page_left = n;
        if (n > 0) {
            return 1;
        }
    }
}

/* n values from src (plain, the physical type) to out's column, stride in items */
static void convert(int kind, const uint8_t *src, int64_t n, char *dst, int64_t stride) {
    int64_t i;
    switch (kind) {
    case K_D2D: {
        double *o = (double *)dst;
        for (i = 0; i < n; i++) {
            double v;
            memcpy(&v, src + 8 * i, 8);
            o[i * stride] = v;
        }
        return;
    }
    case K_D2F: {
        float *o = (float *)dst;
        for (i = 0; i < n; i++) {
            double v;
            memcpy(&v, src + 8 * i, 8);
            o[i * stride] = (float)v;
        }
        return;
    }
    case K_F2F: {
        float *o = (float *)dst;
        for (i = 0; i < n; i++) {
            float v;
            memcpy(&v, src + 4 * i, 4);
            o[i * stride] = v;
        }
        return;
    }
    case K_F2D: {
        double *o = (double *)dst;
        for (i = 0; i < n; i++) {
            float v;
            memcpy(&v, src + 4 * i, 4);
            o[i * stride] = (double)v;
        }
        return;
    }
    case K_I64: {
        int64_t *o = (int64_t *)dst;
        for (i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, src + 8 * i, 8);
            o[i * stride] = v;
        }
        return;
    }
    default: {
        int32_t *o = (int32_t *)dst;
        for (i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, src + 4 * i, 4);
            o[i * stride] = v;
        }
        return;
    }
    }
}

/* the dictionary's values at idx[0..n) to out's column */
static void gather(int kind, const uint8_t *dict, const uint32_t *idx, int64_t n, char *dst,
                   int64_t stride) {
    int64_t i;
    switch (kind) {
    case K_D2D:
    case K_I64: {
        uint64_t *o = (uint64_t *)dst;
        for (i = 0; i < n; i++) {
            memcpy(&o[i * stride], dict + 8 * (size_t)idx[i], 8);
        }
        return;
    }
    case K_D2F: {
        float *o = (float *)dst;
        for (i = 0; i < n; i++) {
            double v;
            memcpy(&v, dict + 8 * (size_t)idx[i], 8);
            o[i * stride] = (float)v;
        }
        return;
    }
    case K_F2D: {
        double *o = (double *)dst;
        for (i = 0; i < n; i++) {
            float v;
            memcpy(&v, dict + 4 * (size_t)idx[i], 4);
            o[i * stride] = (double)v;
        }
        return;
    }
    default: {
        uint32_t *o = (uint32_t *)dst;
        for (i = 0; i < n; i++) {
            memcpy(&o[i * stride], dict + 4 * (size_t)idx[i], 4);
        }
        return;
    }
    }
}

/* n dictionary-encoded values of the current page to out's column: 1 on success */
static int decode_indexed(Reader *r, int kind, int64_t n, char *dst, int64_t stride,
                          int out_size) {
    uint32_t idx[INDEX_BATCH];
    Hybrid *h = &r->idx;
    const uint32_t dict_n = (uint32_t)r->dict_n;
    while (n > 0) {
        if (h->left == 0 && !hybrid_next_run(h)) {
            return 0;
        }
        int64_t k = h->left < n ? h->left : n;
        if (!h->packed) {
            if (h->value >= dict_n) {
                return 0;
            }
            uint32_t v = h->value;
            for (int64_t done = 0; done < k;) {
                int64_t m = k - done < INDEX_BATCH ? k - done : INDEX_BATCH;
                for (int64_t i = 0; i < m; i++) {
                    idx[i] = v;
                }
                gather(kind, r->dict, idx, m, dst, stride);
                dst += m * stride * out_size;
                done += m;
            }
        } else {
            for (int64_t done = 0; done < k;) {
                int64_t m = k - done < INDEX_BATCH ? k - done : INDEX_BATCH;
                uint32_t bad = 0;
                const uint8_t *run = h->run;
                const uint64_t run_len = (uint64_t)(h->run_end - h->run);
                const int bw = h->bit_width;
                const uint64_t mask = ((uint64_t)1 << bw) - 1;
                uint64_t bit = h->bit;
                for (int64_t i = 0; i < m; i++) {
                    uint64_t byte = bit >> 3;
                    uint32_t v;
                    if (LIKELY(byte + 8 <= run_len)) {
                        uint64_t word;
                        memcpy(&word, run + byte, 8);
                        v = (uint32_t)((word >> (bit & 7)) & mask);
                    } else { /* the run's last bytes */
                        h->bit = bit;
                        v = hybrid_unpack(h);
                    }
                    bit += (uint64_t)bw;
                    bad |= v >= dict_n;
                    idx[i] = v;
                }
                h->bit = bit;
                if (bad) {
                    return 0;
                }
                gather(kind, r->dict, idx, m, dst, stride);
                dst += m * stride * out_size;
                done += m;
            }
        }
        h->left -= k;
        n -= k;
    }
    return 1;
}

/* n PLAIN values of the current page to out's column: 1 on success */
static int read_plain(Reader *r, int kind, int64_t n, char *dst, int64_t stride,
                      int out_size) {
    const int size = r->value_size;
    while (n > 0) {
        int64_t whole = (r->vals_end - r->vals) / size;
        if (LIKELY(whole > 0)) {
            int64_t m = whole < n ? whole : n;
            convert(kind, r->vals, m, dst, stride);
            r->vals += m * size;
            dst += m * stride * out_size;
            n -= m;
            continue;
        }
        /* a value split between pieces, or the piece's end */
        uint8_t value[8];
        int have = 0;
        while (have < size) {
            int64_t left = r->vals_end - r->vals;
            if (left == 0) {
                if (r->seg_i >= r->nseg) {
                    return 0;
                }
                r->vals = r->segs[r->seg_i].p;
                r->vals_end = r->segs[r->seg_i].end;
                r->seg_i++;
                continue;
            }
            int take = left < size - have ? (int)left : size - have;
            memcpy(value + have, r->vals, (size_t)take);
            r->vals += take;
            have += take;
        }
        convert(kind, value, 1, dst, stride);
        dst += stride * out_size;
        n--;
    }
    return 1;
}

/* rows values to out's column (dst its first cell): 1 on success, 0 if not plain */
static int read_values(Reader *r, int kind, int64_t rows, char *dst, int64_t stride,
                       int out_size) {
    while (rows > 0) {
        if (r->page_left == 0 && !load_page(r)) {
            return 0;
        }
        int64_t k = r->page_left < rows ? r->page_left : rows;
        if (r->dict_encoded) {
            if (!decode_indexed(r, kind, k, dst, stride, out_size)) {
                return 0;
            }
        } else if (!read_plain(r, kind, k, dst, stride, out_size)) {
            return 0;
        }
        r->page_left -= k;
        rows -= k;
        dst += k * stride * out_size;
    }
    return 1;
}

static void free_buffers(Reader *r) {
    buffer_put(r->raw, r->raw_cap);
    buffer_put(r->page, r->page_cap);
    buffer_put(r->dict, r->dict_cap);
    r->raw = r->page = r->dict = NULL;
    r->raw_cap = r->page_cap = r->dict_cap = 0;
    r->raw_len = 0;
}

static void reader_dealloc(Reader *r) {
    free_buffers(r);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static int reader_init(Reader *r, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"fd",    "offset", "length", "physical_type", "codec",
                             "max_definition_level", "num_values", NULL};
    int fd, physical_type, codec, max_def;
    long long offset, length, num_values;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iLLiiiL:ColumnChunkReader", kwlist, &fd,
                                     &offset, &length, &physical_type, &codec, &max_def,
                                     &num_values)) {
        return -1;
    }
    if (!FASTPARQUET_LITTLE_ENDIAN) {
        PyErr_SetString(PyExc_ValueError,
                        "ColumnChunkReader: this host is big-endian, expected little-endian");
        return -1;
    }
    if (fd < 0 || offset < 0 || length < 0 || num_values < 0 ||
        offset > (long long)INT64_MAX - length) {
        PyErr_Format(PyExc_ValueError,
                     "ColumnChunkReader: got fd=%d, offset=%lld, length=%lld, num_values=%lld, "
                     "expected non-negative values with offset + length in range",
                     fd, offset, length, num_values);
        return -1;
    }
    int size;
    switch (physical_type) {
    case T_INT32:
    case T_FLOAT:
        size = 4;
        break;
    case T_INT64:
    case T_DOUBLE:
        size = 8;
        break;
    default:
        PyErr_Format(PyExc_ValueError,
                     "physical_type: got %d, expected INT32=1, INT64=2, FLOAT=4 or DOUBLE=5",
                     physical_type);
        return -1;
    }
    if (codec != C_UNCOMPRESSED && codec != C_SNAPPY) {
        PyErr_Format(PyExc_ValueError, "codec: got %d, expected UNCOMPRESSED=0 or SNAPPY=1",
                     codec);
        return -1;
    }
    if (max_def != 0 && max_def != 1) {
        PyErr_Format(PyExc_ValueError, "max_definition_level: got %d, expected 0 or 1", max_def);
        return -1;
    }
    if (r->busy) {
        PyErr_SetString(PyExc_ValueError, "ColumnChunkReader: re-initialised while reading");
        return -1;
    }
    free_buffers(r);
    r->fd = fd;
    r->physical_type = physical_type;
    r->codec = codec;
    r->max_def = max_def;
    r->value_size = size;
    r->chunk_end = offset + length;
    r->num_values = num_values;
    r->delivered = r->paged = 0;
    r->next_page = offset;
    r->spent = r->closed = r->data_seen = 0;
    r->raw_pos = 0;
    r->raw_len = 0;
    r->dict_n = 0;
    r->has_dict = 0;
    r->page_left = 0;
    r->dict_encoded = 0;
    r->vals = r->vals_end = NULL;
    r->nseg = r->seg_i = 0;
    return 0;
}

/* the output kind for a physical type and a buffer format, or -1 */
static int output_kind(int physical_type, const char *format, Py_ssize_t itemsize) {
    if (format == NULL) {
        return -1;
    }
    if (*format == '@' || *format == '=' || *format == '<') {
        format++;
    }
    if (format[0] == '\0' || format[1] != '\0') {
        return -1;
    }
    char f = format[0];
    int is_float = f == 'f' || f == 'd';
    int is_int = f == 'b' || f == 'h' || f == 'i' || f == 'l' || f == 'q' || f == 'n';
    switch (physical_type) {
    case T_DOUBLE:
        if (is_float && itemsize == 8) {
            return K_D2D;
        }
        return is_float && itemsize == 4 ? K_D2F : -1;
    case T_FLOAT:
        if (is_float && itemsize == 4) {
            return K_F2F;
        }
        return is_float && itemsize == 8 ? K_F2D : -1;
    case T_INT64:
        return is_int && itemsize == 8 ? K_I64 : -1;
    default:
        return is_int && itemsize == 4 ? K_I32 : -1;
    }
}

static const char *type_name(int physical_type) {
    switch (physical_type) {
    case T_INT32:
        return "INT32";
    case T_INT64:
        return "INT64";
    case T_FLOAT:
        return "FLOAT";
    default:
        return "DOUBLE";
    }
}

/* Checks a reader and its target (out's buffer, column, rows): 1 with *kind set, or 0
 * with an exception set. */
static int check_target(Reader *r, Py_buffer *out, Py_ssize_t column, Py_ssize_t rows,
                        int *kind) {
    if (r->value_size == 0) {
        PyErr_SetString(PyExc_ValueError, "ColumnChunkReader: not initialised");
        return 0;
    }
    if (r->busy) {
        PyErr_SetString(PyExc_ValueError,
                        "ColumnChunkReader.read: the reader is already reading (in another "
                        "thread, or given twice), expected one reader per thread at a time");
        return 0;
    }
    if (out->ndim != 2) {
        PyErr_Format(PyExc_ValueError, "out: got a %d-dimensional buffer, expected 2",
                     out->ndim);
        return 0;
    }
    *kind = output_kind(r->physical_type, out->format, out->itemsize);
    if (*kind < 0) {
        PyErr_Format(PyExc_ValueError,
                     "out: got format '%s' of %zd bytes for a %s column, expected %s",
                     out->format ? out->format : "?", out->itemsize,
                     type_name(r->physical_type),
                     r->physical_type == T_DOUBLE || r->physical_type == T_FLOAT
                         ? "float32 or float64"
                         : (r->physical_type == T_INT64 ? "int64" : "int32"));
        return 0;
    }
    if (column < 0 || column >= out->shape[1] || rows < 0 || rows > out->shape[0]) {
        PyErr_Format(PyExc_ValueError,
                     "read: got column=%zd, rows=%zd for out of shape (%zd, %zd), expected "
                     "0 <= column < %zd and 0 <= rows <= %zd",
                     column, rows, out->shape[0], out->shape[1], out->shape[1],
                     out->shape[0]);
        return 0;
    }
    if (rows > r->num_values - r->delivered) {
        PyErr_Format(PyExc_ValueError,
                     "read: got rows=%zd, expected at most the %lld values left of the chunk",
                     rows, (long long)(r->num_values - r->delivered));
        return 0;
    }
    return 1;
}

/* After a read (GIL held): counts the values, or spends the reader. */
static void finish_read(Reader *r, int ok, Py_ssize_t rows) {
    r->busy = 0;
    if (ok) {
        r->delivered += rows;
        if (r->delivered == r->num_values) {
            free_buffers(r); /* for the next chunk's reader */
        }
    } else {
        r->spent = 1;
        free_buffers(r);
    }
}

#define BUFFER_FLAGS (PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT)

static PyObject *reader_read(Reader *r, PyObject *args) {
    PyObject *out_obj;
    Py_ssize_t column, rows;
    if (!PyArg_ParseTuple(args, "Onn:read", &out_obj, &column, &rows)) {
        return NULL;
    }
    Py_buffer out;
    if (PyObject_GetBuffer(out_obj, &out, BUFFER_FLAGS) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    int kind;
    if (!check_target(r, &out, column, rows, &kind)) {
        goto done;
    }
    int ok = 0;
    if (!r->spent && !r->closed) {
        int64_t stride = out.shape[1];
        char *dst = (char *)out.buf + column * out.itemsize;
        int size = (int)out.itemsize;
        r->busy = 1;
        Py_BEGIN_ALLOW_THREADS;
        ok = read_values(r, kind, rows, dst, stride, size);
        Py_END_ALLOW_THREADS;
        finish_read(r, ok, rows);
    }
    result = ok ? Py_True : Py_False;
    Py_INCREF(result);
done:
    PyBuffer_Release(&out);
    return result;
}

static PyTypeObject ReaderType;

/* rows decoded per reader in turn by read_columns: the targets' rows of a tile stay in
 * the L1 cache while every column is written into them (a column written alone into a
 * wide matrix touches a cache line per value) */
#define TILE_BYTES ((int64_t)32 << 10)
#define MIN_TILE_ROWS 64

PyDoc_STRVAR(read_columns_doc,
             "read_columns(readers, outs, columns, rows) -> bool\n\n"
             "read(outs[k], columns[k], rows) of each readers[k], interleaved a few thousand "
             "rows\nat a time (faster for a wide C-contiguous matrix). False when any "
             "reader's data is\nnot plain: every reader given is then spent.");

static PyObject *fastparquet_read_columns(PyObject *self, PyObject *args) {
    PyObject *readers_obj, *outs_obj, *columns_obj;
    Py_ssize_t rows;
    if (!PyArg_ParseTuple(args, "O!O!O!n:read_columns", &PyTuple_Type, &readers_obj,
                          &PyTuple_Type, &outs_obj, &PyTuple_Type, &columns_obj, &rows)) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(readers_obj);
    if (PyTuple_GET_SIZE(outs_obj) != n || PyTuple_GET_SIZE(columns_obj) != n) {
        PyErr_Format(PyExc_ValueError,
                     "read_columns: got %zd readers, %zd outs and %zd columns, expected as "
                     "many of each",
                     n, PyTuple_GET_SIZE(outs_obj), PyTuple_GET_SIZE(columns_obj));
        return NULL;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        if (!PyObject_TypeCheck(PyTuple_GET_ITEM(readers_obj, k), &ReaderType)) {
            PyErr_Format(PyExc_ValueError, "readers[%zd]: got %s, expected a ColumnChunkReader",
                         k, Py_TYPE(PyTuple_GET_ITEM(readers_obj, k))->tp_name);
            return NULL;
        }
    }
    Py_buffer *outs = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(Py_buffer));
    int *kinds = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(int));
    char **dsts = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
    if (outs == NULL || kinds == NULL || dsts == NULL) {
        PyMem_Free(outs);
        PyMem_Free(kinds);
        PyMem_Free(dsts);
        return PyErr_NoMemory();
    }
    PyObject *result = NULL;
    Py_ssize_t got = 0, marked = 0;
    int usable = 1;
    int64_t row_bytes = 0;
    for (; got < n; got++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(outs_obj, got), &outs[got], BUFFER_FLAGS) < 0) {
            goto done;
        }
    }
    for (; marked < n; marked++) {
        Reader *r = (Reader *)PyTuple_GET_ITEM(readers_obj, marked);
        Py_ssize_t column = PyLong_AsSsize_t(PyTuple_GET_ITEM(columns_obj, marked));
        if (column == -1 && PyErr_Occurred()) {
            goto done;
        }
        if (!check_target(r, &outs[marked], column, rows, &kinds[marked])) {
            goto done;
        }
        r->busy = 1; /* also catches a reader given twice */
        usable &= !r->spent && !r->closed;
        dsts[marked] = (char *)outs[marked].buf + column * outs[marked].itemsize;
        int seen = 0;
        for (Py_ssize_t i = 0; i < marked; i++) {
            seen |= outs[i].buf == outs[marked].buf;
        }
        if (!seen) {
            row_bytes += outs[marked].shape[1] * outs[marked].itemsize;
        }
    }
    int ok = usable;
    if (ok && n > 0) {
        int64_t tile = row_bytes > 0 ? TILE_BYTES / row_bytes : rows;
        if (tile < MIN_TILE_ROWS) {
            tile = MIN_TILE_ROWS;
        }
        Py_BEGIN_ALLOW_THREADS;
        for (int64_t start = 0; ok && start < rows; start += tile) {
            int64_t m = rows - start < tile ? rows - start : tile;
            for (Py_ssize_t k = 0; ok && k < n; k++) {
                Reader *r = (Reader *)PyTuple_GET_ITEM(readers_obj, k);
                Py_buffer *o = &outs[k];
                ok = read_values(r, kinds[k], m, dsts[k] + start * o->shape[1] * o->itemsize,
                                 o->shape[1], (int)o->itemsize);
            }
        }
        Py_END_ALLOW_THREADS;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        finish_read((Reader *)PyTuple_GET_ITEM(readers_obj, k), ok, rows);
    }
    marked = 0;
    result = ok ? Py_True : Py_False;
    Py_INCREF(result);
done:
    for (Py_ssize_t k = 0; k < marked; k++) {
        ((Reader *)PyTuple_GET_ITEM(readers_obj, k))->busy = 0;
    }
    for (Py_ssize_t k = 0; k < got; k++) {
        PyBuffer_Release(&outs[k]);
    }
    PyMem_Free(outs);
    PyMem_Free(kinds);
    PyMem_Free(dsts);
    return result;
}

static PyMethodDef fastparquet_methods[] = {
    {"read_columns", fastparquet_read_columns, METH_VARARGS, read_columns_doc},
    {NULL, NULL, 0, NULL},
};

static PyObject *reader_close(Reader *r, PyObject *Py_UNUSED(ignored)) {
    if (r->busy) {
        PyErr_SetString(PyExc_ValueError,
                        "ColumnChunkReader.close: the reader is reading in another thread");
        return NULL;
    }
    free_buffers(r);
    r->closed = 1;
    Py_RETURN_NONE;
}

static PyMethodDef reader_methods[] = {
    {"read", (PyCFunction)reader_read, METH_VARARGS,
     "read(out, column, rows) -> bool\n\nDecode the next `rows` values into out[:rows, "
     "column]; False when the data is not plain (the reader is then spent)."},
    {"close", (PyCFunction)reader_close, METH_NOARGS,
     "close()\n\nFree the buffers (the file descriptor stays open)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "inference.batch._fastparquet.ColumnChunkReader",
    .tp_basicsize = sizeof(Reader),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ColumnChunkReader(fd, offset, length, physical_type, codec, "
              "max_definition_level, num_values)\n\nOne flat column chunk of an open file.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)reader_init,
    .tp_dealloc = (destructor)reader_dealloc,
    .tp_methods = reader_methods,
};

static struct PyModuleDef fastparquet_module = {
    PyModuleDef_HEAD_INIT,
    "_fastparquet",
    "Flat numeric Parquet column chunks decoded into a matrix column "
    "(see inference.batch.fastparquet).",
    -1,
    fastparquet_methods,
};

/* A child forked while another thread held the lock would wait for it forever. */
static void pool_after_fork_in_child(void) {
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&pool_lock, &fresh, sizeof(fresh));
}

PyMODINIT_FUNC PyInit__fastparquet(void) {
    if (PyType_Ready(&ReaderType) < 0) {
        return NULL;
    }
    static int fork_handler;
    if (!fork_handler) {
        fork_handler = pthread_atfork(NULL, NULL, pool_after_fork_in_child) == 0;
    }
    PyObject *m = PyModule_Create(&fastparquet_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&ReaderType);
    if (PyModule_AddObject(m, "ColumnChunkReader", (PyObject *)&ReaderType) < 0) {
        Py_DECREF(&ReaderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
