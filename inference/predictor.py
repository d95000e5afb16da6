"""The Predictor: an exported linear model on ONNX Runtime, torch-free.

One ``onnxruntime.InferenceSession`` per Predictor, created at load and reused by
every call; ``InferenceSession.run`` is thread-safe and releases the GIL, so a
single Predictor serves many threads. Batches of ``bulk_rows`` rows or more go
to a second, bulk session on the same model, opened at the first such batch,
with a thread on every CPU and a cheaper non-finite check (:mod:`inference.bulk`;
docs/guide/bandwidth.md has the measurements behind it).

:meth:`Predictor.load` goes in steps: find the ONNX file (and verify the
manifest's artifacts), read and hash its bytes, check them with
:mod:`inference.onnx_check`, choose the execution providers
(:mod:`inference.providers`), open the session and read its signature
(:mod:`inference.session`).
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference.bulk import BULK_ROWS, BulkBatches, check_bulk_rows
from inference.design_predictor import DesignPredictions, check_design_coefficients
from inference.errors import IgnoredColumnsWarning, InputError, UsageError
from inference.inputs import as_matrix, is_real, locate_nonfinite, too_large
from inference.intervals import IntervalPrediction, compute_intervals
from inference.manifest import Manifest
from inference.model_files import MAX_ONNX_BYTES, locate, read_model_bytes
from inference.providers import CPU, CUDA, check_session_providers, resolve_providers
from inference.session import (
    build_bulk_options,
    build_session_options,
    import_onnxruntime,
    open_bulk_session,
    open_session,
    read_design_signature,
    read_signature,
)

# CPU, CUDA and resolve_providers live in inference.providers, importable from here too
__all__ = ["BULK_ROWS", "CPU", "CUDA", "MAX_ONNX_BYTES", "Predictor", "resolve_providers"]

#: predict_one's fast path: values of exactly these types need no further check
_PLAIN_NUMBERS = frozenset({float, int})
#: up to this many rows, the non-finite check is a dot product (OpenBLAS runs dot
#: products of more than 10,000 elements on its own threads, which spin afterwards)
_DOT_CHECK_ROWS = 8192


class Predictor(DesignPredictions, BulkBatches):
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
    allow_nonfinite, strict_columns : bool
        The defaults of :meth:`predict`'s arguments of those names.
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
        strict_columns: bool = False,
        design: Any = None,
        bulk: Callable[[], Any] | None = None,
        bulk_rows: int | None = None,
    ) -> None:
        self._session = session
        #: a model fitted on raw columns (inference.design): its session takes each
        #: number and each factor's level codes (inference.codes_graph)
        self.design = design
        self.features = list(features)
        self.target = target
        self.dtype = np.dtype(dtype)
        self.n_features_in_ = len(self.features)
        self.manifest = manifest
        self.source = source
        self.allow_nonfinite = allow_nonfinite
        self.strict_columns = strict_columns
        self._input_name = session.get_inputs()[0].name
        self._output_names = [session.get_outputs()[0].name]
        self._index = {name: j for j, name in enumerate(self.features)}
        self._zeros = np.zeros(_DOT_CHECK_ROWS, dtype=self.dtype)  # see _run
        self._init_bulk(bulk, bulk_rows)  # batches of bulk_rows or more: inference.bulk

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
        strict_columns: bool = False,
        session_options: Any = None,
        trusted_keys: Sequence[Any] | None = None,
        bulk_rows: int | None = BULK_ROWS,
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
            was asked for but the session runs on CPU (this onnxruntime lacks it,
            or it failed to load).
        spinning : bool
            Let idle intra-op threads spin (faster back-to-back batch calls, but
            burns CPU between calls).
        optimization : "disable", "basic", "extended" or "all"
            ONNX Runtime graph optimization level.
        allow_nonfinite : bool
            Score NaN and inf inputs instead of raising :class:`InputError`.
        strict_columns : bool
            Refuse named columns the model does not read (DataFrame columns, dict
            or record keys) with :class:`InputError`, instead of ignoring them with
            an :class:`~inference.errors.IgnoredColumnsWarning`.
        session_options : onnxruntime.SessionOptions, optional
            Used as given instead of building one from the arguments above.
        trusted_keys : sequence of PEM public key paths (or loaded keys), optional
            Load only a model directory signed by one of these keys whose files are
            exactly those signed (:func:`inference.signing.verify_directory`; raises
            :class:`~inference.errors.SignatureError`). None (the default) takes the
            keys named by the environment variable ``LINREG_TRUSTED_KEYS``
            (``os.pathsep``-separated); an empty sequence, or None with that variable
            unset, checks no signature. Whatever the keys, the manifest's coefficients
            (``parameters`` and ``statistics.params``) must be the graph's
            (:mod:`inference.coefficients`).
        bulk_rows : int or None
            Batches of this many rows or more run on a second CPU session opened at the
            first, with a thread per CPU (or ``threads``) and a one-pass non-finite check
            (:mod:`inference.bulk`; docs/guide/bandwidth.md). None: one session, as before.
        """
        path = Path(path)
        ort = import_onnxruntime()
        onnx_path, manifest = locate(path, trusted_keys)
        design = manifest.design if manifest is not None else None
        data = _session_bytes(onnx_path, manifest, design)
        settings = {"threads": threads, "spinning": spinning, "optimization": optimization}
        session, bulk = _open_sessions(
            ort, data, onnx_path, providers, strict, session_options, settings
        )
        features, target, dtype = _checked_signature(session, manifest, design, onnx_path, data)
        return cls(
            session,
            features=features,
            target=target,
            dtype=dtype,
            manifest=manifest,
            source=str(path),
            allow_nonfinite=allow_nonfinite,
            strict_columns=strict_columns,
            design=design,
            bulk=bulk if design is None else None,  # a design model's batches: one session
            bulk_rows=check_bulk_rows(bulk_rows),
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
        strict_columns: bool | None = None,
    ) -> np.ndarray | IntervalPrediction:
        """Predict the target for each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_features,), DataFrame,
            dict of name to scalar or 1-D array, or list of dicts
            Named columns the model does not read are ignored and reported by an
            :class:`~inference.errors.IgnoredColumnsWarning`; booleans are refused
            in every form; an empty batch gives an empty array
            (:mod:`inference.inputs`).
        interval : None, "confidence" or "prediction"
        level : float
            Interval coverage (0.90, 0.95 and 0.99 need no scipy).
        allow_nonfinite, strict_columns : bool, optional
            Override the Predictor's settings for this call.

        Returns
        -------
        ndarray of shape (n_samples,) in the model's dtype, or, with ``interval``,
        an :class:`IntervalPrediction` (prediction, lower, upper), float64.
        """
        strict = self.strict_columns if strict_columns is None else strict_columns
        if self.design is not None:
            allow = self.allow_nonfinite if allow_nonfinite is None else allow_nonfinite
            return self._predict_design(X, interval, level, allow, strict)
        X = as_matrix(X, self.features, self.dtype, strict=strict)
        y = self._run(X, self.allow_nonfinite if allow_nonfinite is None else allow_nonfinite)
        if interval is None:
            return y
        return self._intervals(X, y, interval, level)

    def predict_one(self, row: Mapping[str, Any] | None = None, /, **values: Any) -> float:
        """Predict one row given by name: ``predict_one(area=3.0)`` or ``predict_one({...})``."""
        given = {**row, **values} if row is not None else values
        if self.design is not None:
            return self._design_one(given)
        if len(given) != self.n_features_in_ or given.keys() != self._index.keys():
            given = self._known(given)
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

    def _known(self, given: dict[str, Any]) -> dict[str, Any]:
        """``predict_one``'s values without the names the model does not read (reported
        as :meth:`predict` reports them); InputError for a missing feature."""
        missing = [f for f in self.features if f not in given]
        unknown = [g for g in given if g not in self._index]
        if missing or (unknown and self.strict_columns):
            raise InputError(
                f"predict_one: missing {missing}, unknown {unknown}; the model expects "
                f"{self.features}"
            )
        warnings.warn(
            IgnoredColumnsWarning(
                f"predict_one: ignored {unknown}, which the model does not read (it reads "
                f"{self.features}); pass strict_columns=True to refuse them"
            ),
            stacklevel=3,
        )
        return {f: given[f] for f in self.features}

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
        elif n >= self._bulk_rows:
            bulk = self._bulk()
            if bulk is not None:
                return self._bulk_run(bulk, X, allow_nonfinite)
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
            raise UsageError(
                f"{self.source}: intervals need the statistics of a model directory's "
                "manifest; a bare .onnx file has none"
            )
        return compute_intervals(X, y, stats, kind=interval, level=level)


