"""The trainer against the figures in shared/data/README.md and numpy's least squares."""

from __future__ import annotations

import numpy as np
import pytest

from training.data import DataError, load_dataset
from training.errors import DivergenceError
from training.solver.estimator import LinearRegressionSGD, NotFittedError

from ..conftest import lstsq


@pytest.fixture(scope="module")
def lr_data():
    return load_dataset("plant_richness_lr")


@pytest.fixture(scope="module")
def mlr_data():
    return load_dataset("plant_richness_mlr")


def r2(y, pred):
    return 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_default_fit_reaches_least_squares_on_lr(lr_data, dtype):
    m = LinearRegressionSGD(dtype=dtype, progress=False).fit(lr_data.X, lr_data.y)
    b_ls, w_ls = lstsq(lr_data.X, lr_data.y)
    # the reference figures and our independent lstsq agree
    assert w_ls == pytest.approx(0.3557394, abs=1e-7)
    assert b_ls == pytest.approx(1.3360483, abs=1e-7)
    assert m.coef_[0] == pytest.approx(0.3557394, abs=1e-4)
    assert m.intercept_ == pytest.approx(1.3360483, abs=1e-4)
    assert r2(lr_data.y, m.predict(lr_data.X)) == pytest.approx(0.8277861, abs=1e-5)
    assert m.predict([[3.0]])[0] == pytest.approx(2.4032664, abs=1e-4)
    assert m.converged_ and m.n_epochs_ < 100
    assert m.predict(lr_data.X).shape == (22,)


def test_tutorial_preset_reproduces_the_article(lr_data):
    m = LinearRegressionSGD.from_preset("tutorial", progress=False).fit(lr_data.X, lr_data.y)
    assert m.n_epochs_ == 6000 and m.lr_ == 0.002 and not m.standardize
    mse = float(np.mean((lr_data.y - m.predict(lr_data.X)) ** 2))
    assert mse == pytest.approx(0.0405, abs=0.0005)
    assert m.loss_history_[-1] == pytest.approx(mse, rel=1e-5)
    assert m.coef_[0] == pytest.approx(0.3574, abs=0.005)
    assert r2(lr_data.y, m.predict(lr_data.X)) == pytest.approx(0.8276, abs=0.001)
    assert len(m.loss_history_) == 6001


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_default_fit_reaches_least_squares_on_mlr(mlr_data, dtype):
    m = LinearRegressionSGD(dtype=dtype, progress=False).fit(mlr_data.X, mlr_data.y)
    ref = lstsq(mlr_data.X, mlr_data.y)
    np.testing.assert_allclose(ref, [5.1045238, 0.3497257, -0.0863398, -0.0047000], atol=5e-7)
    np.testing.assert_allclose(m.coef_, ref[1:], rtol=1e-3)
    assert m.intercept_ == pytest.approx(ref[0], rel=1e-3)
    assert r2(mlr_data.y, m.predict(mlr_data.X)) == pytest.approx(0.9154639, abs=1e-5)


def test_tutorial_preset_diverges_on_mlr_with_an_error(mlr_data):
    m = LinearRegressionSGD.from_preset("tutorial", progress=False)
    with pytest.raises(
        DivergenceError, match=r"diverged at epoch \d+.*lr=0\.002; use a learning rate below"
    ):
        m.fit(mlr_data.X, mlr_data.y)
    assert not hasattr(m, "coef_")  # no NaN weights handed out


def test_too_large_lr_diverges_even_when_standardized(lr_data):
    with pytest.raises(DivergenceError, match="leave lr unset"):
        LinearRegressionSGD(lr=5.0, progress=False).fit(lr_data.X, lr_data.y)


