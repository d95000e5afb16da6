"""``linreg bench``: every backend side by side, from cold start to million-row batches.

Backends (``BACKENDS``), each fed the same seeded float32 array of shape (n, k) and
returning a 1-D numpy array (numpy in, numpy out, conversions included):

- ``numpy``: ``x @ w + b``, the reference;
- ``torch-eager``: ``torch.nn.Linear`` under ``torch.inference_mode()``;
- ``torchscript``: ``torch.jit.load("model.pt")``;
- ``ort-session``: a plain ``onnxruntime.InferenceSession`` (default options), ``run``;
- ``ort-floor``: the same session through an IOBinding bound once to the input and to a
  preallocated output: the least onnxruntime does per call;
- ``predictor``: ``inference.Predictor.predict`` with its defaults (threads do not spin);
- ``predictor-spin``: the same with ``Predictor.load(..., spinning=True)``;
- ``predict-one``: ``Predictor.predict_one(**row)`` (batch 1 only);
- ``ort-cuda``: ``InferenceSession`` with ``CUDAExecutionProvider`` (GPU only);
- ``torch-cuda``: ``torch.nn.Linear`` on ``cuda``, host-device copies included (GPU only).

Timing: for each group (batch size n, k features) every backend is warmed up and
called ``rounds`` times, each call timed alone with ``time.perf_counter_ns`` (garbage
collector off). The rounds are split into five passes; each pass visits the
backends in a fresh seeded order, one block per backend, so that a backend's
spinning threads (ORT's by default, OpenMP's in torch) do not land on another's
timed calls, and slow drifts of the machine's load are shared out. Reported: p50,
p90 and p99 per call, rows per second (n / p50), and percent of the memory-bandwidth
bound: the time to stream the input (n·k·4 bytes) in and the output (n·4 bytes) out
at the rate of a 256 MiB ``np.copyto`` (read + write bytes per second), measured in
the same run, before and after the groups. A batch that fits in the caches can beat
that bound (more than 100 %).

Cold start: per backend, a fresh ``python`` process imports it, loads the model
(session creation), predicts one row and prints its timings and peak RSS (``VmHWM``
of /proc/self/status, else ``getrusage(RUSAGE_SELF).ru_maxrss``); the parent adds
the whole process's wall time.

Outputs in ``--out``: ``bench.md`` (tables), ``bench.png`` (plot) and ``bench.json``
in pytest-benchmark's format (``pytest-benchmark compare a.json b.json`` works).
The pytest-benchmark suite in ``benchmarks/`` uses the same backends.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BACKENDS",
    "BATCH_SIZES",
    "COLD_START_BACKENDS",
    "FEATURES",
    "Backend",
    "Unavailable",
    "cold_start",
    "make_backend",
    "make_input",
    "make_models",
    "measure_bandwidth",
    "reference_output",
    "register",
    "run_bench",
]

BATCH_SIZES = (1, 64, 4096, 65536, 1_048_576)
FEATURES = (1, 16)
SEED = 0
BACKENDS = (
    "numpy",
    "torch-eager",
    "torchscript",
    "ort-session",
    "ort-floor",
    "predictor",
    "predictor-spin",
    "predict-one",
    "ort-cuda",
    "torch-cuda",
)
COLD_START_BACKENDS = ("numpy", "torch-eager", "torchscript", "ort-session", "predictor")
#: every output must agree with float64 numpy to this relative error (of max |reference|)
RTOL = 1e-5
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
BANDWIDTH_BYTES = 256 << 20
#: the issue's aims, checked in the "Targets" table
AIM_ONE_ROW_RATIO = 2.0
AIM_THROUGHPUT_FRACTION = 0.9
AIM_COLD_START_S = 0.3
AIM_RSS_MB = 80.0


class Unavailable(RuntimeError):
    """A backend cannot run here (no GPU, no CUDA build); the message says why."""


# --- models and inputs --------------------------------------------------------------


def make_models(directory: str | Path, features: Iterable[int] = FEATURES) -> dict[int, Path]:
    """Fit and export one synthetic float32 model per feature count, ``directory/k<k>``.

    A model already there (with its manifest) is reused. 200 seeded rows,
    ``y = x @ w + 0.5 + noise``; fitted by ``LinearRegressionSGD`` and written by
    ``export_model`` (so verified against the eager model), without plots.
    """
    from training.export import export_model
    from training.fit import LinearRegressionSGD
    from training.pipeline import TrainingRun

    directory = Path(directory)
    models: dict[int, Path] = {}
    for k in sorted(set(features)):
        path = directory / f"k{k}"
        if not (path / "manifest.json").is_file():
            rng = np.random.default_rng(SEED + k)
            X = rng.standard_normal((200, k))
            y = X @ rng.uniform(-2.0, 2.0, k) + 0.5 + 0.1 * rng.standard_normal(200)
            est = LinearRegressionSGD(progress=False, seed=SEED).fit(X, y)
            run = TrainingRun.from_estimator(
                est, X, y, features=[f"x{j}" for j in range(k)], target="y"
            )
            export_model(run, path, plots=False)
        models[k] = path
    return models


def model_parameters(model_dir: Path) -> tuple[np.ndarray, np.float32]:
    """``(w, b)`` as the ONNX file stores them: w (k,) float32, b float32."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(Path(model_dir) / "model.onnx"))
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    w = np.ascontiguousarray(tensors["weight"].reshape(-1), dtype=np.float32)
    return w, np.float32(tensors["bias"].reshape(-1)[0])


