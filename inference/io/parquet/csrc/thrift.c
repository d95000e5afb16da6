/*
 * The Thrift compact protocol, as far as Parquet page headers need it: field headers
 * (deltas or explicit ids), zigzag integers, and the skipping of any value (binary,
 * lists, sets, maps, structs, UUIDs) with its nesting bounded by THRIFT_MAX_DEPTH.
 */
#include "thrift.h"

#include <string.h>

#include "bytes.h"

static int64_t read_zigzag(Cursor *c) {
    uint64_t u = read_varint(c);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static int32_t read_i32(Cursor *c) {
    int64_t v = read_zigzag(c);
    if (v < INT32_MIN || v > INT32_MAX) {
        c->bad = 1;
        return 0;
    }
    return (int32_t)v;
}

static void skip_bytes(Cursor *c, uint64_t n) {
    if (c->bad || n > (uint64_t)(c->end - c->p)) {
        c->bad = 1;
        return;
    }
    c->p += n;
}

/* compact types */
enum {
    CT_STOP = 0,
    CT_TRUE = 1,
    CT_FALSE = 2,
    CT_BYTE = 3,
    CT_I16 = 4,
    CT_I32 = 5,
    CT_I64 = 6,
    CT_DOUBLE = 7,
    CT_BINARY = 8,
    CT_LIST = 9,
    CT_SET = 10,
    CT_MAP = 11,
    CT_STRUCT = 12,
    CT_UUID = 13,
};

static void skip_value(Cursor *c, int type, int depth);

static void skip_struct(Cursor *c, int depth) {
    if (depth > THRIFT_MAX_DEPTH) {
        c->bad = 1;
        return;
    }
    while (!c->bad) {
        if (c->p >= c->end) {
            c->bad = 1;
            return;
        }
        uint8_t b = *c->p++;
        if (b == 0) {
            return;
        }
        if ((b >> 4) == 0) {
            read_zigzag(c); /* explicit field id */
        }
        skip_value(c, b & 0x0f, depth + 1);
    }
}

/* n elements of a container; a boolean element is one byte (in a field it has none) */
static void skip_elements(Cursor *c, int type, uint64_t n, int depth) {
    /* every element takes at least one byte, so more elements than bytes is short */
    if (n > (uint64_t)(c->end - c->p)) {
        c->bad = 1;
        return;
    }
    for (uint64_t i = 0; i < n && !c->bad; i++) {
        if (type == CT_TRUE || type == CT_FALSE) {
            skip_bytes(c, 1);
        } else {
            skip_value(c, type, depth);
        }
    }
}

static void skip_list(Cursor *c, int depth) {
    if (c->p >= c->end) {
        c->bad = 1;
        return;
    }
    uint8_t b = *c->p++;
    uint64_t n = b >> 4;
    if (n == 15) {
        n = read_varint(c);
    }
    if (!c->bad) {
        skip_elements(c, b & 0x0f, n, depth + 1);
    }
}

static void skip_map(Cursor *c, int depth) {
    uint64_t n = read_varint(c);
    if (c->bad || n == 0) {
        return;
    }
    if (c->p >= c->end) {
        c->bad = 1;
        return;
    }
    uint8_t kv = *c->p++;
    if (n > (uint64_t)(c->end - c->p)) {
        c->bad = 1;
        return;
    }
    for (uint64_t i = 0; i < n && !c->bad; i++) {
        skip_elements(c, kv >> 4, 1, depth + 1);
        skip_elements(c, kv & 0x0f, 1, depth + 1);
    }
}

static void skip_value(Cursor *c, int type, int depth) {
    if (depth > THRIFT_MAX_DEPTH) {
        c->bad = 1;
        return;
    }
    switch (type) {
    case CT_TRUE:
    case CT_FALSE:
        return;
    case CT_BYTE:
        skip_bytes(c, 1);
        return;
    case CT_I16:
    case CT_I32:
    case CT_I64:
        read_varint(c);
        return;
    case CT_DOUBLE:
        skip_bytes(c, 8);
        return;
    case CT_UUID:
        skip_bytes(c, 16);
        return;
    case CT_BINARY:
        skip_bytes(c, read_varint(c));
        return;
    case CT_LIST:
    case CT_SET:
        skip_list(c, depth);
        return;
    case CT_MAP:
        skip_map(c, depth);
        return;
    case CT_STRUCT:
        skip_struct(c, depth + 1);
        return;
    default:
        c->bad = 1;
        return;
    }
}

/* Reads the next field header: returns 0 at STOP (or when bad), else 1 with *id and
 * *type set; *last is the previous field id (the compact protocol sends deltas). */
static int next_field(Cursor *c, int *last, int *id, int *type) {
    if (c->bad) {
        return 0;
    }
    if (c->p >= c->end) {
        c->bad = 1;
        return 0;
    }
    uint8_t b = *c->p++;
    if (b == 0) {
        return 0;
    }
    int delta = b >> 4;
    if (delta == 0) {
        int64_t v = read_zigzag(c);
        if (v < INT16_MIN || v > INT16_MAX) {
            c->bad = 1;
            return 0;
        }
        *id = (int)v;
    } else {
        *id = *last + delta;
    }
    *last = *id;
    *type = b & 0x0f;
    return !c->bad;
}

static int32_t field_i32(Cursor *c, int type) {
    if (type != CT_I32) {
        c->bad = 1;
        return 0;
    }
    return read_i32(c);
}

/* Field `id` of a DataPageHeaderV2 (ids 2 to 7): 1 if it is one the reader keeps. */
static int v2_field(Cursor *c, int id, int type, PageHeader *h) {
    switch (id) {
    case 2:
        h->num_nulls = field_i32(c, type);
        h->has_num_nulls = 1;
        return 1;
    case 3:
        h->num_rows = field_i32(c, type);
        h->has_num_rows = 1;
        return 1;
    case 4:
        h->encoding = field_i32(c, type);
        h->has_encoding = 1;
        return 1;
    case 5:
        h->def_len = field_i32(c, type);
        h->has_def_len = 1;
        return 1;
    case 6:
        h->rep_len = field_i32(c, type);
        h->has_rep_len = 1;
        return 1;
    case 7:
        if (type == CT_TRUE || type == CT_FALSE) {
            h->is_compressed = type == CT_TRUE;
        } else {
            c->bad = 1;
        }
        return 1;
    default:
        return 0;
    }
}

/* DataPageHeader (which = P_DATA), DictionaryPageHeader (P_DICTIONARY) or
 * DataPageHeaderV2 (P_DATA_V2), the fields this reader needs. */
static void parse_sub_header(Cursor *c, int which, PageHeader *h) {
    int last = 0, id, type;
    while (next_field(c, &last, &id, &type)) {
        if (id == 1) {
            h->num_values = field_i32(c, type);
            h->has_num_values = 1;
        } else if ((which == P_DATA || which == P_DICTIONARY) && id == 2) {
            h->encoding = field_i32(c, type);
            h->has_encoding = 1;
        } else if (which == P_DATA && id == 3) {
            h->def_encoding = field_i32(c, type);
            h->has_def_encoding = 1;
        } else if (!(which == P_DATA_V2 && v2_field(c, id, type, h))) {
            skip_value(c, type, 1);
        }
    }
}

int pq_parse_page_header(const uint8_t *p, const uint8_t *end, PageHeader *h, int64_t *size) {
    memset(h, 0, sizeof(*h));
    h->is_compressed = 1;
    Cursor c = {p, end, 0};
    int last = 0, id, type;
    while (next_field(&c, &last, &id, &type)) {
        switch (id) {
        case 1:
            h->type = field_i32(&c, type);
            h->has_type = 1;
            break;
        case 2:
            h->uncompressed_size = field_i32(&c, type);
            h->has_usize = 1;
            break;
        case 3:
            h->compressed_size = field_i32(&c, type);
            h->has_csize = 1;
            break;
        case 5:
        case 7:
        case 8:
            /* the sub-header of the page's type (field 1 comes first); any other is
             * skipped, and a page without its own sub-header is refused later */
            if (type != CT_STRUCT) {
                c.bad = 1;
                break;
            }
            if (!h->has_type || h->has_sub ||
                !((id == 5 && h->type == P_DATA) || (id == 7 && h->type == P_DICTIONARY) ||
                  (id == 8 && h->type == P_DATA_V2))) {
                skip_value(&c, type, 0);
                break;
            }
            h->has_sub = 1;
            parse_sub_header(&c, h->type, h);
            break;
        default:
            skip_value(&c, type, 0);
            break;
        }
    }
    if (c.bad || !h->has_type || !h->has_usize || !h->has_csize) {
        return 0;
    }
    *size = c.p - p;
    return 1;
}
