"""A fitted scikit-learn Pipeline that encodes raw columns (ColumnTransformer of
OneHotEncoder, SimpleImputer and scalers, then LinearRegressionSGD), exported as a design
model: predictions of the Predictor and of onnxruntime on ``model.onnx`` (string
inputs) against the pipeline's own ``predict``, gaps and unknown levels included; the
statistics against statsmodels' OLS on the pipeline's own transform, and the ANOVA
against ``anova_lm(typ=2)``; every step that cannot be written as design columns
refused naming it."""

from __future__ import annotations

import json
import warnings
from importlib import resources

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn comes with the training extra")
pytest.importorskip("torch", reason="training needs the training extra")
ort = pytest.importorskip("onnxruntime", reason="verifying an export needs onnxruntime")
pd = pytest.importorskip("pandas")
sm = pytest.importorskip("statsmodels.api", reason="statsmodels comes with the dev extra")

from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import (  # noqa: E402
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)

from inference import Predictor  # noqa: E402
from inference.errors import InputError, UnknownLevelWarning  # noqa: E402
from training.errors import UnsupportedModelError, UsageError  # noqa: E402
from training.export import export_model  # noqa: E402
from training.pipeline import TrainingRun  # noqa: E402
from training.solver.estimator import LinearRegressionSGD  # noqa: E402

RTOL = {"float32": 1e-6, "float64": 1e-12}
NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]


def _penguins():
    """The bundled penguins with a known body mass and sex, and one numeric cell in
    twenty emptied (seeded): the gaps the imputers fill."""
    path = resources.files("training.data") / "bundled" / "penguins.csv"
    frame = pd.read_csv(str(path)).dropna(subset=["body_mass_g", "sex"]).reset_index(drop=True)
    rng = np.random.default_rng(7)
    for name in NUMBERS:
        frame.loc[rng.random(len(frame)) < 0.05, name] = np.nan
    return frame


def _generated():
    """A generated table: text, boolean and integer factors, numbers with gaps."""
    rng = np.random.default_rng(11)
    n = 400
    frame = pd.DataFrame(
        {
            "x1": rng.normal(10, 3, n),
            "x2": rng.uniform(-5, 50, n),
            "shop": rng.choice(["north", "south", "east", "west"], n),
            "promo": rng.random(n) < 0.4,
            "cyl": rng.choice([4, 6, 8], n),
            "note": rng.choice(["a", "b"], n),  # dropped by the transformer
        }
    )
    frame["y"] = (
        (2 + 0.5 * frame.x1 - 0.1 * frame.x2 + frame.shop.map({"north": 1, "south": -1}).fillna(0))
        + 2 * frame.promo
        + 0.3 * frame.cyl
        + rng.normal(size=n)
    )
    frame.loc[rng.random(n) < 0.08, "x1"] = np.nan
    frame.loc[rng.random(n) < 0.08, "x2"] = np.nan
    return frame


def _penguin_pipeline(config):
    cats = ["species", "island", "sex"]
    if config == "error-first-standard":
        numeric = make_pipeline(SimpleImputer(strategy="mean"), StandardScaler())
        encoder = OneHotEncoder(drop="first", handle_unknown="error", sparse_output=False)
        return ColumnTransformer([("cat", encoder, cats), ("num", numeric, NUMBERS)]), True
    if config == "ignore-first-minmax":
        numeric = make_pipeline(SimpleImputer(strategy="median"), MinMaxScaler())
        encoder = OneHotEncoder(drop="first", handle_unknown="ignore")
        return ColumnTransformer([("cat", encoder, cats), ("num", numeric, NUMBERS)]), True
    # every level coded, no intercept (the columns span the constant), the year passed
    numeric = make_pipeline(SimpleImputer(strategy="constant", fill_value=40.0), RobustScaler())
    encoder = OneHotEncoder(handle_unknown="ignore")
    transformer = ColumnTransformer(
        [("species", encoder, ["species"]), ("num", numeric, NUMBERS[:2])],
        remainder="drop",
    )
    return transformer, False


def _generated_pipeline():
    transformer = ColumnTransformer(
        [
            ("text", OneHotEncoder(drop="first", handle_unknown="ignore"), ["shop"]),
            ("flags", OneHotEncoder(drop="if_binary"), ["promo"]),
            ("ints", OneHotEncoder(drop="first"), ["cyl"]),
            ("x1", make_pipeline(SimpleImputer(strategy="most_frequent"), MaxAbsScaler()), ["x1"]),
            ("x2", SimpleImputer(), ["x2"]),
        ]
    )
    # a scaler after the transformer, on every column
    return Pipeline([("prep", transformer), ("scale", StandardScaler()), ("model", None)])


