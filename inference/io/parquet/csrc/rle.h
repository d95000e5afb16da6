/*
 * Parquet's RLE / bit-packing hybrid (definition levels and dictionary indices): runs
 * of one repeated value, and runs of values bit-packed in groups of eight.
 */
#ifndef LINREG_PQ_RLE_H
#define LINREG_PQ_RLE_H

#include <stdint.h>
#include <string.h>

#include "bytes.h"

typedef struct {
    const uint8_t *p, *end;
    int bit_width;          /* 0 to 32 */
    int packed;             /* current run: bit-packed (1) or RLE (0) */
    int64_t left;           /* values left in the current run */
    uint32_t value;         /* the RLE run's value */
    const uint8_t *run;     /* bit-packed: the run's bytes */
    const uint8_t *run_end;
    uint64_t bit;           /* bit-packed: the next value's bit offset in the run */
} Hybrid;

/* values encoded in [p, end) with bit_width (0 to 32) bits each */
static inline void pq_hybrid_init(Hybrid *h, const uint8_t *p, const uint8_t *end,
                                  int bit_width) {
    memset(h, 0, sizeof(*h));
    h->p = p;
    h->end = end;
    h->bit_width = bit_width;
}

/* Starts the next run: 0 if there is none or it is malformed. A bit-packed run cut
 * short by the end of the data keeps only the values whose bits are all there. */
int pq_hybrid_next_run(Hybrid *h);

/* The bit-packed value at h->bit, whose bits lie within the run. */
static inline uint32_t pq_hybrid_unpack(const Hybrid *h) {
    uint64_t byte = h->bit >> 3;
    int shift = (int)(h->bit & 7);
    uint64_t word = 0;
    size_t avail = (size_t)(h->run_end - h->run) - byte;
    if (LIKELY(avail >= 8)) {
        memcpy(&word, h->run + byte, 8);
    } else {
        for (size_t i = 0; i < avail; i++) {
            word |= (uint64_t)h->run[byte + i] << (8 * i);
        }
    }
    return (uint32_t)((word >> shift) & (((uint64_t)1 << h->bit_width) - 1));
}

/* Whether the next n values (bit width 1) are all 1 (levels of a column without
 * nulls): 0 also when the data ends first. */
int pq_levels_all_one(Hybrid *h, int64_t n);

#endif
