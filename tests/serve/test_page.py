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