CASES = [
    ("penguins", "error-first-standard", "float64"),
    ("penguins", "ignore-first-minmax", "float32"),
    ("penguins", "ignore-full-robust", "float64"),
    ("generated", "generated", "float64"),
]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: "-".join(c))
def exported(request, tmp_path_factory):
    table, config, dtype = request.param
    if table == "penguins":
        frame = _penguins()
        transformer, intercept = _penguin_pipeline(config)
        pipe = Pipeline([("prep", transformer), ("model", None)])
        target = "body_mass_g"
    else:
        frame = _generated()
        pipe, intercept, target = _generated_pipeline(), True, "y"
    pipe.set_params(model=LinearRegressionSGD(fit_intercept=intercept))
    X, y = frame.drop(columns=[target]), frame[target]
    pipe.fit(X, y)
    out = export_model(pipe, tmp_path_factory.mktemp(config) / "m", X=X, y=y, dtype=dtype)
    return config, dtype, pipe, X, y, out


def _close(got, expected, dtype):
    expected = np.asarray(expected, dtype=np.float64)
    scale = RTOL[dtype] * np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=RTOL[dtype], atol=scale)


def _ort_feeds(session, frame):
    """model.onnx's own inputs: strings for text and booleans, int64, or floats."""
    feeds = {}
    for node in session.get_inputs():
        column = frame[node.name]
        if node.type == "tensor(string)":
            feeds[node.name] = np.array([str(v) for v in column], dtype=object)
        elif node.type == "tensor(int64)":
            feeds[node.name] = column.to_numpy(dtype=np.int64)
        else:
            dtype = np.float32 if node.type == "tensor(float)" else np.float64
            feeds[node.name] = column.to_numpy(dtype=dtype, na_value=np.nan)
    return feeds


