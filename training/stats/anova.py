"""The per-term ANOVA of a fitted model: one Type II F test per term, so a factor of ten
levels gets one test, as statsmodels' ``anova_lm(model, typ=2)`` computes it.

For a term ``A`` with columns ``L1`` (rows of the identity picking its coefficients)
and the higher-order terms containing it with columns ``L2``, the hypothesis is
``A = 0`` in the part of ``L1`` that ``L2`` does not already test: ``L12 = Qᵀ L1``,
``Q`` the last ``r = rank(L1) - rank(L2)`` columns of the QR factor of
``L1 V L2ᵀ`` (``V`` the parameters' covariance). The Wald statistic
``F = (L12 θ)ᵀ (L12 V L12ᵀ)⁻¹ (L12 θ) / r`` has ``r`` and ``df_resid`` degrees of
freedom; the term's sum of squares is backed out as ``F · r · RSS / df_resid``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg, special

from training.stats.regression import RegressionStatistics

__all__ = ["AnovaRow", "anova_table", "anova_type2"]


@dataclass(frozen=True)
class AnovaRow:
    """One row of the table: a term (or ``Residual``)."""

    term: str
    sum_sq: float
    df: int
    f: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "term": self.term,
            "sum_sq": self.sum_sq,
            "df": self.df,
            "F": self.f,
            "p_value": self.p_value,
        }


def _contains(outer: Sequence[str], inner: Sequence[str]) -> bool:
    return set(inner) < set(outer)


def anova_type2(st: RegressionStatistics, terms: Sequence[dict[str, Any]]) -> list[AnovaRow]:
    """Type II tests of each term of ``terms`` (``{"name", "columns", "factors"}``,
    ``columns`` indexing the design columns, without the intercept), then the residual.

    Uses the statistics' covariance, which :mod:`training.solver.lstsq` computes from
    the QR factor with refinement (never by inverting ``ZᵀZ``).
    """
    offset = 1 if st.fit_intercept else 0
    p = len(st.params)
    eye = np.eye(p)
    V = np.asarray(st.covariance, dtype=np.float64)[-p:, -p:]
    theta = np.asarray(st.params, dtype=np.float64)
    scale = st.rss / st.df_resid
    rows = []
    for term in terms:
        factors = term.get("factors", [term["name"]])
        idx1 = [c + offset for c in term["columns"]]
        idx2 = [
            c + offset
            for other in terms
            if _contains(other.get("factors", [other["name"]]), factors)
            for c in other["columns"]
        ]
        L1 = eye[idx1 + idx2]
        if idx2:
            L2 = eye[idx2]
            q, _ = linalg.qr(L1 @ V @ L2.T)
            r = L1.shape[0] - L2.shape[0]
            L12 = q[:, -r:].T @ L1
        else:
            L12, r = L1, L1.shape[0]
        diff = L12 @ theta
        f = float(diff @ np.linalg.solve(L12 @ V @ L12.T, diff) / r)
        rows.append(
            AnovaRow(
                str(term["name"]),
                f * r * scale,
                int(r),
                f,
                float(special.fdtrc(r, st.df_resid, f)),
            )
        )
    rows.append(AnovaRow("Residual", st.rss, int(st.df_resid), float("nan"), float("nan")))
    return rows


def anova_table(rows: Sequence[AnovaRow]) -> str:
    """The rows as text, in the layout of statsmodels' ``anova_lm``."""
    width = max([len("Residual"), *(len(r.term) for r in rows)])
    lines = [f"{'':<{width}}  {'sum_sq':>14} {'df':>6} {'F':>11} {'PR(>F)':>11}"]
    for row in rows:
        f = "" if np.isnan(row.f) else f"{row.f:11.4f}"
        pv = "" if np.isnan(row.p_value) else f"{row.p_value:11.4g}"
        lines.append(f"{row.term:<{width}}  {row.sum_sq:14.6g} {row.df:6d} {f:>11} {pv:>11}")
    return "\n".join(lines)
