"""The model page and the docs page in a real headless Chromium (Debian's package).

Playwright drives ``/usr/bin/chromium`` through ``executable_path`` (no browser
download). The browser is denied every request that is not to the server, so a
page that needed a CDN would fail here.
"""

from __future__ import annotations

import os

import pytest

from inference import Predictor
from tests.serve.conftest import needs_serve

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    needs_serve,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason=f"no {CHROMIUM} (apt-get install chromium); the browser test needs it",
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (serve-test)")

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


def _offline_page(browser, server):
    page = browser.new_page()
    outside: list[str] = []

    def route(r):
        if r.request.url.startswith(server.url):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, outside, errors


def test_model_page_predicts_one_row(browser, server, model_copies):
    page, outside, errors = _offline_page(browser, server)
    try:
        page.goto(server.url + "/", timeout=30_000)
        card = page.locator("#model-plant_richness_mlr")
        assert "dist_mainland" in card.inner_text()
        assert "R²" in card.inner_text()
        # the training plots loaded (an image that failed has naturalWidth 0)
        widths = card.locator("img").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
        assert widths and all(w > 0 for w in widths)
        values = {"area": 2.5, "latitude": 40.0, "dist_mainland": 100.0}
        for name, value in values.items():
            card.locator(f'input[data-feature="{name}"]').fill(str(value))
        card.locator('select[name="interval"]').select_option("prediction")
        card.locator('select[name="level"]').select_option("0.9")
        card.locator('button[type="submit"]').click()
        result = card.locator(".result")
        result.locator("xpath=self::*[@data-prediction]").wait_for(timeout=30_000)
        got = {
            k: float(result.get_attribute(f"data-{k}")) for k in ("prediction", "lower", "upper")
        }
        expected = Predictor.load(model_copies / "plant_richness_mlr").predict(
            [values], interval="prediction", level=0.9
        )
        assert got["prediction"] == pytest.approx(float(expected.prediction[0]), rel=1e-6)
        assert got["lower"] == pytest.approx(float(expected.lower[0]), rel=1e-9)
        assert got["upper"] == pytest.approx(float(expected.upper[0]), rel=1e-9)
        assert "90% prediction interval" in result.inner_text()
        assert not outside and not errors
    finally:
        page.close()


def test_docs_page_works_offline(browser, server):
    page, outside, errors = _offline_page(browser, server)
    try:
        page.goto(server.url + "/docs", timeout=30_000)
        page.locator(".opblock").first.wait_for(timeout=30_000)
        text = page.locator("#swagger-ui").inner_text()
        assert "/v2/models/plant_richness_mlr/infer" in text
        assert "/invocations" in text
        assert not outside and not errors
    finally:
        page.close()


@pytest.fixture(scope="module")
def penguins(tmp_path_factory):
    """A server of the bundled penguins model (text factors species, island, sex)."""
    import shutil

    from tests.serve.conftest import BUNDLED, ServerProcess

    root = tmp_path_factory.mktemp("penguins")
    shutil.copytree(BUNDLED / "penguins", root / "penguins")
    proc = ServerProcess([str(root / "penguins")], log=root / "server.log")
    yield proc, root / "penguins"
    proc.stop(timeout=15)


def test_model_page_of_a_design_model_selects_levels_and_groups_them(browser, penguins):
    server, path = penguins
    page, outside, errors = _offline_page(browser, server)
    try:
        page.goto(server.url + "/", timeout=30_000)
        card = page.locator("#model-penguins")
        predictor = Predictor.load(path)
        # one select per factor, holding its levels; the numbers stay number inputs
        for spec in predictor.design.inputs:
            field = card.locator(f'[data-feature="{spec.name}"]')
            tag = field.evaluate("e => e.tagName")
            if spec.kind == "factor":
                assert tag == "SELECT"
                assert field.locator("option").all_inner_texts() == list(spec.levels)
            else:
                assert tag == "INPUT" and field.get_attribute("type") == "number"
        # the coefficient table: each factor's levels under a row naming it
        terms = card.locator("tr.term").all_inner_texts()
        assert [t.strip() for t in terms] == [
            "species (reference Adelie)",
            "island (reference Biscoe)",
            "sex (reference female)",
        ]
        levels = [t.split("\t")[0].strip() for t in card.locator("tr.level").all_inner_texts()]
        assert levels == ["Chinstrap", "Gentoo", "Dream", "Torgersen", "male"]
        values = {
            "species": "Gentoo",
            "island": "Dream",
            "bill_length_mm": 47.5,
            "bill_depth_mm": 15.0,
            "flipper_length_mm": 215.0,
            "sex": "female",
        }
        for name, value in values.items():
            field = card.locator(f'[data-feature="{name}"]')
            if isinstance(value, str):
                field.select_option(value)
            else:
                field.fill(str(value))
        card.locator('select[name="interval"]').select_option("confidence")
        card.locator('button[type="submit"]').click()
        result = card.locator(".result")
        result.locator("xpath=self::*[@data-prediction]").wait_for(timeout=30_000)
        expected = predictor.predict([values], interval="confidence", level=0.95)
        got = float(result.get_attribute("data-prediction"))
        assert got == pytest.approx(float(expected.prediction[0]), rel=1e-6)
        assert float(result.get_attribute("data-lower")) == pytest.approx(
            float(expected.lower[0]), rel=1e-9
        )
        assert not outside and not errors
    finally:
        page.close()
