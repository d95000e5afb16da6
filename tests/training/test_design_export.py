"""A model fitted on a real table (text columns, gaps, a formula): trained, exported, loaded
by the Predictor, and compared with statsmodels' formula OLS fitted values and intervals
on two real tables: float64 to 1e-12 and float32 to 1e-6, relative to the largest
prediction (a float32 prediction near zero sums terms hundreds of times larger)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("torch")
smf = pytest.importorskip("statsmodels.formula.api")
sm = pytest.importorskip("statsmodels.api")

from inference import Predictor  # noqa: E402
from inference.errors import IgnoredColumnsWarning, InputError  # noqa: E402
from inference.manifest import DESIGN_FORMAT_VERSION, Manifest  # noqa: E402
from training.export import export_model  # noqa: E402
from training.pipeline import train  # noqa: E402

TABLES = {
    "penguins": (
        "body_mass_g ~ bill_length_mm * C(species) + sex + np.log(flipper_length_mm) + island"
    ),
    "grunfeld": "invest ~ value + capital + firm",
}
RTOL = {"float32": 1e-6, "float64": 1e-12}


def _frame(name):
    if name == "penguins":
        return pytest.importorskip("palmerpenguins").load_penguins()
    return sm.datasets.grunfeld.load_pandas().data


@pytest.fixture(scope="module", params=[(t, d) for t in TABLES for d in RTOL], ids=str)
def exported(request, tmp_path_factory):
    table, dtype = request.param
    frame = _frame(table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train(frame, formula=TABLES[table], progress=False)
        directory = export_model(run, tmp_path_factory.mktemp(table) / "model", dtype=dtype)
    return table, dtype, frame, run, Predictor.load(directory)


def test_predictions_and_intervals_equal_statsmodels(exported):
    table, dtype, frame, run, predictor = exported
    ols = smf.ols(TABLES[table], frame).fit()
    used = frame.loc[ols.fittedvalues.index]
    fitted = ols.fittedvalues.to_numpy()
    scale = RTOL[dtype] * np.abs(fitted).max()
    np.testing.assert_allclose(predictor.predict(used), fitted, rtol=RTOL[dtype], atol=scale)
    ours = predictor.predict(used.head(20), interval="prediction", level=0.95)
    theirs = ols.get_prediction(used.head(20)).summary_frame(alpha=0.05)
    rtol = max(RTOL[dtype], 1e-10)
    np.testing.assert_allclose(ours.lower, theirs.obs_ci_lower, rtol=rtol, atol=scale)
    np.testing.assert_allclose(ours.upper, theirs.obs_ci_upper, rtol=rtol, atol=scale)
    assert run.design.rows_dropped == len(frame) - int(ols.nobs)


def test_the_manifest_describes_the_design_and_records_the_anova(exported):
    table, _, frame, run, predictor = exported
    manifest = Manifest.read(predictor.source)
    assert manifest.format_version == DESIGN_FORMAT_VERSION
    assert manifest.design == run.design
    assert manifest.features == run.design.input_names == predictor.features
    assert [row["term"] for row in manifest.data["anova"]][-1] == "Residual"
    assert manifest.data["verification"]["max_relative_error"]["onnx"] <= 1e-5


def test_one_row_by_name_and_the_errors_name_row_column_and_value(exported):
    table, _, frame, _, predictor = exported
    ols = smf.ols(TABLES[table], frame).fit()
    row = frame.loc[ols.fittedvalues.index[0]].to_dict()
    expected = ols.fittedvalues.iloc[0]
    scale = 1e-6 * np.abs(ols.fittedvalues).max()
    with pytest.warns(IgnoredColumnsWarning, match="ignored"):  # the target, unused columns
        assert predictor.predict_one(row) == pytest.approx(expected, rel=1e-6, abs=scale)
    row = {name: row[name] for name in predictor.features}
    factor = predictor.design.factors[0].name
    with pytest.raises(InputError, match=rf"row 1, column '{factor}': the value 'nope' is not"):
        predictor.predict_one({**row, factor: "nope"})
    numeric = next(i.name for i in predictor.design.inputs if i.kind == "numeric")
    with pytest.raises(InputError, match=rf"column '{numeric}': a missing value"):
        predictor.predict([{**row, numeric: None}])
    with pytest.warns(IgnoredColumnsWarning, match="ignored"):
        predictor.predict([{**row, "comment": "x"}])
    assert predictor.predict(frame.head(0)).shape == (0,)


def test_old_manifests_still_load():
    predictor = Predictor.load("exported_models/plant_richness_mlr")
    assert predictor.design is None and predictor.manifest.format_version == 1


def test_a_level_coefficient_changed_in_the_graph_is_refused(exported, tmp_path):
    """The security review's attack on a design model: a Gather table entry edited in
    model.onnx, the manifest's sha256 and size rewritten to match."""
    import json
    import shutil

    import onnx
    from onnx import numpy_helper

    from inference.errors import CoefficientError
    from inference.manifest import file_digest

    _, _, _, _, predictor = exported
    copy = tmp_path / "tampered"
    shutil.copytree(predictor.source, copy)
    model = onnx.load(copy / "model.onnx")
    table = next(i for i in model.graph.initializer if i.name.startswith("table"))
    values = numpy_helper.to_array(table).copy()
    values[-1] += 1000.0
    table.CopyFrom(numpy_helper.from_array(values, table.name))
    onnx.save(model, copy / "model.onnx")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["artifacts"]["model.onnx"] = file_digest(copy / "model.onnx")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CoefficientError, match="not what runs"):
        Predictor.load(copy)
