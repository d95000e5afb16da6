"""What a chunked or Dask fit hands back: a fitted estimator and a :class:`TrainingRun`.

The fit never held its rows, so the run's statistics come from the factor and the
final measurement (:func:`training.chunked.tsqr.statistics`), its training metrics cover
every row, and ``X_train``/``y_train`` hold the uniform sample the export verifies
the model on and draws its plots from.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from training.chunked.sources import PassLog
from training.chunked.tsqr import Factor, statistics
from training.defaults import FIT_DEFAULTS, PRESETS

if TYPE_CHECKING:
    from training.chunked.epochs import EpochsResult
    from training.pipeline import TrainingRun
    from training.solver.estimator import LinearRegressionSGD

__all__ = ["finish_run", "fit_options", "fitted_estimator", "rows_per_second"]


def fitted_estimator(
    result: EpochsResult,
    factor: Factor,
    *,
    seconds: float,
    **params: Any,
) -> LinearRegressionSGD:
    """A fitted :class:`~training.solver.estimator.LinearRegressionSGD` holding the streamed result:
    the raw ``nn.Linear`` and the learned attributes its ``fit`` sets (``seconds``: the
    fit's time)."""
    from training.solver.estimator import LinearRegressionSGD
    from training.solver.sgd import linear_module

    est = LinearRegressionSGD(**params)
    p = result.params
    k = p.size - 1
    est.module_ = linear_module(p[1:], float(p[0]), est.dtype)
    est.coef_ = p[1:].copy()
    est.intercept_ = float(p[0])
    est.n_features_in_ = k
    est.n_epochs_ = result.epochs
    est.refinement_steps_ = 0
    est.converged_ = bool(result.converged)
    est.lr_ = result.lr
    est.loss_history_ = list(result.history)
    est.fit_seconds_ = seconds
    est.hessian_eigenvalues_ = (2.0, 2.0)
    return est


_EST_PARAMS = (
    "lr",
    "max_epochs",
    "tol",
    "early_stop",
    "batch_size",
    "momentum",
    "fit_intercept",
    "seed",
    "dtype",
    "progress",
)


def fit_options(preset: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """A chunked fit's options: :data:`~training.defaults.FIT_DEFAULTS`, the preset's,
    then ``overrides``, less ``standardize`` and ``orthogonalize`` (a chunked fit always
    preconditions). ``ValueError`` for an unknown preset or option, or a preset that
    fits raw features."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    merged = {**PRESETS[preset], **overrides}
    if merged.get("standardize") is False or merged.get("orthogonalize") is False:
        raise ValueError(
            "a chunked fit always preconditions (standardize and orthogonalize); "
            "raw-feature presets need the data in memory"
        )
    unknown = set(merged) - set(FIT_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} for a chunked fit")
    opts = {**FIT_DEFAULTS, **merged}
    del opts["standardize"], opts["orthogonalize"]
    return opts


def finish_run(
    result: EpochsResult,
    factor: Factor,
    X_sample: np.ndarray,
    y_sample: np.ndarray,
    *,
    features: Sequence[str],
    target: str,
    preset: str,
    source_name: str,
    opts: dict[str, Any],
    started: float,
    log: PassLog,
    engine: str,
) -> TrainingRun:
    """The :class:`TrainingRun` of a chunked fit: statistics from the factor and the
    final measurement, metrics of all rows, the sample as ``X_train``/``y_train``."""
    import warnings

    from training.pipeline import FitReport, TrainingRun

    n = factor.n
    final = result.final
    scale = factor.y_scale
    rss = final.loss * n * scale**2
    st = statistics(factor, result.params, rss, features=list(features))
    y_mean = final.y_sum / n
    # regression_metrics' R² is always against the centered total sum of squares
    centered_tss = factor.tss if factor.fit_intercept else factor.tss - n * y_mean**2
    metrics: dict[str, Any] = {
        "train": {
            "n_samples": n,
            "mse": rss / n,
            "rmse": float(np.sqrt(rss / n)),
            "mae": final.abs_sum * scale / n,
            "r2": float(1.0 - rss / centered_tss) if centered_tss > 0 else float("nan"),
        },
        "heldout": None,
    }
    if not result.converged:
        from training.solver.estimator import ConvergenceWarning

        warnings.warn(
            ConvergenceWarning(
                f"SGD did not converge in {result.epochs} epochs: the largest gradient "
                f"component is {result.grad_max:.3g} > tol={opts['tol']:g}"
            ),
            stacklevel=3,
        )
    seconds = time.perf_counter() - started
    # built when first used (to export): the summary needs only the report
    est = functools.partial(
        fitted_estimator, result, factor, seconds=seconds, **{k: opts[k] for k in _EST_PARAMS}
    )
    report = FitReport(
        lr=opts["lr"],
        lr_used=float(result.lr),
        epochs=int(result.epochs),
        refinement_steps=0,
        converged=bool(result.converged),
        tol=float(opts["tol"]),
        seconds=seconds,
    )
    data = {
        "source": source_name,
        "n_train": n,
        "n_heldout": 0,
        "test_size": 0.0,
        "n_rows": n,
        "engine": engine,
        "sample_rows": int(len(y_sample)),
        "passes": [
            {"pass": name, "rows": rows, "seconds": round(sec, 6)} for name, rows, sec in log.passes
        ],
    }
    return TrainingRun(
        est, list(features), target, X_sample, y_sample, st, metrics, preset, data, report
    )


def rows_per_second(run: TrainingRun) -> str:
    """The final line: rows read, passes and the rate."""
    passes = run.data.get("passes", [])
    rows = sum(p["rows"] for p in passes)
    seconds = sum(p["seconds"] for p in passes)
    rate = rows / seconds if seconds > 0 else float("inf")
    return (
        f"{run.data.get('n_rows', 0):,} rows, {len(passes)} passes ({rows:,} rows read) in "
        f"{seconds:.2f} s: {rate:,.0f} rows/s"
    )
