"""The MLflow files of an export: present, hashed by the manifest, read by MLflow's own
reader and by PyYAML as the values they were written from."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

import inference
from inference import ModelLoadError, Predictor
from inference.manifest import MLFLOW_FILES, Manifest, file_digest
from inference.mlflow_format import MLFLOW_REQUIREMENT, example_rows, to_yaml
from tests.mlflow.conftest import BUNDLED, ROOT, needs_mlflow

pytestmark = needs_mlflow

MODELS = sorted(p for p in BUNDLED.iterdir() if p.is_dir())


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.name)
def test_bundled_models_carry_the_mlflow_files_and_their_hashes(model):
    manifest = Manifest.read(model)
    for name in MLFLOW_FILES:
        assert manifest.artifacts[name] == file_digest(model / name)
    manifest.verify_artifacts(model)


def test_an_export_writes_an_mlmodel_that_mlflow_reads(exported):
    import yaml
    from mlflow.models import Model

    run, out = exported("plant_richness_mlr", "float64")
    manifest = Manifest.read(out)
    raw = yaml.safe_load((out / "MLmodel").read_text(encoding="utf-8"))
    pyfunc = raw["flavors"]["python_function"]
    assert pyfunc["loader_module"] == "inference.mlflow_model" and "code" not in pyfunc
    assert pyfunc["python_version"] == "{}.{}.{}".format(*sys.version_info[:3])
    ours = raw["flavors"]["linreg_onnx"]
    assert (ours["manifest"], ours["onnx"]) == ("manifest.json", "model.onnx")
    assert ours["features"] == manifest.features and ours["dtype"] == "float64"
    model = Model.load(str(out / "MLmodel"))
    # no input schema (inference.mlflow_format says why): the examples name the columns
    assert model.signature.inputs is None
    assert list(model.load_input_example(str(out)).columns) == manifest.features
    (output,) = model.signature.outputs.inputs
    assert (output.name, output.type.name) == ("prediction", "double")
    params = {p.name: p.default for p in model.signature.params.params}
    assert params == {"interval": None, "level": 0.95}


def test_the_environment_files_pin_this_version(exported):
    import tomllib
    import yaml

    _, out = exported("plant_richness_lr", "float32")
    reqs = (out / "requirements.txt").read_text().splitlines()
    assert reqs[0] == f"linreg-onnx[cpu]=={inference.__version__}" and MLFLOW_REQUIREMENT in reqs
    env = yaml.safe_load((out / "python_env.yaml").read_text())
    assert env["dependencies"] == ["-r requirements.txt"]
    conda = yaml.safe_load((out / "conda.yaml").read_text())
    assert conda["dependencies"][-1] == {"pip": reqs}
    # the serving environment asks for the MLflow that the 'mlflow' extra installs
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert MLFLOW_REQUIREMENT in extras["mlflow"]


def test_the_examples_are_two_rows_of_means_and_deviations(exported):
    import mlflow

    run, out = exported("plant_richness_mlr", "float32")
    X = run.X_train
    expected = np.vstack([X.mean(0) - X.std(0), X.mean(0) + X.std(0)])
    np.testing.assert_allclose(example_rows(X), expected, rtol=5e-4)
    model = mlflow.models.Model.load(str(out))
    example = model.load_input_example(str(out))
    np.testing.assert_array_equal(example.to_numpy(), example_rows(X))
    serving = json.loads((out / "serving_input_example.json").read_text())
    assert serving["dataframe_split"] == {"columns": list(example.columns), "data": example_rows(X)}


def test_an_edited_mlmodel_fails_the_load_like_an_edited_onnx_file(tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(BUNDLED / "plant_richness_lr", copy)
    Predictor.load(copy)
    with open(copy / "MLmodel", "a", encoding="utf-8") as f:
        f.write("# edited\n")
    with pytest.raises(ModelLoadError, match="MLmodel: size is"):
        Predictor.load(copy)


def _text():
    from hypothesis import strategies as st

    return st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


def test_the_yaml_writer_round_trips_through_pyyaml():
    yaml = pytest.importorskip("yaml")
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        _text(),
    )
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text(), inner, max_size=3),
        max_leaves=8,
    )

    @hypothesis.given(st.dictionaries(_text(), values, max_size=4))
    def check(data):
        assert yaml.safe_load(to_yaml(data)) == (data or None)

    check()
