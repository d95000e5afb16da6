"""Presets and defaults of every fit, in one torch-free module.

The command line and the chunked engines read them without importing torch;
:class:`~training.solver.estimator.LinearRegressionSGD` states the same defaults in
its signature, as scikit-learn estimators must (a test keeps the two equal).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CHUNKED_THRESHOLD_BYTES",
    "FIT_DEFAULTS",
    "PRESETS",
    "STREAMING_THRESHOLD_BYTES",
    "preset_options",
]

#: the estimator's parameters and their defaults
FIT_DEFAULTS: dict[str, Any] = {
    "lr": None,
    "max_epochs": 10_000,
    "tol": 1e-6,
    "early_stop": True,
    "batch_size": None,
    "momentum": 0.0,
    "standardize": True,
    "orthogonalize": True,
    "fit_intercept": True,
    "seed": 0,
    "dtype": "float64",
    "progress": None,
}

#: named sets of options: "default" (no tuning, exact) and "tutorial" (the recipe of the
#: tutorial the project starts from: lr 0.002, 6000 full-batch epochs on raw features)
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tutorial": {
        "lr": 0.002,
        "max_epochs": 6000,
        "standardize": False,
        "early_stop": False,
        "batch_size": None,
        "momentum": 0.0,
        # torch's default dtype, as in the tutorial: float64 would draw other initial weights
        "dtype": "float32",
    },
}

#: ``linreg train --engine auto`` fits a file of at least this many bytes in chunks:
#: about 400,000 rows of 16 features as CSV text. The chunked fit reads the file once
#: and holds its float64 values (about the CSV text's size) but never builds the
#: table, and the summary needs no scikit-learn. The fit is the in-memory one's to
#: rounding, without its extended-precision refinement (a pass each step).
CHUNKED_THRESHOLD_BYTES = 64 << 20
#: ... and streams a file of at least this many bytes: read again on each of the
#: three passes, memory bounded by the chunk size, not the file
STREAMING_THRESHOLD_BYTES = 1 << 30


def preset_options(preset: str, **overrides: Any) -> dict[str, Any]:
    """Every fit option: the defaults, then the preset's, then ``overrides``.

    Raises ``ValueError`` for an unknown preset or option name.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    unknown = sorted(set(overrides) - set(FIT_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown}; expected some of {sorted(FIT_DEFAULTS)}")
    return {**FIT_DEFAULTS, **PRESETS[preset], **overrides}