def make_input(n: int, k: int, seed: int = SEED) -> np.ndarray:
    """The seeded input every backend gets: (n, k) float32, C-contiguous, N(0, 1)."""
    rng = np.random.default_rng([seed, k])
    return rng.standard_normal((n, k), dtype=np.float32)


def reference_output(x: np.ndarray, model_dir: Path) -> np.ndarray:
    """float64 ``x @ w + b`` with the model's stored parameters."""
    w, b = model_parameters(model_dir)
    return x.astype(np.float64) @ w.astype(np.float64) + float(b)


def relative_error(got: Any, expected: np.ndarray) -> float:
    """max |got - expected| / max |expected| (inf when shapes differ)."""
    got = np.asarray(got, dtype=np.float64)
    if got.shape != expected.shape:
        return float("inf")
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-30)
    return float(np.abs(got - expected).max(initial=0.0) / scale)


# --- backends -------------------------------------------------------------------------


@dataclass
class Backend:
    """One way of computing the predictions.

    ``prepare(x)`` does the per-input set-up outside the timed region and returns
    ``call``; ``to_array(call())`` is the 1-D numpy output, for checking.
    """

    name: str
    provider: str
    device: str
    prepare: Callable[[np.ndarray], Callable[[], Any]]
    to_array: Callable[[Any], np.ndarray] = np.asarray
    batches: frozenset[int] | None = None  # None: every batch size
    note: str = ""

    def supports(self, n: int) -> bool:
        return self.batches is None or n in self.batches


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


def _numpy_provider() -> str:
    blas = "BLAS"
    with contextlib.suppress(Exception):  # older numpy: no dict mode
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    return f"numpy {np.__version__} ({blas})"


def _torch_linear(torch: Any, w: np.ndarray, b: np.float32) -> Any:
    linear = torch.nn.Linear(w.shape[0], 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(w.reshape(1, -1)))
        linear.bias.fill_(float(b))
    return linear.eval()


def _torch_prepare(torch: Any, module: Any) -> Callable[[np.ndarray], Callable[[], Any]]:
    def prepare(x: np.ndarray) -> Callable[[], Any]:
        def call() -> np.ndarray:
            with torch.inference_mode():
                return module(torch.from_numpy(x)).view(-1).numpy()

        return call

    return prepare


def make_backend(name: str, model_dir: str | Path) -> Backend:
    """Build backend ``name`` (one of ``BACKENDS``) for the model in ``model_dir``.

    Raises :class:`Unavailable` with the reason when it cannot run here.
    """
    model_dir = Path(model_dir)
    w, b = model_parameters(model_dir)
    cpu = "cpu"
    if name == "numpy":
        return Backend(name, _numpy_provider(), cpu, lambda x: lambda: x @ w + b)
    if name in ("torch-eager", "torchscript", "torch-cuda"):
        import torch

        if name == "torch-eager":
            module = _torch_linear(torch, w, b)
            provider = f"torch {torch.__version__} eager ({torch.get_num_threads()} threads)"
            return Backend(name, provider, cpu, _torch_prepare(torch, module))
        if name == "torchscript":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(str(model_dir / "model.pt"), map_location="cpu")
            provider = f"torch {torch.__version__} TorchScript"
            return Backend(name, provider, cpu, _torch_prepare(torch, module))
        if not torch.cuda.is_available():
            raise Unavailable(
                f"torch.cuda.is_available() is False (torch {torch.__version__}, "
                f"CUDA build {torch.version.cuda}): no GPU or no CUDA torch here"
            )
        cuda = torch.device("cuda")
        module = _torch_linear(torch, w, b).to(cuda)

        def prepare_cuda(x: np.ndarray) -> Callable[[], Any]:
            def call() -> np.ndarray:
                with torch.inference_mode():
                    return module(torch.from_numpy(x).to(cuda)).view(-1).cpu().numpy()

            return call

        device = f"cuda:0 ({torch.cuda.get_device_name(0)})"
        return Backend(name, f"torch {torch.__version__} eager", device, prepare_cuda)

    import onnxruntime as ort

    onnx_path = str(model_dir / "model.onnx")
    if name in ("ort-session", "ort-floor"):
        session = ort.InferenceSession(onnx_path, providers=[CPU])
        input_name = session.get_inputs()[0].name
        output_name = session.get_outputs()[0].name
        provider = f"onnxruntime {ort.__version__} {session.get_providers()[0]}"
        if name == "ort-session":
            return Backend(
                name, provider, cpu, lambda x: lambda: session.run(None, {input_name: x})[0]
            )

        def prepare_floor(x: np.ndarray) -> Callable[[], Any]:
            out = np.empty(x.shape[0], dtype=np.float32)
            binding = session.io_binding()
            binding.bind_cpu_input(input_name, x)
            binding.bind_output(output_name, "cpu", 0, np.float32, out.shape, out.ctypes.data)
            options = ort.RunOptions()
            native = getattr(session, "_sess", None)
            if native is not None:  # the native call, as Predictor uses it
                call = functools.partial(native.run_with_iobinding, binding._iobinding, options)
            else:  # pragma: no cover - onnxruntime without the private attribute
                call = functools.partial(session.run_with_iobinding, binding, options)
            call.keep = (binding, out)  # type: ignore[attr-defined]
            return lambda: call() or out

        return Backend(
            name,
            provider + " (IOBinding, pre-bound)",
            cpu,
            prepare_floor,
            to_array=lambda out: np.array(out),
            note="the least onnxruntime does per call: input and output bound once",
        )
    if name in ("predictor", "predictor-spin", "predict-one"):
        from inference import Predictor

        spinning = name == "predictor-spin"
        predictor = Predictor.load(model_dir, providers="cpu", spinning=spinning)
        provider = f"linreg Predictor (onnxruntime {ort.__version__} {CPU})"
        if name in ("predictor", "predictor-spin"):
            note = "spinning=True: idle intra-op threads spin between calls" if spinning else ""
            return Backend(name, provider, cpu, lambda x: lambda: predictor.predict(x), note=note)

        def prepare_one(x: np.ndarray) -> Callable[[], Any]:
            row = dict(zip(predictor.features, map(float, x[0]), strict=True))
            return lambda: predictor.predict_one(**row)

        return Backend(
            name,
            provider,
            cpu,
            prepare_one,
            to_array=lambda v: np.array([v], dtype=np.float64),
            batches=frozenset({1}),
            note="predict_one(**row) with the row as Python floats",
        )
    if name == "ort-cuda":
        available = ort.get_available_providers()
        if CUDA not in available:
            raise Unavailable(
                f"onnxruntime {ort.__version__} has no {CUDA} (available: {available}); "
                "install onnxruntime-gpu on a machine with a GPU"
            )
        session = ort.InferenceSession(onnx_path, providers=[CUDA, CPU])
        if session.get_providers()[0] != CUDA:
            raise Unavailable(
                f"{CUDA} failed to load; the session runs on {session.get_providers()}"
            )
        input_name = session.get_inputs()[0].name
        return Backend(
            name,
            f"onnxruntime {ort.__version__} {CUDA}",
            "cuda:0",
            lambda x: lambda: session.run(None, {input_name: x})[0],
        )
    raise ValueError(f"unknown backend {name!r}; expected one of {list(BACKENDS)}")


