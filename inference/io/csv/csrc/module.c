/*
 * inference.io.csv._fastcsv: the Python face of the plain numeric CSV block parser
 * (parse.h), documented in inference/io/csv/native.py.
 *
 * parse_block(block, n_columns, delimiter, columns, out) -> int | None
 *
 * The arguments are checked here (delimiter, columns, the output's format and shape);
 * the GIL is released while the block is parsed.
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
             "parse_block(block, n_columns, delimiter, columns, out) -> int | None\n\n"
             "Parse a block of plain numeric CSV lines into `out` (a C-contiguous float32 or\n"
             "float64 matrix of shape (capacity, k)). `delimiter` is a byte value; "
             "`columns`\n"
             "a tuple of n_columns output column indices (-1: field not read) covering\n"
             "0..k-1 once each. Returns the number of rows, or None when the block is not\n"
             "plain. The GIL is released while parsing.");

static PyObject *fastcsv_parse_block(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *block_obj, *columns_obj, *out_obj;
    int n_columns, delimiter;
    if (!PyArg_ParseTuple(args, "OiiOO:parse_block", &block_obj, &n_columns, &delimiter,
                          &columns_obj, &out_obj)) {
        return NULL;
    }
    if (!fastcsv_delimiter_ok(delimiter)) {
        PyErr_Format(PyExc_ValueError,
                     "delimiter: got byte %d, expected an ASCII byte that cannot be part of "
                     "a number, a quote or a line end",
                     delimiter);
        return NULL;
    }
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
        return PyErr_NoMemory();
    }
    for (int j = 0; j < n_columns; j++) {
        long c = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, j));
        if (c == -1 && PyErr_Occurred()) {
            PyMem_Free(columns);
            Py_DECREF(seq);
            return NULL;
        }
        if (c < -1 || c > INT_MAX) {
            PyErr_Format(PyExc_ValueError, "columns[%d]: got %ld, expected -1 or an output column",
                         j, c);
            PyMem_Free(columns);
            Py_DECREF(seq);
            return NULL;
        }
        columns[j] = (int)c;
    }
    Py_DECREF(seq);

    Py_buffer block, out;
    if (PyObject_GetBuffer(block_obj, &block, PyBUF_SIMPLE) < 0) {
        PyMem_Free(columns);
        return NULL;
    }
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) <
        0) {
        PyBuffer_Release(&block);
        PyMem_Free(columns);
        return NULL;
    }
    PyObject *result = NULL;
    int size = float_format(out.format, out.itemsize);
    if (size == 0 || out.ndim != 2) {
        PyErr_Format(PyExc_ValueError,
                     "out: got a %d-dimensional buffer of format '%s', expected a 2-dimensional "
                     "float32 or float64 array",
                     out.ndim, out.format ? out.format : "?");
        goto done;
    }
    Py_ssize_t capacity = out.shape[0], k = out.shape[1];
    /* every output column filled by exactly one field */
    Py_ssize_t mapped = 0;
    for (int j = 0; j < n_columns; j++) {
        if (columns[j] >= k) {
            PyErr_Format(PyExc_ValueError, "columns[%d]: got %d, expected < %zd (out's columns)",
                         j, columns[j], k);
            goto done;
        }
        if (columns[j] >= 0) {
            for (int i = 0; i < j; i++) {
                if (columns[i] == columns[j]) {
                    PyErr_Format(PyExc_ValueError,
                                 "columns[%d] and columns[%d]: both %d, expected each output "
                                 "column once",
                                 i, j, columns[j]);
                    goto done;
                }
            }
            mapped++;
        }
    }
    if (mapped != k) {
        PyErr_Format(PyExc_ValueError,
                     "columns: %zd output columns read, expected %zd (out's columns)", mapped, k);
        goto done;
    }
    const unsigned char *data = (const unsigned char *)block.buf;
    Py_ssize_t rows;
    Py_BEGIN_ALLOW_THREADS;
    rows = fastcsv_parse_lines(data, data + block.len, n_columns, columns,
                               (unsigned char)delimiter, (char *)out.buf, k, capacity, size == 4);
    Py_END_ALLOW_THREADS;
    if (rows < 0) {
        result = Py_None;
        Py_INCREF(result);
    } else {
        result = PyLong_FromSsize_t(rows);
    }
done:
    PyBuffer_Release(&out);
    PyBuffer_Release(&block);
    PyMem_Free(columns);
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
