"""gRPC load for benchmarks/bench_serve.py: ``h2load`` (nghttp2's HTTP/2 load generator,
written in C: ``apt-get install nghttp2-client``) posting one framed gRPC message.

A unary gRPC call is an HTTP/2 POST to ``/inference.GRPCInferenceService/ModelInfer``
with ``content-type: application/grpc`` and ``te: trailers``, whose body is the message
behind a 5-byte prefix (a compression flag, then the length, big-endian). h2load sends
the same body again and again over one connection with ``streams`` calls in flight (as
one gRPC channel does) and counts HTTP statuses only: the gRPC status is in the
trailers, so the errors of a run are read from the server's ``/metrics`` before and
after it (:func:`grpc_errors`), and every answer is checked before timing
(:func:`check_grpc`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from pathlib import Path

import numpy as np

PATH = "/inference.GRPCInferenceService/ModelInfer"


def infer_request(X: np.ndarray, model: str) -> bytes:
    """A ``ModelInferRequest`` of ``X`` (raw contents, as tritonclient sends), serialized."""
    from inference.serve.proto import grpc_service_pb2 as pb

    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(name="features", datatype="FP32", shape=list(X.shape))
    request.raw_input_contents.append(np.ascontiguousarray(X, dtype="<f4").tobytes())
    return bytes(request.SerializeToString())


def framed(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


def check_grpc(address: str, X: np.ndarray, model: str, expected: np.ndarray) -> None:
    """The server's gRPC answer for ``X`` equals ``expected`` (SystemExit otherwise)."""
    import grpc

    from inference.serve.proto import grpc_service_pb2 as pb

    with grpc.insecure_channel(
        address, options=[("grpc.max_receive_message_length", -1)]
    ) as channel:
        infer = channel.unary_unary(
            PATH,
            request_serializer=lambda b: b,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        response = infer(infer_request(X, model), timeout=60)
    y = np.frombuffer(response.raw_output_contents[0], dtype="<f4")
    if not np.array_equal(y, expected):
        raise SystemExit(f"gRPC on {address}: the answer differs from the Predictor's")


def grpc_errors(url: str) -> int:
    """gRPC inference calls the server answered with an error, from its /metrics."""
    with urllib.request.urlopen(url + "/metrics", timeout=30) as r:
        text = r.read().decode()
    pattern = r'^linreg_request_errors_total\{endpoint="grpc_infer",status="\d+"\} ([\d.e+]+)$'
    return int(sum(float(m) for m in re.findall(pattern, text, re.M)))


def h2load(url: str, grpc_port: int, body: bytes, streams: int, seconds: float, work: Path) -> dict:
    """One timed run: req/s, mean latency, failures (HTTP and gRPC) and the load average."""
    path = work / f"grpc-{len(body)}.bin"
    path.write_bytes(framed(body))
    before = grpc_errors(url)
    out = subprocess.run(
        [
            "h2load",
            "-t1",
            "-c1",
            f"-m{streams}",
            f"-D{max(1, round(seconds))}",
            "--warm-up-time=1",
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            "-d",
            str(path),
            f"http://127.0.0.1:{grpc_port}{PATH}",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    rps = float(re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out).group(1))  # type: ignore[union-attr]
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    codes = re.search(r"status codes: (\d+) 2xx", out)
    latency = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out)
    assert done and codes and latency, out
    failed = int(done.group(1)) - int(done.group(2)) + int(done.group(1)) - int(codes.group(1))
    return {
        "rps": rps,
        "mean_ms": _ms(latency.group(1)),
        "errors": failed + grpc_errors(url) - before,
        "load": os.getloadavg()[0],
        "raw": json.dumps(out[-400:]),
    }


def _ms(text: str) -> float:
    """h2load's durations (``812us``, ``1.52ms``, ``2.1s``) in milliseconds."""
    number = float(re.match(r"[\d.]+", text).group())  # type: ignore[union-attr]
    if text.endswith("us"):
        return number / 1000
    if text.endswith("ms"):
        return number
    return number * 1000 if text.endswith("s") else number
