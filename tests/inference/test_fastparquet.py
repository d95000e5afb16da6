"""inference.io.parquet.native: column chunks decode to the bytes pyarrow decodes (then
cast by numpy), for files pyarrow writes; everything else answers False, never crashes."""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inference.io.parquet import native as fp

pa = pytest.importorskip("pyarrow", reason="pyarrow writes the test files")
pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow writes the test files")

pytestmark = pytest.mark.skipif(
    not fp.available(),
    reason="the C extension inference.io.parquet._fastparquet is not built (pip install -e . "
    "builds it on POSIX systems)",
)

ROWS = 5_003


def special_floats(n: int, seed: int) -> np.ndarray:
    """Normal draws mixed with NaNs (several payloads), infinities, signed zeros,
    subnormals, float32 overflow and float32 rounding ties."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=n) * 10.0 ** rng.integers(-40, 40, size=n)
    specials = np.array(
        [
            0.0,
            -0.0,
            np.inf,
            -np.inf,
            np.nan,
            5e-324,
            -2.2250738585072014e-308,
            1e-45,
            1e39,
            -1e39,
            3.4028235677973366e38,  # float32's max rounds to itself
            3.4028235677973367e38,
            1.0 + 2.0**-24,  # a tie: rounds to even
            1.0 + 3 * 2.0**-24,
        ]
    )
    nans = np.array(
        [0x7FF8000000000001, 0xFFF8000000000000, 0x7FF0000000000001, 0x7FF4000000000123],
        dtype=np.uint64,
    ).view(np.float64)
    pool = np.concatenate([specials, nans])
    where = rng.random(n) < 0.05
    values[where] = rng.choice(pool, size=int(where.sum()))
    return values


def make_table(n: int = ROWS, seed: int = 0, nullable: bool = True) -> Any:
    rng = np.random.default_rng(seed)
    f64 = special_floats(n, seed)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf, signalling NaNs
        f32 = special_floats(n, seed + 1).astype(np.float32)
    columns = {
        "f64": f64,
        "f32": f32,
        "i64": rng.integers(-(2**63), 2**63 - 1, size=n, dtype=np.int64),
        "i32": rng.integers(-(2**31), 2**31 - 1, size=n, dtype=np.int32),
        # few distinct values: dictionary pages with long RLE runs of indices
        "few": np.repeat(rng.normal(size=n // 100 + 1), 100)[:n],
        "id": np.arange(n, dtype=np.int64),
    }
    fields = [
        pa.field(name, pa.from_numpy_dtype(v.dtype), nullable=nullable)
        for name, v in columns.items()
    ]
    return pa.table({name: pa.array(v) for name, v in columns.items()}, schema=pa.schema(fields))


#: output dtypes tried for each physical type
OUT_DTYPES = {
    "DOUBLE": [np.float32, np.float64],
    "FLOAT": [np.float32, np.float64],
    "INT64": [np.int64],
    "INT32": [np.int32],
}


def chunk_args(pf: Any, g: int, j: int) -> dict[str, Any]:
    """The constructor arguments for column j of row group g, from the metadata."""
    col = pf.metadata.row_group(g).column(j)
    offset = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
    return {
        "offset": offset,
        "length": col.total_compressed_size,
        "physical_type": fp.PHYSICAL_TYPES[col.physical_type],
        "codec": fp.CODECS[col.compression],
        "max_definition_level": pf.schema.column(j).max_definition_level,
        "num_values": col.num_values,
    }


def reader(fd: int, args: dict[str, Any]) -> fp.ColumnChunkReader:
    return fp.ColumnChunkReader(
        fd,
        args["offset"],
        args["length"],
        **{k: v for k, v in args.items() if k not in ("offset", "length")},
    )


def expected(pf: Any, g: int, j: int, dtype: type) -> np.ndarray:
    """pyarrow's decode of the chunk, cast by numpy."""
    values = pf.read_row_group(g, columns=[pf.schema_arrow.names[j]]).column(0).to_numpy()
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(dtype)


