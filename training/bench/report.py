"""The report of a run: ``bench.md`` (tables), ``bench.png`` (plot), ``bench.json``.

``bench.json`` is in pytest-benchmark's layout (:mod:`training.bench.benchjson`), so
``pytest-benchmark compare a.json b.json`` reads it.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from pathlib import Path

from inference.io.atomic import AtomicFile
from training.bench.benchjson import to_json
from training.bench.coldstart import COLD_NOTES
from training.bench.machine import cpu_description, cpu_model, versions
from training.bench.run import BenchRun
from training.bench.timing import Result, bound_seconds
from training.bench.workload import BATCH_SIZES

__all__ = ["markdown", "plot", "targets", "write_report"]

#: the aims that the "Targets" table checks
AIM_ONE_ROW_RATIO = 2.0
#: the Predictor's rate at the largest batch, as a multiple of the better of numpy and
#: torch eager (issue 29: at least 1.0)
AIM_THROUGHPUT_FRACTION = 1.0
#: ... and as a fraction of the copy bound at k = 1 (issue 29: at least 70 %)
AIM_BOUND_FRACTION_K1 = 0.7
AIM_COLD_START_S = 0.3
AIM_RSS_MB = 80.0

Row = tuple[str, str, str, str]


def fmt_time(seconds: float) -> str:
    """``"12.34 µs"``, ``"1.234 ms"`` or ``"1.234 s"``."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds:.3f} s"


