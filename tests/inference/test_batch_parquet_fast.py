"""The Parquet fast path (the C column reader) gives what pyarrow's path gives, byte for
byte: the same chunks, predictions, kept columns, bad-row reports and errors; and files
it cannot read go to pyarrow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from inference import Predictor  # noqa: E402
from inference.batch import score_file  # noqa: E402
from inference.errors import BatchError  # noqa: E402
from inference.io.parquet import fast as parquet_fast  # noqa: E402
from inference.io.parquet import native as fastparquet  # noqa: E402
from linreg.main import main  # noqa: E402
from tests.inference.parquet_footer import (  # noqa: E402
    edit_column_meta,
    parse_footer,
    read_footer,
    write_struct,
)

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "exported_models" / "plant_richness_mlr"
FEATURES = ["area", "latitude", "dist_mainland"]

needs_extension = pytest.mark.skipif(
    not fastparquet.available(),
    reason="the C extension inference.io.parquet._fastparquet was not built",
)
pytestmark = needs_extension


def table(n: int, *, seed: int = 0, feature_type=None, id_type=None, nullable=True) -> object:
    """An id column and the model's three features (float64 unless told)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 5.0, 80.0] + [1.0, 40.0, 100.0]
    ftype = feature_type or pa.float64()
    itype = id_type or pa.int64()
    fields = [pa.field("id", itype, nullable=nullable)]
    fields += [pa.field(name, ftype, nullable=nullable) for name in FEATURES]
    arrays = [pa.array(np.arange(n) * 3 + 1).cast(itype)]
    arrays += [pa.array(col).cast(ftype) for col in X.T]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def score_both(
    tmp_path: Path, monkeypatch, source: Path, suffix: str = ".parquet", **options
) -> tuple[dict, dict]:
    """Score ``source`` with the fast path and with the extension hidden: the output
    bytes (and bad-rows file's), the error, the counts, and how many chunks the C reader
    decoded."""
    results = []
    decoded = {"batches": 0}
    inner = parquet_fast.decoded_batches

    def counting(*args, **kwargs):
        for batch in inner(*args, **kwargs):
            decoded["batches"] += 1
            yield batch

    for fast in (True, False):
        decoded["batches"] = 0
        with monkeypatch.context() as m:
            m.setattr(parquet_fast, "decoded_batches", counting)
            if not fast:
                m.setenv("LINREG_NO_NATIVE", "1")
            tag = "fast" if fast else "slow"
            out = tmp_path / f"{tag}{suffix}"
            extra = dict(options)
            if extra.get("bad_rows") == "file":
                extra["bad_rows"] = str(tmp_path / f"{tag}-bad.csv")
            try:
                report = score_file(MODEL, source, out, progress=False, **extra)
                error = None
            except BatchError as exc:
                report, error = None, str(exc)
            files = {p.name.replace(tag, "", 1): p.read_bytes() for p in tmp_path.glob(f"{tag}*")}
            results.append(
                {
                    "files": files,
                    "error": error,
                    "counts": None if report is None else (report.rows_read, report.rows_bad),
                    "decoded": decoded["batches"],
                }
            )
    return results[0], results[1]


@pytest.mark.parametrize(
    "write",
    [
        {},
        {"compression": "none"},
        {"use_dictionary": False},
        {"data_page_version": "2.0"},
        {"data_page_size": 4096, "dictionary_pagesize_limit": 2048},
        {"data_page_version": "2.0", "compression": "none", "data_page_size": 1000},
    ],
    ids=["defaults", "uncompressed", "plain", "v2-pages", "small-pages", "v2-uncompressed"],
)
def test_plain_files_are_decoded_with_the_same_bytes(tmp_path, monkeypatch, write):
    source = tmp_path / "in.parquet"
    pq.write_table(table(23_456), source, row_group_size=7_001, **write)
    fast, slow = score_both(tmp_path, monkeypatch, source, id_columns=["id"], chunk_rows=3_000)
    assert fast["decoded"] == 8 and slow["decoded"] == 0  # 23,456 rows, 3,000 a chunk
    assert fast == {**slow, "decoded": 8}