def schedule(total: int, sizes: Sequence[int]) -> Iterator[int]:
    """Batch sizes cycling through ``sizes`` (0: all that is left) until ``total``."""
    done, i = 0, 0
    while done < total:
        size = sizes[i % len(sizes)] or total - done
        size = min(size, total - done)
        yield size
        done += size
        i += 1


def decode_chunk(
    fd: int,
    args: dict[str, Any],
    dtype: type,
    sizes: Sequence[int],
    width: int = 3,
    column: int = 1,
) -> np.ndarray | None:
    """The chunk read in batches into column `column` of a (batch, width) matrix."""
    r = reader(fd, args)
    parts = []
    try:
        for size in schedule(args["num_values"], sizes):
            out = np.full((size + 2, width), 7, dtype=dtype)
            if not r.read(out, column, size):
                return None
            others = np.delete(out, column, axis=1)
            assert (others == 7).all() and (out[size:] == 7).all(), "wrote outside its column"
            parts.append(out[:size, column].copy())
    finally:
        r.close()
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def check_file(path: Path, sizes: Sequence[int] = (1000,)) -> int:
    """Every chunk of the file, in every allowed output dtype: returns chunks checked."""
    pf = pq.ParquetFile(str(path))
    fd = os.open(path, os.O_RDONLY)
    checked = 0
    try:
        for g in range(pf.metadata.num_row_groups):
            for j in range(pf.metadata.num_columns):
                args = chunk_args(pf, g, j)
                for dtype in OUT_DTYPES[pf.metadata.row_group(g).column(j).physical_type]:
                    got = decode_chunk(fd, args, dtype, sizes)
                    name = pf.schema_arrow.names[j]
                    assert got is not None, f"row group {g}, {name} -> {dtype}: False"
                    want = expected(pf, g, j, dtype)
                    assert same_bits(got, want), f"row group {g}, {name} -> {dtype}: differs"
                    checked += 1
    finally:
        os.close(fd)
    return checked


@pytest.mark.parametrize("compression", ["none", "snappy"])
@pytest.mark.parametrize("use_dictionary", [True, False])
@pytest.mark.parametrize("version", ["1.0", "2.0"])
@pytest.mark.parametrize("nullable", [True, False])
def test_files_pyarrow_writes(
    tmp_path: Path, compression: str, use_dictionary: bool, version: str, nullable: bool
) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(
        make_table(nullable=nullable),
        path,
        compression=compression,
        use_dictionary=use_dictionary,
        data_page_version=version,
        row_group_size=1_777,
        data_page_size=4_096,  # many pages per chunk
        dictionary_pagesize_limit=2_048,  # the dictionary falls back to PLAIN mid-chunk
    )
    meta = pq.ParquetFile(str(path)).metadata
    assert meta.num_row_groups == 3
    encodings = {
        e for g in range(3) for j in range(6) for e in meta.row_group(g).column(j).encodings
    }
    if use_dictionary:
        assert {"PLAIN", "RLE_DICTIONARY"} <= encodings or {
            "PLAIN",
            "PLAIN_DICTIONARY",
        } <= encodings
    assert check_file(path, sizes=(1000, 7, 0)) == 3 * 9


