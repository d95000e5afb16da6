"""The Dask fit (training.chunked.dask) on a LocalCluster of two worker processes (loopback
only): the in-memory fit's coefficients and standard errors, and bytes per epoch that do
not grow with the rows."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

from training.chunked.dask import fit_dask  # noqa: E402
from training.data import DataError, Table  # noqa: E402
from training.pipeline import train  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::training.stats.CollinearityWarning"),
    pytest.mark.slow,
]

FEATURES = ["area", "latitude", "dist"]


@pytest.fixture(scope="module")
def client():
    from inference.dask import local_client

    with local_client(workers=2) as client:  # 2 worker processes on 127.0.0.1
        yield client


def make(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)) * [1.0, 4.0, 80.0] + [2.0, 42.0, 150.0]
    y = X @ [0.5, -0.1, 0.003] + 1.0 + 0.3 * rng.standard_normal(n)
    return X, y


def frame(X, y, partitions: int):
    df = pd.DataFrame({"area": X[:, 0], "latitude": X[:, 1], "dist": X[:, 2], "y": y})
    return dd.from_pandas(df, npartitions=partitions)


def test_same_fit_as_in_memory(client):
    X, y = make(6_000)
    run = fit_dask(frame(X, y, 5), target="y", client=client)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = train(Table(X, y, FEATURES, "y", "memory"), progress=False)
    a, b = run.statistics, ref.statistics
    np.testing.assert_allclose(a.params, b.params, rtol=1e-9)
    np.testing.assert_allclose(a.std_errors, b.std_errors, rtol=1e-9)
    np.testing.assert_allclose(a.covariance, b.covariance, rtol=1e-9)
    assert a.r2 == pytest.approx(b.r2, rel=1e-9)
    assert a.f_statistic == pytest.approx(b.f_statistic, rel=1e-9)
    expected = np.linalg.lstsq(np.column_stack([np.ones(len(y)), X]), y, rcond=None)[0]
    np.testing.assert_allclose(a.params, expected, rtol=1e-10)
    assert run.estimator.converged_ and run.data["engine"] == "dask"
    assert run.data["partitions"] == 5 and run.features == FEATURES


def test_bytes_per_epoch_do_not_grow_with_rows(client):
    small = fit_dask(frame(*make(2_000), 4), target="y", client=client)
    large = fit_dask(frame(*make(40_000), 4), target="y", client=client)
    assert small.data["bytes_per_epoch"] == large.data["bytes_per_epoch"]
    assert small.data["factor_bytes"] == large.data["factor_bytes"]
    # an epoch returns k + 6 numbers per partition, far below one row per partition
    assert max(large.data["bytes_per_epoch"]) < 4 * 2_000


def test_minibatches_and_bad_values_are_refused(client):
    X, y = make(500)
    with pytest.raises(ValueError, match="batch_size is not available on Dask"):
        fit_dask(frame(X, y, 2), target="y", client=client, batch_size=10)
    y[321] = np.nan
    with pytest.raises(DataError, match=r"column 'y', row \d+ of the partition: nan"):
        fit_dask(frame(X, y, 2), target="y", client=client)


def test_cli_engine_dask(tmp_path, capsys):
    from linreg.main import main

    X, y = make(3_000)
    path = tmp_path / "d.csv"
    pd.DataFrame({"area": X[:, 0], "latitude": X[:, 1], "dist": X[:, 2], "y": y}).to_csv(
        path, index=False
    )
    status = main(["train", "--data", str(path), "--target", "y", "--engine", "dask"])
    assert status == 0
    out = capsys.readouterr().out
    assert "3,000 rows fitted dask" in out and "rows/s" in out
    expected = np.linalg.lstsq(np.column_stack([np.ones(len(y)), X]), y, rcond=None)[0]
    assert f"{expected[1]:.6f}" in out


def test_progress_bars_count_the_partitions_of_each_pass(client, capsys):
    X, y = make(3_000)
    run = fit_dask(frame(X, y, 3), target="y", client=client, progress=True)
    err = capsys.readouterr().err
    passes = [p["pass"] for p in run.data["passes"]]
    assert passes[0] == "factor" and passes.count("epoch") >= 2
    assert "factor: 100%" in err and "3/3" in err
    # one bar per epoch pass, each ending at the 3 partitions
    assert err.count("epoch: 100%") == passes.count("epoch")
