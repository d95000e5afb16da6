"""The readers' line limit (``max_line_bytes``): a CSV or TSV line longer than the
limit is refused before any parser sees it, with the file, the line and the limit, by
``score_file`` / ``linreg predict`` and by the training loaders (typed, chunked and
text readers alike), reading no more of the line than the limit and a block."""

from __future__ import annotations

import gzip
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inference.batch import score_file
from inference.errors import BatchError, LineTooLongError
from inference.io import DEFAULT_MAX_LINE_BYTES, ReadSpec, inspect_part, read_chunks
from inference.io import formats as io_formats
from inference.io.csv import blocks as csv_block_module
from inference.io.csv.reader import DEFAULT_CSV_BLOCK, block_bytes
from inference.io.limits import LineLengths, first_long_line, long_line_in
from linreg.main import main

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "exported_models" / "plant_richness_mlr"
HEADER = "id,area,latitude,dist_mainland"


def rows(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 5.0, 80.0] + [1.0, 40.0, 100.0]
    return [f"{i},{a!r},{b!r},{c!r}" for i, (a, b, c) in enumerate(X.tolist())]


def reference_first_long(buf: bytes, limit: int) -> int:
    pos = 0
    for line in buf.split(b"\n"):
        if len(line) > limit:
            return pos
        pos += len(line) + 1
    return -1


def reference_long_line(text: bytes, limit: int) -> int | None:
    for number, line in enumerate(text.split(b"\n"), 1):
        if len(line) > limit:
            return number
    return None


def test_the_line_checks_agree_with_splitting_the_text() -> None:
    """first_long_line (one buffer) and LineLengths (pieces cut anywhere) against
    ``bytes.split``, on random lines around the limit."""
    rng = random.Random(5)
    found = 0
    for _ in range(5_000):
        limit = rng.randint(1, 40)
        lengths = [rng.choice([0, 1, limit - 1, limit, limit + 1, 2 * limit, 3]) for _ in range(8)]
        lines = [bytes(rng.choice(b"ab,1") for _ in range(max(n, 0))) for n in lengths]
        text = b"\n".join(lines[: rng.randint(0, 8)]) + rng.choice([b"", b"\n"])
        assert first_long_line(text, limit) == reference_first_long(text, limit), (text, limit)
        cuts = sorted(rng.randint(0, len(text)) for _ in range(rng.randint(0, 5)))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        want = reference_long_line(text, limit)
        assert long_line_in(pieces, limit) == want, (pieces, limit)
        found += want is not None
    assert 1_000 < found < 4_000  # both outcomes exercised


def test_line_lengths_carry_a_line_across_pieces() -> None:
    lengths = LineLengths(10)
    assert lengths.feed(b"head\n12345") is None
    assert lengths.feed(b"67890") is None  # line 2 holds 10 bytes so far: the limit
    assert lengths.feed(b"1\nok\n") == 2


