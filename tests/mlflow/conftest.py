"""MLflow tests: the bundled models (regenerated with their MLflow files), exports of
both dtypes, and a local file tracking store and registry per test."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "exported_models"
MISSING = [m for m in ("mlflow", "pandas", "yaml") if importlib.util.find_spec(m) is None]
#: every MLflow test module carries this mark
needs_mlflow = pytest.mark.skipif(
    bool(MISSING), reason=f"the MLflow tests need {MISSING} (the 'mlflow' extra)"
)


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    """A file tracking store and registry under ``tmp_path``; MLflow's global URIs are
    put back afterwards (``mlflow.set_tracking_uri`` sets a module global and the
    environment variable)."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    uri = (tmp_path / "mlruns").as_uri()
    # mlflow-skinny has no SQL store; its file store refuses to start without this
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    monkeypatch.setattr(registry_utils, "_registry_uri", None)
    return uri
