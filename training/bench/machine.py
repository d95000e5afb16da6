"""The machine a run is on: CPU, memory and library versions, for the reports."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

__all__ = ["cpu_description", "versions"]


def cpu_description() -> str:
    """``"AMD EPYC, 2 cores, 23.4 GiB RAM"`` from /proc (or platform where absent)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f", {int(line.split()[1]) / 2**20:.1f} GiB RAM"
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores{ram}"


def versions() -> dict[str, str]:
    """Versions of Python, numpy, onnxruntime and torch (``"not installed"`` if absent)."""
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for module in ("onnxruntime", "torch"):
        try:
            out[module] = __import__(module).__version__
        except ImportError:
            out[module] = "not installed"
    return out
