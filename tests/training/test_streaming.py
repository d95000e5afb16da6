"""The chunked and streamed fits (training.chunked.streaming, training.chunked.tsqr)
against the in-memory fit and numpy, on files and arrays; bad cells named by line in a
2,000,000-row file."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from training.chunked.streaming import CachedChunks, array_chunks, fit_arrays, fit_chunks, fit_file
from training.chunked.tsqr import Factor, combine_all, summarize
from training.data import DataError, Table, load_table
from training.pipeline import train
from training.solver.estimator import ConvergenceWarning

pytestmark = pytest.mark.filterwarnings("ignore::training.stats.CollinearityWarning")

RTOL = 1e-9
FEATURES = ["a", "b", "c"]


def make(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)) * [1.0, 30.0, 0.01] + [5.0, -100.0, 2.0]
    y = X @ [1.5, -0.02, 40.0] + 3.0 + rng.standard_normal(n)
    return X, y


def write(path, X, y) -> None:
    table = pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y})
    if path.suffix == ".parquet":
        pq.write_table(table, path, row_group_size=1000)
    else:
        pacsv.write_csv(table, path)


@pytest.fixture(scope="module")
def data():
    return make(5_000)


@pytest.fixture(scope="module")
def reference(data):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(Table(X, y, FEATURES, "y", "memory"), progress=False)


def assert_same_fit(run, reference, rtol=RTOL):
    a, b = run.statistics, reference.statistics
    np.testing.assert_allclose(a.params, b.params, rtol=rtol)
    np.testing.assert_allclose(a.std_errors, b.std_errors, rtol=rtol)
    np.testing.assert_allclose(a.covariance, b.covariance, rtol=rtol)
    np.testing.assert_allclose(a.conf_int, b.conf_int, rtol=rtol)
    for name in ("r2", "adj_r2", "f_statistic", "rss", "tss", "residual_variance"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=rtol), name
    assert a.condition_number == pytest.approx(b.condition_number, rel=1e-9)
    assert a.n_samples == b.n_samples and a.df_resid == b.df_resid and a.names == b.names
    np.testing.assert_allclose(a.t_quantiles["0.95"], b.t_quantiles["0.95"], rtol=1e-12)
    for key in ("mse", "rmse", "mae", "r2"):
        assert run.metrics["train"][key] == pytest.approx(reference.metrics["train"][key], rel=1e-9)


def test_summaries_combine_to_the_centered_cross_products(data):
    X, y = data
    data_ = np.column_stack([X, y])
    summaries = [summarize(X[i : i + 777], y[i : i + 777]) for i in range(0, len(y), 777)]
    s = combine_all(reversed(summaries))  # any order, any grouping
    centered = data_ - data_.mean(axis=0)
    np.testing.assert_allclose(s.R.T @ s.R, centered.T @ centered, rtol=1e-10, atol=1e-6)
    np.testing.assert_allclose(s.mean, data_.mean(axis=0), rtol=1e-13)
    assert s.n == len(y)
    raw = combine_all(
        summarize(X[i : i + 999], y[i : i + 999], fit_intercept=False) for i in (0, 999)
    )
    np.testing.assert_allclose(raw.R.T @ raw.R, data_[:1998].T @ data_[:1998], rtol=1e-10)


def test_orthogonalized_features_have_identity_hessian(data):
    X, y = data
    f = Factor(combine_all(summarize(X[i : i + 500], y[i : i + 500]) for i in range(0, 5000, 500)))
    U = f.orthogonal(X)
    np.testing.assert_allclose(U.T @ U / len(y), np.eye(3), atol=1e-10)
    np.testing.assert_allclose(U.mean(axis=0), 0.0, atol=1e-10)


def test_chunked_fit_equals_the_in_memory_fit_and_lstsq(data, reference):
    X, y = data
    run = fit_arrays(X, y, features=FEATURES, chunk_rows=700, progress=False)
    assert_same_fit(run, reference)
    design = np.column_stack([np.ones(len(y)), X])
    expected = np.linalg.lstsq(design, y, rcond=None)[0]
    np.testing.assert_allclose(run.statistics.params, expected, rtol=1e-10)
    assert run.estimator.converged_ and run.data["engine"] == "chunked"
    assert [p["pass"] for p in run.data["passes"]] == ["factor", "epoch", "epoch"]
    np.testing.assert_allclose(run.estimator.predict(X[:5]), design[:5] @ expected, rtol=1e-10)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_streamed_file_fit_equals_the_in_memory_fit(tmp_path, data, reference, suffix):
    X, y = data
    path = tmp_path / f"d{suffix}"
    write(path, X, y)
    table = load_table(path, target="y")
    np.testing.assert_array_equal(table.X, X)  # pyarrow writes round-trip digits
    run = fit_file(path, target="y", chunk_rows=600, progress=False)
    assert_same_fit(run, reference)
    assert run.features == FEATURES and run.data["source"] == str(path)
    assert run.X_train.shape == (5_000, 3)  # the sample: every row of a small file
    cached = fit_file(path, target="y", chunk_rows=600, in_memory=True, progress=False)
    assert_same_fit(cached, reference)


def test_cached_chunks_read_the_source_once():
    X, y = make(1_000)
    reads = []
    base = array_chunks(X, y, 100)

    def counting():
        reads.append(1)
        return base()

    source = CachedChunks(counting)
    run = fit_chunks(source, features=FEATURES, target="y", total_rows=1_000, progress=False)
    assert len(reads) == 1 and len(run.data["passes"]) == 3


def test_without_intercept_matches_the_in_memory_fit(data):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = train(Table(X, y, FEATURES, "y", "m"), fit_intercept=False, progress=False)
    run = fit_arrays(X, y, features=FEATURES, chunk_rows=1000, fit_intercept=False, progress=False)
    assert_same_fit(run, ref)


def test_minibatches_within_chunks_reach_the_optimum_closely(data, reference):
    X, y = data
    with pytest.warns(ConvergenceWarning):
        run = fit_arrays(
            X, y, features=FEATURES, chunk_rows=1000, batch_size=50, max_epochs=8, progress=False
        )
    assert run.estimator.lr_ < 0.5  # 1 / max |u_i|²
    history = run.estimator.loss_history_
    assert history[-1] < history[0] / 10
    assert reference.statistics.mse <= run.statistics.mse <= 1.05 * reference.statistics.mse


def test_collinear_and_constant_columns_are_named_as_in_memory():
    X, y = make(300)
    bad = np.column_stack([X, 2 * X[:, 0]])
    with pytest.raises(DataError, match="exactly collinear: columns 'a', 'd'"):
        fit_arrays(bad, y, features=[*FEATURES, "d"], chunk_rows=50, progress=False)
    const = np.column_stack([X, np.full(300, 7.0)])
    with pytest.raises(DataError, match="feature column 'd' is constant"):
        fit_arrays(const, y, features=[*FEATURES, "d"], chunk_rows=50, progress=False)


def test_raw_feature_presets_are_refused(data):
    X, y = data
    with pytest.raises(ValueError, match="always preconditions"):
        fit_arrays(X, y, preset="tutorial", progress=False)


def test_export_of_a_streamed_fit(tmp_path, data):
    from inference import Predictor
    from training.export import export_model

    X, y = data
    path = tmp_path / "d.parquet"
    write(path, X, y)
    run = fit_file(path, target="y", chunk_rows=1000, progress=False)
    out = export_model(run, tmp_path / "model", plots=False)
    model = Predictor.load(out)
    expected = np.column_stack([np.ones(20), X[:20]]) @ run.statistics.params
    np.testing.assert_allclose(model.predict(X[:20]), expected, rtol=1e-5)


@pytest.fixture(scope="module")
def bad_csv(tmp_path_factory):
    """2,000,000 rows (a, b, y); row 1,500,001 has 'oops' in column b (line 1,500,002)."""
    n, bad_row = 2_000_000, 1_500_001
    rng = np.random.default_rng(5)
    a = rng.integers(0, 1000, n)
    b = rng.integers(0, 1000, n)
    y = a + 2 * b + rng.integers(0, 7, n)
    table = pa.table({"a": a, "b": b, "y": y})
    out = io.BytesIO()
    pacsv.write_csv(table.slice(0, bad_row - 1), out)
    out.write(f"{a[bad_row - 1]},oops,{y[bad_row - 1]}\n".encode())
    pacsv.write_csv(
        table.slice(bad_row), out, write_options=pacsv.WriteOptions(include_header=False)
    )
    path = tmp_path_factory.mktemp("bad") / "big.csv"
    path.write_bytes(out.getvalue())
    return path


def test_bad_cell_far_down_is_named_by_line_in_memory(bad_csv):
    with pytest.raises(
        DataError,
        match=r"big\.csv: column 'b', row 1500001 \(line 1500002\): the value 'oops' is not "
        r"numeric \(1 bad cell\(s\) in this column\)",
    ):
        load_table(bad_csv, target="y")


def test_bad_cell_far_down_is_named_by_line_when_streaming(bad_csv):
    with pytest.raises(
        DataError,
        match=r"big\.csv: column 'b', row 1500001 \(line 1500002\): the value 'oops' is not "
        r"numeric$",
    ):
        fit_file(bad_csv, target="y", progress=False)


def test_cli_streaming_prints_summary_and_rate(tmp_path, data, capsys):
    from linreg.main import main

    X, y = data
    path = tmp_path / "d.csv"
    write(path, X, y)
    assert (
        main(["train", "--data", str(path), "--target", "y", "--streaming", "--chunk-rows", "999"])
        == 0
    )
    out = capsys.readouterr().out
    assert "5,000 rows fitted streaming (3 passes)" in out
    assert "rows/s" in out.splitlines()[-1]
    assert (
        main(["train", "--data", str(path), "--target", "y", "--streaming", "--test-size", "0.2"])
        == 2
    )
    assert "--test-size is not available" in capsys.readouterr().err


def test_cli_auto_engine_chunks_then_streams_by_file_size(tmp_path, data, capsys, monkeypatch):
    import training.defaults
    from linreg.main import main

    X, y = data
    path = tmp_path / "d.csv"
    write(path, X, y)
    assert main(["train", "--data", str(path), "--target", "y"]) == 0
    assert "rows fitted" not in capsys.readouterr().out  # small: loaded, the in-memory fit
    monkeypatch.setattr(training.defaults, "CHUNKED_THRESHOLD_BYTES", path.stat().st_size)
    assert main(["train", "--data", str(path), "--target", "y"]) == 0
    assert "5,000 rows fitted chunked" in capsys.readouterr().out
    monkeypatch.setattr(training.defaults, "STREAMING_THRESHOLD_BYTES", path.stat().st_size)
    assert main(["train", "--data", str(path), "--target", "y"]) == 0
    assert "5,000 rows fitted streaming" in capsys.readouterr().out
    assert main(["train", "--data", str(path), "--target", "y", "--engine", "chunked"]) == 0
    assert "5,000 rows fitted chunked (3 passes)" in capsys.readouterr().out
    assert main(["train", "--target", "y", "--engine", "chunked"]) == 2
    assert "need --data" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_chunked_fit_imports_neither_sklearn_nor_dynamo(tmp_path, data):
    """``linreg train`` in chunks prints its summary without importing scikit-learn or
    torch._dynamo (1 s and 1.6 s of a short job; see training.solver.sgd.EagerSGD), and
    exporting the same run then builds the scikit-learn estimator."""
    import subprocess
    import sys

    X, y = data
    path = tmp_path / "d.csv"
    write(path, X, y)
    code = (
        "import sys\n"
        "from linreg.main import main\n"
        "args = ['train', '--data', sys.argv[1], '--target', 'y', '--engine', 'chunked']\n"
        "if len(sys.argv) > 2: args += ['--out', sys.argv[2]]\n"
        "assert main(args) == 0\n"
        "print('IMPORTED', 'sklearn' in sys.modules, 'torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    assert "5,000 rows fitted chunked" in done.stdout
    assert done.stdout.splitlines()[-1] == "IMPORTED False False"
    out = tmp_path / "model"
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (out / "manifest.json").is_file()
    assert done.stdout.splitlines()[-1].startswith("IMPORTED True")


@pytest.mark.parametrize(
    ("n", "size", "chunk"), [(300_000, 10_000, 8192), (5_000, 10_000, 700), (25_000, 10_000, 3_000)]
)
def test_sample_is_the_rows_with_the_smallest_keys_in_file_order(n, size, chunk):
    """training.chunked.sources.Sample against the definition: draw the same keys chunk by chunk,
    take the ``size`` smallest over the whole data, in file order."""
    from training.chunked.sources import Sample

    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(n, 3)), rng.normal(size=n)
    sample = Sample(size, seed=0)
    for lo in range(0, n, chunk):
        sample.add(X[lo : lo + chunk], y[lo : lo + chunk])
    draw = np.random.default_rng(0)
    keys = np.concatenate([draw.random(len(y[lo : lo + chunk])) for lo in range(0, n, chunk)])
    rows = np.sort(np.argsort(keys)[:size])
    assert len(rows) == min(n, size)
    np.testing.assert_array_equal(sample.X, X[rows])
    np.testing.assert_array_equal(sample.y, y[rows])
