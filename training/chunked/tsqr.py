"""Tall-skinny QR: the preconditioner and the statistics' building blocks from chunks.

A chunk of rows ``[X, y]`` (m × (k + 1)) is summarized by its row count, its column
means, the column minima and maxima of ``X`` and the triangular factor ``R`` of the
chunk *centered on its own means* (uncentered without an intercept). Two summaries
combine exactly (Chan's update of the centered cross-products, done on factors):

    R = qr([R_a; R_b; √(n_a n_b / n) (m_b - m_a)]).R,   m = m_a + (m_b - m_a) n_b / n

so the summary of a whole file, or of all the partitions of a Dask frame, is the
summary of the whole data whatever the order and the grouping of the chunks, and
``XᵀX`` is never formed (it would square the condition number). From it,
:class:`Factor` gives what :mod:`training.solver.estimator` computes from the data in memory:

- the power-of-two column scales and means of the scaled design, and the map
  ``W = √n R_s⁻¹`` to the orthogonalized features ``U = (X / d - m) W``
  (``UᵀU / n = I``, ``Uᵀ1 = 0``: the MSE loss on ``U`` has Hessian ``2 I``);
- the least-squares optimum, the total and residual sums of squares, the condition
  number ``κ₂(Z)`` and ``(ZᵀZ)⁻¹``, all from the triangular factor of ``Z = [1, X]``;
- :func:`statistics`, the :class:`~training.stats.RegressionStatistics` at given
  parameters from those blocks and a residual sum of squares measured on the data.

The factor of ``[X, y]`` carries ``y`` as its last column: its last column above the
diagonal is ``Qᵀy`` and its corner is the least-squares residual norm.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from training.errors import DataError

if TYPE_CHECKING:  # training.stats imports scipy.stats, which takes seconds to import
    from training.stats import RegressionStatistics

__all__ = ["ChunkSummary", "Factor", "combine", "combine_all", "statistics", "summarize"]

_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class ChunkSummary:
    """What the rows of a chunk (or of many, combined) contribute.

    n : rows; mean : (k + 1,) means of ``[X, y]`` (zeros without an intercept);
    R : (k + 1, k + 1) upper triangular factor of the centered (or raw) ``[X, y]``;
    lo, hi : (k,) column minima and maxima of ``X``.
    """

    n: int
    mean: np.ndarray
    R: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    fit_intercept: bool = True

    @property
    def nbytes(self) -> int:
        """Bytes of its arrays: what a chunk ships, whatever its row count."""
        return int(self.mean.nbytes + self.R.nbytes + self.lo.nbytes + self.hi.nbytes)


def _triangle(stacked: np.ndarray, width: int) -> np.ndarray:
    """The (width, width) R factor of ``stacked`` (padded with zero rows when short);
    ``stacked`` is scratch: it may be overwritten.

    A tall block goes to LAPACK's ``dgeqrt``: the same Householder reflections as
    ``numpy.linalg.qr`` (``dgeqrf``), applied in blocks with matrix-matrix products.
    ``dgeqrf`` falls back to its unblocked form for fewer than 32 columns, and takes
    about five times as long on a chunk of 8,192 rows × 17 (it was most of the
    factor pass's time).
    """
    m, n = stacked.shape
    if m >= n > 0:
        from scipy.linalg.lapack import dgeqrt

        a, _, info = dgeqrt(min(n, 32), np.asfortranarray(stacked, dtype=np.float64), 1)
        if info != 0:  # pragma: no cover - only for invalid arguments
            raise RuntimeError(f"LAPACK dgeqrt failed (info {info})")
        r = np.triu(a[:n])
    else:
        r = np.linalg.qr(stacked, mode="r")
    out = np.zeros((width, width))
    out[: r.shape[0]] = r[:width]
    return out


def summarize(X: np.ndarray, y: np.ndarray, *, fit_intercept: bool = True) -> ChunkSummary:
    """The summary of one chunk: X (m, k) and y (m,), float64."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m, k = X.shape
    data = np.empty((m, k + 1), order="F")  # the layout LAPACK takes without a copy
    data[:, :k] = X
    data[:, k] = y
    if m == 0:
        return ChunkSummary(
            0, np.zeros(k + 1), np.zeros((k + 1, k + 1)), np.full(k, np.inf),
            np.full(k, -np.inf), fit_intercept,
        )  # fmt: skip
    mean = data.mean(axis=0) if fit_intercept else np.zeros(k + 1)
    if fit_intercept:
        data -= mean
    return ChunkSummary(
        m, mean, _triangle(data, k + 1), X.min(axis=0), X.max(axis=0), fit_intercept
    )


def combine(a: ChunkSummary, b: ChunkSummary) -> ChunkSummary:
    """The summary of the rows of ``a`` and ``b`` together (module docstring)."""
    if a.n == 0:
        return b
    if b.n == 0:
        return a
    n = a.n + b.n
    width = a.R.shape[0]
    rows = [a.R, b.R]
    mean = a.mean
    if a.fit_intercept:
        delta = b.mean - a.mean
        mean = a.mean + delta * (b.n / n)
        rows.append(np.sqrt(a.n * b.n / n) * delta.reshape(1, -1))
    return ChunkSummary(
        n,
        mean,
        _triangle(np.vstack(rows), width),
        np.minimum(a.lo, b.lo),
        np.maximum(a.hi, b.hi),
        a.fit_intercept,
    )


def combine_all(summaries: Iterable[ChunkSummary]) -> ChunkSummary:
    """All summaries combined pairwise, as a balanced tree (order does not matter)."""
    items = list(summaries)
    if not items:
        raise DataError("no rows: nothing to fit")
    while len(items) > 1:
        items = [
            combine(items[i], items[i + 1]) if i + 1 < len(items) else items[i]
            for i in range(0, len(items), 2)
        ]
    return items[0]


def _pow2(values: np.ndarray) -> np.ndarray:
    values = np.where(values > 0, values, 1.0)
    return 2.0 ** np.round(np.log2(values))


class Factor:
    """The preconditioner and the statistics' blocks of a whole data set's summary.

    Raises :class:`~training.data.DataError`, worded as the in-memory fit's, for a
    constant feature beside the intercept or exactly collinear features.
    """

    def __init__(self, summary: ChunkSummary, feature_names: Sequence[str] | None = None) -> None:
        s = summary
        self.summary = s
        self.n = s.n
        self.k = s.R.shape[0] - 1
        self.fit_intercept = s.fit_intercept
        self.p = self.k + 1 if s.fit_intercept else self.k
        self.names = list(feature_names) if feature_names is not None else None
        k = self.k
        R_raw = s.R[:k, :k]
        mean_raw = s.mean[:k]
        # column norms of raw X: centered sum of squares plus n m²
        norms = np.sqrt(np.sum(R_raw**2, axis=0) + s.n * mean_raw**2)
        self.feature_scale = _pow2(norms)
        self.intercept_scale = float(_pow2(np.array([np.sqrt(s.n)]))[0]) if s.fit_intercept else 1.0
        self.mean = mean_raw / self.feature_scale  # means of the scaled features
        self.R = R_raw / self.feature_scale  # exact: powers of two
        self.y_mean = float(s.mean[k])
        self.qty = s.R[:k, k]  # Qᵀ y of the centered (scaled) design
        self.rss_optimum = float(s.R[k, k] ** 2)
        self.tss = float(np.sum(s.R[:, k] ** 2))  # centered with an intercept, Σy² without
        self._check_rank()
        self.W = np.sqrt(s.n) * np.linalg.inv(np.triu(self.R))

    def _label(self, j: int) -> str:
        return repr(self.names[j]) if self.names else f"{j + 1}"

    def _check_rank(self) -> None:
        s = self.summary
        if self.fit_intercept:
            constant = np.flatnonzero(s.hi - s.lo == 0)
            if constant.size:
                raise DataError(
                    f"fit: feature column {self._label(int(constant[0]))} is constant; "
                    "it cannot be separated from the intercept"
                )
        sv = np.linalg.svd(self.R, compute_uv=False)
        if sv[-1] > sv[0] * max(self.n, self.k) * _EPS:
            return
        vt = np.linalg.svd(self.R)[2]
        null = vt[-1] / self.feature_scale
        involved = np.flatnonzero(np.abs(vt[-1]) > 1e-8 * np.abs(vt[-1]).max())
        labels = ", ".join(self._label(int(j)) for j in involved)
        with_icpt = " and the intercept" if self.fit_intercept else ""
        raise DataError(
            f"fit: the features are exactly collinear: columns {labels}{with_icpt} are "
            f"linearly dependent (a combination with coefficients "
            f"{np.array2string(null[involved], precision=4)} is zero); drop one of them"
        )

    # --- the target's standardization, as the in-memory fit does it -------------------

    @property
    def y_shift(self) -> float:
        return self.y_mean if self.fit_intercept else 0.0

    @property
    def y_scale(self) -> float:
        """``y.std()`` with an intercept, ``sqrt(mean(y²))`` without (1 when zero)."""
        return float(np.sqrt(self.tss / self.n)) or 1.0

    # --- orthogonalized features ---------------------------------------------------------

    def centered(self, X: np.ndarray) -> np.ndarray:
        """``X / d - m`` (rows, k): raw rows scaled and (with an intercept) centered."""
        Xs = np.asarray(X, dtype=np.float64) / self.feature_scale
        if self.fit_intercept:
            Xs -= self.mean
        return Xs

    def orthogonal(self, X: np.ndarray) -> np.ndarray:
        """``U = (X / d - m) W`` (rows, k) for raw rows ``X`` (rows, k), float64."""
        return self.centered(X) @ self.W

    def to_params(self, theta: np.ndarray, bias: float) -> np.ndarray:
        """``[intercept, *coef]`` on raw features and target for the predictor
        ``y_shift + y_scale (U θ + bias)``."""
        v = self.W @ np.asarray(theta, dtype=np.float64) * self.y_scale
        intercept = self.y_shift + self.y_scale * bias - float(self.mean @ v)
        return np.concatenate([[intercept if self.fit_intercept else 0.0], v / self.feature_scale])

    # --- the statistics' blocks ------------------------------------------------------------

    @property
    def scale(self) -> np.ndarray:
        """(p,) the design's column scales, intercept first."""
        if self.fit_intercept:
            return np.concatenate([[self.intercept_scale], self.feature_scale])
        return self.feature_scale

    @property
    def R_hat(self) -> np.ndarray:
        """(p, p) triangular factor of the scaled design ``A = [1, X] D⁻¹``."""
        if not self.fit_intercept:
            return np.triu(self.R)
        p = self.p
        out = np.zeros((p, p))
        out[0, 0] = np.sqrt(self.n) / self.intercept_scale
        out[0, 1:] = np.sqrt(self.n) * self.mean
        out[1:, 1:] = np.triu(self.R)
        return out

    def optimum(self) -> np.ndarray:
        """The least-squares parameters ``[intercept, *coef]`` (``coef`` without one)."""
        v = np.linalg.solve(np.triu(self.R), self.qty)
        coef = v / self.feature_scale
        if not self.fit_intercept:
            return coef
        return np.concatenate([[self.y_mean - float(self.mean @ v)], coef])

    def inverse_gram(self) -> np.ndarray:
        """``(ZᵀZ)⁻¹`` (p, p) from the triangular factor, never by inverting ``ZᵀZ``."""
        inv_r = np.linalg.inv(self.R_hat)
        inv_a = inv_r @ inv_r.T
        d = self.scale
        return inv_a / np.outer(d, d)

    def condition_number(self) -> float:
        """``κ₂(Z)``, statsmodels' condition number."""
        sv = np.linalg.svd(self.R_hat * self.scale, compute_uv=False)
        return float(sv[0] / sv[-1]) if sv[-1] > 0 else float("inf")


def statistics(
    factor: Factor,
    params: np.ndarray,
    rss: float,
    *,
    features: Sequence[str],
    level: float = 0.95,
) -> RegressionStatistics:
    """:class:`~training.stats.RegressionStatistics` at ``params`` (``[intercept, *coef]``),
    with ``rss`` the residual sum of squares measured at them; everything else comes
    from the factor. Definitions as :func:`training.stats.regression_statistics`."""
    from training.stats import statistics_from_parts

    n, p = factor.n, factor.p
    if n - p < 1:
        raise DataError(f"{n} rows leave no residual degrees of freedom for {p} parameters")
    params = np.asarray(params, dtype=np.float64)
    return statistics_from_parts(
        names=(["intercept"] if factor.fit_intercept else []) + list(features),
        params=params if factor.fit_intercept else params[1:],
        rss=float(rss),
        tss=factor.tss,
        n_samples=n,
        n_eff=float(n),
        inverse_gram=factor.inverse_gram(),
        r_hat=factor.R_hat,
        column_scale=factor.scale,
        optimum=factor.optimum(),
        optimum_rss=factor.rss_optimum,
        fit_intercept=factor.fit_intercept,
        level=level,
    )
