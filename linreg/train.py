"""``linreg train`` and ``linreg regenerate``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linreg.common import (
    EXIT_DATA,
    add_progress_flags,
    check_cluster_flags,
    csv_list,
    fail,
    fraction,
    freeze_at_exit,
    require,
    usage,
)
from linreg.train_flags import (
    EXPORT_OPTIONS,
    SHOW_ROWS,
    add_big_data_flags,
    add_export_flags,
    add_fit_flags,
    add_table_flags,
)
from training.data import DATASETS
from training.defaults import PRESETS

if TYPE_CHECKING:
    from training.pipeline import TrainingRun

__all__ = ["REGENERATE_DIR", "register"]

REGENERATE_DIR = Path("exported_models")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = {
        "lr": "lr",
        "epochs": "max_epochs",
        "batch_size": "batch_size",
        "momentum": "momentum",
        "tol": "tol",
        "seed": "seed",
        "train_dtype": "dtype",
    }
    out = {
        param: getattr(args, arg) for arg, param in names.items() if getattr(args, arg) is not None
    }
    if args.no_early_stop:
        out["early_stop"] = False
    if args.no_standardize:
        out["standardize"] = False
    if args.no_intercept:
        out["fit_intercept"] = False
    if args.progress is not None:
        out["progress"] = args.progress
    return out


def _train(args: argparse.Namespace) -> int:
    _check_usage(args)
    engine = _engine(args)
    if engine != "memory":
        _check_chunked_flags(args, engine)
        _preload_in_background()
        run = _fit_chunked(args, engine)
    else:
        run = _fit(args)
    print(run.summary())
    if args.out is not None:
        if not run.report.converged and not args.allow_unconverged:
            raise fail(
                "train",
                f"the fit did not converge in {run.report.epochs} epochs, so it was not "
                f"exported to {args.out}; raise --epochs, leave --lr unset, or pass "
                "--allow-unconverged to export it anyway",
                EXIT_DATA,
            )
        _export_and_show(args, run)
    if engine != "memory":
        from training.chunked.results import rows_per_second

        print(rows_per_second(run), flush=True)
        freeze_at_exit()
    return 0


def _check_usage(args: argparse.Namespace) -> None:
    """Options that need another option, and an existing --out: usage errors, before
    anything is read."""
    if args.data is not None and args.target is None and not args.formula:
        raise usage("train", "--data needs --target, the column to predict (or --formula)")
    if args.formula and (args.target or args.features):
        raise usage("train", "--formula names the target and the terms: drop --target/--features")
    if args.data is None:
        used = [f"--{o}" for o in ("target", "features") if getattr(args, o) is not None]
        if args.engine not in ("auto", "memory") or args.streaming:
            used.append("--streaming" if args.streaming else f"--engine {args.engine}")
        if used:
            verb = "need" if len(used) > 1 else "needs"
            raise usage("train", f"{' and '.join(used)} {verb} --data FILE")
    require(
        "train",
        args,
        [
            (EXPORT_OPTIONS, "--out", args.out is not None),
            (("streaming",), "--engine auto or streaming", args.engine in ("auto", "streaming")),
            (
                ("formula", "reference"),
                "--engine memory or auto (tables with text are fitted in memory)",
                args.engine in ("auto", "memory") and not args.streaming,
            ),
        ],
    )
    if args.out is not None and args.out.exists() and not args.overwrite:
        raise usage("train", f"{args.out} exists; pass --overwrite to replace it")


def _engine(args: argparse.Namespace) -> str:
    """``memory`` (load, then the in-memory fit), ``chunked`` (read once, held in
    chunks), ``streaming`` (read the file again on each pass) or ``dask``.

    ``--engine auto`` (the default) loads a file under
    :data:`~training.defaults.CHUNKED_THRESHOLD_BYTES`, streams one of at least
    :data:`~training.defaults.STREAMING_THRESHOLD_BYTES`, and fits the sizes between in
    chunks; ``--chunk-rows`` makes it fit in chunks at any size.
    """
    from training.defaults import CHUNKED_THRESHOLD_BYTES, STREAMING_THRESHOLD_BYTES

    check_cluster_flags("train", args, dask=args.engine == "dask")
    if args.streaming:
        return "streaming"
    if args.engine != "auto":
        return str(args.engine)
    if args.data is None or not Path(args.data).is_file() or args.formula or args.reference:
        return "memory"
    size = Path(args.data).stat().st_size
    if size >= STREAMING_THRESHOLD_BYTES:
        return "streaming"
    return "chunked" if size >= CHUNKED_THRESHOLD_BYTES or args.chunk_rows else "memory"


def _check_chunked_flags(args: argparse.Namespace, engine: str) -> None:
    """What a fit in chunks (or on Dask) cannot do: usage errors."""
    if engine == "dask" and args.max_line_bytes is not None:
        raise usage(
            "train", "--max-line-bytes is not for --engine dask (Dask reads through pandas)"
        )
    if args.data is None:
        raise usage("train", f"--engine {engine} needs --data FILE")
    if args.test_size:
        raise usage(
            "train",
            f"--test-size is not available when the data are fitted in chunks ({engine}); "
            "hold rows out in a separate file",
        )
    raw = args.no_standardize or PRESETS[args.preset].get("standardize") is False
    if raw:
        why = "--no-standardize" if args.no_standardize else f"--preset {args.preset}"
        raise usage(
            "train",
            f"{why} fits raw features, which needs the data in memory (--engine memory); "
            f"a fit in chunks ({engine}) always preconditions",
        )
    require(
        "train",
        args,
        [
            (("chunk_rows",), "--engine chunked or streaming", engine != "dask"),
            (("batch_size",), "a fit that is not on Dask (full batch only)", engine != "dask"),
        ],
    )


def _preload_in_background() -> None:
    """Import torch and the statistics' scipy in a thread while the main thread reads
    and factors the data: pyarrow parses without the GIL, so the imports overlap the
    I/O."""
    import threading

    def work() -> None:
        try:
            import training.solver.sgd  # noqa: F401  (torch)
            import training.stats  # noqa: F401  (scipy)
        except Exception:  # pragma: no cover - the main thread imports again and reports
            pass

    threading.Thread(target=work, name="linreg-preload", daemon=True).start()


def _fit_chunked(args: argparse.Namespace, engine: str) -> TrainingRun:
    """Fit ``args.data`` in chunks (``chunked``, ``streaming``) or on Dask.

    torch and scipy are not imported here before the data are read (the preloading
    thread imports them meanwhile), and scikit-learn not at all unless the run is
    exported: warnings are collected, then the expected ones (convergence and
    collinearity, shown in the summary) dropped.
    """
    overrides = _overrides(args)
    features = csv_list(args.features) if args.features else None
    with _errors_reported(), _warnings_shown_in_summary():
        if engine == "dask":
            from training.chunked.dask import fit_dask_file

            return fit_dask_file(
                args.data,
                target=args.target,
                features=features,
                scheduler=args.scheduler,
                workers=args.workers or 2,
                preset=args.preset,
                **overrides,
            )
        from training.chunked.streaming import DEFAULT_CHUNK_ROWS, fit_file

        return fit_file(
            args.data,
            target=args.target,
            features=features,
            chunk_rows=args.chunk_rows or DEFAULT_CHUNK_ROWS,
            preset=args.preset,
            in_memory=engine == "chunked",
            max_line_bytes=args.max_line_bytes,
            **overrides,
        )


@contextmanager
def _errors_reported() -> Iterator[None]:
    """The library's errors (bad data, a diverged fit) and pyarrow's (a ValueError) as
    ``linreg train: error: ...``; a usage error exits 2, the others 1."""
    from inference.errors import LinregError

    try:
        yield
    except (LinregError, ValueError) as exc:
        raise fail("train", exc) from exc


@contextmanager
def _warnings_shown_in_summary() -> Iterator[None]:
    """Warnings raised inside are collected, then re-emitted, except the convergence
    and collinearity ones, which the summary shows in its own lines.

    Nothing here imports scikit-learn, which defines the convergence warning's base
    class: when ``training.solver.estimator`` was never imported (a chunked fit that
    converged), no such warning can have been raised."""
    import sys
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    from training.errors import CollinearityWarning

    shown: tuple[type[Warning], ...] = (CollinearityWarning,)
    fit_module = sys.modules.get("training.solver.estimator")
    if fit_module is not None:
        shown += (fit_module.ConvergenceWarning,)
    for w in caught:
        if not issubclass(w.category, shown):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _fit(args: argparse.Namespace) -> TrainingRun:
    """Load the data ``args`` name and train on it; an unconverged fit's warning is
    shown in the summary, not as a Python warning."""
    from training.data.frames import is_frame
    from training.pipeline import train

    with _errors_reported():
        data = _table_or_frame(args)
        options = _design_options(args) if is_frame(data) else {}
        with _warnings_shown_in_summary():
            return train(
                data,
                preset=args.preset,
                test_size=args.test_size,
                **options,
                **_overrides(args),
            )


def _table_or_frame(args: argparse.Namespace) -> Any:
    """The data to fit: a Table of numbers, or (a formula, a reference level, a bundled
    table with text, or a file whose numeric reading meets text or a gap while
    ``--missing drop``) a DataFrame fitted on its design."""
    from training.data import DATASETS, load_dataset, load_dataset_frame, load_frame, load_table
    from training.errors import CellError

    limit = {} if args.max_line_bytes is None else {"max_line_bytes": args.max_line_bytes}
    design = bool(args.formula or args.reference)
    if not args.data:
        numeric = DATASETS[args.dataset].numeric
        return (
            load_dataset(args.dataset)
            if numeric and not design
            else load_dataset_frame(args.dataset)
        )
    if not design:
        try:
            return load_table(
                args.data,
                target=args.target,
                features=csv_list(args.features) if args.features else None,
                **limit,
            )
        except CellError as exc:  # text or a gap: the design's, unless in the target
            if (
                exc.kind == "nonfinite"
                or exc.column == args.target
                or (exc.kind == "missing" and args.missing == "error")
            ):
                raise
    return load_frame(args.data, **limit)


def _design_options(args: argparse.Namespace) -> dict[str, Any]:
    """train()'s arguments for a DataFrame: formula, or target and features; gaps and
    reference levels."""
    from training.data import DATASETS

    options: dict[str, Any] = {"missing": args.missing}
    if args.formula:
        options["formula"] = args.formula
    elif args.data:
        options["target"] = args.target
        options["features"] = csv_list(args.features) if args.features else None
    else:
        spec = DATASETS[args.dataset]
        options["target"] = spec.target
        options["features"] = list(spec.features)
    if args.reference:
        options["references"] = dict(_reference(text) for text in args.reference)
    return options


def _reference(text: str) -> tuple[str, str]:
    column, sep, level = text.partition("=")
    if not sep or not column or not level:
        raise usage("train", f"--reference {text!r}: expected COLUMN=LEVEL")
    return column, level


def _export_and_show(args: argparse.Namespace, run: TrainingRun) -> None:
    """Export to ``args.out``, reload it with the Predictor and print its first rows."""
    from inference import IntervalPrediction, Predictor
    from training.export import export_model

    with _errors_reported():
        out = export_model(
            run,
            args.out,
            name=args.name,
            overwrite=args.overwrite,
            plots=not args.no_plots,
            dtype=args.dtype or "auto",
            allow_unconverged=args.allow_unconverged,
            sign_key=args.sign_key,
        )
    predictor = Predictor.load(out)
    count = SHOW_ROWS if args.show is None else args.show
    if run.design is None:
        rows: Any = run.X_train[:count]
        shown = [dict(zip(run.features, map(float, x), strict=True)) for x in rows]
    else:
        rows = run.raw_train.head(count)
        shown = rows.to_dict(orient="records")
    pred = predictor.predict(rows, interval="prediction")
    assert isinstance(pred, IntervalPrediction)
    print(f"\nExported to {out} (model.onnx, model.pt, manifest.json). Through inference.Predictor")
    print(f"({', '.join(predictor.providers)}), first {len(shown)} rows, 95% prediction interval:")
    for row, y, lo, hi in zip(shown, pred.prediction, pred.lower, pred.upper, strict=True):
        feats = ", ".join(
            f"{f}={v:g}" if isinstance(v, float) else f"{f}={v}" for f, v in row.items()
        )
        print(f"  {feats:<40} -> {run.target} {y:.6f}  [{lo:.4f}, {hi:.4f}]")


def _regenerate(args: argparse.Namespace) -> int:
    from inference.errors import LinregError
    from training.data import load_dataset, load_dataset_frame
    from training.export import export_model
    from training.pipeline import train

    for name, spec in DATASETS.items():
        try:
            if spec.numeric:
                run = train(load_dataset(name), seed=0, progress=False)
            else:
                frame = load_dataset_frame(name)
                run = train(
                    frame, target=spec.target, features=list(spec.features), seed=0, progress=False
                )
            out = export_model(run, Path(args.dir) / name, name=name, overwrite=True)
        except (LinregError, OSError) as exc:
            raise fail("regenerate", f"{name}: {exc}") from exc
        print(f"{out}: {run.report.epochs} epochs, R² {run.statistics.r2:.7f}")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="fit, report and (with --out) export a model",
        description="Fit torch.nn.Linear with SGD, print a statsmodels-style summary, and "
        "with --out export model.onnx, model.pt, manifest.json and plots, verified. "
        "Exit status: 0 done, 1 bad data or a failed fit or export, 2 usage error.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--dataset",
        default="plant_richness_lr",
        choices=sorted(DATASETS),
        help="bundled data set (default: plant_richness_lr, unless --data)",
    )
    src.add_argument(
        "--data", type=Path, help="CSV, TSV or Parquet file to fit (default: --dataset)"
    )
    p.add_argument("--target", help="with --data: the column to predict (required with --data)")
    p.add_argument(
        "--features",
        metavar="A,B",
        help="with --data: comma-separated feature columns (default: every column but the target)",
    )
    add_table_flags(p)
    add_fit_flags(p)
    p.add_argument(
        "--test-size",
        type=fraction,
        default=0.0,
        help="fraction of the rows held out for the held-out metrics (default: 0, none)",
    )
    add_export_flags(p)
    add_big_data_flags(p)
    add_progress_flags(p)
    p.set_defaults(func=_train)

    r = subparsers.add_parser(
        "regenerate",
        help="re-train and re-export the bundled models",
        description="Train both bundled data sets with the default preset (seed 0) and "
        "export them to DIR/<name>, replacing what is there.",
    )
    r.add_argument(
        "--dir",
        type=Path,
        default=REGENERATE_DIR,
        help=f"where the models go (default: {REGENERATE_DIR})",
    )
    r.set_defaults(func=_regenerate)
