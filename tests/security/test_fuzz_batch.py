"""Property-based fuzzing of the batch job's reader, ``inference.batch.score_file``.

Generated CSV and TSV files (quoted and padded cells, blank lines, LF and CRLF,
a BOM, no final newline, extra columns, the columns in any order, some of them
kept) must score exactly as ``Predictor.predict`` scores the same rows read by an
independent reader (Python's ``csv`` module one line at a time, ``float`` on each
stripped cell), with the kept columns' text copied unchanged. Damaged files (bad
cells, missing and extra fields, unterminated quotes, line breaks inside quotes,
bare carriage returns, bytes that are not UTF-8, NUL bytes, random truncation,
insertion, deletion and bit flips) must either score correctly or raise the
documented ``BatchError`` naming the file, the line and the column, leave no
output and no temporary file, and keep an older output untouched. With
``bad_rows="skip"`` or a file, the counts and lines of the rows set aside must
equal the independent reader's. Parquet files with nulls, NaN, text and integer
columns, and missing or mistyped columns, are checked the same way.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from inference import Predictor
from inference.batch import BAD_ROWS_COLUMNS, score_file
from inference.errors import BatchError, LineTooLongError
from tests.security.fuzzing import BAD_CELLS as COMMON_BAD_CELLS
from tests.security.fuzzing import DAMAGE_KINDS, damage, spell

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "exported_models" / "plant_richness_mlr"
MANIFEST = json.loads((MODEL / "manifest.json").read_text())
FEATURES: list[str] = MANIFEST["features"]
PARAMS = np.abs(np.array(MANIFEST["statistics"]["params"], dtype=np.float64))  # intercept first
FLOAT32_MAX = float(np.finfo(np.float32).max)

FUZZ = settings(max_examples=250)  # the rest: the suite's profile (tests/conftest.py)

SEPARATORS = {".csv": ",", ".tsv": "\t"}
#: an error message of a bad row, one of the documented reasons
BAD_ROW_REASON = re.compile(
    r"field\(s\), expected \d+|missing value|is not a number|is not a finite number"
)


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load(MODEL, providers="cpu")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("batch-fuzz")


_counter = itertools.count()


def fresh(directory: Path) -> Path:
    path = directory / f"e{next(_counter)}"
    path.mkdir()
    return path


def temporaries(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".") and ".tmp-" in p.name]


# --------------------------------------------------------------------------------------
# The independent reader
# --------------------------------------------------------------------------------------

#: what counts as a number: plain decimal notation, ASCII digits only
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def cell_value(text: str) -> float | str:
    """A feature cell as a float, or the reason it is bad (a word, for the report)."""
    text = text.strip()
    if text == "":
        return "missing"
    if not NUMBER.fullmatch(text):
        return "not a number"
    value = float(text)
    if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
        return "not finite"
    return value


def quote_left_open(line: str, sep: str) -> bool:
    """Whether a quote opened on ``line`` is still open at its end: the csv module then
    swallows a sentinel line into the same record."""
    records = list(csv.reader([line + "\n", "#sentinel#\n"], delimiter=sep))
    return records[-1:] != [["#sentinel#"]]


@dataclass
class Row:
    line: int  # 1-based; the header is line 1
    text: str  # the line, without its line end
    fields: list[str]
    values: list[float] | None  # the features, in the model's order; None when bad
    bad_columns: set[str | None]  # where a bad row may be reported


@dataclass
class Reading:
    """What a file holds, by the independent reader."""

    header: list[str]
    rows: list[Row]  # every data line that is not blank
    broken: int | None  # first line that is not one whole record (open quote, bare CR)
    undecodable: int | None  # first line not UTF-8 in a column read, or with bad fields

    @property
    def good(self) -> list[Row]:
        return [r for r in self.rows if r.values is not None]

    @property
    def bad(self) -> list[Row]:
        return [r for r in self.rows if r.values is None]


def read_reference(data: bytes, sep: str, keep: list[str]) -> Reading:
    """Read ``data`` line by line with Python's csv module (UTF-8; the job's contract)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    if lines and lines[-1] in (b"", b"\r"):  # the last line's end
        lines.pop()
    header_text = lines[0].removesuffix(b"\r").decode("utf-8")
    header = next(csv.reader([header_text], delimiter=sep), [])
    read = {header.index(name) for name in [*FEATURES, *keep]}
    rows: list[Row] = []
    broken = undecodable = None
    for number, raw in enumerate(lines[1:], 2):
        raw = raw.removesuffix(b"\r")
        text = raw.decode("utf-8", "surrogateescape")
        if broken is None and ("\r" in text or quote_left_open(text, sep)):
            broken = number
        if raw == b"":
            continue  # a blank line
        try:
            fields = next(csv.reader([text], delimiter=sep), [])
        except csv.Error:  # a carriage return in an unquoted field: a broken line
            rows.append(Row(number, text, [], None, {None, *header}))
            continue
        whole = len(fields) == len(header)
        if undecodable is None and any(
            (j in read or not whole) and not _utf8(fields[j]) for j in range(len(fields))
        ):
            undecodable = number  # pyarrow must decode it: a read column, or a bad row
        if len(fields) != len(header):
            column = header[len(fields)] if len(fields) < len(header) else None
            rows.append(Row(number, text, fields, None, {column}))
            continue
        values, bad = [], set()
        for name in FEATURES:
            value = cell_value(fields[header.index(name)])
            if isinstance(value, str):
                bad.add(name)
            else:
                values.append(value)
        rows.append(Row(number, text, fields, None if bad else values, bad))
    return Reading(header, rows, broken, undecodable)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a byte that surrogateescape kept
        return False
    return True


