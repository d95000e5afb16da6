"""The machine a run is on: CPU, memory, load and library versions, for the reports.

The same code can measure very differently on two machine kinds (a 2-core AMD
EPYC VM and a 2-core Intel Xeon VM with hyperthreads, for example), and on one
machine when other processes share its cores: every report names the CPU
model and records the load average around each timing, so that no figure is
read as another machine's, or as a quiet machine's when it was not.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

__all__ = ["cpu_description", "cpu_model", "load_average", "versions"]


def cpu_model() -> str:
    """The CPU's model name, ``"AMD EPYC"``, from /proc/cpuinfo (or platform where absent)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_description() -> str:
    """``"AMD EPYC, 2 cores, 23.4 GiB RAM"`` from /proc (or platform where absent)."""
    ram = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f", {int(line.split()[1]) / 2**20:.1f} GiB RAM"
    except OSError:
        pass
    return f"{cpu_model()}, {os.cpu_count()} cores{ram}"


def load_average() -> float | None:
    """The 1-minute load average (runnable processes, all CPUs together), None where
    the OS has none. On a 2-core machine, above 2 means processes wait for a core."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def versions() -> dict[str, str]:
    """Versions of Python, numpy, onnxruntime and torch (``"not installed"`` if absent)."""
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for module in ("onnxruntime", "torch"):
        try:
            out[module] = __import__(module).__version__
        except ImportError:
            out[module] = "not installed"
    return out
