"""Scoring a Spark DataFrame: ``inference.spark.predict_spark`` beside MLflow's ``spark_udf``.

Run: ``.venv/bin/python benchmarks/bench_spark.py --rows 1000000 --repeats 5``
(needs the ``spark`` and ``mlflow`` extras and a Java 17+ runtime).

One Spark session (``--master``, default ``local[2]``) and one DataFrame of ``--rows``
rows (an ``id``, the model's features: the first an int64 column, the others
float64), built once from pandas and cached, so that every job reads the same rows
from memory. Each job is one action that computes every prediction and writes them
nowhere (``write.format("noop")``):

- ``scan``: the cached DataFrame alone (what reading it costs every job)
- ``predict_spark``: ``predict_spark(df, MODEL)`` (``mapInArrow``, Arrow batches
  straight into one ONNX Runtime call each)
- ``spark_udf``: ``df.withColumn("prediction", mlflow.pyfunc.spark_udf(spark, MODEL,
  env_manager="local")(struct(*features)))`` (a pandas UDF: Arrow to pandas, MLflow's
  pyfunc, pandas back to Arrow)

Each job runs once untimed (the Python workers start and load the model), then
``--repeats`` times, interleaved, in an order rotated from repeat to repeat; the
table gives medians and the ratio to ``predict_spark``. Before timing, both jobs'
predictions are collected and compared with ``Predictor.predict`` on the same rows
(``predict_spark`` bit for bit, ``spark_udf`` equal), so a wrong job cannot win.
The machine's CPU, ``/proc/loadavg`` before and after, and the versions are printed:
on a shared machine, other processes' load changes the figures, not the ratio's sign.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
JOBS = ("scan", "predict_spark", "spark_udf")


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    return f"{platform.machine()}, {os.cpu_count()} cores"


def _load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def _table(rows: int, features: list[str]):
    import pandas as pd

    rng = np.random.default_rng(0)
    data = {"id": np.arange(rows, dtype=np.int64)}
    for j, name in enumerate(features):
        data[name] = rng.integers(0, 1000, rows) if j == 0 else rng.normal(40, 10, rows)
    return pd.DataFrame(data)


def _jobs(spark, df, model: str, features: list[str]) -> dict:
    import mlflow
    from pyspark.sql import functions as F

    from inference.spark import predict_spark

    udf = mlflow.pyfunc.spark_udf(spark, model, env_manager="local")
    return {
        "scan": lambda: df,
        "predict_spark": lambda: predict_spark(df, model),
        "spark_udf": lambda: df.withColumn("prediction", udf(F.struct(*features))),
    }


def _check(jobs: dict, table, model: str) -> None:
    """Both jobs' predictions against the Predictor's on the same rows."""
    from inference import Predictor

    want = Predictor.load(model).predict(table)
    for name in ("predict_spark", "spark_udf"):
        got = jobs[name]().select("id", "prediction").toPandas().sort_values("id")
        np.testing.assert_array_equal(got["prediction"].to_numpy(), want, strict=True)
        print(f"checked: {name} equals Predictor.predict on all {len(want)} rows")


def _run(job) -> float:
    started = time.perf_counter()
    job().write.format("noop").mode("overwrite").save()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--model", default=str(ROOT / "exported_models" / "plant_richness_mlr"))
    parser.add_argument("--json", type=Path, help="also write the timings here")
    args = parser.parse_args()
    from inference import Predictor
    from inference.spark import spark_session

    print(f"cpu: {_cpu()}; load before: {_load()}")
    spark = spark_session(args.master, app_name="bench_spark")
    spark.sparkContext.setLogLevel("ERROR")
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    features = Predictor.load(args.model).features
    table = _table(args.rows, features)
    df = spark.createDataFrame(table).repartition(4).cache()
    assert df.count() == args.rows
    jobs = _jobs(spark, df, args.model, features)
    _check(jobs, table, args.model)
    for name in JOBS:  # untimed: workers start, models load
        _run(jobs[name])
    times: dict[str, list[float]] = {name: [] for name in JOBS}
    for r in range(args.repeats):
        order = JOBS[r % len(JOBS) :] + JOBS[: r % len(JOBS)]
        for name in order:
            times[name].append(_run(jobs[name]))
    spark.stop()
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"\n{args.rows:,} rows, {len(features)} features, master {args.master}, medians of "
        f"{args.repeats} (seconds):"
    )
    for name in JOBS:
        ratio = medians[name] / medians["predict_spark"]
        print(
            f"  {name:<14}{medians[name]:8.3f} s   {ratio:5.2f} x predict_spark   "
            f"runs {', '.join(f'{t:.2f}' for t in times[name])}"
        )
    print(f"load after: {_load()}")
    if args.json:
        args.json.write_text(json.dumps({"rows": args.rows, "times": times, "cpu": _cpu()}))


if __name__ == "__main__":
    main()
