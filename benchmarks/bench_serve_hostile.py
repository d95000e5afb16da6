"""``linreg serve`` against large and hostile bodies: time to the answer, the server's
memory, and health checks meanwhile.

Run (no extra tools; the server needs the ``serve`` extra)::

    .venv/bin/python benchmarks/bench_serve_hostile.py
    .venv/bin/python benchmarks/bench_serve_hostile.py --base /tmp/serve-base  # and a reference

Each server is ``python -m linreg serve exported_models/plant_richness_mlr`` (three
features, float32) on 127.0.0.1 with ``--max-body-bytes 67108864 --max-rows 1000000``
and ``--max-json-bytes 67108864`` where the server has it (so a 63 MiB JSON body
reaches the row check rather than the JSON size limit), the access log off.
``--base ROOT`` also starts the code checked out at ROOT (for example ``git worktree
add /tmp/serve-base <commit>``), one server at a time, with the same cases (the
four-at-once case only with ``--base-concurrent``: it took gigabytes).

Cases: bodies of about 63 MiB holding more than ``--max-rows`` rows (JSON rows,
records and columns to ``/predict``, CSV (plain, with a quoted header, and with a
quote inside a field: its rows are counted while it is read) and ``dataframe_split``
to ``/invocations``,
V2 JSON data and V2 binary data), four such JSON bodies at once, and requests at the
limit (1,000,000 rows: JSON rows, CSV, V2 binary) and JSON bodies of 16 MiB (rows,
records) that are answered 200. For each:
the status, seconds from the first byte sent to the answer, the server's RSS before
and its peak during the case (``VmHWM`` after ``clear_refs``; Linux), and the
latency of ``GET /v2/health/live`` polled every 20 ms on its own connection meanwhile.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "exported_models" / "plant_richness_mlr"
FEATURES = ["area", "latitude", "dist_mainland"]
MAX_ROWS = 1_000_000
TARGET = 63 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One server process from the source tree ``root``."""

    def __init__(self, root: Path, log: Path) -> None:
        self.port = free_port()
        self.log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "PYTHONPATH": str(root)}
        cmd = [sys.executable, "-m", "linreg", "serve", str(MODEL), "--port", str(self.port)]
        cmd += ["--max-body-bytes", str(TARGET + (1 << 20)), "--max-rows", str(MAX_ROWS)]
        if "--max-json-bytes" in (root / "linreg" / "serve.py").read_text():
            cmd += ["--max-json-bytes", str(TARGET + (1 << 20))]
        cmd += ["--no-access-log"]
        self.proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}")
            try:
                if request(self.port, "GET", "/v2/health/live")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start within 60 s")

    def status(self, key: str) -> float:
        """``VmRSS`` or ``VmHWM`` of the server, MiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        raise KeyError(key)

    def reset_peak(self) -> None:
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


def request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class Health(threading.Thread):
    """``GET /v2/health/live`` every 20 ms on one keep-alive connection; latencies in s."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.times: list[float] = []
        self.failures = 0
        self.done = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        while not self.done.is_set():
            t = time.perf_counter()
            try:
                conn.request("GET", "/v2/health/live")
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except OSError:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.times.append(time.perf_counter() - t)
            self.failures += not ok
            self.done.wait(0.02)
        conn.close()


def _rows(n: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 100, size=(n, 3)).round(4)


def _fill(make, per_row: int) -> bytes:  # type: ignore[no-untyped-def]
    """``make(n)`` with the largest n that keeps it within :data:`TARGET` bytes."""
    n = TARGET // per_row
    body = make(n)
    while len(body) > TARGET:
        n = int(n * TARGET / len(body) * 0.999)
        body = make(n)
    return body


def _v2_header(n: int, **extra: object) -> bytes:
    spec = {"name": "features", "shape": [n, 3], "datatype": "FP64", **extra}
    return json.dumps({"inputs": [spec]}).encode()


