"""What a server is told: models, address, limits, batching, authentication."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Settings", "TOKEN_ENV", "SETTINGS_ENV", "threads_per_worker"]

#: environment variable holding the bearer token (``--token-file`` wins)
TOKEN_ENV = "LINREG_SERVE_TOKEN"
#: how the command line hands its settings to uvicorn's worker processes
SETTINGS_ENV = "LINREG_SERVE_SETTINGS"


def threads_per_worker(workers: int) -> int:
    """Intra-op threads for each worker's session: the CPUs shared among the workers."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cpus or 1) // max(1, workers))


@dataclass
class Settings:
    """Server settings; every field has a command-line flag (``linreg serve --help``).

    Attributes
    ----------
    model_dirs : list of str
        Exported model directories; each is served under its directory name, and
        all are loaded before the server listens.
    model_dir : str or None
        KServe's ``--model-dir`` (``/mnt/models``): an exported model directory
        (served as ``model_name``, or its directory's name) or a model repository.
        Loaded after the server listens: readiness answers 503 until then.
    model_repository : str or None
        A model repository in Triton's layout (:mod:`inference.serve.repository`),
        loaded after the server listens.
    model_name : str or None
        The name of a single ``model_dir`` (default: its directory's name).
    model_control_mode : str
        "poll" (models and versions follow the files every ``reload_interval``
        seconds; load and unload requests are taken too), "explicit" (only load and
        unload requests change them; ``load_models`` at start) or "none" (what
        start-up loads, unchanged).
    load_models : list of str
        With "explicit": the models loaded at start ("*": all).
    grpc_port : int or None
        Also serve the V2 protocol over gRPC on this port (same host).
    host, port : where to listen (127.0.0.1 unless told otherwise).
    workers : int
        Worker processes; each holds its own sessions.
    threads : int or None
        Intra-op threads per session (None: the CPUs divided by ``workers``).
    max_body_bytes, max_rows : int
        Larger requests get 413.
    max_json_bytes : int
        JSON bodies (and the JSON header of a V2 binary request) larger than this
        get 413: parsing JSON costs about 11 times its size in memory and holds the
        interpreter about 25 ms a MiB (docs/serve-security.md).
    body_timeout : float
        Seconds a client may take to send a request body (408 after).
    keepalive_timeout, graceful_timeout : float
        Idle keep-alive connections are closed after the first; on SIGTERM,
        requests in flight get the second to finish.
    limit_concurrency : int or None
        Connections and requests a worker takes at once; past it, 503 (uvicorn's
        ``limit_concurrency``; None: no limit). Bounds the bodies held in memory.
    http : str
        uvicorn's HTTP parser: "auto" (httptools when installed, else h11), "h11"
        or "httptools".
    max_batch_delay_us, max_batch_rows : int
        Micro-batching (:mod:`inference.serve.batching`); a delay of 0 with rows 0
        turns it off.
    reload_interval : float
        Seconds between checks of the model directories and the repository, with
        ``model_control_mode`` "poll" (0: no polling).
    token : str or None
        Bearer token every request but the health checks must carry.
    access_log : bool
        One JSON line per request on stderr.
    trusted_keys : list of str
        PEM public key files: serve only model directories signed by one of them
        (empty: the keys named by ``LINREG_TRUSTED_KEYS``, else no signature check).
    """

    model_dirs: list[str] = field(default_factory=list)
    model_dir: str | None = None
    model_repository: str | None = None
    model_name: str | None = None
    model_control_mode: str = "poll"
    load_models: list[str] = field(default_factory=list)
    grpc_port: int | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int | None = None
    max_body_bytes: int = 64 << 20
    max_json_bytes: int = 16 << 20
    max_rows: int = 1_000_000
    body_timeout: float = 30.0
    keepalive_timeout: float = 5.0
    graceful_timeout: float = 30.0
    limit_concurrency: int | None = None
    http: str = "auto"
    max_batch_delay_us: int = 0
    max_batch_rows: int = 0
    reload_interval: float = 0.25
    token: str | None = None
    access_log: bool = True
    trusted_keys: list[str] = field(default_factory=list)

    @property
    def batching(self) -> bool:
        return self.max_batch_rows > 0 or self.max_batch_delay_us > 0

    def session_threads(self) -> int:
        return self.threads if self.threads else threads_per_worker(self.workers)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        data: dict[str, Any] = json.loads(text)
        return cls(**data)
