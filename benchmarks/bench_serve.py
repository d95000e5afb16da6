"""``linreg serve`` under load, beside the FastAPI app users write by hand.

Run (wrk is the load generator: ``apt-get install wrk``; the server needs the
``serve`` extra, the references ``serve-test``)::

    .venv/bin/python benchmarks/bench_serve.py --duration 5 --rounds 2

Servers, each its own process on 127.0.0.1, one worker, the same model
(``exported_models/plant_richness_mlr``, three features, float32):

- ``reference (FastAPI)``: what users write today: a FastAPI app, a pydantic model
  of the row, ``async def`` calling ``InferenceSession.run`` on a (1, k) array per
  request, uvicorn's defaults (uvloop and httptools when installed, access log on);
- ``reference (Starlette)``: the same handler on Starlette with orjson, without
  pydantic: what FastAPI's layer costs (this is how the server's stack was chosen);
- ``linreg serve``: defaults (JSON access log on, micro-batching off);
- ``linreg serve (no access log)``;
- ``linreg serve (micro-batching)`` (``--max-batch-delay-us 500 --max-batch-rows 256``);
- ``linreg serve (micro-batching, no delay)`` (``--max-batch-rows 256``: merges only
  the requests parsed in the same turn of the event loop);
- ``linreg serve + gRPC`` (``--grpc-port``): the same server with V2 over gRPC too,
  loaded over HTTP and over gRPC in turn, so the two protocols are compared on one
  process (gRPC load: ``h2load`` from ``apt-get install nghttp2-client``, see
  ``benchmarks/grpc_load.py``);
- with ``--base ROOT``, ``base: linreg serve`` and ``base: linreg serve (no access
  log)``: the code checked out at ROOT (for example ``git worktree add /tmp/serve-base
  <commit>``), run by this interpreter with ``PYTHONPATH=ROOT``, so a change is timed
  against the previous commit in the same run; and, for both trees, the time of a
  one-row ``POST /predict`` through the ASGI application in a fresh process without
  sockets (the server's own cost, which wrk's figures bury under the load of a
  shared machine).

Load: ``wrk`` with one thread (the generator shares the two cores, so it must be
cheap), a Lua script posting the body; single-row JSON requests to ``/predict`` at
concurrency 1, 16 and 64 (req/s, and wrk's p50/p90/p99 latency), and 10,000-row
V2 binary requests (``Inference-Header-Content-Length``) at concurrency 2 (rows/s),
beside ``Predictor.predict`` in this process on the same 10,000 rows, and beside
the server's ASGI application called in this process without sockets (what the
server itself costs, apart from the transport). On ``linreg serve + gRPC`` the same
loads go over gRPC too: single-row ModelInfer calls (raw FP32 contents) with 1, 16 and
64 calls in flight on one connection, and 10,000-row calls with 2 in flight. Each round
runs every (server, load) pair once, servers in an order rotated from round to
round; the tables give medians over rounds and the load average seen. Before
timing, each server's answer is checked against the Predictor, and any non-2xx
answer or socket error during a run is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "exported_models" / "plant_richness_mlr"
ROW = {"area": 3.2, "latitude": 41.5, "dist_mainland": 120.0}
BULK_ROWS = 10_000  # the default of --bulk-rows
GRPC_PORT = "{grpc_port}"  # replaced by a free port

LUA = r"""
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = os.getenv("BENCH_CTYPE")
local h = os.getenv("BENCH_HLEN")
if h ~= nil and h ~= "" then wrk.headers["Inference-Header-Content-Length"] = h end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "socket_errors": %d, "non2xx": %d, '
    .. '"p50_us": %d, "p90_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""

REFERENCE_FASTAPI = """
import sys
import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI
from pydantic import create_model

model_dir, port = sys.argv[1], int(sys.argv[2])
import json
features = json.load(open(f"{model_dir}/manifest.json"))["features"]
session = ort.InferenceSession(f"{model_dir}/model.onnx", providers=["CPUExecutionProvider"])
Row = create_model("Row", **{f: (float, ...) for f in features})
app = FastAPI()

@app.post("/predict")
async def predict(row: Row):
    x = np.array([[getattr(row, f) for f in features]], dtype=np.float32)
    y = session.run(None, {"features": x})[0]
    return {"prediction": float(y[0])}

uvicorn.run(app, host="127.0.0.1", port=port)
"""

