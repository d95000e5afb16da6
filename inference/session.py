"""An ONNX Runtime session for a model's bytes: its options, its creation, its signature.

Intra-op threads do not spin by default (``session.intra_op.allow_spinning = 0``),
so an idle model takes no CPU from the app it is embedded in; inter-op work is
sequential (the graphs here are two or three nodes).

The bulk session (:func:`build_bulk_options`, :func:`open_bulk_session`) is the
Predictor's second session for large batches: the same model and options, with
an intra-op thread on every CPU the process may use (docs/guide/bandwidth.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from inference.errors import ModelLoadError
from inference.manifest import Manifest

__all__ = [
    "OPT_LEVELS",
    "Signature",
    "available_cpus",
    "build_bulk_options",
    "build_session_options",
    "import_onnxruntime",
    "open_bulk_session",
    "open_session",
    "read_design_signature",
    "read_signature",
    "smoke_test",
]

#: ONNX Runtime graph optimization levels, by the names ``Predictor.load`` takes
OPT_LEVELS = ("disable", "basic", "extended", "all")
_ORT_DTYPES: dict[str, np.dtype] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(double)": np.dtype(np.float64),
}
_ONNX_TYPE_OF = {dtype.name: name for name, dtype in _ORT_DTYPES.items()}


class Signature(NamedTuple):
    """What a model takes and returns: input column names, target name, dtype."""

    features: list[str]
    target: str
    dtype: np.dtype


def import_onnxruntime() -> Any:
    """``import onnxruntime``, or an ImportError naming the extra that installs it."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ImportError(
            "the inference runtime needs onnxruntime: pip install 'linreg-onnx[cpu]' "
            "(or 'linreg-onnx[cuda]' for onnxruntime-gpu)"
        ) from exc
    return ort


def available_cpus() -> int:
    """The logical CPUs this process may run on (its affinity mask where the OS has one).

    ONNX Runtime's default is one thread per *physical* core, which leaves the
    second hyperthread of each core idle: one thread on a 2-vCPU VM that exposes
    one core with two threads.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def build_session_options(
    ort: Any, *, threads: int | None, spinning: bool, optimization: str
) -> Any:
    """An ``onnxruntime.SessionOptions`` for ``Predictor.load``'s arguments of those names."""
    if optimization not in OPT_LEVELS:
        raise ValueError(f"optimization must be one of {OPT_LEVELS}, got {optimization!r}")
    if threads is not None and (isinstance(threads, bool) or int(threads) < 0):
        raise ValueError(f"threads must be a non-negative integer or None, got {threads!r}")
    so = ort.SessionOptions()
    if threads is not None:
        so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    spin = "1" if spinning else "0"
    so.add_session_config_entry("session.intra_op.allow_spinning", spin)
    so.add_session_config_entry("session.inter_op.allow_spinning", spin)
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    return so


def build_bulk_options(ort: Any, *, threads: int | None, spinning: bool, optimization: str) -> Any:
    """The bulk session's ``SessionOptions``: those of :func:`build_session_options`
    with ``threads`` intra-op threads, or where None (or 0) every CPU this process
    may use (:func:`available_cpus`), not only one per physical core.

    Threads spin only with ``spinning`` (between calls, as the caller asked):
    spinning only while a run is in flight (``session.force_spinning_stop``) was
    measured and not kept (docs/guide/bandwidth.md).
    """
    so = build_session_options(ort, threads=threads, spinning=spinning, optimization=optimization)
    so.intra_op_num_threads = int(threads) if threads else available_cpus()
    return so


def open_bulk_session(ort: Any, data: bytes, options: Any) -> tuple[Any, Any, Any] | None:
    """The bulk session of ``data`` (bytes already checked and opened once) as
    ``(session, run, RunOptions)``: ``run`` is the session's native ``run``, which
    skips the Python wrapper's feed checks; None when it cannot be opened (the
    Predictor then keeps to its one session, as with ``bulk_rows=None``)."""
    try:
        bulk = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception:  # onnxruntime raises its own pybind exception types
        return None
    run = getattr(getattr(bulk, "_sess", None), "run", None)
    if not callable(run):  # an onnxruntime without the native session: its run
        run = bulk.run
    return bulk, run, ort.RunOptions()


