"""``linreg serve MODEL_DIR [MODEL_DIR ...]`` (or ``--model-repository DIR``, or
``--model-dir DIR``): the command line of the model server."""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path
from typing import Any

from inference.errors import ModelLoadError
from inference.serve.settings import SETTINGS_ENV, TOKEN_ENV, Settings
from linreg.common import fail, require, usage

__all__ = ["PORT_ENV", "register", "run", "settings_from_args"]

#: the port a platform assigns (KServe, Knative, Cloud Run); --port wins
PORT_ENV = "PORT"

DESCRIPTION = """Serve exported models over HTTP: the Open Inference Protocol (V2 REST,
with Triton's binary tensor data and the model repository extension), MLflow's
/invocations, and /predict with intervals; V2 over gRPC with --grpc-port; Prometheus
/metrics, OpenAPI at /openapi.json, docs at /docs, a model page at /. Serves the
model directories given (each under its directory name), or a model repository in
Triton's layout (--model-repository DIR: DIR/NAME/VERSION/), or KServe's --model-dir
(one model or a repository). A replaced model directory or a new version is verified
and swapped in without a restart. Needs the 'serve' extra. Exit status: 0 stopped, 1
a model that cannot be loaded, a missing directory or extra, or a port that cannot be
bound, 2 usage error."""


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a number >= 0")
        return value

    return parse


def register(subparsers: Any) -> None:
    """Add ``serve`` to ``linreg``'s subcommands."""
    d = Settings()
    p = subparsers.add_parser("serve", help="serve models over HTTP", description=DESCRIPTION)
    p.add_argument(
        "model_dirs",
        nargs="*",
        metavar="MODEL_DIR",
        help="exported model directories, loaded before the server listens",
    )
    p.add_argument("--host", default=d.host, help=f"address to bind (default: {d.host})")
    p.add_argument(
        "--port",
        type=_positive(int),
        default=None,
        help=f"HTTP port (default: ${PORT_ENV} if set, else {d.port})",
    )
    p.add_argument(
        "--grpc-port",
        type=_positive(int),
        default=None,
        help="also serve V2 over gRPC (inference.GRPCInferenceService) on this port "
        "(default: no gRPC)",
    )
    p.add_argument(
        "--workers",
        type=_positive(int),
        default=d.workers,
        help=f"worker processes, each with its own sessions (default: {d.workers})",
    )
    p.add_argument(
        "--threads",
        type=_positive(int),
        default=None,
        help="intra-op threads per session (default: the CPUs divided among the workers)",
    )
    p.add_argument(
        "--http",
        choices=("auto", "h11", "httptools"),
        default=d.http,
        help="uvicorn's HTTP parser: auto is httptools when installed, else h11 (default: auto)",
    )
    _add_repository(p, d)
    _add_limits(p, d)
    _add_operations(p, d)
    p.set_defaults(func=run)


def _add_repository(p: argparse.ArgumentParser, d: Settings) -> None:
    """Where the models are, and how they change while serving."""
    p.add_argument(
        "--model-repository",
        metavar="DIR",
        default=None,
        help="a model repository in Triton's layout: DIR/NAME/VERSION/ (an integer) is "
        "an exported model directory; DIR/NAME/config.json may hold a version_policy "
        "(default: none; loaded after the server listens)",
    )
    p.add_argument(
        "--model-dir",
        metavar="DIR",
        default=None,
        help="KServe's model directory (/mnt/models): an exported model directory or a "
        "model repository (default: none; loaded after the server listens)",
    )
    p.add_argument(
        "--model-name",
        default=None,
        help="the name of a single --model-dir model (default: its directory's name)",
    )
    p.add_argument(
        "--model-control-mode",
        choices=("poll", "explicit", "none"),
        default=d.model_control_mode,
        help="poll: models and versions follow the files every --reload-interval, and "
        "load/unload requests are taken; explicit: only load/unload requests change them; "
        f"none: what start-up loaded (default: {d.model_control_mode})",
    )
    p.add_argument(
        "--load-model",
        metavar="NAME",
        action="append",
        default=None,
        help="with --model-control-mode explicit: load this model at start; repeat for "
        "more, '*' for all (default: none)",
    )


