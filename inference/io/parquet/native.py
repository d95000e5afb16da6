"""A fast path for flat numeric Parquet column chunks: decoded straight into a matrix.

:class:`ColumnChunkReader` reads one column chunk of an open Parquet file page by
page with ``pread(2)`` and decodes its values straight into one column of a
C-contiguous matrix (casting DOUBLE to float32 on the way), without the copies of
``pyarrow.parquet.ParquetFile.iter_batches`` followed by ``astype``
(``benchmarks/bench_fastparquet.py`` measures both). It runs in the C extension
``inference.io.parquet._fastparquet`` (built by ``setup.py`` on POSIX systems when a C
compiler is present, see :func:`available`) and releases the GIL while it decodes.

What is decoded
    Physical types INT32, INT64, FLOAT and DOUBLE (:data:`PHYSICAL_TYPES`); codecs
    UNCOMPRESSED and SNAPPY (:data:`CODECS`); data pages v1 and v2 with PLAIN,
    PLAIN_DICTIONARY or RLE_DICTIONARY values after an optional dictionary page;
    a required column (max definition level 0) or an optional one (level 1) whose
    RLE definition levels say no value is null. No repetition levels (flat columns
    only). Anything else in the data, and anything malformed or inconsistent (a
    truncated file, bad page headers, a snappy error, sizes that disagree, a
    dictionary index out of range, more values than the chunk declares), makes
    :meth:`ColumnChunkReader.read` answer False: the caller then reads the chunk
    another way (which also reports what is wrong).

Values
    Bit for bit what pyarrow decodes, cast as numpy's ``astype`` casts: DOUBLE to
    float32 rounds to nearest (``inf`` beyond float32's range), NaN payloads and
    ``-0.0`` are kept.

Memory and threads
    A reader holds at most three buffers: the raw bytes of the current page, the
    page decompressed (not needed for a PLAIN page that snappy stored as literals,
    the usual case for random floats), and the dictionary's values, each about a
    page (1 MiB with pyarrow's defaults); pages above 256 MiB are refused. The
    buffers are freed when the chunk's last value is read, on False, on
    :meth:`ColumnChunkReader.close` or when the reader is collected, into a pool
    shared by the process (at most 64 buffers, 64 MiB) that the next readers draw
    from (the pool's lock is taken around ``fork()`` by ``pthread_atfork`` handlers,
    so a child process can read too). Readers of different chunks may be built from
    one file descriptor (each reads positionally through its own duplicate) and run
    in different threads; one reader is used by one thread at a
    time (a second concurrent call raises ValueError). :func:`read_columns` fills
    several columns of one matrix with a single call, a cache-sized tile of rows at
    a time.

The fast path needs a little-endian host: elsewhere the constructor raises
ValueError.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import numpy as np

from inference.io.native import EXTENSIONS, disabled, load_extension

#: the built extension, or None (installed without a C compiler, or not on POSIX)
_ext: ModuleType | None = load_extension(EXTENSIONS["parquet"])

__all__ = [
    "CODECS",
    "DOUBLE",
    "FLOAT",
    "INT32",
    "INT64",
    "PHYSICAL_TYPES",
    "SNAPPY",
    "UNCOMPRESSED",
    "ColumnChunkReader",
    "available",
    "read_columns",
]

#: Parquet physical types (parquet.thrift's ``Type``) this reader decodes
INT32 = 1
INT64 = 2
FLOAT = 4
DOUBLE = 5
PHYSICAL_TYPES = {"INT32": INT32, "INT64": INT64, "FLOAT": FLOAT, "DOUBLE": DOUBLE}

#: Parquet compression codecs (parquet.thrift's ``CompressionCodec``) it decodes
UNCOMPRESSED = 0
SNAPPY = 1
CODECS = {"UNCOMPRESSED": UNCOMPRESSED, "SNAPPY": SNAPPY}

#: output dtypes allowed for each physical type
_OUT_DTYPES: dict[int, tuple[np.dtype, ...]] = {
    DOUBLE: (np.dtype(np.float64), np.dtype(np.float32)),
    FLOAT: (np.dtype(np.float32), np.dtype(np.float64)),
    INT64: (np.dtype(np.int64),),
    INT32: (np.dtype(np.int32),),
}
_TYPE_NAMES = {code: name for name, code in PHYSICAL_TYPES.items()}
_INT_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1


def available() -> bool:
    """Whether the C extension was built and is not switched off by ``LINREG_NO_NATIVE``
    (if not, :meth:`ColumnChunkReader.read` answers False)."""
    return _ext is not None and not disabled()


class ColumnChunkReader:
    """One flat column chunk of an open file, decoded ``rows`` values at a time.

    Parameters
    ----------
    fd : int
        An open file descriptor of the Parquet file. The reader reads through its own
        duplicate of it (closed by :meth:`close` or when the reader is collected), so
        the caller may close ``fd`` once the reader is built.
    offset : int
        The chunk's first byte: the column chunk metadata's
        ``dictionary_page_offset`` if the chunk has a dictionary page, else its
        ``data_page_offset``.
    length : int
        The chunk's bytes: its ``total_compressed_size``.
    physical_type : int
        One of :data:`PHYSICAL_TYPES`.
    codec : int
        One of :data:`CODECS`.
    max_definition_level : int
        0 for a required column, 1 for an optional one.
    num_values : int
        The chunk's values (its ``num_values``).

    Raises
    ------
    ValueError
        For a physical type or codec not in the tables above, a definition level
        other than 0 or 1, negative sizes, or a big-endian host.
    """

    def __init__(
        self,
        fd: int,
        offset: int,
        length: int,
        *,
        physical_type: int,
        codec: int,
        max_definition_level: int,
        num_values: int,
    ) -> None:
        if physical_type not in _TYPE_NAMES:
            raise ValueError(
                f"physical_type: got {physical_type!r}, expected one of {PHYSICAL_TYPES}"
            )
        if codec not in CODECS.values():
            raise ValueError(f"codec: got {codec!r}, expected one of {CODECS}")
        if max_definition_level not in (0, 1):
            raise ValueError(
                f"max_definition_level: got {max_definition_level!r}, expected 0 or 1 "
                "(flat columns only)"
            )
        if (
            min(fd, offset, length, num_values) < 0
            or fd > _INT_MAX
            or max(offset + length, num_values) > _INT64_MAX
        ):
            raise ValueError(
                f"ColumnChunkReader: got fd={fd}, offset={offset}, length={length}, "
                f"num_values={num_values}, expected non-negative values, offset + length "
                "and num_values below 2**63"
            )
        self._physical_type = physical_type
        self._num_values = num_values
        self._reader = (
            None
            if _ext is None or disabled()
            else _ext.ColumnChunkReader(
                fd, offset, length, physical_type, codec, max_definition_level, num_values
            )
        )

    def read(self, out: np.ndarray, column: int, rows: int) -> bool:
        """Decode the chunk's next ``rows`` values into ``out[0:rows, column]``.

        Parameters
        ----------
        out : ndarray of shape (capacity, k), C-contiguous, writable
            ``capacity >= rows``. Its dtype for each physical type: DOUBLE -> float64
            or float32 (numpy's ``astype(float32)`` cast, ``inf`` on overflow),
            FLOAT -> float32 or float64, INT64 -> int64, INT32 -> int32.
        column : int
            The column of ``out`` that receives the values, ``0 <= column < k``.
        rows : int
            How many values, at most what is left of the chunk's ``num_values``.

        Returns
        -------
        bool
            True when the values were written; False when the data is not plain for
            this reader (see the module docstring) or the extension is missing. After
            False the reader is spent (later reads answer False) and ``out`` may hold
            partial values.

        Raises
        ------
        ValueError
            When the arguments are wrong: ``out``'s dtype, shape or layout, ``column``,
            or ``rows`` beyond ``capacity`` or beyond the values left.
        """
        self._check(out, column, rows)
        if self._reader is None:
            return False
        ok: bool = self._reader.read(out, column, rows)
        return ok

    def _check(self, out: np.ndarray, column: int, rows: int) -> None:
        """ValueError unless ``read(out, column, rows)`` has the arguments it allows."""
        if not isinstance(out, np.ndarray) or out.ndim != 2:
            raise ValueError(f"out: got {type(out).__name__}, expected a 2-dimensional ndarray")
        if out.dtype not in _OUT_DTYPES[self._physical_type]:
            allowed = " or ".join(str(d) for d in _OUT_DTYPES[self._physical_type])
            raise ValueError(
                f"out: got dtype {out.dtype} for a {_TYPE_NAMES[self._physical_type]} "
                f"column, expected {allowed}"
            )
        if not (out.flags.c_contiguous and out.flags.writeable):
            raise ValueError("out: expected a C-contiguous, writable array")
        if not (0 <= column < out.shape[1]) or not (0 <= rows <= out.shape[0]):
            raise ValueError(
                f"read: got column={column}, rows={rows} for out of shape {out.shape}, "
                f"expected 0 <= column < {out.shape[1]} and 0 <= rows <= {out.shape[0]}"
            )
        if self._reader is None and rows > self._num_values:
            raise ValueError(
                f"read: got rows={rows}, expected at most the {self._num_values} values of "
                "the chunk"
            )

    def close(self) -> None:
        """Free the reader's buffers and close its duplicate of the file descriptor (also
        done when it is garbage collected); the caller's descriptor stays open."""
        if self._reader is not None:
            self._reader.close()


