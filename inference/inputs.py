"""Turn what users pass to ``Predictor.predict`` into a C-contiguous (n, k) array.

Accepted: a 2-D array-like (n, k) of any real dtype; a 1-D array (k,) as one row;
a pandas DataFrame matched by column name; a dict of name to scalar or 1-D array;
a list of dicts (JSON records). Everything else, and strings, booleans, complex
numbers, object arrays and 3-D arrays, raise :class:`~inference.errors.InputError`
saying what came, what was expected and where.

The same rules hold in every form:

- **Named columns the model does not read** (DataFrame columns, dict keys, record
  keys) are ignored and reported: an :class:`~inference.errors.IgnoredColumnsWarning`
  names them (or, when the caller passes an ``ignored`` list, they are appended to
  it instead). With ``strict=True`` they are an :class:`InputError`. A missing
  feature is always an error.
- **Booleans** are refused, whether a bool array, a bool column, or ``True`` inside
  a list of numbers (where numpy would silently read it as 1.0).
- **An empty batch** (``[]``, an array of shape (0,) or (0, k), a DataFrame, dict or
  record list without rows) gives an empty (0, k) array; the columns it names are
  still checked.

NaN and inf are found after the model ran (see ``locate_nonfinite``): any
non-finite feature makes that row's prediction non-finite, so checking the (n,)
output costs 1/k of checking the (n, k) input.
"""

from __future__ import annotations

import itertools
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from inference.errors import IgnoredColumnsWarning, InputError

__all__ = ["as_matrix", "is_real", "locate_nonfinite", "too_large"]

_FLOAT64_MAX = float(np.finfo(np.float64).max)
_BOOLS = frozenset({bool, np.bool_})


def _check_numeric_dtype(dtype: np.dtype, where: str) -> None:
    if dtype.kind in "iuf":
        return
    kinds = {
        "b": "booleans",
        "c": "complex numbers",
        "U": "strings",
        "S": "bytes",
        "O": "Python objects",
        "M": "datetimes",
        "m": "time deltas",
        "V": "structured records",
    }
    raise InputError(
        f"{where} holds {kinds.get(dtype.kind, str(dtype))} (dtype {dtype}); "
        "expected real numbers (an integer or float dtype)"
    )