REFERENCE_STARLETTE = """
import sys, json
import numpy as np
import onnxruntime as ort
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

model_dir, port = sys.argv[1], int(sys.argv[2])
features = json.load(open(f"{model_dir}/manifest.json"))["features"]
session = ort.InferenceSession(f"{model_dir}/model.onnx", providers=["CPUExecutionProvider"])

async def predict(request):
    row = orjson.loads(await request.body())
    x = np.array([[float(row[f]) for f in features]], dtype=np.float32)
    y = session.run(None, {"features": x})[0]
    return Response(orjson.dumps({"prediction": float(y[0])}), media_type="application/json")

app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=port)
"""

SERVERS = {
    "reference (FastAPI)": ("script", REFERENCE_FASTAPI),
    "reference (Starlette)": ("script", REFERENCE_STARLETTE),
    "linreg serve": ("serve", []),
    "linreg serve (no access log)": ("serve", ["--no-access-log"]),
    "linreg serve (micro-batching)": (
        "serve",
        ["--max-batch-delay-us", "500", "--max-batch-rows", "256"],
    ),
    "linreg serve (micro-batching, no delay)": ("serve", ["--max-batch-rows", "256"]),
    "linreg serve + gRPC": ("serve", ["--grpc-port", GRPC_PORT]),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BASE_PREFIX = "base: "


class Server:
    def __init__(self, name: str, log_dir: Path, base: Path | None = None) -> None:
        root = ROOT
        if name.startswith(BASE_PREFIX):
            if base is None:
                raise SystemExit(f"{name!r} needs --base ROOT")
            name, root = name[len(BASE_PREFIX) :], base
        kind, spec = SERVERS[name]
        self.name = name
        self.port = free_port()
        self.grpc_port = free_port() if GRPC_PORT in spec else None
        spec = [str(self.grpc_port) if a == GRPC_PORT else a for a in spec]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_dir / f"{len(os.listdir(log_dir))}.log", "wb")  # noqa: SIM115
        if kind == "script":
            cmd = [sys.executable, "-c", spec, str(MODEL), str(self.port)]
        else:
            cmd = [sys.executable, "-m", "linreg", "serve", str(MODEL), "--port", str(self.port)]
            cmd += list(spec)
        self.proc = subprocess.Popen(
            cmd,
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode}")
            try:
                self.post("/predict", json.dumps(ROW).encode(), "application/json")
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{name} did not start within 60 s")

    def post(self, path: str, body: bytes, ctype: str, headers: dict | None = None) -> bytes:
        req = urllib.request.Request(
            self.url + path, data=body, headers={"Content-Type": ctype, **(headers or {})}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return bytes(r.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


def wrk(url: str, body: Path, ctype: str, conns: int, seconds: float, hlen: str = "") -> dict:
    env = {**os.environ, "BENCH_BODY": str(body), "BENCH_CTYPE": ctype, "BENCH_HLEN": hlen}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{conns}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                f.name,
                url,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=seconds + 60,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["load"] = os.getloadavg()[0]
    return result


def check_answers(servers: dict[str, Server], bulk_body: bytes, hlen: int) -> None:
    """Every server's single-row answer, and linreg serve's bulk answer (over HTTP, and
    gRPC where it has it), equal the Predictor's."""
    from grpc_load import check_grpc

    from inference import Predictor

    p = Predictor.load(MODEL)
    expected = p.predict_one(ROW)
    for name, s in servers.items():
        answer = json.loads(s.post("/predict", json.dumps(ROW).encode(), "application/json"))
        got = answer.get("prediction", (answer.get("predictions") or [None])[0])
        if not np.isclose(got, expected, rtol=1e-6):
            raise SystemExit(f"{name}: answered {got}, the Predictor {expected}")
    X = bulk_matrix()
    for name, s in servers.items():
        if not name.removeprefix(BASE_PREFIX).startswith("linreg"):
            continue
        raw = s.post(
            "/v2/models/plant_richness_mlr/infer",
            bulk_body,
            "application/octet-stream",
            {"Inference-Header-Content-Length": str(hlen)},
        )
        # the answer's header length is in a response header; parse its JSON prefix
        header_end = raw.index(b"}]}") + 3
        y = np.frombuffer(raw[header_end:], dtype="<f4")
        if not np.array_equal(y, p.predict(X)):
            raise SystemExit(f"{name}: the bulk answer differs from the Predictor's")
        if s.grpc_port is not None:
            address = f"127.0.0.1:{s.grpc_port}"
            one = np.array([list(ROW.values())], dtype=np.float32)
            check_grpc(address, one, MODEL.name, p.predict(one))
            check_grpc(address, X, MODEL.name, p.predict(X))


def bulk_matrix(rows: int = BULK_ROWS) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 100, size=(rows, 3)).astype(np.float32)


def bulk_request(rows: int = BULK_ROWS) -> tuple[bytes, int]:
    X = bulk_matrix(rows)
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
            "outputs": [{"name": "prediction", "parameters": {"binary_data": True}}],
        }
    ).encode()
    return header + X.tobytes(), len(header)