def test_seeded_and_reproducible_with_minibatches_and_momentum(mlr_data):
    kw = dict(batch_size=5, momentum=0.5, seed=3, max_epochs=400, progress=False)
    a = LinearRegressionSGD(**kw).fit(mlr_data.X, mlr_data.y)
    b = LinearRegressionSGD(**kw).fit(mlr_data.X, mlr_data.y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.loss_history_ == b.loss_history_
    ref = lstsq(mlr_data.X, mlr_data.y)
    # mini-batch SGD with a constant step ends near, not at, the optimum
    np.testing.assert_allclose(a.coef_, ref[1:], rtol=0.1, atol=0.01)
    c = LinearRegressionSGD(**{**kw, "seed": 4}).fit(mlr_data.X, mlr_data.y)
    assert not np.array_equal(a.coef_, c.coef_)


def test_fit_returns_self_and_not_fitted_error(lr_data):
    m = LinearRegressionSGD(progress=False)
    with pytest.raises(NotFittedError, match="not fitted"):
        m.predict([[1.0]])
    assert m.fit(lr_data.X, lr_data.y) is m
    assert m.n_features_in_ == 1
    with pytest.raises(ValueError, match="is expecting 1 features as input"):
        m.predict(np.ones((2, 3)))


def test_constant_feature_is_refused(lr_data):
    X = np.column_stack([lr_data.X, np.ones(22)])
    with pytest.raises(DataError, match="feature column 2 is constant"):
        LinearRegressionSGD(progress=False).fit(X, lr_data.y)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": -1.0}, "lr must be a positive number"),
        ({"dtype": "float16"}, "dtype must be"),
        ({"momentum": 1.5}, "momentum must be in"),
        ({"max_epochs": 0}, "max_epochs must be a positive integer"),
    ],
)
def test_bad_parameters(lr_data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        LinearRegressionSGD(**kwargs).fit(lr_data.X, lr_data.y)


def test_nan_in_fit_input_is_refused(lr_data):
    X = lr_data.X.copy()
    X[4, 0] = np.nan
    with pytest.raises(DataError, match="X has a NaN or infinite value at row 5, column 1"):
        LinearRegressionSGD(progress=False).fit(X, lr_data.y)


def test_loss_history_decreases_and_chosen_lr_is_stable(mlr_data):
    m = LinearRegressionSGD(progress=False, dtype="float64", tol=1e-12).fit(mlr_data.X, mlr_data.y)
    h = np.array(m.loss_history_)
    assert np.all(np.diff(h) <= 1e-12)
    lam_min, lam_max = m.hessian_eigenvalues_
    assert 0 < m.lr_ < 2 / lam_max


def test_exact_collinearity_names_the_columns(mlr_data):
    X = np.column_stack([mlr_data.X, 2.0 * mlr_data.X[:, 0] - mlr_data.X[:, 2]])
    with pytest.raises(DataError, match=r"exactly collinear: columns 1, 3, 4 .*drop one"):
        LinearRegressionSGD(progress=False).fit(X, mlr_data.y)


def test_unconverged_fit_warns(lr_data):
    from training.solver.estimator import ConvergenceWarning

    with pytest.warns(ConvergenceWarning, match=r"did not converge in 3 epochs"):
        m = LinearRegressionSGD(lr=0.01, max_epochs=3, progress=False).fit(lr_data.X, lr_data.y)
    assert not m.converged_ and m.refinement_steps_ == 0


def test_refinement_steps_are_epochs_and_reach_lstsq(mlr_data):
    m = LinearRegressionSGD(progress=False).fit(mlr_data.X, mlr_data.y)
    assert m.refinement_steps_ >= 1 and m.n_epochs_ == len(m.loss_history_) - 1
    np.testing.assert_allclose(
        np.r_[m.intercept_, m.coef_], lstsq(mlr_data.X, mlr_data.y), rtol=1e-12
    )


def test_no_intercept_fit_equals_lstsq_through_the_origin(mlr_data):
    m = LinearRegressionSGD(fit_intercept=False, progress=False).fit(mlr_data.X, mlr_data.y)
    ref = np.linalg.lstsq(mlr_data.X, mlr_data.y, rcond=None)[0]
    np.testing.assert_allclose(m.coef_, ref, rtol=1e-10)
    assert m.intercept_ == 0.0
    np.testing.assert_allclose(m.predict(mlr_data.X), mlr_data.X @ ref, rtol=1e-10)


@pytest.mark.parametrize(
    ("momentum", "batch"), [(0.0, None), (0.9, None), (0.0, 7), (0.9, 7)], ids=str
)
def test_eager_sgd_steps_as_torch_optim_sgd(momentum, batch):
    """training.solver.sgd.EagerSGD skips only torch.compile's hooks: on the same data,
    seed and schedule its parameters equal torch.optim.SGD's bit for bit."""
    import torch

    from training.solver.sgd import EagerSGD

    rng = np.random.default_rng(3)
    X = torch.from_numpy(rng.standard_normal((40, 3)))
    y = torch.from_numpy(rng.standard_normal((40, 1)))

    def train(optimizer_class):
        torch.manual_seed(0)
        layer = torch.nn.Linear(3, 1, dtype=torch.float64)
        opt = optimizer_class(layer.parameters(), lr=0.05, momentum=momentum)
        gen = torch.Generator().manual_seed(1)
        for _ in range(5):
            batches = (
                [torch.arange(40)]
                if batch is None
                else torch.randperm(40, generator=gen).split(batch)
            )
            for idx in batches:
                opt.zero_grad()
                torch.nn.functional.mse_loss(layer(X[idx]), y[idx]).backward()
                opt.step()
        return torch.cat([layer.weight.detach().reshape(-1), layer.bias.detach()]).numpy()

    ours, theirs = train(EagerSGD), train(torch.optim.SGD)
    assert not np.allclose(ours, 0.0)
    np.testing.assert_array_equal(ours, theirs)