def read_output(path: Path, sep: str | None) -> tuple[list[str], list[list[str]], np.ndarray]:
    """(columns, kept columns' text by row, predictions) of a job's output."""
    if sep is None:
        table = pq.read_table(path)
        names = table.column_names
        kept = [["" if v is None else v for v in table.column(n).to_pylist()] for n in names[:-1]]
        y = np.asarray(table.column(names[-1]).to_pylist(), dtype=np.float32)
        return names, [[column[i] for column in kept] for i in range(len(y))], y
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "", "the output ends with a line end"
    names, *records = (next(csv.reader([t], delimiter=sep)) for t in lines[:-1])
    y = np.array([float(r[-1]) for r in records], dtype=np.float64).astype(np.float32)
    return names, [r[:-1] for r in records], y


def assert_predictions(
    got: np.ndarray, rows: list[Row], predictor: Predictor, *, exact: bool
) -> None:
    """``got`` equals ``predictor.predict`` on the rows' values: bit for bit when the job
    made the same single call, else within float32 rounding (ONNX Runtime sums a batch of
    2, 3 or 7 rows in another order than a bigger one)."""
    X = np.array([r.values for r in rows], dtype=np.float64).reshape(len(rows), len(FEATURES))
    expected = predictor.predict(X) if len(rows) else np.empty(0, dtype=np.float32)
    assert got.dtype == np.float32 and got.shape == expected.shape
    if exact:
        np.testing.assert_array_equal(got, expected)
    else:
        scale = np.abs(X) @ PARAMS[1:] + PARAMS[0]
        np.testing.assert_array_less(
            np.abs(got.astype(np.float64) - expected.astype(np.float64)), 2e-6 * scale + 1e-30
        )


# --------------------------------------------------------------------------------------
# Generated files
# --------------------------------------------------------------------------------------

NAME_CHARS = st.one_of(
    st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")),
    st.sampled_from(list(",\"\t '#;é中")),
)
NAMES = st.text(NAME_CHARS, min_size=1, max_size=6).filter(
    lambda s: s not in FEATURES and s != "prediction"
)
TEXT_CHARS = st.one_of(
    st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")),
    st.sampled_from(list(',"\t #é\x00')),
)
CELL_TEXT = st.text(TEXT_CHARS, max_size=6)
#: values within float32's range, so that every one is a number the model can take
VALUES = st.one_of(
    st.floats(-1e6, 1e6),
    st.floats(-1e30, 1e30),
    st.integers(-(10**9), 10**9).map(float),
    st.sampled_from([0.0, -0.0, 5e-324, 1e-45, 3.0e38, -3.0e38]),
)


@dataclass(frozen=True)
class Doc:
    """A file to score: header and cells as text, and how they are written."""

    suffix: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    newline: tuple[str, ...]  # the line end after the header and after each row
    blank_after: tuple[int, ...]  # blank lines after line i + 1 (0: the header)
    bom: bool
    final_newline: bool
    quote_all: bool
    keep: tuple[str, ...]  # id_columns

    @property
    def sep(self) -> str:
        return SEPARATORS[self.suffix]

    def field(self, text: str) -> str:
        if self.quote_all or any(c in text for c in (self.sep, '"', "\r", "\n")):
            return '"' + text.replace('"', '""') + '"'
        return text

    def lines(self) -> list[str]:
        return [self.sep.join(map(self.field, r)) for r in (self.header, *self.rows)]

    def text(self, lines: list[str] | None = None) -> str:
        lines = self.lines() if lines is None else lines
        out = "\ufeff" if self.bom else ""
        for i, line in enumerate(lines):
            end = self.newline[i] if i < len(self.newline) else "\n"
            out += line
            if i < len(lines) - 1 or self.final_newline:
                out += end
            if i < len(lines) - 1:
                out += end * self.blank_after.count(i)
        return out

    def encode(self) -> bytes:
        return self.text().encode("utf-8")

    def column(self, name: str) -> int:
        return self.header.index(name)


@st.composite
def docs(draw, *, min_rows: int = 0, quotes_in_text: bool = True) -> Doc:
    suffix = draw(st.sampled_from(sorted(SEPARATORS)))
    extras = draw(st.lists(NAMES, max_size=3, unique=True))
    header = tuple(draw(st.permutations([*FEATURES, *extras])))
    n = draw(st.integers(min_rows, 10))
    text = CELL_TEXT if quotes_in_text else CELL_TEXT.map(lambda s: s.replace('"', "'"))
    rows = []
    for _ in range(n):
        row = []
        for name in header:
            if name in FEATURES:
                pad = draw(st.sampled_from(["", "", " ", "  "]))
                value = spell(draw(VALUES), draw(st.integers(0, 4)))
                row.append(pad + value + draw(st.sampled_from(["", "", " "])))
            else:
                row.append(draw(text))
        rows.append(tuple(row))
    keep = tuple(draw(st.lists(st.sampled_from(header), unique=True, max_size=3)))
    return Doc(
        suffix=suffix,
        header=header,
        rows=tuple(rows),
        newline=tuple(draw(st.lists(st.sampled_from(["\n", "\r\n"]), min_size=n + 1))),
        blank_after=tuple(draw(st.lists(st.integers(0, n), max_size=3))),
        bom=draw(st.booleans()),
        final_newline=draw(st.booleans()),
        quote_all=draw(st.integers(0, 4)) == 0,
        keep=keep,
    )


