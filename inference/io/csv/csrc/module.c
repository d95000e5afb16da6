/*
 * inference.io.csv._fastcsv: the Python face of the plain CSV block parser (parse.h),
 * documented in inference/io/csv/native.py.
 *
 * parse_block(block, n_columns, delimiter, columns, out[, levels, codes]) -> int | None
 *
 * The arguments are checked here (delimiter, columns, the output's format, shape and
 * layout, the factors' levels and codes); the GIL is released while the block is
 * parsed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "parse.h"


/* 4 (float32) or 8 (float64) for a native float buffer format, else 0 */
static int float_format(const char *format, Py_ssize_t itemsize) {
    if (format == NULL) {
        return 0;
    }
    if (*format == '@' || *format == '=') {
        format++;
    } else if (*format == '<' || *format == '>') {
        const uint16_t one = 1;
        int little = *(const unsigned char *)&one == 1;
        if ((*format == '<') != little) {
            return 0;
        }
        format++;
    }
    if (strcmp(format, "f") == 0 && itemsize == 4) {
        return 4;
    }
    if (strcmp(format, "d") == 0 && itemsize == 8) {
        return 8;
    }
    return 0;
}

PyDoc_STRVAR(parse_block_doc,
             "parse_block(block, n_columns, delimiter, columns, out, levels=(), codes=None)\n"
             "    -> int | None\n\n"
             "Parse a block of plain CSV lines into `out` (a float32 or float64 matrix of\n"
             "shape (capacity, k), C- or Fortran-contiguous). `delimiter` is a byte value;\n"
             "`columns` a tuple of n_columns entries: an output column index, -1 (field not\n"
             "read) or -2 - f (a field of factor f); the output columns 0..k-1 once each.\n"
             "`levels`: for each factor, a tuple of its levels (bytes); `codes`: a\n"
             "C-contiguous int64 matrix of shape (len(levels), capacity) that receives each\n"
             "factor field's level index (-2: empty). Returns the number of rows, or None\n"
             "when the block is not plain. The GIL is released while parsing.");

/* The columns tuple as ints, checked against k output columns and n_factors factors;
 * NULL with an exception set. The caller frees it with PyMem_Free. */
static int *read_columns(PyObject *columns_obj, int n_columns, Py_ssize_t k, Py_ssize_t n_factors) {
    PyObject *seq = PySequence_Fast(columns_obj, "columns must be a sequence of ints");
    if (seq == NULL) {
        return NULL;
    }
    if (n_columns < 1 || PySequence_Fast_GET_SIZE(seq) != n_columns) {
        PyErr_Format(PyExc_ValueError, "columns: got %zd entries, expected n_columns=%d (>= 1)",
                     PySequence_Fast_GET_SIZE(seq), n_columns);
        Py_DECREF(seq);
        return NULL;
    }
    int *columns = PyMem_Malloc(sizeof(int) * (size_t)n_columns);
    if (columns == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    Py_ssize_t mapped = 0;
    for (int j = 0; j < n_columns; j++) {
        long c = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, j));
        if (c == -1 && PyErr_Occurred()) {
            goto fail;
        }
        if (c >= k || c > INT_MAX || c < -1 - n_factors) {
            PyErr_Format(PyExc_ValueError,
                         "columns[%d]: got %ld, expected an output column below %zd, -1, or "
                         "-2 - f for one of %zd factors",
                         j, c, k, n_factors);
            goto fail;
        }
        for (int i = 0; i < j; i++) {
            if (c != -1 && columns[i] == (int)c) {
                PyErr_Format(PyExc_ValueError,
                             "columns[%d] and columns[%d]: both %ld, expected each output "
                             "column and factor once",
                             i, j, c);
                goto fail;
            }
        }
        columns[j] = (int)c;
        mapped += c >= 0;
    }
    if (mapped != k) {
        PyErr_Format(PyExc_ValueError,
                     "columns: %zd output columns read, expected %zd (out's columns)", mapped, k);
        goto fail;
    }
    Py_DECREF(seq);
    return columns;
