"""The Predictor's methods for a design model: raw columns by name, text and numbers.

A design model's session (:mod:`inference.codes_graph`) takes each number and each
factor's level codes; :meth:`DesignPredictions._predict_design` turns any input form
into those (:mod:`inference.design_inputs`), :meth:`~DesignPredictions._design_one`
scores one row through per-thread buffers bound once to an IOBinding, as the numeric
path does.
"""

from __future__ import annotations

import functools
import math
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.design_inputs import design_feeds, locate_nonfinite_design, report_unknown
from inference.errors import InputError
from inference.intervals import IntervalPrediction
from inference.providers import CPU

__all__ = ["DesignPredictions", "check_design_coefficients"]

#: predict_one's fast path: values of exactly these types need no further check
_PLAIN_NUMBERS = frozenset({float, int})


class DesignPredictions:
    """Mixed into :class:`inference.Predictor`; used when its ``design`` is set."""

    design: Any
    dtype: np.dtype
    strict_columns: bool
    allow_nonfinite: bool
    _session: Any
    _output_names: list[str]

    if TYPE_CHECKING:  # the Predictor's, which this class is mixed into

        @property
        def providers(self) -> list[str]: ...

        def predict(
            self,
            X: Any,
            *,
            interval: str | None = None,
            level: float = 0.95,
            allow_nonfinite: bool | None = None,
            strict_columns: bool | None = None,
        ) -> np.ndarray | IntervalPrediction: ...

        def _fast_run(self) -> tuple[Any, Any]: ...

        def _intervals(
            self, X: np.ndarray, y: np.ndarray, interval: str, level: float
        ) -> IntervalPrediction: ...

    def _predict_design(
        self, X: Any, interval: str | None, level: float, allow_nonfinite: bool, strict: bool
    ) -> np.ndarray | IntervalPrediction:
        """:meth:`predict` of a design model: raw columns by name (text and numbers)."""
        row = _single_row(X) if interval is None else None
        one = self._one_row_design() if row is not None else None
        if row is not None and one is not None:  # one row of scalars: no arrays built
            return self._run_row(row, one, allow_nonfinite, strict)
        feeds, n = design_feeds(X, self.design, self.dtype, strict=strict)
        if n == 0:
            y = np.empty(0, dtype=self.dtype)
        else:
            run_feeds, options = self._fast_run()
            y = run_feeds(self._output_names, feeds, options)[0]
            if not allow_nonfinite and not np.isfinite(y).all():
                raise locate_nonfinite_design(feeds, y, self.design)
        if interval is None:
            return y
        return self._intervals(self.design.matrix_from_codes(feeds), y, interval, level)

    def _design_one(self, given: dict[str, Any]) -> float:
        """:meth:`predict_one` of a design model."""
        one = self._one_row_design()
        if one is None:
            return float(self.predict({k: [v] for k, v in given.items()})[0])
        return float(self._run_row(given, one, self.allow_nonfinite, self.strict_columns)[0])

    def _run_row(
        self, given: dict[str, Any], one: Any, allow_nonfinite: bool, strict: bool
    ) -> np.ndarray:
        """One row given by name, each factor's value looked up in its levels and each
        number checked, into this thread's bound one-row buffers; the prediction (1,)."""
        design = self.design
        names = design.input_names
        if len(given) != len(names) or not all(name in given for name in names):
            missing = [n for n in names if n not in given]
            if missing:
                raise InputError(
                    f"missing column(s) {missing}; the model reads {names}, got {list(given)}"
                )
            report_unknown(list(given), names, strict)
        buffers, y, run = one
        for spec in design.inputs:
            value = given[spec.name]
            if spec.kind == "factor":
                buffers[spec.name][0] = design.level_code(spec.name, value)
            elif type(value) in _PLAIN_NUMBERS and value == value:  # not NaN
                buffers[spec.name][0] = value
            else:
                buffers[spec.name][...] = design.numeric_values(spec.name, [value], self.dtype)
        run()
        out = y.copy()
        if not allow_nonfinite and not math.isfinite(out[0]):
            feeds = {name: buffer.copy() for name, buffer in buffers.items()}
            raise locate_nonfinite_design(feeds, out, design)
        return out

    def _one_row_design(self) -> tuple[dict[str, np.ndarray], np.ndarray, Any] | None:
        """This thread's one-row buffers of a design model (one per input) bound to an
        IOBinding, its output buffer and ``run``; None where that cannot be set up."""
        local = self.__dict__.get("_local")
        if local is None:
            local = self.__dict__.setdefault("_local", threading.local())
        try:
            return local.design_one  # type: ignore[no-any-return]
        except AttributeError:
            local.design_one = self._bind_design_row()
            return local.design_one  # type: ignore[no-any-return]

    def _bind_design_row(self) -> tuple[dict[str, np.ndarray], np.ndarray, Any] | None:
        if self.providers != [CPU]:
            return None
        try:
            import onnxruntime as ort

            buffers = {
                spec.name: np.zeros(1, np.int64 if spec.kind == "factor" else self.dtype)
                for spec in self.design.inputs
            }
            y = np.full(1, np.nan, dtype=self.dtype)
            binding = self._session.io_binding()
            values = [ort.OrtValue.ortvalue_from_numpy(b) for b in buffers.values()]
            for name, value in zip(buffers, values, strict=True):
                binding.bind_ortvalue_input(name, value)
            y_value = ort.OrtValue.ortvalue_from_numpy(y)
            binding.bind_ortvalue_output(self._output_names[0], y_value)
            run = functools.partial(
                self._session._sess.run_with_iobinding, binding._iobinding, ort.RunOptions()
            )
            run.keep = (binding, values, y_value)  # type: ignore[attr-defined]  # the buffers
            expected = self._session.run(self._output_names, buffers)[0]
            run()
            if expected.shape != (1,) or not np.array_equal(y, expected, equal_nan=True):
                return None
        except Exception:  # an onnxruntime without these internals: use session.run
            return None
        return buffers, y, run