OUTPUTS = st.sampled_from([".csv", ".tsv", ".parquet"])
CHUNKS = st.sampled_from([None, None, None, 1, 2, 3, 7])


@dataclass
class Job:
    """One run of ``score_file`` in its own directory, an older output sometimes there."""

    directory: Path
    source: Path
    output: Path
    old: bytes | None

    @classmethod
    def make(cls, scratch: Path, data: bytes, suffix: str, out_suffix: str, old: bool) -> Job:
        directory = fresh(scratch)
        source = directory / f"in{suffix}"
        source.write_bytes(data)
        output = directory / f"out{out_suffix}"
        previous = b"older output\n" if old else None
        if previous is not None:
            output.write_bytes(previous)
        return cls(directory, source, output, previous)

    @property
    def out_sep(self) -> str | None:
        return None if self.output.suffix == ".parquet" else SEPARATORS[self.output.suffix]

    def run(self, predictor: Predictor, keep, **kwargs):
        return score_file(
            predictor, self.source, self.output, id_columns=list(keep), overwrite=True, **kwargs
        )

    def assert_untouched(self) -> None:
        """After a failure: the older output as it was (or none), no temporary file."""
        if self.old is None:
            assert not self.output.exists()
        else:
            assert self.output.read_bytes() == self.old
        assert not temporaries(self.directory)


def check_scored(job: Job, report, reading: Reading, keep, predictor, *, exact: bool) -> None:
    good = reading.good
    assert report.rows_written == len(good)
    assert report.rows_read == len(reading.rows)
    assert report.rows_bad == len(reading.bad)
    names, kept, y = read_output(job.output, job.out_sep)
    assert names == [*keep, "prediction"]
    assert kept == [[r.fields[reading.header.index(k)] for k in keep] for r in good]
    assert_predictions(y, good, predictor, exact=exact)
    assert not temporaries(job.directory)


# --------------------------------------------------------------------------------------
# Valid files
# --------------------------------------------------------------------------------------


@FUZZ
@given(doc=docs(), out=OUTPUTS, chunk_rows=CHUNKS)
def test_valid_files_score_like_predict_on_an_independent_reading(
    scratch, predictor, doc, out, chunk_rows
):
    data = doc.encode()
    reading = read_reference(data, doc.sep, list(doc.keep))
    assert reading.broken is None and not reading.bad and len(reading.rows) == len(doc.rows)
    job = Job.make(scratch, data, doc.suffix, out, old=False)
    report = job.run(predictor, doc.keep, chunk_rows=chunk_rows)
    # one call to the model with exactly these rows: no blank line, no chunking
    exact = chunk_rows is None and not doc.blank_after
    check_scored(job, report, reading, doc.keep, predictor, exact=exact)
    event("bit-identical" if exact else "within float32 rounding")


@FUZZ
@given(doc=docs(), out=OUTPUTS, chunk_rows=CHUNKS, data=st.data())
def test_a_line_longer_than_the_limit_stops_the_job_at_that_line(
    scratch, predictor, doc, out, chunk_rows, data
):
    """``max_line_bytes`` drawn around the file's line lengths (bytes before each ``\\n``,
    a BOM and a CR included): the job stops with LineTooLongError at the first line
    longer than the limit, by ``bytes.split``, leaving nothing behind; when there is
    none, it scores as without a limit."""
    encoded = doc.encode()
    lengths = [len(line) for line in encoded.split(b"\n")]
    longest = max(lengths)
    limit = data.draw(
        st.one_of(st.sampled_from([longest - 1, longest, longest + 1]), st.integers(1, longest))
    )
    limit = max(limit, 1)
    job = Job.make(scratch, encoded, doc.suffix, out, old=data.draw(st.booleans()))
    too_long = [i + 1 for i, n in enumerate(lengths) if n > limit]
    if not too_long:
        report = job.run(predictor, doc.keep, chunk_rows=chunk_rows, max_line_bytes=limit)
        reading = read_reference(encoded, doc.sep, list(doc.keep))
        check_scored(job, report, reading, doc.keep, predictor, exact=False)
        event("scored")
        return
    with pytest.raises(LineTooLongError) as caught:
        job.run(predictor, doc.keep, chunk_rows=chunk_rows, max_line_bytes=limit)
    assert (caught.value.file, caught.value.line, caught.value.limit) == (
        str(job.source),
        too_long[0],
        limit,
    )
    job.assert_untouched()
    event("header too long" if too_long[0] == 1 else "a row too long")