def open_session(ort: Any, data: bytes, path: Path, providers: list[Any], options: Any) -> Any:
    """``onnxruntime.InferenceSession`` on ``data``; its failure as :class:`ModelLoadError`."""
    try:
        return ort.InferenceSession(data, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        raise ModelLoadError(f"{path}: onnxruntime cannot load it ({exc})") from exc


def read_signature(session: Any, manifest: Manifest | None, path: Path) -> Signature:
    """Features, target and dtype, with the session's signature checked against them
    (and against the manifest, where there is one), then a :func:`smoke_test`."""
    try:
        signature = _describe(session, manifest, path)
        smoke_test(session, len(signature.features), signature.dtype, path)
    except UnicodeDecodeError as exc:  # ONNX (proto2) strings need not be UTF-8
        raise ModelLoadError(f"{path}: a name in it is not valid UTF-8 ({exc})") from exc
    return signature


def smoke_test(session: Any, k: int, dtype: np.dtype, path: Path) -> None:
    """Run the model on 1 and 3 rows of zeros: a graph that loads but cannot run, or
    does not return one value per row, is refused at load instead of failing later."""
    feed, fetch = session.get_inputs()[0].name, session.get_outputs()[0].name
    for n in (1, 3):
        try:
            y = session.run([fetch], {feed: np.zeros((n, k), dtype=dtype)})[0]
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise ModelLoadError(f"{path}: onnxruntime cannot run it on {n} rows ({exc})") from exc
        if y.shape != (n,):
            raise ModelLoadError(f"{path}: on {n} rows it returns shape {y.shape}, not ({n},)")


def _describe(session: Any, manifest: Manifest | None, path: Path) -> Signature:
    inp, out = _io(session, path)
    dtype = _ORT_DTYPES[inp.type]
    k = inp.shape[1]
    meta = session.get_modelmeta().custom_metadata_map
    meta_features = None
    if "linreg.features" in meta:
        try:
            meta_features = json.loads(meta["linreg.features"])
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"{path}: metadata 'linreg.features' is not JSON") from exc
    if manifest is not None:
        _check_against_manifest(manifest, inp.name, out.name, dtype, meta_features, path)
        features: Any = manifest.features
        target: Any = manifest.target
    else:
        features = meta_features if meta_features is not None else [f"x{j}" for j in range(k)]
        target = meta.get("linreg.target", "prediction")
    if not isinstance(features, list) or len(features) != k:
        raise ModelLoadError(f"{path}: {len(features)} feature names for an input of {k} columns")
    return Signature([str(f) for f in features], str(target), dtype)


def _io(session: Any, path: Path) -> tuple[Any, Any]:
    """The session's one input, a (batch, k) float or double tensor, and its first
    output, of the same dtype."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise ModelLoadError(
            f"{path}: expected one input and one output, got {len(inputs)} and {len(outputs)}"
        )
    inp, out = inputs[0], outputs[0]
    dtype = _ORT_DTYPES.get(inp.type)
    if dtype is None or len(inp.shape) != 2 or not isinstance(inp.shape[1], int):
        raise ModelLoadError(
            f"{path}: input {inp.name!r} is {inp.type} of shape {inp.shape}; expected a "
            "float or double tensor of shape (batch, k)"
        )
    if _ORT_DTYPES.get(out.type) != dtype:
        raise ModelLoadError(f"{path}: output is {out.type}, input is {inp.type}; expected equal")
    return inp, out


def _check_against_manifest(
    manifest: Manifest,
    input_name: str,
    output_name: str,
    dtype: np.dtype,
    meta_features: Any,
    path: Path,
) -> None:
    if input_name != manifest.input_name or output_name != manifest.output_name:
        raise ModelLoadError(
            f"{path}: input/output names {input_name!r}/{output_name!r} differ from the "
            f"manifest's {manifest.input_name!r}/{manifest.output_name!r}"
        )
    if dtype.name != manifest.dtype:
        raise ModelLoadError(f"{path}: dtype {dtype.name}, the manifest says {manifest.dtype}")
    if meta_features is not None and meta_features != manifest.features:
        raise ModelLoadError(
            f"{path}: its metadata names features {meta_features}, the manifest {manifest.features}"
        )


def read_design_signature(session: Any, manifest: Manifest, design: Any, path: Path) -> Signature:
    """A design model's signature (its raw columns, target and dtype), with the session
    of its codes graph (:func:`inference.codes_graph.codes_graph`) checked against the
    manifest: one ``(batch,)`` input per raw column, a float tensor of the manifest's
    dtype for a number and int64 codes for a factor; then a run on 1 and 3 rows."""
    dtype = np.dtype(manifest.dtype)
    inputs = {i.name: i for i in session.get_inputs()}
    if sorted(inputs) != sorted(design.input_names):
        raise ModelLoadError(
            f"{path}: the graph's inputs {sorted(inputs)} differ from the manifest's columns "
            f"{design.input_names}"
        )
    for spec in design.inputs:
        info = inputs[spec.name]
        wanted = "tensor(int64)" if spec.kind == "factor" else _ONNX_TYPE_OF[dtype.name]
        if info.type != wanted or len(info.shape) != 1:
            raise ModelLoadError(
                f"{path}: input {spec.name!r} is {info.type} of shape {info.shape}; expected "
                f"{wanted} of shape (batch,)"
            )
    output = session.get_outputs()[0]
    if _ORT_DTYPES.get(output.type) != dtype:
        raise ModelLoadError(f"{path}: output is {output.type}; the manifest says {dtype}")
    for n in (1, 3):
        feeds = {
            spec.name: np.zeros(n, np.int64 if spec.kind == "factor" else dtype)
            for spec in design.inputs
        }
        try:
            y = session.run([output.name], feeds)[0]
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise ModelLoadError(f"{path}: onnxruntime cannot run it on {n} rows ({exc})") from exc
        if y.shape != (n,):
            raise ModelLoadError(f"{path}: on {n} rows it returns shape {y.shape}, not ({n},)")
    return Signature(design.input_names, manifest.target, dtype)