# --- measuring --------------------------------------------------------------------------


def measure_bandwidth(nbytes: int = BANDWIDTH_BYTES, repeats: int = 5) -> dict[str, Any]:
    """Streaming rate of this machine: read + write bytes per second of ``np.copyto``.

    Timed on one thread and split over every core; ``bytes_per_s`` is the faster.
    """
    n = nbytes // 4
    src = np.ones(n, dtype=np.float32)
    dst = np.zeros(n, dtype=np.float32)
    workers = os.cpu_count() or 1
    step = -(-n // workers)

    def part(i: int) -> None:
        np.copyto(dst[i * step : (i + 1) * step], src[i * step : (i + 1) * step])

    with ThreadPoolExecutor(workers) as pool:

        def threaded() -> None:
            list(pool.map(part, range(workers)))

        times: dict[str, list[float]] = {"one thread": [], f"{workers} threads": []}
        for _ in range(repeats):
            for label, fn in (
                ("one thread", functools.partial(np.copyto, dst, src)),
                (f"{workers} threads", threaded),
            ):
                start = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - start)
    rates = {label: 2 * src.nbytes / statistics.median(t) for label, t in times.items()}
    best = max(rates, key=rates.__getitem__)
    return {
        "bytes_per_s": rates[best],
        "method": f"np.copyto of {src.nbytes >> 20} MiB, {best}",
        **{f"bytes_per_s ({label})": rate for label, rate in rates.items()},
    }


def bound_seconds(n: int, k: int, bytes_per_s: float, itemsize: int = 4) -> float:
    """Time to stream an (n, k) input in and an (n,) output out at ``bytes_per_s``."""
    return (n * k + n) * itemsize / bytes_per_s


@dataclass
class Result:
    """The timings of one backend on one group (batch n, k features)."""

    backend: Backend
    n: int
    k: int
    times: list[float] = field(default_factory=list)  # seconds per call
    error: float = float("nan")  # relative error against float64 numpy

    @property
    def group(self) -> str:
        return f"batch={self.n} k={self.k}"

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.times, q))


