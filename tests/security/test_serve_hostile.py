"""Hostile requests against a real ``linreg serve`` process: each class of bad request
gets a 4xx, a body over ``--max-rows`` is refused before it is parsed (the server's
peak memory stays near the body's size), health checks are answered meanwhile, and
invented HTTP methods share one metrics label.

Timings are not asserted here (benchmarks/bench_serve_hostile.py measures them);
timeouts are generous and only catch a hang.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.serve.conftest import BUNDLED, ServerProcess, needs_serve

pytestmark = [needs_serve, pytest.mark.slow]
requests = pytest.importorskip("requests")

MAX_ROWS = 1000
LIMIT = f"limit of {MAX_ROWS}"
MLR = "/v2/models/plant_richness_mlr/infer"
FEATURES = ["area", "latitude", "dist_mainland"]
BIG = 24 << 20  # bytes of the bodies the memory and health tests send


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copies of the bundled models (servers never touch the committed ones)."""
    root = tmp_path_factory.mktemp("hostile-models")
    for name in ("plant_richness_lr", "plant_richness_mlr"):
        shutil.copytree(BUNDLED / name, root / name)
    return root


@pytest.fixture(scope="module")
def server(models: Path, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("hostile") / "server.log"
    proc = ServerProcess(
        [
            str(models / "plant_richness_mlr"),
            str(models / "plant_richness_lr"),
            "--max-rows",
            str(MAX_ROWS),
            "--max-body-bytes",
            str(32 << 20),
            "--max-json-bytes",
            str(32 << 20),
            "--no-access-log",
        ],
        log=log,
    )
    yield proc
    proc.stop(timeout=15)
    assert "Traceback" not in proc.log()  # no request took the path of an unknown error


@pytest.fixture(scope="module")
def http():
    with requests.Session() as session:
        yield session


def _rows(n: int) -> list[list[float]]:
    return np.random.default_rng(n).uniform(0, 100, size=(n, 3)).round(3).tolist()


def _v2(spec: dict, **extra) -> dict:
    return {"inputs": [{"name": "features", "datatype": "FP64", **spec}], **extra}


def _csv(rows: list[list[float]], *, quoted: bool = False, end: str = "\n") -> bytes:
    q = '"' if quoted else ""
    head = ",".join(f"{q}{f}{q}" for f in FEATURES)
    return (end.join([head, *(",".join(map(repr, r)) for r in rows)]) + end).encode()


def _over_limit_bodies() -> list[tuple[str, str, bytes, dict]]:
    """(case, path, body, headers): small (parsed inline) and large (checked first)."""
    js = {"Content-Type": "application/json"}
    cases = []
    for n in (MAX_ROWS + 2, 20 * MAX_ROWS):
        X = _rows(n)
        records = [dict(zip(FEATURES, r, strict=True)) for r in X]
        columns = {f: [r[j] for r in X] for j, f in enumerate(FEATURES)}
        binary = np.asarray(X, dtype="<f8").tobytes()
        head = json.dumps(
            _v2({"shape": [n, 3], "parameters": {"binary_data_size": len(binary)}})
        ).encode()
        for case, path, payload in (
            ("rows", "/predict", X),
            ("records", "/models/plant_richness_mlr/predict", records),
            ("columns", "/predict", columns),
            ("wrapped", "/predict", {"inputs": X, "interval": "prediction"}),
            (
                "dataframe_split",
                "/invocations",
                {"dataframe_split": {"columns": FEATURES, "data": X}},
            ),
            ("dataframe_records", "/invocations", {"dataframe_records": records}),
            ("instances", "/invocations", {"instances": X}),
            ("inputs columns", "/invocations", {"inputs": columns}),
            ("v2 flat data", MLR, _v2({"shape": [n, 3], "data": [v for r in X for v in r]})),
            ("v2 nested data", MLR, _v2({"shape": [n, 3], "data": X})),
            (
                "v2 one tensor per feature",
                MLR,
                {
                    "inputs": [
                        {"name": f, "datatype": "FP64", "shape": [n], "data": columns[f]}
                        for f in FEATURES
                    ]
                },
            ),
        ):
            cases.append((f"{case} {n}", path, json.dumps(payload).encode(), js))
        for case, body in (
            ("csv", _csv(X)),
            ("csv quoted", _csv(X, quoted=True)),
            (
                "csv stray quote",
                _csv(X).replace(b"\n", b',a"b\n').replace(b',a"b', b",note", 1),
            ),
            ("csv crlf", _csv(X, end="\r\n")),
            ("csv bare cr", _csv(X, end="\r")),
        ):
            cases.append((f"{case} {n}", "/invocations", body, {"Content-Type": "text/csv"}))
        cases.append(
            (
                f"v2 binary {n}",
                MLR,
                head + binary,
                {"Inference-Header-Content-Length": str(len(head))},
            )
        )
    return cases


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [c[1:] for c in _over_limit_bodies()],
    ids=[c[0] for c in _over_limit_bodies()],
)
def test_more_rows_than_the_limit_get_413_in_every_format(server, http, path, body, headers):
    r = http.post(server.url + path, data=body, headers=headers, timeout=120)
    assert r.status_code == 413, r.text[:300]
    assert LIMIT in r.text