# --------------------------------------------------------------------------------------
# Bad rows: error, skip, file
# --------------------------------------------------------------------------------------

BAD_CELLS = [
    *COMMON_BAD_CELLS,
    "1e39",
    "-3.5e38",
    "1_000",
    "\x00",
    "1\x00",
    ".",
    "e5",
]
MODES = st.sampled_from(["error", "skip", "file"])


@st.composite
def damaged_rows(draw) -> tuple[Doc, list[str]]:
    """A doc and its lines, some data lines made bad: a bad cell in a feature, fields
    missing or extra, a line of spaces."""
    doc = draw(docs(min_rows=1))
    lines = doc.lines()
    for i in draw(st.sets(st.integers(1, len(doc.rows)), min_size=1, max_size=4)):
        how = draw(st.sampled_from(["cell", "cell", "short", "long", "spaces"]))
        row = list(doc.rows[i - 1])
        if how == "cell":
            for name in draw(st.sets(st.sampled_from(FEATURES), min_size=1)):
                row[doc.column(name)] = draw(st.sampled_from(BAD_CELLS))
            lines[i] = doc.sep.join(map(doc.field, row))
        elif how == "short":
            cut = draw(st.integers(1, len(row) - 1))
            lines[i] = doc.sep.join(map(doc.field, row[:cut]))
        elif how == "long":
            more = draw(st.lists(st.sampled_from(["1", "", "x", '"2"']), min_size=1, max_size=2))
            lines[i] = doc.sep.join([*map(doc.field, row), *more])
        else:
            lines[i] = " " * draw(st.integers(1, 3))
    return doc, lines


@FUZZ
@given(case=damaged_rows(), mode=MODES, out=OUTPUTS, chunk_rows=CHUNKS, old=st.booleans())
@example(  # a whitespace-only line is a bad row (one field), not a blank line
    case=(
        Doc(".csv", tuple(FEATURES), (("1", "2", "3"),), ("\n",) * 2, (), False, True, False, ()),
        ["area,latitude,dist_mainland", "  "],
    ),
    mode="skip",
    out=".csv",
    chunk_rows=None,
    old=False,
)
def test_bad_rows_are_reported_at_their_line_and_column_or_set_aside(
    scratch, predictor, case, mode, out, chunk_rows, old
):
    doc, lines = case
    data = doc.text(lines).encode("utf-8")
    reading = read_reference(data, doc.sep, list(doc.keep))
    assert reading.broken is None and reading.undecodable is None
    job = Job.make(scratch, data, doc.suffix, out, old)
    bad_path = job.directory / "rejected.csv"
    bad_rows = {"error": "error", "skip": "skip", "file": bad_path}[mode]
    if mode == "error" and reading.bad:
        first = reading.bad[0]
        with pytest.raises(BatchError) as info:
            job.run(predictor, doc.keep, chunk_rows=chunk_rows, bad_rows=bad_rows)
        err = info.value
        assert (err.file, err.line) == (str(job.source), first.line), str(err)
        assert err.column in first.bad_columns, str(err)
        assert BAD_ROW_REASON.search(err.reason), err.reason
        where = f"{job.source}, line {first.line}"
        assert str(err).startswith(where + (f", column {err.column!r}" if err.column else ""))
        job.assert_untouched()
        event("error at the first bad line")
        return
    report = job.run(predictor, doc.keep, chunk_rows=chunk_rows, bad_rows=bad_rows)
    check_scored(job, report, reading, doc.keep, predictor, exact=False)
    if mode == "file":
        with bad_path.open(newline="", encoding="utf-8") as f:
            rejected = list(csv.DictReader(f))
        assert [int(r["line"]) for r in rejected] == [r.line for r in reading.bad]
        for got, row in zip(rejected, reading.bad, strict=True):
            assert (got["column"] or None) in row.bad_columns
            assert BAD_ROW_REASON.search(got["error"]), got["error"]
            assert got["record"].rstrip("\r") == row.text
            assert got["file"] == str(job.source)
        with bad_path.open(encoding="utf-8") as f:
            assert next(csv.reader(f)) == list(BAD_ROWS_COLUMNS)
    event(f"{mode}: {min(len(reading.bad), 3)}+ bad rows")


# --------------------------------------------------------------------------------------
# Encodings
# --------------------------------------------------------------------------------------

