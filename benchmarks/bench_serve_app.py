"""The server's own time per request: its ASGI application called in-process, no sockets.

A load test over loopback on a shared two-core machine (``bench_serve.py``) measures
the transport and the load generator as much as the server, and moves by a third
from run to run; calling the application directly measures what a change to the
server costs. For each request kind (single-row JSON ``/predict``, V2 JSON infer and
``/invocations``; a 10,000-row V2 binary infer) this gives the median microseconds
per request, for this tree and, with ``--base ROOT``, for the code at ROOT (for
example ``git worktree add /tmp/base <commit>``), each in its own process, the two
interleaved round by round::

    .venv/bin/python benchmarks/bench_serve_app.py --base /tmp/base --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "exported_models" / "plant_richness_mlr"
ROW = [3.2, 41.5, 120.0]
FEATURES = ["area", "latitude", "dist_mainland"]


def requests_(bulk_rows: int) -> dict[str, tuple[str, list[tuple[bytes, bytes]], bytes]]:
    """Request kinds: (path, headers, body)."""
    import numpy as np

    js = [(b"content-type", b"application/json")]
    v2 = {"inputs": [{"name": "features", "shape": [1, 3], "datatype": "FP32", "data": ROW}]}
    X = np.random.default_rng(0).uniform(0, 50, size=(bulk_rows, 3)).astype("<f4")
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "features",
                    "shape": list(X.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": X.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    binary = [(b"inference-header-content-length", str(len(header)).encode())]
    record = json.dumps(dict(zip(FEATURES, ROW, strict=True))).encode()
    split = json.dumps({"dataframe_split": {"columns": FEATURES, "data": [ROW]}}).encode()
    infer = "/v2/models/plant_richness_mlr/infer"
    return {
        "single-row JSON /predict": ("/predict", js, record),
        "single-row JSON V2 infer": (infer, js, json.dumps(v2).encode()),
        "single-row JSON /invocations": ("/invocations", js, split),
        f"{bulk_rows:,}-row V2 binary infer": (infer, binary, header + X.tobytes()),
    }


def measure(seconds: float, bulk_rows: int) -> dict[str, float]:
    """Median µs per request of each kind, for the ``inference`` this process imports."""
    from inference.serve.app import create_app
    from inference.serve.settings import Settings

    app = create_app(Settings(model_dirs=[str(MODEL)], access_log=False, reload_interval=0))
    out = {}
    for name, (path, headers, body) in requests_(bulk_rows).items():
        chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 2),
        }
        out[name] = asyncio.run(_timed(app, scope, chunks, seconds))
    return out


async def _timed(app, scope, chunks, seconds: float) -> float:  # type: ignore[no-untyped-def]
    statuses = []

    async def once() -> None:
        pending = iter(range(len(chunks)))

        async def receive() -> dict:
            i = next(pending)
            return {"type": "http.request", "body": chunks[i], "more_body": i < len(chunks) - 1}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(dict(scope), receive, send)

    for _ in range(200):  # warm up
        await once()
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter_ns()
        await once()
        times.append(time.perf_counter_ns() - t)
    if set(statuses) != {200}:
        raise SystemExit(f"{scope['path']}: the application answered {set(statuses)}")
    return statistics.median(times) / 1000


def _child(root: Path, seconds: float, bulk_rows: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); "
        "from bench_serve_app import measure; "
        "print(json.dumps(measure(float(sys.argv[2]), int(sys.argv[3]))))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "benchmarks"), str(seconds), str(bulk_rows)],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", type=Path, default=None, help="source tree of the reference")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0, help="per request kind and round")
    ap.add_argument("--bulk-rows", type=int, default=10_000)
    args = ap.parse_args()
    trees = {"this tree": ROOT, **({"base": args.base.resolve()} if args.base else {})}
    results: dict[str, dict[str, list[float]]] = {t: {} for t in trees}
    loads = []
    for r in range(args.rounds):
        for tree in list(trees)[r % len(trees) :] + list(trees)[: r % len(trees)]:
            for name, us in _child(trees[tree], args.seconds, args.bulk_rows).items():
                results[tree].setdefault(name, []).append(us)
        loads.append(os.getloadavg()[0])
    kinds = list(results["this tree"])
    print(
        f"median µs per request over {args.rounds} rounds (load avg {statistics.mean(loads):.1f})"
    )
    print("| request | this tree µs | " + ("base µs | this / base |" if args.base else ""))
    print("|---|---:|" + ("---:|---:|" if args.base else ""))
    for kind in kinds:
        ours = statistics.median(results["this tree"][kind])
        line = f"| {kind} | {ours:.1f} |"
        if args.base:
            base = statistics.median(results["base"][kind])
            line += f" {base:.1f} | {ours / base:.2f} |"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