def bodies_over() -> dict[str, tuple[str, bytes, dict]]:
    """About 63 MiB each, more than MAX_ROWS rows: (path, body, headers) by case name."""
    js = {"Content-Type": "application/json"}
    csv_h = {"Content-Type": "text/csv"}
    X = _rows(TARGET // 16)

    def v2_json(n: int) -> bytes:
        head = _v2_header(n)[:-3]  # '..."FP64"' then the data
        return head + b', "data": ' + json.dumps(X[:n].ravel().tolist()).encode() + b"}]}"

    def csv(n: int) -> bytes:
        return (",".join(FEATURES) + "\n").encode() + "\n".join(
            f"{a!r},{b!r},{c!r}" for a, b, c in X[:n].tolist()
        ).encode()

    binary_rows = (TARGET - 200) // 24
    binary_head = _v2_header(binary_rows, parameters={"binary_data_size": binary_rows * 24})
    cases = {
        "/predict JSON rows": (
            "/predict",
            _fill(lambda n: json.dumps(X[:n].tolist()).encode(), 25),
            js,
        ),
        "/predict JSON records": (
            "/predict",
            _fill(
                lambda n: json.dumps(
                    [dict(zip(FEATURES, r, strict=True)) for r in X[:n].tolist()]
                ).encode(),
                60,
            ),
            js,
        ),
        "/predict JSON columns": (
            "/predict",
            _fill(
                lambda n: json.dumps(
                    {f: X[:n, j].tolist() for j, f in enumerate(FEATURES)}
                ).encode(),
                25,
            ),
            js,
        ),
        "/invocations CSV": ("/invocations", _fill(csv, 22), csv_h),
        "/invocations CSV, quoted header": (
            "/invocations",
            b'"area"' + _fill(csv, 22)[len(b"area") :],
            csv_h,
        ),
        "/invocations CSV, a stray quote": (  # rows counted while read, not before
            "/invocations",
            _fill(lambda n: csv(n).replace(b"\n", b',a"b\n').replace(b',a"b', b",note", 1), 26),
            csv_h,
        ),
        "/invocations dataframe_split": (
            "/invocations",
            _fill(
                lambda n: json.dumps(
                    {"dataframe_split": {"columns": FEATURES, "data": X[:n].tolist()}}
                ).encode(),
                25,
            ),
            js,
        ),
        "/v2 JSON data": ("/v2/models/plant_richness_mlr/infer", _fill(v2_json, 22), js),
        "/v2 binary": (
            "/v2/models/plant_richness_mlr/infer",
            binary_head + X[:binary_rows].astype("<f8").tobytes(),
            {"Inference-Header-Content-Length": str(len(binary_head))},
        ),
    }
    return cases


def bodies_accepted() -> dict[str, tuple[str, bytes, dict]]:
    """Answered 200: MAX_ROWS rows (JSON rows, CSV, V2 binary), and JSON bodies of at
    most 16 MiB (rows, records)."""
    X = _rows(MAX_ROWS)
    js = {"Content-Type": "application/json"}
    head = _v2_header(MAX_ROWS, parameters={"binary_data_size": MAX_ROWS * 24})
    csv = (",".join(FEATURES) + "\n").encode() + "\n".join(
        f"{a!r},{b!r},{c!r}" for a, b, c in X.tolist()
    ).encode()
    small = min(16 << 20, TARGET)

    def within(make, per_row: int) -> bytes:  # type: ignore[no-untyped-def]
        n = small // per_row
        body = make(n)
        while len(body) > small:
            n = int(n * small / len(body) * 0.999)
            body = make(n)
        return body

    return {
        f"/predict JSON rows, {MAX_ROWS:,} rows": ("/predict", json.dumps(X.tolist()).encode(), js),
        f"/predict JSON rows, {small / 2**20:g} MiB": (
            "/predict",
            within(lambda n: json.dumps(X[:n].tolist()).encode(), 25),
            js,
        ),
        f"/predict JSON records, {small / 2**20:g} MiB": (
            "/predict",
            within(
                lambda n: json.dumps(
                    [dict(zip(FEATURES, r, strict=True)) for r in X[:n].tolist()]
                ).encode(),
                60,
            ),
            js,
        ),
        f"/invocations CSV, {MAX_ROWS:,} rows": ("/invocations", csv, {"Content-Type": "text/csv"}),
        f"/v2 binary, {MAX_ROWS:,} rows": (
            "/v2/models/plant_richness_mlr/infer",
            head + X.astype("<f8").tobytes(),
            {"Inference-Header-Content-Length": str(len(head))},
        ),
    }


def run_case(server: Server, posts: list[tuple[str, bytes, dict]]) -> dict:
    """Send ``posts`` at once; the statuses, seconds, memory and health latencies."""
    time.sleep(0.3)
    server.reset_peak()
    before = server.status("VmRSS")
    health = Health(server.port)
    health.start()
    time.sleep(0.1)
    results: list[tuple[int, float]] = [(0, 0.0)] * len(posts)

    def send(i: int) -> None:
        path, body, headers = posts[i]
        t = time.perf_counter()
        status, _ = request(server.port, "POST", path, body, headers)
        results[i] = (status, time.perf_counter() - t)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(posts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(0.1)
    health.done.set()
    health.join()
    peak = server.status("VmHWM")
    return {
        "statuses": sorted({s for s, _ in results}),
        "seconds": max(s for _, s in results),
        "body_mib": sum(len(b) for _, b, _ in posts) / 2**20,
        "rss_before_mib": before,
        "peak_growth_mib": peak - before,
        "health_max_ms": max(health.times) * 1e3,
        "health_p50_ms": statistics.median(health.times) * 1e3,
        "health_checks": len(health.times),
        "health_failures": health.failures,
    }


def measure(root: Path, log: Path, cases: dict[str, list], names: list[str]) -> dict[str, dict]:
    server = Server(root, log)
    try:
        return {name: run_case(server, cases[name]) for name in names}
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    global TARGET, MAX_ROWS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", type=Path, default=None, help="source tree of a reference")
    ap.add_argument("--base-concurrent", action="store_true", help="four at once on it too")
    ap.add_argument("--json", type=Path, default=None, help="write the raw results here")
    ap.add_argument("--mib", type=float, default=63, help="size of the refused bodies (63)")
    ap.add_argument("--max-rows", type=int, default=MAX_ROWS, help="the servers' --max-rows")
    args = ap.parse_args(argv)
    TARGET, MAX_ROWS = int(args.mib * 2**20), args.max_rows
    over = bodies_over()
    limit = bodies_accepted()
    cases: dict[str, list] = {name: [spec] for name, spec in over.items()}
    cases["4 x /predict JSON rows at once"] = [over["/predict JSON rows"]] * 4
    cases.update({name: [spec] for name, spec in limit.items()})
    names = list(cases)
    load = [os.getloadavg()[0]]
    results = {"this tree": measure(ROOT, Path("/tmp/bench-hostile-this.log"), cases, names)}
    load.append(os.getloadavg()[0])
    if args.base is not None:
        base_names = [n for n in names if args.base_concurrent or not n.startswith("4 x")]
        log = Path("/tmp/bench-hostile-base.log")
        results[f"base ({args.base})"] = measure(args.base, log, cases, base_names)
        load.append(os.getloadavg()[0])
    info = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((x.split(":", 1)[1].strip() for x in info if x.startswith("model name")), "?")
    print(f"\n{cpu}, {os.cpu_count()} CPUs; 1-min load average {load}")
    print(
        "| server | case | body MiB | status | answer s | RSS before MiB | peak growth MiB "
        "| growth / body | health max ms | health p50 ms | health checks |"
    )
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for server, rows in results.items():
        for name, r in rows.items():
            print(
                f"| {server} | {name} | {r['body_mib']:.1f} | {r['statuses']} | "
                f"{r['seconds']:.2f} | {r['rss_before_mib']:.0f} | {r['peak_growth_mib']:.0f} | "
                f"{r['peak_growth_mib'] / r['body_mib']:.2f} | {r['health_max_ms']:.0f} | "
                f"{r['health_p50_ms']:.1f} | {r['health_checks']} ({r['health_failures']} failed) |"
            )
    if args.json is not None:
        args.json.write_text(json.dumps({"cpu": cpu, "load": load, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
