/*
 * Run headers of the RLE / bit-packing hybrid: a varint whose low bit tells a
 * bit-packed run (groups of 8 values) from an RLE run (a count, then the value in
 * ceil(bit_width / 8) bytes). Every run is checked against the bytes left.
 */
#include "rle.h"

int pq_hybrid_next_run(Hybrid *h) {
    Cursor c = {h->p, h->end, 0};
    uint64_t header = read_varint(&c);
    if (c.bad) {
        return 0;
    }
    int bw = h->bit_width;
    if (header & 1) {
        uint64_t groups = header >> 1;
        if (groups == 0 || groups > ((uint64_t)1 << 40)) {
            return 0;
        }
        uint64_t bytes = groups * (uint64_t)bw;
        uint64_t avail = (uint64_t)(h->end - c.p);
        uint64_t values = groups * 8;
        if (bytes > avail) {
            bytes = avail;
            if (bw > 0) {
                values = avail * 8 / (uint64_t)bw;
            }
        }
        if (values == 0) {
            return 0;
        }
        h->packed = 1;
        h->run = c.p;
        h->run_end = c.p + bytes;
        h->bit = 0;
        h->left = (int64_t)values;
        h->p = c.p + bytes;
    } else {
        uint64_t count = header >> 1;
        int nb = (bw + 7) / 8;
        if (count == 0 || count > ((uint64_t)1 << 40) || h->end - c.p < nb) {
            return 0;
        }
        h->packed = 0;
        h->value = load_le(c.p, nb);
        h->left = (int64_t)count;
        h->p = c.p + nb;
    }
    return 1;
}

int pq_levels_all_one(Hybrid *h, int64_t n) {
    while (n > 0) {
        if (h->left == 0 && !pq_hybrid_next_run(h)) {
            return 0;
        }
        int64_t k = h->left < n ? h->left : n;
        if (!h->packed) {
            if (h->value != 1) {
                return 0;
            }
        } else {
            for (int64_t i = 0; i < k; i++) {
                if (!((h->run[h->bit >> 3] >> (h->bit & 7)) & 1)) {
                    return 0;
                }
                h->bit++;
            }
        }
        h->left -= k;
        n -= k;
    }
    return 1;
}
