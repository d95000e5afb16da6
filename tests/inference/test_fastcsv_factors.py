"""inference.io.csv.native with factor fields and a column-major output: each factor field
coded as its level's index (-2 when empty) exactly where pyarrow's CSV reader reads that
level, and every block outside the grammar answers None."""

from __future__ import annotations

import io
import random

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from inference.io.chunks import factor_codes
from inference.io.csv import native as fastcsv
from tests.inference.test_fastcsv import NUMBER

pytestmark = pytest.mark.skipif(
    not fastcsv.available(),
    reason="the C extension inference.io.csv._fastcsv is not built (pip install -e . builds it)",
)

#: levels of every factor: UTF-8, a delimiter inside, digits, a space inside
LEVELS = ("a", "bc", "north", "été", "x,y", "L00", "12", "a b")
INDEX = {level.encode(): j for j, level in enumerate(LEVELS)}


def factor_field(rng: random.Random) -> bytes:
    """Mostly levels (some quoted), sometimes empty, unknown or broken text."""
    kind = rng.random()
    level = rng.choice(LEVELS).encode()
    if kind < 0.55:
        return level
    if kind < 0.7:
        return b'"' + level + b'"'
    if kind < 0.78:
        return rng.choice([b"", b'""'])
    if kind < 0.9:
        return rng.choice([b" a", b"a ", b"North", b"nort", b"13", b"\xc3\xa9", b"\xff"])
    return rng.choice([b'"a', b'"a"b', b'"a""b"', b'a"', b"a\r", b'"x\r"', b'"', b'""""'])


def number_field(rng: random.Random) -> bytes:
    text = rng.choice(["", "-"]) + str(rng.randint(0, 10**6))
    if rng.random() < 0.5:
        text += "." + str(rng.randint(0, 999)).zfill(3)
    return (
        rng.choice([text.encode(), text.encode(), b"", b"x"])
        if rng.random() < 0.05
        else text.encode()
    )


