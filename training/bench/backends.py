"""The backends: each a small builder, looked up by name in ``BUILDERS``.

Every backend takes the same seeded float32 array of shape (n, k) and returns a 1-D
numpy array (numpy in, numpy out, conversions included):

- ``numpy``: ``x @ w + b``, the reference;
- ``torch-eager``: ``torch.nn.Linear`` under ``torch.inference_mode()``;
- ``torchscript``: ``torch.jit.load("model.pt")``;
- ``ort-session``: a plain ``onnxruntime.InferenceSession`` (default options), ``run``;
- ``ort-floor``: the same session through an IOBinding bound once to the input and to a
  preallocated output: the least onnxruntime does per call;
- ``predictor``: ``inference.Predictor.predict`` with its defaults (threads do not spin
  between calls; batches from ``BULK_ROWS`` rows on run on the bulk session);
- ``predictor-spin``: the same with ``Predictor.load(..., spinning=True)``;
- ``predictor-single``: the same with ``Predictor.load(..., bulk_rows=None)``: one
  session for every batch, as the Predictor ran before it had a bulk session;
- ``predict-one``: ``Predictor.predict_one(**row)`` (batch 1 only);
- ``ort-cuda``: ``InferenceSession`` with ``CUDAExecutionProvider`` (GPU only);
- ``torch-cuda``: ``torch.nn.Linear`` on ``cuda``, host-device copies included (GPU only).

torch and onnxruntime are imported by the builders that use them.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference.providers import CPU, CUDA
from training.bench.workload import model_parameters

__all__ = ["BACKENDS", "BUILDERS", "Backend", "Builder", "Unavailable", "make_backend"]

Prepare = Callable[[np.ndarray], Callable[[], Any]]


class Unavailable(RuntimeError):
    """A backend cannot run here (no GPU, no CUDA build); the message says why."""


@dataclass
class Backend:
    """One way of computing the predictions.

    ``prepare(x)`` does the per-input set-up outside the timed region and returns
    ``call``; ``to_array(call())`` is the 1-D numpy output, for checking.
    """

    name: str
    provider: str
    device: str
    prepare: Prepare
    to_array: Callable[[Any], np.ndarray] = np.asarray
    batches: frozenset[int] | None = None  # None: every batch size
    note: str = ""

    def supports(self, n: int) -> bool:
        return self.batches is None or n in self.batches


#: ``builder(name, model_dir)``: the backend, or :class:`Unavailable` saying why not
Builder = Callable[[str, Path], Backend]


# --- numpy and torch --------------------------------------------------------------------


def _numpy(name: str, model_dir: Path) -> Backend:
    w, b = model_parameters(model_dir)
    blas = "BLAS"
    with contextlib.suppress(Exception):  # older numpy: no dict mode
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    return Backend(name, f"numpy {np.__version__} ({blas})", "cpu", lambda x: lambda: x @ w + b)


def _torch_linear(torch: Any, model_dir: Path) -> Any:
    w, b = model_parameters(model_dir)
    linear = torch.nn.Linear(w.shape[0], 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(w.reshape(1, -1)))
        linear.bias.fill_(float(b))
    return linear.eval()


def _torch_prepare(torch: Any, module: Any) -> Prepare:
    def prepare(x: np.ndarray) -> Callable[[], Any]:
        def call() -> np.ndarray:
            with torch.inference_mode():
                return module(torch.from_numpy(x)).view(-1).numpy()

        return call

    return prepare


def _torch_eager(name: str, model_dir: Path) -> Backend:
    import torch

    module = _torch_linear(torch, model_dir)
    provider = f"torch {torch.__version__} eager ({torch.get_num_threads()} threads)"
    return Backend(name, provider, "cpu", _torch_prepare(torch, module))


def _torchscript(name: str, model_dir: Path) -> Backend:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(model_dir / "model.pt"), map_location="cpu")
    provider = f"torch {torch.__version__} TorchScript"
    return Backend(name, provider, "cpu", _torch_prepare(torch, module))


def _torch_cuda(name: str, model_dir: Path) -> Backend:
    import torch

    if not torch.cuda.is_available():
        raise Unavailable(
            f"torch.cuda.is_available() is False (torch {torch.__version__}, "
            f"CUDA build {torch.version.cuda}): no GPU or no CUDA torch here"
        )
    cuda = torch.device("cuda")
    module = _torch_linear(torch, model_dir).to(cuda)

    def prepare(x: np.ndarray) -> Callable[[], Any]:
        def call() -> np.ndarray:
            with torch.inference_mode():
                return module(torch.from_numpy(x).to(cuda)).view(-1).cpu().numpy()

        return call

    device = f"cuda:0 ({torch.cuda.get_device_name(0)})"
    return Backend(name, f"torch {torch.__version__} eager", device, prepare)


# --- onnxruntime ------------------------------------------------------------------------


def _session_run(session: Any) -> Prepare:
    input_name = session.get_inputs()[0].name
    return lambda x: lambda: session.run(None, {input_name: x})[0]


def _cpu_session(model_dir: Path) -> tuple[Any, str]:
    """A plain CPU ``InferenceSession`` and its provider description."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_dir / "model.onnx"), providers=[CPU])
    return session, f"onnxruntime {ort.__version__} {session.get_providers()[0]}"


