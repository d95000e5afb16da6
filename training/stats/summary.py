"""The statistical summary as text, in the layout of statsmodels' ``OLSResults.summary()``.

Nothing is cut and nothing runs together: every column is as wide as its widest
cell (measured in terminal columns, so East Asian wide characters count two),
cells are at least two spaces apart, and names are shown whole. A name that could
not be told apart from another when printed (a line break or another control
character, spaces at either end, an empty name, or a quote at its start) is shown
as a Python string literal instead, so two names never print the same. Numbers
are fixed-point when that shows enough significant digits and scientific
otherwise (1e-300 and 1e300 alike); a coefficient row is the name followed by six
numbers separated by spaces, so it parses back.
"""

from __future__ import annotations

import math
import textwrap
import unicodedata
from collections.abc import Sequence

from training.stats.regression import RegressionStatistics

__all__ = ["display_name", "display_width", "format_number", "summary_table"]

#: spaces between two columns
GAP = "  "
#: the narrowest table (statsmodels' width)
MIN_WIDTH = 78
#: from this magnitude on, numbers are shown in scientific notation
_FIXED_BELOW = 1e9
_QUOTES = ("'", '"')


def display_name(name: str) -> str:
    """``name`` as the table shows it: as is, or as a Python literal (``repr``) when it
    holds a non-printable character, starts or ends with a space, is empty, or starts
    with a quote (so that no shown name is another's literal)."""
    if name and name.isprintable() and name == name.strip() and not name.startswith(_QUOTES):
        return name
    return repr(name)


def _char_width(c: str) -> int:
    if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: wide characters two, combining ones none."""
    return sum(_char_width(c) for c in text)


def _ljust(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def _rjust(text: str, width: int) -> str:
    return " " * (width - display_width(text)) + text


def format_number(value: float, decimals: int, digits: int) -> str:
    """``value`` with ``decimals`` decimals, or in scientific notation when that would
    show fewer than ``digits`` significant digits or the value reaches 1e9.

    ``nan``, ``inf`` and ``-inf`` are spelled so (``float()`` reads them back).
    """
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    size = abs(value)
    if value != 0 and (size >= _FIXED_BELOW or size < 10.0 ** (digits - 1 - decimals)):
        shown = max(digits - 1, 1)
        text = f"{value:.{shown}e}"
        while math.isinf(float(text)):  # rounded past the largest float: 1.798e+308
            shown += 1
            text = f"{value:.{shown}e}"
        return text
    return f"{value:.{decimals}f}"


def _columns(rows: Sequence[Sequence[str]], right: Sequence[bool]) -> list[str]:
    """``rows`` of cells as lines: each column as wide as its widest cell, left- or
    right-aligned, :data:`GAP` between columns."""
    widths = [max(display_width(r[j]) for r in rows) for j in range(len(right))]
    return [
        GAP.join(
            (_rjust if r else _ljust)(cell, w)
            for cell, w, r in zip(row, widths, right, strict=True)
        ).rstrip()
        for row in rows
    ]


def _head(st: RegressionStatistics, target: str) -> list[str]:
    """The two columns of figures above the coefficients."""
    uncentered = "" if st.fit_intercept else " (uncentered)"
    left = [
        ("Dep. Variable:", display_name(target)),
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
    rows = [[a, b, "", c, d] for (a, b), (c, d) in zip(left, right, strict=True)]
    return _columns(rows, [False, True, False, False, True])


def coefficient_rows(st: RegressionStatistics) -> list[list[str]]:
    """The coefficient table's cells: a header row, then one row per parameter
    (name, coef, std err, t, P>|t| and the confidence interval's bounds)."""
    lo, hi = (1 - st.level) / 2, 1 - (1 - st.level) / 2
    rows = [["", "coef", "std err", "t", "P>|t|", f"[{lo:.3f}", f"{hi:.3f}]"]]
    for i, name in enumerate(st.names):
        rows.append(
            [
                display_name(name),
                format_number(st.params[i], 6, 4),
                format_number(st.std_errors[i], 6, 4),
                format_number(st.t_values[i], 3, 1),
                format_number(st.p_values[i], 3, 1),
                format_number(st.conf_int[i, 0], 6, 4),
                format_number(st.conf_int[i, 1], 6, 4),
            ]
        )
    return rows


def _collinearity_lines(st: RegressionStatistics, width: int) -> list[str]:
    lines = []
    if math.isfinite(st.scaled_condition_number):
        lines.append(
            f"Condition number (Belsley-Kuh-Welsch, columns scaled to unit length): "
            f"{st.scaled_condition_number:.3g}; statsmodels' condition number of the "
            f"unscaled design (it depends on the units, shown for information): "
            f"{st.condition_number:.3g}."
        )
    else:  # statistics from before the scaled figure
        lines.append(f"Condition number (statsmodels'): {st.condition_number:.3g}.")
    if len(st.vif):
        shown = ", ".join(
            f"{display_name(n)} {v:.3g}" for n, v in zip(st.feature_names, st.vif, strict=True)
        )
        lines.append(f"Variance inflation factors: {shown}.")
    lines += [f"Note: {note}" for note in st.collinearity_notes]
    return [
        wrapped
        for line in lines
        for wrapped in textwrap.wrap(
            line, width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False
        )
    ]


def summary_table(
    st: RegressionStatistics,
    *,
    target: str,
    title: str = "Linear regression (torch.nn.Linear + SGD)",
    extra: dict[str, str] | None = None,
) -> str:
    """A text table in the layout of statsmodels' ``OLSResults.summary()`` (module
    docstring: widths from the content, names whole, columns apart at any magnitude).

    ``extra`` adds ``key: value`` lines at the end.
    """
    head = _head(st, target)
    table = _columns(coefficient_rows(st), [False] + [True] * 6)
    width = max(MIN_WIDTH, *(display_width(line) for line in head + table))
    lines = [title.center(width).rstrip(), "=" * width, *head, "=" * width, table[0]]
    lines += ["-" * width, *table[1:], "=" * width]
    ls = st.least_squares
    lines.append(
        f"Least-squares optimum: R² {ls['r2']:.7f}, MSE {ls['mse']:.7g}; SGD is "
        f"{ls['max_abs_param_diff']:.2e} from it (largest parameter difference)."
    )
    lines += _collinearity_lines(st, width)
    for key, value in (extra or {}).items():
        lines.append(f"{key}: {value}")
    return "\n".join(lines)