def in_process_rows_per_s(rows: int, seconds: float = 2.0) -> float:
    """Median rows/s of ``Predictor.predict`` on the bulk rows, in this process."""
    from inference import Predictor

    p = Predictor.load(MODEL)
    X = bulk_matrix(rows)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t = time.perf_counter()
        p.predict(X)
        times.append(time.perf_counter() - t)
    return rows / statistics.median(times)


def app_rows_per_s(rows: int, seconds: float = 2.0) -> float:
    """Median rows/s of the server's ASGI application called in this process on the
    bulk request (delivered in 64 kB body messages, as uvicorn does), no sockets."""
    import asyncio

    from inference.serve.app import create_app
    from inference.serve.settings import Settings

    app = create_app(Settings(model_dirs=[str(MODEL)], access_log=False, reload_interval=0))
    body, hlen = bulk_request(rows)
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v2/models/plant_richness_mlr/infer",
        "raw_path": b"/v2/models/plant_richness_mlr/infer",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"inference-header-content-length", str(hlen).encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    statuses: list[int] = []

    async def once() -> None:
        pending = iter(range(len(chunks)))

        async def receive() -> dict:
            i = next(pending)
            return {"type": "http.request", "body": chunks[i], "more_body": i < len(chunks) - 1}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(dict(scope), receive, send)

    async def timed() -> list[float]:
        times = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end or len(times) < 5:
            t = time.perf_counter()
            await once()
            times.append(time.perf_counter() - t)
        return times

    times = asyncio.run(timed())
    if set(statuses) != {200}:
        raise SystemExit(f"the in-process application answered {set(statuses)}")
    return rows / statistics.median(times)


APP_ONE_ROW = r"""
import asyncio, json, os, sys, time
from inference.serve.app import create_app
from inference.serve.settings import Settings

model, access, batches = sys.argv[1], sys.argv[2] == "log", int(sys.argv[3])
app = create_app(Settings(model_dirs=[model], access_log=access, reload_interval=0))
if access:
    app.access.fd = os.open(os.devnull, os.O_WRONLY)
body = json.dumps({"area": 3.2, "latitude": 41.5, "dist_mainland": 120.0}).encode()
scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
         "scheme": "http", "path": "/predict", "raw_path": b"/predict", "query_string": b"",
         "root_path": "", "headers": [(b"content-type", b"application/json"),
         (b"content-length", str(len(body)).encode())], "client": ("127.0.0.1", 1),
         "server": ("127.0.0.1", 2)}
statuses = set()

async def receive():
    return {"type": "http.request", "body": body, "more_body": False}

async def send(message):
    if message["type"] == "http.response.start":
        statuses.add(message["status"])

async def main():
    per = []
    for _ in range(batches + 1):  # the first batch warms up
        t = time.perf_counter()
        for _ in range(2000):
            await app(dict(scope), receive, send)
        per.append((time.perf_counter() - t) / 2000 * 1e6)
    return per[1:]

per = asyncio.run(main())
assert statuses == {200}, statuses
print(json.dumps(per))
"""