def _ort_session(name: str, model_dir: Path) -> Backend:
    session, provider = _cpu_session(model_dir)
    return Backend(name, provider, "cpu", _session_run(session))


def _ort_floor(name: str, model_dir: Path) -> Backend:
    import onnxruntime as ort

    session, provider = _cpu_session(model_dir)
    input_name = session.get_inputs()[0].name
    output_name = session.get_outputs()[0].name

    def prepare(x: np.ndarray) -> Callable[[], Any]:
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
        "cpu",
        prepare,
        to_array=lambda out: np.array(out),
        note="the least onnxruntime does per call: input and output bound once",
    )


def _ort_cuda(name: str, model_dir: Path) -> Backend:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if CUDA not in available:
        raise Unavailable(
            f"onnxruntime {ort.__version__} has no {CUDA} (available: {available}); "
            "install onnxruntime-gpu on a machine with a GPU"
        )
    session = ort.InferenceSession(str(model_dir / "model.onnx"), providers=[CUDA, CPU])
    if session.get_providers()[0] != CUDA:
        raise Unavailable(f"{CUDA} failed to load; the session runs on {session.get_providers()}")
    return Backend(name, f"onnxruntime {ort.__version__} {CUDA}", "cuda:0", _session_run(session))


# --- the Predictor ----------------------------------------------------------------------


def _load_predictor(model_dir: Path, **options: Any) -> tuple[Any, str]:
    """``Predictor.load(model_dir, providers="cpu", **options)`` and its provider description."""
    import onnxruntime as ort

    from inference import Predictor

    predictor = Predictor.load(model_dir, providers="cpu", **options)
    return predictor, f"linreg Predictor (onnxruntime {ort.__version__} {CPU})"


_PREDICTOR_NOTES = {
    "predictor-spin": "spinning=True: idle intra-op threads spin between calls",
    "predictor-single": "bulk_rows=None: one session for every batch (no bulk session)",
}


def _predictor(name: str, model_dir: Path, **options: Any) -> Backend:
    predictor, provider = _load_predictor(model_dir, **options)
    note = _PREDICTOR_NOTES.get(name, "")
    return Backend(name, provider, "cpu", lambda x: lambda: predictor.predict(x), note=note)


def _predict_one(name: str, model_dir: Path) -> Backend:
    predictor, provider = _load_predictor(model_dir)

    def prepare(x: np.ndarray) -> Callable[[], Any]:
        row = dict(zip(predictor.features, map(float, x[0]), strict=True))
        return lambda: predictor.predict_one(**row)

    return Backend(
        name,
        provider,
        "cpu",
        prepare,
        to_array=lambda v: np.array([v], dtype=np.float64),
        batches=frozenset({1}),
        note="predict_one(**row) with the row as Python floats",
    )


BUILDERS: dict[str, Builder] = {
    "numpy": _numpy,
    "torch-eager": _torch_eager,
    "torchscript": _torchscript,
    "ort-session": _ort_session,
    "ort-floor": _ort_floor,
    "predictor": _predictor,
    "predictor-spin": functools.partial(_predictor, spinning=True),
    "predictor-single": functools.partial(_predictor, bulk_rows=None),
    "predict-one": _predict_one,
    "ort-cuda": _ort_cuda,
    "torch-cuda": _torch_cuda,
}
BACKENDS = tuple(BUILDERS)


def make_backend(name: str, model_dir: str | Path) -> Backend:
    """Build backend ``name`` (one of ``BACKENDS``) for the model in ``model_dir``.

    Raises :class:`Unavailable` with the reason when it cannot run here, and
    ``ValueError`` for a name not in ``BACKENDS``.
    """
    builder = BUILDERS.get(name)
    if builder is None:
        raise ValueError(f"unknown backend {name!r}; expected one of {list(BACKENDS)}")
    return builder(name, Path(model_dir))
