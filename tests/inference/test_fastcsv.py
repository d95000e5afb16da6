"""inference.io.csv.native: values equal Python's correctly rounded ``float(text)`` and
pyarrow's CSV reader bit for bit; every block outside the plain grammar answers None."""

from __future__ import annotations

import ctypes
import importlib.util
import io
import mmap
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, localcontext
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from inference.io.csv import native as fastcsv

pytestmark = pytest.mark.skipif(
    not fastcsv.available(),
    reason="the C extension inference.io.csv._fastcsv is not built (pip install -e . builds it)",
)

ROOT = Path(__file__).resolve().parents[2]


def parse_texts(texts: list[str], dtype: type = np.float64) -> np.ndarray | None:
    """The numbers as one column of one block: the values, or None if the block bailed."""
    block = ("\n".join(texts) + "\n").encode("ascii")
    out = np.full((len(texts), 1), np.nan, dtype=dtype)
    rows = fastcsv.parse_block(block, 1, ",", [0], out)
    if rows is None:
        return None
    assert rows == len(texts)
    return out[:, 0]


def expected(texts: list[str], dtype: type) -> np.ndarray:
    """Python's float() (correctly rounded), cast like numpy's astype for float32."""
    values = np.array([float(t) for t in texts], dtype=np.float64)
    return values if dtype is np.float64 else values.astype(np.float32)


def assert_same_bits(texts: list[str], dtype: type) -> None:
    # values beyond the dtype's range (1e309; 1e39 for float32) legitimately bail: left out
    with np.errstate(over="ignore"):
        texts = [t for t in texts if np.isfinite(dtype(float(t)))]
    got = parse_texts(texts, dtype)
    assert got is not None, f"bailed on {len(texts)} ordinary numbers, e.g. {texts[:3]}"
    want = expected(texts, dtype)
    bits = np.uint64 if dtype is np.float64 else np.uint32
    wrong = np.flatnonzero(got.view(bits) != want.view(bits))
    examples = [(texts[i], got[i], want[i]) for i in wrong[:5]]
    assert wrong.size == 0, f"{wrong.size} of {len(texts)} differ: {examples}"


def random_doubles(rng: np.random.Generator, n: int) -> np.ndarray:
    """Every finite double equally likely by bit pattern: all exponents, subnormals."""
    bits = rng.integers(0, 2**64, size=n, dtype=np.uint64, endpoint=False)
    values = bits.view(np.float64)
    return values[np.isfinite(values)]


def extremes() -> list[float]:
    tiny = 5e-324
    big = np.finfo(np.float64).max
    out = [tiny, 2 * tiny, 3 * tiny, 2.2250738585072014e-308, 2.225073858507201e-308]
    out += [big, np.nextafter(big, 0), 1.7976931348623157e308 / 3, 1e308, 8.98846567431158e307]
    out += [np.finfo(np.float32).max, np.finfo(np.float32).tiny, 1.401298464324817e-45]
    return [float(v) for v in out]


def swap_exponent_style(texts: list[str], rng: random.Random) -> list[str]:
    """Python writes ``e+05``: also use ``e05``, ``E+05`` and ``e5``."""
    out = []
    for t in texts:
        style = rng.randrange(4)
        if style == 1:
            t = t.replace("e+", "e")
        elif style == 2:
            t = t.replace("e", "E")
        elif style == 3 and "e" in t:
            mantissa, exp = t.split("e")
            t = f"{mantissa}e{int(exp)}"
        out.append(t)
    return out


def digit_strings(rng: random.Random, n: int, exponents: range) -> list[str]:
    """1..19 significant digits, leading zeros, a point anywhere, a random exponent."""
    out = []
    for _ in range(n):
        count = rng.randint(1, 19)
        digits = str(rng.randint(1, 9)) + "".join(
            rng.choice("0123456789") for _ in range(count - 1)
        )
        digits = "0" * rng.choice([0, 0, 0, 1, 3, 12]) + digits
        point = rng.randint(1, len(digits))
        text = digits if point == len(digits) else f"{digits[:point]}.{digits[point:]}"
        if rng.random() < 0.8:
            text += f"e{rng.choice(exponents)}"
        if rng.random() < 0.5:
            text = "-" + text
        out.append(text)
    return out


