"""The Dask adapter with a model fitted on a real table (text columns as factors, gaps),
on a LocalCluster of two worker processes (loopback only): each partition's predictions
are ``Predictor.predict``'s on the same rows, bit for bit, and statsmodels' fitted values
to 1e-12 (float64)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

#: starts processes (a cluster, a server, a browser): not in the fast subset
pytestmark = pytest.mark.slow

dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")
pytest.importorskip("torch")
pytest.importorskip("statsmodels")

from inference import InputError, Predictor  # noqa: E402
from inference.batch import score_file  # noqa: E402
from inference.dask import predict_dask, score_file_dask  # noqa: E402
from tests.inference.design_models import (  # noqa: E402
    PENGUINS_FORMULA,
    RTOL,
    export,
    fitted_values,
    penguins,
)


@pytest.fixture(scope="module")
def client():
    from inference.dask import local_client

    with local_client(workers=2) as client:
        yield client


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    directory = tmp_path_factory.mktemp("penguins") / "model"
    return export(penguins(), PENGUINS_FORMULA, directory, "float64")


@pytest.fixture(scope="module")
def complete():
    frame = penguins()
    return frame.loc[fitted_values(frame, PENGUINS_FORMULA).index].reset_index(drop=True)


def predict_each(predictor: Predictor, parts: list[pd.DataFrame], **kwargs) -> list:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the columns the model does not read
        return [predictor.predict(part, **kwargs) for part in parts]


@pytest.mark.parametrize("categorical", [False, True])
def test_partitions_equal_predict_and_statsmodels(client, model, complete, categorical):
    frame = complete.astype({"species": "category"}) if categorical else complete
    ddf = dd.from_pandas(frame, npartitions=3, sort=False)
    got = client.compute(predict_dask(ddf, model, interval="confidence")).result()
    predictor = Predictor.load(model, providers="cpu")
    parts = [ddf.get_partition(i).compute() for i in range(ddf.npartitions)]
    expected = predict_each(predictor, parts, interval="confidence")
    np.testing.assert_array_equal(
        got["prediction"], np.concatenate([e.prediction for e in expected])
    )
    np.testing.assert_array_equal(
        got["prediction_lower"], np.concatenate([e.lower for e in expected])
    )
    fitted = fitted_values(penguins(), PENGUINS_FORMULA).to_numpy()
    scale = RTOL["float64"] * np.abs(fitted).max()
    np.testing.assert_allclose(got["prediction"], fitted, rtol=RTOL["float64"], atol=scale)


def test_an_unseen_level_or_a_gap_names_partition_row_and_column(client, model, complete):
    bad = complete.copy()
    bad.loc[300, "island"] = "Atlantis"  # in the last of 3 partitions of 111 rows
    with pytest.raises(InputError, match=r"partition 2: row 79, column 'island': the value "):
        client.compute(predict_dask(dd.from_pandas(bad, npartitions=3, sort=False), model)).result()
    bad = complete.copy()
    bad.loc[5, "sex"] = None
    with pytest.raises(InputError, match=r"partition 0: row 6, column 'sex': a missing value"):
        client.compute(predict_dask(dd.from_pandas(bad, npartitions=3, sort=False), model)).result()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_score_file_dask_equals_the_streaming_job(client, model, complete, tmp_path, suffix):
    source = tmp_path / f"in{suffix}"
    if suffix == ".csv":
        complete.to_csv(source, index=False)
    else:
        complete.to_parquet(source, index=False)
    single = tmp_path / "single.parquet"
    score_file(model, source, single, id_columns=["island"])
    on_cluster = tmp_path / "cluster.parquet"
    report = score_file_dask(
        model, source, on_cluster, scheduler=client.scheduler.address, id_columns=["island"]
    )
    assert report.rows_written == len(complete)
    a, b = pd.read_parquet(single), pd.read_parquet(on_cluster)
    assert a["island"].tolist() == b["island"].tolist() == complete["island"].tolist()
    np.testing.assert_array_equal(a["prediction"], b["prediction"])  # one partition, one call


def test_intervals_of_a_model_whose_probe_row_is_outside_its_domain(client, tmp_path):
    """predict_dask checks the interval on a row of ones before it runs: log(1 - 150)
    is not finite, which must not refuse a model that scores every real row."""
    formula = "body_mass_g ~ np.log(flipper_length_mm - 150) + C(species)"
    frame = penguins().dropna(subset=["body_mass_g", "flipper_length_mm", "species"])
    frame = frame.reset_index(drop=True)
    directory = export(frame, formula, tmp_path / "model", "float64")
    ddf = dd.from_pandas(frame, npartitions=2, sort=False)
    got = client.compute(predict_dask(ddf, directory, interval="prediction")).result()
    predictor = Predictor.load(directory)
    parts = [ddf.get_partition(i).compute() for i in range(ddf.npartitions)]
    want = predict_each(predictor, parts, interval="prediction")
    np.testing.assert_array_equal(got["prediction_lower"], np.concatenate([w.lower for w in want]))
    np.testing.assert_array_equal(got["prediction_upper"], np.concatenate([w.upper for w in want]))