def read_columns(
    readers: Sequence[ColumnChunkReader],
    outs: Sequence[np.ndarray],
    columns: Sequence[int],
    rows: int,
) -> bool:
    """``readers[k].read(outs[k], columns[k], rows)`` for every k, a tile of rows at a time.

    The same values as the separate reads, with less CPU when several columns of one
    wide matrix are filled: the readers take turns a few thousand rows at a time, so
    the matrix's rows being written stay in the CPU's cache. The GIL is released
    once for the whole call.

    Parameters
    ----------
    readers : sequence of ColumnChunkReader
        Each at most once.
    outs : sequence of ndarray, one per reader
        As for :meth:`ColumnChunkReader.read`; several readers may share one matrix
        (different columns of it).
    columns : sequence of int, one per reader
        The column of ``outs[k]`` that ``readers[k]`` fills.
    rows : int
        Values read by each reader.

    Returns
    -------
    bool
        True when every reader wrote its values; False when any reader's data is not
        plain (or the extension is missing): every reader given is then spent.

    Raises
    ------
    ValueError
        When the arguments are wrong (as for :meth:`ColumnChunkReader.read`), a reader
        is given twice, or the sequences differ in length.
    """
    if not len(readers) == len(outs) == len(columns):
        raise ValueError(
            f"read_columns: got {len(readers)} readers, {len(outs)} outs and {len(columns)} "
            "columns, expected as many of each"
        )
    if len({id(r) for r in readers}) != len(readers):
        raise ValueError("read_columns: got a reader twice, expected each at most once")
    for reader, out, column in zip(readers, outs, columns, strict=True):
        reader._check(out, column, rows)
    if _ext is None or disabled():
        return False
    ok: bool = _ext.read_columns(
        tuple(r._reader for r in readers), tuple(outs), tuple(int(c) for c in columns), rows
    )
    return ok
