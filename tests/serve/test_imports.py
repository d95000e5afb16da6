"""The server is torch-free, and the inference core never imports the server's stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.serve.conftest import BUNDLED, ROOT, needs_serve

pytestmark = [needs_serve, pytest.mark.slow]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_server_builds_where_torch_cannot_be_imported():
    code = f"""
import sys
sys.modules["torch"] = None  # any "import torch" now raises ImportError
sys.modules["training"] = None
from inference.serve.app import create_app
from inference.serve.settings import Settings
server = create_app(Settings(model_dirs=[{str(BUNDLED / "plant_richness_lr")!r}]))
assert server.registry.first().predictor.predict_one(area=1.0) > 0
loaded = [m for m in sys.modules if sys.modules[m] is not None]
assert not any(m.split(".")[0] in ("torch", "training") for m in loaded), loaded
"""
    out = _run(code)
    assert out.returncode == 0, out.stderr


def test_inference_core_does_not_import_the_server_stack():
    code = """
import sys
import inference, linreg.predict
import linreg.serve as cli
heavy = ("starlette", "uvicorn", "orjson", "prometheus_client", "fastapi", "pydantic")
loaded = [m for m in sys.modules if m.split(".")[0] in heavy]
assert not loaded, loaded
"""
    out = _run(code)
    assert out.returncode == 0, out.stderr