def app_one_row_us(base: Path, rounds: int = 5) -> dict[str, list[float]]:
    """Microseconds per one-row ``POST /predict`` through the ASGI application called in
    a fresh process of each tree (this one and ``base``), without sockets, access log on
    and off; trees interleaved round by round. Per batch of 2000 calls."""
    out: dict[str, list[float]] = {}
    for _ in range(rounds):
        for label, root in (("linreg serve", ROOT), (BASE_PREFIX + "linreg serve", base)):
            for log in ("log", "nolog"):
                res = subprocess.run(
                    [sys.executable, "-c", APP_ONE_ROW, str(MODEL), log, "5"],
                    cwd=root,
                    env={**os.environ, "PYTHONPATH": str(root)},
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=True,
                )
                name = label + ("" if log == "log" else " (no access log)")
                out.setdefault(name, []).extend(json.loads(res.stdout))
    return out


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def describe_machine() -> str:
    """CPU model, cores and the load before the run (the machine is shared)."""
    cpu = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"CPU: {cpu}, {os.cpu_count()} cores; before: {uptime()}"


def grpc_runs(
    s: Server, results: dict, conc: list[int], bulk_sizes: list[int], seconds: float, work: Path
) -> None:
    """The same loads as over HTTP, over gRPC (h2load, one connection)."""
    from grpc_load import h2load, infer_request

    one = infer_request(np.array([list(ROW.values())], dtype=np.float32), MODEL.name)
    for c in conc:
        res = h2load(s.url, s.grpc_port, one, c, seconds, work)
        results.setdefault(f"grpc_c{c}", []).append(res)
    for rows in bulk_sizes:
        res = h2load(
            s.url, s.grpc_port, infer_request(bulk_matrix(rows), MODEL.name), 2, seconds, work
        )
        results.setdefault(f"grpc_bulk{rows}", []).append(res)


