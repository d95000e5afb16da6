"""The Predictor: an exported linear model on ONNX Runtime, torch-free.

One ``onnxruntime.InferenceSession`` per Predictor, created at load and reused by
every call; ``InferenceSession.run`` is thread-safe and releases the GIL, so a
single Predictor serves many threads. Intra-op threads do not spin by default
(``session.intra_op.allow_spinning = 0``), so an idle model takes no CPU from
the app it is embedded in.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.errors import InputError, ModelLoadError, ProviderError
from inference.inputs import as_matrix, is_real, locate_nonfinite, too_large
from inference.intervals import IntervalPrediction, compute_intervals
from inference.manifest import Manifest

__all__ = ["Predictor", "resolve_providers"]

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
#: largest .onnx file accepted; the linear models here are a few hundred bytes
MAX_ONNX_BYTES = 256 << 20
_OPT_LEVELS = ("disable", "basic", "extended", "all")
#: predict_one's fast path: values of exactly these types need no further check
_PLAIN_NUMBERS = frozenset({float, int})
#: up to this many rows, the non-finite check is a dot product (OpenBLAS runs dot
#: products of more than 10,000 elements on its own threads, which spin afterwards)
_DOT_CHECK_ROWS = 8192
_ORT_DTYPES: dict[str, np.dtype] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(double)": np.dtype(np.float64),
}


def resolve_providers(providers: str | Sequence[Any], available: Sequence[str]) -> list[Any]:
    """Map ``"auto"``, ``"cpu"``, ``"cuda"`` or an explicit list to an ORT providers list.

    An explicit list may hold names or ``(name, options)`` pairs, like ORT's own.
    """
    if isinstance(providers, str):
        choice = providers.lower()
        if choice == "auto":
            return [CUDA, CPU] if CUDA in available else [CPU]
        if choice == "cpu":
            return [CPU]
        if choice == "cuda":
            return [CUDA, CPU]
        raise ProviderError(
            f"providers={providers!r}: expected 'auto', 'cpu', 'cuda' or a list of "
            f"execution providers; the available ones are {list(available)}"
        )
    resolved = list(providers)
    if not resolved:
        raise ProviderError(f"an empty providers list; the available ones are {list(available)}")
    for entry in resolved:
        name = entry[0] if isinstance(entry, tuple) else entry
        if name not in available:
            raise ProviderError(
                f"Asked to use {name} as an ONNX Runtime execution provider, but the available "
                f"execution providers are {list(available)}."
            )
    return resolved


def _provider_name(entry: Any) -> str:
    return entry[0] if isinstance(entry, tuple) else str(entry)


class Predictor:
    """Predictions from an exported model. Build one with :meth:`load`.

    Attributes
    ----------
    features : list of str
        Input column names, in the order of the model's input columns.
    target : str
    dtype : numpy.dtype
        float32 or float64: the model's input and output dtype.
    n_features_in_ : int
    providers : list of str
        The execution providers the session really uses.
    manifest : Manifest or None
        None when loaded from a bare ``.onnx`` file.
    """

    def __init__(
        self,
        session: Any,
        *,
        features: list[str],
        target: str,
        dtype: np.dtype,
        manifest: Manifest | None,
        source: str,
        allow_nonfinite: bool = False,
    ) -> None:
        self._session = session
        self.features = list(features)
        self.target = target
        self.dtype = np.dtype(dtype)
        self.n_features_in_ = len(self.features)
        self.manifest = manifest
        self.source = source
        self.allow_nonfinite = allow_nonfinite
        self._input_name = session.get_inputs()[0].name
        self._output_names = [session.get_outputs()[0].name]
        self._index = {name: j for j, name in enumerate(self.features)}
        self._zeros = np.zeros(_DOT_CHECK_ROWS, dtype=self.dtype)  # see _run

    # --- loading -------------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        providers: str | Sequence[Any] = "auto",
        threads: int | None = None,
        strict: bool = False,
        spinning: bool = False,
        optimization: str = "all",
        allow_nonfinite: bool = False,
        session_options: Any = None,
    ) -> Predictor:
        """Load a model directory (manifest checked) or a bare ``.onnx`` file.

        Parameters
        ----------
        path : model directory with ``manifest.json``, or an ``.onnx`` file
        providers : "auto", "cpu", "cuda" or an ONNX Runtime providers list
            "auto" takes CUDA when this onnxruntime has it, else CPU.
        threads : int or None
            Intra-op threads (None: ONNX Runtime's default, one per physical core).
        strict : bool
            Raise :class:`ProviderError` instead of warning when a GPU provider
            was asked for but the session runs on CPU.
        spinning : bool
            Let idle intra-op threads spin (faster back-to-back batch calls, but
            burns CPU between calls).
        optimization : "disable", "basic", "extended" or "all"
            ONNX Runtime graph optimization level.
        allow_nonfinite : bool
            Score NaN and inf inputs instead of raising :class:`InputError`.
        session_options : onnxruntime.SessionOptions, optional
            Used as given instead of building one from the arguments above.
        """
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ImportError(
                "the inference runtime needs onnxruntime: pip install 'linreg-onnx[cpu]' "
                "(or 'linreg-onnx[cuda]' for onnxruntime-gpu)"
            ) from exc

        path = Path(path)
        manifest: Manifest | None = None
        if path.is_dir():
            manifest = Manifest.read(path)
            manifest.verify_artifacts(path)
            onnx_path = path / manifest.onnx_file
        elif path.is_file():
            onnx_path = path
        else:
            raise ModelLoadError(f"{path}: no such model directory or .onnx file")
        data = _read_onnx(onnx_path)
        if manifest is not None:
            # Hash the very bytes handed to onnxruntime (no window between check and use).
            import hashlib

            digest = hashlib.sha256(data).hexdigest()
            if digest != manifest.data["artifacts"][manifest.onnx_file]["sha256"]:
                raise ModelLoadError(f"{onnx_path}: changed while it was being loaded")
        from inference.onnx_check import check_onnx_bytes

        check_onnx_bytes(data, source=str(onnx_path))

        available = ort.get_available_providers()
        wanted = resolve_providers(providers, available)
        wants_gpu = any(_provider_name(p) != CPU for p in wanted)
        missing = [_provider_name(p) for p in wanted if _provider_name(p) not in available]
        if missing:
            message = (
                f"Asked to use {missing} as ONNX Runtime execution provider(s), but the "
                f"available execution providers are {available}. For CUDA, install the "
                "'cuda' extra (onnxruntime-gpu) in place of onnxruntime."
            )
            if strict:
                raise ProviderError(message)
            warnings.warn(message + " Running on CPU.", RuntimeWarning, stacklevel=2)
            wanted = [p for p in wanted if _provider_name(p) in available] or [CPU]
            wants_gpu = any(_provider_name(p) != CPU for p in wanted)

        so = (
            session_options
            if session_options is not None
            else _session_options(
                ort, threads=threads, spinning=spinning, optimization=optimization
            )
        )
        try:
            session = ort.InferenceSession(data, sess_options=so, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise ModelLoadError(f"{onnx_path}: onnxruntime cannot load it ({exc})") from exc

        got = session.get_providers()
        if wants_gpu and not any(p != CPU for p in got):
            message = (
                f"asked for {[_provider_name(p) for p in wanted]} but the session runs on {got}: "
                "the GPU provider failed to load (see onnxruntime's log above)"
            )
            if strict:
                raise ProviderError(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)

        try:
            features, target, dtype = _describe(session, manifest, onnx_path)
            _smoke_test(session, len(features), dtype, onnx_path)
        except UnicodeDecodeError as exc:  # ONNX (proto2) strings need not be UTF-8
            raise ModelLoadError(f"{onnx_path}: a name in it is not valid UTF-8 ({exc})") from exc
        return cls(
            session,
            features=features,
            target=target,
            dtype=dtype,
            manifest=manifest,
            source=str(path),
            allow_nonfinite=allow_nonfinite,
        )

    @property
    def providers(self) -> list[str]:
        """Execution providers of the session, in priority order."""
        return list(self._session.get_providers())

    @property
    def session(self) -> Any:
        """The underlying ``onnxruntime.InferenceSession``."""
        return self._session

    def __repr__(self) -> str:
        return (
            f"Predictor({self.source!r}, features={self.features}, target={self.target!r}, "
            f"dtype={self.dtype.name}, providers={self.providers})"
        )

    def __reduce__(self) -> Any:
        raise TypeError(
            "a Predictor holds an onnxruntime session, which cannot be pickled; ship the "
            "model path and call Predictor.load in each process (inference.dask does this)"
        )

    # --- predicting ----------------------------------------------------------
    def predict(
        self,
        X: Any,
        *,
        interval: str | None = None,
        level: float = 0.95,
        allow_nonfinite: bool | None = None,
    ) -> np.ndarray | IntervalPrediction:
        """Predict the target for each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_features,), DataFrame,
            dict of name to scalar or 1-D array, or list of dicts
        interval : None, "confidence" or "prediction"
        level : float
            Interval coverage (0.90, 0.95 and 0.99 need no scipy).
        allow_nonfinite : bool, optional
            Overrides the Predictor's setting for this call.

        Returns
        -------
        ndarray of shape (n_samples,) in the model's dtype, or, with ``interval``,
        an :class:`IntervalPrediction` (prediction, lower, upper), float64.
        """
        X = as_matrix(X, self.features, self.dtype)
        y = self._run(X, self.allow_nonfinite if allow_nonfinite is None else allow_nonfinite)
        if interval is None:
            return y
        return self._intervals(X, y, interval, level)

    def predict_one(self, row: Mapping[str, Any] | None = None, /, **values: Any) -> float:
        """Predict one row given by name: ``predict_one(area=3.0)`` or ``predict_one({...})``."""
        given = {**row, **values} if row is not None else values
        if len(given) != self.n_features_in_ or given.keys() != self._index.keys():
            missing = [f for f in self.features if f not in given]
            unknown = [g for g in given if g not in self._index]
            raise InputError(
                f"predict_one: missing {missing}, unknown {unknown}; the model expects "
                f"{self.features}"
            )
        ordered = list(map(given.__getitem__, self.features))
        if not _PLAIN_NUMBERS.issuperset(map(type, ordered)):  # else check each, in given order
            for name, value in given.items():
                if not is_real(value):
                    raise InputError(
                        f"predict_one: {name}={value!r} ({type(value).__name__}) is not a number"
                    )
        one = self._one_row()
        x = np.empty((1, self.n_features_in_), dtype=self.dtype) if one is None else one[0]
        try:
            x[0] = ordered
        except OverflowError:  # a Python int beyond float64
            name = next(n for n, v in given.items() if isinstance(v, int) and abs(v) >= 2**1024)
            raise too_large(0, name, given[name], self.dtype) from None
        if one is None:
            value = float(self._run(x, allow_nonfinite=True)[0])
        else:
            _, y, run = one
            run()
            value = float(y[0])
        if not math.isfinite(value):
            # a finite value beyond a float32 model's range became inf in x: refused
            # whatever allow_nonfinite says, as predict refuses it
            for name, v in given.items():
                if math.isfinite(v) and not math.isfinite(x[0, self._index[name]]):
                    raise too_large(0, name, v, self.dtype)
            if not self.allow_nonfinite:
                raise locate_nonfinite(x.copy(), self.features)
        return value

    __call__ = predict

    def _run(self, X: np.ndarray, allow_nonfinite: bool) -> np.ndarray:
        """Run the session on a C-contiguous (n, k) array of the model's dtype.

        The per-call cost of ``InferenceSession.run`` (about 3.8 µs here, for a
        1 µs numpy product) is mostly the wrapper's feed checks and a fresh
        ``RunOptions`` built by onnxruntime when none is passed. So one row goes
        through a per-thread IOBinding bound once to preallocated buffers, and
        more rows through the session's native ``run`` with one reused
        ``RunOptions`` (benchmarks/, docs/benchmarks.md).
        """
        n = X.shape[0]
        if n == 1:
            one = self._one_row()
            if one is not None:
                x, y_one, run = one
                x[...] = X
                run()
                y = y_one.copy()
                if not (allow_nonfinite or math.isfinite(y[0])):
                    raise locate_nonfinite(X, self.features)
                return y
        elif n == 0:
            return np.empty(0, dtype=self.dtype)
        run_feeds, options = self._fast_run()
        y = run_feeds(self._output_names, {self._input_name: X}, options)[0]
        if allow_nonfinite:
            return y
        # y·0 is 0 when every y is finite and NaN otherwise (inf·0 is NaN), and cannot
        # overflow: one single-threaded BLAS call, 2-3 times cheaper than
        # isfinite(y).all() up to BLAS's threading threshold.
        if n <= _DOT_CHECK_ROWS and math.isfinite(y.dot(self._zeros[:n])):
            return y
        if not np.isfinite(y).all():
            raise locate_nonfinite(X, self.features)
        return y

    def _fast_run(self) -> tuple[Any, Any]:
        """``(run, run_options)``: the session's native ``run`` on a CPU-only session
        (the Python wrapper's checks and its CUDA fallback are of no use there), and
        one ``RunOptions`` for every call (it is only read, so threads share it)."""
        fast = self.__dict__.get("_fast")
        if fast is None:
            import onnxruntime as ort

            run = self._session.run
            native_run = getattr(getattr(self._session, "_sess", None), "run", None)
            if self.providers == [CPU] and callable(native_run):
                run = native_run
            fast = self.__dict__.setdefault("_fast", (run, ort.RunOptions()))
        return fast

    def _one_row(self) -> tuple[np.ndarray, np.ndarray, Any] | None:
        """This thread's ``(x, y, run)``: a (1, k) input and a (1,) output buffer bound
        once to an IOBinding of the shared session, and ``run()`` filling ``y`` from
        ``x``; None where that cannot be set up (then ``session.run`` is used).

        One binding per thread keeps a Predictor safe to share between threads:
        ``run_with_iobinding`` may run concurrently on one session, a binding may not.
        """
        local = self.__dict__.get("_local")
        if local is None:
            local = self.__dict__.setdefault("_local", threading.local())
        try:
            return local.one  # type: ignore[no-any-return]
        except AttributeError:
            local.one = self._bind_one_row()
            return local.one  # type: ignore[no-any-return]

    def _bind_one_row(self) -> tuple[np.ndarray, np.ndarray, Any] | None:
        if self.providers != [CPU]:
            return None
        try:
            import onnxruntime as ort

            x = np.zeros((1, self.n_features_in_), dtype=self.dtype)
            y = np.full(1, np.nan, dtype=self.dtype)
            x_value = ort.OrtValue.ortvalue_from_numpy(x)  # shares x's memory on CPU
            y_value = ort.OrtValue.ortvalue_from_numpy(y)
            binding = self._session.io_binding()
            binding.bind_ortvalue_input(self._input_name, x_value)
            binding.bind_ortvalue_output(self._output_names[0], y_value)
            # onnxruntime's native call: the wrapper's run_with_iobinding adds graph-capture
            # checks, and a RunOptions made once saves the one onnxruntime makes per call
            run = functools.partial(
                self._session._sess.run_with_iobinding, binding._iobinding, ort.RunOptions()
            )
            run.keep = (binding, x_value, y_value)  # type: ignore[attr-defined]  # the buffers
            expected = self._session.run(self._output_names, {self._input_name: x})[0]
            run()
            if expected.shape != (1,) or not np.array_equal(y, expected, equal_nan=True):
                return None
        except Exception:  # an onnxruntime without these internals: use session.run
            return None
        return x, y, run

    def _intervals(
        self, X: np.ndarray, y: np.ndarray, interval: str, level: float
    ) -> IntervalPrediction:
        stats = self.manifest.interval_inputs() if self.manifest is not None else None
        if stats is None:
            raise ValueError(
                f"{self.source}: intervals need the statistics of a model directory's "
                "manifest; a bare .onnx file has none"
            )
        return compute_intervals(X, y, stats, kind=interval, level=level)


def _session_options(ort: Any, *, threads: int | None, spinning: bool, optimization: str) -> Any:
    if optimization not in _OPT_LEVELS:
        raise ValueError(f"optimization must be one of {_OPT_LEVELS}, got {optimization!r}")
    if threads is not None and (isinstance(threads, bool) or int(threads) < 0):
        raise ValueError(f"threads must be a non-negative integer or None, got {threads!r}")
    so = ort.SessionOptions()
    if threads is not None:
        so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    spin = "1" if spinning else "0"
    so.add_session_config_entry("session.intra_op.allow_spinning", spin)
    so.add_session_config_entry("session.inter_op.allow_spinning", spin)
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    return so


def _read_onnx(path: Path) -> bytes:
    try:
        if path.is_symlink():
            raise ModelLoadError(f"{path}: is a symbolic link; refusing to follow it")
        size = path.stat().st_size
        if size > MAX_ONNX_BYTES:
            raise ModelLoadError(f"{path}: {size} bytes, above the {MAX_ONNX_BYTES} byte limit")
        if size == 0:
            raise ModelLoadError(f"{path}: the file is empty")
        return path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read it ({exc.strerror})") from exc


def _smoke_test(session: Any, k: int, dtype: np.dtype, path: Path) -> None:
    """Run the model on 1 and 3 rows of zeros: a graph that loads but cannot run, or
    does not return one value per row, is refused at load instead of failing later."""
    feed, fetch = session.get_inputs()[0].name, session.get_outputs()[0].name
    for n in (1, 3):
        try:
            y = session.run([fetch], {feed: np.zeros((n, k), dtype=dtype)})[0]
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise ModelLoadError(f"{path}: onnxruntime cannot run it on {n} rows ({exc})") from exc
        if y.shape != (n,):
            raise ModelLoadError(f"{path}: on {n} rows it returns shape {y.shape}, not ({n},)")


def _describe(session: Any, manifest: Manifest | None, path: Path) -> tuple[list[str], str, Any]:
    """Features, target and dtype, with the session's signature checked against them."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise ModelLoadError(
            f"{path}: expected one input and one output, got {len(inputs)} and {len(outputs)}"
        )
    inp, out = inputs[0], outputs[0]
    dtype = _ORT_DTYPES.get(inp.type)
    if dtype is None or len(inp.shape) != 2 or not isinstance(inp.shape[1], int):
        raise ModelLoadError(
            f"{path}: input {inp.name!r} is {inp.type} of shape {inp.shape}; expected a "
            "float or double tensor of shape (batch, k)"
        )
    if _ORT_DTYPES.get(out.type) != dtype:
        raise ModelLoadError(f"{path}: output is {out.type}, input is {inp.type}; expected equal")
    k = inp.shape[1]
    meta = session.get_modelmeta().custom_metadata_map
    meta_features = None
    if "linreg.features" in meta:
        try:
            meta_features = json.loads(meta["linreg.features"])
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"{path}: metadata 'linreg.features' is not JSON") from exc
    if manifest is not None:
        features, target = manifest.features, manifest.target
        if inp.name != manifest.input_name or out.name != manifest.output_name:
            raise ModelLoadError(
                f"{path}: input/output names {inp.name!r}/{out.name!r} differ from the "
                f"manifest's {manifest.input_name!r}/{manifest.output_name!r}"
            )
        if dtype.name != manifest.dtype:
            raise ModelLoadError(f"{path}: dtype {dtype.name}, the manifest says {manifest.dtype}")
        if meta_features is not None and meta_features != features:
            raise ModelLoadError(
                f"{path}: its metadata names features {meta_features}, the manifest {features}"
            )
    else:
        features = meta_features if meta_features is not None else [f"x{j}" for j in range(k)]
        target = meta.get("linreg.target", "prediction")
    if not isinstance(features, list) or len(features) != k:
        raise ModelLoadError(f"{path}: {len(features)} feature names for an input of {k} columns")
    return [str(f) for f in features], str(target), dtype