def write(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.write_text("\n".join(lines) + end)
    return path


@pytest.mark.parametrize("native", [True, False], ids=["native", "pyarrow"])
@pytest.mark.parametrize(
    ("where", "end"),
    [(0, "\n"), (37, "\n"), (99, "\n"), (99, "")],
    ids=["first", "middle", "last", "last-without-newline"],
)
def test_score_file_names_the_long_line(tmp_path, monkeypatch, native, where, end) -> None:
    """One line of limit + 1 bytes among 100: LineTooLongError at its line (header = 1),
    with the file and the limit; lines of exactly the limit are read. No output."""
    if not native:
        monkeypatch.setenv("LINREG_NO_NATIVE", "1")
    limit = 300
    lines = rows(100)
    lines[where] = "7,0." + "1" * (limit + 1 - 12) + ",2.5,3.5"  # 1 + limit bytes
    source = write(tmp_path / "in.csv", [HEADER, *lines], end)
    out = tmp_path / "out.csv"
    with pytest.raises(LineTooLongError) as caught:
        score_file(MODEL, source, out, progress=False, chunk_rows=7, max_line_bytes=limit)
    err = caught.value
    assert (err.file, err.line, err.limit) == (str(source), where + 2, limit)
    assert str(err).startswith(
        f"{source}, line {where + 2}: the line is longer than the limit of 300 bytes"
    )
    assert not out.exists()
    lines[where] = lines[where][1:]  # exactly the limit: read (with an empty id)
    write(source, [HEADER, *lines], end)
    report = score_file(MODEL, source, out, progress=False, chunk_rows=7, max_line_bytes=limit)
    assert (report.rows_read, report.rows_bad) == (100, 0)


def test_the_header_line_is_checked_too(tmp_path) -> None:
    source = write(tmp_path / "in.csv", [HEADER + ",x" * 100, *rows(3)])
    with pytest.raises(LineTooLongError) as caught:
        inspect_part(source, max_line_bytes=len(HEADER) + 199)
    assert caught.value.line == 1
    assert inspect_part(source, max_line_bytes=len(HEADER) + 200).columns[-1] == "x"


@pytest.mark.parametrize("value", [0, -1, 1.5, "16", True])
def test_the_limit_must_be_a_positive_integer(tmp_path, value: Any) -> None:
    source = write(tmp_path / "in.csv", [HEADER, *rows(3)])
    with pytest.raises(ValueError, match="max_line_bytes must be a positive integer"):
        score_file(MODEL, source, tmp_path / "out.csv", max_line_bytes=value)


@pytest.mark.parametrize("before", [1_000, 2])
def test_the_reader_reads_no_more_than_the_limit_and_a_block(tmp_path, monkeypatch, before) -> None:
    """A 24 MiB line after short ones, with a 1 MiB limit and 8,192 rows a chunk: the
    bytes read from the file stop within the limit plus two blocks of the line (the
    memory bound), and a block is never longer than the limit or the default block,
    even when the long line comes early enough to make the rows-to-bytes estimate huge."""
    source = tmp_path / "in.csv"
    head = "\n".join([HEADER, *rows(before)]) + "\n"
    with source.open("w") as f:
        f.write(head)
        f.write("5," + "1" * (24 << 20) + ",1,2\n")
        f.write("\n".join(rows(10)) + "\n")
    read = {"bytes": 0}
    real_open = io_formats.open_input

    class Counting:
        def __init__(self, stream: Any) -> None:
            self.stream = stream

        def __enter__(self) -> Counting:
            return self

        def __exit__(self, *exc: Any) -> None:
            self.stream.close()

        def read_buffer(self, n: int) -> Any:
            buf = self.stream.read_buffer(n)
            read["bytes"] += buf.size
            return buf

        def readinto(self, view: Any) -> int:
            got = self.stream.readinto(view)
            read["bytes"] += got
            return got

    monkeypatch.setattr(csv_block_module, "open_input", lambda part: Counting(real_open(part)))
    limit = 1 << 20
    part = inspect_part(source, max_line_bytes=limit)
    chunks = read_chunks(part, ReadSpec(["area", "latitude", "dist_mainland"]), chunk_rows=8_192)
    with pytest.raises(LineTooLongError) as caught:
        for _ in chunks:
            pass
    assert caught.value.line == before + 2
    block = block_bytes(part, 8_192)
    assert block <= max(limit, DEFAULT_CSV_BLOCK)
    assert read["bytes"] <= len(head) + limit + 2 * block, read


def test_a_line_longer_than_a_parse_piece_is_parsed(tmp_path) -> None:
    """A kept text field of 1.5 MB (below the limit, above pyarrow's 512 KiB pieces) is
    copied exactly, and the predictions are the model's on the other columns."""
    lines = rows(50)
    long_id = "x" * 1_500_000
    lines[20] = long_id + lines[20][lines[20].index(",") :]
    source = write(tmp_path / "in.csv", [HEADER, *lines])
    out = tmp_path / "out.csv"
    report = score_file(MODEL, source, out, progress=False, id_columns=["id"])
    assert report.rows_read == 50
    written = out.read_text().splitlines()
    assert written[21].split(",")[0] == long_id
    assert written[22].split(",")[0] == "21"


def train_file(path: Path, long_at: int | None, limit: int, opener: Any = open) -> Path:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2))
    y = X @ [2.0, -1.0] + 0.5
    pairs = zip(X.tolist(), y.tolist(), strict=True)
    lines = ["a,b,y"] + [f"{a!r},{b!r},{t!r}" for (a, b), t in pairs]
    if long_at is not None:
        lines[long_at - 1] = "1" * (limit + 1) + ",1,1"
    with opener(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("name", "opener", "path_taken"),
    [
        ("in.csv", open, "typed"),
        ("in.csv.gz", gzip.open, "text (pandas, decompressed)"),
        ("latin1.csv", open, "text (pandas, not UTF-8)"),
    ],
)
def test_load_table_refuses_a_long_line_before_any_parser(
    tmp_path, monkeypatch, name, opener, path_taken
) -> None:
    pytest.importorskip("pandas")
    from training.data import DataError, load_table

    limit = 1_000
    path = train_file(tmp_path / name, 150, limit, opener)
    if name.startswith("latin1"):
        path.write_bytes(path.read_bytes().replace(b"a,b,y", b"a,b\xe9,y", 1))
    import pandas as pd
    import pyarrow.csv as pacsv

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a parser was called on a file with a long line ({path_taken})")

    monkeypatch.setattr(pd, "read_csv", refuse)
    monkeypatch.setattr(pacsv, "read_csv", refuse)
    with pytest.raises(DataError) as caught:
        load_table(path, target="y", max_line_bytes=limit)
    message = str(caught.value)
    assert message.startswith(f"{path}, line 150: the line is longer than the limit of 1,000")


