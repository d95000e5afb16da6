"""The readers' optional C extensions: loaded once, switched off by one variable.

``LINREG_NO_NATIVE=1`` (read at every use, so a test or a long-lived process can set
it) makes both readers behave as if their extensions were not built: pyarrow then
decodes every CSV block and Parquet column chunk, with the same results. It is the
one switch the tests use to compare the two paths. ``LINREG_REQUIRE_NATIVE=1`` at
install time makes a failed compile an error (``setup.py``).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = [
    "EXTENSIONS",
    "NO_NATIVE_ENV",
    "disabled",
    "load_extension",
    "native_status",
]

NO_NATIVE_ENV = "LINREG_NO_NATIVE"
#: each reader's extension module
EXTENSIONS = {"csv": "inference.io.csv._fastcsv", "parquet": "inference.io.parquet._fastparquet"}


def disabled() -> bool:
    """Whether ``LINREG_NO_NATIVE`` is set (to anything but "" or "0")."""
    return os.environ.get(NO_NATIVE_ENV, "") not in ("", "0")


def load_extension(module: str) -> ModuleType | None:
    """The built extension ``module``, or None when it was not built (no C compiler,
    or not POSIX for the Parquet reader)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def native_status() -> dict[str, str]:
    """For each reader ("csv", "parquet"): "active", "disabled (LINREG_NO_NATIVE=1)"
    or "not built (pyarrow decodes)"."""
    status = {}
    for reader, module in EXTENSIONS.items():
        if load_extension(module) is None:
            status[reader] = "not built (pyarrow decodes)"
        elif disabled():
            status[reader] = f"disabled ({NO_NATIVE_ENV}=1)"
        else:
            status[reader] = "active"
    return status
