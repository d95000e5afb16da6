"""A fast path for plain CSV blocks: a C parser straight into a float matrix (and codes).

:func:`parse_block` parses a block of whole CSV lines whose read fields are plain
decimal numbers (and, for a model with factors, levels of those factors) into a
float32 or float64 matrix (and int64 level codes), with about a quarter of the CPU time
of ``pyarrow.csv`` on 17-digit features (``benchmarks/bench_fastcsv.py``), and answers
``None`` for any block that is not plain: the caller then parses that block the usual
way (which also reports what is wrong). It runs in the C extension
``inference.io.csv._fastcsv`` (built by ``setup.py`` when a C compiler is present, see
:func:`available`) and releases the GIL while it parses.

The grammar of a plain block
    Lines end with ``\\n`` (the last line of the block may lack it); an empty block
    has no rows. Each line has exactly ``n_columns`` fields separated by the
    delimiter byte; an empty line is not plain. A read field is exactly
    ``-?[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]+)?`` with at most 19 significant digits
    (leading zeros not counted) and at most 4 exponent digits: no spaces, no ``+``
    sign, no ``.5`` or ``5.``, no nan/inf, no empty field. An unread field holds any
    bytes but ``"``, ``\\r`` and bytes >= 0x80 (quoting, CRLF line ends and UTF-8
    are left to the slow path). A factor field is empty (a missing value, coded -2) or
    exactly one of its factor's levels, byte for byte (UTF-8 allowed; no ``"`` or
    ``\\r``), optionally in double quotes with no quote or line end inside (``""`` is a
    missing value, as pyarrow reads it): any other text, an unknown level or one written
    differently (`` north``, ``03`` for an integer level ``3``), makes the block not
    plain, so that the slow path reads it and names what is wrong.

Values
    The correctly rounded binary64 value of each decimal (round to nearest, ties
    to even: the value ``float(text)`` gives), ``-0`` giving ``-0.0``; a float32
    output holds that double cast to float32, as ``numpy.astype(np.float32)``
    does. A value that overflows the output dtype (``1e309``; ``1e39`` for float32)
    makes the block not plain. The conversion never depends on the C locale.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from inference.io.native import EXTENSIONS, disabled, load_extension

#: the built extension, or None (installed without a C compiler)
_ext: ModuleType | None = load_extension(EXTENSIONS["csv"])

__all__ = ["available", "parse_block"]

#: bytes that cannot separate fields: they belong to numbers, quotes or line ends
_BAD_DELIMITERS = frozenset('0123456789-+.eE"\r\n')


def available() -> bool:
    """Whether the C extension was built and is not switched off by ``LINREG_NO_NATIVE``
    (if not, :func:`parse_block` answers None)."""
    return _ext is not None and not disabled()


def parse_block(
    block: Any,
    n_columns: int,
    delimiter: str,
    columns: Sequence[int],
    out: np.ndarray,
    levels: Sequence[Sequence[str]] = (),
    codes: np.ndarray | None = None,
) -> int | None:
    """Parse a block of plain CSV lines into the first rows of ``out`` (and ``codes``).

    Parameters
    ----------
    block : bytes-like of shape (n_bytes,)
        Whole lines of CSV text (``bytes``, ``memoryview``, a ``pyarrow.Buffer``:
        anything with the buffer protocol and contiguous bytes).
    n_columns : int
        Fields per line.
    delimiter : str
        One ASCII character, e.g. ``","`` or ``"\\t"``.
    columns : sequence of int of length n_columns
        For each field of a line: the column of ``out`` it goes to (a number), -1 when
        the field is not read, or ``-2 - f`` for a field of factor ``f`` (its level
        index goes to ``codes[f]``). The number fields fill each column of ``out``
        once; each factor has at most one field.
    out : ndarray of shape (capacity, k), float32 or float64, writable
        C-contiguous, or Fortran-contiguous (each column contiguous, as a model that
        takes one input per column needs). Receives one row per line; ``capacity`` must
        be at least the number of lines.
    levels : sequence of sequences of str, one per factor
        Each factor's levels; a field's code is its index here.
    codes : ndarray of shape (len(levels), capacity), int64, C-contiguous, writable
        Receives the factor fields' level indices, -2 for an empty field (needed when
        ``levels`` is not empty).

    Returns
    -------
    int or None
        The number of rows written (``out[:rows]``, ``codes[:, :rows]``), or None when
        the block is not plain (see the module docstring), holds more lines than
        ``capacity``, or the extension is missing. After None, ``out`` and ``codes``
        may hold partial values.

    Raises
    ------
    ValueError
        When the arguments themselves are wrong (delimiter, columns, out, codes).
    """
    if _ext is None or disabled():
        return None
    _check(delimiter, n_columns, columns, out, levels, codes)
    encoded = tuple(tuple(str(v).encode("utf-8") for v in one) for one in levels)
    rows: int | None = _ext.parse_block(
        block, n_columns, ord(delimiter), tuple(int(c) for c in columns), out, encoded, codes
    )
    return rows


def _check(
    delimiter: str,
    n_columns: int,
    columns: Sequence[int],
    out: np.ndarray,
    levels: Sequence[Sequence[str]],
    codes: np.ndarray | None,
) -> None:
    """ValueError unless :func:`parse_block`'s arguments are as it documents."""
    if len(delimiter) != 1 or not delimiter.isascii() or delimiter in _BAD_DELIMITERS:
        raise ValueError(
            f"delimiter: got {delimiter!r}, expected one ASCII character that is not part "
            "of a number, a quote or a line end"
        )
    if not isinstance(out, np.ndarray) or out.ndim != 2:
        raise ValueError(f"out: got {type(out).__name__}, expected a 2-dimensional ndarray")
    if out.dtype not in (np.float32, np.float64):
        raise ValueError(f"out: got dtype {out.dtype}, expected float32 or float64")
    if not ((out.flags.c_contiguous or out.flags.f_contiguous) and out.flags.writeable):
        raise ValueError("out: expected a C-contiguous (or Fortran-contiguous), writable array")
    if len(columns) != n_columns:
        raise ValueError(f"columns: got {len(columns)} entries, expected n_columns={n_columns}")
    read = sorted(c for c in columns if c >= 0)
    if read != list(range(out.shape[1])):
        raise ValueError(
            f"columns: got output columns {read}, expected each of 0..{out.shape[1] - 1} "
            "(out's columns) once"
        )
    factors = [-2 - c for c in columns if c < -1]
    if len(set(factors)) != len(factors) or any(f >= len(levels) for f in factors):
        raise ValueError(
            f"columns: got factor fields {factors}, expected each of the {len(levels)} "
            "factors at most once"
        )
    if levels and not (
        isinstance(codes, np.ndarray)
        and codes.dtype == np.int64
        and codes.shape == (len(levels), out.shape[0])
        and codes.flags.c_contiguous
        and codes.flags.writeable
    ):
        raise ValueError(
            f"codes: expected a writable C-contiguous int64 array of shape "
            f"({len(levels)}, {out.shape[0]})"
        )