def test_predictor_and_onnxruntime_equal_the_pipelines_predict(exported):
    _, dtype, pipe, X, _, out = exported
    expected = pipe.predict(X)
    assert np.isnan(X[["x1", "x2"] if "x1" in X else NUMBERS].to_numpy()).any()  # gaps filled
    predictor = Predictor.load(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the columns the model does not read
        _close(predictor.predict(X), expected, dtype)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    _close(session.run(None, _ort_feeds(session, X))[0], expected, dtype)
    verification = json.loads((out / "manifest.json").read_text())["verification"]
    assert verification["max_relative_error"]["pipeline"] <= verification["tolerance"]


def test_statistics_are_ols_on_the_pipelines_own_columns(exported):
    config, _, pipe, X, y, out = exported
    manifest = json.loads((out / "manifest.json").read_text())
    Z = pipe[:-1].transform(X)
    Z = Z.toarray() if hasattr(Z, "toarray") else np.asarray(Z, dtype=np.float64)
    intercept = pipe[-1].fit_intercept
    ols = sm.OLS(y.to_numpy(), sm.add_constant(Z) if intercept else Z).fit()
    st = manifest["statistics"]
    np.testing.assert_allclose(st["params"], ols.params, rtol=1e-8)
    np.testing.assert_allclose(st["std_errors"], ols.bse, rtol=1e-8)
    names = list(pipe[:-1].get_feature_names_out())
    assert st["names"] == (["intercept"] if intercept else []) + names
    assert manifest["design"]["intercept"] is intercept
    assert manifest["training"]["data"]["pipeline"][-1] == "LinearRegressionSGD"


def test_the_manifest_records_fills_and_the_unknown_policy(exported):
    config, _, pipe, X, _, out = exported
    design = Predictor.load(out).design
    encoders = [
        (enc, cols) for _, enc, cols in pipe[0].transformers_ if isinstance(enc, OneHotEncoder)
    ]
    for enc, cols in encoders:
        for i, name in enumerate(cols):
            spec = design.input(name)
            assert spec.unknown == ("zero" if enc.handle_unknown == "ignore" else "error")
            assert set(spec.levels) == {str(c) for c in enc.categories_[i]}
    imputers = [
        (step, cols)
        for _, t, cols in pipe[0].transformers_
        for step in (t.steps if isinstance(t, Pipeline) else [(None, t)])
        if isinstance(step[1], SimpleImputer)
    ]
    for (_, imputer), cols in imputers:
        for name, value in zip(cols, imputer.statistics_, strict=True):
            assert design.input(name).fill == value
    assert {i.name for i in design.inputs} < set(X.columns)  # dropped columns are not read


def test_gaps_at_prediction_are_filled_as_the_pipeline_fills_them(exported):
    _, dtype, pipe, X, _, out = exported
    predictor = Predictor.load(out)
    imputed = [i.name for i in predictor.design.inputs if i.fill is not None]
    rows = X.head(12).copy()
    for i, name in enumerate(imputed):
        rows.iloc[i::3, rows.columns.get_loc(name)] = np.nan
    expected = pipe.predict(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the columns the model does not read
        _close(predictor.predict(rows), expected, dtype)
        record = {n: rows.iloc[0][n] for n in predictor.features}
        theirs = pd.DataFrame([{**record, imputed[0]: np.nan}]).reindex(columns=X.columns)
        record[imputed[0]] = None
        assert predictor.predict_one(record) == pytest.approx(pipe.predict(theirs)[0], rel=1e-6)
        ours = predictor.predict(rows, interval="prediction")
        filled = rows.copy()
        for name in imputed:
            filled[name] = filled[name].fillna(predictor.design.input(name).fill)
        theirs = predictor.predict(filled, interval="prediction")
    np.testing.assert_array_equal(ours.lower, theirs.lower)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    _close(session.run(None, _ort_feeds(session, rows))[0], expected, dtype)


def test_unknown_levels_score_as_the_encoder_says(exported):
    config, dtype, pipe, X, _, out = exported
    predictor = Predictor.load(out)
    factor = predictor.design.factors[0]
    rows = X.head(6).copy()[predictor.features]
    rows[factor.name] = rows[factor.name].astype(object)
    rows.iloc[[1, 4], rows.columns.get_loc(factor.name)] = "Emperor"
    if factor.unknown == "error":
        with pytest.raises(
            InputError, match=rf"row 2, column '{factor.name}': the value 'Emperor'"
        ):
            predictor.predict(rows)
        with pytest.raises(ValueError, match="unknown categor"):
            pipe.predict(rows)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scikit-learn's own warning
        expected = pipe.predict(rows)
    with pytest.warns(UnknownLevelWarning, match=rf"row 2, column '{factor.name}'.*'Emperor'"):
        _close(predictor.predict(rows), expected, dtype)
    with pytest.warns(UnknownLevelWarning):
        one = predictor.predict_one(rows.iloc[1].to_dict())
    assert one == pytest.approx(expected[1], rel=1e-6)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    _close(session.run(None, _ort_feeds(session, rows))[0], expected, dtype)


def test_a_gap_in_a_column_without_an_imputer_is_an_input_error(tmp_path):
    frame = _generated().dropna().reset_index(drop=True)
    transformer = ColumnTransformer(
        [("shop", OneHotEncoder(drop="first"), ["shop"]), ("x", "passthrough", ["x1"])],
        remainder="passthrough",  # x2
    )
    pipe = make_pipeline(transformer, LinearRegressionSGD())
    X, y = frame[["shop", "x1", "x2"]], frame["y"]
    pipe.fit(X, y)
    out = export_model(pipe, tmp_path / "m", X=X, y=y, plots=False)
    predictor = Predictor.load(out)
    assert all(spec.fill is None for spec in predictor.design.inputs)
    assert predictor.design.column_names == [
        "shop__shop_north",
        "shop__shop_south",
        "shop__shop_west",
        "x__x1",
        "remainder__x2",
    ]
    np.testing.assert_allclose(predictor.predict(X), pipe.predict(X), rtol=1e-5)
    with pytest.raises(InputError, match=r"row 1, column 'x2': a missing value"):
        predictor.predict_one(shop="north", x1=1.0, x2=None)


def test_from_estimator_gives_the_design_and_the_anova_of_statsmodels():
    smf = pytest.importorskip("statsmodels.formula.api")
    anova_lm = pytest.importorskip("statsmodels.stats.anova").anova_lm
    frame = _penguins()
    transformer, _ = _penguin_pipeline("error-first-standard")
    pipe = make_pipeline(transformer, LinearRegressionSGD())
    X, y = frame.drop(columns=["body_mass_g"]), frame["body_mass_g"]
    pipe.fit(X, y)
    run = TrainingRun.from_estimator(pipe, X, y)
    assert run.features == list(pipe[:-1].get_feature_names_out())
    used = {"species", "island", "sex", *NUMBERS}
    assert run.design.input_names == [c for c in X.columns if c in used]  # the table's order
    imputer = pipe[0].named_transformers_["num"][0]
    assert isinstance(imputer, SimpleImputer)
    filled = X.fillna(dict(zip(NUMBERS, imputer.statistics_, strict=True))).assign(y=y)
    formula = "y ~ C(species) + C(island) + C(sex) + " + " + ".join(NUMBERS)
    theirs = anova_lm(smf.ols(formula, filled).fit(), typ=2)
    ours = {row.term: row for row in run.anova}
    for term, name in zip(["species", "island", "sex", *NUMBERS], theirs.index, strict=False):
        assert ours[term].f == pytest.approx(theirs.loc[name, "F"], rel=1e-8)
        assert ours[term].df == theirs.loc[name, "df"]
    assert run.data["imputed"] == {n: int(X[n].isna().sum()) for n in NUMBERS}
    with pytest.raises(UsageError, match="features= names the columns"):
        TrainingRun.from_estimator(pipe, X, y, features=["a"])


def test_a_pipeline_without_a_column_transformer_reads_every_column(tmp_path):
    frame = _generated()
    X, y = frame[["x1", "x2"]], frame["y"]
    pipe = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LinearRegressionSGD())
    pipe.fit(X, y)
    out = export_model(pipe, tmp_path / "m", X=X, y=y, plots=False)
    predictor = Predictor.load(out)
    assert predictor.features == ["x1", "x2"]
    np.testing.assert_allclose(predictor.predict(X), pipe.predict(X), rtol=1e-5)


def _refused(name, step, columns):
    transformer = ColumnTransformer(
        [("shop", OneHotEncoder(drop="first"), ["shop"]), (name, step, columns)]
    )
    return make_pipeline(transformer, LinearRegressionSGD())


REFUSED = [
    (
        _refused("poly", PolynomialFeatures(2, include_bias=False), ["x1"]),
        r"'poly' is PolynomialFeatures",
    ),
    (_refused("log", FunctionTransformer(np.log1p), ["x2"]), r"'log' is FunctionTransformer"),
    (_refused("ord", OrdinalEncoder(), ["note"]), r"'ord' is OrdinalEncoder"),
    (
        _refused(
            "cat",
            make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(drop="first")),
            ["note"],
        ),
        r"'cat', step 'simpleimputer' is SimpleImputer.*filled with 'a'; only numeric",
    ),
    (
        _refused("num", make_pipeline(StandardScaler(), SimpleImputer()), ["x1"]),
        r"step 'simpleimputer' is SimpleImputer.*must read the raw columns",
    ),
    (_refused("clip", MinMaxScaler(clip=True), ["x1"]), r"'clip' is MinMaxScaler.*clip=True"),
    (_refused("ind", SimpleImputer(add_indicator=True), ["x1"]), r"add_indicator=True"),
    (
        _refused("rare", OneHotEncoder(min_frequency=5, drop="first"), ["note"]),
        r"'rare' is OneHotEncoder.*infrequent categories",
    ),
    (
        make_pipeline(
            ColumnTransformer([("shop", OneHotEncoder(drop="first"), ["shop"])]),
            LinearRegression(),
        ),
        r"ends with LinearRegression, not LinearRegressionSGD",
    ),
]


