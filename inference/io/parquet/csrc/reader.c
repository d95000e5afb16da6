/*
 * The column chunk reader (see reader.h): pages read with pread(2) into pooled
 * buffers, their headers parsed (thrift.c), bodies decompressed (snappy.c), levels
 * checked and dictionary indices unpacked (rle.c), values converted into the output.
 */
#include "reader.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "pool.h"
#include "thrift.h"

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PQ_LITTLE_ENDIAN 1
#else
#define PQ_LITTLE_ENDIAN 0
#endif

/* bytes read past a page's body, so the next page header usually comes with it */
#define LOOKAHEAD_BYTES 1024
/* the first look at a page header */
#define HEADER_PROBE_BYTES 1024

void pq_reader_free_buffers(ChunkReader *r) {
    pq_buffer_put(r->raw, r->raw_cap);
    pq_buffer_put(r->page, r->page_cap);
    pq_buffer_put(r->dict, r->dict_cap);
    r->raw = r->page = r->dict = NULL;
    r->raw_cap = r->page_cap = r->dict_cap = 0;
    r->raw_len = 0;
}

static int value_size(int physical_type) {
    switch (physical_type) {
    case T_INT32:
    case T_FLOAT:
        return 4;
    case T_INT64:
    case T_DOUBLE:
        return 8;
    default:
        return 0;
    }
}

int pq_reader_open(ChunkReader *r, int fd, int64_t offset, int64_t length, int physical_type,
                   int codec, int max_def, int64_t num_values) {
    if (!PQ_LITTLE_ENDIAN) {
        return PQ_OPEN_BIG_ENDIAN;
    }
    if (fd < 0 || offset < 0 || length < 0 || num_values < 0 || offset > INT64_MAX - length) {
        return PQ_OPEN_RANGE;
    }
    int size = value_size(physical_type);
    if (size == 0) {
        return PQ_OPEN_PHYSICAL_TYPE;
    }
    if (codec != C_UNCOMPRESSED && codec != C_SNAPPY) {
        return PQ_OPEN_CODEC;
    }
    if (max_def != 0 && max_def != 1) {
        return PQ_OPEN_DEFINITION;
    }
    pq_reader_free_buffers(r);
    r->fd = fd;
    r->physical_type = physical_type;
    r->codec = codec;
    r->max_def = max_def;
    r->value_size = size;
    r->chunk_end = offset + length;
    r->num_values = num_values;
    r->delivered = r->paged = 0;
    r->next_page = offset;
    r->spent = r->data_seen = 0;
    r->raw_pos = r->raw_len = 0;
    r->dict_n = 0;
    r->has_dict = 0;
    r->page_left = 0;
    r->dict_encoded = 0;
    r->vals = r->vals_end = NULL;
    r->nseg = r->seg_i = 0;
    return PQ_OPEN_OK;
}