def is_real(value: Any) -> bool:
    """A Python or numpy real number (not a bool, complex number or time delta)."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.timedelta64
    )


def too_large(row: int, name: str, value: Any, dtype: np.dtype) -> InputError:
    big = isinstance(value, int) and value.bit_length() > 160  # repr fails past 4300 digits
    shown = f"(an integer of {value.bit_length()} bits)" if big else repr(value)
    return InputError(
        f"row {row}, column {name!r}: inf is not a finite number (or a value beyond "
        f"±{np.finfo(dtype).max:.3g}, the largest {dtype}): the input value {shown} is "
        "beyond that range, so this model cannot score it, with or without allow_nonfinite"
    )


def _cast(arr: np.ndarray, dtype: np.dtype, names: Sequence[str], column: bool) -> np.ndarray:
    """``arr`` (2-D, or 1-D when ``column``) as a C-contiguous array of ``dtype``.

    A finite value beyond the range of ``dtype`` raises :class:`InputError`: it
    would become inf, and allow_nonfinite is for NaN and inf inputs, not for those.
    """
    try:
        with np.errstate(over="raise"):
            return np.ascontiguousarray(arr, dtype=dtype)
    except FloatingPointError:
        pass
    with np.errstate(over="ignore"):
        bad = np.argwhere(np.isinf(arr.astype(dtype)) & np.isfinite(arr))[0]
    name = names[0] if column else names[int(bad[1])]
    raise too_large(int(bad[0]), name, arr[tuple(bad)].item(), dtype)


def _column_values(values: Any, name: str, dtype: np.dtype) -> np.ndarray:
    """One named column (or scalar) as a 1-D array of ``dtype``."""
    if isinstance(values, list | tuple):
        _refuse_bools(values, [name], name)
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError) as exc:  # ragged nested lists, for example
        raise InputError(f"column {name!r}: cannot read it as a 1-D array ({exc})") from exc
    if arr.dtype.kind == "O":
        # Mixed Python objects (e.g. a pandas object column): find the first non-number.
        flat = arr.reshape(-1)
        for i, v in enumerate(flat):
            if not is_real(v):
                raise InputError(
                    f"column {name!r}, row {i}: {v!r} ({type(v).__name__}) is not a number"
                )
        try:
            arr = flat.astype(np.float64)
        except OverflowError:  # a Python int beyond float64
            i = next(i for i, v in enumerate(flat) if abs(v) > _FLOAT64_MAX)
            raise too_large(i, name, flat[i], dtype) from None
    _check_numeric_dtype(arr.dtype, f"column {name!r}")
    if arr.ndim > 1:
        raise InputError(f"column {name!r} has shape {arr.shape}; expected a scalar or 1-D array")
    return _cast(arr.reshape(-1), dtype, [name], column=True)


def _from_columns(
    columns: Mapping[str, Any], features: Sequence[str], dtype: np.dtype
) -> np.ndarray:
    cols = [_column_values(columns[f], f, dtype) for f in features]
    lengths = {f: c.shape[0] for f, c in zip(features, cols, strict=True)}
    if len(set(lengths.values())) > 1:
        raise InputError(f"columns have different lengths: {lengths}")
    out = np.empty((cols[0].shape[0], len(cols)), dtype=dtype)
    for j, c in enumerate(cols):
        out[:, j] = c
    return out


def _check_names(
    given: Sequence[str], features: Sequence[str], what: str, *, strict: bool
) -> list[str]:
    """The names in ``given`` that the model does not read; InputError for a missing
    feature, and (``strict``) for an unknown name."""
    missing = [f for f in features if f not in given]
    known = set(features)
    unknown = [g for g in given if g not in known]
    if missing or (strict and unknown):
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if unknown:  # named beside a missing one, they are often its misspelling
            parts.append(f"unknown {unknown}" + (" (strict_columns=True)" if strict else ""))
        raise InputError(f"{what}: {' and '.join(parts)}; the model expects {list(features)}")
    return unknown


def _report(unknown: Sequence[str], what: str, features: Sequence[str], ignored: Any) -> None:
    """Report the ignored names: into ``ignored`` (a list), else as a warning (pointing
    at the caller of ``Predictor.predict``)."""
    if ignored is not None:
        ignored.extend(unknown)
        return
    warnings.warn(
        IgnoredColumnsWarning(
            f"{what}: ignored {list(unknown)}, which the model does not read (it reads "
            f"{list(features)}); pass strict_columns=True to refuse them"
        ),
        stacklevel=4,
    )


def _is_dataframe(X: Any) -> bool:
    return type(X).__module__.startswith("pandas") and hasattr(X, "columns")


def as_matrix(
    X: Any,
    features: Sequence[str],
    dtype: np.dtype,
    *,
    strict: bool = False,
    ignored: list[str] | None = None,
) -> np.ndarray:
    """Convert ``X`` to a C-contiguous array of shape (n, k) and ``dtype``.

    No copy is made when ``X`` already is such an array. Named columns the model does
    not read are ignored: appended to ``ignored`` when it is a list, else reported by
    an :class:`~inference.errors.IgnoredColumnsWarning`; ``strict=True`` refuses them
    (module docstring).
    """
    # numpy.ma is imported lazily (a cost at the first predict), and X cannot be a
    # masked array unless someone imported it
    ma = sys.modules.get("numpy.ma")
    if ma is not None and isinstance(X, ma.MaskedArray):  # np.asarray would score masked values
        X = _unmask(X, ma)
    if (
        isinstance(X, np.ndarray)
        and X.ndim == 2
        and X.dtype == dtype
        and X.shape[1] == len(features)
    ):
        return X if X.flags.c_contiguous else np.ascontiguousarray(X)
    unknown: list[str] = []
    what = ""
    try:  # the ignored names are reported even when a value is then refused
        if _is_dataframe(X):
            what = "DataFrame columns"
            return _from_frame(X, features, dtype, strict, unknown)
        if isinstance(X, Mapping):
            what = "dict keys"
            if not X:
                return np.empty((0, len(features)), dtype=dtype)
            unknown += _check_names([str(g) for g in X], features, what, strict=strict)
            return _from_columns(X, features, dtype)
        if (
            isinstance(X, Sequence)
            and not isinstance(X, str | bytes)
            and X
            and isinstance(X[0], Mapping)
        ):
            what = "records"
            return _from_records(X, features, dtype, strict, unknown)
        return _from_array_like(X, features, dtype)
    finally:
        if unknown:
            _report(unknown, what, features, ignored)


def _unmask(X: Any, ma: Any) -> np.ndarray:
    """The data of a masked array with nothing masked; else :class:`InputError`."""
    if ma.getmaskarray(X).any():
        raise InputError(
            f"a masked array with {int(ma.count_masked(X))} masked value(s); fill them "
            "(X.filled(np.nan) with allow_nonfinite=True, or real values) or drop those rows"
        )
    return X.data  # type: ignore[no-any-return]


def _from_frame(
    X: Any, features: Sequence[str], dtype: np.dtype, strict: bool, unknown: list[str]
) -> np.ndarray:
    """A DataFrame's feature columns, by name (the others' names go to ``unknown``)."""
    if getattr(X.columns, "nlevels", 1) != 1:
        raise InputError("a DataFrame with MultiIndex columns; expected flat column names")
    if len(X.columns) == 0 and len(X) == 0:
        return np.empty((0, len(features)), dtype=dtype)
    names = [str(c) for c in X.columns]
    if len(set(names)) != len(names):
        raise InputError(f"the DataFrame repeats column names: {names}")
    unknown += _check_names(names, features, "DataFrame columns", strict=strict)
    X = X.rename(columns=str)
    return _from_columns({f: X[f].to_numpy() for f in features}, features, dtype)


def _from_records(
    X: Sequence[Any], features: Sequence[str], dtype: np.dtype, strict: bool, unknown: list[str]
) -> np.ndarray:
    """A list of dicts, one a row, each with the feature names as keys (the other keys'
    names go to ``unknown``, each once)."""
    out = np.empty((len(X), len(features)), dtype=dtype)
    seen: dict[str, None] = {}  # ordered, each name once
    for i, record in enumerate(X):
        if not isinstance(record, Mapping):
            raise InputError(f"record {i} is a {type(record).__name__}; expected a dict")
        if len(record) != len(features) or not all(f in record for f in features):
            extra = _check_names([str(g) for g in record], features, f"record {i}", strict=strict)
            unknown += [name for name in extra if name not in seen]  # reported, even if
            seen.update(dict.fromkeys(extra))  # a value below is refused
        for j, f in enumerate(features):
            v = record[f]
            if not is_real(v):
                raise InputError(
                    f"record {i}, column {f!r}: {v!r} ({type(v).__name__}) is not a number"
                )
            try:
                with np.errstate(over="raise"):
                    out[i, j] = v
            except (OverflowError, FloatingPointError):
                raise too_large(i, f, v, dtype) from None
    return out


def _refuse_bools(values: Sequence[Any], names: Sequence[str], column: str | None) -> None:
    """InputError when a list (of lists) of numbers holds a bool, which numpy would read
    as 1.0 or 0.0 (a bool array is refused by its dtype). ``column``: the name of the
    one column ``values`` holds (a dict's value), else None (rows of ``names``)."""
    nested = bool(values) and all(isinstance(v, list | tuple) for v in values)
    flat = itertools.chain.from_iterable(values) if nested else values
    if _BOOLS.isdisjoint(map(type, flat)):
        return
    rows = values if nested else [values]
    i, j, v = next(
        (i, j, v) for i, r in enumerate(rows) for j, v in enumerate(r) if type(v) in _BOOLS
    )
    where = (
        f"column {column!r}, row {j}"
        if column is not None
        else f"row {i}, column {names[j] if j < len(names) else j!r}"
    )
    raise InputError(
        f"{where}: {v!r} ({type(v).__name__}) is not a number; booleans are refused in "
        "every input form (pass 1.0 or 0.0 if that is what it means)"
    )


def _from_array_like(X: Any, features: Sequence[str], dtype: np.dtype) -> np.ndarray:
    """Anything ``np.asarray`` reads as numbers: shape (n, k), or (k,) for one row, or
    an empty batch."""
    k = len(features)
    if isinstance(X, str | bytes):
        raise InputError(f"got a {type(X).__name__}; expected an array of shape (n, {k})")
    if isinstance(X, list | tuple):
        _refuse_bools(X, features, None)
    try:
        arr = np.asarray(X)
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"cannot read the input as an array ({exc}); expected shape (n, {k})"
        ) from exc
    _check_numeric_dtype(arr.dtype, "the input")
    if arr.ndim == 1 and arr.shape[0] == 0:  # [] or an empty array: an empty batch
        return np.empty((0, k), dtype=dtype)
    if arr.ndim == 1:
        if arr.shape[0] != k:
            hint = " (many rows of one feature: pass shape (n, 1))" if k == 1 else ""
            raise InputError(
                f"a 1-D input is one row: got {arr.shape[0]} values, expected {k} "
                f"features {list(features)}{hint}"
            )
        arr = arr.reshape(1, k)
    elif arr.ndim != 2:
        raise InputError(f"input has shape {arr.shape} ({arr.ndim}-D); expected (n, {k})")
    if arr.shape[1] != k:
        raise InputError(
            f"X has {arr.shape[1]} features, but the model expects {k}: {list(features)}"
        )
    return _cast(arr, dtype, features, column=False)


def locate_nonfinite(X: np.ndarray, features: Sequence[str], offset: int = 0) -> InputError:
    """The error for the first non-finite value of ``X`` (n, k), or for a prediction
    that overflowed when every input was finite."""
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        row, col = int(bad[0][0]), int(bad[0][1])
        value = X[row, col]
        hint = (
            f" (or a value beyond ±{np.finfo(X.dtype).max:.3g}, the largest {X.dtype})"
            if np.isinf(value)
            else ""
        )
        return InputError(
            f"row {row + offset}, column {features[col]!r}: {value} is not a finite "
            f"number{hint} ({len(bad)} non-finite value(s) in the input); pass "
            "allow_nonfinite=True to score such rows anyway (their predictions are NaN or inf)"
        )
    return InputError(
        "every input is finite but a prediction overflowed the model's dtype "
        f"({X.dtype}); the input values are too large for this model"
    )