def _single_row(X: Any) -> dict[str, Any] | None:
    """``X`` as one row of scalars by name, when it is a dict of scalars (or of
    one-element lists) or a list of one record; None for anything else."""
    if isinstance(X, list) and len(X) == 1 and isinstance(X[0], dict):
        return X[0]
    if not isinstance(X, dict):
        return None
    row = {}
    for name, value in X.items():
        if isinstance(value, list | tuple):
            if len(value) != 1:
                return None
            value = value[0]
        elif isinstance(value, np.ndarray):
            if value.shape != (1,):
                return None
            value = value[0].item() if value.dtype.kind in "iufb" else value[0]
        row[name] = value
    return row


def check_design_coefficients(session: Any, manifest: Any, dtype: np.dtype, source: str) -> None:
    """The design model's session against its manifest's coefficients: the graph must
    compute ``Z @ coef + intercept`` (the model card's numbers) on probe rows (numbers
    drawn in [1, 2], every factor's levels at random), to the dtype's rounding; and
    ``statistics.params`` must be ``parameters``. Raises
    :class:`~inference.errors.CoefficientError`: what the card shows is what runs."""
    from inference.errors import CoefficientError

    design = manifest.design
    params = manifest.parameters or {}
    coef = np.asarray(params.get("coef", []), dtype=np.float64)
    intercept = float(params.get("intercept", 0.0))
    stated = manifest.statistics.get("params")
    if stated is not None:
        ours = [intercept, *coef] if len(stated) == len(coef) + 1 else list(coef)
        if not np.array_equal(np.asarray(stated, dtype=np.float64), ours):
            raise CoefficientError(f"{source}: statistics.params differ from parameters")
    rng = np.random.default_rng(0)
    n = min(max(256, 4 * len(design.columns)), 20_000)
    feeds = {
        spec.name: (
            rng.uniform(1.0, 2.0, n).astype(dtype)
            if spec.kind == "numeric"
            else rng.integers(0, len(spec.levels), n).astype(np.int64)
        )
        for spec in design.inputs
    }
    y = np.asarray(session.run(None, feeds)[0], dtype=np.float64)
    expected = design.matrix_from_codes(feeds, np.float64) @ coef + intercept
    scale = max(float(np.nanmax(np.abs(expected), initial=0.0)), np.finfo(np.float64).tiny)
    tolerance = (1e-5 if dtype == np.float32 else 1e-10) * scale
    diff = np.abs(y - expected)
    bad = np.flatnonzero(~((diff <= tolerance) | (np.isnan(y) & np.isnan(expected))))
    if bad.size:
        i = int(bad[0])
        raise CoefficientError(
            f"{source}: the graph computes {y[i]:.9g} where the manifest's coefficients give "
            f"{expected[i]:.9g} (a probe row); what the model card shows is not what runs"
        )
