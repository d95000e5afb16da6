/*
 * inference.io.parquet._fastparquet: the Python face of the column chunk reader
 * (reader.h), documented in inference/io/parquet/native.py.
 *
 * ColumnChunkReader(fd, offset, length, physical_type, codec, max_definition_level,
 *                   num_values)
 *     .read(out, column, rows) -> bool
 *     .close()
 * read_columns(readers, outs, columns, rows) -> bool
 *
 * A reader reads through its own duplicate of fd (F_DUPFD_CLOEXEC), closed by close()
 * or when the reader is collected, so the caller may close fd at any time. The GIL is
 * released while values are decoded; what the decoding needs (the readers, the output
 * buffers) is copied out of Python objects before.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <fcntl.h>
#include <unistd.h>

#include "pool.h"
#include "reader.h"
#include "thrift.h"

typedef struct {
    PyObject_HEAD
    ChunkReader core;
    int own_fd; /* the reader's duplicate of the caller's fd, or -1 */
    int busy, closed;
} Reader;

static void close_own_fd(Reader *r) {
    if (r->own_fd >= 0) {
        close(r->own_fd);
        r->own_fd = -1;
    }
}

static PyObject *reader_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    (void)args;
    (void)kwds;
    Reader *r = (Reader *)type->tp_alloc(type, 0); /* zeroed */
    if (r != NULL) {
        r->own_fd = -1;
    }
    return (PyObject *)r;
}

static void reader_dealloc(Reader *r) {
    pq_reader_free_buffers(&r->core);
    close_own_fd(r);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

/* The ValueError for a refusal of pq_reader_open; -1. */
static int open_error(int why, int fd, long long offset, long long length, long long num_values,
                      int physical_type, int codec, int max_def) {
    switch (why) {
    case PQ_OPEN_BIG_ENDIAN:
        PyErr_SetString(PyExc_ValueError,
                        "ColumnChunkReader: this host is big-endian, expected little-endian");
        break;
    case PQ_OPEN_RANGE:
        PyErr_Format(PyExc_ValueError,
                     "ColumnChunkReader: got fd=%d, offset=%lld, length=%lld, num_values=%lld, "
                     "expected non-negative values with offset + length in range",
                     fd, offset, length, num_values);
        break;
    case PQ_OPEN_PHYSICAL_TYPE:
        PyErr_Format(PyExc_ValueError,
                     "physical_type: got %d, expected INT32=1, INT64=2, FLOAT=4 or DOUBLE=5",
                     physical_type);
        break;
    case PQ_OPEN_CODEC:
        PyErr_Format(PyExc_ValueError, "codec: got %d, expected UNCOMPRESSED=0 or SNAPPY=1",
                     codec);
        break;
    default:
        PyErr_Format(PyExc_ValueError, "max_definition_level: got %d, expected 0 or 1", max_def);
        break;
    }
    return -1;
}

static int reader_init(Reader *r, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"fd",    "offset", "length", "physical_type", "codec",
                             "max_definition_level", "num_values", NULL};
    int fd, physical_type, codec, max_def;
    long long offset, length, num_values;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iLLiiiL:ColumnChunkReader", kwlist, &fd,
                                     &offset, &length, &physical_type, &codec, &max_def,
                                     &num_values)) {
        return -1;
    }
    if (r->busy) {
        PyErr_SetString(PyExc_ValueError, "ColumnChunkReader: re-initialised while reading");
        return -1;
    }
    /* the arguments are checked (with fd itself) before the descriptor is duplicated */
    int why = pq_reader_open(&r->core, fd, offset, length, physical_type, codec, max_def,
                             num_values);
    if (why != PQ_OPEN_OK) {
        return open_error(why, fd, offset, length, num_values, physical_type, codec, max_def);
    }
    close_own_fd(r);
    r->own_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (r->own_fd < 0) {
        r->core.value_size = 0; /* not initialised */
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    r->core.fd = r->own_fd;
    r->closed = 0;
    return 0;
}

