/*
 * Parquet page headers (parquet.thrift's PageHeader) in the Thrift compact protocol:
 * the fields the reader needs, every other field of any type skipped.
 */
#ifndef LINREG_PQ_THRIFT_H
#define LINREG_PQ_THRIFT_H

#include <stdint.h>

/* parquet.thrift enums */
enum { T_INT32 = 1, T_INT64 = 2, T_FLOAT = 4, T_DOUBLE = 5 };
enum { C_UNCOMPRESSED = 0, C_SNAPPY = 1 };
enum { P_DATA = 0, P_INDEX = 1, P_DICTIONARY = 2, P_DATA_V2 = 3 };
enum { E_PLAIN = 0, E_PLAIN_DICTIONARY = 2, E_RLE = 3, E_RLE_DICTIONARY = 8 };

/* nesting deeper than this (structs in lists in structs ...) is refused */
#define THRIFT_MAX_DEPTH 32

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

/* Parses a PageHeader from [p, end): 1 with *size its bytes, 0 if it is malformed, cut
 * short, or lacks its type or sizes. Never reads outside [p, end). */
int pq_parse_page_header(const uint8_t *p, const uint8_t *end, PageHeader *h, int64_t *size);

#endif
