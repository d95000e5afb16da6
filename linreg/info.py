"""``linreg info``: what a model's manifest holds, in words or as JSON."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from inference.errors import ModelLoadError
from inference.manifest import Manifest
from linreg.common import fail

__all__ = ["format_info", "register"]


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
    onnx, inp, out = m.onnx, m.onnx["input"], m.onnx["output"]
    lines = [
        f"model       {m.name}  (format {m.format_version}, created {m.created_at})",
        f"directory   {directory}",
        f"predicts    {m.target} from {', '.join(m.features)}",
        f"dtype       {m.dtype}"
        + (f" ({m.data['dtype_reason']})" if m.data.get("dtype_reason") else ""),
        f"onnx        {m.onnx_file}: input {m.input_name} {inp.get('shape')} -> output "
        f"{m.output_name} {out.get('shape')}, opset {onnx.get('opset')}",
        f"            graph {onnx.get('graph', '?')}",
    ]
    params = m.parameters
    if params:
        terms = " + ".join(f"{c:.6g}·{f}" for c, f in zip(params["coef"], m.features, strict=False))
        lines.append(f"model       {m.target} = {terms} + {params['intercept']:.6g}")
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
        lines.append(
            f"            {'parameter':<16}{'coef':>12}{'std err':>12}{'t':>9}{'P>|t|':>9}"
        )
        for i, name in enumerate(st.get("names", [])):
            lines.append(
                f"            {name[:16]:<16}{st['params'][i]:>12.6f}{st['std_errors'][i]:>12.6f}"
                f"{st['t_values'][i]:>9.3f}{st['p_values'][i]:>9.3f}"
            )
    for split, metrics in m.metrics.items():
        if metrics:
            lines.append(
                f"{split + ' set':<12}"
                + ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items() if k != "n_samples")
                + f" ({metrics.get('n_samples')} rows)"
            )
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


def _info(args: argparse.Namespace) -> int:
    path = Path(args.model)
    try:
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
        "info", help="show what a model's manifest holds", description=format_info.__doc__
    )
    p.add_argument("model", help="model directory (with manifest.json)")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip the sha256 check")
    p.set_defaults(func=_info)