NOT_UTF8 = [b"\xff", b"\xe9", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80abc"]


@FUZZ
@given(doc=docs(min_rows=1), data=st.data())
def test_bytes_that_are_not_utf8_are_refused_where_they_are_read(scratch, predictor, doc, data):
    mode = data.draw(MODES)
    where = data.draw(st.sampled_from(["header", "read", "unread", "file"]))
    bad = data.draw(st.sampled_from(NOT_UTF8))
    read = set(FEATURES) | set(doc.keep)
    unread = [name for name in doc.header if name not in read]
    if where == "unread" and not unread:  # add a column the job does not read
        name = "unread" + "_" * len(doc.header)
        doc = replace(doc, header=(*doc.header, name), rows=tuple((*r, "u") for r in doc.rows))
        unread = [name]
    lines = doc.lines()
    row = data.draw(st.integers(1, len(doc.rows)))
    if where == "file":
        encoding = data.draw(st.sampled_from(["utf-16", "utf-32", "latin-1", "cp1252"]))
        raw = ("é" + doc.text()).encode(encoding, errors="replace")
        expected_line = 1
    elif where == "header":  # bytes at the end of the header's last name
        head, _, rest = doc.encode().partition(b"\n")
        end = b"\r" if head.endswith(b"\r") else b""
        raw = head.removesuffix(b"\r") + bad + end + b"\n" + rest
        expected_line = 1
    else:
        name = data.draw(st.sampled_from(sorted(read) if where == "read" else unread))
        cells = list(doc.rows[row - 1])
        marker = "\x00MARK\x00"
        cells[doc.column(name)] = marker + cells[doc.column(name)]
        lines[row] = doc.sep.join(map(doc.field, cells))
        raw = doc.text(lines).encode("utf-8").replace(marker.encode(), bad)
        expected_line = None if where == "unread" else line_of_row(doc, row)
    job = Job.make(scratch, raw, doc.suffix, ".csv", old=True)
    kwargs = {"bad_rows": "skip" if mode == "skip" else "error", "chunk_rows": data.draw(CHUNKS)}
    if expected_line is None:
        reading = read_reference(raw, doc.sep, list(doc.keep))
        report = job.run(predictor, doc.keep, **kwargs)
        check_scored(job, report, reading, doc.keep, predictor, exact=False)
        event("not UTF-8 in a column not read: scored")
        return
    with pytest.raises(BatchError, match="UTF-8") as info:
        job.run(predictor, doc.keep, **kwargs)
    err = info.value
    assert (err.file, err.line) == (str(job.source), expected_line), str(err)
    if where == "read":
        assert err.column == name and "is not UTF-8 text" in err.reason
    job.assert_untouched()
    event(f"not UTF-8 ({where}): BatchError")


def line_of_row(doc: Doc, row: int) -> int:
    """The line number of data row ``row`` (1-based), counting blank lines."""
    return 1 + row + sum(1 for i in doc.blank_after if i < row)


# --------------------------------------------------------------------------------------
# Quotes and line ends
# --------------------------------------------------------------------------------------


@FUZZ
@given(doc=docs(min_rows=1, quotes_in_text=False), data=st.data())
def test_quotes_left_open_and_bare_carriage_returns_stop_the_job(scratch, predictor, doc, data):
    how = data.draw(st.sampled_from(["open", "line break", "cr end", "cr inside"]))
    lines = doc.lines()
    row = data.draw(st.integers(1, len(doc.rows)))
    cells = list(doc.rows[row - 1])
    j = data.draw(st.integers(0, len(cells) - 1))
    column: str | None = doc.header[j]
    if how == "open":
        plain = replace(doc, quote_all=False)
        cells = [c.replace(doc.sep, " ") for c in cells]
        lines[row] = doc.sep.join(
            ('"' + c if k == j else plain.field(c)) for k, c in enumerate(cells)
        )
    elif how == "line break":
        cells[j] = cells[j] + data.draw(st.sampled_from(["\n", "\r\n", "\n\n", "\r"])) + "z"
        lines[row] = doc.sep.join(map(doc.field, cells))
    elif how == "cr end":
        lines[row] = lines[row] + "\r" + (lines[row + 1] if row + 1 < len(lines) else "x")
        del lines[row + 1 : row + 2]
        column = None
    else:
        at = data.draw(st.integers(0, len(lines[row])))
        lines[row] = lines[row][:at] + "\r" + lines[row][at:] + " "
        column = None
    data_bytes = doc.text(lines).encode("utf-8")
    line = line_of_row(doc, row)
    job = Job.make(scratch, data_bytes, doc.suffix, ".parquet", old=data.draw(st.booleans()))
    mode = data.draw(st.sampled_from(["error", "skip"]))
    with pytest.raises(BatchError) as info:
        job.run(predictor, doc.keep, bad_rows=mode, chunk_rows=data.draw(CHUNKS))
    err = info.value
    reading = read_reference(data_bytes, doc.sep, list(doc.keep))
    assert reading.broken == line
    assert (err.file, err.line) == (str(job.source), line), str(err)
    assert re.search(r"quote opened in this field|carriage return", err.reason), err.reason
    if column is not None:
        assert err.column == column, str(err)
    job.assert_untouched()
    event(f"{how}: BatchError")


# --------------------------------------------------------------------------------------
# Random damage
# --------------------------------------------------------------------------------------

DAMAGE = st.sampled_from(DAMAGE_KINDS)


def header_problem(data: bytes, doc: Doc) -> bool:
    """Whether the header line is unreadable or lacks (or repeats) a column the job needs."""
    head = data.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].removesuffix(b"\r")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return True
    if text.strip() == "" or "\r" in text or quote_left_open(text, doc.sep):
        return True
    header = next(csv.reader([text], delimiter=doc.sep), [])
    return any(header.count(name) != 1 for name in [*FEATURES, *doc.keep])


