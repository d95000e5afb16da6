"""The summary table never garbles: columns as wide as their content, names whole,
every coefficient row parses back to the numbers it shows (issue 28).

The parser here is the test's own: a coefficient row is the name, then six
whitespace-free numbers each preceded by at least two spaces; right-aligned columns
end at the display column where their header ends (wide East Asian characters take
two columns, combining characters none, as a terminal shows them).
"""

from __future__ import annotations

import math
import re
import unicodedata

import numpy as np
import pytest

from training.stats import RegressionStatistics, summary_table
from training.stats.summary import display_name

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

HEADERS = ["coef", "std err", "t", "P>|t|", "[0.025", "0.975]"]
ROW = re.compile(r"(.*?)((?: {2,}\S+){6})")


def width(text: str) -> int:
    """Terminal columns of ``text`` (the test's own count)."""
    total = 0
    for c in text:
        if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
            continue
        total += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return total


def statistics(names, params, se, t, p, lo, hi, target="y") -> RegressionStatistics:
    k = len(names)
    return RegressionStatistics(
        names=list(names),
        params=np.asarray(params, dtype=float),
        std_errors=np.asarray(se, dtype=float),
        t_values=np.asarray(t, dtype=float),
        p_values=np.asarray(p, dtype=float),
        conf_int=np.column_stack([lo, hi]).astype(float),
        level=0.95,
        n_samples=100,
        df_model=k - 1,
        df_resid=100 - k,
        rss=1.0,
        tss=2.0,
        mse=0.01,
        residual_variance=0.0101,
        residual_std_error=0.1005,
        r2=0.5,
        adj_r2=0.49,
        f_statistic=12.0,
        f_pvalue=1e-5,
        covariance=np.eye(k),
        t_quantiles={"0.95": 1.98},
        least_squares={"r2": 0.5, "mse": 0.01, "max_abs_param_diff": 0.0},
        scaled_condition_number=3.0,
        condition_number=1e4,
        vif=np.ones(k - 1),
    )


def coefficient_lines(text: str, n: int) -> tuple[str, list[str]]:
    """The header line and the ``n`` coefficient lines of a summary."""
    lines = text.splitlines()
    rule = next(i for i, line in enumerate(lines) if set(line) == {"-"})
    return lines[rule - 1], lines[rule + 1 : rule + 1 + n]


def assert_shows(token: str, value: float) -> None:
    """``token`` reads back as ``value`` to the precision it shows."""
    if math.isnan(value):
        assert token == "nan", (token, value)
        return
    if math.isinf(value):
        assert token == ("inf" if value > 0 else "-inf"), (token, value)
        return
    got = float(token)
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    unit = 10.0 ** (int(exponent or 0) - decimals)
    assert abs(got - value) <= 0.5 * unit * (1 + 1e-9) + abs(value) * 1e-15, (token, value)
    assert (got == 0) == (value == 0), f"{value!r} shown as {token!r}"


def check_table(st_: RegressionStatistics) -> list[str]:
    """Parse the table back; return the names as shown."""
    text = summary_table(st_, target="y")
    header, rows = coefficient_lines(text, len(st_.names))
    ends = []
    pos = 0
    for label in HEADERS:
        pos = header.index(label, pos) + len(label)
        ends.append(pos)  # the header is ASCII: characters are columns
    shown = []
    for i, line in enumerate(rows):
        match = ROW.fullmatch(line)
        assert match is not None, f"columns ran together: {line!r}"
        name, numbers = match.group(1).rstrip(), match.group(2).split()
        shown.append(name)
        values = [
            st_.params[i],
            st_.std_errors[i],
            st_.t_values[i],
            st_.p_values[i],
            st_.conf_int[i, 0],
            st_.conf_int[i, 1],
        ]
        for token, value in zip(numbers, values, strict=True):
            assert_shows(token, value)
        at = []  # display column where each number ends
        pos = match.start(2)
        for token in numbers:
            pos = line.index(token, pos) + len(token)
            at.append(width(line[:pos]))
        assert at == ends, f"misaligned: {line!r} against {header!r}"
    return shown


MAGNITUDE = st.floats(-300, 300).map(lambda e: 10.0**e)
SIGNED = st.one_of(MAGNITUDE, MAGNITUDE.map(lambda v: -v), st.just(0.0))
ANY_VALUE = st.one_of(SIGNED, st.floats(allow_nan=False, allow_infinity=False))
P_VALUE = st.one_of(st.floats(0, 1), MAGNITUDE.filter(lambda v: v <= 1), st.just(math.nan))
T_VALUE = st.one_of(ANY_VALUE, st.just(math.inf), st.just(-math.inf), st.just(math.nan))
NAMES = st.one_of(
    st.text(max_size=60),
    st.text(st.characters(codec="utf-8"), min_size=15, max_size=80),
    st.text("sqft_living_total", min_size=14, max_size=20),
    st.sampled_from(["living area (m²)", "面積 (平方米)", "e\u0301te\u0301", "'quoted'", " pad "]),
)


@settings(max_examples=300)
@given(data=st.data(), k=st.integers(1, 6))
def test_columns_stay_apart_and_parse_back_at_any_magnitude(data, k):
    names = data.draw(st.lists(NAMES, min_size=k + 1, max_size=k + 1, unique=True))
    draw = lambda s: [data.draw(s) for _ in range(k + 1)]  # noqa: E731
    st_ = statistics(
        names,
        draw(ANY_VALUE),
        draw(SIGNED.map(abs)),
        draw(T_VALUE),
        draw(P_VALUE),
        draw(ANY_VALUE),
        draw(ANY_VALUE),
        target=data.draw(NAMES),
    )
    shown = check_table(st_)
    assert shown == [display_name(n) for n in names]
    assert len(set(shown)) == len(names), "two names print the same"
    target = names[0]
    head = next(line for line in summary_table(st_, target=target).splitlines() if "Dep." in line)
    assert head.startswith("Dep. Variable:  ") and display_name(target) in head


def test_the_garbled_row_of_issue_28_stays_apart():
    """``sqft 146.750944 1.712754   85.6817.9e-300``: t and p ran together."""
    st_ = statistics(
        ["intercept", "sqft"],
        [1.5, 146.750944],
        [0.2, 1.712754],
        [7.5, 85.681],
        [1e-9, 7.9e-300],
        [1.1, 143.39],
        [1.9, 150.11],
    )
    check_table(st_)
    text = summary_table(st_, target="price")
    assert "85.6817.9e-300" not in text
    row = next(line for line in text.splitlines() if line.startswith("sqft"))
    assert row.split()[3:5] == ["85.681", "7.9e-300"]


def test_names_are_whole_and_no_longer_collide():
    names = ["intercept", "sqft_living_totala", "sqft_living_totalb", "living area (m²)"]
    st_ = statistics(names, [1, 2, 3, 4], [1, 1, 1, 1], [1, 2, 3, 4], [0.5] * 4, [0] * 4, [5] * 4)
    assert check_table(st_) == names  # printable names are shown as they are


def test_unprintable_names_are_shown_as_literals_that_differ():
    names = ["intercept", "a\nb", "a\\nb", "'a\\nb'", ""]
    st_ = statistics(names, [1] * 5, [1] * 5, [1] * 5, [0.5] * 5, [0] * 5, [2] * 5)
    shown = check_table(st_)
    assert shown == ["intercept", "'a\\nb'", "a\\nb", "\"'a\\\\nb'\"", "''"]
    assert len(set(shown)) == 5