def print_grpc(names: list[str], results: dict, conc: list[int], bulk_sizes: list[int]) -> None:
    """gRPC beside HTTP, on the same server process."""
    for n in names:
        r = results[n]
        if not any(k.startswith("grpc_") for k in r):
            continue

        def med(key: str, field: str, r: dict = r) -> float:
            return statistics.median(x[field] for x in r[key])

        print(f"\n{n}: V2 over gRPC beside HTTP, the same process")
        print("| load | HTTP | gRPC | gRPC / HTTP | gRPC mean ms | gRPC errors | load avg |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for c in conc:
            http, grpc = med(f"c{c}", "rps"), med(f"grpc_c{c}", "rps")
            errors = sum(x["errors"] for x in r[f"grpc_c{c}"])
            print(
                f"| 1 row, {c} in flight (req/s; HTTP: JSON /predict) | {http:,.0f} | "
                f"{grpc:,.0f} | {grpc / http:.2f} | {med(f'grpc_c{c}', 'mean_ms'):.2f} | "
                f"{errors} | {med(f'grpc_c{c}', 'load'):.1f} |"
            )
        for size in bulk_sizes:
            http = med(f"bulk{size}", "rps") * size
            grpc = med(f"grpc_bulk{size}", "rps") * size
            errors = sum(x["errors"] for x in r[f"grpc_bulk{size}"])
            print(
                f"| {size:,} rows FP32, 2 in flight (rows/s; HTTP: V2 binary) | {http:,.0f} | "
                f"{grpc:,.0f} | {grpc / http:.2f} | {med(f'grpc_bulk{size}', 'mean_ms'):.2f} | "
                f"{errors} | {med(f'grpc_bulk{size}', 'load'):.1f} |"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--servers", default=";".join(SERVERS), help="names, separated by ';'")
    ap.add_argument(
        "--bulk-rows", default=str(BULK_ROWS), help="rows per bulk request, e.g. 10000,1000000"
    )
    ap.add_argument("--json", type=Path, default=None, help="write the raw results here")
    ap.add_argument(
        "--base", type=Path, default=None, help="source tree of a reference (adds 'base: ...')"
    )
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk (the load generator): apt-get install wrk")
    names = [n.strip() for n in args.servers.split(";") if n.strip()]
    grpc = any(GRPC_PORT in SERVERS[n.removeprefix(BASE_PREFIX)][1] for n in names)
    if grpc and shutil.which("h2load") is None:
        raise SystemExit("gRPC load needs h2load: apt-get install nghttp2-client")
    machine = describe_machine()
    print(machine)
    if args.base is not None:
        names += [BASE_PREFIX + n for n in ("linreg serve", "linreg serve (no access log)")]
    bulk_sizes = [int(b) for b in args.bulk_rows.split(",")]
    conc = [int(c) for c in args.concurrency.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    row_body = work / "row.json"
    row_body.write_bytes(json.dumps(ROW).encode())
    bulk, hlen = bulk_request()
    bulk_files = {}
    for rows in bulk_sizes:
        body, length = bulk_request(rows)
        bulk_files[rows] = (work / f"bulk-{rows}.bin", length)
        bulk_files[rows][0].write_bytes(body)
    servers: dict[str, Server] = {}
    results: dict[str, dict[str, list[dict]]] = {n: {} for n in names}
    try:
        for n in names:
            servers[n] = Server(n, work, args.base)
        check_answers(servers, bulk, hlen)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for n in order:
                s = servers[n]
                for c in conc:
                    res = wrk(s.url + "/predict", row_body, "application/json", c, args.duration)
                    results[n].setdefault(f"c{c}", []).append(res)
                if n.removeprefix(BASE_PREFIX).startswith("linreg"):
                    url = s.url + "/v2/models/plant_richness_mlr/infer"
                    for rows, (path, length) in bulk_files.items():
                        res = wrk(
                            url, path, "application/octet-stream", 2, args.duration, str(length)
                        )
                        results[n].setdefault(f"bulk{rows}", []).append(res)
                if s.grpc_port is not None:
                    grpc_runs(s, results[n], conc, bulk_sizes, args.duration, work)
        inproc = {rows: in_process_rows_per_s(rows) for rows in bulk_sizes}
        one_row = app_one_row_us(args.base) if args.base is not None else {}
        in_app = {rows: app_rows_per_s(rows) for rows in bulk_sizes}
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(work, ignore_errors=True)

    def med(items: list[dict], key: str) -> float:
        return statistics.median(x[key] for x in items)

    print(f"\nsingle-row JSON POST /predict, wrk -t1, {args.duration:g} s x {args.rounds} rounds")
    print("| server | concurrency | req/s | p50 ms | p90 ms | p99 ms | errors | load avg |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for n in names:
        for c in conc:
            items = results[n][f"c{c}"]
            errors = sum(x["socket_errors"] + x["non2xx"] for x in items)
            print(
                f"| {n} | {c} | {med(items, 'rps'):,.0f} | {med(items, 'p50_us') / 1e3:.2f} | "
                f"{med(items, 'p90_us') / 1e3:.2f} | {med(items, 'p99_us') / 1e3:.2f} | {errors} | "
                f"{med(items, 'load'):.1f} |"
            )
    for size in bulk_sizes:
        print(f"\n{size:,}-row V2 binary requests (3 features, FP32), concurrency 2")
        print("| server | rows/s | p50 ms | p99 ms | vs in-process Predictor |")
        print("|---|---:|---:|---:|---:|")
        for n in names:
            if f"bulk{size}" in results[n]:
                items = results[n][f"bulk{size}"]
                rows = med(items, "rps") * size
                print(
                    f"| {n} | {rows:,.0f} | {med(items, 'p50_us') / 1e3:.2f} | "
                    f"{med(items, 'p99_us') / 1e3:.2f} | {rows / inproc[size]:.0%} |"
                )
        print(
            f"| the server's ASGI app called in-process (no sockets) | {in_app[size]:,.0f} "
            f"| | | {in_app[size] / inproc[size]:.0%} |"
        )
        print(f"| in-process Predictor.predict | {inproc[size]:,.0f} | | | 100% |")
    print_grpc(names, results, conc, bulk_sizes)
    if one_row:
        print("\none-row POST /predict through the ASGI app in-process (no sockets), us/request")
        print("| tree | median | 10th percentile | batches of 2000 |")
        print("|---|---:|---:|---:|")
        for name, per in one_row.items():
            per = sorted(per)
            print(
                f"| {name} | {statistics.median(per):.1f} | {per[len(per) // 10]:.1f} | "
                f"{len(per)} |"
            )
    print(f"\nafter: {uptime()}")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "results": results,
                    "in_process_rows_per_s": inproc,
                    "in_process_app_rows_per_s": in_app,
                    "in_process_one_row_us": one_row,
                    "args": vars(args),
                    "machine": machine,
                },
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
