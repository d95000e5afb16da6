"""Least squares done accurately: a QR preconditioner and iterative refinement.

The design is ``Z = [1, X]`` (or ``Z = X`` without an intercept), of shape
(n, p). Everything here works on ``A = Z D⁻¹``, the columns scaled by powers of
two near their norms, so the scaling is exact in floating point and ``A`` is the
same problem as ``Z``.

**The preconditioner.** The feature columns of ``A`` are centered (when there is
an intercept) and factored, ``A_c = Q R`` (thin QR, ``Q`` of shape (n, k)). The
orthogonalized features ``U = √n Q`` have ``UᵀU / n = I`` and are orthogonal to
the column of ones, so the MSE loss of ``U θ + b`` has Hessian ``2 I``: gradient
descent with ``lr = 1/2`` reaches the optimum in one step, whatever the
collinearity of ``X``. The centering folds into a QR factor of the whole scaled
design, ``A = Q̂ R̂`` with ``Q̂ = [1/√n, Q]`` and
``R̂ = [[√n / d₀, √n m], [0, R]]`` (``m`` the column means), without ever forming
``XᵀX`` (which would square the condition number).

**Refinement.** Float64 rounding in the factorization limits a QR solution to
about ``κ ε`` relative error (and ``κ² ε`` for large residuals). Björck's
iterative refinement of the augmented system

    [ I   A ] [r]   [b]
    [ Aᵀ  0 ] [x] = [c]

recovers the lost digits: its residuals ``f = b - r - A x`` and ``g = c - Aᵀ r``
are computed in ``numpy.longdouble`` (80-bit on x86-64 Linux; where it is plain
float64, as on Windows and Apple silicon, refinement cannot gain digits), and a
correction is solved with the same factor. With ``b = y, c = 0`` it gives the
least-squares parameters and residuals; with ``b = 0, c = e_j`` it gives
``x = -(AᵀA)⁻¹ e_j``, so the covariance comes from the triangular factor and
refinement too, never from inverting ``ZᵀZ``. The refinement of the covariance
solves p systems over all n rows in extended precision, so it runs only where it
gains digits: when ``κ(R̂)`` exceeds :data:`REFINE_COVARIANCE_ABOVE`; below that
``R̂⁻¹ R̂⁻ᵀ`` is already accurate to about ``κ ε`` (2e-12).

**Weights.** With ``sample_weight`` ``w`` the problem is weighted least squares:
every row of ``Z`` and of the target is multiplied by ``√w``, so the intercept
column becomes ``√w``. The features are centered by the *weighted* mean ``m``,
which keeps ``√w (X - m)`` orthogonal to ``√w``; then ``Q̂ = [√w / ‖√w‖, Q]`` and
``R̂ = [[‖√w‖ / d₀, ‖√w‖ m], [0, R]]`` (``‖√w‖ = √n`` without weights), and
everything else is the same algorithm on the weighted design. Without weights
the code takes exactly the unweighted path.

The SGD trainer (:mod:`training.solver.estimator`) runs ``torch.optim.SGD`` on ``U`` and
takes its refinement steps through :meth:`LeastSquares.refinement_target` and
:meth:`LeastSquares.from_orthogonal`; :meth:`LeastSquares.solve` is the same
algorithm in plain numpy, the reference the statistics report against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_triangular

from training.errors import DataError

__all__ = [
    "CONDITION_WARNING_THRESHOLD",
    "REFINE_COVARIANCE_ABOVE",
    "EXTENDED",
    "LeastSquares",
    "RefinementState",
]

#: statsmodels' threshold for its "The condition number is large" note.
CONDITION_WARNING_THRESHOLD = 1000.0
#: Above this condition number of the scaled design the covariance is refined.
REFINE_COVARIANCE_ABOVE = 1e4
#: The higher precision that residuals are computed in.
EXTENDED = np.longdouble
_EPS = float(np.finfo(np.float64).eps)
#: Rows per block when computing residuals in extended precision (bounds memory).
_BLOCK_ROWS = 65_536

#: ``project(target (n,)) -> (θ (k,), bias, fitted (n,))``: a least-squares fit in ``[U, 1]``.
Projection = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass
class RefinementState:
    """The augmented system's unknowns, in extended precision.

    x : (p,) or (p, m) parameters of the scaled design ``A``; r : (n,) or (n, m) residuals.
    """

    x: np.ndarray
    r: np.ndarray


class LeastSquares:
    """The scaled design of ``X`` and its QR factors, checked for full rank.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    fit_intercept : bool
        Whether the design has a column of ones (first).
    feature_names : sequence of str, optional
        Used in the error naming exactly collinear columns.
    sample_weight : ndarray of shape (n_samples,), optional
        Non-negative row weights: weighted least squares (module docstring).

    Raises :class:`~training.data.DataError` when the design is rank-deficient
    (exactly collinear columns, or a constant column beside the intercept), naming
    the columns involved.
    """

    def __init__(
        self,
        X: np.ndarray,
        *,
        fit_intercept: bool = True,
        feature_names: Sequence[str] | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> None:
        X = np.asarray(X, dtype=np.float64)
        n, k = X.shape
        #: (n,) ``√w``, or None without weights
        self.root_weight = (
            None if sample_weight is None else np.sqrt(np.asarray(sample_weight, dtype=np.float64))
        )
        self.n, self.k = n, k
        self.fit_intercept = fit_intercept
        self.p = k + 1 if fit_intercept else k
        self.names = list(feature_names) if feature_names is not None else None
        self.X = X
        norms = np.linalg.norm(X, axis=0)
        norms[norms == 0] = 1.0
        # powers of two: dividing by them is exact, so A is the same problem as Z
        self.feature_scale = 2.0 ** np.round(np.log2(norms))
        self.intercept_scale = 2.0 ** np.round(np.log2(np.sqrt(n))) if fit_intercept else 1.0
        Xs = X / self.feature_scale
        sw = self.root_weight
        if sw is None:
            self.mean = Xs.mean(axis=0) if fit_intercept else np.zeros(k)
            self.Q, self.R = np.linalg.qr(Xs - self.mean if fit_intercept else Xs)
            #: ``‖√w‖``: the norm of the (unscaled) intercept column
            self.intercept_norm = np.sqrt(n)
        else:
            w = sw * sw
            self.mean = w @ Xs / w.sum() if fit_intercept else np.zeros(k)
            self.Q, self.R = np.linalg.qr(sw[:, None] * (Xs - self.mean))
            self.intercept_norm = float(np.sqrt(w.sum()))
        self._check_rank(Xs)
        R_hat = np.zeros((self.p, self.p))
        if fit_intercept:
            R_hat[0, 0] = self.intercept_norm / self.intercept_scale
            R_hat[0, 1:] = self.intercept_norm * self.mean
            R_hat[1:, 1:] = self.R
        else:
            R_hat[:] = self.R
        self.R_hat = R_hat

    # --- shape of the problem ----------------------------------------------------------

    @property
    def scale(self) -> np.ndarray:
        """(p,) the column scale ``D`` of the whole design, intercept first."""
        if self.fit_intercept:
            return np.concatenate([[self.intercept_scale], self.feature_scale])
        return self.feature_scale

    def _column_label(self, j: int) -> str:
        return repr(self.names[j]) if self.names else f"{j + 1}"

    def _check_rank(self, Xs: np.ndarray) -> None:
        """Refuse a design whose columns are exactly dependent, naming them."""
        if self.fit_intercept:
            constant = np.flatnonzero(np.ptp(self.X, axis=0) == 0)
            if constant.size:
                raise DataError(
                    f"fit: feature column {self._column_label(int(constant[0]))} is constant; "
                    "it cannot be separated from the intercept"
                )
        sv = np.linalg.svd(self.R, compute_uv=False)
        tol = sv[0] * max(self.n, self.k) * _EPS
        if sv[-1] > tol:
            return
        # the right singular vector of the smallest singular value is the dependency
        vt = np.linalg.svd(self.R)[2]
        null = vt[-1] / self.feature_scale
        involved = np.flatnonzero(np.abs(vt[-1]) > 1e-8 * np.abs(vt[-1]).max())
        labels = ", ".join(self._column_label(int(j)) for j in involved)
        with_icpt = " and the intercept" if self.fit_intercept else ""
        raise DataError(
            f"fit: the features are exactly collinear: columns {labels}{with_icpt} are "
            f"linearly dependent (a combination with coefficients "
            f"{np.array2string(null[involved], precision=4)} is zero); drop one of them"
        )

    # --- orthogonalized features for SGD -------------------------------------------------

    def orthogonal_features(self) -> np.ndarray:
        """``U = √n Q`` of shape (n, k), float64: ``UᵀU / n = I``, ``Uᵀ1 = 0``
        (``Uᵀ√w = 0`` with weights)."""
        return np.sqrt(self.n) * self.Q

    def intercept_column(self) -> np.ndarray:
        """(n,) the column the intercept multiplies in the weighted problem: ``√w``
        (ones without weights). The ``bias`` of :meth:`from_orthogonal` is its
        coefficient."""
        return np.ones(self.n) if self.root_weight is None else self.root_weight

    def from_orthogonal(self, theta: np.ndarray, bias: np.ndarray | float) -> np.ndarray:
        """Parameters ``x`` of ``A`` for the predictor ``U θ + bias`` (``U θ + bias √w``
        with weights).

        theta : (k,) or (k, m); bias : scalar or (m,). Returns (p,) or (p, m), float64.
        """
        w = np.sqrt(self.n) * solve_triangular(self.R, np.asarray(theta, dtype=np.float64))
        if not self.fit_intercept:
            return w
        b0 = self.intercept_scale * (np.asarray(bias, dtype=np.float64) - self.mean @ w)
        return np.concatenate([np.expand_dims(b0, 0), w], axis=0)

    def to_params(self, x: np.ndarray) -> np.ndarray:
        """Parameters of ``Z`` (intercept first) from parameters ``x`` of ``A``."""
        return np.asarray(x, dtype=np.float64) / self.scale

    def from_params(self, params: np.ndarray) -> np.ndarray:
        """Parameters ``x`` of ``A`` from parameters of ``Z`` (intercept first), extended."""
        return np.asarray(params, dtype=np.float64).astype(EXTENDED) * self.scale

    # --- extended-precision residuals ----------------------------------------------------

    def _design_block(self, lo: int, hi: int) -> np.ndarray:
        Xs = (self.X[lo:hi] / self.feature_scale).astype(EXTENDED)
        if self.fit_intercept:
            ones = np.full((hi - lo, 1), 1.0 / self.intercept_scale, dtype=EXTENDED)
            Xs = np.hstack([ones, Xs])
        if self.root_weight is None:
            return Xs
        return self.root_weight[lo:hi, None].astype(EXTENDED) * Xs

    def _target_block(self, b: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Rows ``lo:hi`` of the target in extended precision (``√w b`` with weights:
        ``b`` is always on the unweighted scale)."""
        block = np.asarray(b[lo:hi], dtype=np.float64).astype(EXTENDED)
        if self.root_weight is None:
            return block
        sw = self.root_weight[lo:hi].astype(EXTENDED)
        return sw * block if block.ndim == 1 else sw[:, None] * block

    def augmented_residuals(
        self, b: np.ndarray, c: np.ndarray, state: RefinementState
    ) -> tuple[np.ndarray, np.ndarray]:
        """``f = b - r - A x`` and ``g = c - Aᵀ r`` in extended precision, in row blocks.

        ``b`` is on the unweighted scale (``y``); with weights it enters as ``√w b``.
        """
        f = np.empty(state.r.shape, dtype=EXTENDED)
        g = np.asarray(c, dtype=np.float64).astype(EXTENDED)
        for lo in range(0, self.n, _BLOCK_ROWS):
            hi = min(lo + _BLOCK_ROWS, self.n)
            A = self._design_block(lo, hi)
            r = state.r[lo:hi]
            f[lo:hi] = self._target_block(b, lo, hi) - r - A @ state.x
            g -= A.T @ r
        return f, g

    def residuals(self, y: np.ndarray, params: np.ndarray) -> np.ndarray:
        """``y - Z params`` (n,), computed in extended precision, rounded to float64;
        with weights the weighted residuals ``√w (y - Z params)``."""
        state = RefinementState(self.from_params(params), np.zeros(self.n, dtype=EXTENDED))
        f, _ = self.augmented_residuals(y, np.zeros(self.p), state)
        return np.asarray(f, dtype=np.float64)

    # --- refinement ------------------------------------------------------------------------

    def refinement_target(self, f: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The target ``f' = f - Q̂ a`` with ``R̂ᵀ a = g``: fitting ``f'`` by least
        squares in the orthonormal basis gives the correction of the parameters."""
        a = solve_triangular(self.R_hat, np.asarray(g, dtype=np.float64), trans="T")
        f64 = np.asarray(f, dtype=np.float64)
        if not self.fit_intercept:
            return f64 - self.Q @ a
        a0, a_rest = a[0], a[1:]
        if self.root_weight is None:
            return f64 - a0 / np.sqrt(self.n) - self.Q @ a_rest
        q0 = self.root_weight / self.intercept_norm
        return f64 - np.multiply.outer(q0, a0) - self.Q @ a_rest

    def _project(self, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Least-squares fit of ``target`` (n,) or (n, m) in the basis ``[U, 1]``
        (``[U, √w]`` with weights): ``(θ, bias, fitted)``."""
        theta = self.Q.T @ target / np.sqrt(self.n)
        fitted = np.sqrt(self.n) * (self.Q @ theta)
        if not self.fit_intercept:
            return theta, np.zeros(target.shape[1:]), fitted
        sw = self.root_weight
        if sw is None:
            bias = target.mean(axis=0)
            return theta, bias, fitted + bias
        bias = sw @ target / self.intercept_norm**2
        return theta, bias, fitted + np.multiply.outer(sw, bias)

    def refine(
        self,
        b: np.ndarray,
        c: np.ndarray,
        state: RefinementState,
        *,
        max_steps: int = 10,
        project: Projection | None = None,
        on_step: Callable[[np.ndarray], None] | None = None,
    ) -> tuple[RefinementState, int]:
        """Iterative refinement until the correction stops shrinking (or ``max_steps``).

        ``project(target)`` fits a target (n,) in the basis ``[U, 1]`` and returns
        ``(θ, bias, fitted)``; by default numpy's exact projection, the SGD trainer
        passes one ``torch.optim.SGD`` step. ``on_step(residual)`` sees ``b - A x``
        (extended precision) before each step. Returns the state and the steps taken.
        """
        project = project or self._project
        previous = np.inf
        for step in range(1, max_steps + 1):
            f, g = self.augmented_residuals(b, c, state)
            if on_step is not None:
                on_step(f + state.r)
            theta, bias, fitted = project(self.refinement_target(f, g))
            dx = self.from_orthogonal(theta, bias)
            state.x = state.x + dx.astype(EXTENDED)
            state.r = state.r + (np.asarray(f, dtype=np.float64) - fitted).astype(EXTENDED)
            size = relative_size(dx, state.x)
            if size <= _EPS / 16 or size >= previous / 2:
                return state, step
            previous = size
        return state, max_steps

    def solve(self, y: np.ndarray, *, max_steps: int = 10) -> np.ndarray:
        """Least-squares parameters of ``Z`` (p,), intercept first, float64."""
        state = RefinementState(np.zeros(self.p, dtype=EXTENDED), np.zeros(self.n, dtype=EXTENDED))
        state, _ = self.refine(
            np.asarray(y, dtype=np.float64), np.zeros(self.p), state, max_steps=max_steps
        )
        return self.to_params(np.asarray(state.x, dtype=np.float64))

    def inverse_gram(self, *, max_steps: int = 10) -> np.ndarray:
        """``(ZᵀZ)⁻¹`` (``(ZᵀWZ)⁻¹`` with weights) of shape (p, p), from the factor,
        refined when the scaled design is ill-conditioned (module docstring); never
        ``inv(ZᵀZ)``."""
        p = self.p
        d = self.scale
        if np.linalg.cond(self.R_hat) <= REFINE_COVARIANCE_ABOVE:
            r_inv = solve_triangular(self.R_hat, np.eye(p))
            return (r_inv @ r_inv.T) / np.outer(d, d)
        state = RefinementState(
            np.zeros((p, p), dtype=EXTENDED), np.zeros((self.n, p), dtype=EXTENDED)
        )
        state, _ = self.refine(np.zeros((self.n, p)), np.eye(p), state, max_steps=max_steps)
        inv_a = -np.asarray(state.x, dtype=np.float64)
        inv_a = (inv_a + inv_a.T) / 2.0
        return inv_a / np.outer(d, d)

    def condition_number(self) -> float:
        """statsmodels' condition number: ``sqrt(λmax / λmin)`` of ``ZᵀZ`` = κ₂(Z)
        (of the weighted design ``√w Z`` with weights, as statsmodels' WLS)."""
        R = self.R_hat * self.scale  # R̂ D is a triangular factor of Z itself
        sv = np.linalg.svd(R, compute_uv=False)
        return float(sv[0] / sv[-1]) if sv[-1] > 0 else float("inf")


def relative_size(dx: np.ndarray, x: np.ndarray) -> float:
    """Largest ``|δx_j| / |x_j|`` (0 where both are 0), as float."""
    dx = np.abs(np.asarray(dx, dtype=np.float64))
    xa = np.abs(np.asarray(x, dtype=np.float64))
    den = np.where(xa > 0, xa, 1.0)
    return float(np.max(np.where((xa == 0) & (dx == 0), 0.0, dx / den)))
