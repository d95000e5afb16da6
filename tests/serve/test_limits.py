"""The checks made before a body is parsed, and the bounded readers, against
independent readings: orjson's parse (walked in Python), Python's ``csv`` module,
and :func:`inference.inputs.as_matrix` on the whole input."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from tests.serve.conftest import needs_serve

pytestmark = needs_serve
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FEATURES = ["area", "latitude", "dist_mainland"]
F32 = np.dtype(np.float32)

#: strings with the characters the scan must see through: structure, quotes, escapes
tricky_text = st.text(alphabet=st.sampled_from(list('ab,:[]{}"\\\n é😀')), max_size=12)
json_docs = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | tricky_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=30,
)


def _walk(doc) -> tuple[int, int, int, int]:
    """(values, keys, containers, empty containers) of a parsed document."""
    values = keys = containers = empty = 0
    stack = [doc]
    while stack:
        x = stack.pop()
        values += 1
        if isinstance(x, list | dict):
            containers += 1
            empty += not x
            if isinstance(x, dict):
                keys += len(x)
                stack.extend(x.values())
            else:
                stack.extend(x)
    return values, keys, containers, empty


@given(doc=json_docs, ascii_only=st.booleans(), spaced=st.booleans(), block=st.integers(1, 64))
def test_json_counts_equal_the_parsed_structure(doc, ascii_only, spaced, block, monkeypatch):
    from inference.serve import limits

    text = json.dumps(doc, ensure_ascii=ascii_only, separators=(", ", ": ") if spaced else None)
    monkeypatch.setattr(limits, "BLOCK", block)  # strings and escapes straddle blocks
    c = limits.json_counts(text.encode())
    values, keys, containers, empty = _walk(doc)
    assert (c.colons, c.containers, c.values - empty) == (keys, containers, values)
    assert not c.in_string


def test_json_counts_stop_early_and_check_json_names_the_limit():
    from inference.serve.limits import check_json, json_counts
    from inference.serve.responses import ApiError

    body = b"[" + b"[1.5,2.5,3.5]," * 400_000 + b"[1,2,3]]"
    assert json_counts(body).values == 1 + 400_001 * 4
    assert json_counts(body, most=(10, 10, 10)).values < 1 + 400_001 * 4
    check_json(body, 400_001, 3)  # exactly the limit: no error
    with pytest.raises(ApiError) as err:
        check_json(body, 1000, 3)
    assert err.value.status == 413 and "limit of 1000 rows" in err.value.message


def _every_format(n: int) -> dict[str, bytes]:
    """A request of ``n`` rows of the three features in every JSON format."""
    X = np.random.default_rng(n).uniform(0, 100, size=(n, 3)).round(3).tolist()
    records = [dict(zip(FEATURES, r, strict=True)) for r in X]
    columns = {f: [r[j] for r in X] for j, f in enumerate(FEATURES)}
    v2 = {"name": "features", "datatype": "FP64", "shape": [n, 3]}
    split = {"columns": FEATURES, "data": X, "index": list(range(n))}  # pandas' orient
    payloads = {
        "rows": X,
        "records": records,
        "columns": columns,
        "wrapped": {"inputs": X, "interval": "prediction", "level": 0.9},
        "split": {"dataframe_split": split, "params": {"a": 1}},
        "mlflow records": {"dataframe_records": records},
        "instances": {"instances": X},
        "v2 flat": {"inputs": [{**v2, "data": [v for r in X for v in r]}], "id": "x"},
        "v2 nested": {"inputs": [{**v2, "data": X}], "outputs": [{"name": "prediction"}]},
        "v2 per feature": {
            "inputs": [
                {"name": f, "datatype": "FP64", "shape": [n], "data": columns[f]} for f in FEATURES
            ]
        },
    }
    return {name: json.dumps(p).encode() for name, p in payloads.items()}


def test_check_json_takes_every_format_at_the_limit_and_refuses_it_past():
    from inference.serve.limits import check_json
    from inference.serve.responses import ApiError

    n = 5000
    for name, body in _every_format(n).items():
        check_json(body, n, 3)  # exactly the limit: accepted, whatever the format
        with pytest.raises(ApiError):  # twice the limit: refused, whatever the format
            check_json(_every_format(2 * n)[name], n, 3)
    for name in ("rows", "records", "split", "mlflow records", "instances", "v2 nested"):
        with pytest.raises(ApiError):  # one array or object a row: refused just past it
            check_json(_every_format(n + 1100)[name], n, 3)


csv_cells = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["", " ", "x", "1e5", "-0"]),
    # quoted fields holding separators, line breaks and escaped quotes, and quotes
    # where no field opens or closes (the count then gives up: None)
    st.sampled_from(['"a,b"', '"x\ny"', '"x\r\ny"', '"q""q"', '""', '""""', 'ab"c', '"a"b', '"\n']),
)
line_ends = st.sampled_from(["\n", "\r\n", "\r"])


