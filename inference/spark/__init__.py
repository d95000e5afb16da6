"""Spark scorers: :func:`predict_spark` adds a model's predictions to a Spark DataFrame
(``mapInArrow``, one Predictor per Python worker), :func:`score_file_spark` scores files
into a directory of parts (``linreg predict --engine spark``). Needs the ``spark`` extra
(pyspark) and a Java 17+ runtime.

>>> from inference.spark import predict_spark
>>> scored = predict_spark(spark.read.parquet("features/"), "models/plant", interval="prediction")
>>> scored.write.parquet("scored/")
"""

from __future__ import annotations

from inference.spark.job import score_file_spark, spark_session
from inference.spark.scoring import (
    BAD_ROWS,
    SparkJob,
    clear_cache,
    get_predictor,
    load_count,
    output_columns,
    predict_spark,
)

__all__ = [
    "BAD_ROWS",
    "SparkJob",
    "clear_cache",
    "get_predictor",
    "load_count",
    "output_columns",
    "predict_spark",
    "score_file_spark",
    "spark_session",
]