def _open_sessions(
    ort: Any,
    data: bytes,
    onnx_path: Path,
    providers: str | Sequence[Any],
    strict: bool,
    session_options: Any,
    settings: dict[str, Any],
) -> tuple[Any, Callable[[], Any] | None]:
    """The session on the providers asked for (checked), and a function opening the
    bulk session (:mod:`inference.bulk`) where that session is a CPU one, else None.

    ``session_options`` is used by both sessions as it is; else each builds its own
    from ``settings`` (the bulk session with a thread per CPU unless ``threads``).
    """
    wanted = resolve_providers(
        providers, ort.get_available_providers(), strict=strict, stacklevel=3
    )
    options = session_options
    if options is None:
        options = build_session_options(ort, **settings)
    session = open_session(ort, data, onnx_path, wanted, options)
    check_session_providers(wanted, session.get_providers(), strict=strict, stacklevel=3)
    if session.get_providers() != [CPU]:
        return session, None
    bulk_options = session_options
    if bulk_options is None:
        bulk_options = build_bulk_options(ort, **settings)
    return session, functools.partial(open_bulk_session, ort, data, bulk_options)


def _session_bytes(onnx_path: Path, manifest: Manifest | None, design: Any) -> bytes:
    """The model's bytes, read and checked (:mod:`inference.onnx_check`); a design
    model's with its factors' lookups taken out (:mod:`inference.codes_graph`), which
    the Predictor does itself, by distinct value."""
    data = read_model_bytes(onnx_path, manifest)
    from inference.onnx_check import check_onnx_bytes

    check_onnx_bytes(data, source=str(onnx_path))
    if design is not None:
        from inference.codes_graph import codes_graph

        data = codes_graph(data, design)
    return data


def _checked_signature(
    session: Any, manifest: Manifest | None, design: Any, onnx_path: Path, data: bytes
) -> Any:
    """Features, target and dtype, the session checked against the manifest, and the
    manifest's coefficients against the graph's (:mod:`inference.coefficients`)."""
    if design is not None and manifest is not None:
        signature = read_design_signature(session, manifest, design, onnx_path)
        check_design_coefficients(session, manifest, signature.dtype, str(onnx_path))
        return signature
    signature = read_signature(session, manifest, onnx_path)
    if manifest is not None:
        from inference.coefficients import check_coefficients

        check_coefficients(data, manifest, source=str(onnx_path))
    return signature