@given(
    rows=st.lists(st.lists(csv_cells, min_size=1, max_size=3), max_size=12),
    ends=st.lists(line_ends, min_size=1, max_size=3),
    blanks=st.lists(st.integers(0, 12), max_size=3),
)
def test_csv_rows_at_least_is_a_lower_bound_of_the_csv_module(rows, ends, blanks):
    from inference.serve.limits import csv_rows_at_least

    lines = [",".join(FEATURES)] + [",".join(r) for r in rows]
    for b in blanks:
        lines.insert(min(b, len(lines)), "")
    text = "".join(line + ends[i % len(ends)] for i, line in enumerate(lines))
    try:
        records = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    except csv.Error:  # a quote left open at the end: no rows at all
        records = []
    at_least = csv_rows_at_least(text.encode())
    if '"' not in text:
        assert at_least is not None
    if at_least is not None:
        assert 0 <= at_least <= max(0, len(records) - 1)
    if set(ends) == {"\n"} and '"' not in text:  # every row ends in a counted line break
        assert at_least == len(records) - 1


def _reference_csv(text: str) -> np.ndarray:
    """The matrix of a CSV text read the plain way: csv.reader, then float()."""
    rows = csv.reader(io.StringIO(text, newline=""))
    names = [h.strip() for h in next(rows)]
    index = [names.index(f) for f in FEATURES]
    out = [[float(row[j].strip()) for j in index] for row in rows if row]
    return np.asarray(out, dtype=np.float64).reshape(-1, 3).astype(np.float32)


@given(
    X=st.lists(
        st.lists(st.floats(-1e30, 1e30, allow_nan=False), min_size=3, max_size=3), max_size=40
    ),
    quoted=st.booleans(),
    crlf=st.booleans(),
    bom=st.booleans(),
)
def test_parse_csv_equals_a_plain_reading(X, quoted, crlf, bom):
    from inference.serve.csv_body import parse_csv

    note = '"note, with a comma and a ""quote"""' if quoted else "note"
    end = "\r\n" if crlf else "\n"
    text = "extra," + ",".join(FEATURES) + end
    text += "".join(f"{note}," + ",".join(map(repr, r)) + end for r in X)
    body = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    got = parse_csv(body, FEATURES, F32, max_rows=1000)
    np.testing.assert_array_equal(got, _reference_csv(text))


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"area\n" + b"1\n" * 11, 413, "limit of 10"),  # known before parsing
        (b'"area"\n' + b'"1"\n' * 11, 413, "limit of 10"),  # quoted fields: before too
        (b"area,n\n" + b'1,a"b\n' * 11, 413, "limit of 10"),  # a stray quote: while reading
        (b"area\n" + b"1" * 140_000 + b"\n", 400, "field larger than field limit"),
        (b"area\n" + b"1" * (2 << 20), 413, "longer than 1 MiB"),  # no line break at all
        (b"area\n" + b'"\n",' * 300_000 + b"1\n", 413, "longer than 1 MiB"),  # one record
        (b"area\n1\n\xff\n", 400, "line 3: the body is not UTF-8"),
        (b"", 400, "empty"),
    ],
)
def test_parse_csv_limits(body, status, words):
    from inference.serve.csv_body import parse_csv
    from inference.serve.responses import ApiError

    with pytest.raises(ApiError) as err:
        parse_csv(body, ["area"], F32, max_rows=10)
    assert err.value.status == status and words in err.value.message, err.value.message