def halfway_texts(rng: np.random.Generator, n: int) -> list[str]:
    """Decimal midpoints between consecutive doubles: exact when they have at most 19
    significant digits, else cut to 19 digits and rounded up (just below and above)."""
    values = np.concatenate(
        [
            random_doubles(rng, n // 2),
            # doubles with ulp 2**-3 .. 2**11, where exact midpoints have <= 19 digits
            np.ldexp(rng.integers(2**52, 2**53, size=n // 2), rng.integers(-3, 12, size=n // 2)),
        ]
    )
    out = []
    with localcontext() as ctx:
        ctx.prec = 1200
        for x in np.abs(values):
            x = float(x)
            up = float(np.nextafter(x, np.inf))
            if not np.isfinite(up):
                continue
            mid = (Decimal(x) + Decimal(up)) / 2
            sign, digits, exp = mid.normalize().as_tuple()
            if len(digits) <= 19:
                out.append(str(mid.normalize()))
                continue
            head = int("".join(map(str, digits[:19])))
            shift = exp + len(digits) - 19
            out.append(f"{head}e{shift}")
            out.append(f"{head + 1}e{shift}")
    return out


DTYPES = [np.float64, np.float32]


@pytest.mark.parametrize("dtype", DTYPES)
def test_repr_of_random_doubles(dtype):
    rng = np.random.default_rng(0)
    values = np.concatenate([random_doubles(rng, 100_000), rng.normal(size=20_000)])
    texts = [repr(float(v)) for v in values] + [repr(v) for v in extremes()]
    texts += [repr(-v) for v in extremes()]
    assert_same_bits(texts, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", ["%.17g", "%.9g", "%.3e", "%.16e", "%.19g"])
def test_printf_formats(dtype, fmt):
    rng = np.random.default_rng(1)
    values = np.concatenate([random_doubles(rng, 20_000), rng.normal(size=5_000) * 1e5])
    texts = [fmt % v for v in values] + [fmt % v for v in extremes()]
    assert_same_bits(swap_exponent_style(texts, random.Random(1)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_random_digit_strings(dtype):
    rng = random.Random(2)
    texts = digit_strings(rng, 40_000, range(-30, 31))
    texts += digit_strings(rng, 40_000, range(-360, 330))
    assert_same_bits(texts, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_halfway_cases(dtype):
    texts = ["9007199254740993", "9007199254740995", "-9007199254740993", "9.007199254740993e15"]
    texts += ["900719925474099.3e1", "0.9007199254740993e16", "4503599627370496.5"]
    texts += ["4503599627370497.5", "2.2250738585072011e-308", "2.4703282292062328e-324"]
    texts += halfway_texts(np.random.default_rng(3), 10_000)
    assert_same_bits(texts, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_powers_of_ten_integers_and_zeros(dtype):
    texts = [f"1e{q}" for q in range(-400, 309)] + [
        f"-9.999999999999999999e{q}" for q in range(-400, 308)
    ]
    rng = random.Random(4)
    texts += [str(rng.randrange(10 ** rng.randint(1, 19))) for _ in range(20_000)]
    texts += [str(2**k) for k in range(64)] + [str(2**k - 1) for k in range(1, 64)]
    texts += ["0", "-0", "-0.000", "0.0", "000", "-0e5", "0e-999", "-0.0e+0", "00012", "0.5e1"]
    texts += ["1" + "0" * 18, "9" * 19, "0." + "0" * 30 + "1234567890123456789", "-0" * 1]
    assert_same_bits(texts, dtype)
    zeros = parse_texts(["-0", "-0.000", "0", "-0e7"])
    assert zeros is not None
    assert list(np.signbit(zeros)) == [True, True, False, True]


def feature_table(rng: np.random.Generator, n: int):
    """An id column and 16 float64 features: normal, wide exponents, integers."""
    pa = pytest.importorskip("pyarrow")
    X = rng.normal(size=(n, 16))
    X[:, 3] *= 10.0 ** rng.integers(-50, 35, size=n)  # float32: subnormals, no overflow
    X[:, 7] = np.round(X[:, 7] * 1000)
    X[:, 11] = rng.normal(size=n).astype(np.float32)
    columns = {"id": pa.array(np.arange(n) * 7919)}
    columns.update({f"x{i}": pa.array(X[:, i]) for i in range(16)})
    return pa.table(columns)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_blocks_equal_pyarrow(dtype, delimiter):
    pa = pytest.importorskip("pyarrow")
    pacsv = pytest.importorskip("pyarrow.csv")
    table = feature_table(np.random.default_rng(5), 3000)
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(delimiter=delimiter))
    text = sink.getvalue()
    body = pa.py_buffer(text[text.index(b"\n") + 1 :])
    names = [f"x{i}" for i in range(16)]
    read = pacsv.read_csv(
        io.BytesIO(text),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=pacsv.ConvertOptions(
            include_columns=names, column_types=dict.fromkeys(names, pa.float64())
        ),
    )
    want = np.column_stack([read.column(n).to_numpy() for n in names]).astype(dtype)
    # the features in reverse order, to check the column map
    columns = [-1] + list(range(15, -1, -1))
    out = np.empty((table.num_rows + 5, 16), dtype=dtype)
    rows = fastcsv.parse_block(body, 17, delimiter, columns, out)
    assert rows == table.num_rows
    bits = np.uint64 if dtype is np.float64 else np.uint32
    np.testing.assert_array_equal(out[:rows, ::-1].view(bits), want.view(bits))


def test_last_line_without_newline_and_empty_block():
    out = np.zeros((3, 2))
    assert fastcsv.parse_block(b"a,1.5,2\nb,-3,4e1", 3, ",", [-1, 0, 1], out) == 2
    np.testing.assert_array_equal(out[:2], [[1.5, 2.0], [-3.0, 40.0]])
    assert fastcsv.parse_block(b"", 3, ",", [-1, 0, 1], out) == 0
    assert fastcsv.parse_block(memoryview(b"x\t7\n"), 2, "\t", [-1, 0], out[:, :1].copy()) == 1


BAIL = {
    "empty line": b"a,1,2\n\nb,3,4\n",
    "only a newline": b"\n",
    "empty last line after text": b"a,1,2\n\n",
    "too many fields": b"a,1,2,3\n",
    "too few fields": b"a,1\n",
    "other delimiter": b"a;1;2\n",
    "space before": b"a, 1,2\n",
    "space after": b"a,1 ,2\n",
    "plus sign": b"a,+1,2\n",
    "no integer digit": b"a,.5,2\n",
    "no fraction digit": b"a,5.,2\n",
    "bare minus": b"a,-,2\n",
    "double minus": b"a,--1,2\n",
    "nan": b"a,nan,2\n",
    "NaN": b"a,NaN,2\n",
    "inf": b"a,inf,2\n",
    "-inf": b"a,-inf,2\n",
    "empty read field": b"a,,2\n",
    "exponent without digits": b"a,1e,2\n",
    "exponent sign only": b"a,1e+,2\n",
    "point then exponent": b"a,1.e5,2\n",
    "five exponent digits": b"a,1e00001,2\n",
    "two points": b"a,1.2.3,2\n",
    "hex": b"a,0x10,2\n",
    "underscore": b"a,1_000,2\n",
    "20 significant digits": b"a,12345678901234567890,2\n",
    "20 digits after leading zeros": b"a,0.00012345678901234567890,2\n",
    "quote in unread field": b'"a",1,2\n',
    "quote inside unread field": b'a"b,1,2\n',
    "quoted number": b'a,"1",2\n',
    "carriage return": b"a,1,2\r\n",
    "carriage return in unread field": b"a\rb,1,2\n",
    "UTF-8 in unread field": "é,1,2\n".encode(),
    "double overflow": b"a,1e309,2\n",
    "negative double overflow": b"a,-1.8e308,2\n",
    "tab in a comma block": b"a,1\t,2\n",
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(BAIL))
def test_not_plain_bails(case, dtype):
    out = np.zeros((8, 2), dtype=dtype)
    assert fastcsv.parse_block(BAIL[case], 3, ",", [-1, 0, 1], out) is None
    # the same block made plain parses: the bail is about that one defect
    assert fastcsv.parse_block(b"a,1,2\nb,3,4\n", 3, ",", [-1, 0, 1], out) == 2


NUMBER = re.compile(rb"-?([0-9]+)(?:\.([0-9]+))?(?:[eE][+-]?([0-9]+))?")


def reference_parse(block: bytes, columns: list[int], capacity: int, dtype: type):
    """The grammar of the module docstring, in Python: the rows, or None if not plain."""
    lines = block.split(b"\n")
    if block.endswith(b"\n") or not block:
        lines.pop()
    if len(lines) > capacity:
        return None
    rows = []
    for line in lines:
        fields = line.split(b",")
        if not line or len(fields) != len(columns):
            return None
        row = [0.0] * sum(c >= 0 for c in columns)
        for text, c in zip(fields, columns, strict=True):
            if c < 0:
                if b'"' in text or b"\r" in text or not text.isascii():
                    return None
                continue
            m = NUMBER.fullmatch(text)
            if m is None or len((m[1] + (m[2] or b"")).lstrip(b"0")) > 19:
                return None
            if m[3] is not None and len(m[3]) > 4:
                return None
            with np.errstate(over="ignore"):
                value = dtype(float(text))
            if not np.isfinite(value):
                return None
            row[c] = value
        rows.append(row)
    return rows


def random_field(rng: random.Random) -> bytes:
    """Mostly numbers (some broken on purpose), sometimes other text."""
    kind = rng.random()
    if kind < 0.85:
        text = rng.choice(["", "-"]) + str(rng.randint(0, 10 ** rng.randint(0, 21)))
        if rng.random() < 0.5:
            text += "." + str(rng.randint(0, 10 ** rng.randint(0, 8))).zfill(rng.randint(1, 6))
        if rng.random() < 0.4:
            text += rng.choice("eE") + rng.choice(["", "+", "-"]) + str(rng.randint(0, 400))
        text = text.encode()
    else:
        text = bytes(rng.choice(b'0123456789.-+eE \t"\rxn\xc3') for _ in range(rng.randint(0, 4)))
    if rng.random() < 0.04 and text:  # one byte changed
        i = rng.randrange(len(text))
        text = text[:i] + bytes([rng.choice(b'0.-e,\n "')]) + text[i + 1 :]
    return text


@pytest.mark.parametrize("dtype", DTYPES)
def test_random_blocks_match_the_grammar(dtype):
    """Differential test on random, often broken blocks against :func:`reference_parse`."""
    rng = random.Random(7)
    columns = [-1, 1, 0]
    outcomes = {"parsed": 0, "bailed": 0}
    for _ in range(4000):
        lines = [b",".join(random_field(rng) for _ in range(3)) for _ in range(rng.randint(0, 3))]
        block = b"\n".join(lines) + (b"\n" if rng.random() < 0.7 else b"")
        capacity = rng.randint(0, 4)
        out = np.zeros((capacity, 2), dtype=dtype)
        rows = fastcsv.parse_block(block, 3, ",", columns, out)
        want = reference_parse(block, columns, capacity, dtype)
        if want is None:
            assert rows is None, block
            outcomes["bailed"] += 1
        else:
            assert rows == len(want), block
            expected = np.array(want, dtype=dtype).reshape(rows, 2)
            np.testing.assert_array_equal(out[:rows], expected, err_msg=repr(block))
            assert np.array_equal(np.signbit(out[:rows]), np.signbit(expected)), block
            outcomes["parsed"] += 1
    assert min(outcomes.values()) > 200, outcomes  # both sides exercised


def test_float32_overflow_bails_only_for_float32():
    block = b"a,1e39,2\n"
    assert fastcsv.parse_block(block, 3, ",", [-1, 0, 1], np.zeros((1, 2), np.float32)) is None
    out = np.zeros((1, 2))
    assert fastcsv.parse_block(block, 3, ",", [-1, 0, 1], out) == 1
    assert out[0, 0] == 1e39


def test_rows_beyond_capacity_bail():
    out = np.zeros((2, 1))
    assert fastcsv.parse_block(b"1\n2\n", 1, ",", [0], out) == 2
    assert fastcsv.parse_block(b"1\n2\n3", 1, ",", [0], out) is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"delimiter": ",,"}, "delimiter"),
        ({"delimiter": "."}, "delimiter"),
        ({"columns": [-1, 0, 0]}, "columns"),
        ({"columns": [-1, 0, 2]}, "columns"),
        ({"columns": [0, 1]}, "columns"),
        ({"out": np.zeros((2, 2), np.int64)}, "dtype"),
        ({"out": np.zeros((2, 2))[:, ::-1]}, "C-contiguous"),
        ({"out": np.zeros(4)}, "2-dimensional"),
    ],
)
def test_wrong_arguments_raise(kwargs, match):
    args = {"delimiter": ",", "columns": [-1, 0, 1], "out": np.zeros((2, 2))} | kwargs
    with pytest.raises(ValueError, match=match):
        fastcsv.parse_block(b"a,1,2\n", 3, args["delimiter"], args["columns"], args["out"])


def test_threads_parse_at_once():
    """The GIL is released while parsing: several threads, each its own result."""
    rng = np.random.default_rng(6)
    blocks = []
    for _ in range(4):
        values = rng.normal(size=(20_000, 4))
        text = "".join(
            f"r{i}," + ",".join(repr(float(v)) for v in row) + "\n" for i, row in enumerate(values)
        )
        blocks.append((text.encode(), values))

    def work(i: int) -> tuple[int | None, np.ndarray]:
        out = np.empty((20_000, 4))
        return fastcsv.parse_block(blocks[i][0], 5, ",", [-1, 0, 1, 2, 3], out), out

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(4)))
    for (rows, out), (_, values) in zip(results, blocks, strict=True):
        assert rows == 20_000
        np.testing.assert_array_equal(out, values)


VARIANTS = {
    # the plain C fallbacks of the 128-bit product, the leading-zero count and the
    # digit parsing (what compilers without those builtins, or big-endian machines, run)
    "portable": "-DFASTCSV_PORTABLE",
    # 8-digit SWAR parsing and byte-by-byte field skipping, without the SSE2 code
    "no-simd": "-DFASTCSV_NO_SIMD",
}


def build_variant(tmp_path_factory: pytest.TempPathFactory, name: str) -> ModuleType:
    """The extension compiled with one of :data:`VARIANTS`' flags, in a temporary folder."""
    ldshared = (sysconfig.get_config_var("LDSHARED") or "").split()
    if not ldshared or shutil.which(ldshared[0]) is None:
        pytest.skip(f"no C compiler to build the {name} variant")
    target = tmp_path_factory.mktemp(name) / f"_fastcsv{sysconfig.get_config_var('EXT_SUFFIX')}"
    csrc = ROOT / "inference" / "io" / "csv" / "csrc"
    sources = [str(csrc / "module.c"), str(csrc / "parse.c")]
    include = sysconfig.get_paths()["include"]
    # the sanitizer run (scripts/sanitize.sh) builds the variants with its flags too
    extra = shlex.split(os.environ.get("LINREG_NATIVE_CFLAGS", ""))
    extra += shlex.split(os.environ.get("LINREG_NATIVE_LDFLAGS", ""))
    command = [*ldshared, "-fPIC", "-O2", VARIANTS[name], *extra, f"-I{include}", f"-I{csrc}"]
    command += sources
    done = subprocess.run([*command, "-o", str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot build the {name} variant: {done.stderr[-500:]}")
    spec = importlib.util.spec_from_file_location("_fastcsv", target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant_extension(request, tmp_path_factory):
    return build_variant(tmp_path_factory, request.param)


@pytest.mark.parametrize("dtype", DTYPES)
def test_variants_convert_the_same(variant_extension, monkeypatch, dtype):
    monkeypatch.setattr(fastcsv, "_ext", variant_extension)
    rng = np.random.default_rng(8)
    texts = [repr(float(v)) for v in random_doubles(rng, 20_000)]
    texts += digit_strings(random.Random(8), 20_000, range(-360, 330))
    texts += halfway_texts(rng, 2_000) + [f"1e{q}" for q in range(-400, 309)]
    assert_same_bits(texts, dtype)
    assert fastcsv.parse_block(b"a,1,2\n\n", 3, ",", [-1, 0, 1], np.zeros((2, 2))) is None


def vector_edge_field(rng: random.Random) -> bytes:
    """Digit runs and unread text of 0..40 bytes, so that numbers, runs of digits and
    the bytes that end a field fall anywhere in and across 16-byte loads."""
    kind = rng.random()
    if kind < 0.6:
        zeros = "0" * rng.choice([0, 0, 0, 1, 5, 15, 16, 17, 31])
        head = zeros + str(rng.randint(0, 10 ** rng.randint(0, 19)))
        text = rng.choice(["", "-"]) + head
        if rng.random() < 0.7:
            fraction = "0" * rng.choice([0, 0, 1, 7, 15, 16]) + str(rng.randint(0, 10**19))
            text += "." + fraction[: rng.randint(1, rng.choice([17, 40]))]
        if rng.random() < 0.2:
            text += rng.choice("eE") + rng.choice(["", "+", "-"]) + str(rng.randint(0, 300))
        out = text.encode()
    elif kind < 0.95:
        out = bytes(rng.choice(b"abcxyz019.-+ _/") for _ in range(rng.randint(0, 40)))
    else:
        out = bytes(rng.choice(b'abc019.-,"\r\t\x80\xff') for _ in range(rng.randint(0, 40)))
    if rng.random() < 0.03 and out:  # one byte changed
        i = rng.randrange(len(out))
        out = out[:i] + bytes([rng.choice(b'0.-e,\n"\r\x80')]) + out[i + 1 :]
    return out


def random_vector_edge_blocks(seed: int, count: int) -> list[tuple[bytes, list[int], int]]:
    """(block, columns, capacity): 1..4 fields a line, any of them read or not."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        n_columns = rng.randint(1, 4)
        read = [j for j in range(n_columns) if rng.random() < 0.7]
        columns = [-1] * n_columns
        for c, j in enumerate(read):
            columns[j] = c
        lines = [
            b",".join(vector_edge_field(rng) for _ in range(n_columns))
            for _ in range(rng.randint(0, 4))
        ]
        block = b"\n".join(lines) + (b"\n" if rng.random() < 0.7 else b"")
        out.append((block, columns, rng.randint(0, 6)))
    return out


def parse_with(module: ModuleType, block: Any, columns: list[int], capacity: int, dtype: type):
    k = sum(c >= 0 for c in columns)
    out = np.zeros((capacity, k), dtype=dtype)
    rows = module.parse_block(block, len(columns), ord(","), tuple(columns), out)
    return None if rows is None else out[:rows]


@pytest.mark.parametrize("dtype", DTYPES)
def test_vector_code_matches_the_variants_and_the_grammar(variant_extension, dtype):
    """Differential test of the built extension (SSE2 digit runs and field skipping on
    x86-64) against a variant without that code and against :func:`reference_parse`,
    on blocks whose fields straddle 16-byte boundaries and whose lengths are anything."""
    outcomes = {"parsed": 0, "bailed": 0}
    bits = np.uint64 if dtype is np.float64 else np.uint32
    for block, columns, capacity in random_vector_edge_blocks(11, 4000):
        got = parse_with(fastcsv._ext, block, columns, capacity, dtype)
        other = parse_with(variant_extension, block, columns, capacity, dtype)
        want = reference_parse(block, columns, capacity, dtype)
        if want is None:
            assert got is None and other is None, block
            outcomes["bailed"] += 1
            continue
        assert got is not None and other is not None, block
        expected = np.array(want, dtype=dtype).reshape(got.shape)
        np.testing.assert_array_equal(got.view(bits), expected.view(bits), err_msg=repr(block))
        np.testing.assert_array_equal(other.view(bits), expected.view(bits), err_msg=repr(block))
        outcomes["parsed"] += 1
    assert min(outcomes.values()) > 300, outcomes  # both sides exercised


@pytest.fixture
def guarded_pages():
    """Three pages of memory, the first and the last unreadable (Linux: mprotect), as
    (writable view of the middle page, page size); a read past either end crashes."""
    if not sys.platform.startswith("linux"):
        pytest.skip("guard pages by mprotect are set up on Linux only")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    page = mmap.PAGESIZE
    memory = mmap.mmap(-1, 3 * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(memory))
    for address in (base, base + 2 * page):
        assert libc.mprotect(address, page, 0) == 0, ctypes.get_errno()  # PROT_NONE
    view = memoryview(memory)[page : 2 * page]
    yield view, page
    view.release()
    for address in (base, base + 2 * page):
        libc.mprotect(address, page, 3)  # PROT_READ | PROT_WRITE, so it can be unmapped
    memory.close()


@pytest.mark.parametrize("at", ["page start", "page end"])
def test_blocks_between_unreadable_pages(guarded_pages, at):
    """No load starts before the block or ends after it (this process would crash)."""
    view, page = guarded_pages
    cases = [(b, c, k) for b, c, k in random_vector_edge_blocks(12, 1500) if b]
    cases += [(b"1", [0], 1), (b"-0.1234567890123456", [0], 1), (b"a" * 40, [-1], 1)]
    cases += [(b"1.00000000000000000000000001", [0], 1), (b"0" * 50 + b"7\n", [0], 1)]
    for block, columns, capacity in cases:
        start = 0 if at == "page start" else page - len(block)
        view[start : start + len(block)] = block
        got = parse_with(fastcsv._ext, view[start : start + len(block)], columns, capacity, float)
        want = reference_parse(block, columns, capacity, float)
        if want is None:
            assert got is None, block
        else:
            assert got is not None, block
            np.testing.assert_array_equal(got, np.array(want).reshape(got.shape))


def test_pow5_table_is_generated():
    """csrc/pow5.h is what scripts/gen_pow5_table.py writes (Python big integers)."""
    spec = importlib.util.spec_from_file_location(
        "gen_pow5_table", ROOT / "scripts/gen_pow5_table.py"
    )
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.HEADER == ROOT / "inference/io/csv/csrc/pow5.h"
    assert gen.HEADER.read_text(encoding="ascii") == gen.render()
    # spot checks of the definition: 5**q truncated, and 1/5 rounded up
    assert gen.power_of_five_128(0) == 1 << 127
    assert gen.power_of_five_128(1) == 5 << 125
    assert gen.power_of_five_128(-1) == (2**130 // 5) + 1
    entry = gen.power_of_five_128(100)
    assert entry >> 127 == 1 and 5**100 >> (5**100).bit_length() - 128 == entry


@pytest.mark.slow
def test_benchmark_script_runs():
    """benchmarks/bench_fastcsv.py at a tiny size (it checks both parsers agree)."""
    pytest.importorskip("pyarrow")
    script = ROOT / "benchmarks" / "bench_fastcsv.py"
    done = subprocess.run(
        [sys.executable, str(script), "--rows", "3000", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "fastcsv" in done.stdout and "pyarrow" in done.stdout