def test_load_table_reads_lines_up_to_the_limit(tmp_path) -> None:
    from training.data import load_table

    path = train_file(tmp_path / "in.csv", None, 0)
    longest = max(len(line) for line in path.read_bytes().split(b"\n"))
    table = load_table(path, target="y", max_line_bytes=longest)
    assert table.X.shape == (200, 2)
    rng = np.random.default_rng(1)
    np.testing.assert_array_equal(table.X, rng.normal(size=(200, 2)))


def test_the_chunked_reader_of_training_refuses_it_too(tmp_path) -> None:
    from training.data import DataError, iter_table_chunks

    path = train_file(tmp_path / "in.csv", 120, 500)
    with pytest.raises(DataError, match=r"line 120: the line is longer than the limit of 500"):
        list(iter_table_chunks(path, target="y", features=["a", "b"], max_line_bytes=500))


def test_the_default_limit_is_16_mib() -> None:
    assert DEFAULT_MAX_LINE_BYTES == 16 * 1024 * 1024


def test_command_lines_take_the_option(tmp_path, capsys) -> None:
    """``linreg predict`` exits 1 (bad data); ``linreg train`` with its status for every
    error it reports (2); both name the file, the line and the limit."""
    source = write(tmp_path / "in.csv", [HEADER, *rows(5), "1," + "2" * 600 + ",3,4"])
    status = main(
        [
            "predict",
            str(MODEL),
            str(source),
            "-o",
            str(tmp_path / "o.csv"),
            "--max-line-bytes",
            "500",
        ]
    )
    err = capsys.readouterr().err
    assert status == 1 and f"{source}, line 7: the line is longer than the limit of 500" in err
    data = train_file(tmp_path / "t.csv", 9, 500)
    status = main(["train", "--data", str(data), "--target", "y", "--max-line-bytes", "500"])
    err = capsys.readouterr().err
    assert status == 1 and f"{data}, line 9: the line is longer than the limit of 500" in err
    assert isinstance(LineTooLongError(file="f", line=1, limit=1), BatchError)


def peak_rss(cmd: list[str]) -> tuple[int, float, str]:
    """(exit status, peak RSS in MiB, stderr) of a process run to its end."""
    import os
    import subprocess

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, err


@pytest.mark.slow
def test_a_huge_line_costs_linreg_predict_a_small_multiple_of_the_limit(tmp_path) -> None:
    """``linreg predict`` on a file whose fourth line is 96 MiB, with a 4 MiB limit: its
    peak RSS exceeds that of the same command on the file without that line by at most
    8 times the limit (the reader holds the limit and a block, twice while it reads)."""
    import sys

    linreg = str(Path(sys.executable).with_name("linreg"))
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    lines = [HEADER, *rows(2)]
    write(small, [*lines, *rows(2, seed=1)])
    with big.open("w") as f:
        f.write("\n".join(lines) + "\n")
        f.write("9," + "1" * (96 << 20) + ",2,3\n")
        f.write("\n".join(rows(2, seed=1)) + "\n")
    limit = 4 << 20
    args = ["--max-line-bytes", str(limit), "--overwrite"]
    code, base, _ = peak_rss(
        [linreg, "predict", str(MODEL), str(small), "-o", str(tmp_path / "a.csv"), *args]
    )
    assert code == 0
    code, peak, err = peak_rss(
        [linreg, "predict", str(MODEL), str(big), "-o", str(tmp_path / "b.csv"), *args]
    )
    assert code == 1 and f"{big}, line 4: the line is longer than the limit" in err
    assert peak - base <= 8 * limit / (1 << 20), (base, peak)
