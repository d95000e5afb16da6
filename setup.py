"""Build the optional C extensions of the readers (metadata: pyproject.toml):
``inference.io.csv._fastcsv`` and, on POSIX systems, ``inference.io.parquet._fastparquet``.

Without a C compiler the package still installs (``optional=True``), and
:func:`inference.io.native_status` says the readers are "not built": pyarrow then
decodes every CSV block and Parquet column chunk, with the same results, slower.

``LINREG_REQUIRE_NATIVE=1`` makes a failed compile an error instead (CI sets it, so a
broken extension fails the build rather than skipping its tests).
``LINREG_NATIVE_CFLAGS`` adds compiler flags (the sanitizer build of CI).
"""

import os
import shlex

from setuptools import Extension, setup

REQUIRED = os.environ.get("LINREG_REQUIRE_NATIVE", "") not in ("", "0")
CFLAGS = ["-O3", *shlex.split(os.environ.get("LINREG_NATIVE_CFLAGS", ""))]

ext_modules = [
    Extension(
        "inference.io.csv._fastcsv",
        ["inference/io/csv/_fastcsv.c"],
        depends=["inference/io/csv/_pow5.h"],
        optional=not REQUIRED,
        extra_compile_args=CFLAGS,
    )
]
if os.name == "posix":  # the Parquet reader reads with pread(2)
    ext_modules.append(
        Extension(
            "inference.io.parquet._fastparquet",
            ["inference/io/parquet/_fastparquet.c"],
            optional=not REQUIRED,
            extra_compile_args=CFLAGS,
        )
    )

setup(ext_modules=ext_modules)
