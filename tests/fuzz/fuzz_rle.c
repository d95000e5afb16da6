/*
 * libFuzzer harness of the RLE / bit-packing hybrid (rle.c): byte 0 gives the bit width
 * (0 to 32), the rest is encoded data. Every run is started and every value of it read
 * (pq_hybrid_unpack for bit-packed runs), as the reader reads dictionary indices; the
 * same bytes are then read as definition levels (bit width 1, pq_levels_all_one).
 * Checked: no read outside the input (ASan), no undefined behaviour (UBSan), and every
 * value within its bit width.
 */
#include <stddef.h>
#include <stdint.h>

#include "rle.h"

#define MAX_VALUES 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) {
        return 0;
    }
    int bw = data[0] % 33;
    const uint64_t limit = bw == 32 ? UINT64_MAX : ((uint64_t)1 << bw);
    Hybrid h;
    pq_hybrid_init(&h, data + 1, data + size, bw);
    int64_t seen = 0;
    while (seen < MAX_VALUES && pq_hybrid_next_run(&h)) {
        if (h.left <= 0) {
            __builtin_trap();
        }
        while (h.left > 0 && seen < MAX_VALUES) {
            uint32_t v = h.packed ? pq_hybrid_unpack(&h) : h.value;
            if (h.packed) {
                h.bit += (uint64_t)bw;
            }
            if ((uint64_t)v >= limit && bw < 32) {
                /* an RLE run's value may hold more bits than the width: the reader
                 * checks it against the dictionary, so only bit-packed ones are wrong */
                if (h.packed) {
                    __builtin_trap();
                }
            }
            h.left--;
            seen++;
        }
    }
    Hybrid levels;
    pq_hybrid_init(&levels, data + 1, data + size, 1);
    pq_levels_all_one(&levels, (int64_t)(size * 8));
    return 0;
}