def _busy_fraction(interval: float = 0.2) -> float | None:
    """Share of this machine's CPU time busy over ``interval`` (None without /proc/stat).

    Called between timed blocks, when this process is idle: it is the load of others.
    """

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(interval)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def wait_for_quiet(max_wait: float, threshold: float = 0.25) -> float:
    """Sleep until other processes use under ``threshold`` of the CPUs, at most
    ``max_wait`` seconds; returns the seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < max_wait:
        busy = _busy_fraction()
        if busy is None or busy < threshold:
            break
    return time.perf_counter() - start


def _rounds_for(seconds_per_call: float, budget: float, min_rounds: int, max_rounds: int) -> int:
    wanted = int(budget / max(seconds_per_call, 1e-9))
    return max(min_rounds, min(max_rounds, wanted))


def time_group(
    backends: Sequence[Backend],
    x: np.ndarray,
    reference: np.ndarray,
    *,
    rounds: int | None = None,
    budget: float = 0.5,
    min_rounds: int = 15,
    max_rounds: int = 10_000,
    passes: int = 5,
    seed: int = SEED,
    quiet_wait: float = 0.0,
) -> list[Result]:
    """Time every backend on ``x`` (block per backend, ``passes`` shuffled passes).

    ``rounds`` fixes the calls per backend; else about ``budget`` seconds each,
    within [min_rounds, max_rounds]. Each output is checked against ``reference``
    first; a backend off by more than ``RTOL`` raises AssertionError. With
    ``quiet_wait``, each block waits (up to that many seconds) for the other
    processes on the machine to go quiet: on a shared machine, a thread of a
    parallel kernel (torch's OpenMP above all) that loses its core stalls the call.
    """
    n, k = x.shape
    calls: dict[str, Callable[[], Any]] = {}
    results: dict[str, Result] = {}
    counts: dict[str, int] = {}
    for backend in backends:
        call = backend.prepare(x)
        err = relative_error(backend.to_array(call()), reference)
        if not err <= RTOL:
            raise AssertionError(
                f"{backend.name} on batch={n} k={k}: relative error {err:.3g} from numpy "
                f"float64, above {RTOL:g}"
            )
        start = time.perf_counter()
        for _ in range(3):
            call()
        per_call = (time.perf_counter() - start) / 3
        calls[backend.name] = call
        results[backend.name] = Result(backend, n, k, error=err)
        counts[backend.name] = rounds or _rounds_for(per_call, budget, min_rounds, max_rounds)
    order = list(calls)
    shuffle = random.Random(seed + n + k)
    timer = time.perf_counter_ns
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for p in range(passes):
            shuffle.shuffle(order)
            for name in order:
                if quiet_wait:
                    wait_for_quiet(quiet_wait)
                call = calls[name]
                todo = counts[name] // passes + (1 if p < counts[name] % passes else 0)
                for _ in range(max(2, min(50, todo // 10))):  # warm up again
                    call()
                samples = results[name].times
                for _ in range(todo):
                    start = timer()
                    call()
                    samples.append((timer() - start) * 1e-9)
    finally:
        if gc_was_enabled:
            gc.enable()
    return [results[b.name] for b in backends]


# --- cold start ----------------------------------------------------------------------------

_CHILD_HEADER = """\
import json, resource, sys, time
t0 = time.perf_counter()
"""
_CHILD_FOOTER = """
t3 = time.perf_counter()
# VmHWM: this process's own peak (ru_maxrss can carry the parent's over fork and exec)
try:
    with open("/proc/self/status") as status:
        rss_kb = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
except (OSError, StopIteration):
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_s": t3 - t2,
                  "maxrss_kb": rss_kb, "output": float(y.reshape(-1)[0])}))
"""
_CHILD_BODY = {
    "numpy": """
import numpy as np
t1 = time.perf_counter()
k = int(sys.argv[2])
w, b = np.ones(k, dtype=np.float32), np.float32(0.5)
t2 = time.perf_counter()
y = np.ones((1, k), dtype=np.float32) @ w + b
""",
    "torch-eager": """
import torch
t1 = time.perf_counter()
k = int(sys.argv[2])
module = torch.nn.Linear(k, 1).eval()
t2 = time.perf_counter()
with torch.inference_mode():
    y = module(torch.ones(1, k)).numpy()
""",
    "torchscript": """
import torch
t1 = time.perf_counter()
module = torch.jit.load(sys.argv[1] + "/model.pt", map_location="cpu")
t2 = time.perf_counter()
with torch.inference_mode():
    y = module(torch.ones(1, int(sys.argv[2]))).numpy()
""",
    "ort-session": """
import numpy as np
import onnxruntime as ort
t1 = time.perf_counter()
session = ort.InferenceSession(sys.argv[1] + "/model.onnx", providers=["CPUExecutionProvider"])
t2 = time.perf_counter()
x = np.ones((1, int(sys.argv[2])), dtype=np.float32)
y = session.run(None, {session.get_inputs()[0].name: x})[0]
""",
    "predictor": """
