/*
 * libFuzzer harness of the column chunk reader (reader.c, decode.c, with thrift.c,
 * snappy.c, rle.c and pool.c under it): a whole column chunk read from a file.
 *
 * Input: 8 bytes of settings, then the chunk's bytes.
 *   byte 0: physical type (INT32, INT64, FLOAT, DOUBLE) and output item (byte 0 / 4:
 *           for FLOAT and DOUBLE, float32 or float64)
 *   byte 1: codec (UNCOMPRESSED or SNAPPY)    byte 2: max definition level (0 or 1)
 *   byte 3: the first read's size (then all that is left, in reads of up to 4096)
 *   bytes 4-5: num_values (little-endian, the low 12 bits: below 4096); 6-7 unused
 * The chunk is written to a memory file and read with pread(2) as the extension reads
 * it, into column 1 of a matrix of exactly num_values rows and 2 columns. Checked: no
 * access outside the input, the reader's buffers or the matrix (ASan; the buffer pool
 * keeps nothing under ASan), no undefined behaviour (UBSan), column 0 untouched.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reader.h"
#include "thrift.h"

static int chunk_file(void) {
    static int fd = -1;
    if (fd < 0) {
        fd = memfd_create("chunk", MFD_CLOEXEC);
    }
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int types[4] = {T_INT32, T_INT64, T_FLOAT, T_DOUBLE};
    if (size < 8) {
        return 0;
    }
    int physical = types[data[0] & 3];
    int wide = (data[0] >> 2) & 1;
    int codec = data[1] & 1;
    int max_def = data[2] & 1;
    int64_t first = data[3];
    int64_t num_values = (int64_t)(data[4] | (data[5] & 0x0f) << 8);
    const uint8_t *chunk = data + 8;
    size_t length = size - 8;

    int fd = chunk_file();
    if (fd < 0 || ftruncate(fd, 0) != 0 ||
        (length > 0 && pwrite(fd, chunk, length, 0) != (ssize_t)length)) {
        return 0;
    }
    int item = physical == T_INT32 ? 4 : physical == T_INT64 ? 8 : (wide ? 8 : 4);
    char format = physical == T_INT32 ? 'i' : physical == T_INT64 ? 'q' : (item == 8 ? 'd' : 'f');
    int kind = pq_output_kind(physical, format, item);
    if (kind < 0) {
        __builtin_trap();
    }
    size_t cells = (size_t)num_values * 2;
    char *out = malloc(cells > 0 ? cells * (size_t)item : 1);
    if (out == NULL) {
        return 0;
    }
    memset(out, 0x5a, cells * (size_t)item);

    ChunkReader r;
    memset(&r, 0, sizeof(r));
    if (pq_reader_open(&r, fd, 0, (int64_t)length, physical, codec, max_def, num_values) !=
        PQ_OPEN_OK) {
        __builtin_trap();
    }
    int64_t done = 0;
    int64_t take = first < num_values ? first : num_values;
    while (done < num_values) {
        int ok = pq_reader_read(&r, kind, take, out + ((size_t)done * 2 + 1) * (size_t)item, 2,
                                item);
        pq_reader_finish(&r, ok, take);
        if (!ok) {
            break;
        }
        done += take;
        take = num_values - done < 4096 ? num_values - done : 4096;
    }
    if (!r.spent && r.delivered != num_values) {
        __builtin_trap();
    }
    for (int64_t i = 0; i < num_values; i++) { /* column 0 never written */
        for (int b = 0; b < item; b++) {
            if ((unsigned char)out[(size_t)i * 2 * (size_t)item + (size_t)b] != 0x5a) {
                __builtin_trap();
            }
        }
    }
    pq_reader_free_buffers(&r);
    free(out);
    return 0;
}