/* the output kind for a reader's physical type and a buffer format, or -1 */
static int output_kind(int physical_type, const char *format, Py_ssize_t itemsize) {
    if (format == NULL) {
        return -1;
    }
    if (*format == '@' || *format == '=' || *format == '<') {
        format++;
    }
    if (format[0] == '\0' || format[1] != '\0') {
        return -1;
    }
    return pq_output_kind(physical_type, format[0], itemsize);
}

/* Checks a reader and its target (out's buffer, column, rows): 1 with *kind set, or 0
 * with an exception set. */
static int check_target(Reader *r, Py_buffer *out, Py_ssize_t column, Py_ssize_t rows,
                        int *kind) {
    ChunkReader *c = &r->core;
    if (c->value_size == 0) {
        PyErr_SetString(PyExc_ValueError, "ColumnChunkReader: not initialised");
        return 0;
    }
    if (r->busy) {
        PyErr_SetString(PyExc_ValueError,
                        "ColumnChunkReader.read: the reader is already reading (in another "
                        "thread, or given twice), expected one reader per thread at a time");
        return 0;
    }
    if (out->ndim != 2) {
        PyErr_Format(PyExc_ValueError, "out: got a %d-dimensional buffer, expected 2",
                     out->ndim);
        return 0;
    }
    *kind = output_kind(c->physical_type, out->format, out->itemsize);
    if (*kind < 0) {
        PyErr_Format(PyExc_ValueError,
                     "out: got format '%s' of %zd bytes for a %s column, expected %s",
                     out->format ? out->format : "?", out->itemsize,
                     pq_type_name(c->physical_type),
                     c->physical_type == T_DOUBLE || c->physical_type == T_FLOAT
                         ? "float32 or float64"
                         : (c->physical_type == T_INT64 ? "int64" : "int32"));
        return 0;
    }
    if (column < 0 || column >= out->shape[1] || rows < 0 || rows > out->shape[0]) {
        PyErr_Format(PyExc_ValueError,
                     "read: got column=%zd, rows=%zd for out of shape (%zd, %zd), expected "
                     "0 <= column < %zd and 0 <= rows <= %zd",
                     column, rows, out->shape[0], out->shape[1], out->shape[1],
                     out->shape[0]);
        return 0;
    }
    if (rows > c->num_values - c->delivered) {
        PyErr_Format(PyExc_ValueError,
                     "read: got rows=%zd, expected at most the %lld values left of the chunk",
                     rows, (long long)(c->num_values - c->delivered));
        return 0;
    }
    return 1;
}

#define BUFFER_FLAGS (PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT)