import numpy as np
from inference import Predictor
t1 = time.perf_counter()
model = Predictor.load(sys.argv[1], providers="cpu")
t2 = time.perf_counter()
y = model.predict(np.ones((1, model.n_features_in_), dtype=np.float32))
""",
}
_COLD_NOTES = {
    "numpy": "import numpy; the parameters are given (no file)",
    "torch-eager": "import torch; nn.Linear built in memory (no file)",
    "torchscript": "import torch; torch.jit.load(model.pt)",
    "ort-session": "import onnxruntime; InferenceSession(model.onnx)",
    "predictor": "import inference; Predictor.load(dir) (manifest, sha256, ONNX checks)",
}


def cold_start(backend: str, model_dir: str | Path, k: int) -> dict[str, float]:
    """Start a fresh Python that imports ``backend``, loads the model, predicts one row.

    Returns import_s, load_s (session creation; Predictor.load imports onnxruntime
    there), first_s, total_s (the three), wall_s (the whole process, interpreter
    start-up and exit included) and rss_mb (peak RSS, MiB).
    """
    code = _CHILD_HEADER + _CHILD_BODY[backend] + _CHILD_FOOTER
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])  # so the child finds `inference`
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, str(model_dir), str(k)],
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


# --- the run --------------------------------------------------------------------------------


@dataclass
class BenchRun:
    """Everything one ``linreg bench`` measured."""

    results: list[Result]
    skipped: dict[str, str]
    bandwidth: dict[str, Any]
    cold: dict[str, list[dict[str, float]]]
    cold_k: int
    settings: dict[str, Any]
    started: str


def run_bench(
    *,
    sizes: Sequence[int] = BATCH_SIZES,
    features: Sequence[int] = FEATURES,
    backends: Sequence[str] = BACKENDS,
    model_dir: str | Path,
    rounds: int | None = None,
    budget: float = 0.5,
    min_rounds: int = 15,
    cold_repeats: int = 3,
    bandwidth_bytes: int = BANDWIDTH_BYTES,
    quiet_wait: float = 0.0,
    progress: bool | None = None,
) -> BenchRun:
    """Measure every backend on every (batch, k) group, then the cold starts."""
    from tqdm.auto import tqdm

    started = dt.datetime.now(tz=dt.timezone.utc).replace(microsecond=0).isoformat()
    models = make_models(model_dir, features)
    show = sys.stderr.isatty() if progress is None else progress
    bw_before = measure_bandwidth(bandwidth_bytes)
    results: list[Result] = []
    skipped: dict[str, str] = {}
    groups = [(n, k) for k in features for n in sizes]
    built: dict[int, list[Backend]] = {}
    for k in features:
        built[k] = []
        for name in backends:
            try:
                built[k].append(make_backend(name, models[k]))
            except Unavailable as exc:
                skipped[name] = str(exc)
    largest = {k: make_input(max(sizes), k) for k in features}
    for n, k in tqdm(groups, desc="groups", disable=not show):
        x = largest[k][:n]
        ref = reference_output(x, models[k])
        here = [b for b in built[k] if b.supports(n)]
        results += time_group(
            here,
            x,
            ref,
            rounds=rounds,
            budget=budget,
            min_rounds=min_rounds,
            quiet_wait=quiet_wait,
        )
    bw_after = measure_bandwidth(bandwidth_bytes)
    bandwidth: dict[str, Any] = {
        key: (value + bw_after[key]) / 2
        for key, value in bw_before.items()
        if isinstance(value, float)
    }
    bandwidth["method"] = f"{bw_before['method']}; mean of before and after the groups"
    cold_k = max(features)
    cold: dict[str, list[dict[str, float]]] = {}
    names = [b for b in COLD_START_BACKENDS if b in backends]
    for r in tqdm(range(cold_repeats if names else 0), desc="cold starts", disable=not show):
        shift = r % len(names)  # rotate the order: no backend always goes first
        for name in names[shift:] + names[:shift]:
            if quiet_wait:
                wait_for_quiet(quiet_wait)
            cold.setdefault(name, []).append(cold_start(name, models[cold_k], cold_k))
    settings = {
        "sizes": list(sizes),
        "features": list(features),
        "rounds": rounds or f"auto (~{budget:g} s per backend and group, at least {min_rounds})",
        "seed": SEED,
        "cold_repeats": cold_repeats,
        "quiet_wait_s": quiet_wait,
    }
    return BenchRun(results, skipped, bandwidth, cold, cold_k, settings, started)


# --- reporting -----------------------------------------------------------------------------


def _fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds:.3f} s"


def _fmt_rate(rows_per_s: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if rows_per_s >= scale:
            return f"{rows_per_s / scale:.3g} {unit}"
    return f"{rows_per_s:.3g}"


def _p50(results: list[Result], name: str, n: int, k: int) -> float | None:
    for r in results:
        if r.backend.name == name and r.n == n and r.k == k:
            return statistics.median(r.times)
    return None


def targets(run: BenchRun) -> list[tuple[str, str, str, str]]:
    """(target, measured, reference, verdict) rows for the issue's aims."""
    rows = []
    res = run.results

    def verdict(ok: bool) -> str:
        return "meets" if ok else "misses"

    for k in run.settings["features"]:
        numpy_1 = _p50(res, "numpy", 1, k)
        if numpy_1 is None:
            continue
        for name, what in (
            ("predictor", "predict(1-row array)"),
            ("predict-one", "predict_one(**row)"),
            ("ort-session", "plain InferenceSession.run"),
            ("ort-floor", "onnxruntime floor (IOBinding, pre-bound)"),
        ):
            p50 = _p50(res, name, 1, k)
            if p50 is None:
                continue
            ratio = p50 / numpy_1
            rows.append(
                (
                    f"{what}, 1 row, k={k}: p50 ≤ {AIM_ONE_ROW_RATIO:g}× numpy",
                    f"{_fmt_time(p50)} = {ratio:.2f}×",
                    f"numpy x @ w + b {_fmt_time(numpy_1)}",
                    verdict(ratio <= AIM_ONE_ROW_RATIO)
                    if name in ("predictor", "predict-one")
                    else "(reference)",
                )
            )
    big = max(run.settings["sizes"])
    bw = run.bandwidth["bytes_per_s"]
    for k in run.settings["features"] if big >= BATCH_SIZES[-1] else ():
        refs = {name: p for name in ("numpy", "torch-eager") if (p := _p50(res, name, big, k))}
        if not refs:
            continue
        best_name = min(refs, key=refs.__getitem__)
        for name in ("predictor", "predictor-spin", "ort-session", "ort-floor"):
            p50 = _p50(res, name, big, k)
            if p50 is None:
                continue
            frac = refs[best_name] / p50
            verdicts = {
                "predictor": verdict(frac >= AIM_THROUGHPUT_FRACTION),
                "predictor-spin": f"option: {verdict(frac >= AIM_THROUGHPUT_FRACTION)}",
            }
            rows.append(
                (
                    f"{name}, {big:,} rows, k={k}: throughput ≥ "
                    f"{AIM_THROUGHPUT_FRACTION:.0%} of the better of numpy and torch eager",
                    f"{_fmt_time(p50)} = {frac:.0%}; "
                    f"{100 * bound_seconds(big, k, bw) / p50:.0f}% of the bandwidth bound",
                    f"{best_name} {_fmt_time(refs[best_name])}",
                    verdicts.get(name, "(reference)"),
                )
            )
    if "predictor" in run.cold:
        pred = _cold_median(run.cold["predictor"])
        ts = _cold_median(run.cold["torchscript"]) if "torchscript" in run.cold else None
        ref = f"torchscript {ts['total_s']:.3f} s, {ts['rss_mb']:.0f} MiB" if ts else "(not run)"
        rows.append(
            (
                f"cold start (import, load, first prediction) ≤ {AIM_COLD_START_S:g} s",
                f"{pred['total_s']:.3f} s (process wall {pred['wall_s']:.3f} s)",
                ref,
                verdict(pred["total_s"] <= AIM_COLD_START_S),
            )
        )
        rows.append(
            (
                f"peak RSS ≤ {AIM_RSS_MB:g} MB",
                f"{pred['rss_mb']:.1f} MiB",
                ref,
                verdict(pred["rss_mb"] * 1.048576 <= AIM_RSS_MB),
            )
        )
    return rows


