"""Seed inputs for the libFuzzer harnesses (tests/fuzz/fuzz_*.c), cut from files that
pyarrow writes: page headers (thrift), compressed page bodies (snappy), definition
levels and dictionary indices (rle), whole column chunks with the reader harness's
settings (reader), and CSV blocks with the CSV harness's settings (csv).

Run: ``PYTHONPATH=. .venv/bin/python tests/fuzz/make_seeds.py build/fuzz/seeds``; then
``bash tests/fuzz/run.sh --merge`` fuzzes from them and keeps, in tests/fuzz/corpus/,
the smallest set of inputs that covers what they and the fuzzing reached.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tests.inference.parquet_footer import _Reader

# parquet.thrift's PageHeader fields and page types
_TYPE, _USIZE, _CSIZE, _DATA_V1, _DICT, _DATA_V2 = 1, 2, 3, 5, 7, 8
_P_DATA, _P_DICT, _P_DATA_V2 = 0, 2, 3
_PHYSICAL = {"INT32": 0, "INT64": 1, "FLOAT": 2, "DOUBLE": 3}
_ROWS = 3_000  # below the reader harness's 4,096 values


def tables() -> list[Any]:
    rng = np.random.default_rng(0)
    n = _ROWS
    few = np.repeat(rng.normal(size=n // 50 + 1), 50)[:n]
    return [
        pa.table(
            {
                "f64": rng.normal(size=n),
                "f32": rng.normal(size=n).astype(np.float32),
                "i64": rng.integers(-(2**40), 2**40, size=n),
                "i32": rng.integers(-1000, 1000, size=n, dtype=np.int32),
                "few": few,
                "runs": np.repeat(np.arange(n // 300 + 1, dtype=np.int64), 300)[:n],
            }
        ),
        pa.table({"f64": pa.array(np.where(rng.random(n) < 0.1, None, rng.normal(size=n)))}),
    ]


def parquet_files() -> list[bytes]:
    out = []
    for t in tables():
        for options in [
            {"compression": "snappy"},
            {"compression": "none"},
            {"compression": "snappy", "data_page_version": "2.0"},
            {"compression": "none", "data_page_version": "2.0", "use_dictionary": False},
            {"compression": "snappy", "use_dictionary": False, "data_page_size": 1024},
            {"compression": "none", "data_page_size": 512, "dictionary_pagesize_limit": 256},
        ]:
            sink = io.BytesIO()
            pq.write_table(t, sink, **options)
            out.append(sink.getvalue())
    return out


def pages(chunk: bytes) -> list[tuple[bytes, Any, bytes]]:
    """(header bytes, header struct, body) of each page of a column chunk."""
    out, pos = [], 0
    while pos < len(chunk):
        reader = _Reader(chunk[pos:])
        header = reader.struct()
        size = header.get(_CSIZE)
        body = chunk[pos + reader.pos : pos + reader.pos + size]
        out.append((chunk[pos : pos + reader.pos], header, body))
        pos += reader.pos + size
    return out


def chunk_seeds(data: bytes, seeds: dict[str, list[bytes]]) -> None:
    pf = pq.ParquetFile(io.BytesIO(data))
    for g in range(pf.metadata.num_row_groups):
        for j in range(pf.metadata.num_columns):
            meta = pf.metadata.row_group(g).column(j)
            start = meta.data_page_offset
            if meta.has_dictionary_page and meta.dictionary_page_offset is not None:
                start = min(start, meta.dictionary_page_offset)
            chunk = data[start : start + meta.total_compressed_size]
            max_def = pf.schema.column(j).max_definition_level
            codec = 1 if meta.compression == "SNAPPY" else 0
            for wide in (0, 1):
                settings = (
                    bytes([_PHYSICAL[meta.physical_type] | wide << 2, codec, max_def, 97])
                    + meta.num_values.to_bytes(2, "little")
                    + b"\0\0"
                )
                seeds["reader"].append(settings + chunk)
            for head, header, body in pages(chunk):
                seeds["thrift"].append(head + body[:16])
                kind = header.get(_TYPE)
                if kind == _P_DATA_V2:
                    sub = header.get(_DATA_V2)
                    levels = sub.get(5) + sub.get(6)
                    values = body[levels:]
                    compressed = dict((f, t) for f, t, _ in sub.fields).get(7, 1) == 1
                    if levels:
                        seeds["rle"].append(bytes([1]) + body[:levels])
                    if codec and compressed:
                        seeds["snappy"].append(values)
                    elif values:
                        seeds["rle"].append(values)
                    continue
                if codec:
                    seeds["snappy"].append(body)
                    continue
                if kind == _P_DATA and max_def:
                    length = int.from_bytes(body[:4], "little")
                    seeds["rle"].append(bytes([1]) + body[4 : 4 + length])
                    body = body[4 + length :]
                if kind == _P_DATA and body:
                    seeds["rle"].append(body)  # byte 0 of dictionary indices: the bit width


def csv_seeds(seeds: dict[str, list[bytes]]) -> None:
    rng = np.random.default_rng(1)
    n = 40
    t = pa.table(
        {
            "a": rng.normal(size=n),
            "b": (rng.normal(size=n) * 10.0 ** rng.integers(-30, 30, size=n)),
            "c": rng.integers(-(10**6), 10**6, size=n),
            "d": rng.normal(size=n).astype(np.float32),
        }
    )
    sink = io.BytesIO()
    pacsv.write_csv(t, sink, write_options=pacsv.WriteOptions(include_header=False))
    block = sink.getvalue()
    delimiters = {",": 0, "\t": 1, ";": 2, "|": 3, " ": 4}
    for delimiter, index in delimiters.items():
        text = block.replace(b",", delimiter.encode())
        for read, single in [(0b1111, 0), (0b0101, 1), (0b0001, 0)]:
            seeds["csv"].append(bytes([3, read, index, single]) + text)
    edge = [
        b"1,2\n-0,0.5e-3\n1e308,2.2250738585072014e-308\n",
        b"0.1,abc\n12345678901234567890,x\n",
        b"1\n\n2\n",
        b"00000000000000000000001.5,9007199254740993\n",
        b"1.,2\n.5,3\n+1,4\n",
    ]
    for text in edge:
        for settings in (bytes([1, 0b11, 0, 0]), bytes([1, 0b01, 0, 1]), bytes([1, 0b11, 0, 2])):
            seeds["csv"].append(settings + text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="writes OUT/<harness>/<sha1> files")
    args = parser.parse_args()
    seeds: dict[str, list[bytes]] = {k: [] for k in ("thrift", "snappy", "rle", "reader", "csv")}
    for data in parquet_files():
        chunk_seeds(data, seeds)
    csv_seeds(seeds)
    for name, inputs in seeds.items():
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        for data in inputs:
            (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)
        print(f"{name}: {len(set(inputs))} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
