"""One Spark session (``local[2]``) for the whole test session: Spark starts in 10-25 s.

The Spark tests skip with a reason without pyspark (the ``spark`` extra) or without a
Java 17+ runtime (``.ci/run`` installs Debian's ``openjdk-17-jre-headless``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest


def _java_problem() -> str | None:
    java = shutil.which("java")
    home = os.environ.get("JAVA_HOME")
    if java is None and home:
        java = os.path.join(home, "bin", "java")
    if java is None or not os.path.exists(java):
        return "no java on PATH or in JAVA_HOME (Spark needs Java 17+)"
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(match.group(1)) if match else 0
    major = int(match.group(2) or 0) if major == 1 else major  # "1.8" is Java 8
    return None if major >= 17 else f"Java {major or '?'} found; Spark 4 needs Java 17+"


MISSING = [m for m in ("pyspark", "pyarrow", "pandas") if importlib.util.find_spec(m) is None]
REASON = f"the Spark tests need {MISSING} (the 'spark' extra)" if MISSING else _java_problem()
#: every Spark test module carries these marks (a Spark session is a JVM: slow)
needs_spark = [pytest.mark.skipif(REASON is not None, reason=REASON or ""), pytest.mark.slow]


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("linreg tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
