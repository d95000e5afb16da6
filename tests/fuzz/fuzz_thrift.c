/*
 * libFuzzer harness of the Thrift compact-protocol page header parser (thrift.c):
 * any bytes, parsed from their start. Checked: no read outside the input (ASan), no
 * undefined behaviour (UBSan), and a header's size within the input.
 */
#include <stddef.h>
#include <stdint.h>

#include "thrift.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    PageHeader h;
    int64_t used = -1;
    if (pq_parse_page_header(data, data + size, &h, &used)) {
        if (used < 1 || (size_t)used > size || !h.has_type || !h.has_usize || !h.has_csize) {
            __builtin_trap();
        }
    }
    return 0;
}
