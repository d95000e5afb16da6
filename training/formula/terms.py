"""One factor of a formula's term, as formulaic writes it, turned into a design expression.

The supported subset compiles into ONNX operators (:mod:`training.export.design_graph`):

- a numeric column ``x`` (``col``);
- a text, categorical or boolean column ``g``, or ``C(g)``, ``C(g, Treatment('b'))``,
  ``C(g, contr.treatment('b'))``, ``C(g, levels=[...])``: a factor with treatment coding;
- ``I(...)``, ``np.log``, ``np.exp``, ``np.sqrt`` (also ``log``, ``exp``, ``sqrt``) over
  numeric columns, numbers and ``+ - * /`` and ``**`` with a number as exponent.

Anything else raises :class:`~training.errors.DataError` naming the term.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from training.errors import DataError

__all__ = ["Categorical", "Numeric", "parse_factor"]

_FUNCTIONS = {"log": "log", "exp": "exp", "sqrt": "sqrt"}
_BINARY = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}
_TREATMENT = {"Treatment", "treatment", "contr.treatment"}


@dataclass(frozen=True)
class Numeric:
    """A numeric factor: its expression over numeric columns, and those columns."""

    expr: dict[str, Any]
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Categorical:
    """A factor with treatment coding on ``column``; ``reference`` None: the first level."""

    column: str
    reference: Any = None
    explicit: bool = False  # written C(column), not a bare text column


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _refuse(term: str, why: str) -> DataError:
    return DataError(
        f"formula term {term!r}: {why}. Supported: numeric columns, C(column) or a text "
        "column (treatment coding, C(column, Treatment('level')) for another reference), "
        "interactions (: and *), I() with + - * / and ** by a number, np.log, np.exp, "
        "np.sqrt, and - 1 or + 0 to drop the intercept"
    )


def _literal(node: ast.AST, term: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise _refuse(term, f"{ast.unparse(node)} is not a literal value") from None


def _categorical(call: ast.Call, term: str, is_column: Callable[[str], bool]) -> Categorical:
    if not call.args or not isinstance(call.args[0], ast.Name) or not is_column(call.args[0].id):
        raise _refuse(term, "C() takes a column name first")
    column, reference = call.args[0].id, None
    contrast = call.args[1] if len(call.args) > 1 else None
    for keyword in call.keywords:
        if keyword.arg == "contr" or keyword.arg == "contrasts":
            contrast = keyword.value
        elif keyword.arg == "levels":
            raise _refuse(term, "C(..., levels=...) is not supported; the levels are sorted")
        else:
            raise _refuse(term, f"C() does not take {keyword.arg}=")
    if contrast is not None:
        if not isinstance(contrast, ast.Call) or _dotted(contrast.func) not in _TREATMENT:
            raise _refuse(term, "only treatment coding is supported")
        values = [_literal(a, term) for a in contrast.args] + [
            _literal(k.value, term) for k in contrast.keywords if k.arg in ("reference", "base")
        ]
        reference = values[0] if values else None
    return Categorical(column, reference, explicit=True)


def parse_factor(
    text: str, is_column: Callable[[str], bool], is_text: Callable[[str], bool]
) -> Numeric | Categorical:
    """The factor ``text`` (formulaic's expression of one factor of a term).

    ``is_column(name)``: whether the table has that column; ``is_text(name)``: whether it
    holds text, categories or booleans (a factor without ``C()``).
    """
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise _refuse(text, "it does not parse") from None
    if isinstance(node, ast.Name) and is_column(node.id) and is_text(node.id):
        return Categorical(node.id)
    if isinstance(node, ast.Call) and _dotted(node.func) == "C":
        return _categorical(node, text, is_column)
    if isinstance(node, ast.Call) and _dotted(node.func) == "I":
        if len(node.args) != 1 or node.keywords:
            raise _refuse(text, "I() takes one expression")
        node = node.args[0]
    columns: list[str] = []
    expr = _numeric(node, text, is_column, is_text, columns)
    return Numeric(expr, tuple(dict.fromkeys(columns)))


def _numeric(
    node: ast.AST,
    term: str,
    is_column: Callable[[str], bool],
    is_text: Callable[[str], bool],
    columns: list[str],
) -> dict[str, Any]:
    if isinstance(node, ast.Name):
        if not is_column(node.id):
            raise _refuse(term, f"{node.id!r} is not a column of the table")
        if is_text(node.id):
            raise _refuse(term, f"column {node.id!r} holds text; use it as a factor on its own")
        columns.append(node.id)
        return {"op": "col", "input": node.id}
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):
            raise _refuse(term, "a boolean constant")
        return {"op": "const", "value": node.value}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _numeric(node.operand, term, is_column, is_text, columns)
        return inner if isinstance(node.op, ast.UAdd) else {"op": "neg", "args": [inner]}
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        op = _BINARY[type(node.op)]
        left = _numeric(node.left, term, is_column, is_text, columns)
        right = _numeric(node.right, term, is_column, is_text, columns)
        if op == "pow" and right["op"] != "const":
            raise _refuse(term, "a power's exponent must be a number")
        return {"op": op, "args": [left, right]}
    if isinstance(node, ast.Call) and not node.keywords and len(node.args) == 1:
        name = _dotted(node.func)
        short = name.removeprefix("np.").removeprefix("numpy.")
        if short in _FUNCTIONS and name in (short, f"np.{short}", f"numpy.{short}"):
            inner = _numeric(node.args[0], term, is_column, is_text, columns)
            return {"op": _FUNCTIONS[short], "args": [inner]}
    raise _refuse(term, f"{ast.unparse(node)!r} cannot be compiled into the model's graph")