@pytest.mark.parametrize(
    ("feature_type", "id_type", "nullable"),
    [
        (pa.float32(), pa.int32(), True),
        (pa.float64(), pa.float64(), False),
        (pa.float32(), pa.float32(), False),
    ],
    ids=["float32-int32", "required-double", "required-float32"],
)
def test_other_numeric_types(tmp_path, monkeypatch, feature_type, id_type, nullable):
    source = tmp_path / "in.parquet"
    t = table(5_000, feature_type=feature_type, id_type=id_type, nullable=nullable)
    pq.write_table(t, source, row_group_size=1_234)
    fast, slow = score_both(tmp_path, monkeypatch, source, id_columns=["id"], chunk_rows=999)
    assert fast["decoded"] == 6
    assert fast == {**slow, "decoded": 6}
    kept = pq.read_table(tmp_path / "slow.parquet").column("id")
    assert kept.type == id_type and kept.combine_chunks().equals(t.column("id").combine_chunks())


@pytest.mark.parametrize(
    ("suffix", "options"),
    [(".csv", {}), (".parquet", {"interval": "prediction"}), (".tsv", {"interval": "confidence"})],
)
def test_csv_output_and_intervals(tmp_path, monkeypatch, suffix, options):
    source = tmp_path / "in.parquet"
    pq.write_table(table(9_000), source, row_group_size=4_000)
    fast, slow = score_both(
        tmp_path, monkeypatch, source, suffix, id_columns=["id"], chunk_rows=2_500, **options
    )
    assert fast["decoded"] == 4
    assert fast == {**slow, "decoded": 4}


def test_default_chunks_span_row_groups_as_pyarrows_batches_do(tmp_path, monkeypatch):
    source = tmp_path / "in.parquet"
    pq.write_table(table(150_001), source, row_group_size=40_000)
    fast, slow = score_both(tmp_path, monkeypatch, source, id_columns=["id"])
    assert fast["decoded"] == 3  # 65,536-row chunks over 40,000-row groups
    assert fast == {**slow, "decoded": 3}


def nonfinite_table(n: int) -> object:
    t = table(n, seed=3)
    latitude = t.column("latitude").to_numpy().copy()
    area = t.column("area").to_numpy().copy()
    latitude[[5, 2_500, 4_999]] = [np.nan, np.inf, -np.inf]
    area[[7, 3_001]] = [1e39, np.nan]  # 1e39: finite, beyond float32
    t = t.set_column(1, t.schema.field(1), pa.array(area))
    return t.set_column(2, t.schema.field(2), pa.array(latitude))


@pytest.mark.parametrize("bad_rows", ["skip", "file", "error"])
def test_bad_rows_are_reported_as_before(tmp_path, monkeypatch, bad_rows):
    source = tmp_path / "in.parquet"
    pq.write_table(nonfinite_table(6_000), source, row_group_size=2_000)
    fast, slow = score_both(
        tmp_path, monkeypatch, source, id_columns=["id"], chunk_rows=1_000, bad_rows=bad_rows
    )
    assert fast["decoded"] >= 1
    assert fast == {**slow, "decoded": fast["decoded"]}
    if bad_rows == "error":
        assert "row 6, column 'latitude': nan is not a finite number" in fast["error"]
    else:
        assert fast["counts"] == (6_000, 5)
    if bad_rows == "file":
        text = fast["files"]["-bad.csv"].decode()
        assert "1e+39 is not a finite number (beyond the range of float32)" in text
        assert '"{""id"": 22, ""area"": 1e+39' in text


@pytest.mark.parametrize(
    ("write", "why"),
    [
        ({"compression": "gzip"}, "codec"),
        ({"column_encoding": {"area": "BYTE_STREAM_SPLIT"}, "use_dictionary": False}, "encoding"),
        ({"write_statistics": False}, "no statistics"),
    ],
    ids=["gzip", "byte-stream-split", "no-statistics"],
)
def test_files_it_cannot_read_go_to_pyarrow(tmp_path, monkeypatch, write, why):
    source = tmp_path / "in.parquet"
    pq.write_table(table(4_000), source, row_group_size=1_500, **write)
    fast, slow = score_both(tmp_path, monkeypatch, source, id_columns=["id"], chunk_rows=1_000)
    assert fast["decoded"] == 0, why
    assert fast == slow


