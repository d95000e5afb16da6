/*
 * One flat numeric Parquet column chunk, decoded page by page into a column of a
 * C-contiguous matrix. No Python here (module.c is the extension's face), so that the
 * fuzz harnesses drive the same code.
 *
 * The chunk's bytes [offset, offset + length) are read with pread(2) from fd. A reader
 * holds at most three buffers (pool.h): the raw bytes of the current page (its header,
 * its body and a little lookahead for the next header), the decompressed page, and the
 * dictionary's values; each is bounded by MAX_PAGE_BYTES (plus MAX_HEADER_BYTES for the
 * raw one).
 *
 * What is decoded (anything else makes pq_reader_read answer 0, and the reader is
 * spent):
 *   - page headers in the Thrift compact protocol (thrift.h);
 *   - DICTIONARY_PAGE (PLAIN or PLAIN_DICTIONARY values), first in the chunk;
 *   - DATA_PAGE (v1) and DATA_PAGE_V2 with PLAIN, PLAIN_DICTIONARY or RLE_DICTIONARY
 *     values and, for an optional column (max definition level 1), RLE definition
 *     levels that are all 1 (no nulls); no repetition levels;
 *   - codecs UNCOMPRESSED and SNAPPY (snappy.h).
 * Every length read from the file is checked against the bytes that hold it; the
 * dictionary indices against the dictionary's size.
 */
#ifndef LINREG_PQ_READER_H
#define LINREG_PQ_READER_H

#include <stdint.h>

#include "rle.h"
#include "snappy.h"

#define MAX_PAGE_BYTES ((int64_t)256 << 20)
#define MAX_HEADER_BYTES ((int64_t)1 << 20)

/* output kinds: (physical type, out item) */
enum { K_D2D, K_D2F, K_F2F, K_F2D, K_I64, K_I32 };

typedef struct {
    int fd;
    int physical_type, codec, max_def;
    int value_size;       /* 0 until opened */
    int64_t chunk_end;
    int64_t num_values;
    int64_t delivered;    /* values handed to the caller */
    int64_t paged;        /* values in the data pages met so far */
    int64_t next_page;    /* file offset of the next page header */
    int spent;            /* a read failed: every later read answers 0 */
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
} ChunkReader;

/* why pq_reader_open refused its arguments */
enum {
    PQ_OPEN_OK = 0,
    PQ_OPEN_BIG_ENDIAN,
    PQ_OPEN_RANGE,         /* fd, offset, length or num_values negative, or past 2**63 */
    PQ_OPEN_PHYSICAL_TYPE, /* not INT32, INT64, FLOAT or DOUBLE */
    PQ_OPEN_CODEC,         /* not UNCOMPRESSED or SNAPPY */
    PQ_OPEN_DEFINITION,    /* max definition level not 0 or 1 */
};

/* Sets r up for the chunk (its buffers, if any, are freed first; r must have been
 * zeroed once before its first use): PQ_OPEN_OK or why not. The caller owns fd. */
int pq_reader_open(ChunkReader *r, int fd, int64_t offset, int64_t length, int physical_type,
                   int codec, int max_def, int64_t num_values);

/* Decodes the next rows values into dst, dst + stride * out_size, ... (out_size bytes
 * per output item, an output of `kind`): 1 on success, 0 when the data is not plain
 * for this reader. The caller checks 0 <= rows <= num_values - delivered first, and
 * reports the outcome with pq_reader_finish. */
int pq_reader_read(ChunkReader *r, int kind, int64_t rows, char *dst, int64_t stride,
                   int out_size);

/* After pq_reader_read: counts the values (freeing the buffers after the last one), or
 * spends the reader. */
void pq_reader_finish(ChunkReader *r, int ok, int64_t rows);

/* Loads pages until one with values (r->page_left > 0): 1 on success, 0 if the data is
 * not plain (decode.c's pq_reader_read calls it when a page is used up). */
int pq_reader_next_page(ChunkReader *r);

/* Gives the buffers back to the pool. */
void pq_reader_free_buffers(ChunkReader *r);

/* The output kind for a physical type and a one-character buffer item format ('d', 'f',
 * 'q', ...) of itemsize bytes, or -1. */
int pq_output_kind(int physical_type, char format, int64_t itemsize);

/* "INT32", "INT64", "FLOAT" or "DOUBLE" */
const char *pq_type_name(int physical_type);

#endif