def _peak_growth(server: ServerProcess, send) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """(peak RSS growth in bytes while ``send()`` runs, its status), via /proc."""
    proc = Path(f"/proc/{server.proc.pid}")
    if not (proc / "clear_refs").exists():
        pytest.skip("needs Linux's /proc/<pid>/clear_refs to reset the peak RSS")

    def read(key: str) -> int:
        for line in (proc / "status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(key)

    (proc / "clear_refs").write_text("5")  # VmHWM := VmRSS
    before = read("VmRSS")
    status = send()
    return read("VmHWM") - before, status


def _big_bodies() -> dict[str, tuple[str, bytes, dict]]:
    row = b"[12.345,41.5,120.25],"
    rows = b"[" + row * (BIG // len(row)) + b"[1,2,3]]"
    record = b'{"area":12.345,"latitude":41.5,"dist_mainland":120.25},'
    records = b"[" + record * (BIG // len(record)) + b'{"area":1,"latitude":2,"dist_mainland":3}]'
    line = b"12.345,41.5,120.25\n"
    csv = b"area,latitude,dist_mainland\n" + line * (BIG // len(line))
    return {
        "json rows": ("/models/plant_richness_mlr/predict", rows, {}),
        "json records": ("/models/plant_richness_mlr/predict", records, {}),
        "csv": ("/invocations?model=plant_richness_mlr", csv, {"Content-Type": "text/csv"}),
    }


@pytest.mark.parametrize("case", ["json rows", "json records", "csv"])
def test_a_refused_large_body_costs_about_its_size(server, http, case):
    path, body, headers = _big_bodies()[case]

    def send() -> int:
        return int(
            http.post(server.url + path, data=body, headers=headers, timeout=120).status_code
        )

    growth, status = _peak_growth(server, send)
    assert status == 413
    # the body is held once (parsing it would have cost 10 to 20 times its size)
    assert growth <= 3 * len(body), f"peak RSS grew {growth / 2**20:.0f} MiB"


def test_health_checks_are_answered_while_four_large_bodies_are_refused(server):
    path, body, _ = _big_bodies()["json rows"]
    statuses: list[int] = []

    def post() -> None:
        with requests.Session() as s:
            statuses.append(s.post(server.url + path, data=body, timeout=120).status_code)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    health: list[int] = []
    with requests.Session() as s:
        while any(t.is_alive() for t in threads) or not health:
            health.append(s.get(server.url + "/v2/health/live", timeout=30).status_code)
            time.sleep(0.05)
    for t in threads:
        t.join()
    assert statuses == [413] * 4
    assert health and set(health) == {200}


@pytest.mark.parametrize(
    ("path", "payload", "status", "words"),
    [
        # the four bodies the security review found answered 500 (input errors are 400 on
        # V2 and MLflow routes, as the Open Inference Protocol and MLflow answer them)
        (
            MLR,
            _v2({"shape": [0, 4611686018427387904], "data": []}),
            400,
            "X has 4611686018427387904 features",
        ),
        (
            MLR,
            _v2({"shape": [1, 3], "data": [1, 2, 3]}, outputs=[{"name": ["prediction"]}]),
            400,
            "outputs[0]: expected an object with a 'name' string",
        ),
        (
            MLR,
            _v2({"shape": [1, 3], "data": [1, 2, 3]}, outputs=[{"name": {"a": 1}}]),
            400,
            "outputs[0]: expected an object with a 'name' string",
        ),
        (MLR, _v2({"shape": [1, 3], "data": [1, 2, 3]}, outputs=[{"name": 7}]), 400, "a 'name'"),
        # zero-sized and huge dimensions
        (MLR, _v2({"shape": [4611686018427387904], "data": []}), 413, LIMIT),
        (MLR, _v2({"shape": [1, 4611686018427387904], "data": [1]}), 400, "features"),
        (MLR, _v2({"shape": [0, 3], "data": []}), 200, ""),
        (MLR, _v2({"shape": [3, 0], "data": []}), 400, "X has 0 features"),
        (MLR, _v2({"shape": [2, 3], "data": [[1, 2, 3]]}), 400, "needs 6"),
        (MLR, _v2({"shape": [2, 3], "data": [[1, 2, 3], [4, 5]]}), 400, "'data'"),
    ],
)
def test_bodies_that_crashed_the_server_get_4xx(server, http, path, payload, status, words):
    r = http.post(server.url + path, json=payload, timeout=30)
    assert r.status_code == status, r.text[:300]
    assert words in r.text


def test_binary_tensor_of_zero_rows_and_a_huge_width_gets_400(server, http):
    head = json.dumps(
        _v2({"shape": [0, 4611686018427387904], "parameters": {"binary_data_size": 0}})
    ).encode()
    r = http.post(
        server.url + MLR,
        data=head,
        headers={"Inference-Header-Content-Length": str(len(head))},
        timeout=30,
    )
    assert r.status_code == 400 and "X has 4611686018427387904 features" in r.text


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"area\n" + b"1" * 140_000 + b"\n", 400, "field larger than field limit"),
        (b"area\n" + b"1" * (2 << 20), 413, "longer than 1 MiB"),
        (b"area\n" + b'"\n",' * 300_000 + b"1\n", 413, "longer than 1 MiB"),
        (b"area\n1\n\xff\xfe\n", 400, "not UTF-8"),
        (b"area\n1\x00\n", 400, "line 2"),
    ],
)
def test_hostile_csv_bodies_get_4xx(server, http, body, status, words):
    r = http.post(
        server.url + "/invocations?model=plant_richness_lr",
        data=body,
        headers={"Content-Type": "text/csv"},
        timeout=60,
    )
    assert r.status_code == status, r.text[:300]
    assert words in r.text


def test_the_scan_does_not_count_structure_inside_strings(server, http):
    """A large V2 request whose ``id`` is full of brackets, commas and colons, and one
    row: answered 200 (a scan that counted inside strings would refuse it)."""
    ident = '[{,:"\\' * 40_000
    r = http.post(
        server.url + MLR,
        json=_v2({"shape": [1, 3], "data": [1.0, 2.0, 3.0]}, id=ident),
        timeout=30,
    )
    assert r.status_code == 200, r.text[:300]
    assert r.json()["id"] == ident
    r = http.post(
        server.url + "/invocations?model=plant_richness_mlr",
        json={"instances": [[1, 2, 3]], "params": {"note": ident}},
        timeout=30,
    )
    assert r.status_code == 200, r.text[:300]


def test_invented_methods_share_one_metrics_label(models, tmp_path):
    server = ServerProcess(
        [str(models / "plant_richness_lr"), "--http", "h11"], log=tmp_path / "h11.log"
    )
    try:
        _invent_methods(server)
    finally:
        server.stop(timeout=15)


def _invent_methods(server: ServerProcess) -> None:
    for i in range(30):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
            s.sendall(f"INVENTED{i} /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert s.recv(4096).startswith(b"HTTP/1.1 405")
    text = requests.get(server.url + "/metrics", timeout=30).text
    methods = set(re.findall(r'linreg_requests_total\{[^}]*method="([^"]*)"', text))
    assert methods <= {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "other"}
    other = re.findall(r'linreg_requests_total\{[^}]*method="other"[^}]*\} (\S+)', text)
    assert sum(float(x) for x in other) == 30


def test_limit_concurrency_answers_503_past_the_limit(models, tmp_path):
    """Two idle connections fill ``--limit-concurrency 2``: the next request gets 503;
    once they close, it is answered."""
    server = ServerProcess(
        [str(models / "plant_richness_lr"), "--limit-concurrency", "2"], log=tmp_path / "l.log"
    )
    try:
        idle = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(2)]
        assert _first_status_of(server, 503) == 503  # once the server has accepted them
        for s in idle:
            s.close()
        assert _first_status_of(server, 200) == 200
    finally:
        server.stop(timeout=15)


def _first_status_of(server: ServerProcess, wanted: int) -> int:
    """The health check's status once it is ``wanted``, or the last one after 30 s."""
    deadline = time.monotonic() + 30
    while True:
        status = requests.get(server.url + "/v2/health/live", timeout=30).status_code
        if status == wanted or time.monotonic() > deadline:
            return int(status)
        time.sleep(0.1)
