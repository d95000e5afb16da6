"""NIST's Statistical Reference Datasets for linear regression, and how close a fit gets.

The 11 problems (Norris, Pontius, NoInt1, NoInt2, Filip, Longley, Wampler1-5)
ship as package data (``training/data/bundled/nist_strd.json``, the NIST .dat files'
data and certified values, 15 significant digits). Accuracy is graded as NIST and
the literature do, by the log relative error

    LRE = -log10(|estimate - certified| / |certified|)

(the absolute error where the certified value is 0), capped at 15: the number of
correct significant digits. Polynomial models get the columns x, x², …, x^d,
computed in float64 as a user would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

__all__ = ["NIST_NAMES", "NistProblem", "load_nist", "lre", "nist_lre"]

NIST_NAMES = (
    "Norris",
    "Pontius",
    "NoInt1",
    "NoInt2",
    "Filip",
    "Longley",
    "Wampler1",
    "Wampler2",
    "Wampler3",
    "Wampler4",
    "Wampler5",
)


@dataclass(frozen=True)
class NistProblem:
    """One problem: ``X`` (n, k) float64, ``y`` (n,), and the certified values.

    ``certified`` holds ``params`` (intercept first when there is one), ``param_sd``,
    ``residual_sd`` and ``r_squared`` (uncentered without an intercept).
    """

    name: str
    model: str
    X: np.ndarray
    y: np.ndarray
    fit_intercept: bool
    certified: dict[str, Any]


def load_nist(name: str) -> NistProblem:
    """The NIST problem ``name`` (one of :data:`NIST_NAMES`)."""
    if name not in NIST_NAMES:
        raise ValueError(f"unknown NIST problem {name!r}; expected one of {list(NIST_NAMES)}")
    text = resources.files("training.data").joinpath("bundled", "nist_strd.json").read_text("utf-8")
    spec = json.loads(text)[name]
    x = np.asarray(spec["x"], dtype=np.float64).reshape(len(spec["y"]), -1)
    if spec["degree"]:
        x = np.column_stack([x[:, 0] ** d for d in range(1, spec["degree"] + 1)])
    return NistProblem(
        name,
        spec["model"],
        x,
        np.asarray(spec["y"], dtype=np.float64),
        bool(spec["intercept"]),
        spec["certified"],
    )


def lre(estimate: Any, certified: Any) -> np.ndarray:
    """Log relative error per element, capped at 15 (absolute error where certified is 0)."""
    est = np.asarray(estimate, dtype=np.float64)
    cert = np.asarray(certified, dtype=np.float64)
    err = np.abs(est - cert) / np.where(cert == 0, 1.0, np.abs(cert))
    with np.errstate(divide="ignore"):
        out = -np.log10(err)
    return np.where(np.isfinite(est), np.minimum(out, 15.0), 0.0)


#: ``fit(X, y, fit_intercept) -> (params, param_sd, residual_sd, r_squared)``.
Fitter = Callable[[np.ndarray, np.ndarray, bool], tuple[Any, Any, float, float]]


def nist_lre(problem: NistProblem, fit: Fitter) -> dict[str, float]:
    """Worst LRE of each certified quantity for the estimates ``fit`` returns."""
    params, sd, rsd, r2 = fit(problem.X, problem.y, problem.fit_intercept)
    c = problem.certified
    return {
        "params": float(lre(params, c["params"]).min()),
        "param_sd": float(lre(sd, c["param_sd"]).min()),
        "residual_sd": float(lre(rsd, c["residual_sd"])),
        "r_squared": float(lre(r2, c["r_squared"])),
    }
