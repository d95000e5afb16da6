"""Which ONNX graph does onnxruntime run fastest for ``x @ w + b``? (README, "Why this graph")

Plain ``InferenceSession.run`` on 1,048,576 float32 rows, k = 1 and 16, for each
candidate graph (Gemm in both orientations, with the bias inside or as an Add,
MatMul with a (k, 1) or a 1-D weight then Add, and for k = 1 the exported
elementwise graph), with intra-op threads spinning (onnxruntime's default) and not
(the Predictor's default), beside torch eager ``nn.Linear`` and numpy ``x @ w + b``
on the same input in the same run (speed given as a multiple of the faster of
those two). Each candidate's output is checked against
float64 numpy before it is timed. Prints the median of ``--repeats`` calls in ms.

    .venv/bin/python benchmarks/bench_graphs.py [--rows 1048576] [--repeats 30]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

from training.bench.machine import cpu_description
from training.export import build_onnx


def _candidate(kind: str, w: np.ndarray, b: float) -> bytes:
    """The alternatives to the exported graph (``exported`` is training.export's own)."""
    k = w.size
    if kind == "exported":
        features = [f"x{j}" for j in range(k)]
        return build_onnx(w, b, features=features, target="y").SerializeToString()
    inits = [
        numpy_helper.from_array(np.asarray([b], np.float32), "bias"),
        numpy_helper.from_array(np.asarray([-1], np.int64), "flat"),
    ]
    if kind == "gemm W·Xᵀ + bias":  # the exported k > 1 graph, also for k = 1
        inits.append(numpy_helper.from_array(w.reshape(1, k), "weight"))
        nodes = [
            helper.make_node("Gemm", ["weight", "features", "bias"], ["row"], transB=1),
            helper.make_node("Reshape", ["row", "flat"], ["prediction"]),
        ]
    elif kind == "gemm X·W (textbook)":
        inits.append(numpy_helper.from_array(w.reshape(k, 1), "weight"))
        nodes = [
            helper.make_node("Gemm", ["features", "weight", "bias"], ["column"]),
            helper.make_node("Reshape", ["column", "flat"], ["prediction"]),
        ]
    elif kind == "MatMul(X, W (k,1)), Add":
        inits.append(numpy_helper.from_array(w.reshape(k, 1), "weight"))
        nodes = [
            helper.make_node("MatMul", ["features", "weight"], ["column"]),
            helper.make_node("Reshape", ["column", "flat"], ["flat_column"]),
            helper.make_node("Add", ["flat_column", "bias"], ["prediction"]),
        ]
    elif kind == "MatMul(X, w (k,)), Add":
        inits.append(numpy_helper.from_array(w.reshape(k), "weight"))
        nodes = [
            helper.make_node("MatMul", ["features", "weight"], ["product"]),
            helper.make_node("Add", ["product", "bias"], ["prediction"]),
        ]
    elif kind == "gemm W·Xᵀ, then Add":
        inits.append(numpy_helper.from_array(w.reshape(1, k), "weight"))
        nodes = [
            helper.make_node("Gemm", ["weight", "features"], ["row"], transB=1),
            helper.make_node("Reshape", ["row", "flat"], ["flat_row"]),
            helper.make_node("Add", ["flat_row", "bias"], ["prediction"]),
        ]
    else:
        raise ValueError(kind)
    graph = helper.make_graph(
        nodes,
        "candidate",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", k])],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, ["batch"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _median_ms(call: Callable[[], object], repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1 << 20)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    print(f"{args.rows:,} rows, float32, median of {args.repeats} calls, ms")
    print(f"CPU {cpu_description()}; load average {os.getloadavg()} at the start")
    for k in (1, 16):
        _compare(k, args.rows, args.repeats)
    print(f"load average {os.getloadavg()} at the end")


def _compare(k: int, rows: int, repeats: int) -> None:
    """Time every candidate graph for ``k`` features beside torch eager and numpy."""
    rng = np.random.default_rng(k)
    X = rng.standard_normal((rows, k), dtype=np.float32)
    w = rng.uniform(-2, 2, k).astype(np.float32)
    b = 0.5
    expected = X.astype(np.float64) @ w.astype(np.float64) + b
    linear = torch.nn.Linear(k, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(w.reshape(1, k)))
        linear.bias.fill_(b)
    with torch.inference_mode():
        eager = _median_ms(lambda: linear(torch.from_numpy(X)).numpy(), repeats)
    plain = _median_ms(lambda: X @ w + np.float32(b), repeats)
    best = min(eager, plain)
    print(f"k = {k}: torch eager {eager:.3f}, numpy {plain:.3f}")
    kinds = [
        "exported",
        "gemm W·Xᵀ + bias",
        "gemm X·W (textbook)",
        "gemm W·Xᵀ, then Add",
        "MatMul(X, W (k,1)), Add",
        "MatMul(X, w (k,)), Add",
    ]
    for kind in kinds:
        if k > 1 and kind == "gemm W·Xᵀ + bias":
            continue  # that is the exported graph for k > 1
        row = []
        for spinning in (False, True):
            options = ort.SessionOptions()
            options.add_session_config_entry(
                "session.intra_op.allow_spinning", "1" if spinning else "0"
            )
            session = ort.InferenceSession(
                _candidate(kind, w, b), options, providers=["CPUExecutionProvider"]
            )
            feed = {"features": X}
            y = session.run(None, feed)[0]
            err = np.max(np.abs(y - expected)) / np.max(np.abs(expected))
            assert y.shape == (rows,) and err <= 1e-5, (kind, err)
            ms = _median_ms(lambda s=session, f=feed: s.run(None, f), repeats)
            row.append(f"{ms:.3f} ({best / ms:.2f}× the better reference)")
        print(f"  {kind:24s} not spinning {row[0]}; spinning {row[1]}")


if __name__ == "__main__":
    main()
