/*
 * The plain CSV block parser (parse.c), without Python: what the extension (module.c)
 * and the fuzz harness (tests/fuzz/fuzz_csv.c) call.
 */
#ifndef LINREG_FASTCSV_PARSE_H
#define LINREG_FASTCSV_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Whether a byte may separate fields: ASCII, and not part of a number, a quote or a
 * line end. */
int fastcsv_delimiter_ok(int delimiter);

/* The levels of a factor field and their hash table (fastcsv_factor_init fills it). */
typedef struct {
    const unsigned char *const *levels; /* each level's bytes (not NUL-terminated) */
    const size_t *lengths;
    int32_t *slots;   /* per slot: 1 + the index of the level that hashes there, 0: none */
    uint32_t mask;    /* slots - 1 */
} FastcsvFactor;

/* The slots a table of n_levels needs: a power of two at least 2 * n_levels (and 2). */
size_t fastcsv_factor_slots(size_t n_levels);

/* Fills f's table: slots must hold fastcsv_factor_slots(n_levels) entries. A level that
 * is empty, or a repeat of an earlier one, is left out (it can never be matched). */
void fastcsv_factor_init(FastcsvFactor *f, const unsigned char *const *levels,
                         const size_t *lengths, size_t n_levels, int32_t *slots);

/* Rows parsed from the whole lines [begin, end), or -1 when the block is not plain (the
 * outputs may then hold partial values).
 *
 * Field j of a line: columns[j] >= 0 is a number for column columns[j] of out (each of
 * 0..k-1 exactly once), -1 is not read, and c <= -2 is a text field of factor -2 - c
 * (each of 0..n_factors-1 at most once): its level's index goes to
 * codes[(-2 - c) * capacity + row] (int64), -2 for an empty field, and a field that is
 * not one of its levels, byte for byte, makes the block not plain. A factor field may be
 * quoted ("north"; "" is empty) when no quote, '\r' or '\n' is inside.
 *
 * out holds capacity rows of k values, float32 when single, else float64: row-major
 * (value (row, c) at row * k + c) or, when column_major, column-major (at
 * c * capacity + row). No load starts before begin or ends after end; no store leaves
 * out's capacity * k values or codes' n_factors * capacity. */
ptrdiff_t fastcsv_parse_lines(const unsigned char *begin, const unsigned char *end,
                              int n_columns, const int *columns, unsigned char delimiter,
                              char *out, ptrdiff_t k, ptrdiff_t capacity, int single,
                              int column_major, const FastcsvFactor *factors, int n_factors,
                              int64_t *codes);

#endif
