"""``linreg train`` on real tables (issue 23): text columns as factors, gaps dropped and
counted, formulas, reference levels; the exported model answers like the fit."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pd = pytest.importorskip("pandas")

from inference import Predictor  # noqa: E402
from linreg.main import main  # noqa: E402


@pytest.fixture(scope="module")
def cat_csv(tmp_path_factory):
    """The issue's table: 500 rows, a numeric target, two numbers, a text column region
    (north/south/east) and one empty cell."""
    rng = np.random.default_rng(1)
    n = 500
    region = rng.choice(["north", "south", "east"], size=n)
    x1, x2 = rng.normal(size=n), rng.normal(2, 1, size=n)
    effect = pd.Series(region).map({"north": 1.0, "south": -1.0, "east": 0.0}).to_numpy()
    y = 1 + 2 * x1 - 0.5 * x2 + effect + rng.normal(0, 0.3, size=n)
    frame = pd.DataFrame({"y": y, "x1": x1, "x2": x2, "region": region})
    frame.loc[7, "x2"] = np.nan
    path = tmp_path_factory.mktemp("tables") / "cat.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_the_issues_table_trains_with_a_factor_and_a_dropped_row(cat_csv, capsys):
    path, frame = cat_csv
    assert main(["train", "--data", str(path), "--target", "y"]) == 0
    out = capsys.readouterr().out
    assert "region[T.north]" in out and "region[T.south]" in out  # east is the reference
    assert "Rows: 499 used, 1 dropped for a missing value" in out
    assert "ANOVA (Type II" in out


def test_missing_error_keeps_todays_message(cat_csv, capsys):
    path, _ = cat_csv
    assert main(["train", "--data", str(path), "--target", "y", "--missing", "error"]) == 1
    assert "column 'x2', row 8 (line 9): an empty cell is not numeric" in capsys.readouterr().err


def test_a_formula_exports_a_model_that_reads_raw_columns(cat_csv, tmp_path, capsys):
    path, frame = cat_csv
    formula = "y ~ x1 + C(region, Treatment('south')) + I(x2**2)"
    out = tmp_path / "m"
    args = ["train", "--data", str(path), "--formula", formula, "--out", str(out)]
    assert main([*args, "--dtype", "float64", "--no-plots"]) == 0
    capsys.readouterr()
    predictor = Predictor.load(out)
    used = frame.dropna()
    Z = np.column_stack(
        [
            np.ones(len(used)),
            used.x1,
            used.region == "east",
            used.region == "north",
            used.x2**2,
        ]
    ).astype(float)
    beta = np.linalg.lstsq(Z, used.y.to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(predictor.predict(used), Z @ beta, rtol=1e-10)
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "factor      region: 3 levels (south, east, north), reference south" in info
    assert "missing     drop: 1 row(s) dropped at training" in info


def test_reference_option_and_the_bundled_penguins(capsys):
    assert main(["train", "--dataset", "penguins", "--reference", "species=Gentoo"]) == 0
    out = capsys.readouterr().out
    assert "species[T.Adelie]" in out and "species[T.Gentoo]" not in out
    assert "Rows: 333 used, 11 dropped" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--formula", "y ~ x1", "--target", "y"], "--formula names the target"),
        (["--formula", "y ~ x1", "--engine", "chunked"], "--formula needs --engine memory"),
        (["--target", "y", "--reference", "region"], "expected COLUMN=LEVEL"),
    ],
)
def test_table_options_that_cannot_work_are_usage_errors(cat_csv, capsys, args, message):
    path, _ = cat_csv
    assert main(["train", "--data", str(path), *args]) == 2
    assert message in capsys.readouterr().err
