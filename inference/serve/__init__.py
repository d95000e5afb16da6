"""``linreg serve``: exported models behind the standard inference protocols.

One Starlette application on uvicorn (uvloop, httptools), orjson for JSON:

- the Open Inference Protocol ("V2") REST API, with Triton's binary tensor data
  extension (:mod:`inference.serve.v2`);
- MLflow's scoring protocol, ``/invocations`` (:mod:`inference.serve.mlflow`);
- a plain ``/predict`` with intervals (:mod:`inference.serve.plain`);
- the V2 repository extension (:mod:`inference.serve.control`) over a model
  repository in Triton's layout (:mod:`inference.serve.repository`);
- V2 over gRPC, Triton's ``inference.GRPCInferenceService`` (:mod:`inference.serve.grpc_server`);
- Prometheus metrics, JSON access logs, an OpenAPI document built from each
  model's manifest, docs served offline, a model page at ``/``.

The models are :class:`inference.Predictor` objects, one per version; new and
replaced versions are loaded, verified and swapped in between requests
(:mod:`inference.serve.models`, :mod:`inference.serve.registry`).
This package needs the ``serve`` extra (``pip install 'linreg-onnx[serve]'``); the
rest of :mod:`inference` never imports it.
"""

from __future__ import annotations

from inference.serve.settings import Settings

__all__ = ["Settings", "create_app"]


def create_app(settings: Settings) -> object:
    """The ASGI application for ``settings`` (models are loaded here)."""
    from inference.serve.app import create_app as _create

    return _create(settings)