fail:
    PyMem_Free(columns);
    Py_DECREF(seq);
    return NULL;
}

/* The factors' levels (a sequence of sequences of bytes) as hash tables in one
 * allocation (*memory, freed by the caller with PyMem_Free, and the bytes objects kept
 * alive in *keep, a new reference); the number of factors, or -1 with an exception. */
static Py_ssize_t read_levels(PyObject *levels_obj, FastcsvFactor **factors, void **memory,
                              PyObject **keep) {
    *factors = NULL;
    *memory = NULL;
    *keep = PySequence_Fast(levels_obj, "levels must be a sequence of sequences of bytes");
    if (*keep == NULL) {
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(*keep);
    size_t total_levels = 0, total_slots = 0;
    for (Py_ssize_t f = 0; f < n; f++) {
        PyObject *one = PySequence_Fast_GET_ITEM(*keep, f);
        if (!PyTuple_Check(one)) {
            PyErr_Format(PyExc_ValueError, "levels[%zd]: expected a tuple of bytes", f);
            return -1;
        }
        Py_ssize_t m = PyTuple_GET_SIZE(one);
        for (Py_ssize_t i = 0; i < m; i++) {
            if (!PyBytes_Check(PyTuple_GET_ITEM(one, i))) {
                PyErr_Format(PyExc_ValueError, "levels[%zd][%zd]: expected bytes", f, i);
                return -1;
            }
        }
        if (m > INT32_MAX / 4) {
            PyErr_Format(PyExc_ValueError, "levels[%zd]: %zd levels, too many", f, m);
            return -1;
        }
        total_levels += (size_t)m;
        total_slots += fastcsv_factor_slots((size_t)m);
    }
    size_t bytes = (size_t)n * sizeof(FastcsvFactor) +
                   total_levels * (sizeof(unsigned char *) + sizeof(size_t)) +
                   total_slots * sizeof(int32_t) + 1;
    char *block = PyMem_Malloc(bytes);
    if (block == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *memory = block;
    *factors = (FastcsvFactor *)block;
    const unsigned char **names = (const unsigned char **)(block + (size_t)n * sizeof(FastcsvFactor));
    size_t *lengths = (size_t *)(names + total_levels);
    int32_t *slots = (int32_t *)(lengths + total_levels);
    for (Py_ssize_t f = 0; f < n; f++) {
        PyObject *one = PySequence_Fast_GET_ITEM(*keep, f);
        Py_ssize_t m = PyTuple_GET_SIZE(one);
        for (Py_ssize_t i = 0; i < m; i++) {
            PyObject *level = PyTuple_GET_ITEM(one, i);
            names[i] = (const unsigned char *)PyBytes_AS_STRING(level);
            lengths[i] = (size_t)PyBytes_GET_SIZE(level);
        }
        fastcsv_factor_init(&(*factors)[f], names, lengths, (size_t)m, slots);
        names += m;
        lengths += m;
        slots += fastcsv_factor_slots((size_t)m);
    }
    return n;
}

/* 1 when out (capacity, k) is column-major, 0 when row-major, -1 (an exception set)
 * when it is neither. */
static int out_layout(const Py_buffer *out) {
    Py_ssize_t item = out->itemsize, capacity = out->shape[0], k = out->shape[1];
    int row_major = (capacity <= 1 || out->strides[0] == k * item) && (k <= 1 || out->strides[1] == item);
    if (row_major) {
        return 0;
    }
    int column_major =
        (capacity <= 1 || out->strides[0] == item) && (k <= 1 || out->strides[1] == capacity * item);
    if (column_major) {
        return 1;
    }
    PyErr_SetString(PyExc_ValueError, "out: expected a C-contiguous (or Fortran-contiguous) array");
    return -1;
}

static PyObject *fastcsv_parse_block(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *block_obj, *columns_obj, *out_obj, *levels_obj = NULL, *codes_obj = Py_None;
    int n_columns, delimiter;
    if (!PyArg_ParseTuple(args, "OiiOO|OO:parse_block", &block_obj, &n_columns, &delimiter,
                          &columns_obj, &out_obj, &levels_obj, &codes_obj)) {
        return NULL;
    }
    if (!fastcsv_delimiter_ok(delimiter)) {
        PyErr_Format(PyExc_ValueError,
                     "delimiter: got byte %d, expected an ASCII byte that cannot be part of "
                     "a number, a quote or a line end",
                     delimiter);
        return NULL;
    }
    Py_buffer block, out, codes;
    if (PyObject_GetBuffer(block_obj, &block, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_RECORDS) < 0) {
        PyBuffer_Release(&block);
        return NULL;
    }
    int have_codes = 0;
    PyObject *result = NULL, *keep = NULL;
    int *columns = NULL;
    void *memory = NULL;
    FastcsvFactor *factors = NULL;
    Py_ssize_t n_factors = 0;
    int size = float_format(out.format, out.itemsize);
    if (size == 0 || out.ndim != 2) {
        PyErr_Format(PyExc_ValueError,
                     "out: got a %d-dimensional buffer of format '%s', expected a 2-dimensional "
                     "float32 or float64 array",
                     out.ndim, out.format ? out.format : "?");
        goto done;
    }
    int column_major = out_layout(&out);
    if (column_major < 0) {
        goto done;
    }
    Py_ssize_t capacity = out.shape[0], k = out.shape[1];
    if (levels_obj != NULL) {
        n_factors = read_levels(levels_obj, &factors, &memory, &keep);
        if (n_factors < 0) {
            goto done;
        }
    }
    if (n_factors > 0) {
        if (codes_obj == Py_None ||
            PyObject_GetBuffer(codes_obj, &codes, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "codes: expected an int64 array for the factors");
            }
            goto done;
        }
        have_codes = 1;
        const char *format = codes.format ? codes.format : "?";
        if (*format == '=' || *format == '<' || *format == '@') {
            format++;
        }
        if (codes.ndim != 2 || codes.itemsize != 8 || (strcmp(format, "q") != 0 && strcmp(format, "l") != 0) ||
            codes.shape[0] != n_factors || codes.shape[1] != capacity) {
            PyErr_Format(PyExc_ValueError,
                         "codes: expected a C-contiguous int64 array of shape (%zd, %zd)",
                         n_factors, capacity);
            goto done;
        }
    }
    columns = read_columns(columns_obj, n_columns, k, n_factors);
    if (columns == NULL) {
        goto done;
    }
    const unsigned char *data = (const unsigned char *)block.buf;
    Py_ssize_t rows;
    int64_t *code_buf = have_codes ? (int64_t *)codes.buf : NULL;
    Py_BEGIN_ALLOW_THREADS;
    rows = fastcsv_parse_lines(data, data + block.len, n_columns, columns,
                               (unsigned char)delimiter, (char *)out.buf, k, capacity, size == 4,
                               column_major, factors, (int)n_factors, code_buf);
    Py_END_ALLOW_THREADS;
    if (rows < 0) {
        result = Py_None;
        Py_INCREF(result);
    } else {
        result = PyLong_FromSsize_t(rows);
    }
done:
    if (have_codes) {
        PyBuffer_Release(&codes);
    }
    PyBuffer_Release(&out);
    PyBuffer_Release(&block);
    PyMem_Free(columns);
    PyMem_Free(memory);
    Py_XDECREF(keep);
    return result;
}

static PyMethodDef fastcsv_methods[] = {
    {"parse_block", fastcsv_parse_block, METH_VARARGS, parse_block_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fastcsv_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_fastcsv",
    .m_doc = "Plain numeric CSV blocks parsed into a float matrix (see inference.io.csv.native).",
    .m_size = -1,
    .m_methods = fastcsv_methods,
};

PyMODINIT_FUNC PyInit__fastcsv(void) { return PyModule_Create(&fastcsv_module); }
