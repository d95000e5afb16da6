"""The model page at ``/``: each model's card and a form predicting one row.

The card shows the target and features, the coefficients with standard errors,
p-values and confidence intervals, R² and the training plots (read from the
model directory when the model was loaded, checked against the manifest). The
form posts one row to ``/models/{name}/predict`` and shows the prediction with
its interval. A model fitted on raw columns (a design) gets a select of each
factor's levels in its form, and its table groups the parameters of each term
with several (a factor's levels, under a row naming the factor and its reference
level). Everything taken from a manifest is HTML-escaped; the script is a
separate file so the page's Content-Security-Policy allows no inline script.
"""

from __future__ import annotations

import html
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

import inference
from inference.serve.registry import LoadedModel

__all__ = ["render", "routes"]

_CSP = "default-src 'self'; img-src 'self'; style-src 'self' 'unsafe-inline'"

_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}
td,th{padding:.2rem .6rem;text-align:right;border-bottom:1px solid #ddd}
th:first-child,td:first-child{text-align:left}img{max-width:28rem;margin:.5rem}
section{border-top:2px solid #333;margin-top:2rem}.result{font-weight:bold;margin-top:.5rem}
tr.term th{text-align:left;font-weight:600;padding-top:.5rem}
tr.level td:first-child{padding-left:1.5rem}"""

_SCRIPT = """document.querySelectorAll("form.predict").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var record = {};
    form.querySelectorAll("[data-feature]").forEach(function (input) {
      // a factor's level is text; every other field a number
      record[input.dataset.feature] =
        input.dataset.kind === "factor" ? input.value : Number(input.value);
    });
    var body = {inputs: record, interval: form.elements.interval.value,
                level: Number(form.elements.level.value)};
    var out = form.querySelector(".result");
    out.textContent = "…";
    fetch(form.dataset.url, {method: "POST", headers: {"Content-Type": "application/json"},
                             body: JSON.stringify(body)})
      .then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
      .then(function (res) {
        var ok = res[0], j = res[1];
        if (!ok) { out.textContent = "error: " + j.error; return; }
        out.textContent = j.predictions[0].toPrecision(6) + "  [" + j.lower[0].toPrecision(6)
          + ", " + j.upper[0].toPrecision(6) + "] (" + Math.round(j.level * 100) + "% "
          + j.interval + " interval)";
        out.dataset.prediction = j.predictions[0];
        out.dataset.lower = j.lower[0];
        out.dataset.upper = j.upper[0];
      })
      .catch(function (err) { out.textContent = "error: " + err; });
  });
});
"""


def _num(value: Any, digits: int = 6) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:.{digits}g}"
    return "–"


def _row(st: dict[str, Any], i: int, label: str, css: str = "") -> str:
    """The table row of parameter ``i``: coefficient, std. error, p and interval."""

    def col(key: str) -> Any:
        values = st.get(key) or []
        return values[i] if i < len(values) else None

    ci = col("conf_int") or [None, None]
    attr = f' class="{css}"' if css else ""
    return (
        f"<tr{attr}><td>{html.escape(label)}</td><td>{_num(col('params'))}</td>"
        f"<td>{_num(col('std_errors'))}</td><td>{_num(col('p_values'), 3)}</td>"
        f"<td>[{_num(ci[0])}, {_num(ci[1])}]</td></tr>"
    )


def _design_rows(design: Any, st: dict[str, Any], names: list[str]) -> list[str] | None:
    """The rows of a design model's table, a factor's levels grouped under a row naming
    the term (and its reference level); None when the statistics do not match."""
    first = 1 if len(names) == len(design.columns) + 1 else 0
    if len(names) != len(design.columns) + first or not design.terms:
        return None
    rows = [_row(st, 0, str(names[0]))] if first else []
    for term in design.terms:
        columns = [int(j) for j in term.get("columns", [])]
        exprs = [design.columns[j].expr for j in columns]
        factor = next((design.input(x["input"]) for x in exprs if x.get("op") == "level"), None)
        if len(columns) == 1 and factor is None:
            rows.append(_row(st, columns[0] + first, str(names[columns[0] + first])))
            continue
        ref = f" (reference {factor.reference})" if factor is not None and factor.reference else ""
        title = html.escape(f"{term.get('name', '')}{ref}")
        rows.append(f'<tr class="term"><th colspan="5">{title}</th></tr>')
        for j, x in zip(columns, exprs, strict=True):
            label = str(x["level"]) if x.get("op") == "level" else str(names[j + first])
            rows.append(_row(st, j + first, label, "level"))
    return rows


def _field(design: Any, j: int, name: str) -> str:
    """The form's field of input ``name``: a select of a factor's levels, else a number."""
    e = html.escape
    spec = design.input(name) if design is not None else None
    if spec is None or spec.kind != "factor":
        return (
            f'<label>{e(name)} <input type="number" step="any" required value="1" '
            f'data-feature="{e(name)}" name="f{j}"></label> '
        )
    options = "".join(f'<option value="{e(v)}">{e(v)}</option>' for v in spec.levels)
    return (
        f'<label>{e(name)} <select data-feature="{e(name)}" data-kind="factor" '
        f'name="f{j}">{options}</select></label> '
    )


def _design_note(design: Any, st: dict[str, Any]) -> str:
    """What a design model's card adds: its formula, and the rows dropped at training."""
    if design is None:
        return ""
    e = html.escape
    out = f" Formula <code>{e(design.formula)}</code>." if design.formula else ""
    n = st.get("n_samples")
    used = f"{n} rows used, " if isinstance(n, int) else ""
    return f"{out} Fitted on {used}{design.rows_dropped} dropped for a missing value."