def test_matrix_of_equals_as_matrix_and_its_messages(monkeypatch):
    from inference.inputs import as_matrix
    from inference.serve import matrix

    monkeypatch.setattr(matrix, "SLICE_ROWS", 100)
    rng = np.random.default_rng(3)
    X = rng.uniform(-100, 100, size=(3 * matrix.SLICE_ROWS + 5, 3))
    rows = X.tolist()
    records = [dict(zip(FEATURES, r, strict=True)) for r in rows]
    expected = as_matrix(X, FEATURES, F32)
    np.testing.assert_array_equal(matrix.matrix_of(rows, FEATURES, F32), expected)
    np.testing.assert_array_equal(matrix.matrix_of(records, FEATURES, F32), expected)
    late = 2 * matrix.SLICE_ROWS + 3
    for bad_rows, bad_records in (
        ([*rows[:late], [1.0, "x", 2.0], *rows[late:]], None),
        (None, [*records[:late], {"area": 1e40, "latitude": 1, "dist_mainland": 2}]),
        (None, [*records[:late], {"area": True, "latitude": 1, "dist_mainland": 2}]),
        (None, [*records[:late], {"area": 1, "latitude": 1}]),
        ([*rows[:late], [1.0, 2.0]], None),
    ):
        bad = bad_rows if bad_rows is not None else bad_records
        with pytest.raises(ValueError) as whole:
            as_matrix(bad, FEATURES, F32)
        with pytest.raises(ValueError) as sliced:
            matrix.matrix_of(bad, FEATURES, F32)
        assert str(sliced.value) == str(whole.value)


def _post(app, path: str, body: bytes) -> tuple[int, dict]:
    """POST ``body`` to the ASGI application ``app`` in this process: (status, JSON)."""
    import asyncio

    import orjson

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], orjson.loads(b"".join(m.get("body", b"") for m in sent[1:]))


@pytest.mark.parametrize("size", [10, 100_000])  # parsed inline, and on a worker thread
@pytest.mark.parametrize(
    ("module", "name", "path", "message"),
    [
        ("plain", "decode", "/predict", "error"),
        ("mlflow", "decode", "/invocations", "message"),
        ("v2", "parse_request", "/v2/models/plant_richness_lr/infer", "error"),
    ],
)
def test_every_exception_of_a_parse_is_a_4xx(monkeypatch, size, module, name, path, message):
    import importlib

    from inference.serve.app import create_app
    from inference.serve.settings import Settings
    from tests.serve.conftest import BUNDLED

    server = create_app(Settings(model_dirs=[str(BUNDLED / "plant_richness_lr")], access_log=False))
    target = importlib.import_module(f"inference.serve.{module}")
    for exc, status, words in (
        (KeyError("shape"), 400, "KeyError: 'shape'"),
        (TypeError("unhashable type: 'list'"), 400, "TypeError: unhashable"),
        (MemoryError(), 413, "more memory"),
        (RecursionError("too deep"), 400, "RecursionError"),
    ):

        def parse(*args, exc=exc):  # type: ignore[no-untyped-def]
            raise exc

        monkeypatch.setattr(target, name, parse)
        got, answer = _post(server, path, b"1" * size)
        assert got == status and words in answer[message], (exc, got, answer)
