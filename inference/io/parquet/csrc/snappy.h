/*
 * Raw snappy blocks (no framing): decompressed into a buffer of the size the page
 * header gives, or, when a block holds only literals, described as the pieces of the
 * compressed bytes that are its output (read where they lie, never copied).
 */
#ifndef LINREG_PQ_SNAPPY_H
#define LINREG_PQ_SNAPPY_H

#include <stddef.h>
#include <stdint.h>

/* A piece of a page's bytes: the page is the concatenation of its pieces. */
typedef struct {
    const uint8_t *p, *end;
} Seg;

/* pieces at most (a page that snappy could not compress is a literal per 64 KiB) */
#define MAX_SEGS 64

/* Decompresses the snappy block [src, src + src_len) into exactly dst_len bytes at dst:
 * 1 on success, 0 when the block is malformed or decompresses to another length.
 * Reads only [src, src + src_len), writes only [dst, dst + dst_len). */
int pq_snappy_decompress(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len);

/* If the snappy block [src, src + src_len) holds only literals (at most MAX_SEGS) and
 * decompresses to dst_len bytes, sets segs to them and returns their count; else 0. */
int pq_snappy_literals(const uint8_t *src, size_t src_len, size_t dst_len, Seg *segs);

#endif
