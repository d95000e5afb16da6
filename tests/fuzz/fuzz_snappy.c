/*
 * libFuzzer harness of the snappy decompressor (snappy.c): the input is a raw snappy
 * block, decompressed into a buffer of exactly the length its preamble states (at most
 * 1 MiB). Checked: no access outside the input or the output (ASan), no undefined
 * behaviour (UBSan); and, where pq_snappy_literals describes the block as literal
 * pieces, that the pieces concatenated are exactly what pq_snappy_decompress wrote.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "snappy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Cursor c = {data, data + size, 0};
    uint64_t ulen = read_varint(&c);
    if (c.bad || ulen > ((uint64_t)1 << 20)) {
        return 0;
    }
    uint8_t *dst = malloc(ulen > 0 ? (size_t)ulen : 1);
    if (dst == NULL) {
        return 0;
    }
    int ok = pq_snappy_decompress(data, size, dst, (size_t)ulen);
    Seg segs[MAX_SEGS];
    int k = pq_snappy_literals(data, size, (size_t)ulen, segs);
    if (k > 0) {
        if (!ok) {
            __builtin_trap(); /* literals only, yet the decompressor refused them */
        }
        size_t at = 0;
        for (int i = 0; i < k; i++) {
            size_t n = (size_t)(segs[i].end - segs[i].p);
            if (segs[i].p < data || segs[i].end > data + size || at + n > ulen ||
                memcmp(dst + at, segs[i].p, n) != 0) {
                __builtin_trap();
            }
            at += n;
        }
        if (at != ulen) {
            __builtin_trap();
        }
    }
    free(dst);
    return 0;
}