static PyObject *reader_read(Reader *r, PyObject *args) {
    PyObject *out_obj;
    Py_ssize_t column, rows;
    if (!PyArg_ParseTuple(args, "Onn:read", &out_obj, &column, &rows)) {
        return NULL;
    }
    Py_buffer out;
    if (PyObject_GetBuffer(out_obj, &out, BUFFER_FLAGS) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    int kind;
    if (!check_target(r, &out, column, rows, &kind)) {
        goto done;
    }
    int ok = 0;
    if (!r->core.spent && !r->closed) {
        int64_t stride = out.shape[1];
        char *dst = (char *)out.buf + column * out.itemsize;
        int size = (int)out.itemsize;
        r->busy = 1;
        Py_BEGIN_ALLOW_THREADS;
        ok = pq_reader_read(&r->core, kind, rows, dst, stride, size);
        Py_END_ALLOW_THREADS;
        r->busy = 0;
        pq_reader_finish(&r->core, ok, rows);
    }
    result = ok ? Py_True : Py_False;
    Py_INCREF(result);
done:
    PyBuffer_Release(&out);
    return result;
}

static PyObject *reader_close(Reader *r, PyObject *Py_UNUSED(ignored)) {
    if (r->busy) {
        PyErr_SetString(PyExc_ValueError,
                        "ColumnChunkReader.close: the reader is reading in another thread");
        return NULL;
    }
    pq_reader_free_buffers(&r->core);
    close_own_fd(r);
    r->closed = 1;
    Py_RETURN_NONE;
}

static PyMethodDef reader_methods[] = {
    {"read", (PyCFunction)reader_read, METH_VARARGS,
     "read(out, column, rows) -> bool\n\nDecode the next `rows` values into out[:rows, "
     "column]; False when the data is not plain (the reader is then spent)."},
    {"close", (PyCFunction)reader_close, METH_NOARGS,
     "close()\n\nFree the buffers and close the reader's duplicate of the file descriptor."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "inference.io.parquet._fastparquet.ColumnChunkReader",
    .tp_basicsize = sizeof(Reader),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ColumnChunkReader(fd, offset, length, physical_type, codec, "
              "max_definition_level, num_values)\n\nOne flat column chunk of an open file.",
    .tp_new = reader_new,
    .tp_init = (initproc)reader_init,
    .tp_dealloc = (destructor)reader_dealloc,
    .tp_methods = reader_methods,
};

/* ------------------------------------------------------------ read_columns */

/* rows decoded per reader in turn by read_columns: the targets' rows of a tile stay in
 * the L1 cache while every column is written into them (a column written alone into a
 * wide matrix touches a cache line per value) */
#define TILE_BYTES ((int64_t)32 << 10)
#define MIN_TILE_ROWS 64

/* What read_columns needs of each reader, copied out of the Python objects while the
 * GIL is held: nothing Python is touched while it is released. */
typedef struct {
    Reader **readers;
    Py_buffer *outs;
    int *kinds;
    char **dsts;
    Py_ssize_t got;    /* buffers taken */
    Py_ssize_t marked; /* readers marked busy */
} Columns;

static void columns_release(Columns *c) {
    for (Py_ssize_t k = 0; k < c->marked; k++) {
        c->readers[k]->busy = 0;
    }
    for (Py_ssize_t k = 0; k < c->got; k++) {
        PyBuffer_Release(&c->outs[k]);
    }
    PyMem_Free(c->readers);
    PyMem_Free(c->outs);
    PyMem_Free(c->kinds);
    PyMem_Free(c->dsts);
}

/* Fills c from the tuples (GIL held): 1, or 0 with an exception set. *usable: whether
 * every reader can still read; *row_bytes: the bytes of a row of the distinct outs. */
static int columns_take(Columns *c, PyObject *readers, PyObject *outs, PyObject *columns,
                        Py_ssize_t n, Py_ssize_t rows, int *usable, int64_t *row_bytes) {
    size_t m = (size_t)(n > 0 ? n : 1);
    c->readers = PyMem_Calloc(m, sizeof(Reader *));
    c->outs = PyMem_Calloc(m, sizeof(Py_buffer));
    c->kinds = PyMem_Calloc(m, sizeof(int));
    c->dsts = PyMem_Calloc(m, sizeof(char *));
    if (c->readers == NULL || c->outs == NULL || c->kinds == NULL || c->dsts == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    for (; c->got < n; c->got++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(outs, c->got), &c->outs[c->got], BUFFER_FLAGS) <
            0) {
            return 0;
        }
    }
    *usable = 1;
    *row_bytes = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        Reader *r = (Reader *)PyTuple_GET_ITEM(readers, k);
        Py_ssize_t column = PyLong_AsSsize_t(PyTuple_GET_ITEM(columns, k));
        if (column == -1 && PyErr_Occurred()) {
            return 0;
        }
        if (!check_target(r, &c->outs[k], column, rows, &c->kinds[k])) {
            return 0;
        }
        r->busy = 1; /* also catches a reader given twice */
        c->readers[k] = r;
        c->marked = k + 1;
        *usable &= !r->core.spent && !r->closed;
        c->dsts[k] = (char *)c->outs[k].buf + column * c->outs[k].itemsize;
        int seen = 0;
        for (Py_ssize_t i = 0; i < k; i++) {
            seen |= c->outs[i].buf == c->outs[k].buf;
        }
        if (!seen) {
            *row_bytes += c->outs[k].shape[1] * c->outs[k].itemsize;
        }
    }
    return 1;
}

/* The decoding of read_columns, a tile of rows at a time (no Python: GIL released). */
static int columns_read(Columns *c, Py_ssize_t n, int64_t rows, int64_t row_bytes) {
    int64_t tile = row_bytes > 0 ? TILE_BYTES / row_bytes : rows;
    if (tile < MIN_TILE_ROWS) {
        tile = MIN_TILE_ROWS;
    }
    int ok = 1;
    for (int64_t start = 0; ok && start < rows; start += tile) {
        int64_t m = rows - start < tile ? rows - start : tile;
        for (Py_ssize_t k = 0; ok && k < n; k++) {
            Py_buffer *o = &c->outs[k];
            ok = pq_reader_read(&c->readers[k]->core, c->kinds[k], m,
                                c->dsts[k] + start * o->shape[1] * o->itemsize, o->shape[1],
                                (int)o->itemsize);
        }
    }
    return ok;
}

PyDoc_STRVAR(read_columns_doc,
             "read_columns(readers, outs, columns, rows) -> bool\n\n"
             "read(outs[k], columns[k], rows) of each readers[k], interleaved a few thousand "
             "rows\nat a time (faster for a wide C-contiguous matrix). False when any "
             "reader's data is\nnot plain: every reader given is then spent.");

static PyObject *fastparquet_read_columns(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *readers, *outs, *columns;
    Py_ssize_t rows;
    if (!PyArg_ParseTuple(args, "O!O!O!n:read_columns", &PyTuple_Type, &readers, &PyTuple_Type,
                          &outs, &PyTuple_Type, &columns, &rows)) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(readers);
    if (PyTuple_GET_SIZE(outs) != n || PyTuple_GET_SIZE(columns) != n) {
        PyErr_Format(PyExc_ValueError,
                     "read_columns: got %zd readers, %zd outs and %zd columns, expected as "
                     "many of each",
                     n, PyTuple_GET_SIZE(outs), PyTuple_GET_SIZE(columns));
        return NULL;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        if (!PyObject_TypeCheck(PyTuple_GET_ITEM(readers, k), &ReaderType)) {
            PyErr_Format(PyExc_ValueError, "readers[%zd]: got %s, expected a ColumnChunkReader",
                         k, Py_TYPE(PyTuple_GET_ITEM(readers, k))->tp_name);
            return NULL;
        }
    }
    Columns c = {0};
    int usable;
    int64_t row_bytes;
    PyObject *result = NULL;
    if (columns_take(&c, readers, outs, columns, n, rows, &usable, &row_bytes)) {
        int ok = usable;
        if (ok && n > 0) {
            Py_BEGIN_ALLOW_THREADS;
            ok = columns_read(&c, n, rows, row_bytes);
            Py_END_ALLOW_THREADS;
        }
        for (Py_ssize_t k = 0; k < n; k++) {
            c.readers[k]->busy = 0;
            pq_reader_finish(&c.readers[k]->core, ok, rows);
        }
        c.marked = 0;
        result = ok ? Py_True : Py_False;
        Py_INCREF(result);
    }
    columns_release(&c);
    return result;
}

static PyMethodDef fastparquet_methods[] = {
    {"read_columns", fastparquet_read_columns, METH_VARARGS, read_columns_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fastparquet_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_fastparquet",
    .m_doc = "Flat numeric Parquet column chunks decoded into a matrix column "
             "(see inference.io.parquet.native).",
    .m_size = -1,
    .m_methods = fastparquet_methods,
};

PyMODINIT_FUNC PyInit__fastparquet(void) {
    if (PyType_Ready(&ReaderType) < 0) {
        return NULL;
    }
    /* a child forked while another thread held the pool's lock would wait forever */
    pq_pool_install_fork_handlers();
    PyObject *m = PyModule_Create(&fastparquet_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&ReaderType);
    if (PyModule_AddObject(m, "ColumnChunkReader", (PyObject *)&ReaderType) < 0) {
        Py_DECREF(&ReaderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
