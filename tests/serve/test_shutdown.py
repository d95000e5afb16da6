"""SIGTERM while requests are in flight: every request the server began is answered.

Two kinds of in-flight requests: slow clients that sent their headers and half
their body before the signal (they finish sending after it), and a steady load
of keep-alive requests. Every request carries an ``X-Request-Id``; the server's
JSON access log says which ones it answered, and each of those must have reached
its client with the right prediction. A load request that failed never shows in
that log (it was refused on a closing connection, never begun).
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time

import pytest

from inference import Predictor
from tests.serve.conftest import needs_serve

pytestmark = [needs_serve, pytest.mark.slow]
requests = pytest.importorskip("requests")


def _read_response(s: socket.socket) -> bytes:
    data = b""
    s.settimeout(30)
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = [
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ]
            if length and len(body) >= length[0]:
                return data


def test_sigterm_finishes_requests_in_flight(start_server, model_copies):
    model_dir = model_copies / "plant_richness_lr"
    predictor = Predictor.load(model_dir)
    srv = start_server([str(model_dir)])
    # slow clients: headers and half the body now, the rest after SIGTERM
    slow = []
    for i in range(4):
        body = json.dumps({"area": float(i)}).encode()
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        s.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"X-Request-Id: slow-{i}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:5]
        )
        slow.append((s, body, float(i)))
    # steady load on keep-alive connections
    stop = threading.Event()
    received: dict[str, tuple[int, list]] = {}
    failed: list[str] = []
    lock = threading.Lock()

    def load(worker: int) -> None:
        with requests.Session() as http:
            n = 0
            while not stop.is_set():
                rid = f"load-{worker}-{n}"
                n += 1
                try:
                    r = http.post(
                        srv.url + "/predict",
                        json={"area": float(n)},
                        headers={"X-Request-Id": rid},
                        timeout=30,
                    )
                except requests.ConnectionError:
                    with lock:
                        failed.append(rid)
                    if srv.proc.poll() is not None:
                        return
                    time.sleep(0.01)
                    continue
                with lock:
                    received[rid] = (r.status_code, r.json().get("predictions"), float(n))

    threads = [threading.Thread(target=load, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(received) < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert srv.proc.poll() is None, "the server exited with slow requests still in flight"
    for s, body, _ in slow:
        s.sendall(body[5:])
    answers = [_read_response(s) for s, _, _ in slow]
    for s, _, _ in slow:
        s.close()
    # uvicorn re-raises the signal once shut down: exit by SIGTERM, after a clean shutdown
    assert srv.proc.wait(30) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in srv.log()
    stop.set()
    for t in threads:
        t.join(30)
    for reply, (_, _, area) in zip(answers, slow, strict=True):
        assert reply.startswith(b"HTTP/1.1 200"), reply
        got = json.loads(reply.partition(b"\r\n\r\n")[2])["predictions"]
        assert got == [predictor.predict_one(area=area)]
    logged = [json.loads(x) for x in srv.log().splitlines() if x.startswith("{")]
    answered = {x["request_id"] for x in logged if "request_id" in x}
    assert {f"slow-{i}" for i in range(4)} <= answered
    load_answered = {r for r in answered if r.startswith("load-")}
    assert load_answered, "no load request was answered"
    assert load_answered <= set(received), sorted(load_answered - set(received))[:5]
    assert not load_answered & set(failed)
    for rid, (status, preds, area) in received.items():
        assert status == 200, rid
        assert preds == [predictor.predict_one(area=area)]