def test_nulls_go_to_pyarrow(tmp_path, monkeypatch):
    t = table(3_000)
    area = t.column("area").to_pylist()
    area[1_234] = None
    t = t.set_column(1, t.schema.field(1), pa.array(area, pa.float64()))
    source = tmp_path / "in.parquet"
    pq.write_table(t, source, row_group_size=1_000)
    fast, slow = score_both(
        tmp_path, monkeypatch, source, id_columns=["id"], chunk_rows=500, bad_rows="file"
    )
    assert fast["decoded"] == 0 and fast == slow
    assert "missing value" in fast["files"]["-bad.csv"].decode()


def test_a_null_the_statistics_hide_hands_over_to_pyarrow_at_its_chunk(tmp_path, monkeypatch):
    """Without statistics the C reader would meet the null itself: it answers False
    there, and pyarrow reads that chunk and the rest, with the same output."""
    t = table(3_000)
    area = t.column("area").to_pylist()
    area[2_345] = None
    t = t.set_column(1, t.schema.field(1), pa.array(area, pa.float64()))
    source = tmp_path / "in.parquet"
    pq.write_table(t, source, row_group_size=1_000, write_statistics=False)
    monkeypatch.setattr(parquet_fast, "_chunks_qualify", lambda metadata, columns: True)
    fast, slow = score_both(
        tmp_path, monkeypatch, source, id_columns=["id"], chunk_rows=500, bad_rows="skip"
    )
    assert fast["decoded"] == 4  # rows 0-1,999; the null is in the fifth chunk
    assert fast == {**slow, "decoded": 4}
    assert fast["counts"] == (3_000, 1)


def test_a_kept_feature_goes_to_pyarrow(tmp_path, monkeypatch):
    source = tmp_path / "in.parquet"
    pq.write_table(table(2_000), source)
    fast, slow = score_both(tmp_path, monkeypatch, source, id_columns=["id", "area"])
    assert fast["decoded"] == 0 and fast == slow


def test_a_damaged_page_is_reported_by_pyarrow(tmp_path, monkeypatch):
    """A page header the C reader cannot parse, in the third row group: pyarrow reads
    from that chunk on, and reports the error at the same row as without the fast path."""
    source = tmp_path / "in.parquet"
    pq.write_table(table(20_000), source, row_group_size=5_000)
    data = bytearray(source.read_bytes())
    chunk = pq.ParquetFile(source).metadata.row_group(2).column(2)
    data[chunk.data_page_offset : chunk.data_page_offset + 16] = b"\xff" * 16
    source.write_bytes(bytes(data))
    fast, slow = score_both(tmp_path, monkeypatch, source, id_columns=["id"], chunk_rows=4_000)
    assert fast["decoded"] == 2  # rows 1-8,000; the third chunk reaches the damage
    assert fast == {**slow, "decoded": 2}
    assert "row 8001" in fast["error"] and "cannot read it" in fast["error"]


def test_a_directory_of_parts_mixes_decoded_and_pyarrow_parts(tmp_path, monkeypatch):
    """Each part is read on its own: the plain ones by the C reader, the gzip one by
    pyarrow, and the output holds every part in name order."""
    source = tmp_path / "parts"
    source.mkdir()
    t = table(9_000, seed=5)
    pq.write_table(t.slice(0, 4_000), source / "part-0.parquet", row_group_size=1_500)
    pq.write_table(t.slice(4_000, 3_000), source / "part-1.parquet", compression="gzip")
    pq.write_table(t.slice(7_000), source / "part-2.parquet", data_page_version="2.0")
    fast, slow = score_both(tmp_path, monkeypatch, source, id_columns=["id"], chunk_rows=1_000)
    assert fast["decoded"] == 6  # 4 chunks of part-0, 2 of part-2
    assert fast == {**slow, "decoded": 6}
    ids = pq.read_table(tmp_path / "fast.parquet").column("id").to_numpy()
    np.testing.assert_array_equal(ids, t.column("id").to_numpy())


