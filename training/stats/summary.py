"""The statistical summary as text, in the layout of statsmodels' ``OLSResults.summary()``."""

from __future__ import annotations

from training.solver.lstsq import CONDITION_WARNING_THRESHOLD
from training.stats.regression import RegressionStatistics, condition_note

__all__ = ["summary_table"]


def _cell(value: float, width: int, decimals: int, digits: int = 4) -> str:
    """``value`` right-aligned in ``width`` columns with ``decimals`` decimals, or in
    scientific notation when that does not fit or would show fewer than ``digits``
    significant digits (one space always separates cells)."""
    text = f"{value:.{decimals}f}"
    if len(text) > width - 1 or (value != 0 and abs(value) < 10.0 ** (digits - 1 - decimals)):
        # sign, first digit, point and a 4-character exponent besides the decimals
        text = f"{value:.{max(width - 8 - (value < 0), 1)}e}"
    return text.rjust(width)


def summary_table(
    st: RegressionStatistics,
    *,
    target: str,
    title: str = "Linear regression (torch.nn.Linear + SGD)",
    extra: dict[str, str] | None = None,
) -> str:
    """A text table in the layout of statsmodels' ``OLSResults.summary()``.

    Columns stay apart for any magnitude: a value that does not fit its column is
    shown in scientific notation.
    """
    width = 78
    lines = [title.center(width), "=" * width]
    uncentered = "" if st.fit_intercept else " (uncentered)"
    left = [
        ("Dep. Variable:", target),
        ("No. Observations:", str(st.n_samples)),
        ("Df Residuals:", str(st.df_resid)),
        ("Df Model:", str(st.df_model)),
        ("Resid. Std. Err.:", f"{st.residual_std_error:.6g}"),
    ]
    right = [
        (f"R-squared{uncentered}:", f"{st.r2:.6f}"),
        (f"Adj. R-squared{uncentered}:", f"{st.adj_r2:.6f}"),
        ("F-statistic:", f"{st.f_statistic:.4g}"),
        ("Prob (F-statistic):", f"{st.f_pvalue:.3g}"),
        ("MSE:", f"{st.mse:.6g}"),
    ]
    for (a, b), (c, d) in zip(left, right, strict=True):
        lines.append(f"{a:<20}{b:>16}   {c:<28}{d:>11}")
    lo, hi = (1 - st.level) / 2, 1 - (1 - st.level) / 2
    lines.append("=" * width)
    head = f"{'':<14}{'coef':>13}{'std err':>12}{'t':>9}{'P>|t|':>8}{lo:>11.3f}{hi:>11.3f}"
    lines += [head, "-" * width]
    for i, name in enumerate(st.names):
        lines.append(
            f"{name[:14]:<14}{_cell(st.params[i], 13, 6)}{_cell(st.std_errors[i], 12, 6)}"
            f"{_cell(st.t_values[i], 9, 3, 1)}{_cell(st.p_values[i], 8, 3, 1)}"
            f"{_cell(st.conf_int[i, 0], 11, 4, 2)}{_cell(st.conf_int[i, 1], 11, 4, 2)}"
        )
    lines.append("=" * width)
    ls = st.least_squares
    lines.append(
        f"Least-squares optimum: R² {ls['r2']:.7f}, MSE {ls['mse']:.7g}; SGD is "
        f"{ls['max_abs_param_diff']:.2e} from it (largest parameter difference)."
    )
    lines.append(f"Condition number: {st.condition_number:.3g}.")
    if st.condition_number > CONDITION_WARNING_THRESHOLD:
        lines.append(f"Note: {condition_note(st.condition_number)}")
    for key, value in (extra or {}).items():
        lines.append(f"{key}: {value}")
    return "\n".join(lines)