def _add_limits(p: argparse.ArgumentParser, d: Settings) -> None:
    """Request size limits and timeouts."""
    p.add_argument(
        "--max-body-bytes",
        type=_positive(int),
        default=d.max_body_bytes,
        help=f"larger bodies get 413 (default: {d.max_body_bytes})",
    )
    p.add_argument(
        "--max-json-bytes",
        type=_positive(int),
        default=d.max_json_bytes,
        help="larger JSON bodies (and V2 JSON headers) get 413; parsing JSON costs about "
        f"11 times its size in memory (default: {d.max_json_bytes})",
    )
    p.add_argument(
        "--max-rows",
        type=_positive(int),
        default=d.max_rows,
        help=f"requests with more rows get 413 (default: {d.max_rows})",
    )
    p.add_argument(
        "--body-timeout",
        type=_positive(float),
        default=d.body_timeout,
        help=f"seconds a client may take to send its body; 408 after (default: {d.body_timeout:g})",
    )
    p.add_argument(
        "--keepalive-timeout",
        type=_positive(float),
        default=d.keepalive_timeout,
        help="seconds after which idle keep-alive connections close "
        f"(default: {d.keepalive_timeout:g})",
    )
    p.add_argument(
        "--limit-concurrency",
        type=_positive(int),
        default=None,
        help="connections and requests a worker takes at once; 503 past it (default: "
        "no limit). With --max-body-bytes, bounds the memory request bodies take",
    )
    p.add_argument(
        "--graceful-timeout",
        type=_positive(float),
        default=d.graceful_timeout,
        help="on SIGTERM, seconds in-flight requests get to finish "
        f"(default: {d.graceful_timeout:g})",
    )


def _add_operations(p: argparse.ArgumentParser, d: Settings) -> None:
    """Micro-batching, hot reload, authentication and logging."""
    p.add_argument(
        "--max-batch-delay-us",
        type=_positive(int),
        default=d.max_batch_delay_us,
        help="micro-batching: longest wait for more requests when others are in "
        f"flight; never waits when the server is idle (default: {d.max_batch_delay_us})",
    )
    p.add_argument(
        "--max-batch-rows",
        type=_positive(int),
        default=d.max_batch_rows,
        help="micro-batching: run a batch once it holds this many rows (default: "
        f"{d.max_batch_rows}, micro-batching off unless a delay is given; then 1024)",
    )
    p.add_argument(
        "--reload-interval",
        type=_positive(float),
        default=d.reload_interval,
        help="seconds between checks for replaced model directories and repository "
        f"changes (poll mode); 0: no polling (default: {d.reload_interval:g})",
    )
    p.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help=f"require 'Authorization: Bearer TOKEN' (TOKEN from this file, or from "
        f"${TOKEN_ENV}); health checks stay open (default: ${TOKEN_ENV} if set, else no "
        "authentication)",
    )
    p.add_argument(
        "--trusted-key",
        dest="trusted_keys",
        metavar="PEM",
        action="append",
        default=[],
        help="serve and hot-reload only model directories signed by this public key "
        "(repeat for several) (default: the files in $LINREG_TRUSTED_KEYS)",
    )
    p.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="no JSON access log line per request (default: one line per request)",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    token = None
    if args.token_file is not None:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise fail(
                "serve", f"{args.token_file}: cannot read the token ({exc.strerror})"
            ) from exc
        if not token:
            raise fail("serve", f"{args.token_file}: the token file is empty")
    else:
        token = os.environ.get(TOKEN_ENV) or None
    if args.workers < 1:
        raise usage("serve", f"--workers {args.workers}: expected 1 or more")
    _check_sources(args)
    return Settings(
        model_dirs=[str(d) for d in args.model_dirs],
        model_dir=args.model_dir,
        model_repository=args.model_repository,
        model_name=args.model_name,
        model_control_mode=args.model_control_mode,
        load_models=list(args.load_model or []),
        grpc_port=args.grpc_port,
        host=args.host,
        port=_port(args.port),
        workers=args.workers,
        threads=args.threads or None,
        max_body_bytes=args.max_body_bytes,
        max_json_bytes=args.max_json_bytes,
        max_rows=args.max_rows,
        body_timeout=args.body_timeout,
        keepalive_timeout=args.keepalive_timeout,
        graceful_timeout=args.graceful_timeout,
        limit_concurrency=args.limit_concurrency or None,
        http=args.http,
        max_batch_delay_us=args.max_batch_delay_us,
        max_batch_rows=args.max_batch_rows,
        reload_interval=args.reload_interval,
        token=token,
        access_log=args.access_log,
        trusted_keys=[str(Path(k).absolute()) for k in args.trusted_keys],
    )


