"""inference.design: a model's design read from its manifest section and evaluated in
numpy, against hand-built matrices; bad inputs named by row, column and value."""

from __future__ import annotations

import numpy as np
import pytest

from inference.design import Design
from inference.errors import InputError, ModelLoadError

SECTION = {
    "formula": "y ~ x1 + C(region) + I(x1 ** 2) + np.log(x2) + x1:x2",
    "intercept": True,
    "inputs": [
        {"name": "x1", "kind": "numeric"},
        {"name": "x2", "kind": "numeric"},
        {
            "name": "region",
            "kind": "factor",
            "type": "str",
            "levels": ["east", "north", "south"],
            "reference": "east",
        },
    ],
    "columns": [
        {"name": "x1", "expr": {"op": "col", "input": "x1"}},
        {
            "name": "C(region)[T.north]",
            "expr": {"op": "level", "input": "region", "level": "north"},
        },
        {
            "name": "C(region)[T.south]",
            "expr": {"op": "level", "input": "region", "level": "south"},
        },
        {
            "name": "I(x1 ** 2)",
            "expr": {
                "op": "pow",
                "args": [{"op": "col", "input": "x1"}, {"op": "const", "value": 2}],
            },
        },
        {"name": "np.log(x2)", "expr": {"op": "log", "args": [{"op": "col", "input": "x2"}]}},
        {
            "name": "x1:x2",
            "expr": {
                "op": "mul",
                "args": [{"op": "col", "input": "x1"}, {"op": "col", "input": "x2"}],
            },
        },
    ],
    "terms": [{"name": "x1", "columns": [0]}, {"name": "C(region)", "columns": [1, 2]}],
    "missing": "drop",
    "rows_dropped": 0,
}


def test_round_trip_and_matrix_equal_a_hand_built_one():
    design = Design.from_dict(SECTION)
    assert Design.from_dict(design.to_dict()) == design
    x1, x2 = np.array([1.0, 2.0, 3.0, 0.5]), np.array([2.0, 4.0, 1.0, 8.0])
    region = ["east", "north", "south", "north"]
    Z = design.matrix({"x1": x1, "x2": x2, "region": region})
    expected = np.column_stack([x1, [0, 1, 0, 1], [0, 0, 1, 0], x1**2, np.log(x2), x1 * x2]).astype(
        float
    )
    np.testing.assert_array_equal(Z, expected)


@pytest.mark.parametrize("kind", ["list", "pandas", "categorical", "arrow", "arrow dictionary"])
def test_every_form_of_a_text_column_gives_the_same_codes(kind):
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    design = Design.from_dict(SECTION)
    values = ["south", "east", "north", "south"] * 2000
    forms = {
        "list": lambda: values,
        "pandas": lambda: pd.Series(values, dtype=object),
        "categorical": lambda: pd.Series(values, dtype="category"),
        "arrow": lambda: pa.chunked_array([values[:10], values[10:]]),
        "arrow dictionary": lambda: pa.array(values).dictionary_encode(),
    }
    codes = design.factor_codes("region", forms[kind]())
    np.testing.assert_array_equal(codes, [["east", "north", "south"].index(v) for v in values])


def test_an_unknown_level_is_an_error_naming_row_column_value_and_levels():
    design = Design.from_dict(SECTION)
    with pytest.raises(InputError, match=r"row 3, column 'region': the value 'west' .*'north'"):
        design.factor_codes("region", ["east", "north", "west", "west"])


@pytest.mark.parametrize("gap", [None, float("nan"), ""])
def test_a_missing_level_or_number_is_an_error_naming_row_and_column(gap):
    design = Design.from_dict(SECTION)
    with pytest.raises(InputError, match=r"row 2, column 'region': a missing value"):
        design.factor_codes("region", ["east", gap, "north"])
    if gap != "":
        with pytest.raises(InputError, match=r"row 12, column 'x1': a missing value"):
            design.numeric_values("x1", [1.0, gap], np.dtype(np.float64), offset=10)


def test_boolean_and_integer_factors_compare_as_their_level_strings():
    section = {
        "inputs": [
            {"name": "flag", "kind": "factor", "type": "bool", "levels": ["False", "True"]},
            {"name": "cyl", "kind": "factor", "type": "int", "levels": ["4", "6", "8"]},
        ],
        "columns": [
            {"name": "flag[T.True]", "expr": {"op": "level", "input": "flag", "level": "True"}},
            {"name": "C(cyl)[T.8]", "expr": {"op": "level", "input": "cyl", "level": "8"}},
        ],
    }
    design = Design.from_dict(section)
    Z = design.matrix({"flag": [True, False, np.True_], "cyl": [8, 6.0, "8"]})
    np.testing.assert_array_equal(Z, [[1, 1], [0, 0], [1, 1]])
    with pytest.raises(InputError, match="expected an integer"):
        design.factor_codes("cyl", [6.5])


@pytest.mark.parametrize(
    "broken",
    [
        {"op": "col", "input": "region"},
        {"op": "level", "input": "region", "level": "west"},
        {"op": "pow", "args": [{"op": "col", "input": "x1"}, {"op": "col", "input": "x1"}]},
        {"op": "tan", "args": [{"op": "col", "input": "x1"}]},
        {"op": "const", "value": "2"},
    ],
)
def test_a_malformed_section_is_refused_at_load(broken):
    section = {**SECTION, "columns": [{"name": "bad", "expr": broken}]}
    with pytest.raises(ModelLoadError):
        Design.from_dict(section)


@pytest.mark.parametrize("form", ["frame", "arrow", "dict", "records"])
def test_every_input_form_gives_the_same_feeds(form):
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    from inference.design_inputs import design_feeds

    design = Design.from_dict(SECTION)
    data = {
        "x1": [1.0, 2.5, -1.0],
        "x2": [2.0, 3.0, 4.0],
        "region": ["south", "east", "north"],
        "unused": ["a", "b", "c"],
    }
    forms = {
        "frame": lambda: pd.DataFrame(data),
        "arrow": lambda: pa.table(data),
        "dict": lambda: data,
        "records": lambda: [
            dict(zip(data, row, strict=True)) for row in zip(*data.values(), strict=True)
        ],
    }
    feeds, n = design_feeds(forms[form](), design, np.dtype(np.float32))
    assert n == 3 and set(feeds) == {"x1", "x2", "region"}
    np.testing.assert_array_equal(feeds["x1"], np.float32([1.0, 2.5, -1.0]))
    assert feeds["x1"].dtype == np.float32
    np.testing.assert_array_equal(feeds["region"], [2, 0, 1])


def test_a_missing_column_and_a_pandas_null_are_named():
    pd = pytest.importorskip("pandas")
    from inference.design_inputs import design_feeds

    design = Design.from_dict(SECTION)
    with pytest.raises(InputError, match=r"missing column\(s\) \['x2'\]"):
        design_feeds({"x1": 1.0, "region": "east"}, design, np.dtype(np.float64))
    frame = pd.DataFrame({"x1": pd.array([1.0, None], dtype="Float64"), "x2": [1.0, 2.0]})
    frame["region"] = ["east", "north"]
    with pytest.raises(InputError, match=r"row 2, column 'x1': a missing value"):
        design_feeds(frame, design, np.dtype(np.float64))
