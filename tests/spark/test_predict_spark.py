"""``predict_spark`` on ``local[2]``: the Predictor's predictions bit for bit (1M rows),
intervals, shipped models, bad rows, one load per Python worker; and MLflow's
``spark_udf`` on the same directory."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from inference import InputError, Predictor
from tests.spark.conftest import needs_spark

pytestmark = needs_spark

BUNDLED = os.path.join(os.path.dirname(__file__), "..", "..", "exported_models")
MLR = os.path.abspath(os.path.join(BUNDLED, "plant_richness_mlr"))


def _table(rows, seed=0):
    """Features of plant_richness_mlr: ``area`` int64, the others float64, and an ``id``."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "area": rng.integers(0, 5000, rows),
            "latitude": rng.normal(40, 10, rows),
            "dist_mainland": rng.uniform(0, 300, rows),
        }
    )


def _spark_frame(spark, table, partitions=None):
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    df = spark.createDataFrame(table)
    return df.repartition(partitions) if partitions else df


def _collect(df):
    return df.toPandas().sort_values("id").reset_index(drop=True)


def test_one_million_rows_bit_for_bit(spark):
    from inference.spark import predict_spark

    table = _table(1_000_000)
    scored = _collect(predict_spark(_spark_frame(spark, table), MLR))
    want = Predictor.load(MLR).predict(table)
    assert scored["prediction"].dtype == np.float32 and len(scored) == 1_000_000
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), want, strict=True)
    np.testing.assert_array_equal(scored["area"].to_numpy(), table["area"].to_numpy())


def test_a_float64_model_with_intervals_shipped_to_the_executors(spark, exported):
    from inference.spark import predict_spark

    _, model = exported("plant_richness_mlr", "float64")
    table = _table(50_000, seed=1)
    df = _spark_frame(spark, table, partitions=4)
    scored = _collect(
        predict_spark(df, model, column="y", interval="prediction", level=0.9, ship=True)
    )
    want = Predictor.load(model).predict(table, interval="prediction", level=0.9)
    assert list(scored.columns) == [*table.columns, "y", "y_lower", "y_upper"]
    for name, values in zip(("y", "y_lower", "y_upper"), want, strict=True):
        np.testing.assert_array_equal(scored[name].to_numpy(), values, strict=True)
    assert any(a.endswith(".zip") for a in spark.sparkContext.listArchives)


def _with_bad_values(spark, table):
    """Row 100 null, 200 NaN, 300 inf and 400 beyond float32 in ``latitude``."""
    from pyspark.sql import functions as F

    df = _spark_frame(spark, table, partitions=3)
    value = F.col("latitude")
    for row, bad in ((100, None), (200, float("nan")), (300, float("inf")), (400, 1e39)):
        value = F.when(F.col("id") == row, F.lit(bad).cast("double")).otherwise(value)
    return df.withColumn("latitude", value)


def test_a_bad_row_fails_the_action_with_the_predictors_message(spark):
    from pyspark.errors import PythonException
    from pyspark.sql import functions as F

    from inference.spark import predict_spark

    table = _table(1000, seed=2)
    df = _with_bad_values(spark, table).filter(~F.col("id").isin(100, 300, 400))  # the NaN
    with pytest.raises(PythonException) as caught:
        predict_spark(df, MLR).collect()
    one = table.iloc[[0]].assign(latitude=np.nan)
    with pytest.raises(InputError) as expected:
        Predictor.load(MLR).predict(one)
    message = str(expected.value).removeprefix("row 0, ")
    assert "inference.errors.InputError: Spark partition" in str(caught.value)
    assert message in str(caught.value)


def test_bad_rows_null_leaves_nulls_and_counts_them(spark):
    from inference.spark import predict_spark

    table = _table(1000, seed=3)
    counter = spark.sparkContext.accumulator(0)
    df = _with_bad_values(spark, table)
    scored = _collect(
        predict_spark(df, MLR, interval="confidence", bad_rows="null", bad_row_counter=counter)
    )
    bad = scored["id"].isin([100, 200, 300, 400]).to_numpy()
    for name in ("prediction", "prediction_lower", "prediction_upper"):
        assert scored[name].isna().to_numpy().tolist() == bad.tolist()
    assert counter.value == 4
    good = table[~table["id"].isin([100, 200, 300, 400])]
    want = Predictor.load(MLR).predict(good, interval="confidence")
    np.testing.assert_array_equal(
        scored.loc[~bad, "prediction"].to_numpy(), want.prediction.astype(np.float32)
    )
    np.testing.assert_array_equal(scored.loc[~bad, "prediction_upper"].to_numpy(), want.upper)


def test_each_python_worker_loads_and_checks_the_model_once(spark, tmp_path):
    from inference.spark import load_count, predict_spark

    model = tmp_path / "model"
    shutil.copytree(MLR, model)  # a path no earlier test loaded
    df = _spark_frame(spark, _table(20_000, seed=4), partitions=16)
    assert predict_spark(df, model).count() == 20_000  # 16 tasks, 2 at a time
    path = str(model.absolute())

    def report(batches):  # in the same pool of Python workers as the scoring (SQL, Arrow)
        import pyarrow as pa

        for batch in batches:
            yield pa.RecordBatch.from_pydict(
                {
                    "pid": [os.getpid()] * batch.num_rows,
                    "loads": [load_count(path)] * batch.num_rows,
                }
            )

    rows = spark.range(16).repartition(16).mapInArrow(report, "pid long, loads long").collect()
    per_worker = {r.pid: r.loads for r in rows}
    assert max(per_worker.values()) == 1, per_worker


def test_columns_are_checked_before_anything_runs(spark):
    from pyspark.sql import functions as F

    from inference.spark import predict_spark

    df = _spark_frame(spark, _table(10))
    with pytest.raises(InputError, match=r"no column\(s\) \['latitude'\]"):
        predict_spark(df.drop("latitude"), MLR)
    with pytest.raises(InputError, match="column 'area' is string; expected numbers"):
        predict_spark(df.withColumn("area", F.col("area").cast("string")), MLR)
    with pytest.raises(ValueError, match="already has a column 'id'"):
        predict_spark(df, MLR, column="id")
    with pytest.raises(ValueError, match="bad_rows must be"):
        predict_spark(df, MLR, bad_rows="skip")
    with pytest.raises(TypeError, match="pass the model's path"):
        predict_spark(df, Predictor.load(MLR))


def test_mlflow_spark_udf_on_the_same_directory(spark):
    pytest.importorskip("mlflow")
    import mlflow
    from pyspark.sql import functions as F

    table = _table(30_000, seed=5)
    udf = mlflow.pyfunc.spark_udf(spark, MLR, env_manager="local")
    features = ["area", "latitude", "dist_mainland"]
    scored = _collect(_spark_frame(spark, table).withColumn("u", udf(F.struct(*features))))
    want = Predictor.load(MLR).predict(table)
    # one float per row (the output signature is a float column, not a tensor: no lists)
    np.testing.assert_array_equal(scored["u"].to_numpy(), want, strict=True)
