/*
 * The plain numeric CSV block parser (parse.c), without Python: what the extension
 * (module.c) and the fuzz harness (tests/fuzz/fuzz_csv.c) call.
 */
#ifndef LINREG_FASTCSV_PARSE_H
#define LINREG_FASTCSV_PARSE_H

#include <stddef.h>

/* Whether a byte may separate fields: ASCII, and not part of a number, a quote or a
 * line end. */
int fastcsv_delimiter_ok(int delimiter);

/* Rows parsed from the whole lines [begin, end) into out: capacity rows of k values,
 * float32 when single, else float64; field j of a line goes to column columns[j] of its
 * row (-1: not read; each of 0..k-1 exactly once). Returns the rows, or -1 when the
 * block is not plain (out may then hold partial values). No load starts before begin
 * or ends after end; no store leaves out's capacity * k values. */
ptrdiff_t fastcsv_parse_lines(const unsigned char *begin, const unsigned char *end,
                              int n_columns, const int *columns, unsigned char delimiter,
                              char *out, ptrdiff_t k, ptrdiff_t capacity, int single);

#endif
