"""The model page at ``/``: each model's card and a form predicting one row.

The card shows the target and features, the coefficients with standard errors,
p-values and confidence intervals, R² and the training plots (read from the
model directory when the model was loaded, checked against the manifest). The
form posts one row to ``/models/{name}/predict`` and shows the prediction with
its interval. Everything taken from a manifest is HTML-escaped; the script is a
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
section{border-top:2px solid #333;margin-top:2rem}.result{font-weight:bold;margin-top:.5rem}"""

_SCRIPT = """document.querySelectorAll("form.predict").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var record = {};
    form.querySelectorAll("input[data-feature]").forEach(function (input) {
      record[input.dataset.feature] = Number(input.value);
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


def _card(model: LoadedModel) -> str:
    e = html.escape
    d = model.manifest
    p = model.predictor
    st = d.get("statistics", {})
    names = st.get("names") or ["intercept", *p.features]
    params = st.get("params") or []
    rows = []
    for i, name in enumerate(names):

        def col(key: str, i: int = i) -> Any:
            values = st.get(key) or []
            return values[i] if i < len(values) else None

        ci = col("conf_int") or [None, None]
        rows.append(
            f"<tr><td>{e(str(name))}</td><td>{_num(params[i] if i < len(params) else None)}</td>"
            f"<td>{_num(col('std_errors'))}</td><td>{_num(col('p_values'), 3)}</td>"
            f"<td>[{_num(ci[0])}, {_num(ci[1])}]</td></tr>"
        )
    level = st.get("level", 0.95)
    train = (d.get("metrics") or {}).get("train") or {}
    plots = "".join(
        f'<img alt="{e(f)}" src="/models/{e(model.name)}/plots/{e(f)}">' for f in model.plots
    )
    inputs = "".join(
        f'<label>{e(f)} <input type="number" step="any" required value="1" '
        f'data-feature="{e(f)}" name="f{j}"></label> '
        for j, f in enumerate(p.features)
    )
    return f"""<section id="model-{e(model.name)}">
<h2>{e(model.name)}</h2>
<p>Predicts <b>{e(p.target)}</b> from {e(", ".join(p.features))} ({e(p.dtype.name)}).
Version {e(model.version)}, created {e(str(d.get("created_at", "?")))}.</p>
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