@pytest.mark.parametrize(
    "sizes", [(1,), (7,), (1000,), (0,), (1, 7, 1000, 3, 0)], ids=["1", "7", "1000", "all", "mixed"]
)
def test_batch_sizes(tmp_path: Path, sizes: tuple[int, ...]) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(
        make_table(n=3_000),
        path,
        row_group_size=2_001,
        data_page_size=2_048,
        dictionary_pagesize_limit=1_024,
    )
    assert check_file(path, sizes=sizes) == 2 * 9


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_defaults_and_a_one_column_matrix(tmp_path: Path, version: str) -> None:
    """pyarrow's defaults (dictionary, snappy, 1 MiB pages: literals split into 64 KiB
    pieces, values straddling them); out of width 1."""
    path = tmp_path / "t.parquet"
    pq.write_table(make_table(n=300_000), path, data_page_version=version)
    pf = pq.ParquetFile(str(path))
    fd = os.open(path, os.O_RDONLY)
    try:
        for j in range(6):
            dtype = OUT_DTYPES[pf.metadata.row_group(0).column(j).physical_type][0]
            got = decode_chunk(fd, chunk_args(pf, 0, j), dtype, (65_536,), width=1, column=0)
            assert got is not None and same_bits(got, expected(pf, 0, j, dtype)), j
    finally:
        os.close(fd)


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_compressible_columns(tmp_path: Path, version: str) -> None:
    """Snappy copies of every kind: overlapping ones (a constant int32: offset 4), short
    and long ones, 2-byte offsets, runs across the 64 KiB blocks of a 1 MiB page."""
    n = 200_000
    rng = np.random.default_rng(3)
    columns = {
        "const32": np.full(n, 7, dtype=np.int32),
        "period3": np.tile(np.array([1, -2, 3], dtype=np.int32), n // 3 + 1)[:n],
        "ramp": np.arange(n, dtype=np.int64) * 3,
        "blocks": np.repeat(rng.normal(size=n // 37 + 1), 37)[:n],
        "mixed": np.where(rng.random(n) < 0.5, 1.5, rng.normal(size=n)),
        "small32": rng.integers(0, 4, size=n).astype(np.float32),
    }
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table(columns), path, use_dictionary=False, data_page_version=version)
    assert check_file(path, sizes=(65_536,)) == 3 + 3 * 2


def test_read_columns_fills_a_matrix_like_separate_reads(tmp_path: Path) -> None:
    """Three matrices (float64, int64, int32), row tiles crossing batch and page ends."""
    path = tmp_path / "t.parquet"
    pq.write_table(make_table(n=150_000), path, row_group_size=100_000)
    pf = pq.ParquetFile(str(path))
    targets = [(0, 0), (1, 0), (4, 0), (2, 1), (5, 1), (3, 2)]  # (column j, matrix)
    fd = os.open(path, os.O_RDONLY)
    try:
        for g in range(pf.metadata.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            readers = [reader(fd, chunk_args(pf, g, j)) for j, _ in targets]
            got = [np.zeros((n, 3)), np.zeros((n, 2), dtype=np.int64), np.zeros((n, 1), np.int32)]
            for start, size in _starts(schedule(n, (40_000, 1, 0))):
                views = [m[start : start + size] for m in got]
                outs = [views[m] for _, m in targets]
                columns = [
                    sum(1 for _, mm in targets[:k] if mm == m) for k, (_, m) in enumerate(targets)
                ]
                assert fp.read_columns(readers, outs, columns, size)
            for k, (j, m) in enumerate(targets):
                column = sum(1 for _, mm in targets[:k] if mm == m)
                want = expected(pf, g, j, got[m].dtype.type)
                assert same_bits(np.ascontiguousarray(got[m][:, column]), want), (g, j)
    finally:
        os.close(fd)


def _starts(sizes: Iterator[int]) -> Iterator[tuple[int, int]]:
    start = 0
    for size in sizes:
        yield start, size
        start += size


def test_read_columns_false_spends_every_reader(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    mask = np.zeros(3_000, dtype=bool)
    mask[2_500] = True
    table = pa.table({"x": np.arange(3_000.0), "y": pa.array(np.arange(3_000.0), mask=mask)})
    pq.write_table(table, path, data_page_size=1_024)
    pf = pq.ParquetFile(str(path))
    fd = os.open(path, os.O_RDONLY)
    try:
        readers = [reader(fd, chunk_args(pf, 0, j)) for j in range(2)]
        out = np.empty((3_000, 2))
        assert fp.read_columns(readers, [out, out], [0, 1], 2_000)
        assert not fp.read_columns(readers, [out, out], [0, 1], 1_000)
        assert not readers[0].read(out, 0, 0)  # spent, though its own data was plain
        with pytest.raises(ValueError, match="a reader twice"):
            fp.read_columns([readers[0], readers[0]], [out, out], [0, 1], 1)
        with pytest.raises(ValueError, match="as many of each"):
            fp.read_columns(readers, [out], [0, 1], 1)
        with pytest.raises(ValueError, match="column=2"):
            fp.read_columns(readers, [out, out], [0, 2], 1)
        assert fp.read_columns([], [], [], 5)
        ext = fp._ext
        assert ext is not None
        fresh = ext.ColumnChunkReader(fd, **{**chunk_args(pf, 0, 0)})
        with pytest.raises(ValueError, match="already reading"):  # the C side's own check
            ext.read_columns((fresh, fresh), (out, out), (0, 1), 1)
        assert fresh.read(out, 0, 3_000)  # and it was left usable
        with pytest.raises(ValueError, match="expected a ColumnChunkReader"):
            ext.read_columns((object(),), (out,), (0,), 1)
    finally:
        os.close(fd)


def test_empty_chunk(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(make_table(n=0), path)
    pf = pq.ParquetFile(str(path))
    if pf.metadata.num_row_groups == 0:
        pytest.skip("pyarrow wrote no row group for an empty table")
    fd = os.open(path, os.O_RDONLY)
    try:
        r = reader(fd, chunk_args(pf, 0, 0))
        assert r.read(np.empty((0, 1)), 0, 0) is True
    finally:
        os.close(fd)


def read_whole(path: Path, g: int, j: int, dtype: type = np.float64, rows: int = 0) -> list[bool]:
    """The answers of reading the chunk `rows` at a time (0: at once), then once more."""
    pf = pq.ParquetFile(str(path))
    fd = os.open(path, os.O_RDONLY)
    try:
        args = chunk_args(pf, g, j)
        r = reader(fd, args)
        n = args["num_values"]
        out = np.empty((max(n, 1), 1), dtype=dtype)
        answers = [r.read(out, 0, size) for size in schedule(n, (rows,))]
        answers.append(r.read(out, 0, 0))
        return answers
    finally:
        os.close(fd)


@pytest.mark.parametrize("version", ["1.0", "2.0"])
@pytest.mark.parametrize("use_dictionary", [True, False])
def test_nulls_answer_false(tmp_path: Path, version: str, use_dictionary: bool) -> None:
    values = np.arange(4_000, dtype=np.float64)
    mask = np.zeros(4_000, dtype=bool)
    mask[3_500] = True  # a null in a late page
    path = tmp_path / "t.parquet"
    table = pa.table({"x": pa.array(values, mask=mask)})
    pq.write_table(
        table, path, data_page_version=version, use_dictionary=use_dictionary, data_page_size=1_024
    )
    answers = read_whole(path, 0, 0, rows=500)
    # the batches before the null's page decode; the reader is spent after False
    assert answers[:6] == [True] * 6
    assert answers[7:] == [False] * len(answers[7:]) and False in answers


@pytest.mark.parametrize(
    ("dtype", "encoding"),
    [
        (np.float64, "BYTE_STREAM_SPLIT"),
        (np.float32, "BYTE_STREAM_SPLIT"),
        (np.int64, "DELTA_BINARY_PACKED"),
        (np.int32, "DELTA_BINARY_PACKED"),
    ],
)
def test_other_encodings_answer_false(tmp_path: Path, dtype: type, encoding: str) -> None:
    path = tmp_path / "t.parquet"
    values = np.arange(1_000).astype(dtype)
    pq.write_table(
        pa.table({"x": values}), path, use_dictionary=False, column_encoding={"x": encoding}
    )
    assert encoding in pq.ParquetFile(str(path)).metadata.row_group(0).column(0).encodings
    assert read_whole(path, 0, 0, dtype=dtype) == [False, False]


@pytest.mark.parametrize("codec", [2, 3, 4, 5, 6, 7])  # GZIP, LZO, BROTLI, LZ4, ZSTD, LZ4_RAW
def test_other_codecs_raise(codec: int) -> None:
    with pytest.raises(ValueError, match="codec: got"):
        fp.ColumnChunkReader(
            0, 4, 100, physical_type=fp.DOUBLE, codec=codec, max_definition_level=1, num_values=1
        )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"physical_type": 6}, "physical_type: got 6"),  # BYTE_ARRAY
        ({"physical_type": 0}, "physical_type: got 0"),  # BOOLEAN
        ({"max_definition_level": 2}, "max_definition_level: got 2"),
        ({"length": -1}, "expected non-negative"),
        ({"num_values": -1}, "expected non-negative"),
        ({"offset": -4}, "expected non-negative"),
        ({"offset": 2**63 - 50}, "below 2\\*\\*63"),
        ({"num_values": 2**64}, "below 2\\*\\*63"),
    ],
)
def test_constructor_arguments(change: dict[str, int], match: str) -> None:
    args = {
        "offset": 4,
        "length": 100,
        "physical_type": fp.DOUBLE,
        "codec": fp.SNAPPY,
        "max_definition_level": 1,
        "num_values": 10,
    }
    args.update(change)
    with pytest.raises(ValueError, match=match):
        reader(0, args)


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fp") / "small.parquet"
    pq.write_table(make_table(n=2_000), path, data_page_size=2_048, dictionary_pagesize_limit=1_024)
    return path


@pytest.mark.parametrize(
    ("j", "out", "column", "rows", "match"),
    [
        (0, np.empty((10, 2), dtype=np.int64), 0, 10, "expected float64 or float32"),
        (2, np.empty((10, 2), dtype=np.float64), 0, 10, "expected int64"),
        (3, np.empty((10, 2), dtype=np.int64), 0, 10, "expected int32"),
        (0, np.empty((10, 2)), 2, 10, "column=2"),
        (0, np.empty((10, 2)), -1, 10, "column=-1"),
        (0, np.empty((10, 2)), 0, 11, "rows=11"),
        (0, np.empty((10, 2)), 0, -1, "rows=-1"),
        (0, np.empty(10), 0, 10, "2-dimensional"),
        (0, np.empty((10, 2), order="F"), 0, 10, "C-contiguous"),
        (0, np.empty((3_000, 2)), 0, 2_001, "at most the 2000 values"),
    ],
)
def test_read_arguments(
    small_file: Path, j: int, out: np.ndarray, column: int, rows: int, match: str
) -> None:
    pf = pq.ParquetFile(str(small_file))
    fd = os.open(small_file, os.O_RDONLY)
    try:
        with pytest.raises(ValueError, match=match):
            reader(fd, chunk_args(pf, 0, j)).read(out, column, rows)
    finally:
        os.close(fd)


def test_read_only_out_and_rows_past_the_end(small_file: Path) -> None:
    pf = pq.ParquetFile(str(small_file))
    fd = os.open(small_file, os.O_RDONLY)
    try:
        r = reader(fd, chunk_args(pf, 0, 0))
        out = np.empty((2_000, 1))
        out.flags.writeable = False
        with pytest.raises(ValueError, match="writable"):
            r.read(out, 0, 10)
        out = np.empty((2_000, 1))
        assert r.read(out, 0, 1_500)
        with pytest.raises(ValueError, match="at most the 500 values"):
            r.read(out, 0, 501)
        assert r.read(out, 0, 500)
        r.close()
        assert r.read(out, 0, 0) is False  # closed
    finally:
        os.close(fd)


def test_the_c_type_checks_its_arguments_too(small_file: Path) -> None:
    """The extension's own checks, without the Python face's."""
    ext = fp._ext
    assert ext is not None
    pf = pq.ParquetFile(str(small_file))
    args = chunk_args(pf, 0, 0)
    fd = os.open(small_file, os.O_RDONLY)
    try:
        r = ext.ColumnChunkReader(
            fd, args["offset"], args["length"], fp.DOUBLE, fp.SNAPPY, 1, args["num_values"]
        )
        for bad in [np.empty((5, 2), dtype=np.int32), np.empty(5), np.empty((5, 2))[:, :1]]:
            with pytest.raises((ValueError, BufferError)):
                r.read(bad, 0, 5)
        with pytest.raises(ValueError):
            r.read(np.empty((5, 2)), 5, 5)
        with pytest.raises(ValueError):
            ext.ColumnChunkReader(fd, 0, 1, 9, 0, 0, 1)
        unset = ext.ColumnChunkReader.__new__(ext.ColumnChunkReader)
        with pytest.raises(ValueError, match="not initialised"):
            unset.read(np.empty((5, 2)), 0, 5)
    finally:
        os.close(fd)


def test_without_the_extension_read_answers_false(
    small_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINREG_NO_NATIVE", "1")
    pf = pq.ParquetFile(str(small_file))
    r = reader(0, chunk_args(pf, 0, 0))
    assert r.read(np.empty((5, 1)), 0, 5) is False
    r.close()


def test_threads_share_one_fd(tmp_path: Path) -> None:
    """Readers of every chunk, each in its own thread, on one file descriptor."""
    path = tmp_path / "t.parquet"
    pq.write_table(make_table(n=20_000), path, row_group_size=7_000, data_page_size=8_192)
    pf = pq.ParquetFile(str(path))
    jobs = [(g, j) for g in range(pf.metadata.num_row_groups) for j in range(6)]
    results: dict[tuple[int, int], np.ndarray | None] = {}
    fd = os.open(path, os.O_RDONLY)

    def work(g: int, j: int) -> None:
        args = chunk_args(pf, g, j)
        dtype = OUT_DTYPES[pf.metadata.row_group(g).column(j).physical_type][0]
        results[(g, j)] = decode_chunk(fd, args, dtype, (333,))

    try:
        threads = [threading.Thread(target=work, args=job) for job in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        os.close(fd)
    for g, j in jobs:
        dtype = OUT_DTYPES[pf.metadata.row_group(g).column(j).physical_type][0]
        got = results[(g, j)]
        assert got is not None and same_bits(got, expected(pf, g, j, dtype)), (g, j)


def open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux)")
def test_the_reader_keeps_its_own_descriptor(small_file: Path) -> None:
    """The caller's descriptor may be closed once the reader is built (the reader reads
    through its own duplicate, close-on-exec), and close() releases that duplicate."""
    pf = pq.ParquetFile(str(small_file))
    args = chunk_args(pf, 0, 0)
    before = open_descriptors()
    fd = os.open(small_file, os.O_RDONLY)
    r = reader(fd, args)
    os.close(fd)
    mine = open_descriptors() - before
    assert len(mine) == 1  # the reader's duplicate
    flags = fcntl.fcntl(int(mine.pop()), fcntl.F_GETFD)
    assert flags & fcntl.FD_CLOEXEC
    out = np.empty((args["num_values"], 1))
    assert r.read(out, 0, args["num_values"])
    assert same_bits(out[:, 0], expected(pf, 0, 0, np.float64))
    r.close()
    assert open_descriptors() == before
    # collected without close(): released too
    fd = os.open(small_file, os.O_RDONLY)
    r = reader(fd, args)
    os.close(fd)
    del r
    assert open_descriptors() == before


def test_a_closed_descriptor_is_an_os_error(small_file: Path) -> None:
    pf = pq.ParquetFile(str(small_file))
    fd = os.open(small_file, os.O_RDONLY)
    os.close(fd)
    with pytest.raises(OSError):
        reader(fd, chunk_args(pf, 0, 0))


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_fork_while_threads_use_the_buffer_pool(tmp_path: Path) -> None:
    """Processes forked while other threads take and give back pooled buffers: each child
    decodes a chunk (the pool's lock, held by no one across fork, is free in it)."""
    path = tmp_path / "t.parquet"
    pq.write_table(make_table(n=6_000), path, row_group_size=1_000, data_page_size=1_024)
    pf = pq.ParquetFile(str(path))
    args = chunk_args(pf, 0, 0)
    want = expected(pf, 0, 0, np.float64)
    stop = threading.Event()

    def churn() -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            while not stop.is_set():
                assert decode_chunk(fd, args, np.float64, (97,)) is not None
        finally:
            os.close(fd)

    threads = [threading.Thread(target=churn) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(20):
            pid = os.fork()
            if pid == 0:  # the child: decode, then leave at once (no pytest teardown)
                fd = os.open(path, os.O_RDONLY)
                got = decode_chunk(fd, args, np.float64, (250,))
                os._exit(0 if got is not None and same_bits(got, want) else 3)
            deadline = time.monotonic() + 30
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    pytest.fail("a forked child hung (the pool's lock?)")
                time.sleep(0.01)
            assert os.waitstatus_to_exitcode(status) == 0
    finally:
        stop.set()
        for t in threads:
            t.join()


def damaged_reads(data: bytes, args: dict[str, Any], path: Path, dtype: type) -> list[bool]:
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        r = reader(fd, args)
        out = np.empty((args["num_values"], 2), dtype=dtype)
        answers = []
        for size in schedule(args["num_values"], (1, 300, 0)):
            answer = r.read(out, 1, size)
            assert answer is True or answer is False
            answers.append(answer)
        return answers
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("options", "j"),
    [
        ({"compression": "snappy", "data_page_version": "1.0"}, 0),
        ({"compression": "snappy", "data_page_version": "2.0"}, 4),
        ({"compression": "none", "data_page_version": "1.0"}, 2),
        ({"compression": "snappy", "data_page_version": "2.0", "use_dictionary": False}, 3),
    ],
)
def test_damaged_chunks_never_crash(tmp_path: Path, options: dict[str, Any], j: int) -> None:
    """Truncations and byte flips inside a chunk: True or False, nothing else, no crash."""
    src = tmp_path / "src.parquet"
    pq.write_table(
        make_table(n=1_500, nullable=j != 3),
        src,
        data_page_size=1_024,
        dictionary_pagesize_limit=2_048,
        **options,
    )
    pf = pq.ParquetFile(str(src))
    args = chunk_args(pf, 0, j)
    dtype = OUT_DTYPES[pf.metadata.row_group(0).column(j).physical_type][0]
    data = src.read_bytes()
    start, end = args["offset"], args["offset"] + args["length"]
    rng = random.Random(j)
    dst = tmp_path / "damaged.parquet"
    answers = set()
    for trial in range(150):
        damaged = bytearray(data)
        if trial % 3 == 0:  # the file cut inside the chunk
            damaged = damaged[: rng.randrange(start, end)]
        else:
            for _ in range(rng.choice([1, 1, 2, 5, 20])):
                pos = rng.randrange(start, end)
                damaged[pos] = (
                    rng.randrange(256) if trial % 3 == 1 else damaged[pos] ^ (1 << rng.randrange(8))
                )
        answers.update(damaged_reads(bytes(damaged), args, dst, dtype))
    assert False in answers  # the damage was seen at least sometimes
    # the intact file still decodes
    assert all(damaged_reads(data, args, dst, dtype))


@pytest.mark.slow
def test_benchmark_smoke_run() -> None:
    """benchmarks/bench_fastparquet.py at a tiny size (its readers agree, it prints)."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "bench_fastparquet.py"), "--rows", "3000"]
        + ["--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    assert proc.returncode == 0, proc.stderr
    assert "CPU s for 3,000 rows" in proc.stdout and "less CPU for fastparquet" in proc.stdout