def justified(err: BatchError, data: bytes, doc: Doc) -> bool:
    """Whether the independent reader also finds something wrong where ``err`` says."""
    if header_problem(data, doc):
        return err.line == 1
    reading = read_reference(data, doc.sep, list(doc.keep))
    problems = {r.line for r in reading.bad}
    problems |= {n for n in (reading.broken, reading.undecodable) if n is not None}
    return err.line in problems


@settings(FUZZ, max_examples=600)
@given(doc=docs(), how=DAMAGE, data=st.data())
def test_random_damage_scores_correctly_or_raises_batch_error(scratch, predictor, doc, how, data):
    damaged = damage(
        doc.encode(),
        how,
        data,
        newlines=[b"\n", b"\r\n", b"\n\n", b" \n"],
        insert_max=6,
        separator=doc.sep.encode(),
    )
    mode = data.draw(st.sampled_from(["error", "skip"]))
    job = Job.make(scratch, damaged, doc.suffix, data.draw(OUTPUTS), old=data.draw(st.booleans()))
    try:
        report = job.run(predictor, doc.keep, bad_rows=mode, chunk_rows=data.draw(CHUNKS))
    except BatchError as err:
        assert err.file == str(job.source), str(err)
        assert err.line is not None, str(err)
        assert justified(err, damaged, doc), f"{err} ({damaged!r})"
        job.assert_untouched()
        event(f"{how}: BatchError")
        return
    # It scored: the independent reader must find a readable file with these rows.
    reading = read_reference(damaged, doc.sep, list(doc.keep))
    assert reading.broken is None and reading.undecodable is None, damaged
    if mode == "error":
        assert not reading.bad, (damaged, reading.bad[0])
    check_scored(job, report, reading, doc.keep, predictor, exact=False)
    event(f"{how}: scored")


# --------------------------------------------------------------------------------------
# Fixed cases
# --------------------------------------------------------------------------------------

HEADER = b"id,area,latitude,dist_mainland"
GOOD = b"a,1.5,40,2"


@pytest.mark.parametrize(
    ("data", "rows", "line", "column", "match"),
    [
        (b"", None, 1, None, "no header line"),
        (b"\n\n\n", None, 1, None, "no header line"),
        (b"\xef\xbb\xbf", None, 1, "area", "no such column"),
        (b"\x00\x00", None, 1, "area", "no such column"),
        (HEADER, 0, None, None, None),
        (HEADER + b"\n", 0, None, None, None),
        (HEADER + b"\r\n\r\n\n", 0, None, None, None),
        (b"\xef\xbb\xbf" + HEADER + b"\n" + GOOD + b"\n", 1, None, None, None),
        (HEADER + b"\n" + GOOD, 1, None, None, None),
        (HEADER + b"\n" + GOOD + b"\r", 1, None, None, None),  # a CR ends the last line
        ("id,area,latitude,dist_mainland\n".encode("utf-16"), None, 1, None, "not UTF-8"),
        (HEADER + b",\xe9\n" + GOOD + b",x\n", None, 1, None, "header is not UTF-8"),
        (HEADER.replace(b"\n", b"") + b"\r" + GOOD + b"\r", None, 1, None, "carriage return"),
        (HEADER + b',"note\n' + GOOD + b",x\n", None, 1, None, "quote opened"),
        (HEADER + b"," + b"n" * 200_000 + b"\n" + GOOD + b",x\n", None, 1, None, "header"),
        (HEADER + b"\n" + b"a," + b"1" * 200_000 + b",40,2\n", None, 2, "area", "not a finite"),
        (HEADER + b"\n" + b"a," + b"x" * 200_000 + b",40,2\n", None, 2, "area", "characters"),
        (HEADER + b"\n" + GOOD + b"\n\x00\n", None, 3, "area", "1 field"),
        (HEADER + b"\na\x00,1,40,2\n", 1, None, None, None),  # NUL in a kept id: copied
        (b"area\tlatitude\tdist_mainland\n1\t2\t3\n\t\t\n", None, 3, "area", "missing value"),
        (HEADER + b",n\na,1,40,2,x\nb,1,40,\xe9\n", None, 3, "dist_mainland", "not UTF-8"),
        (HEADER + b'\n"a\n\nb",1,40,2\nc,oops,40,2\n', None, 2, "id", "quote opened"),
        (HEADER + b"\na,1,40,2\rb,oops,40,2\n\n", None, 2, "dist_mainland", "carriage ret"),
        (HEADER + b'\na,1,40,2\n"b,1,40,2\n' + b"g,1,40,2\n" * 50, None, 3, "id", "quote"),
        (HEADER + b'\na,1,40,"2', None, 2, "dist_mainland", "quote opened"),
    ],
    ids=[
        "empty",
        "blank-lines",
        "bom-only",
        "nul-only",
        "header-without-newline",
        "header-only",
        "header-and-blank-lines",
        "bom",
        "no-final-newline",
        "cr-at-the-very-end",
        "utf16",
        "latin1-header",
        "cr-line-ends",
        "quote-open-in-header",
        "200k-column-name",  # crashed with csv.Error (field larger than field limit)
        "200k-digit-cell",  # crashed with csv.Error while describing the bad row
        "200k-letter-cell",  # a 200 KB message; now cut to 80 characters
        "nul-line",
        "nul-in-id",
        "tsv-line-of-tabs",  # all fields empty: was silently skipped as a blank line
        "short-row-not-utf8",  # pyarrow printed 'Exception ignored' tracebacks first
        "quoted-line-break-hid-a-bad-row",  # the bad row was silently dropped
        "bare-cr-hid-a-bad-row",  # the bad row was silently dropped
        "unterminated-quote-swallowed-rows",  # skip mode dropped 50 good rows as 1 bad
        "unterminated-quote-at-the-end",  # scored '2' from a cut file
    ],
)
@pytest.mark.parametrize("mode", ["error", "skip"])
def test_fixed_cases(scratch, predictor, capfd, data, rows, line, column, match, mode):
    suffix = ".tsv" if data.startswith(b"area\t") else ".csv"
    job = Job.make(scratch, data, suffix, ".csv", old=True)
    keep = ["id"] if data.lstrip(b"\xef\xbb\xbf").startswith(b"id,") else []
    if rows is not None:
        report = job.run(predictor, keep, bad_rows=mode)
        assert (report.rows_written, report.rows_bad) == (rows, 0)
        reading = read_reference(data, SEPARATORS[suffix], keep)
        check_scored(job, report, reading, keep, predictor, exact=True)
    elif mode == "skip" and line and line > 1 and re.search("field|finite|char|missing", match):
        report = job.run(predictor, keep, bad_rows=mode)  # a bad row: set aside
        assert report.rows_bad == 1
    else:
        with pytest.raises(BatchError, match=match) as info:
            job.run(predictor, keep, bad_rows=mode)
        err = info.value
        assert (err.file, err.line, err.column) == (str(job.source), line, column), str(err)
        assert len(str(err)) < 600
        job.assert_untouched()
    assert capfd.readouterr().err == ""  # nothing printed behind the caller's back


