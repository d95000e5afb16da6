"""The Dask adapter on a LocalCluster of two worker processes (loopback only)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

#: starts processes (a cluster, a server, a browser): not in the fast subset
pytestmark = pytest.mark.slow


dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

from inference import InputError, Predictor  # noqa: E402
from inference.batch import score_file  # noqa: E402
from inference.dask import (  # noqa: E402
    get_predictor,
    load_count,
    predict_dask,
    score_file_dask,
)
from linreg.main import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "exported_models" / "plant_richness_mlr"
N = 4_000
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(scope="module")
def client():
    from inference.dask import local_client

    with local_client(workers=2) as client:  # 2 worker processes on 127.0.0.1
        yield client


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(7)
    index = rng.permutation(N) + 10_000  # not sorted: the row order must survive as it is
    return pd.DataFrame(
        {
            "id": [f"k{i}" for i in range(N)],
            "area": rng.uniform(-1, 4, N).round(4),
            "latitude": rng.uniform(35, 48, N).round(3),
            "dist_mainland": rng.uniform(0, 300, N).round(2),
        },
        index=index,
    )


def test_predictions_equal_row_order_kept_and_one_load_per_worker(client, frame):
    ddf = dd.from_pandas(frame, npartitions=16, sort=False)
    scored = predict_dask(ddf, MODEL, interval="confidence")
    assert list(scored.columns) == [
        *frame.columns,
        "prediction",
        "prediction_lower",
        "prediction_upper",
    ]
    got = client.compute(scored).result()
    expected = Predictor.load(MODEL, providers="cpu").predict(frame, interval="confidence")
    assert got.index.equals(frame.index) and got["id"].tolist() == frame["id"].tolist()
    assert got["prediction"].dtype == np.float32
    # ONNX Runtime's float32 kernel may sum a batch's last rows in another order than
    # the same rows inside a bigger batch: equal to a few float32 ulps.
    np.testing.assert_allclose(got["prediction"], expected.prediction, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got["prediction_lower"], expected.lower, rtol=RTOL, atol=ATOL)

    counts = client.run(load_count, str(MODEL))
    assert len(counts) == 2 and set(counts.values()) == {1}, counts
    client.compute(predict_dask(ddf, MODEL)).result()  # a second job reuses the sessions
    assert set(client.run(load_count, str(MODEL)).values()) == {1}


def test_the_graph_ships_the_path_never_a_session(frame):
    ddf = dd.from_pandas(frame, npartitions=2)
    graph = predict_dask(ddf, MODEL).__dask_graph__()
    pickle.dumps(dict(graph))  # would raise TypeError if a Predictor were in it
    with pytest.raises(TypeError, match="pass the model's path"):
        predict_dask(ddf, get_predictor(MODEL))


def test_errors_are_found_before_running_or_name_the_partition(client, frame):
    with pytest.raises(InputError, match=r"no column\(s\) \['latitude'\]"):
        predict_dask(dd.from_pandas(frame.drop(columns="latitude"), npartitions=2), MODEL)
    bad = frame.copy()
    bad.iloc[N - 10, 2] = np.nan  # latitude, in the last of 4 partitions
    scored = predict_dask(dd.from_pandas(bad, npartitions=4, sort=False), MODEL)
    with pytest.raises(InputError, match=r"partition 3: row 990, column 'latitude'"):
        client.compute(scored).result()


# The CLI's own local cluster finds port 8787 (the scheduler's HTTP server, on
# 127.0.0.1) taken by the fixture's cluster and picks another one.
@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")
def test_cluster_job_equals_the_single_machine_job(client, frame, tmp_path, capsys):
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    single = tmp_path / "single.parquet"
    score_file(MODEL, source, single, id_columns=["id"])
    on_cluster = tmp_path / "cluster.parquet"
    report = score_file_dask(
        MODEL,
        source,
        on_cluster,
        scheduler=client.scheduler.address,
        id_columns=["id"],
        blocksize=20_000,  # several partitions
    )
    assert report.rows_written == N and report.engine == "dask"
    a, b = pd.read_parquet(single), pd.read_parquet(on_cluster)
    assert a["id"].tolist() == b["id"].tolist() == frame["id"].tolist()
    np.testing.assert_allclose(a["prediction"], b["prediction"], rtol=RTOL, atol=ATOL)

    # the command line, on a local cluster of its own (two worker processes)
    out = tmp_path / "cli.csv"
    args = ["predict", str(MODEL), str(source), "-o", str(out), "--id-columns", "id"]
    assert main([*args, "--engine", "dask", "--workers", "2"]) == 0
    assert f"scored {N} rows" in capsys.readouterr().err
    c = pd.read_csv(out)
    assert c["id"].tolist() == frame["id"].tolist()
    np.testing.assert_allclose(c["prediction"], a["prediction"], rtol=RTOL, atol=ATOL)
    assert main([*args, "--engine", "dask", "--bad-rows", "skip", "--overwrite"]) == 2
