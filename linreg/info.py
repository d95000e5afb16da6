"""``linreg info``: what a model's manifest holds, or what a bare ``.onnx`` file says
about itself, in words or as JSON."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from inference.errors import ModelLoadError
from inference.manifest import Manifest
from linreg.common import fail

__all__ = ["format_info", "format_onnx_info", "onnx_info", "register"]


def _fmt(value: Any, digits: int = 6) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def format_info(manifest: Manifest, directory: Path) -> str:
    """A readable account of what a manifest holds."""
    return "\n".join(
        [
            *_model_lines(manifest, directory),
            *_fit_lines(manifest),
            *_artifact_lines(manifest),
        ]
    )


def _model_lines(m: Manifest, directory: Path) -> list[str]:
    """What the model is: name, signature, ONNX graph and fitted equation."""
    onnx, out = m.onnx, m.onnx["output"]
    design = m.design
    if design is None:
        inputs = f"input {m.input_name} {onnx['input'].get('shape')}"
    else:
        inputs = "inputs " + ", ".join(f"{i['name']} ({i['dtype']})" for i in onnx["inputs"])
    lines = [
        f"model       {m.name}  (format {m.format_version}, created {m.created_at})",
        f"directory   {directory}",
        f"predicts    {m.target} from {', '.join(m.features)}",
        f"dtype       {m.dtype}"
        + (f" ({m.data['dtype_reason']})" if m.data.get("dtype_reason") else ""),
        f"onnx        {m.onnx_file}: {inputs} -> output {m.output_name} {out.get('shape')}, "
        f"opset {onnx.get('opset')}",
        f"            graph {onnx.get('graph', '?')}",
    ]
    if design is not None:
        lines += _design_lines(design)
    params = m.parameters
    if params:
        names = m.features if design is None else design.column_names
        terms = " + ".join(f"{c:.6g}·{f}" for c, f in zip(params["coef"], names, strict=False))
        lines.append(f"model       {m.target} = {terms} + {params['intercept']:.6g}")
    return lines


def _design_lines(design: Any) -> list[str]:
    """How the raw columns become the design: the formula, the factors and the gaps."""
    lines = [f"formula     {design.formula}"] if design.formula else []
    for spec in design.inputs:
        if spec.kind == "numeric":
            if spec.fill is not None:
                lines.append(f"fill        {spec.name}: a missing value is {spec.fill:.6g}")
            continue
        levels = ", ".join(spec.levels[:12]) + (", ..." if len(spec.levels) > 12 else "")
        unseen = "" if spec.unknown == "error" else "; an unseen level scores no level (warned)"
        lines.append(
            f"factor      {spec.name}: {len(spec.levels)} levels ({levels}), reference "
            f"{spec.reference}{unseen}"
        )
    lines.append(f"missing     {design.missing}: {design.rows_dropped} row(s) dropped at training")
    return lines


def _fit_lines(m: Manifest) -> list[str]:
    """How it was trained and how well it fits: configuration, statistics, metrics."""
    lines = []
    tr, st = m.training, m.statistics
    if tr:
        lines.append(
            f"training    preset {tr.get('preset')}, lr {_fmt(tr.get('lr_used'))}, "
            f"{tr.get('epochs_run')} of {tr.get('max_epochs')} epochs, batch "
            f"{tr.get('batch_size') or 'full'}, seed {tr.get('seed')}, standardize "
            f"{tr.get('standardize')}, converged {tr.get('converged')}"
        )
        if "fit_intercept" in tr:
            lines.append(
                f"            trained in {tr.get('dtype')}, intercept {tr.get('fit_intercept')}, "
                f"orthogonalize {tr.get('orthogonalize')}, "
                f"{tr.get('refinement_steps')} refinement step(s)"
            )
    if st:
        lines.append(
            f"fit         R² {_fmt(st.get('r2'))}, adj. R² {_fmt(st.get('adj_r2'))}, "
            f"F {_fmt(st.get('f_statistic'), 4)} (p {_fmt(st.get('f_pvalue'), 3)}), "
            f"residual s.e. {_fmt(st.get('residual_std_error'))}, df {st.get('df_resid')}"
        )
        lines += _parameter_lines(st) + _collinearity_lines(st)
    for split, metrics in m.metrics.items():
        if metrics:
            lines.append(
                f"{split + ' set':<12}"
                + ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items() if k != "n_samples")
                + f" ({metrics.get('n_samples')} rows)"
            )
    return lines


def _parameter_lines(st: dict[str, Any]) -> list[str]:
    """The coefficient table: names whole, columns as wide as their widest cell."""
    names = list(st.get("names", []))
    rows = [["parameter", "coef", "std err", "t", "P>|t|"]]
    for i, name in enumerate(names):
        cells = [st["params"][i], st["std_errors"][i], st["t_values"][i], st["p_values"][i]]
        rows.append([name, *(_fmt(v, 6) if v is not None else "nan" for v in cells)])
    widths = [max(len(r[j]) for r in rows) for j in range(5)]
    return [
        "            "
        + "  ".join(
            c.ljust(w) if j == 0 else c.rjust(w)
            for j, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]


def _collinearity_lines(st: dict[str, Any]) -> list[str]:
    """The collinearity diagnostics, where the manifest has them (older ones have
    statsmodels' condition number only)."""
    scaled, vif = st.get("scaled_condition_number"), st.get("vif")
    lines = []
    if scaled is not None:
        lines.append(
            f"condition   {_fmt(scaled, 3)} (Belsley-Kuh-Welsch, unit-length columns); "
            f"statsmodels' {_fmt(st.get('condition_number'), 3)} (unscaled, for information)"
        )
    elif st.get("condition_number") is not None:
        lines.append(f"condition   {_fmt(st['condition_number'], 3)} (statsmodels', unscaled)")
    if vif:
        names = st.get("names", [])[-len(vif) :]
        shown = ", ".join(f"{n} {_fmt(v, 3)}" for n, v in zip(names, vif, strict=False))
        lines.append(f"VIF         {shown}")
    return lines


def _artifact_lines(m: Manifest) -> list[str]:
    """How the artifacts were verified, their sizes and hashes, and the versions used."""
    lines = []
    ver = m.verification
    if ver:
        errs = ", ".join(f"{k} {v:.2g}" for k, v in ver["max_relative_error"].items())
        lines.append(
            f"verified    max relative error vs eager: {errs} (tolerance {ver['tolerance']})"
        )
    lines.append("artifacts")
    for name, entry in sorted(m.artifacts.items()):
        lines.append(f"            {name:<16}{entry['size']:>9} B  sha256 {entry['sha256'][:16]}…")
    lines.append("versions    " + ", ".join(f"{k} {v}" for k, v in sorted(m.versions.items())))
    return lines


def onnx_info(path: Path) -> dict[str, Any]:
    """What a bare ``.onnx`` file says about itself: its signature and metadata (read by
    :class:`inference.Predictor`, which checks the file first), opset and operators,
    size and sha256."""
    from inference.predictor import Predictor
    from inference.protobuf_wire import LEN, VARINT, last_string, parse

    predictor = Predictor.load(path, providers="cpu")
    data = path.read_bytes()
    model = parse(memoryview(data), "ModelProto")
    opsets = {}
    ops: list[str] = []
    for number, _wire, value in model:
        if number == 8 and isinstance(value, memoryview):  # opset_import
            fields = parse(value, "OperatorSetIdProto")
            version = [v for n, w, v in fields if n == 2 and w == VARINT]
            opsets[last_string(fields, 1) or "ai.onnx"] = version[-1] if version else None
        elif number == 7 and isinstance(value, memoryview):  # graph
            for n, w, node in parse(value, "GraphProto"):
                if n == 1 and w == LEN and isinstance(node, memoryview):
                    ops.append(last_string(parse(node, "NodeProto"), 4))
    session = predictor.session
    meta = session.get_modelmeta().custom_metadata_map
    return {
        "file": str(path),
        "name": meta.get("linreg.name") or path.stem,
        "features": predictor.features,
        "target": predictor.target,
        "dtype": predictor.dtype.name,
        "input": {
            "name": session.get_inputs()[0].name,
            "shape": ["batch", len(predictor.features)],
        },
        "output": {"name": session.get_outputs()[0].name, "shape": ["batch"]},
        "opsets": opsets,
        "operators": ops,
        "metadata": dict(meta),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def format_onnx_info(info: dict[str, Any]) -> str:
    """:func:`onnx_info` in words."""
    path = Path(info["file"])
    lines = [
        f"model       {info['name']}  (a bare ONNX file: no manifest, so no training record, "
        "statistics or intervals)",
        f"file        {path}  {info['size']} B  sha256 {info['sha256'][:16]}…",
        f"predicts    {info['target']} from {', '.join(info['features'])}",
        f"dtype       {info['dtype']}",
        f"onnx        input {info['input']['name']} {info['input']['shape']} -> output "
        f"{info['output']['name']} {info['output']['shape']}, opset "
        + ", ".join(f"{d} {v}" for d, v in info["opsets"].items()),
        f"            graph {', '.join(info['operators'])}",
    ]
    if (path.parent / "manifest.json").is_file():
        lines.append(f"manifest    {path.parent}/manifest.json: linreg info {path.parent}")
    return "\n".join(lines)


def _info(args: argparse.Namespace) -> int:
    path = Path(args.model)
    try:
        if path.is_file() and path.suffix.lower() != ".json":
            info = onnx_info(path)
            print(json.dumps(info, indent=2) if args.json else format_onnx_info(info))
            return 0
        manifest = Manifest.read(path)
        if args.verify:
            manifest.verify_artifacts(path if path.is_dir() else path.parent)
    except ModelLoadError as exc:
        raise fail("info", exc) from exc
    if args.json:
        print(manifest.to_json(), end="")
    else:
        print(format_info(manifest, path))
    return 0


def register(subparsers: Any) -> None:
    """Add ``linreg info`` to ``linreg``'s parser."""
    p = subparsers.add_parser(
        "info",
        help="show what a model's manifest (or a bare .onnx file) holds",
        description="A model directory's manifest in words: the model, how it was trained "
        "and how well it fits, its artifacts (checked against their sha256). Given a bare "
        ".onnx file, what the file says about itself. Exit status: 0 done, 1 a model that "
        "cannot be read, 2 usage error.",
    )
    p.add_argument("model", help="model directory (with manifest.json), or an .onnx file")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the manifest (or the .onnx file's description) as JSON (default: in words)",
    )
    p.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip the artifacts' sha256 check (default: checked)",
    )
    p.set_defaults(func=_info)
