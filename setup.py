"""Build the optional C extensions of the readers (metadata: pyproject.toml):
``inference.io.csv._fastcsv`` and, on POSIX systems, ``inference.io.parquet._fastparquet``.

Their sources live beside the readers, one unit per concern (docs/readers.md):

- ``inference/io/csv/csrc/``: ``parse.c`` (the block parser, no Python), ``pow5.h``
  (its table, written by ``scripts/gen_pow5_table.py``), ``module.c`` (the Python face);
- ``inference/io/parquet/csrc/``: ``thrift.c`` (page headers), ``snappy.c``, ``rle.c``
  (the RLE / bit-packing hybrid), ``pool.c`` (page buffers), ``reader.c`` and
  ``decode.c`` (the column chunk reader), ``module.c`` (the Python face).

Without a C compiler the package still installs (``optional=True``), and
:func:`inference.io.native_status` says the readers are "not built": pyarrow then
decodes every CSV block and Parquet column chunk, with the same results, slower.

``LINREG_REQUIRE_NATIVE=1`` makes a failed compile an error instead (CI sets it, so a
broken extension fails the build rather than skipping its tests).
``LINREG_NATIVE_CFLAGS`` adds compiler flags and ``LINREG_NATIVE_LDFLAGS`` linker flags
(the sanitizer build of CI, ``scripts/sanitize.sh``).
"""

import os
import shlex
from glob import glob

from setuptools import Extension, setup

REQUIRED = os.environ.get("LINREG_REQUIRE_NATIVE", "") not in ("", "0")
CFLAGS = ["-O3", *shlex.split(os.environ.get("LINREG_NATIVE_CFLAGS", ""))]
LDFLAGS = shlex.split(os.environ.get("LINREG_NATIVE_LDFLAGS", ""))
CSV = "inference/io/csv/csrc"
PARQUET = "inference/io/parquet/csrc"

ext_modules = [
    Extension(
        "inference.io.csv._fastcsv",
        [f"{CSV}/module.c", f"{CSV}/parse.c"],
        depends=sorted(glob(f"{CSV}/*.h")),
        include_dirs=[CSV],
        optional=not REQUIRED,
        extra_compile_args=CFLAGS,
        extra_link_args=LDFLAGS,
    )
]
if os.name == "posix":  # the Parquet reader reads with pread(2)
    ext_modules.append(
        Extension(
            "inference.io.parquet._fastparquet",
            sorted(glob(f"{PARQUET}/*.c")),
            depends=sorted(glob(f"{PARQUET}/*.h")),
            include_dirs=[PARQUET],
            optional=not REQUIRED,
            extra_compile_args=CFLAGS,
            extra_link_args=LDFLAGS,
        )
    )

setup(ext_modules=ext_modules)