# --------------------------------------------------------------------------------------
# Parquet
# --------------------------------------------------------------------------------------

PARQUET_CELLS = {
    "float": st.one_of(
        VALUES,
        st.sampled_from([math.nan, math.inf, -math.inf, 1e39, -1e300, None]),
    ),
    "int": st.one_of(st.integers(-(2**53), 2**53), st.none()),
    "text": st.one_of(
        VALUES.map(repr),
        VALUES.map(lambda v: f" {v!r} "),
        st.sampled_from(["", "abc", "nan", "1,5", "0x10", "1e39", None]),
    ),
}
ARROW_TYPES = {"float": pa.float64(), "int": pa.int64(), "text": pa.string()}


def parquet_value(value) -> float | str:
    if value is None:
        return "missing"
    if isinstance(value, str):
        return cell_value(value)
    value = float(value)
    return value if math.isfinite(value) and abs(value) <= FLOAT32_MAX else "not finite"


@FUZZ
@given(data=st.data(), mode=MODES, out=OUTPUTS, chunk_rows=CHUNKS)
def test_parquet_files_score_or_report_the_row_and_column(
    scratch, predictor, data, mode, out, chunk_rows
):
    kinds = {name: data.draw(st.sampled_from(sorted(PARQUET_CELLS))) for name in FEATURES}
    n = data.draw(st.integers(0, 12))
    columns = {"id": [f"r{i}" for i in range(n)]}
    for name in FEATURES:
        cells = PARQUET_CELLS[kinds[name]]
        if data.draw(st.integers(0, 2)) == 0:
            columns[name] = data.draw(st.lists(cells, min_size=n, max_size=n))
        else:  # mostly good values
            columns[name] = [
                data.draw(cells) if data.draw(st.integers(0, 9)) == 0 else 1.5 for _ in range(n)
            ]
            if kinds[name] == "int":
                columns[name] = [v if v is None else int(v) for v in columns[name]]
            elif kinds[name] == "text":
                columns[name] = [v if not isinstance(v, float) else repr(v) for v in columns[name]]
    order = data.draw(st.permutations(["id", *FEATURES]))
    types = {name: ARROW_TYPES[kind] for name, kind in kinds.items()}
    table = pa.table({k: pa.array(columns[k], type=types.get(k, pa.string())) for k in order})
    directory = fresh(scratch)
    source = directory / "in.parquet"
    group = data.draw(st.integers(1, 8))
    pq.write_table(table, source, row_group_size=group)
    job = Job(directory, source, directory / f"out{out}", None)
    expected = []
    for i in range(n):
        values = {name: parquet_value(columns[name][i]) for name in FEATURES}
        bad = {name for name, v in values.items() if isinstance(v, str)}
        expected.append((i + 1, bad, [values[f] for f in FEATURES]))
    bad_rows = [(row, bad) for row, bad, _ in expected if bad]
    good = [
        Row(row, "", [f"r{row - 1}"], values, set()) for row, bad, values in expected if not bad
    ]
    bad_path = directory / "rejected.csv"
    option = {"error": "error", "skip": "skip", "file": bad_path}[mode]
    if mode == "error" and bad_rows:
        with pytest.raises(BatchError) as info:
            job.run(predictor, ["id"], bad_rows=option, chunk_rows=chunk_rows)
        err = info.value
        assert (err.file, err.row, err.line) == (str(source), bad_rows[0][0], None), str(err)
        assert err.column in bad_rows[0][1], str(err)
        assert BAD_ROW_REASON.search(err.reason), err.reason
        job.assert_untouched()
        event("parquet: error at the first bad row")
        return
    report = job.run(predictor, ["id"], bad_rows=option, chunk_rows=chunk_rows)
    assert (report.rows_read, report.rows_written, report.rows_bad) == (
        n,
        len(good),
        len(bad_rows),
    )
    names, kept, y = read_output(job.output, job.out_sep)
    assert names == ["id", "prediction"]
    assert [k[0] for k in kept] == [r.fields[0] for r in good]
    # one call with exactly these rows: one batch (default size, one row group), no bad row
    exact = chunk_rows is None and not bad_rows and n <= group
    assert_predictions(y, good, predictor, exact=exact)
    if mode == "file":
        with bad_path.open(newline="", encoding="utf-8") as f:
            rejected = list(csv.DictReader(f))
        assert [int(r["row"]) for r in rejected] == [row for row, _ in bad_rows]
        for got, (_, bad) in zip(rejected, bad_rows, strict=True):
            assert got["column"] in bad and got["line"] == ""
    event(f"parquet {mode}: {'some' if bad_rows else 'no'} bad rows")


