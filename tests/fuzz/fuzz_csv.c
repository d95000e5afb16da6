/*
 * libFuzzer harness of the CSV block parser (inference/io/csv/csrc/parse.c).
 *
 * Input: 4 bytes of settings, then the block.
 *   byte 0: fields per line (1 to 8)     byte 1: which fields are read (a bit each; at
 *           least the first)             byte 2: the delimiter (',', tab, ';', '|', ' ')
 *   byte 3: float32 (odd) or float64; the capacity: bit 1 set gives one row less than
 *           the block's lines (the parser must refuse it)
 * Checked: no access outside the block or the output matrix (ASan), no undefined
 * behaviour (UBSan), rows within the capacity; and every value of a block it parses
 * equals strtod's correctly rounded reading of the field's text (cast to float32 for a
 * float32 output), bit for bit.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

static const unsigned char delimiters[5] = {',', '\t', ';', '|', ' '};

/* Each value of the parsed rows against strtod of its field's text. */
static void check_values(const unsigned char *p, const unsigned char *end, int n, const int *cols,
                         unsigned char delim, const char *out, ptrdiff_t k, ptrdiff_t rows,
                         int single) {
    for (ptrdiff_t row = 0; row < rows; row++) {
        for (int j = 0; j < n; j++) {
            const unsigned char *f = p;
            while (p < end && *p != delim && *p != '\n') {
                p++;
            }
            if (cols[j] >= 0) {
                size_t len = (size_t)(p - f);
                char *text = malloc(len + 1);
                memcpy(text, f, len);
                text[len] = '\0';
                double want = strtod(text, NULL);
                free(text);
                if (single) {
                    float w = (float)want, got;
                    memcpy(&got, out + ((size_t)row * (size_t)k + (size_t)cols[j]) * 4, 4);
                    if (memcmp(&w, &got, 4) != 0) {
                        __builtin_trap();
                    }
                } else {
                    double got;
                    memcpy(&got, out + ((size_t)row * (size_t)k + (size_t)cols[j]) * 8, 8);
                    if (memcmp(&want, &got, 8) != 0) {
                        __builtin_trap();
                    }
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
    int cols[8];
    ptrdiff_t k = 0;
    for (int j = 0; j < n; j++) {
        cols[j] = (j == 0 || ((data[1] >> j) & 1)) ? (int)k++ : -1;
    }
    unsigned char delim = delimiters[data[2] % 5];
    int single = data[3] & 1;
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
    if (out == NULL || !fastcsv_delimiter_ok(delim)) {
        __builtin_trap();
    }
    /* the block in its own allocation, so that a read past it is caught */
    size_t len = (size_t)(end - block);
    unsigned char *copy = malloc(len > 0 ? len : 1);
    memcpy(copy, block, len);
    ptrdiff_t rows =
        fastcsv_parse_lines(copy, copy + len, n, cols, delim, out, k, capacity, single);
    if (rows > capacity || rows < -1 || (rows >= 0 && capacity < lines)) {
        __builtin_trap();
    }
    if (rows > 0) {
        check_values(copy, copy + len, n, cols, delim, out, k, rows, single);
    }
    free(copy);
    free(out);
    return 0;
}
