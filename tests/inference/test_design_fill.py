"""inference.design: a numeric input's ``fill`` and a factor's ``unknown: "zero"`` (what an
exported scikit-learn SimpleImputer and OneHotEncoder(handle_unknown="ignore") need):
read and written in the manifest section, old sections unchanged, and applied by
``numeric_values``, ``factor_codes`` and the Predictor's feeds, against values written
out by hand."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from inference.design import Design
from inference.design_inputs import design_feeds, text_feeds
from inference.errors import InputError, ModelLoadError, UnknownLevelWarning

OLD = {
    "formula": None,
    "intercept": True,
    "inputs": [
        {"name": "x", "kind": "numeric"},
        {
            "name": "shop",
            "kind": "factor",
            "type": "str",
            "levels": ["east", "north", "south"],
            "reference": "east",
        },
        {"name": "cyl", "kind": "factor", "type": "int", "levels": ["4", "6"], "reference": "4"},
    ],
    "columns": [
        {"name": "x", "expr": {"op": "col", "input": "x"}},
        {"name": "shop[T.north]", "expr": {"op": "level", "input": "shop", "level": "north"}},
        {"name": "shop[T.south]", "expr": {"op": "level", "input": "shop", "level": "south"}},
        {"name": "cyl[T.6]", "expr": {"op": "level", "input": "cyl", "level": "6"}},
    ],
    "terms": [],
    "missing": "drop",
    "rows_dropped": 0,
}


def _new():
    section = copy.deepcopy(OLD)
    section["inputs"][0]["fill"] = 1.5
    section["inputs"][1]["unknown"] = "zero"
    section["inputs"][2]["unknown"] = "zero"
    return section


def test_old_sections_load_and_are_written_back_unchanged():
    design = Design.from_dict(OLD)
    assert design.input("x").fill is None and design.input("shop").unknown == "error"
    assert json.dumps(design.to_dict(), sort_keys=True) == json.dumps(OLD, sort_keys=True)


def test_fill_and_unknown_round_trip():
    section = _new()
    design = Design.from_dict(json.loads(json.dumps(section)))
    assert design.input("x").fill == 1.5 and design.input("shop").unknown == "zero"
    assert design.to_dict() == section
    assert Design.from_dict(design.to_dict()) == design


@pytest.mark.parametrize(
    ("where", "key", "value", "match"),
    [
        (0, "fill", "1.5", "fill must be a finite number"),
        (0, "fill", True, "fill must be a finite number"),
        (0, "fill", float("nan"), "fill must be a finite number"),
        (1, "unknown", "ignore", r"unknown must be one of \('error', 'zero'\)"),
    ],
)
def test_a_bad_fill_or_policy_is_refused_at_load(where, key, value, match):
    section = _new()
    section["inputs"][where][key] = value
    with pytest.raises(ModelLoadError, match=match):
        Design.from_dict(section)


def test_a_fill_replaces_missing_numbers_and_leaves_the_callers_array_alone():
    design = Design.from_dict(_new())
    given = np.array([1.0, np.nan, 3.0])
    out = design.numeric_values("x", given, np.dtype(np.float64))
    np.testing.assert_array_equal(out, [1.0, 1.5, 3.0])
    assert np.isnan(given[1])  # not written into
    np.testing.assert_array_equal(
        design.numeric_values("x", [None, 2, None], np.dtype(np.float32)), [1.5, 2.0, 1.5]
    )
    with pytest.raises(InputError, match=r"row 2, column 'x': a missing value"):
        Design.from_dict(OLD).numeric_values("x", given, np.dtype(np.float64))
    with pytest.raises(InputError, match=r"row 1, column 'x': .*'abc'.* is not a number"):
        design.numeric_values("x", ["abc"], np.dtype(np.float64))  # text is still refused


def test_an_unknown_value_of_a_zero_factor_has_no_level_and_warns():
    design = Design.from_dict(_new())
    values = ["north", "mars", "east", None, "south", "mars"]
    with pytest.warns(UnknownLevelWarning) as caught:
        codes = design.factor_codes("shop", values, offset=10)
    np.testing.assert_array_equal(codes, [1, 3, 0, 3, 2, 3])
    message = str(caught[0].message)
    assert "row 12, column 'shop': the value 'mars' is not a level" in message
    assert "3 row(s)" in message and "scored as no level" in message
    x = np.ones(6)
    with pytest.warns(UnknownLevelWarning):
        Z = design.matrix({"x": x, "shop": values, "cyl": [4, 6, 5, 4, 6, 6]})
    north = [v == "north" for v in values]
    south = [v == "south" for v in values]
    np.testing.assert_array_equal(Z, np.column_stack([x, north, south, [0, 1, 0, 0, 1, 1]]))
    with pytest.raises(InputError, match="the value 'mars' is not a level"):
        Design.from_dict(OLD).factor_codes("shop", values)


def test_one_value_at_a_time_warns_each_time_and_is_not_cached():
    design = Design.from_dict(_new())
    assert design.level_code("shop", "south") == 2
    for _ in range(2):
        with pytest.warns(UnknownLevelWarning, match="'mars'"):
            assert design.level_code("shop", "mars") == 3


def test_the_predictors_feeds_and_the_graphs_own_inputs():
    design = Design.from_dict(_new())
    X = {"x": [np.nan, 2.0, 3.0], "shop": ["north", "pluto", "east"], "cyl": [4, 6, 10]}
    with pytest.warns(UnknownLevelWarning):
        feeds, n = design_feeds(X, design, np.dtype(np.float32))
    assert n == 3
    np.testing.assert_array_equal(feeds["x"], np.array([1.5, 2.0, 3.0], np.float32))
    np.testing.assert_array_equal(feeds["shop"], [1, 3, 0])
    text = text_feeds(feeds, design)
    assert list(text["shop"]) == ["north", "", "east"]  # "" is never a level
    assert list(text["cyl"]) == [4, 6, 7]  # past the largest level
    with pytest.warns(UnknownLevelWarning):  # and back to the same codes
        np.testing.assert_array_equal(design.factor_codes("cyl", text["cyl"]), [0, 1, 2])