def _fmt_rate(rows_per_s: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if rows_per_s >= scale:
            return f"{rows_per_s / scale:.3g} {unit}"
    return f"{rows_per_s:.3g}"


def _verdict(ok: bool) -> str:
    return "meets" if ok else "misses"


def fmt_load(load: float | None) -> str:
    """A 1-minute load average as ``"0.42"`` (``"?"`` where unknown)."""
    return "?" if load is None else f"{load:.2f}"


def _load_span(r: Result) -> str:
    return f"{fmt_load(r.load_before)} → {fmt_load(r.load_after)}"


# --- targets ----------------------------------------------------------------------------


def _one_row_targets(run: BenchRun) -> list[Row]:
    rows = []
    for k in run.settings["features"]:
        numpy_1 = run.p50("numpy", 1, k)
        if numpy_1 is None:
            continue
        for name, what in (
            ("predictor", "predict(1-row array)"),
            ("predict-one", "predict_one(**row)"),
            ("ort-session", "plain InferenceSession.run"),
            ("ort-floor", "onnxruntime floor (IOBinding, pre-bound)"),
        ):
            p50 = run.p50(name, 1, k)
            if p50 is None:
                continue
            ratio = p50 / numpy_1
            rows.append(
                (
                    f"{what}, 1 row, k={k}: p50 ≤ {AIM_ONE_ROW_RATIO:g}× numpy",
                    f"{fmt_time(p50)} = {ratio:.2f}×",
                    f"numpy x @ w + b {fmt_time(numpy_1)}",
                    _verdict(ratio <= AIM_ONE_ROW_RATIO)
                    if name in ("predictor", "predict-one")
                    else "(reference)",
                )
            )
    return rows


def _throughput_targets(run: BenchRun) -> list[Row]:
    rows = []
    big = max(run.settings["sizes"])
    bw = run.bandwidth["bytes_per_s"]
    for k in run.settings["features"] if big >= BATCH_SIZES[-1] else ():
        refs = {name: p for name in ("numpy", "torch-eager") if (p := run.p50(name, big, k))}
        if not refs:
            continue
        best_name = min(refs, key=refs.__getitem__)
        for name in ("predictor", "predictor-spin", "predictor-single", "ort-session", "ort-floor"):
            p50 = run.p50(name, big, k)
            if p50 is None:
                continue
            frac = refs[best_name] / p50
            of_bound = bound_seconds(big, k, bw) / p50
            aim = (
                f"throughput ≥ {AIM_THROUGHPUT_FRACTION:.0%} of the better of numpy and torch eager"
            )
            ok = frac >= AIM_THROUGHPUT_FRACTION
            if k == 1:
                aim += f", ≥ {AIM_BOUND_FRACTION_K1:.0%} of the bandwidth bound"
                ok = ok and of_bound >= AIM_BOUND_FRACTION_K1
            verdicts = {"predictor": _verdict(ok), "predictor-spin": f"option: {_verdict(ok)}"}
            rows.append(
                (
                    f"{name}, {big:,} rows, k={k}: {aim}",
                    f"{fmt_time(p50)} = {frac:.0%}; {100 * of_bound:.0f}% of the bandwidth "
                    f"bound (load {_load_span(_result(run, name, big, k))})",
                    f"{best_name} {fmt_time(refs[best_name])}",
                    verdicts.get(name, "(reference)"),
                )
            )
    return rows


def _result(run: BenchRun, name: str, n: int, k: int) -> Result:
    return next(r for r in run.results if r.backend.name == name and r.n == n and r.k == k)


def _cold_targets(run: BenchRun) -> list[Row]:
    if "predictor" not in run.cold:
        return []
    pred = run.cold_median("predictor")
    ts = run.cold_median("torchscript") if "torchscript" in run.cold else None
    ref = f"torchscript {ts['total_s']:.3f} s, {ts['rss_mb']:.0f} MiB" if ts else "(not run)"
    return [
        (
            f"cold start (import, load, first prediction) ≤ {AIM_COLD_START_S:g} s",
            f"{pred['total_s']:.3f} s (process wall {pred['wall_s']:.3f} s)",
            ref,
            _verdict(pred["total_s"] <= AIM_COLD_START_S),
        ),
        (
            f"peak RSS ≤ {AIM_RSS_MB:g} MB",
            f"{pred['rss_mb']:.1f} MiB",
            ref,
            _verdict(pred["rss_mb"] * 1.048576 <= AIM_RSS_MB),
        ),
    ]


def targets(run: BenchRun) -> list[Row]:
    """(target, measured, reference, verdict) rows: 1-row latency, throughput, cold start."""
    return _one_row_targets(run) + _throughput_targets(run) + _cold_targets(run)


# --- Markdown ---------------------------------------------------------------------------


def _machine_lines(run: BenchRun) -> list[str]:
    bw = run.bandwidth
    lines = [
        f"Machine: {cpu_description()} (CPU model `{cpu_model()}`: every figure below "
        f"is this machine's); {platform.system()} {platform.release()}; "
        + ", ".join(f"{m} {ver}" for m, ver in versions().items())
        + ".",
        "",
        f"Memory bandwidth (yardstick): {bw['bytes_per_s'] / 1e9:.1f} GB/s read + write, "
        f"{bw['method']}; "
        + ", ".join(
            f"{key[len('bytes_per_s (') : -1]} {val / 1e9:.1f} GB/s"
            for key, val in bw.items()
            if key.startswith("bytes_per_s (")
        )
        + ".",
        "",
        f"Run {run.started}; rounds: {run.settings['rounds']}; input seed {run.settings['seed']}"
        " (the same float32 array for every backend).",
        "",
        "Load average (1 minute, all cores together): "
        + "; ".join(f"{fmt_load(v)} at {when}" for when, v in run.load.items())
        + f"; the `load` column is before → after each backend's timed blocks. Above "
        f"{os.cpu_count()} (the cores), other processes shared the cores while it was timed.",
        "",
    ]
    lines += ["| backend | provider | device | note |", "|---|---|---|---|"]
    for name in dict.fromkeys(r.backend.name for r in run.results):
        b = next(r.backend for r in run.results if r.backend.name == name)
        lines.append(f"| {name} | {b.provider} | {b.device} | {b.note} |")
    lines.append("")
    return lines


def _group_lines(run: BenchRun, k: int) -> list[str]:
    lines = [
        f"### k = {k} feature{'s' if k > 1 else ''}",
        "",
        "| batch | backend | p50 | p90 | p99 | rows/s | % of bound | p50 ÷ numpy | load |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in (r for r in run.results if r.k == k):
        p50 = r.p50
        numpy_p50 = run.p50("numpy", r.n, k)
        ratio = f"{p50 / numpy_p50:.2f}" if numpy_p50 else "–"
        bound = bound_seconds(r.n, k, run.bandwidth["bytes_per_s"])
        lines.append(
            f"| {r.n:,} | {r.backend.name} | {fmt_time(p50)} "
            f"| {fmt_time(r.percentile(90))} | {fmt_time(r.percentile(99))} "
            f"| {_fmt_rate(r.n / p50)} | {100 * bound / p50:.1f} % | {ratio} | {_load_span(r)} |"
        )
    lines.append("")
    return lines


def _cold_lines(run: BenchRun) -> list[str]:
    lines = [
        f"### Cold start (fresh process, k = {run.cold_k}, median of "
        f"{run.settings['cold_repeats']})",
        "",
        "| backend | what | import | load | first prediction | total | process wall | peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in run.cold:
        m = run.cold_median(name)
        lines.append(
            f"| {name} | {COLD_NOTES[name]} | {fmt_time(m['import_s'])} "
            f"| {fmt_time(m['load_s'])} | {fmt_time(m['first_s'])} "
            f"| {fmt_time(m['total_s'])} | {fmt_time(m['wall_s'])} | {m['rss_mb']:.1f} MiB |"
        )
    lines.append("")
    return lines


def markdown(run: BenchRun) -> str:
    """The report: machine, latency and throughput tables, targets, cold starts."""
    lines = _machine_lines(run)
    for k in run.settings["features"]:
        lines += _group_lines(run, k)
    rows = targets(run)
    if rows:
        lines += [
            "### Targets",
            "",
            "| target | measured | reference (same run) | verdict |",
            "|---|---|---|---|",
        ]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
        lines.append("")
    if run.cold:
        lines += _cold_lines(run)
    if run.skipped:
        lines += ["Skipped:", ""]
        lines += [f"- `{name}`: {reason}" for name, reason in run.skipped.items()]
        lines.append("")
    return "\n".join(lines)


# --- plot and files ---------------------------------------------------------------------


def plot(run: BenchRun, path: Path) -> None:
    """p50 latency and percent of the bandwidth bound against batch size, per k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    features = run.settings["features"]
    fig, axes = plt.subplots(2, len(features), figsize=(6 * len(features), 8), squeeze=False)
    names = list(dict.fromkeys(r.backend.name for r in run.results))
    markers = "os^vDPX*"
    styles = {
        name: markers[i % len(markers)] + ("-" if i < 8 else "--") for i, name in enumerate(names)
    }
    bw = run.bandwidth["bytes_per_s"]
    for col, k in enumerate(features):
        top, bottom = axes[0][col], axes[1][col]
        for name in names:
            rs = sorted((r for r in run.results if r.k == k and r.backend.name == name),
                        key=lambda r: r.n)  # fmt: skip
            if not rs:
                continue
            ns = [r.n for r in rs]
            p50 = [r.p50 for r in rs]
            top.plot(ns, p50, styles[name], label=name, markersize=4)
            bottom.plot(
                ns,
                [100 * bound_seconds(n, k, bw) / t for n, t in zip(ns, p50, strict=True)],
                styles[name],
                label=name,
                markersize=4,
            )
        sizes = sorted({r.n for r in run.results if r.k == k})
        fastest = min(r.p50 for r in run.results if r.k == k)
        shown = [n for n in sizes if bound_seconds(n, k, bw) >= fastest / 100]  # keep the scale
        top.plot(shown, [bound_seconds(n, k, bw) for n in shown], "k:", label="bandwidth bound")
        top.set(xscale="log", yscale="log", xlabel="batch (rows)", ylabel="p50 per call (s)")
        top.set_title(f"k = {k}: p50 latency")
        bottom.axhline(100, color="k", linestyle=":", label="bandwidth bound")
        bottom.set(xscale="log", yscale="log", xlabel="batch (rows)", ylabel="% of bound")
        bottom.set_title(f"k = {k}: percent of the memory-bandwidth bound")
        for ax in (top, bottom):
            ax.grid(True, which="both", alpha=0.3)
        top.legend(fontsize=8)
    loads = ", ".join(fmt_load(v) for v in run.load.values())
    fig.suptitle(
        f"linreg bench: {cpu_description()}, {bw / 1e9:.0f} GB/s copy bandwidth, load {loads}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")  # the temporary name has no .png
    plt.close(fig)


def write_report(run: BenchRun, out: str | Path) -> dict[str, Path]:
    """Write ``bench.md``, ``bench.png`` and ``bench.json`` into ``out`` (atomically each)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "bench.md", "plot": out / "bench.png", "json": out / "bench.json"}
    writers: dict[str, Callable[[Path], object]] = {
        "markdown": lambda p: p.write_text(markdown(run) + "\n", encoding="utf-8"),
        "plot": lambda p: plot(run, p),
        "json": lambda p: p.write_text(json.dumps(to_json(run), indent=2) + "\n", "utf-8"),
    }
    for key, path in paths.items():
        with AtomicFile(path) as file:
            writers[key](file.tmp)
            file.commit()
    return paths
