"""Collinearity diagnostics that do not depend on the columns' units.

Two figures, both from a triangular factor ``R_Z`` of the design ``Z = [1, X]``
(``Z = X`` without an intercept; ``R_Zᵀ R_Z = ZᵀZ``, so no pass over the rows):

- the **scaled condition number** of Belsley, Kuh and Welsch (*Regression
  Diagnostics*, 1980, ch. 3): every column of ``Z``, the intercept's included, is
  scaled to unit length, then ``κ₂`` is taken. Scaling makes it independent of the
  units (statsmodels' ``condition_number`` of the raw design is not: a column in
  metres and another in millimetres give 1e3 with no collinearity at all), while
  the intercept stays in, uncentred, as BKW prescribe: a feature that varies little
  around a mean far from zero (a latitude of 42.6 ± 1.5) is nearly a multiple of
  the intercept's column, which makes the intercept an extrapolation. Above
  :data:`CONDITION_THRESHOLD` (30, BKW's "moderate to strong" dependencies) a
  :class:`~training.errors.CollinearityWarning` names the coefficients involved:
  those whose variance-decomposition proportion on a condition index above 30
  exceeds :data:`PROPORTION_THRESHOLD` (0.5, BKW's rule);
- the **variance inflation factor** of each feature's coefficient, ``1 / (1 - R²_j)``
  with ``R²_j`` of the regression of feature ``j`` on the others (and the
  intercept, when the model has one), as statsmodels' ``variance_inflation_factor``
  computes it on the same design. With an intercept the lower-right block ``B`` of
  ``R_Z`` is a factor of the centred features, so ``VIF_j = (BᵀB)_jj ((BᵀB)⁻¹)_jj``,
  a column norm of ``B`` times a row norm of ``B⁻¹``; without one ``B = R_Z`` (the
  uncentred R², as statsmodels' OLS uses without a constant). Above
  :data:`VIF_THRESHOLD` (10, the usual rule: Marquardt 1970; Kutner et al.,
  *Applied Linear Statistical Models*) the warning names the features.

With sample weights the design is ``√W Z`` and these are the weighted analogues.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_triangular

__all__ = [
    "CONDITION_THRESHOLD",
    "PROPORTION_THRESHOLD",
    "VIF_THRESHOLD",
    "Collinearity",
    "collinearity",
]

#: BKW: a scaled condition index above 30 marks a moderate to strong near-dependency
CONDITION_THRESHOLD = 30.0
#: BKW: a coefficient is involved in a near-dependency when more than half of its
#: variance goes with that condition index
PROPORTION_THRESHOLD = 0.5
#: the usual rule of thumb for a variance inflation factor
VIF_THRESHOLD = 10.0


@dataclass(frozen=True)
class Collinearity:
    """The diagnostics of one design.

    condition_number : float
        statsmodels' ``condition_number``, κ₂ of the unscaled design (information:
        it depends on the columns' units).
    scaled_condition_number : float
        κ₂ of the design with unit-length columns (Belsley–Kuh–Welsch).
    vif : ndarray of shape (n_features,), float64
        Variance inflation factor of each feature's coefficient.
    involved : list of int
        Indices into the design's columns (intercept first when there is one) of the
        coefficients involved in a near-dependency with a condition index above
        :data:`CONDITION_THRESHOLD`; empty below it.
    """

    condition_number: float
    scaled_condition_number: float
    vif: np.ndarray
    involved: list[int]

    def notes(self, names: Sequence[str], *, fit_intercept: bool) -> list[str]:
        """What is worth a warning, in words (empty when nothing is). ``names`` are the
        design's column names, ``["intercept", *features]`` with an intercept."""
        notes = []
        if self.scaled_condition_number > CONDITION_THRESHOLD:
            who = [names[j] for j in self.involved]
            what = f" between {_join(who)}" if len(who) > 1 else ""
            text = (
                f"The scaled condition number is large, {self.scaled_condition_number:.3g} "
                f"(Belsley-Kuh-Welsch, columns scaled to unit length; above "
                f"{CONDITION_THRESHOLD:g}): a near-linear dependency{what}."
            )
            if fit_intercept and 0 in self.involved:
                text += (
                    " It involves the intercept: a feature that varies little around a mean"
                    " far from zero makes the intercept an extrapolation (centring that"
                    " feature removes it; the slopes are not affected)."
                )
            notes.append(text)
        features = names[1:] if fit_intercept else names
        high = [(f, v) for f, v in zip(features, self.vif, strict=True) if v > VIF_THRESHOLD]
        if high:
            shown = ", ".join(f"{f} {v:.3g}" for f, v in high)
            notes.append(
                f"Variance inflation factor above {VIF_THRESHOLD:g}: {shown}. These "
                "coefficients' variances are inflated by collinearity among the features."
            )
        return notes


def _join(names: Sequence[str]) -> str:
    shown = [repr(n) if n != "intercept" else "the intercept" for n in names]
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def collinearity(r_hat: np.ndarray, scale: np.ndarray, *, fit_intercept: bool) -> Collinearity:
    """The diagnostics of the design whose triangular factor is ``r_hat · diag(scale)``.

    r_hat : ndarray of shape (p, p), float64
        Upper-triangular factor of the design with its columns divided by ``scale``
        (:class:`~training.solver.lstsq.LeastSquares` and
        :class:`~training.chunked.tsqr.Factor` keep one).
    scale : ndarray of shape (p,), float64
        The column scales, intercept first.
    """
    r_hat = np.triu(np.asarray(r_hat, dtype=np.float64))
    raw = r_hat * np.asarray(scale, dtype=np.float64)
    sv_raw = np.linalg.svd(raw, compute_uv=False)
    unit = r_hat / np.linalg.norm(r_hat, axis=0)
    _, sv, vt = np.linalg.svd(unit)
    block = r_hat[1:, 1:] if fit_intercept else r_hat
    return Collinearity(
        condition_number=_ratio(sv_raw),
        scaled_condition_number=_ratio(sv),
        vif=_vif(block),
        involved=_involved(sv, vt),
    )


def _ratio(sv: np.ndarray) -> float:
    return float(sv[0] / sv[-1]) if sv[-1] > 0 else float("inf")


def _vif(block: np.ndarray) -> np.ndarray:
    """``diag(BᵀB) · diag((BᵀB)⁻¹)`` for the triangular ``B`` (k, k): column norms of
    ``B`` times row norms of ``B⁻¹``, squared."""
    k = block.shape[0]
    if k == 0:
        return np.empty(0)
    inverse = solve_triangular(block, np.eye(k))
    return np.asarray(np.sum(block**2, axis=0) * np.sum(inverse**2, axis=1), dtype=np.float64)


def _involved(sv: np.ndarray, vt: np.ndarray) -> list[int]:
    """Columns whose variance-decomposition proportion exceeds 0.5 on a condition
    index above the threshold (BKW): ``φ_jk = v_jk² / s_k²``, ``π_kj = φ_jk / Σ_k φ_jk``."""
    if sv[-1] <= 0:
        return list(range(vt.shape[1]))
    phi = (vt.T / sv) ** 2  # (p columns, p singular values)
    proportions = phi / phi.sum(axis=1, keepdims=True)
    high = sv[0] / sv > CONDITION_THRESHOLD
    return [int(j) for j in np.flatnonzero((proportions[:, high] > PROPORTION_THRESHOLD).any(1))]
