"""Cold start: a fresh Python imports a backend, loads the model, predicts one row.

:func:`cold_start` runs this module in a child process::

    python -m training.bench.coldstart BACKEND MODEL_DIR K

The child prints one JSON line: ``import_s``, ``load_s`` (session creation;
``Predictor.load`` imports onnxruntime there), ``first_s``, ``maxrss_kb`` (peak RSS:
``VmHWM`` of /proc/self/status, else ``getrusage(RUSAGE_SELF).ru_maxrss``) and
``output``; the parent adds the whole process's wall time. The child's clock starts
before it imports anything a backend needs: this module imports only ``json``,
``os``, ``sys``, ``time`` and ``typing`` at the top (the parent's ``subprocess`` is
imported inside :func:`cold_start`), and the ``training`` and ``training.bench``
packages, which ``-m`` imports first, import their names lazily (a test checks that
none of numpy, onnxruntime, torch or inference is loaded before the clock starts).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["COLD_NOTES", "COLD_START_BACKENDS", "cold_start"]

#: a child's step: (t1, t2, first prediction, what it loaded); the caller holds the
#: last until its clock stops, as freeing a session joins its threads
Step = tuple[float, float, Any, Any]

#: what each cold start measures, as the report's "what" column says it
COLD_NOTES = {
    "numpy": "import numpy; the parameters are given (no file)",
    "torch-eager": "import torch; nn.Linear built in memory (no file)",
    "torchscript": "import torch; torch.jit.load(model.pt)",
    "ort-session": "import onnxruntime; InferenceSession(model.onnx)",
    "predictor": "import inference; Predictor.load(dir) (manifest, sha256, ONNX checks)",
}
COLD_START_BACKENDS = tuple(COLD_NOTES)


def cold_start(backend: str, model_dir: str | Path, k: int) -> dict[str, float]:
    """Start a fresh Python that imports ``backend``, loads the model, predicts one row.

    Returns import_s, load_s (session creation; Predictor.load imports onnxruntime
    there), first_s, total_s (the three), wall_s (the whole process, interpreter
    start-up and exit included) and rss_mb (peak RSS, MiB).
    """
    import subprocess

    if backend not in COLD_NOTES:
        raise ValueError(f"no cold start for {backend!r}; expected one of {COLD_START_BACKENDS}")
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "training.bench.coldstart", backend, str(model_dir), str(k)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"cold start of {backend} failed:\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "import_s": out["import_s"],
        "load_s": out["load_s"],
        "first_s": out["first_s"],
        "total_s": out["import_s"] + out["load_s"] + out["first_s"],
        "wall_s": wall,
        "rss_mb": out["maxrss_kb"] / 1024,
    }


# --- the child: each step imports, loads (t1 to t2), predicts; returns what it loaded too ---


def _numpy(model_dir: str, k: int) -> Step:
    import numpy as np

    t1 = time.perf_counter()
    w, b = np.ones(k, dtype=np.float32), np.float32(0.5)
    t2 = time.perf_counter()
    return t1, t2, np.ones((1, k), dtype=np.float32) @ w + b, w


def _torch_eager(model_dir: str, k: int) -> Step:
    import torch

    t1 = time.perf_counter()
    module = torch.nn.Linear(k, 1).eval()
    t2 = time.perf_counter()
    with torch.inference_mode():
        return t1, t2, module(torch.ones(1, k)).numpy(), module


def _torchscript(model_dir: str, k: int) -> Step:
    import torch

    t1 = time.perf_counter()
    module = torch.jit.load(model_dir + "/model.pt", map_location="cpu")
    t2 = time.perf_counter()
    with torch.inference_mode():
        return t1, t2, module(torch.ones(1, k)).numpy(), module


def _ort_session(model_dir: str, k: int) -> Step:
    import numpy as np
    import onnxruntime as ort

    t1 = time.perf_counter()
    # spelled out: importing inference.providers.CPU here would time inference too
    session = ort.InferenceSession(model_dir + "/model.onnx", providers=["CPUExecutionProvider"])
    t2 = time.perf_counter()
    x = np.ones((1, k), dtype=np.float32)
    return t1, t2, session.run(None, {session.get_inputs()[0].name: x})[0], session


def _predictor(model_dir: str, k: int) -> Step:
    import numpy as np

    from inference import Predictor

    t1 = time.perf_counter()
    model = Predictor.load(model_dir, providers="cpu")
    t2 = time.perf_counter()
    return t1, t2, model.predict(np.ones((1, model.n_features_in_), dtype=np.float32)), model


_STEPS: dict[str, Callable[[str, int], Step]] = {
    "numpy": _numpy,
    "torch-eager": _torch_eager,
    "torchscript": _torchscript,
    "ort-session": _ort_session,
    "predictor": _predictor,
}


def _peak_rss_kb() -> int:
    # VmHWM: this process's own peak (ru_maxrss can carry the parent's over fork and exec)
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str]) -> None:
    """The child: ``argv`` is BACKEND MODEL_DIR K; prints the timings as one JSON line."""
    t0 = time.perf_counter()
    backend, model_dir, k = argv[0], argv[1], int(argv[2])
    t1, t2, y, loaded = _STEPS[backend](model_dir, k)
    t3 = time.perf_counter()
    timings = {"import_s": t1 - t0, "load_s": t2 - t1, "first_s": t3 - t2}
    print(json.dumps({**timings, "maxrss_kb": _peak_rss_kb(), "output": float(y.reshape(-1)[0])}))
    del loaded  # freed after the timings are out, as at a script's exit


if __name__ == "__main__":
    main(sys.argv[1:])
