"""Property-based fuzzing of everything ``Predictor.predict`` and ``predict_one`` accept.

Every generated input must give the prediction an independent float64 numpy
computation gives (``x @ coef + intercept`` with the manifest's parameters, within
a tolerance fitted to the model's dtype) or raise the documented ``InputError``:
never another exception, never a silent NaN or inf. NaN and inf inputs raise
unless ``allow_nonfinite=True``; a finite value too large for the model's dtype
raises in both modes.

Tolerance: a float32 model rounds each input, weight, product and partial sum to
float32, so ``|prediction - reference| <= RTOL * (sum_j |x_j * coef_j| + |intercept|)``
with ``RTOL = 1e-6`` (about 17 float32 roundings); float64 models use ``1e-13``.
Rows whose ``sum_j |x_j * coef_j| + |intercept|`` exceeds a quarter of the dtype's
largest value may overflow inside the model; for those, ``InputError`` (or a
non-finite value with ``allow_nonfinite=True``) is also accepted.

The rules every input form shares (issue 28): an empty batch gives an empty array,
named columns the model does not read are ignored with an ``IgnoredColumnsWarning``
(an ``InputError`` with ``strict_columns=True``), and booleans are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from inference import InputError, Predictor
from inference.errors import IgnoredColumnsWarning

FEATURES = ["area", "latitude", "dist_mainland"]
K = len(FEATURES)
RTOL = {"float32": 1e-6, "float64": 1e-13}

pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")

FUZZ = settings(max_examples=150)  # the rest: the suite's profile (tests/conftest.py)


@dataclass(frozen=True)
class Model:
    predictor: Predictor
    coef: np.ndarray
    intercept: float
    dtype: np.dtype

    @property
    def fmax(self) -> float:
        return float(np.finfo(self.dtype).max)


@pytest.fixture(scope="module", params=["float32", "float64"])
def model(request, exported) -> Model:
    _, directory = exported("plant_richness_mlr", request.param)
    predictor = Predictor.load(directory, providers="cpu")
    params = predictor.manifest.data["parameters"]
    assert predictor.features == FEATURES
    return Model(
        predictor,
        np.asarray(params["coef"], dtype=np.float64),
        float(params["intercept"]),
        predictor.dtype,
    )


# --------------------------------------------------------------------------------------
# The oracle
# --------------------------------------------------------------------------------------


def check(model: Model, X64: np.ndarray, call, *, allow_nonfinite: bool) -> str:
    """Run ``call()`` and check it against the float64 reference for rows ``X64``.

    ``X64`` (n, K) float64 holds the values the input means (NaN and inf included).
    Returns "ok" or "error" (the InputError that was expected).
    """
    X64 = np.asarray(X64, dtype=np.float64).reshape(-1, K)
    with np.errstate(over="ignore", invalid="ignore"):
        seen = X64.astype(model.dtype)  # what the model is fed
        overflow = np.isfinite(X64) & np.isinf(seen)
        nonfinite_row = ~np.isfinite(X64).all(axis=1)
        scale = np.abs(seen.astype(np.float64)) @ np.abs(model.coef) + abs(model.intercept)
        reference = X64 @ model.coef + model.intercept
    risky_row = ~nonfinite_row & (scale > model.fmax / 4)
    must_fail = bool(overflow.any()) or (not allow_nonfinite and bool(nonfinite_row.any()))
    may_fail = must_fail or (not allow_nonfinite and bool(risky_row.any()))
    try:
        raw = call()
    except InputError:
        assert may_fail, "InputError for an input that has a correct, finite prediction"
        return "error"
    assert not must_fail, f"no InputError for overflow={overflow.any()} or NaN/inf rows: {raw}"
    if isinstance(raw, np.ndarray):  # predict (predict_one returns Python floats)
        assert raw.dtype == model.dtype
    got = np.asarray(raw, dtype=np.float64)
    assert got.shape == (X64.shape[0],), got.shape
    if not allow_nonfinite:
        assert np.isfinite(got).all(), "a silent NaN or inf without allow_nonfinite"
    assert not np.isfinite(got[nonfinite_row]).any(), "a NaN/inf row got a finite prediction"
    fine = ~nonfinite_row & ~(risky_row & ~np.isfinite(got))
    err = np.abs(got[fine] - reference[fine])
    bound = RTOL[model.dtype.name] * scale[fine]
    assert (err <= bound).all(), (got[fine], reference[fine], err, bound)
    return "ok"


# --------------------------------------------------------------------------------------
# Arrays: every real dtype, byte order, memory layout and container
# --------------------------------------------------------------------------------------

REAL_DTYPES = [
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.float16,
    np.float32,
    np.float64,
    np.longdouble,
]


@st.composite
def real_dtypes(draw) -> np.dtype:
    dtype = np.dtype(draw(st.sampled_from(REAL_DTYPES)))
    if dtype.itemsize > 1 and draw(st.booleans()):
        dtype = dtype.newbyteorder()  # the non-native byte order
    return dtype


def float_values(dtype: np.dtype, nonfinite: bool) -> st.SearchStrategy:
    """Moderate, huge, tiny and boundary values (NaN and inf when ``nonfinite``)."""
    f32max = float(np.finfo(np.float32).max)
    width = 16 if dtype.itemsize == 2 else 32 if dtype.itemsize == 4 else 64
    limits = np.finfo(np.float16 if width == 16 else np.float32 if width == 32 else np.float64)
    top = float(limits.max)
    parts = [
        st.floats(-1e4, 1e4, width=width),
        st.floats(-top, top, width=width),
        st.floats(-16 * float(limits.tiny), 16 * float(limits.tiny), width=width),  # subnormal
        st.sampled_from([0.0, -0.0, float(limits.tiny), -float(limits.smallest_subnormal)]),
    ]
    if width == 64:  # just below, at and just above float32's largest value
        parts.append(
            st.sampled_from(
                [f32max, -f32max, np.nextafter(f32max, np.inf), 3.4028235677973366e38, 1e39]
            )
        )
    if nonfinite:
        parts.append(st.sampled_from([np.nan, np.inf, -np.inf]))
    return st.one_of(*parts)


@st.composite
def real_arrays(draw, max_rows: int = 12) -> np.ndarray:
    """A C-ordered (n, K) array of a real dtype, n from 0."""
    dtype = draw(real_dtypes())
    n = draw(st.integers(0, max_rows))
    if dtype.kind == "f":
        elements = float_values(dtype, nonfinite=draw(st.integers(0, 3)) == 0)
    else:
        elements = hnp.from_dtype(dtype)
    return draw(hnp.arrays(dtype, (n, K), elements=elements))


def as_float64(A: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return A.astype(np.float64)


LAYOUTS = ["C", "F", "transposed", "strided", "negative", "readonly", "unaligned", "matrix"]


def lay_out(A: np.ndarray, layout: str) -> np.ndarray:
    """The same values as ``A`` in another memory layout."""
    if layout == "F":
        return np.asfortranarray(A)
    if layout == "transposed":
        return np.ascontiguousarray(A.T).T
    if layout == "strided":
        return np.repeat(A, 3, axis=0)[1::3]
    if layout == "negative":
        return np.ascontiguousarray(A[::-1, ::-1])[::-1, ::-1]
    if layout == "readonly":
        B = A.copy()
        B.setflags(write=False)
        return B
    if layout == "unaligned":
        raw = np.frombuffer(b"\0" + A.tobytes(), dtype=A.dtype, offset=1)
        return raw.reshape(A.shape)
    if layout == "matrix":
        return np.asmatrix(A) if A.shape[0] else A
    return A


@FUZZ
@given(A=real_arrays(), layout=st.sampled_from(LAYOUTS), allow=st.booleans())
def test_arrays_of_every_real_dtype_and_layout(model, A, layout, allow):
    X = lay_out(A, layout)
    np.testing.assert_array_equal(np.asarray(X), A)
    check(
        model,
        as_float64(A),
        lambda: model.predictor.predict(X, allow_nonfinite=allow),
        allow_nonfinite=allow,
    )
    np.testing.assert_array_equal(np.asarray(X), A)  # the caller's array is not modified


@FUZZ
@given(A=real_arrays(max_rows=6), form=st.sampled_from(["lists", "row", "tuples"]))
def test_python_lists(model, A, form):
    if form == "row":
        assume(A.shape[0] >= 1)
        A = A[:1]
        X: Any = A[0].tolist()
    elif form == "tuples":
        X = tuple(tuple(r) for r in A.tolist())
    else:
        X = A.tolist()
    # [] (no rows) is an empty batch: an empty array, as for every other form
    check(model, as_float64(A), lambda: model.predictor.predict(X), allow_nonfinite=False)


@FUZZ
@given(
    A=real_arrays(max_rows=8),
    order=st.permutations(range(K)),
    extra=st.booleans(),
    form=st.sampled_from(["dict-arrays", "dict-lists", "records", "dataframe"]),
    allow=st.booleans(),
)
def test_named_columns(model, A, order, extra, form, allow):
    names = [FEATURES[j] for j in order]
    if form == "dataframe":
        X: Any = pd.DataFrame({name: A[:, FEATURES.index(name)] for name in names})
        if extra:
            X["comment"] = ["text"] * len(X)
    elif form == "records":
        X = [{name: row[FEATURES.index(name)] for name in names} for row in A.tolist()]
        if extra:
            X = [{**r, "comment": 1.0} for r in X]
    else:
        lists = form == "dict-lists"
        X = {name: A[:, FEATURES.index(name)] for name in names}
        if lists:
            X = {name: col.tolist() for name, col in X.items()}
        if extra:
            X = {**X, "comment": [1.0] * len(A) if lists else np.ones(len(A))}

    def call() -> Any:
        return model.predictor.predict(X, allow_nonfinite=allow)

    # extra columns are ignored and reported, in every named form (an empty record
    # list names no column: it is an empty batch)
    named = extra and not (form == "records" and not X)
    if named:
        with pytest.warns(IgnoredColumnsWarning, match=r"ignored \['comment'\]"):
            check(model, as_float64(A), call, allow_nonfinite=allow)
        with pytest.raises(InputError, match=r"unknown \['comment'\]"):
            model.predictor.predict(X, allow_nonfinite=allow, strict_columns=True)
        return
    check(model, as_float64(A), call, allow_nonfinite=allow)


PANDAS_DTYPES = ["float64", "float32", "int64", "Int64", "Float64", "object", "category"]


@FUZZ
@given(
    values=hnp.arrays(np.float64, (6, K), elements=float_values(np.dtype(np.float64), True)),
    dtypes=st.lists(st.sampled_from(PANDAS_DTYPES), min_size=K, max_size=K),
    missing=st.lists(st.booleans(), min_size=K, max_size=K),
)
def test_dataframe_column_types_and_missing_values(model, values, dtypes, missing):
    columns = {}
    expected = np.empty_like(values)
    for j, (name, dtype) in enumerate(zip(FEATURES, dtypes, strict=True)):
        col = values[:, j]
        if dtype in ("int64", "Int64"):
            col = np.round(np.nan_to_num(col, nan=1.0, posinf=2.0, neginf=-2.0) % 1e6)
        with np.errstate(over="ignore"):  # float32 columns make values past 3.4e38 inf
            series = pd.Series(col).astype(dtype if dtype != "category" else "float64")
        if dtype == "category":
            series = series.astype("category")
        if missing[j] and dtype in ("Int64", "Float64", "object"):
            series.iloc[2] = pd.NA if dtype != "object" else None
        expected[:, j] = pd.Series(series, dtype=object).map(
            lambda v: np.nan if v is None or v is pd.NA else float(v)
        )
        columns[name] = series
    frame = pd.DataFrame(columns)
    has_none = any(m and d == "object" for m, d in zip(missing, dtypes, strict=True))
    for allow in (False, True):
        if has_none:  # None in an object column is not a number: documented error
            with pytest.raises(InputError, match="is not a number|inf is not a finite"):
                model.predictor.predict(frame, allow_nonfinite=allow)
            continue
        check(
            model,
            expected,
            lambda a=allow: model.predictor.predict(frame, allow_nonfinite=a),
            allow_nonfinite=allow,
        )


# --------------------------------------------------------------------------------------
# NaN, inf and out-of-range values
# --------------------------------------------------------------------------------------


@FUZZ
@given(
    n=st.integers(1, 40),
    bad=st.lists(
        st.tuples(st.integers(0, 39), st.integers(0, K - 1), st.sampled_from([np.nan, np.inf])),
        min_size=1,
        max_size=5,
    ),
    sign=st.sampled_from([1.0, -1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_nan_and_inf_raise_unless_allowed(model, n, bad, sign, seed):
    X = np.random.default_rng(seed).normal(size=(n, K)) * [1, 2, 10] + [2, 42, 15]
    for i, j, v in bad:
        X[i % n, j] = sign * v
    first = np.argwhere(~np.isfinite(X))[0]
    with pytest.raises(
        InputError, match=rf"row {first[0]}, column '{FEATURES[first[1]]}': -?(nan|inf) is not"
    ):
        model.predictor.predict(X)
    out = model.predictor.predict(X, allow_nonfinite=True)
    rows = ~np.isfinite(X).all(axis=1)
    assert not np.isfinite(out[rows]).any() and np.isfinite(out[~rows]).all()
    check(model, X, lambda: out, allow_nonfinite=True)


@FUZZ
@given(
    value=st.one_of(
        st.floats(3.5e38, 1.7e308),
        st.floats(-1.7e308, -3.5e38),
        st.integers(2**128, 2**2000),
        st.integers(-(2**2000), -(2**128)),
    ),
    where=st.integers(0, K - 1),
    form=st.sampled_from(["array", "list", "dict", "records", "dataframe"]),
    allow=st.booleans(),
)
def test_values_beyond_float32_never_become_a_silent_inf(model, value, where, form, allow):
    row = [2.0, 42.0, 15.0]
    row[where] = value
    X: Any
    if form == "array":
        X = np.array([row], dtype=np.float64) if isinstance(value, float) else np.array([row])
    elif form == "list":
        X = [row]
    elif form == "dict":
        X = dict(zip(FEATURES, row, strict=True))
    elif form == "records":
        X = [dict(zip(FEATURES, row, strict=True))]
    else:
        X = pd.DataFrame([row], columns=FEATURES)
    if isinstance(value, int) and form in ("array", "list"):
        # numpy makes an object array of ints past 64 bits: documented error
        with pytest.raises(InputError, match="Python objects"):
            model.predictor.predict(X, allow_nonfinite=allow)
    elif abs(value) > model.fmax:
        with pytest.raises(InputError, match=rf"row 0, column '{FEATURES[where]}': inf is not"):
            model.predictor.predict(X, allow_nonfinite=allow)
    else:  # a float64 model holds it
        meant = np.array([[float(v) for v in row]])
        check(
            model,
            meant,
            lambda: model.predictor.predict(X, allow_nonfinite=allow),
            allow_nonfinite=allow,
        )


# --------------------------------------------------------------------------------------
# Wrong shapes, wrong types and arbitrary Python objects
# --------------------------------------------------------------------------------------

NON_REAL = [
    np.dtype(bool),
    np.dtype(np.complex64),
    np.dtype(np.complex128),
    np.dtype("U3"),
    np.dtype("S3"),
    np.dtype(object),
    np.dtype("M8[s]"),
    np.dtype("m8[s]"),
    np.dtype([("a", "f8"), ("b", "f8"), ("c", "f8")]),
]


@FUZZ
@given(dtype=st.sampled_from(NON_REAL), n=st.integers(0, 5), allow=st.booleans())
def test_non_real_dtypes_are_refused(model, dtype, n, allow):
    X = np.zeros((n,) if dtype.names else (n, K), dtype=dtype)
    with pytest.raises(InputError, match="expected real numbers"):
        model.predictor.predict(X, allow_nonfinite=allow)


@FUZZ
@given(
    shape=st.one_of(
        st.just(()),
        # (0,) is no wrong shape: an empty batch (issue 28)
        st.tuples(st.integers(1, 6).filter(lambda m: m != K)),
        st.tuples(st.integers(0, 5), st.integers(0, 6).filter(lambda m: m != K)),
        st.lists(st.integers(0, 3), min_size=3, max_size=4).map(tuple),
    ),
    dtype=st.sampled_from([np.float32, np.float64, np.int64]),
)
def test_wrong_shapes_are_refused(model, shape, dtype):
    X = np.ones(shape, dtype=dtype)
    with pytest.raises(InputError, match=r"expected|features|shape"):
        model.predictor.predict(X)


def _leaves() -> st.SearchStrategy:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=5),
        st.binary(max_size=5),
        st.complex_numbers(),
        st.sampled_from([np.float32(1.5), np.int8(3), np.complex64(1j), np.timedelta64(3, "s")]),
        st.sampled_from([np.datetime64("2020-01-01"), np.bool_(True), np.uint64(2**64 - 1)]),
        st.sampled_from([pd.NA, pd.NaT, Ellipsis, object()]),
    )


ANYTHING = st.recursive(
    _leaves(),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, min_size=K, max_size=K),
        st.tuples(children, children, children),
        st.dictionaries(st.sampled_from([*FEATURES, "other", ""]), children, max_size=4),
        st.fixed_dictionaries({f: children for f in FEATURES}),
    ),
    max_leaves=12,
)


def _number(v: Any, *, bools: bool) -> bool:
    if isinstance(v, bool | np.bool_):
        return bools
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(
        v, np.timedelta64
    )


def _rows_meant(obj: Any) -> tuple[np.ndarray | None, bool]:
    """The (n, K) float64 rows ``obj`` can stand for, and whether it holds a bool among
    its numbers (refused in every form); (None, False) when it is no input. Keys other
    than the features are ignored; an empty list, tuple or dict is an empty batch."""
    if isinstance(obj, list | tuple | dict) and len(obj) == 0:
        return np.empty((0, K)), False
    if isinstance(obj, dict):
        if not set(FEATURES) <= {str(k) for k in obj}:
            return None, False
        cols = []
        for f in FEATURES:
            v = obj[f]
            if _number(v, bools=False):
                cols.append([v])
            elif isinstance(v, list | tuple) and all(_number(e, bools=True) for e in v):
                cols.append(list(v))
            else:
                return None, False
        if len({len(c) for c in cols}) != 1:
            return None, False
        used_bool = any(isinstance(e, bool | np.bool_) for c in cols for e in c)
        return _to_float64(list(zip(*cols, strict=True))), used_bool
    if isinstance(obj, list | tuple) and obj and all(isinstance(r, dict) for r in obj):
        if not all(set(FEATURES) <= set(r) for r in obj):
            return None, False
        if not all(_number(r[f], bools=False) for r in obj for f in FEATURES):
            return None, False
        return _to_float64([[r[f] for f in FEATURES] for r in obj]), False
    if isinstance(obj, list | tuple) and len(obj) == K and all(_number(v, bools=True) for v in obj):
        return _to_float64([list(obj)]), any(isinstance(v, bool | np.bool_) for v in obj)
    if (
        isinstance(obj, list | tuple)
        and obj
        and all(isinstance(r, list | tuple) and len(r) == K for r in obj)
        and all(_number(v, bools=True) for r in obj for v in r)
    ):
        used_bool = any(isinstance(v, bool | np.bool_) for r in obj for v in r)
        return _to_float64([list(r) for r in obj]), used_bool
    return None, False


def _to_float64(rows: list) -> np.ndarray | None:
    try:
        return np.array([[float(v) for v in r] for r in rows], dtype=np.float64)
    except OverflowError:  # a Python int beyond float64: the model must refuse it
        return np.full((len(rows), K), np.inf)


@settings(FUZZ, max_examples=400)
@given(obj=ANYTHING, allow=st.booleans())
@pytest.mark.filterwarnings("ignore::inference.errors.IgnoredColumnsWarning")
def test_arbitrary_objects_predict_or_raise_input_error(model, obj, allow):
    meant, used_bool = _rows_meant(obj)
    try:
        got = model.predictor.predict(obj, allow_nonfinite=allow)
    except InputError:
        return  # the documented error (valid inputs are never refused: the test below)
    assert meant is not None, f"{obj!r} was scored as {got!r}"
    assert not used_bool, f"{obj!r}: a boolean was scored as a number ({got!r})"
    check(model, meant, lambda: got, allow_nonfinite=allow)


NUMBERS = st.one_of(
    st.integers(-(2**63) + 1, 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(-1e4, 1e4),
    st.floats(-1e4, 1e4).map(np.float32),
    st.integers(-100, 100).map(np.int16),
    st.integers(0, 2**32).map(np.uint64),
)
ROW = st.lists(NUMBERS, min_size=K, max_size=K)
VALID_PYTHON = st.one_of(
    ROW,
    ROW.map(tuple),
    st.lists(ROW, min_size=1, max_size=6),
    st.fixed_dictionaries({f: NUMBERS for f in FEATURES}),
    st.lists(st.fixed_dictionaries({f: NUMBERS for f in FEATURES}), min_size=1, max_size=6),
    st.integers(0, 6).flatmap(
        lambda n: st.fixed_dictionaries(
            {f: st.lists(NUMBERS, min_size=n, max_size=n) for f in FEATURES}
        )
    ),
)


@FUZZ
@given(obj=VALID_PYTHON)
def test_valid_python_inputs_are_scored(model, obj):
    meant, used_bool = _rows_meant(obj)
    assert meant is not None and not used_bool
    check(model, meant, lambda: model.predictor.predict(obj), allow_nonfinite=False)


# --------------------------------------------------------------------------------------
# predict_one and intervals
# --------------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(-1e4, 1e4),
    st.integers(-(2**63), 2**63),
    st.floats(-1e4, 1e4).map(np.float32),
    st.floats(-1e4, 1e4).map(np.float64),
    st.integers(-100, 100).map(np.int16),
    st.integers(0, 2**64 - 1).map(np.uint64),
)


@FUZZ
@given(values=st.tuples(SCALARS, SCALARS, SCALARS), as_dict=st.booleans())
def test_predict_one(model, values, as_dict):
    row = dict(zip(FEATURES, values, strict=True))
    X64 = np.array([[float(v) for v in values]])
    call = (
        (lambda: [model.predictor.predict_one(row)])
        if as_dict
        else (lambda: [model.predictor.predict_one(**row)])
    )
    check(model, X64, call, allow_nonfinite=False)


@FUZZ
@given(
    value=st.sampled_from(["3", None, True, np.bool_(False), [1.0], {"a": 1}, 1j]),
    where=st.sampled_from(FEATURES),
)
def test_predict_one_refuses_non_numbers(model, value, where):
    row = {"area": 1.0, "latitude": 42.0, "dist_mainland": 10.0, where: value}
    with pytest.raises(InputError, match=f"predict_one: {where}=.* is not a number"):
        model.predictor.predict_one(**row)


@pytest.mark.parametrize(
    "value",
    [10**400, np.complex128(1 + 2j), np.timedelta64(5, "s")],
    ids=["bigint", "complex", "timedelta"],
)
def test_predict_one_refuses_what_predict_refuses(model, value):
    with pytest.raises(InputError):
        model.predictor.predict([{"area": value, "latitude": 42.0, "dist_mainland": 10.0}])
    with pytest.raises(InputError):
        model.predictor.predict_one(area=value, latitude=42.0, dist_mainland=10.0)


@FUZZ
@given(
    A=hnp.arrays(
        np.float64, st.tuples(st.integers(0, 20), st.just(K)), elements=st.floats(-1e6, 1e6)
    ),
    kind=st.sampled_from(["confidence", "prediction"]),
    level=st.sampled_from([0.90, 0.95, 0.99]),
)
def test_intervals_bracket_the_prediction(model, A, kind, level):
    out = model.predictor.predict(A, interval=kind, level=level)
    plain = model.predictor.predict(A)
    assert out.prediction.dtype == np.float64 and out.prediction.shape == (A.shape[0],)
    np.testing.assert_array_equal(out.prediction, plain.astype(np.float64))
    assert np.isfinite(out.lower).all() and np.isfinite(out.upper).all()
    assert (out.lower <= out.prediction).all() and (out.prediction <= out.upper).all()
    if kind == "prediction":
        narrow = model.predictor.predict(A, interval="confidence", level=level)
        assert (out.upper - out.lower >= narrow.upper - narrow.lower).all()
