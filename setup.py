"""Build the optional C extensions ``inference.batch._fastcsv`` and, on POSIX systems,
``inference.batch._fastparquet`` (metadata: pyproject.toml).

``optional=True``: without a C compiler the package still installs, and
``inference.batch.fastcsv.available()`` (``fastparquet.available()``) is False (CSV
blocks and Parquet column chunks are then decoded by pyarrow).
"""

import os

from setuptools import Extension, setup

ext_modules = [
    Extension(
        "inference.batch._fastcsv",
        ["inference/batch/_fastcsv.c"],
        depends=["inference/batch/_pow5.h"],
        optional=True,
        extra_compile_args=["-O3"],
    )
]
if os.name == "posix":  # the Parquet reader reads with pread(2)
    ext_modules.append(
        Extension(
            "inference.batch._fastparquet",
            ["inference/batch/_fastparquet.c"],
            optional=True,
            extra_compile_args=["-O3"],
        )
    )

setup(ext_modules=ext_modules)
