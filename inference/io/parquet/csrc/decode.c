/*
 * Values of the current page into the output column (see reader.h): PLAIN values
 * converted from their pieces, dictionary indices unpacked a batch at a time, checked
 * against the dictionary's size, then gathered.
 */
#include <string.h>

#include "reader.h"
#include "thrift.h"

/* dictionary indices unpacked at a time before their values are gathered */
#define INDEX_BATCH 1024

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

/* m (<= INDEX_BATCH) indices of the current bit-packed run into idx: 1, or 0 when one
 * is past the dictionary's dict_n values */
static int unpack_indices(Hybrid *h, int64_t m, uint32_t dict_n, uint32_t *idx) {
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
            v = pq_hybrid_unpack(h);
        }
        bit += (uint64_t)bw;
        bad |= v >= dict_n;
        idx[i] = v;
    }
    h->bit = bit;
    return !bad;
}

/* n dictionary-encoded values of the current page to out's column: 1 on success */
static int decode_indexed(ChunkReader *r, int kind, int64_t n, char *dst, int64_t stride,
                          int out_size) {
    uint32_t idx[INDEX_BATCH];
    Hybrid *h = &r->idx;
    const uint32_t dict_n = (uint32_t)r->dict_n;
    while (n > 0) {
        if (h->left == 0 && !pq_hybrid_next_run(h)) {
            return 0;
        }
        int64_t k = h->left < n ? h->left : n;
        if (!h->packed && h->value >= dict_n) {
            return 0;
        }
        for (int64_t done = 0; done < k;) {
            int64_t m = k - done < INDEX_BATCH ? k - done : INDEX_BATCH;
            if (!h->packed) {
                for (int64_t i = 0; i < m; i++) {
                    idx[i] = h->value;
                }
            } else if (!unpack_indices(h, m, dict_n, idx)) {
                return 0;
            }
            gather(kind, r->dict, idx, m, dst, stride);
            dst += m * stride * out_size;
            done += m;
        }
        h->left -= k;
        n -= k;
    }
    return 1;
}

/* n PLAIN values of the current page to out's column: 1 on success */
static int read_plain(ChunkReader *r, int kind, int64_t n, char *dst, int64_t stride,
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

int pq_reader_read(ChunkReader *r, int kind, int64_t rows, char *dst, int64_t stride,
                   int out_size) {
    if (r->value_size == 0 || r->spent) {
        return 0;
    }
    while (rows > 0) {
        if (r->page_left == 0 && !pq_reader_next_page(r)) {
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

void pq_reader_finish(ChunkReader *r, int ok, int64_t rows) {
    if (ok) {
        r->delivered += rows;
        if (r->delivered == r->num_values) {
            pq_reader_free_buffers(r); /* for the next chunk's reader */
        }
    } else {
        r->spent = 1;
        pq_reader_free_buffers(r);
    }
}

int pq_output_kind(int physical_type, char format, int64_t itemsize) {
    int is_float = format == 'f' || format == 'd';
    int is_int = format == 'b' || format == 'h' || format == 'i' || format == 'l' ||
                 format == 'q' || format == 'n';
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

const char *pq_type_name(int physical_type) {
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