def test_a_footer_with_a_value_too_few_hands_over_to_pyarrow(tmp_path, monkeypatch):
    """A column chunk whose footer says 299 values in a row group of 300 rows (the pages
    hold 300): the C reader refuses that chunk's metadata, pyarrow reads from that chunk
    on, and every prediction is the model's for the file's rows."""
    intact = tmp_path / "intact.parquet"
    t = table(900, seed=3)
    pq.write_table(t, intact, row_group_size=300)
    source = tmp_path / "in.parquet"
    edit_column_meta(intact, source, 1, 2, num_values=299)  # column 2: latitude
    assert pq.ParquetFile(source).metadata.row_group(1).column(2).num_values == 299
    fast, slow = score_both(tmp_path, monkeypatch, source, id_columns=["id"], chunk_rows=100)
    assert fast["decoded"] == 3  # the first row group, 100 rows a chunk
    assert fast == {**slow, "decoded": 3}
    out = pq.read_table(tmp_path / "fast.parquet")
    X = np.column_stack([t.column(name).to_numpy() for name in FEATURES])
    expected = Predictor.load(MODEL).predict(X)
    np.testing.assert_array_equal(out.column("id").to_numpy(), t.column("id").to_numpy())
    np.testing.assert_array_equal(out.column("prediction").to_numpy(), expected)


@pytest.mark.parametrize("use_dictionary", [True, False], ids=["dictionary", "plain"])
@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"data_page_offset": -5}, "offset -5 "),
        ({"data_page_offset": -5, "dictionary_page_offset": -5}, "offset -5 "),
        ({"total_compressed_size": 1 << 40}, "1099511627776 bytes long"),
    ],
    ids=["data-page", "both-pages", "past-the-end"],
)
def test_a_footer_pointing_outside_the_file_is_a_data_error(
    tmp_path, monkeypatch, capsys, use_dictionary, fields, shown
):
    """Pages the footer places before the file's start or past its end: the C reader is
    never built for that chunk; pyarrow cannot read it either, and the job ends with our
    BatchError naming the file, the row group and the column (``linreg predict``: exit 1,
    the data status, never 2)."""
    intact = tmp_path / "intact.parquet"
    pq.write_table(table(900, seed=4), intact, row_group_size=300, use_dictionary=use_dictionary)
    source = tmp_path / "in.parquet"
    if "dictionary_page_offset" in fields and not use_dictionary:
        fields = {"data_page_offset": -5}
    edit_column_meta(intact, source, 1, 2, **fields)
    fast, slow = score_both(tmp_path, monkeypatch, source, id_columns=["id"], chunk_rows=100)
    assert fast["decoded"] == 3 and fast["files"] == {} and slow["files"] == {}
    assert fast["error"].startswith(f"{source}, row 301: cannot read it")
    assert "row group 1, column 'latitude': the chunk's pages at offset " in fast["error"]
    assert shown in fast["error"]
    assert slow["error"].startswith(f"{source}, row ")  # pyarrow's words alone
    status = main(["predict", str(MODEL), str(source), "-o", str(tmp_path / "cli.csv")])
    err = capsys.readouterr().err
    assert status == 1, err
    assert str(source) in err and "row group 1, column 'latitude'" in err
    assert not (tmp_path / "cli.csv").exists()


@pytest.mark.parametrize(
    "write",
    [{}, {"use_dictionary": False, "data_page_version": "2.0"}, {"write_statistics": False}],
    ids=["defaults", "plain-v2", "no-statistics"],
)
def test_the_footer_editor_rewrites_footers_exactly(tmp_path, write):
    """The test helper that damages footers: an unedited footer is written back byte for
    byte, and an edit is what pyarrow then reads, with every other field unchanged."""
    source = tmp_path / "in.parquet"
    pq.write_table(table(700), source, row_group_size=300, **write)
    data = source.read_bytes()
    _, footer = read_footer(data)
    assert write_struct(parse_footer(footer)) == footer
    edited = tmp_path / "edited.parquet"
    edit_column_meta(source, edited, 2, 3, num_values=7, data_page_offset=-9)
    before, after = pq.ParquetFile(source).metadata, pq.ParquetFile(edited).metadata
    chunk = after.row_group(2).column(3)
    assert (chunk.num_values, chunk.data_page_offset) == (7, -9)
    assert after.num_rows == before.num_rows and after.schema.equals(before.schema)
    for g in range(before.num_row_groups):
        for j in range(before.num_columns):
            if (g, j) != (2, 3):
                assert (
                    after.row_group(g).column(j).to_dict()
                    == before.row_group(g).column(j).to_dict()
                )