def _parquet(directory: Path, table: pa.Table) -> Path:
    path = directory / "in.parquet"
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize(
    ("table", "column", "match"),
    [
        (pa.table({"area": [1.0], "latitude": [40.0]}), "dist_mainland", "no such column"),
        (
            pa.table({"area": [True], "latitude": [40.0], "dist_mainland": [1.0]}),
            "area",
            "holds bool",
        ),
        (
            pa.table(
                {
                    "area": pa.array(["1"]).dictionary_encode(),
                    "latitude": [40.0],
                    "dist_mainland": [1.0],
                }
            ),
            "area",
            "holds dictionary",
        ),
        (
            pa.table({"area": [[1.0]], "latitude": [40.0], "dist_mainland": [1.0]}),
            "area",
            "holds list",
        ),
    ],
    ids=["missing-column", "bool-column", "dictionary-column", "list-column"],
)
def test_parquet_columns_are_checked_before_any_row(scratch, predictor, table, column, match):
    directory = fresh(scratch)
    job = Job(directory, _parquet(directory, table), directory / "out.csv", None)
    with pytest.raises(BatchError, match=match) as info:
        job.run(predictor, [], bad_rows="skip")
    assert (info.value.file, info.value.column) == (str(job.source), column)
    job.assert_untouched()


@pytest.mark.parametrize("cut", [0, 4, 100, -8, -1])
def test_a_damaged_parquet_file_is_a_batch_error(scratch, predictor, cut):
    directory = fresh(scratch)
    table = pa.table({"area": [1.0, 2.0], "latitude": [40.0, 41.0], "dist_mainland": [1.0, 2.0]})
    source = _parquet(directory, table)
    raw = source.read_bytes()
    source.write_bytes(raw[:cut] if cut else b"")
    job = Job(directory, source, directory / "out.parquet", None)
    with pytest.raises(BatchError, match="not a readable Parquet file|cannot read it"):
        job.run(predictor, [])
    job.assert_untouched()


# --------------------------------------------------------------------------------------
# The command line, once
# --------------------------------------------------------------------------------------


def test_the_cli_counts_and_reports_like_the_independent_reader(scratch, capsys):
    from linreg.main import main

    doc = Doc(
        ".csv",
        ("id", "note", *reversed(FEATURES)),
        tuple((f"r{i}", "a, b" if i % 3 else "", "2", "41.5", f"{i % 7}.25") for i in range(40)),
        ("\r\n",) * 41,
        (5, 5, 20),
        True,
        True,
        False,
        ("id",),
    )
    lines = doc.lines()
    lines[3] = lines[3].replace("41.5", "forty")
    lines[10] = lines[10].rsplit(",", 1)[0]  # a missing field
    lines[30] = lines[30] + ",9"  # an extra one
    raw = doc.text(lines).encode("utf-8").replace(b"a, b", b"\xe9", 1)  # not read: fine
    directory = fresh(scratch)
    source = directory / "in.csv"
    source.write_bytes(raw)
    reading = read_reference(raw, ",", ["id"])
    assert len(reading.bad) == 3
    out, rejected = directory / "out.csv", directory / "rejected.csv"
    args = ["predict", str(MODEL), str(source), "-o", str(out), "--id-columns", "id"]
    assert main(args) == 1
    first = reading.bad[0]
    assert f"line {first.line}, column 'latitude': 'forty' is not a number" in (
        capsys.readouterr().err
    )
    assert not out.exists() and not temporaries(directory)
    assert main([*args, "--bad-rows", str(rejected)]) == 0
    err = capsys.readouterr().err
    assert f"scored {len(reading.good)} rows" in err and "3 bad row(s) set aside" in err
    with rejected.open(newline="", encoding="utf-8") as f:
        assert [int(r["line"]) for r in csv.DictReader(f)] == [r.line for r in reading.bad]
    names, kept, y = read_output(out, ",")
    assert [k[0] for k in kept] == [r.fields[0] for r in reading.good]
    assert not temporaries(directory)
