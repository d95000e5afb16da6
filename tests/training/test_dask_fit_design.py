"""The Dask fit of a real table (text columns, gaps, a formula) on a LocalCluster of two
worker processes (loopback only): levels found over every partition, so partitions
that each miss some levels fit what statsmodels' formula OLS fits on the whole table
(parameters and standard errors to 1e-8, the rows dropped, the Type II ANOVA), and the
export scores like statsmodels' fitted values (1e-12, float64)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")
pytest.importorskip("torch")
smf = pytest.importorskip("statsmodels.formula.api")
anova_lm = pytest.importorskip("statsmodels.stats.anova").anova_lm

from inference import Predictor  # noqa: E402
from tests.inference.design_models import PENGUINS_FORMULA, penguins  # noqa: E402
from training.chunked.dask import fit_dask  # noqa: E402
from training.errors import DataError  # noqa: E402
from training.export import export_model  # noqa: E402
from training.pipeline import train  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::training.stats.CollinearityWarning"),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def client():
    from inference.dask import local_client

    with local_client(workers=2) as client:  # 2 worker processes on 127.0.0.1
        yield client


@pytest.fixture(scope="module")
def by_species():
    """The table sorted by species: the first partition holds Adelie only, the last
    Gentoo only."""
    frame = penguins().sort_values("species", kind="stable").reset_index(drop=True)
    ddf = dd.from_pandas(frame, npartitions=3, sort=False)
    seen = [set(ddf.get_partition(i).compute()["species"]) for i in range(3)]
    assert seen[0] == {"Adelie"} and seen[2] == {"Gentoo"}
    return frame, ddf


def _key(name: str) -> str:
    return "intercept" if name == "Intercept" else name.replace(" ", "")


def test_levels_from_every_partition_fit_like_statsmodels(client, by_species, tmp_path):
    frame, ddf = by_species
    run = fit_dask(ddf, formula=PENGUINS_FORMULA, client=client)
    ols = smf.ols(PENGUINS_FORMULA, frame).fit()
    st = run.statistics
    ours = dict(zip(map(_key, st.names), zip(st.params, st.std_errors, strict=True), strict=True))
    assert sorted(ours) == sorted(map(_key, ols.params.index))
    for name, param, se in zip(ols.params.index, ols.params, ols.bse, strict=True):
        np.testing.assert_allclose(ours[_key(name)], (param, se), rtol=1e-8, atol=1e-10)
    assert run.design.rows_dropped == run.data["rows_dropped"] == len(frame) - int(ols.nobs)
    np.testing.assert_allclose(st.r2, ols.rsquared, rtol=1e-10)
    table = anova_lm(ols, typ=2)
    rows = {_key(r.term): r for r in run.anova}
    for name, ref in table.iterrows():
        np.testing.assert_allclose(rows[_key(str(name))].sum_sq, ref["sum_sq"], rtol=1e-8)

    directory = export_model(run, tmp_path / "model", dtype="float64", plots=False)
    predictor = Predictor.load(directory, providers="cpu")
    assert predictor.design.input("species").levels == ("Adelie", "Chinstrap", "Gentoo")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the columns the model does not read
        got = predictor.predict(frame.loc[ols.fittedvalues.index])
    fitted = ols.fittedvalues.to_numpy()
    np.testing.assert_allclose(got, fitted, rtol=1e-12, atol=1e-12 * np.abs(fitted).max())


def test_text_columns_without_a_formula_and_a_chosen_reference(client, by_species):
    frame, ddf = by_species
    features = ["bill_length_mm", "species", "sex"]
    run = fit_dask(
        ddf,
        target="body_mass_g",
        features=features,
        references={"species": "Gentoo"},
        client=client,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        memory = train(
            frame,
            target="body_mass_g",
            features=features,
            references={"species": "Gentoo"},
            progress=False,
        )
    assert run.features == memory.features
    assert "species[T.Adelie]" in run.features and "species[T.Gentoo]" not in run.features
    np.testing.assert_allclose(run.statistics.params, memory.statistics.params, rtol=1e-8)
    assert run.design.rows_dropped == memory.design.rows_dropped


def test_a_gap_with_missing_error_names_partition_column_and_row(client, by_species):
    _, ddf = by_species
    with pytest.raises(DataError, match=r"partition 0: column 'bill_length_mm', row 4"):
        fit_dask(ddf, formula=PENGUINS_FORMULA, missing="error", client=client)