/* ------------------------------------------------------------------ pages */

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
static int ensure_raw(ChunkReader *r, int64_t pos, int64_t n) {
    if (pos >= r->raw_pos && pos + n <= r->raw_pos + r->raw_len) {
        return 1;
    }
    int64_t keep = 0;
    if (pos >= r->raw_pos && pos < r->raw_pos + r->raw_len) {
        keep = r->raw_pos + r->raw_len - pos;
    }
    if (n > r->raw_cap) {
        int64_t cap;
        uint8_t *b = pq_buffer_get(n, &cap);
        if (b == NULL) {
            return 0;
        }
        if (keep) {
            memcpy(b, r->raw + (pos - r->raw_pos), (size_t)keep);
        }
        pq_buffer_put(r->raw, r->raw_cap);
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
static const uint8_t *decompress(ChunkReader *r, int compressed, const uint8_t *body,
                                 int64_t csize, int64_t usize, uint8_t **dst, int64_t *dst_cap) {
    if (!compressed || r->codec == C_UNCOMPRESSED) {
        return csize == usize ? body : NULL;
    }
    if (!pq_grow(dst, dst_cap, usize > 0 ? usize : 1)) {
        return NULL;
    }
    if (!pq_snappy_decompress(body, (size_t)csize, *dst, (size_t)usize)) {
        return NULL;
    }
    return *dst;
}

/* The page header at pos (left bytes of the chunk from there), parsed into *h: 1 with
 * *hsize its bytes. A first probe of HEADER_PROBE_BYTES, then up to MAX_HEADER_BYTES. */
static int read_page_header(ChunkReader *r, int64_t pos, int64_t left, PageHeader *h,
                            int64_t *hsize) {
    int64_t probe = left < HEADER_PROBE_BYTES ? left : HEADER_PROBE_BYTES;
    if (!ensure_raw(r, pos, probe)) {
        return 0;
    }
    /* whatever raw already holds past pos is looked at too */
    int64_t have = r->raw_pos + r->raw_len - pos;
    const uint8_t *hp = r->raw + (pos - r->raw_pos);
    if (pq_parse_page_header(hp, hp + have, h, hsize)) {
        return 1;
    }
    int64_t most = left < MAX_HEADER_BYTES ? left : MAX_HEADER_BYTES;
    if (have >= most || !ensure_raw(r, pos, most)) {
        return 0;
    }
    hp = r->raw + (pos - r->raw_pos);
    return pq_parse_page_header(hp, hp + most, h, hsize);
}

/* The next page: its header into *h, its body (and a lookahead) read into raw, *body
 * pointing at it; 0 at the chunk's end or when the header or sizes are bad. */
static int read_page(ChunkReader *r, PageHeader *h, const uint8_t **body) {
    int64_t pos = r->next_page;
    int64_t left = r->chunk_end - pos;
    int64_t hsize = 0;
    if (left <= 0 || !read_page_header(r, pos, left, h, &hsize)) {
        return 0;
    }
    int64_t csize = h->compressed_size, usize = h->uncompressed_size;
    if (csize < 0 || usize < 0 || csize > MAX_PAGE_BYTES || usize > MAX_PAGE_BYTES ||
        csize > left - hsize) {
        return 0;
    }
    int64_t after = left - hsize - csize;
    int64_t look = after < LOOKAHEAD_BYTES ? after : LOOKAHEAD_BYTES;
    if (!ensure_raw(r, pos, hsize + csize + look)) {
        return 0;
    }
    *body = r->raw + (pos - r->raw_pos) + hsize;
    r->next_page = pos + hsize + csize;
    return 1;
}

/* A dictionary page (before any data page): its values copied into dict. */
static int load_dictionary(ChunkReader *r, const PageHeader *h, const uint8_t *body) {
    int64_t csize = h->compressed_size, usize = h->uncompressed_size;
    if (!h->has_sub || !h->has_num_values || r->has_dict || r->data_seen || h->num_values < 0 ||
        !h->has_encoding || (h->encoding != E_PLAIN && h->encoding != E_PLAIN_DICTIONARY) ||
        (int64_t)h->num_values * r->value_size != usize) {
        return 0;
    }
    const uint8_t *v = decompress(r, 1, body, csize, usize, &r->dict, &r->dict_cap);
    if (v == NULL) {
        return 0;
    }
    if (v != r->dict) { /* uncompressed: the values are in raw, which moves */
        if (!pq_grow(&r->dict, &r->dict_cap, usize > 0 ? usize : 1)) {
            return 0;
        }
        memcpy(r->dict, v, (size_t)usize);
    }
    r->dict_n = h->num_values;
    r->has_dict = 1;
    return 1;
}

/* Where a data page's definition levels and values lie. */
typedef struct {
    const uint8_t *levels, *levels_end;
    const uint8_t *values, *values_end;
    int nseg; /* > 0: PLAIN values that snappy left as literals, in r->segs */
} PageParts;

/* A DATA_PAGE (v1): levels (a 4-byte length, then RLE) and values share the
 * compressed body. */
static int split_v1(ChunkReader *r, const PageHeader *h, const uint8_t *body, PageParts *pp) {
    int64_t csize = h->compressed_size, usize = h->uncompressed_size;
    if (r->max_def == 1 && (!h->has_def_encoding || h->def_encoding != E_RLE)) {
        return 0;
    }
    int nseg = 0;
    if (h->encoding == E_PLAIN && r->codec == C_SNAPPY) {
        nseg = pq_snappy_literals(body, (size_t)csize, (size_t)usize, r->segs);
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
        pp->levels = p + 4;
        pp->levels_end = pp->levels + len;
    } else {
        pp->levels = pp->levels_end = p;
    }
    pp->values = pp->levels_end;
    pp->values_end = nseg > 0 ? first_end : p + usize;
    if (nseg > 0) {
        r->segs[0].p = pp->values;
    }
    pp->nseg = nseg;
    return 1;
}

/* A DATA_PAGE_V2: uncompressed levels of def_len bytes, then the (compressed) values. */
static int split_v2(ChunkReader *r, const PageHeader *h, const uint8_t *body, PageParts *pp) {
    int64_t csize = h->compressed_size, usize = h->uncompressed_size;
    if (!h->has_num_nulls || !h->has_num_rows || !h->has_def_len || !h->has_rep_len ||
        h->num_nulls != 0 || h->num_rows != h->num_values || h->rep_len != 0 || h->def_len < 0 ||
        h->def_len > csize || h->def_len > usize || (r->max_def == 0 && h->def_len != 0)) {
        return 0;
    }
    pp->levels = body;
    pp->levels_end = body + h->def_len;
    pp->nseg = 0;
    if (h->encoding == E_PLAIN && r->codec == C_SNAPPY && h->is_compressed) {
        pp->nseg = pq_snappy_literals(body + h->def_len, (size_t)(csize - h->def_len),
                                      (size_t)(usize - h->def_len), r->segs);
    }
    if (pp->nseg > 0) {
        pp->values = r->segs[0].p;
        pp->values_end = r->segs[0].end;
        return 1;
    }
    pp->values = decompress(r, h->is_compressed, body + h->def_len, csize - h->def_len,
                            usize - h->def_len, &r->page, &r->page_cap);
    if (pp->values == NULL) {
        return 0;
    }
    pp->values_end = pp->values + (usize - h->def_len);
    return 1;
}

/* The page's n values made current: PLAIN pieces, or the dictionary indices' runs. */
static int start_values(ChunkReader *r, int32_t encoding, PageParts *pp, int64_t n) {
    if (encoding == E_PLAIN) {
        int nseg = pp->nseg;
        if (nseg == 0) {
            r->segs[0].p = pp->values;
            r->segs[0].end = pp->values_end;
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
        return 1;
    }
    if (!r->has_dict) {
        return 0;
    }
    if (n > 0) {
        if (pp->values_end - pp->values < 1 || pp->values[0] > 32) {
            return 0;
        }
        pq_hybrid_init(&r->idx, pp->values + 1, pp->values_end, pp->values[0]);
    }
    r->dict_encoded = 1;
    return 1;
}

/* A data page (v1 or v2) made current: 1 on success. */
static int load_data_page(ChunkReader *r, const PageHeader *h, const uint8_t *body) {
    if (!h->has_sub || !h->has_num_values || h->num_values < 0 || !h->has_encoding ||
        !encoding_of_values(h->encoding) || h->num_values > r->num_values - r->paged) {
        return 0;
    }
    r->data_seen = 1;
    int64_t n = h->num_values;
    PageParts pp;
    if (!(h->type == P_DATA ? split_v1(r, h, body, &pp) : split_v2(r, h, body, &pp))) {
        return 0;
    }
    if (r->max_def == 1) {
        Hybrid levels;
        pq_hybrid_init(&levels, pp.levels, pp.levels_end, 1);
        if (!pq_levels_all_one(&levels, n)) {
            return 0;
        }
    }
    r->paged += n;
    if (!start_values(r, h->encoding, &pp, n)) {
        return 0;
    }
    r->page_left = n;
    return 1;
}

int pq_reader_next_page(ChunkReader *r) {
    for (;;) {
        PageHeader h;
        const uint8_t *body;
        if (!read_page(r, &h, &body)) {
            return 0;
        }
        if (h.type == P_DICTIONARY) {
            if (!load_dictionary(r, &h, body)) {
                return 0;
            }
            continue;
        }
        if ((h.type != P_DATA && h.type != P_DATA_V2) || !load_data_page(r, &h, body)) {
            return 0;
        }
        if (r->page_left > 0) {
            return 1;
        }
    }
}