@pytest.mark.parametrize(("pipe", "match"), REFUSED, ids=lambda v: str(v)[:20])
def test_steps_that_are_not_design_columns_are_refused_naming_them(pipe, match, tmp_path):
    frame = _generated()
    X, y = frame.drop(columns=["y"]), frame["y"]
    X = X.assign(x1=X.x1.fillna(0.0).abs() + 1, x2=X.x2.fillna(0.0).abs())
    if {"num", "ind"} & {name for name, _, _ in pipe[0].transformers}:
        X.loc[::9, "x1"] = np.nan  # something to impute
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(X, y)
    with pytest.raises(UnsupportedModelError, match=match):
        export_model(pipe, tmp_path / "m", X=X, y=y, plots=False)
    assert not (tmp_path / "m").exists()


def test_a_missing_value_learned_as_a_category_is_refused(tmp_path):
    frame = _generated()
    frame.loc[::7, "shop"] = None
    X, y = frame[["shop", "x1"]].fillna({"x1": 0.0}), frame["y"]
    pipe = make_pipeline(
        ColumnTransformer(
            [("shop", OneHotEncoder(drop="first"), ["shop"])], remainder="passthrough"
        ),
        LinearRegressionSGD(),
    ).fit(X, y)
    with pytest.raises(
        UnsupportedModelError, match=r"learned a missing value as a category of column 'shop'"
    ):
        export_model(pipe, tmp_path / "m", X=X, y=y, plots=False)


def test_an_export_that_does_not_predict_as_the_pipeline_is_not_written(tmp_path):
    from training.errors import ExportError

    frame = _generated()
    X, y = frame.drop(columns=["y"]), frame["y"]
    pipe = _generated_pipeline().set_params(model=LinearRegressionSGD()).fit(X, y)
    run = TrainingRun.from_estimator(pipe, X, y)
    own = run.reference
    run.reference = lambda rows: own(rows) * (1 + 1e-4)  # a pipeline that scores otherwise
    with pytest.raises(ExportError, match="the onnx artifact differs from the pipeline's own"):
        export_model(run, tmp_path / "m", plots=False)
    assert not (tmp_path / "m").exists()
