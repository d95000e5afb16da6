/*
 * libFuzzer harness of the CSV block parser (inference/io/csv/csrc/parse.c).
 *
 * Input: 4 bytes of settings, then the block.
 *   byte 0: fields per line (1 to 8)     byte 1: which fields are numbers (a bit each;
 *           at least the first)          byte 2: the delimiter (',', tab, ';', '|', ' ')
 *   byte 3: bit 0: float32 (else float64); bit 1: the capacity is one row less than the
 *           block's lines (the parser must refuse it); bit 2: a column-major output;
 *           bit 3: the other fields are factor fields (each its own factor, with the
 *           levels of `levels` below), else they are not read
 * Checked: no access outside the block, the output matrix or the codes (ASan), no
 * undefined behaviour (UBSan), rows within the capacity; and for a block it parses,
 * every value equals strtod's correctly rounded reading of the field's text (cast to
 * float32 for a float32 output), bit for bit, at its place in the layout, and every
 * factor code is the index of the field's text (its quotes taken off) among the levels,
 * or -2 for an empty field.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

static const unsigned char delimiters[5] = {',', '\t', ';', '|', ' '};

/* levels of every factor: short, long, UTF-8, with a delimiter, digits, a space */
static const char *const level_text[] = {"a", "bc", "north", "\xc3\xa9t\xc3\xa9", "x,y",
                                         "L00", "12", "a b", "", "bc"};
#define N_LEVELS (sizeof level_text / sizeof level_text[0])

/* The index of the first level equal to [s, s + n), or -1. */
static int64_t level_of(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < N_LEVELS; i++) {
        if (strlen(level_text[i]) == n && n > 0 && memcmp(level_text[i], s, n) == 0) {
            return (int64_t)i;
        }
    }
    return -1;
}

/* Each value and code of the parsed rows against strtod and the levels. */
static void check_rows(const unsigned char *p, const unsigned char *end, int n, const int *cols,
                       unsigned char delim, const char *out, ptrdiff_t k, ptrdiff_t capacity,
                       ptrdiff_t rows, int single, int column_major, const int64_t *codes) {
    for (ptrdiff_t row = 0; row < rows; row++) {
        for (int j = 0; j < n; j++) {
            const unsigned char *f = p, *f_end;
            if (cols[j] < -1 && p < end && *p == '"') { /* a quoted factor field */
                f = ++p;
                while (*p != '"') {
                    p++;
                }
                f_end = p++;
            } else {
                while (p < end && *p != delim && *p != '\n') {
                    p++;
                }
                f_end = p;
            }
            size_t len = (size_t)(f_end - f);
            if (cols[j] >= 0) {
                char *text = malloc(len + 1);
                memcpy(text, f, len);
                text[len] = '\0';
                double want = strtod(text, NULL);
                free(text);
                size_t at = column_major ? (size_t)cols[j] * (size_t)capacity + (size_t)row
                                         : (size_t)row * (size_t)k + (size_t)cols[j];
                if (single) {
                    float w = (float)want, got;
                    memcpy(&got, out + at * 4, 4);
                    if (memcmp(&w, &got, 4) != 0) {
                        __builtin_trap();
                    }
                } else {
                    double got;
                    memcpy(&got, out + at * 8, 8);
                    if (memcmp(&want, &got, 8) != 0) {
                        __builtin_trap();
                    }
                }
            } else if (cols[j] < -1) {
                int64_t want = len == 0 ? -2 : level_of(f, len);
                if (want == -1 || codes[(size_t)(-2 - cols[j]) * (size_t)capacity + (size_t)row] != want) {
                    __builtin_trap();
                }
            }
            p++; /* the delimiter or the newline */
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) {
        return 0;
    }
    int n = 1 + data[0] % 8;
    int single = data[3] & 1, column_major = (data[3] >> 2) & 1, with_factors = (data[3] >> 3) & 1;
    int cols[8];
    ptrdiff_t k = 0;
    int n_factors = 0;
    for (int j = 0; j < n; j++) {
        if (j == 0 || ((data[1] >> j) & 1)) {
            cols[j] = (int)k++;
        } else {
            cols[j] = with_factors ? -2 - n_factors++ : -1;
        }
    }
    unsigned char delim = delimiters[data[2] % 5];
    const unsigned char *block = data + 4, *end = data + size;
    ptrdiff_t lines = 0;
    for (const unsigned char *q = block; q < end; q++) {
        lines += *q == '\n';
    }
    if (end > block && end[-1] != '\n') {
        lines++;
    }
    ptrdiff_t capacity = (data[3] & 2) && lines > 0 ? lines - 1 : lines;
    size_t item = single ? 4 : 8;
    size_t bytes = (size_t)capacity * (size_t)k * item;
    char *out = malloc(bytes > 0 ? bytes : 1);
    size_t code_count = (size_t)n_factors * (size_t)capacity;
    int64_t *codes = malloc(code_count > 0 ? code_count * sizeof *codes : 1);
    if (out == NULL || codes == NULL || !fastcsv_delimiter_ok(delim)) {
        __builtin_trap();
    }
    /* every factor shares the levels, each in its own table */
    const unsigned char *levels[N_LEVELS];
    size_t lengths[N_LEVELS];
    for (size_t i = 0; i < N_LEVELS; i++) {
        levels[i] = (const unsigned char *)level_text[i];
        lengths[i] = strlen(level_text[i]);
    }
    FastcsvFactor factors[8];
    int32_t *slots = malloc(8 * fastcsv_factor_slots(N_LEVELS) * sizeof *slots);
    for (int f = 0; f < n_factors; f++) {
        fastcsv_factor_init(&factors[f], levels, lengths, N_LEVELS,
                            slots + (size_t)f * fastcsv_factor_slots(N_LEVELS));
    }
    /* the block in its own allocation, so that a read past it is caught */
    size_t len = (size_t)(end - block);
    unsigned char *copy = malloc(len > 0 ? len : 1);
    memcpy(copy, block, len);
    ptrdiff_t rows = fastcsv_parse_lines(copy, copy + len, n, cols, delim, out, k, capacity,
                                         single, column_major, factors, n_factors, codes);
    if (rows > capacity || rows < -1 || (rows >= 0 && capacity < lines)) {
        __builtin_trap();
    }
    if (rows > 0) {
        check_rows(copy, copy + len, n, cols, delim, out, k, capacity, rows, single,
                   column_major, codes);
    }
    free(copy);
    free(slots);
    free(codes);
    free(out);
    return 0;
}