def _cold_median(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for module in ("onnxruntime", "torch"):
        try:
            out[module] = __import__(module).__version__
        except ImportError:
            out[module] = "not installed"
    return out


def markdown(run: BenchRun) -> str:
    """The report: machine, latency and throughput tables, targets, cold starts."""
    bw = run.bandwidth
    v = versions()
    lines = [
        f"Machine: {cpu_description()}; {platform.system()} {platform.release()}; "
        + ", ".join(f"{m} {ver}" for m, ver in v.items())
        + ".",
        "",
        f"Memory bandwidth (yardstick): {bw['bytes_per_s'] / 1e9:.1f} GB/s read + write, "
        f"{bw['method']}; "
        + ", ".join(
            f"{key[len('bytes_per_s (') : -1]} {val / 1e9:.1f} GB/s"
            for key, val in bw.items()
            if key.startswith("bytes_per_s (")
        )
        + ".",
        "",
        f"Run {run.started}; rounds: {run.settings['rounds']}; input seed {run.settings['seed']}"
        " (the same float32 array for every backend).",
        "",
    ]
    backends = list(dict.fromkeys(r.backend.name for r in run.results))
    lines += ["| backend | provider | device | note |", "|---|---|---|---|"]
    for name in backends:
        b = next(r.backend for r in run.results if r.backend.name == name)
        lines.append(f"| {name} | {b.provider} | {b.device} | {b.note} |")
    lines.append("")
    for k in run.settings["features"]:
        lines += [
            f"### k = {k} feature{'s' if k > 1 else ''}",
            "",
            "| batch | backend | p50 | p90 | p99 | rows/s | % of bound | p50 ÷ numpy |",
            "|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in (r for r in run.results if r.k == k):
            p50 = statistics.median(r.times)
            numpy_p50 = _p50(run.results, "numpy", r.n, k)
            ratio = f"{p50 / numpy_p50:.2f}" if numpy_p50 else "–"
            bound = bound_seconds(r.n, k, bw["bytes_per_s"])
            lines.append(
                f"| {r.n:,} | {r.backend.name} | {_fmt_time(p50)} "
                f"| {_fmt_time(r.percentile(90))} | {_fmt_time(r.percentile(99))} "
                f"| {_fmt_rate(r.n / p50)} | {100 * bound / p50:.1f} % | {ratio} |"
            )
        lines.append("")
    rows = targets(run)
    if rows:
        lines += [
            "### Targets (issue 4)",
            "",
            "| target | measured | reference (same run) | verdict |",
            "|---|---|---|---|",
        ]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
        lines.append("")
    if run.cold:
        lines += [
            f"### Cold start (fresh process, k = {run.cold_k}, median of "
            f"{run.settings['cold_repeats']})",
            "",
            "| backend | what | import | load | first prediction | total | process wall "
            "| peak RSS |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, samples in run.cold.items():
            m = _cold_median(samples)
            lines.append(
                f"| {name} | {_COLD_NOTES[name]} | {_fmt_time(m['import_s'])} "
                f"| {_fmt_time(m['load_s'])} | {_fmt_time(m['first_s'])} "
                f"| {_fmt_time(m['total_s'])} | {_fmt_time(m['wall_s'])} | {m['rss_mb']:.1f} MiB |"
            )
        lines.append("")
    if run.skipped:
        lines += ["Skipped:", ""]
        lines += [f"- `{name}`: {reason}" for name, reason in run.skipped.items()]
        lines.append("")
    return "\n".join(lines)


def plot(run: BenchRun, path: Path) -> None:
    """p50 latency and percent of the bandwidth bound against batch size, per k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    features = run.settings["features"]
    fig, axes = plt.subplots(2, len(features), figsize=(6 * len(features), 8), squeeze=False)
    names = list(dict.fromkeys(r.backend.name for r in run.results))
    markers = "os^vDPX*"
    styles = {
        name: markers[i % len(markers)] + ("-" if i < 8 else "--") for i, name in enumerate(names)
    }
    bw = run.bandwidth["bytes_per_s"]
    for col, k in enumerate(features):
        top, bottom = axes[0][col], axes[1][col]
        for name in names:
            rs = sorted((r for r in run.results if r.k == k and r.backend.name == name),
                        key=lambda r: r.n)  # fmt: skip
            if not rs:
                continue
            ns = [r.n for r in rs]
            p50 = [statistics.median(r.times) for r in rs]
            top.plot(ns, p50, styles[name], label=name, markersize=4)
            bottom.plot(
                ns,
                [100 * bound_seconds(n, k, bw) / t for n, t in zip(ns, p50, strict=True)],
                styles[name],
                label=name,
                markersize=4,
            )
        sizes = sorted({r.n for r in run.results if r.k == k})
        fastest = min(statistics.median(r.times) for r in run.results if r.k == k)
        shown = [n for n in sizes if bound_seconds(n, k, bw) >= fastest / 100]  # keep the scale
        top.plot(shown, [bound_seconds(n, k, bw) for n in shown], "k:", label="bandwidth bound")
        top.set(xscale="log", yscale="log", xlabel="batch (rows)", ylabel="p50 per call (s)")
        top.set_title(f"k = {k}: p50 latency")
        bottom.axhline(100, color="k", linestyle=":", label="bandwidth bound")
        bottom.set(xscale="log", yscale="log", xlabel="batch (rows)", ylabel="% of bound")
        bottom.set_title(f"k = {k}: percent of the memory-bandwidth bound")
        for ax in (top, bottom):
            ax.grid(True, which="both", alpha=0.3)
        top.legend(fontsize=8)
    fig.suptitle(f"linreg bench: {cpu_description()}, {bw / 1e9:.0f} GB/s copy bandwidth")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _stats(data: list[float]) -> dict[str, Any]:
    """pytest-benchmark's statistics of ``data`` (seconds), same definitions."""
    s = sorted(data)
    n = len(s)
    mean = statistics.fmean(s)
    stddev = statistics.stdev(s) if n > 1 else 0.0
    if n == 1:
        q1 = q3 = s[0]
    elif n % 2:
        m, r = n // 4, n % 4
        q1 = 0.25 * s[m - 1] + 0.75 * s[m] if r == 1 else 0.75 * s[m] + 0.25 * s[m + 1]
        q3 = (
            0.75 * s[3 * m] + 0.25 * s[3 * m + 1]
            if r == 1
            else 0.25 * s[3 * m + 1] + 0.75 * s[3 * m + 2]
        )
    else:
        q1, q3 = statistics.median(s[: n // 2]), statistics.median(s[n // 2 :])
    iqr = q3 - q1
    low = [v for v in s if v >= q1 - 1.5 * iqr]
    high = [v for v in s if v <= q3 + 1.5 * iqr]
    std_out = sum(1 for v in s if v < mean - stddev or v > mean + stddev)
    iqr_out = sum(1 for v in s if v < q1 - 1.5 * iqr or v > q3 + 1.5 * iqr)
    total = sum(s)
    return {
        "min": s[0],
        "max": s[-1],
        "mean": mean,
        "stddev": stddev,
        "rounds": n,
        "median": statistics.median(s),
        "iqr": iqr,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": iqr_out,
        "stddev_outliers": std_out,
        "outliers": f"{std_out};{iqr_out}",
        "ld15iqr": low[0] if low else s[0],
        "hd15iqr": high[-1] if high else s[-1],
        "ops": n / total if total else 0.0,
        "total": total,
        "iterations": 1,
    }


def _commit_info() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        return {
            "id": git("rev-parse", "HEAD"),
            "time": git("show", "-s", "--pretty=format:%cI"),
            "author_time": git("show", "-s", "--pretty=format:%aI"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "project": "linreg-onnx",
            "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        }
    except Exception as exc:
        return {"id": "unknown", "time": None, "author_time": None, "dirty": False,
                "project": "linreg-onnx", "branch": "(unknown)", "error": repr(exc)}  # fmt: skip


def to_json(run: BenchRun) -> dict[str, Any]:
    """pytest-benchmark's JSON layout, so ``pytest-benchmark compare`` reads it."""
    bw = run.bandwidth["bytes_per_s"]
    benchmarks = []
    for r in run.results:
        p50 = statistics.median(r.times)
        params = {"backend": r.backend.name, "batch": r.n, "k": r.k}
        benchmarks.append(
            {
                "group": r.group,
                "name": f"{r.backend.name}[batch={r.n}-k={r.k}]",
                "fullname": f"linreg bench::{r.backend.name}[batch={r.n}-k={r.k}]",
                "params": params,
                "param": f"{r.backend.name}-{r.n}-{r.k}",
                "extra_info": {
                    **params,
                    "provider": r.backend.provider,
                    "device": r.backend.device,
                    "p90": r.percentile(90),
                    "p99": r.percentile(99),
                    "rows_per_s": r.n / p50,
                    "bound_s": bound_seconds(r.n, r.k, bw),
                    "percent_of_bound": 100 * bound_seconds(r.n, r.k, bw) / p50,
                    "bandwidth_bytes_per_s": bw,
                    "max_relative_error": r.error,
                    "seed": SEED,
                },
                "options": {"disable_gc": True, "timer": "perf_counter_ns", "warmup": True},
                "stats": _stats(r.times),
            }
        )
    for name, samples in run.cold.items():
        m = _cold_median(samples)
        benchmarks.append(
            {
                "group": f"cold start k={run.cold_k}",
                "name": f"cold-start[{name}]",
                "fullname": f"linreg bench::cold-start[{name}]",
                "params": {"backend": name, "k": run.cold_k},
                "param": name,
                "extra_info": {
                    "backend": name,
                    "what": _COLD_NOTES[name],
                    "device": "cpu",
                    **{f"median_{key}": val for key, val in m.items()},
                    "measure": "import + load + first prediction (s), in a fresh process",
                },
                "options": {"disable_gc": False, "timer": "perf_counter", "warmup": False},
                "stats": _stats([s["total_s"] for s in samples]),
            }
        )
    machine = {
        "node": platform.node(),
        "processor": platform.processor(),
        "machine": platform.machine(),
        "python_compiler": platform.python_compiler(),
        "python_implementation": platform.python_implementation(),
        "python_implementation_version": platform.python_version(),
        "python_version": platform.python_version(),
        "python_build": list(platform.python_build()),
        "release": platform.release(),
        "system": platform.system(),
        "cpu": {"brand_raw": cpu_description(), "count": os.cpu_count()},
        "memory_bandwidth": run.bandwidth,
        "versions": versions(),
        "skipped": run.skipped,
        "settings": run.settings,
    }
    try:
        from pytest_benchmark import __version__ as pb_version
    except ImportError:
        pb_version = "5.1.0"
    return {
        "machine_info": machine,
        "commit_info": _commit_info(),
        "benchmarks": benchmarks,
        "datetime": run.started,
        "version": pb_version,
    }


def write_report(run: BenchRun, out: str | Path) -> dict[str, Path]:
    """Write ``bench.md``, ``bench.png`` and ``bench.json`` into ``out`` (atomically each)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "bench.md", "plot": out / "bench.png", "json": out / "bench.json"}
    writers: dict[str, Callable[[Path], None]] = {
        "markdown": lambda p: p.write_text(markdown(run) + "\n", encoding="utf-8"),
        "plot": lambda p: plot(run, p),
        "json": lambda p: p.write_text(json.dumps(to_json(run), indent=2) + "\n", "utf-8"),
    }
    for key, path in paths.items():
        tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
        try:
            writers[key](tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return paths


# --- command line ------------------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v.replace("_", "")) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _name_list(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown backend(s) {unknown}; expected {list(BACKENDS)}")
    return names


def _bench(args: argparse.Namespace) -> int:
    import tempfile

    quick = args.quick
    sizes = args.sizes or ([1, 64, 4096] if quick else list(BATCH_SIZES))
    with tempfile.TemporaryDirectory(prefix="linreg-bench-") as tmp:
        run = run_bench(
            sizes=sizes,
            features=args.features,
            backends=args.backends,
            model_dir=args.models or tmp,
            rounds=args.rounds,
            budget=0.02 if quick else args.budget,
            min_rounds=3 if quick else 15,
            cold_repeats=(1 if quick else 3) if args.cold_repeats is None else args.cold_repeats,
            bandwidth_bytes=(32 << 20) if quick else BANDWIDTH_BYTES,
            quiet_wait=args.wait_quiet,
            progress=args.progress,
        )
    paths = write_report(run, args.out)
    print(markdown(run))
    print("\n".join(f"wrote {path}" for path in paths.values()))
    return 0


def register(subparsers: Any) -> None:
    """Add ``linreg bench`` to the command line."""
    p = subparsers.add_parser(
        "bench",
        help="benchmark every backend side by side; write a table, a plot and JSON",
        description="Time numpy, torch eager, TorchScript, onnxruntime and the Predictor "
        "(and CUDA backends where a GPU is present) on the same seeded input at each batch "
        "size and feature count, against this machine's memory bandwidth; then the cold "
        "start of each in a fresh process. Writes bench.md, bench.png and bench.json "
        "(pytest-benchmark's format) into --out.",
    )
    p.add_argument(
        "--sizes",
        type=_int_list,
        help=f"comma-separated batch sizes (default: {','.join(map(str, BATCH_SIZES))})",
    )
    p.add_argument(
        "--features",
        type=_int_list,
        default=list(FEATURES),
        help="comma-separated feature counts k (default: 1,16)",
    )
    p.add_argument(
        "--backends",
        type=_name_list,
        default=list(BACKENDS),
        help=f"comma-separated subset of {','.join(BACKENDS)} (default: all)",
    )
    p.add_argument("--rounds", type=int, help="timed calls per backend and group (default: auto)")
    p.add_argument(
        "--budget",
        type=float,
        default=0.5,
        help="with automatic rounds, seconds of calls per backend and group (default: 0.5)",
    )
    p.add_argument("--cold-repeats", type=int, help="fresh processes per backend (default: 3)")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each timed block, wait up to SECONDS for other processes to leave the "
        "CPUs under 25%% busy (for shared machines; default: 0, no waiting)",
    )
    p.add_argument("--out", type=Path, default=Path("bench-results"), help="output directory")
    p.add_argument(
        "--models", type=Path, help="directory for the synthetic models (default: a temporary one)"
    )
    p.add_argument(
        "--quick", action="store_true", help="small sizes, few rounds: a check, not a measurement"
    )
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None)
    bar.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=_bench)
