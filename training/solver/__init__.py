"""The exact SGD solver: ``torch.nn.Linear`` + ``MSELoss`` + ``torch.optim.SGD`` on a
preconditioned problem, refined to the least-squares optimum.

- :mod:`.precondition`: the problem SGD sees (scaled, centered, orthogonalized
  features) and the way back to raw features;
- :mod:`.sgd`: the torch training loop;
- :mod:`.lstsq`: the QR factor, extended-precision refinement, the covariance;
- :mod:`.estimator`: :class:`~training.solver.estimator.LinearRegressionSGD`, the
  scikit-learn estimator;
- :mod:`.folding`: folding a scikit-learn ``Pipeline``'s affine scalers into it.

Names are imported on first use (torch and scikit-learn are heavy).
"""

from __future__ import annotations

from training.lazy import lazy_names

__all__ = ["ConvergenceWarning", "LinearRegressionSGD", "fold"]

_WHERE = {
    "ConvergenceWarning": "training.solver.estimator",
    "LinearRegressionSGD": "training.solver.estimator",
    "fold": "training.solver.folding",
}

__getattr__ = lazy_names(__name__, _WHERE)