def _check_sources(args: argparse.Namespace) -> None:
    """Exactly one source of models; the options that need another (usage errors)."""
    given = [
        flag
        for flag, value in (
            ("MODEL_DIR", args.model_dirs),
            ("--model-repository", args.model_repository),
            ("--model-dir", args.model_dir),
        )
        if value
    ]
    if len(given) != 1:
        raise usage(
            "serve",
            "give the models as MODEL_DIR arguments, --model-repository DIR or --model-dir DIR"
            + (f" (one of them, not {' and '.join(given)})" if given else ""),
        )
    explicit = args.model_control_mode == "explicit"
    require(
        "serve",
        args,
        [
            (("model_name",), "--model-dir", args.model_dir is not None),
            (("load_model",), "--model-control-mode explicit", explicit),
        ],
    )
    if explicit and args.workers > 1:
        raise usage(
            "serve",
            "--model-control-mode explicit needs --workers 1 (a load or unload request "
            "reaches one worker process)",
        )
    if args.grpc_port is not None and args.grpc_port == _port(args.port):
        raise usage("serve", f"--grpc-port {args.grpc_port} is the HTTP port too")


def _port(given: int | None) -> int:
    """--port, else $PORT, else the default."""
    if given is not None:
        return given
    text = os.environ.get(PORT_ENV, "").strip()
    if not text:
        return Settings().port
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise usage("serve", f"${PORT_ENV} is {text!r}; expected a port number (1-65535)")
    return int(text)


def _check_paths(settings: Settings) -> None:
    """A missing --model-repository or --model-dir fails before the server listens."""
    for flag, path in (
        ("--model-repository", settings.model_repository),
        ("--model-dir", settings.model_dir),
    ):
        if path is not None and not Path(path).is_dir():
            raise fail("serve", f"{flag} {path}: no such directory")


def _parser(http: str) -> str:
    if http == "auto":
        return "httptools" if importlib.util.find_spec("httptools") else "h11"
    if importlib.util.find_spec(http) is None:
        raise usage("serve", f"--http {http}: the package {http!r} is not installed")
    return http


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)  # usage errors first (exit 2)
    missing = [
        m
        for m in ("uvicorn", "starlette", "orjson", "prometheus_client")
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise fail(
            "serve", f"this command needs {', '.join(missing)}: pip install 'linreg-onnx[serve]'"
        )
    import uvicorn

    from inference.serve.app import create_app
    from inference.serve.logs import configure_logging

    http = _parser(settings.http)
    _check_paths(settings)
    if settings.grpc_port is not None and importlib.util.find_spec("grpc") is None:
        raise fail("serve", "--grpc-port needs grpcio: pip install 'linreg-onnx[serve]'")
    configure_logging()
    try:
        app = create_app(settings)  # model directories given: loaded (verified) before binding
    except ModelLoadError as exc:
        raise fail("serve", exc) from exc
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "http": http,
        "lifespan": "on",
        "access_log": False,  # ours is JSON (inference.serve.logs)
        "log_config": None,
        "server_header": False,
        "timeout_keep_alive": settings.keepalive_timeout,
        "timeout_graceful_shutdown": settings.graceful_timeout,
        "limit_concurrency": settings.limit_concurrency,
    }
    if settings.workers == 1:
        server = uvicorn.Server(uvicorn.Config(app, **options))
        try:
            server.run()
        except SystemExit as exc:  # uvicorn's exit 3: a port in use, a failed start-up
            if exc.code in (0, None):
                raise
            raise fail("serve", "the server did not start (its log above says why)") from None
        if not server.started:
            raise fail("serve", "the server did not start (its log above says why)")
        return 0
    del app
    public = Settings(**{**settings.__dict__, "token": None})
    os.environ[SETTINGS_ENV] = public.to_json()
    if settings.token:
        os.environ[TOKEN_ENV] = settings.token
    uvicorn.run(
        "inference.serve.app:from_environment", factory=True, workers=settings.workers, **options
    )
    return 0
