"""``linreg train --formula ... --out``, then ``linreg predict`` on the raw table (issue 23's
batch acceptance, end to end on the command line): the bundled penguins (three text
columns, gaps) scored as CSV and Parquet, with the C readers on and off, equal
statsmodels' formula OLS fitted values (1e-6 relative to the largest with a float32
export, 1e-12 with float64); the rows statsmodels drops for a gap are exactly the bad
rows, in every ``--bad-rows`` mode."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("torch")
pd = pytest.importorskip("pandas")
smf = pytest.importorskip("statsmodels.formula.api")

from linreg.main import main  # noqa: E402
from tests.inference.design_models import PENGUINS, PENGUINS_FORMULA, RTOL  # noqa: E402


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """The bundled CSV, the same rows as Parquet, and statsmodels' fit of the formula."""
    directory = tmp_path_factory.mktemp("penguins")
    csv = directory / "penguins.csv"
    shutil.copy(PENGUINS, csv)
    frame = pd.read_csv(csv)
    parquet = directory / "penguins.parquet"
    frame.to_parquet(parquet, index=False)
    return csv, parquet, frame, smf.ols(PENGUINS_FORMULA, frame).fit()


@pytest.fixture(scope="module", params=["float32", "float64"])
def model(request, table, tmp_path_factory):
    csv, *_ = table
    out = tmp_path_factory.mktemp(request.param) / "model"
    args = ["train", "--data", str(csv), "--formula", PENGUINS_FORMULA, "--out", str(out)]
    assert main([*args, "--dtype", request.param, "--no-plots"]) == 0
    return request.param, out


@pytest.mark.parametrize("native", ["0", "1"])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_linreg_predict_equals_statsmodels_and_sets_aside_the_dropped_rows(
    model, table, fmt, native, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("LINREG_NO_NATIVE", native)
    dtype, directory = model
    csv, parquet, frame, ols = table
    source = csv if fmt == "csv" else parquet
    dropped = sorted(set(frame.index) - set(ols.fittedvalues.index))
    assert len(dropped) == 11

    out, bad = tmp_path / f"out.{fmt}", tmp_path / "bad.csv"
    args = ["predict", str(directory), str(source), "-o", str(out), "--no-progress"]
    assert main([*args, "--bad-rows", str(bad), "--id-columns", "species"]) == 0
    got = pd.read_parquet(out) if fmt == "parquet" else pd.read_csv(out)
    fitted = ols.fittedvalues.to_numpy()
    scale = RTOL[dtype] * np.abs(fitted).max()
    np.testing.assert_allclose(got["prediction"], fitted, rtol=RTOL[dtype], atol=scale)
    assert got["species"].tolist() == frame.loc[ols.fittedvalues.index, "species"].tolist()
    rejected = pd.read_csv(bad, keep_default_na=False)
    assert rejected["row"].tolist() == [i + 1 for i in dropped]
    if fmt == "csv":
        assert rejected["line"].tolist() == [i + 2 for i in dropped]
    assert "missing value" in rejected["error"][0]

    capsys.readouterr()
    skip = tmp_path / f"skip.{fmt}"
    assert (
        main(["predict", str(directory), str(source), "-o", str(skip), "--bad-rows", "skip"]) == 0
    )
    assert "11 bad row(s) set aside" in capsys.readouterr().err
    assert main(["predict", str(directory), str(source), "-o", str(tmp_path / "e.csv")]) == 1
    first = dropped[0]
    where = f"line {first + 2}" if fmt == "csv" else f"row {first + 1}"
    assert f"{source.name}, {where}, column '" in capsys.readouterr().err
    assert not (tmp_path / "e.csv").exists()
