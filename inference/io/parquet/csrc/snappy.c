/*
 * Raw snappy decompression (the format of google/snappy's format_description.txt):
 * a varint of the uncompressed length, then tags: literals and copies with 1-, 2- or
 * 4-byte offsets. Every length and offset is checked against the bytes left on both
 * sides before it is used.
 */
#include "snappy.h"

#include <string.h>

#include "bytes.h"

/* Copies len bytes from off bytes back; overlapping copies repeat the pattern. */
static uint8_t *copy_back(uint8_t *op, size_t off, size_t len) {
    const uint8_t *from = op - off;
    if (off >= len) {
        memcpy(op, from, len);
        return op + len;
    }
    if (off >= 8) {
        /* overlapping: 8 bytes at a time never read bytes not yet written */
        while (len >= 8) {
            memcpy(op, from, 8);
            op += 8;
            from += 8;
            len -= 8;
        }
    }
    while (len--) {
        *op++ = *from++;
    }
    return op;
}

int pq_snappy_decompress(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_len) {
    Cursor c = {src, src + src_len, 0};
    uint64_t ulen = read_varint(&c);
    if (c.bad || ulen != dst_len) {
        return 0;
    }
    const uint8_t *ip = c.p, *iend = src + src_len;
    uint8_t *op = dst, *oend = dst + dst_len;
    while (ip < iend) {
        uint8_t tag = *ip++;
        size_t len, off;
        /* Short literals and copies (most tags of a compressible page) move 16 bytes
         * unconditionally while both buffers have room to spare; the bytes written
         * past the tag's end are overwritten by the next tags. */
        if (LIKELY(iend - ip >= 20 && oend - op >= 20)) {
            if ((tag & 3) == 0 && (tag >> 2) < 16) {
                len = (size_t)(tag >> 2) + 1;
                memcpy(op, ip, 16);
                op += len;
                ip += len;
                continue;
            }
            if ((tag & 3) == 1) {
                len = 4 + ((tag >> 2) & 7);
                off = ((size_t)(tag >> 5) << 8) | *ip++;
            } else if ((tag & 3) == 2) {
                len = (size_t)(tag >> 2) + 1;
                off = load_le(ip, 2);
                ip += 2;
            } else {
                goto slow; /* a long literal, or a copy with a 4-byte offset */
            }
            if (off == 0 || off > (size_t)(op - dst) || len > (size_t)(oend - op)) {
                return 0;
            }
            if (len <= 16 && off >= 8) {
                /* the second 8 bytes may start in the first: those are written */
                memcpy(op, op - off, 8);
                memcpy(op + 8, op - off + 8, 8);
                op += len;
                continue;
            }
            op = copy_back(op, off, len);
            continue;
        }
    slow:
        switch (tag & 3) {
        case 0: {
            len = tag >> 2;
            if (len >= 60) {
                int nb = (int)len - 59;
                if (iend - ip < nb) {
                    return 0;
                }
                len = load_le(ip, nb);
                ip += nb;
            }
            len += 1;
            if ((size_t)(iend - ip) < len || (size_t)(oend - op) < len) {
                return 0;
            }
            memcpy(op, ip, len);
            op += len;
            ip += len;
            continue;
        }
        case 1:
            if (ip >= iend) {
                return 0;
            }
            len = 4 + ((tag >> 2) & 7);
            off = ((size_t)(tag >> 5) << 8) | *ip++;
            break;
        case 2:
            if (iend - ip < 2) {
                return 0;
            }
            len = (size_t)(tag >> 2) + 1;
            off = load_le(ip, 2);
            ip += 2;
            break;
        default:
            if (iend - ip < 4) {
                return 0;
            }
            len = (size_t)(tag >> 2) + 1;
            off = load_le(ip, 4);
            ip += 4;
            break;
        }
        if (off == 0 || off > (size_t)(op - dst) || len > (size_t)(oend - op)) {
            return 0;
        }
        op = copy_back(op, off, len);
    }
    return op == oend;
}

int pq_snappy_literals(const uint8_t *src, size_t src_len, size_t dst_len, Seg *segs) {
    Cursor c = {src, src + src_len, 0};
    uint64_t ulen = read_varint(&c);
    if (c.bad || ulen != dst_len) {
        return 0;
    }
    const uint8_t *ip = c.p, *iend = src + src_len;
    size_t total = 0;
    int k = 0;
    while (ip < iend) {
        uint8_t tag = *ip++;
        if ((tag & 3) != 0 || k == MAX_SEGS) {
            return 0;
        }
        size_t len = tag >> 2;
        if (len >= 60) {
            int nb = (int)len - 59;
            if (iend - ip < nb) {
                return 0;
            }
            len = load_le(ip, nb);
            ip += nb;
        }
        len += 1;
        if ((size_t)(iend - ip) < len) {
            return 0;
        }
        segs[k].p = ip;
        segs[k].end = ip + len;
        k++;
        ip += len;
        total += len;
    }
    return k > 0 && total == dst_len ? k : 0;
}
