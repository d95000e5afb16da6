"""The worker side of ``predict_spark`` without Spark: the cache, the manifest check,
the Arrow batches; and the command line's checks of the Spark flags."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from inference import ModelLoadError, Predictor
from inference.manifest import MANIFEST_NAME
from linreg.main import main

MLR = Path(__file__).resolve().parents[2] / "exported_models" / "plant_richness_mlr"


def _job(model: Path, **changes):
    import hashlib

    from inference.spark import SparkJob

    fields = dict(
        model=str(model),
        shipped=False,
        manifest_sha256=hashlib.sha256((model / MANIFEST_NAME).read_bytes()).hexdigest(),
        features=("area", "latitude", "dist_mainland"),
        column="prediction",
        interval=None,
        level=0.95,
        bad_rows="error",
        threads=1,
    )
    return SparkJob(**{**fields, **changes})


def test_a_worker_loads_once_and_refuses_another_model(tmp_path):
    from inference.spark import clear_cache, get_predictor, load_count

    model = tmp_path / "model"
    shutil.copytree(MLR, model)
    job = _job(model)
    assert get_predictor(job) is get_predictor(job) and load_count(str(model)) == 1
    other = _job(model, manifest_sha256="0" * 64)
    with pytest.raises(ModelLoadError, match="not the one the driver read"):
        get_predictor(other)
    clear_cache()
    assert load_count() == 0


def test_batches_come_back_with_the_predictions(tmp_path):
    pa = pytest.importorskip("pyarrow")
    from inference.spark.scoring import score_batches

    rng = np.random.default_rng(0)
    columns = {
        "area": pa.array(rng.integers(0, 100, 50)),
        "latitude": pa.array(rng.normal(40, 5, 50)),
        "dist_mainland": pa.array(rng.uniform(0, 9, 50).astype(np.float32)),
        "name": pa.array([f"island {i}" for i in range(50)]),
    }
    batch = pa.RecordBatch.from_pydict(columns)
    job = _job(MLR, interval="prediction")
    (out,) = list(score_batches(job, None, None, iter([batch])))
    assert out.schema.names == [*columns, "prediction", "prediction_lower", "prediction_upper"]
    want = Predictor.load(MLR).predict(batch.to_pandas(), interval="prediction")
    np.testing.assert_array_equal(out.column("prediction").to_numpy(), want.prediction.astype("f4"))
    np.testing.assert_array_equal(out.column("prediction_lower").to_numpy(), want.lower)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--master", "local[2]"], "--master needs --engine spark"),
        (
            ["--engine", "spark", "--bad-rows", "skip"],
            "--engine spark takes --bad-rows error or null",
        ),
        (["--engine", "spark", "--parse-threads", "2"], "--parse-threads needs --engine streaming"),
    ],
)
def test_the_spark_flags_are_checked(tmp_path, capsys, args, message):
    src = tmp_path / "in.csv"
    src.write_text("area,latitude,dist_mainland\n1,2,3\n")
    assert main(["predict", str(MLR), str(src), "-o", str(tmp_path / "out.csv"), *args]) == 2
    assert message in capsys.readouterr().err
