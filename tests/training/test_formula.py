"""training.formula and training.stats.anova against statsmodels' formula OLS and
``anova_lm(typ=2)``, on two real tables with text columns and gaps (Palmer penguins,
Grunfeld) and on generated ones."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from training.errors import DataError
from training.formula import design_table
from training.stats import regression_statistics
from training.stats.anova import anova_type2

smf = pytest.importorskip("statsmodels.formula.api")
anova_lm = pytest.importorskip("statsmodels.stats.anova").anova_lm
sm = pytest.importorskip("statsmodels.api")

FORMULAS = [
    "body_mass_g ~ bill_length_mm + C(species) + sex",
    "body_mass_g ~ bill_length_mm * C(species) + sex + I(flipper_length_mm**2)",
    "body_mass_g ~ C(species) * C(sex) + np.log(bill_depth_mm)",
    "body_mass_g ~ C(species, Treatment('Gentoo')) + island + np.sqrt(flipper_length_mm) - 1",
    "body_mass_g ~ C(species):bill_length_mm + sex:C(island)",
]


@pytest.fixture(scope="module")
def penguins():
    return pytest.importorskip("palmerpenguins").load_penguins()


def _fit(dt):
    Z = np.column_stack([np.ones(len(dt.y)), dt.Z]) if dt.design.intercept else dt.Z
    beta = np.linalg.lstsq(Z, dt.y, rcond=None)[0]
    coef, intercept = (beta[1:], beta[0]) if dt.design.intercept else (beta, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return regression_statistics(
            dt.Z,
            dt.y,
            coef,
            intercept,
            features=dt.names,
            fit_intercept=dt.design.intercept,
            centered=dt.centered,
        )


def _key(name: str) -> str:
    return "intercept" if name == "Intercept" else name.replace(" ", "")


def _assert_like_statsmodels(frame, formula):
    dt = design_table(frame, formula)
    st = _fit(dt)
    ols = smf.ols(formula, frame).fit()
    ours = dict(zip(map(_key, st.names), zip(st.params, st.std_errors, strict=True), strict=True))
    assert sorted(ours) == sorted(map(_key, ols.params.index))
    for name, param, se in zip(ols.params.index, ols.params, ols.bse, strict=True):
        np.testing.assert_allclose(ours[_key(name)], (param, se), rtol=1e-8, atol=1e-10)
    assert len(dt.y) == int(ols.nobs) and dt.design.rows_dropped == len(frame) - int(ols.nobs)
    np.testing.assert_allclose(st.r2, ols.rsquared, rtol=1e-10)
    np.testing.assert_allclose((st.f_statistic, st.df_model), (ols.fvalue, ols.df_model), rtol=1e-8)
    table = anova_lm(ols, typ=2)
    rows = {_key(r.term): r for r in anova_type2(st, dt.design.terms)}
    assert sorted(rows) == sorted(map(_key, table.index))
    for name, ref in table.iterrows():
        row = rows[_key(str(name))]
        assert row.df == ref["df"]
        np.testing.assert_allclose(row.sum_sq, ref["sum_sq"], rtol=1e-8)
        if name != "Residual":
            np.testing.assert_allclose((row.f, row.p_value), (ref["F"], ref["PR(>F)"]), rtol=1e-8)


@pytest.mark.parametrize("formula", FORMULAS)
def test_penguins_equal_statsmodels(penguins, formula):
    _assert_like_statsmodels(penguins, formula)


def test_grunfeld_equals_statsmodels():
    frame = sm.datasets.grunfeld.load_pandas().data
    _assert_like_statsmodels(frame, "invest ~ value + capital + firm")
    _assert_like_statsmodels(frame, "invest ~ value * firm")


def test_generated_table_with_gaps_booleans_and_integer_factors_equals_statsmodels():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(7)
    n = 400
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.uniform(1, 5, size=n),
            "region": rng.choice(["north", "south", "east"], size=n),
            "flag": rng.random(n) < 0.4,
            "cyl": rng.choice([4, 6, 8], size=n),
        }
    )
    codes = frame["region"].map({"north": 1.0, "south": -2.0, "east": 0.0})
    frame["y"] = 1 + 2 * frame.x1 + codes + 0.5 * frame.flag + rng.normal(size=n)
    frame.loc[[3, 50, 77], "x1"] = np.nan
    frame.loc[[5, 9], "region"] = None
    _assert_like_statsmodels(frame, "y ~ x1 + region + flag + C(cyl) + x1:x2")


def test_the_simple_path_matches_the_formula_of_the_same_columns(penguins):
    simple = design_table(
        penguins, target="body_mass_g", features=["bill_length_mm", "species", "sex"]
    )
    formula = design_table(penguins, "body_mass_g ~ bill_length_mm + species + sex")
    assert simple.names == formula.names
    np.testing.assert_array_equal(simple.Z, formula.Z)
    assert simple.design.rows_dropped == 11


def test_a_reference_level_can_be_chosen_by_option_or_formula(penguins):
    by_option = design_table(
        penguins, target="body_mass_g", features=["species"], references={"species": "Gentoo"}
    )
    assert by_option.names == ["species[T.Adelie]", "species[T.Chinstrap]"]
    by_formula = design_table(penguins, "body_mass_g ~ C(species, Treatment('Gentoo'))")
    np.testing.assert_array_equal(by_option.Z, by_formula.Z)


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("body_mass_g ~ np.tan(bill_length_mm)", r"term 'np.tan\(bill_length_mm\)'"),
        ("body_mass_g ~ I(bill_length_mm ** flipper_length_mm)", "exponent must be a number"),
        ("body_mass_g ~ C(species, Sum)", "only treatment coding"),
        ("body_mass_g ~ nope", "'nope' is not a column"),
        ("np.log(body_mass_g) ~ sex", "must be the target column's name"),
    ],
)
def test_terms_outside_the_subset_are_refused_by_name(penguins, formula, message):
    with pytest.raises(DataError, match=message):
        design_table(penguins, formula)


def test_missing_error_names_the_first_gap(penguins):
    with pytest.raises(DataError, match=r"column 'sex', row 4: a missing value \(11 row"):
        design_table(penguins, "body_mass_g ~ sex", missing="error")


def test_a_level_without_rows_is_refused(penguins):
    pd = pytest.importorskip("pandas")
    frame = penguins.copy()
    frame["species"] = pd.Categorical(
        frame["species"], categories=["Adelie", "Chinstrap", "Gentoo", "Emperor"]
    )
    with pytest.raises(DataError, match=r"level\(s\) \['Emperor'\] never occur"):
        design_table(frame, "body_mass_g ~ species")