def random_blocks(seed: int, count: int) -> list[tuple[bytes, list[int], int]]:
    """(block, columns, factors): 1..5 fields a line, numbers, unread fields and factors."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        kinds = [rng.choice("nnfu") for _ in range(rng.randint(1, 5))]
        columns, k, f = [], 0, 0
        for kind in kinds:
            if kind == "n":
                columns.append(k)
                k += 1
            elif kind == "f":
                columns.append(-2 - f)
                f += 1
            else:
                columns.append(-1)
        lines = []
        for _ in range(rng.randint(1, 6)):
            fields = [
                number_field(rng) if kind == "n" else factor_field(rng) if kind == "f" else b"id"
                for kind in kinds
            ]
            lines.append(b",".join(fields))
        out.append((b"\n".join(lines) + rng.choice([b"\n", b""]), columns, f))
    return out


def split_line(line: bytes, columns: list[int]) -> list[tuple[bytes, bool]] | None:
    """The fields of a line (text, quoted) by the grammar: only a factor field may be
    quoted, with no quote, CR or LF inside; None when the line is not plain."""
    fields, pos = [], 0
    for j, c in enumerate(columns):
        if c < -1 and line[pos : pos + 1] == b'"':
            close = line.find(b'"', pos + 1)
            if close < 0 or line[close + 1 : close + 2] == b'"':
                return None
            text, pos = line[pos + 1 : close], close + 1
            if b"\r" in text:
                return None
            fields.append((text, True))
        else:
            end = line.find(b",", pos)
            end = len(line) if end < 0 else end
            fields.append((line[pos:end], False))
            pos = end
        last = j == len(columns) - 1
        if (last and pos != len(line)) or (not last and line[pos : pos + 1] != b","):
            return None
        pos += 1
    return fields


def reference(block: bytes, columns: list[int], n_factors: int):
    """The rows and codes the grammar gives (numbers as Python's float), or None."""
    lines = block.split(b"\n")
    if block.endswith(b"\n") or not block:  # an empty block has no rows
        lines.pop()
    rows, codes = [], []
    for line in lines:
        fields = split_line(line, columns) if line else None
        if fields is None:
            return None
        row, code = [0.0] * sum(c >= 0 for c in columns), [0] * n_factors
        for (text, quoted), c in zip(fields, columns, strict=True):
            if c >= 0:
                if quoted or NUMBER.fullmatch(text) is None:
                    return None
                row[c] = float(text)
            elif c == -1:
                if b'"' in text or b"\r" in text or not text.isascii():
                    return None
            elif (not quoted and (b'"' in text or b"\r" in text)) or (text and text not in INDEX):
                return None
            else:
                code[-2 - c] = INDEX[text] if text else -2
        rows.append(row)
        codes.append(code)
    return rows, codes


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_factor_fields_follow_the_grammar(order, dtype):
    outcomes = {"parsed": 0, "bailed": 0}
    for block, columns, n_factors in random_blocks(5, 3000):
        capacity = block.count(b"\n") + 1
        X = np.zeros((capacity, sum(c >= 0 for c in columns)), dtype=dtype, order=order)
        codes = np.zeros((n_factors, capacity), dtype=np.int64)
        levels = [LEVELS] * n_factors
        rows = fastcsv.parse_block(block, len(columns), ",", columns, X, levels, codes)
        want = reference(block, columns, n_factors)
        if want is None:
            assert rows is None, block
            outcomes["bailed"] += 1
            continue
        assert rows == len(want[0]), block
        k = X.shape[1]
        np.testing.assert_array_equal(X[:rows], np.array(want[0], dtype=dtype).reshape(rows, k))
        np.testing.assert_array_equal(codes[:, :rows].T, np.array(want[1]).reshape(rows, n_factors))
        outcomes["parsed"] += 1
    assert min(outcomes.values()) > 500, outcomes  # both sides exercised


def test_codes_equal_pyarrows_reading_of_the_same_blocks():
    """Where the C parser codes a block, pyarrow's CSV reader reads the same levels (its
    dictionary arrays coded by :func:`inference.io.chunks.factor_codes`)."""
    compared = 0
    index = dict(zip(LEVELS, range(len(LEVELS)), strict=True))
    for block, columns, n_factors in random_blocks(6, 2000):
        if n_factors == 0:
            continue
        capacity = block.count(b"\n") + 1
        X = np.zeros((capacity, sum(c >= 0 for c in columns)))
        codes = np.zeros((n_factors, capacity), dtype=np.int64)
        rows = fastcsv.parse_block(
            block, len(columns), ",", columns, X, [LEVELS] * n_factors, codes
        )
        if not rows:
            continue
        names = [f"c{j}" for j in range(len(columns))]
        text = pa.dictionary(pa.int32(), pa.string())
        table = pacsv.read_csv(
            io.BytesIO(block),
            read_options=pacsv.ReadOptions(column_names=names),
            convert_options=pacsv.ConvertOptions(
                column_types={n: text for n, c in zip(names, columns, strict=True) if c < -1},
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
        assert table.num_rows == rows
        for name, c in zip(names, columns, strict=True):
            if c < -1:
                got = factor_codes(table.column(name), index)
                np.testing.assert_array_equal(got, codes[-2 - c, :rows], err_msg=repr(block))
        compared += 1
    assert compared > 300


def test_a_column_major_matrix_and_the_arguments_checked():
    X = np.zeros((3, 2), order="F")
    codes = np.zeros((1, 3), dtype=np.int64)
    assert fastcsv.parse_block(b'1,"a",2\n3,,4\n', 3, ",", [0, -2, 1], X, [("a",)], codes) == 2
    assert X[:, 0].tolist() == [1.0, 3.0, 0.0] and X[:, 1].tolist() == [2.0, 4.0, 0.0]
    assert codes[0, :2].tolist() == [0, -2]
    for columns in ([0, -2, -2, 1], [0, -3, -1, 1]):  # a factor twice, one not given
        with pytest.raises(ValueError, match="factor"):
            fastcsv.parse_block(b"1,a,a,2\n", 4, ",", columns, X, [("a",)], codes)
    for bad in [np.zeros((1, 3), np.int32), np.zeros((2, 3), np.int64), np.zeros((3, 1), np.int64)]:
        with pytest.raises(ValueError, match="codes"):
            fastcsv.parse_block(b"1,a,2\n", 3, ",", [0, -2, 1], X, [("a",)], bad)
    with pytest.raises(ValueError, match="C-contiguous"):
        fastcsv.parse_block(
            b"1,a,2\n", 3, ",", [0, -2, 1], np.zeros((3, 4))[:, ::2], [("a",)], codes
        )


def test_the_extension_checks_its_own_arguments():
    """The C function refuses what the Python face would (called directly)."""
    ext = fastcsv._ext
    X = np.zeros((2, 1))
    codes = np.zeros((1, 2), dtype=np.int64)
    block, comma = b"1,a\n", ord(",")
    assert ext.parse_block(block, 2, comma, (0, -2), X, ((b"a",),), codes) == 1
    cases = [
        ((0, -3), ((b"a",),), codes),  # no factor 1
        ((0, -2), ((b"a",),), None),  # no codes
        ((0, -2), ((b"a",),), np.zeros((1, 3), np.int64)),  # codes of another capacity
        ((0, -2), ((b"a",),), np.zeros((1, 2), np.float64)),  # codes not int64
        ((0, -2), (["a"],), codes),  # levels not a tuple of bytes
        ((0, -2), (("a",),), codes),
        ((0, -2), ((b"a",),), np.zeros((1, 4), np.int64)[:, ::2]),  # not C-contiguous
    ]
    for columns, levels, out_codes in cases:
        with pytest.raises((ValueError, BufferError)):
            ext.parse_block(block, 2, comma, columns, X, levels, out_codes)
    with pytest.raises(ValueError, match="C-contiguous"):
        ext.parse_block(block, 2, comma, (0, -2), np.zeros((2, 4))[:, ::4], ((b"a",),), codes)