def _card(model: LoadedModel) -> str:
    e = html.escape
    d = model.manifest
    p = model.predictor
    st = d.get("statistics", {})
    names = st.get("names") or ["intercept", *p.features]
    rows = _design_rows(p.design, st, names) if p.design is not None else None
    if rows is None:
        rows = [_row(st, i, str(name)) for i, name in enumerate(names)]
    level = st.get("level", 0.95)
    train = (d.get("metrics") or {}).get("train") or {}
    plots = "".join(
        f'<img alt="{e(f)}" src="/models/{e(model.name)}/plots/{e(f)}">' for f in model.plots
    )
    inputs = "".join(_field(p.design, j, f) for j, f in enumerate(p.features))
    note = _design_note(p.design, st)
    return f"""<section id="model-{e(model.name)}">
<h2>{e(model.name)}</h2>
<p>Predicts <b>{e(p.target)}</b> from {e(", ".join(p.features))} ({e(p.dtype.name)}).
Version {e(model.version)}, created {e(str(d.get("created_at", "?")))}.{note}</p>
<p>R² {_num(st.get("r2"))}, adjusted R² {_num(st.get("adj_r2"))}, residual std. error
{_num(st.get("residual_std_error"))}, {e(str(st.get("df_resid", "?")))} residual d.f.,
training MSE {_num(train.get("mse"))}.</p>
<table><tr><th>parameter</th><th>coefficient</th><th>std. error</th><th>p</th>
<th>{_num(level * 100, 3)}% confidence interval</th></tr>{"".join(rows)}</table>
<div>{plots}</div>
<h3>Predict one row</h3>
<form class="predict" data-url="/models/{e(model.name)}/predict">{inputs}
<label>interval <select name="interval"><option value="prediction">prediction</option>
<option value="confidence">confidence</option></select></label>
<label>level <select name="level"><option>0.9</option><option selected>0.95</option>
<option>0.99</option></select></label>
<button type="submit">Predict</button><div class="result" aria-live="polite"></div></form>
</section>"""


def render(models: dict[str, LoadedModel]) -> str:
    cards = "".join(_card(m) for m in models.values())
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>linreg serve</title><style>{_STYLE}</style></head><body>
<h1>linreg serve {html.escape(inference.__version__)}</h1>
<p>Endpoints: <a href="/docs">API docs</a> (<a href="/openapi.json">OpenAPI</a>),
<a href="/metrics">metrics</a>.</p>{cards}
<script src="/assets/page.js"></script></body></html>"""


def routes(server: Any) -> list[Route]:
    async def index(request: Request) -> Response:
        server.note(request, "page")
        return HTMLResponse(
            render(server.registry.models), headers={"Content-Security-Policy": _CSP}
        )

    async def script(request: Request) -> Response:
        server.note(request, "page")
        return Response(_SCRIPT, media_type="text/javascript")

    async def plot(request: Request) -> Response:
        server.note(request, "page")
        model = server.model(request.path_params["name"])
        data = model.plots.get(request.path_params["file"])
        if data is None:
            return Response(b'{"error": "no such plot"}', 404, media_type="application/json")
        return Response(data, media_type="image/png")

    return [
        Route("/", index, methods=["GET"]),
        Route("/assets/page.js", script, methods=["GET"]),
        Route("/models/{name}/plots/{file}", plot, methods=["GET"]),
    ]
