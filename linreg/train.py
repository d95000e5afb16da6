"""``linreg train`` and ``linreg regenerate``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linreg.common import (
    EXIT_USAGE,
    add_cluster_flags,
    add_progress_flags,
    check_cluster_flags,
    csv_list,
    fail,
    freeze_at_exit,
)
from training.data import DATASETS

if TYPE_CHECKING:
    from training.pipeline import TrainingRun

__all__ = ["register", "REGENERATE_DIR"]

REGENERATE_DIR = Path("exported_models")
#: ``linreg train`` exits with 2 on every error it reports, bad data included, as it
#: always has (``linreg predict`` tells bad data, 1, from bad usage, 2)
TRAIN_ERROR_STATUS = EXIT_USAGE


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
    if args.sign_key is not None and args.out is None:
        raise fail("train", "--sign-key signs the export: give --out DIR too", EXIT_USAGE)
    engine = _engine(args)
    if engine != "memory":
        _check_chunked_flags(args, engine)
        _preload_in_background()
        run = _fit_chunked(args, engine)
    else:
        run = _fit(args)
    print(_summary(args, run))
    if args.out is not None:
        if not run.report.converged and not args.allow_unconverged:
            raise fail(
                "train",
                f"the fit did not converge in {run.report.epochs} epochs, so it was not "
                f"exported to {args.out}; raise --epochs, leave --lr unset, or pass "
                "--allow-unconverged to export it anyway",
                TRAIN_ERROR_STATUS,
            )
        _export_and_show(args, run)
    if engine != "memory":
        from training.chunked.results import rows_per_second

        print(rows_per_second(run), flush=True)
        freeze_at_exit()
    return 0


def _engine(args: argparse.Namespace) -> str:
    """``memory`` (load, then the in-memory fit), ``chunked`` (read once, held in
    chunks), ``streaming`` (read the file again on each pass) or ``dask``.

    ``--engine auto`` (the default) loads a file under
    :data:`~training.defaults.CHUNKED_THRESHOLD_BYTES`, streams one of at least
    :data:`~training.defaults.STREAMING_THRESHOLD_BYTES`, and fits the sizes between in
    chunks.
    """
    from training.defaults import CHUNKED_THRESHOLD_BYTES, STREAMING_THRESHOLD_BYTES

    check_cluster_flags("train", args, dask=args.engine == "dask")
    if args.engine == "dask":
        return "dask"
    if args.streaming or args.engine == "streaming":
        return "streaming"
    if args.engine in ("memory", "chunked"):
        return str(args.engine)
    if args.data is None or not Path(args.data).is_file():
        return "memory"
    size = Path(args.data).stat().st_size
    if size >= STREAMING_THRESHOLD_BYTES:
        return "streaming"
    return "chunked" if size >= CHUNKED_THRESHOLD_BYTES else "memory"


def _check_chunked_flags(args: argparse.Namespace, engine: str) -> None:
    if args.data is None:
        raise fail("train", f"--engine {engine} / --streaming need --data FILE", EXIT_USAGE)
    if args.test_size:
        raise fail(
            "train",
            f"--test-size is not available when the data are fitted in chunks ({engine}); "
            "hold rows out in a separate file",
            EXIT_USAGE,
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
    exported: the error classes are looked up only when something was raised, and
    warnings are collected, then the expected ones (convergence and collinearity,
    shown in the summary) dropped.
    """
    from training.data import DataError

    overrides = _overrides(args)
    features = csv_list(args.features) if args.features else None
    try:
        with _warnings_shown_in_summary():
            if engine == "dask":
                from training.chunked.dask import fit_dask_file

                run = fit_dask_file(
                    args.data,
                    target=args.target,
                    features=features,
                    scheduler=args.scheduler,
                    workers=args.workers or 2,
                    preset=args.preset,
                    **overrides,
                )
            else:
                from training.chunked.streaming import DEFAULT_CHUNK_ROWS, fit_file

                run = fit_file(
                    args.data,
                    target=args.target,
                    features=features,
                    chunk_rows=args.chunk_rows or DEFAULT_CHUNK_ROWS,
                    preset=args.preset,
                    in_memory=engine == "chunked",
                    **overrides,
                )
    except (DataError, ValueError) as exc:
        raise fail("train", exc, TRAIN_ERROR_STATUS) from exc
    except RuntimeError as exc:
        from training.errors import DivergenceError

        if isinstance(exc, DivergenceError):
            raise fail("train", exc, TRAIN_ERROR_STATUS) from exc
        raise
    return run


@contextmanager
def _warnings_shown_in_summary() -> Iterator[None]:
    """Warnings raised inside are collected, then re-emitted, except the convergence
    and collinearity ones, which the summary shows in its own lines.

    Nothing here imports scikit-learn, which defines the convergence warning's base
    class: when ``training.solver.estimator`` was never imported (a chunked fit that converged),
    no such warning can have been raised."""
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
    shown in the summary (:func:`_summary`), not as a Python warning."""
    from training.data import DataError, load_dataset, load_table
    from training.errors import DivergenceError
    from training.pipeline import train

    try:
        if args.data:
            table = load_table(
                args.data,
                target=args.target,
                features=csv_list(args.features) if args.features else None,
            )
        else:
            table = load_dataset(args.dataset)
        with _warnings_shown_in_summary():
            return train(table, preset=args.preset, test_size=args.test_size, **_overrides(args))
    except (DataError, DivergenceError, ValueError) as exc:
        raise fail("train", exc, TRAIN_ERROR_STATUS) from exc


def _summary(args: argparse.Namespace, run: TrainingRun) -> str:
    """The statsmodels-style table, with how training went and the held-out metrics."""
    from training.stats import summary_table

    fit = run.report
    extra = {
        "Training": f"preset {args.preset}, lr {fit.lr_used:.6g}"
        f"{' (chosen)' if fit.lr is None else ''}, {fit.epochs} epoch(s), "
        f"{'converged' if fit.converged else 'NOT CONVERGED'} (tol {fit.tol:g}), "
        f"{fit.refinement_steps} of them refinement steps, "
        f"{fit.seconds:.3f} s",
    }
    engine = run.data.get("engine")
    if engine:
        extra["Data"] = (
            f"{run.data['n_rows']:,} rows fitted {engine} ({len(run.data['passes'])} passes); "
            f"the export is verified on a sample of {run.data['sample_rows']:,} rows"
        )
    if not fit.converged:
        extra["Warning"] = (
            f"SGD did not converge in {fit.epochs} epochs: the parameters and the "
            "statistics above are not the least-squares fit"
        )
    if run.metrics["heldout"]:
        h = run.metrics["heldout"]
        extra["Held-out"] = (
            f"{h['n_samples']} rows: MSE {h['mse']:.6g}, RMSE {h['rmse']:.6g}, "
            f"MAE {h['mae']:.6g}, R² {h['r2']:.6g}"
        )
    return summary_table(run.statistics, target=run.target, extra=extra)


def _export_and_show(args: argparse.Namespace, run: TrainingRun) -> None:
    """Export to ``args.out``, reload it with the Predictor and print its first rows."""
    from inference import IntervalPrediction, Predictor
    from training.export import ExportError, export_model

    try:
        out = export_model(
            run,
            args.out,
            name=args.name,
            overwrite=args.overwrite,
            plots=args.plots,
            dtype=args.dtype,
            allow_unconverged=args.allow_unconverged,
            sign_key=args.sign_key,
        )
    except ExportError as exc:
        raise fail("train", exc, TRAIN_ERROR_STATUS) from exc
    predictor = Predictor.load(out)
    rows = run.X_train[: args.show]
    pred = predictor.predict(rows, interval="prediction")
    assert isinstance(pred, IntervalPrediction)
    print(f"\nExported to {out} (model.onnx, model.pt, manifest.json). Through inference.Predictor")
    print(f"({', '.join(predictor.providers)}), first {len(rows)} rows, 95% prediction interval:")
    for x, y, lo, hi in zip(rows, pred.prediction, pred.lower, pred.upper, strict=True):
        feats = ", ".join(f"{f}={v:g}" for f, v in zip(run.features, x, strict=True))
        print(f"  {feats:<40} -> {run.target} {y:.6f}  [{lo:.4f}, {hi:.4f}]")


def _regenerate(args: argparse.Namespace) -> int:
    from training.data import load_dataset
    from training.errors import DivergenceError
    from training.export import ExportError, export_model
    from training.pipeline import train

    for name in DATASETS:
        try:
            run = train(load_dataset(name), seed=0, progress=False)
            out = export_model(run, Path(args.dir) / name, name=name, overwrite=True)
        except (ValueError, DivergenceError, ExportError, OSError) as exc:
            raise fail("regenerate", f"{name}: {exc}") from exc
        print(f"{out}: {run.report.epochs} epochs, R² {run.statistics.r2:.7f}")
    return 0


def _add_big_data_flags(p: argparse.ArgumentParser) -> None:
    """``--streaming``, ``--chunk-rows``, ``--engine`` and the Dask cluster's flags."""
    big = p.add_argument_group(
        "big data",
        "files from 64 MiB are fitted in chunks (read once), files from 1 GiB are streamed "
        "(read again on each pass, memory bounded by the chunk size); --engine picks another "
        "way",
    )
    big.add_argument(
        "--streaming",
        action="store_true",
        help="stream the file whatever its size: memory bounded by --chunk-rows",
    )
    big.add_argument("--chunk-rows", type=int, help="rows per chunk when fitting in chunks (8192)")
    big.add_argument(
        "--engine",
        choices=["auto", "memory", "chunked", "streaming", "dask"],
        default="auto",
        help="auto (the default: memory below 64 MiB, chunked below 1 GiB, streaming above), "
        "memory (load, in-memory fit), chunked (read once, held in chunks), streaming "
        "(read on each pass; same as --streaming) or dask (a cluster: partitions send their "
        "factors and gradient sums, never rows)",
    )
    add_cluster_flags(big)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="fit, report and (with --out) export a model",
        description="Fit torch.nn.Linear with SGD, print a statsmodels-style summary, and "
        "with --out export model.onnx, model.pt, manifest.json and plots, verified.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--dataset",
        default="plant_richness_lr",
        choices=sorted(DATASETS),
        help="bundled data set (default: plant_richness_lr)",
    )
    src.add_argument("--data", type=Path, help="CSV, TSV or Parquet file")
    p.add_argument("--target", help="target column (with --data)")
    p.add_argument("--features", help="comma-separated feature columns (default: all others)")
    p.add_argument("--preset", default="default", choices=["default", "tutorial"])
    p.add_argument("--lr", type=float, help="learning rate (default: chosen from the data)")
    p.add_argument("--epochs", type=int, help="maximum epochs")
    p.add_argument("--batch-size", type=int, help="mini-batch size (default: full batch)")
    p.add_argument("--momentum", type=float)
    p.add_argument("--tol", type=float, help="gradient tolerance for convergence")
    p.add_argument("--no-early-stop", action="store_true", help="always run every epoch")
    p.add_argument("--no-standardize", action="store_true", help="train on raw features")
    p.add_argument("--no-intercept", action="store_true", help="fit y = X w (no intercept)")
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--train-dtype", choices=["float64", "float32"], help="training dtype (default: float64)"
    )
    p.add_argument(
        "--dtype",
        choices=["auto", "float32", "float64"],
        default="auto",
        help="dtype of the exported model (default: auto, float32 when it reproduces the fit)",
    )
    p.add_argument("--test-size", type=float, default=0.0, help="fraction of rows held out")
    p.add_argument("--out", type=Path, help="export the model to this directory")
    p.add_argument("--name", help="model name in the manifest (default: the directory's)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model")
    p.add_argument(
        "--allow-unconverged",
        action="store_true",
        help="export a fit that did not converge (the manifest records it)",
    )
    p.add_argument(
        "--sign-key",
        type=Path,
        metavar="PEM",
        help="sign the exported directory with this private key (model.sig; see linreg sign)",
    )
    p.add_argument("--no-plots", dest="plots", action="store_false")
    p.add_argument("--show", type=int, default=5, help="rows to predict after export")
    _add_big_data_flags(p)
    add_progress_flags(p)
    p.set_defaults(func=_train)

    r = subparsers.add_parser(
        "regenerate",
        help="re-train and re-export the bundled models",
        description="Train both bundled data sets with the default preset (seed 0) and "
        "export them to DIR/<name>, replacing what is there.",
    )
    r.add_argument("--dir", type=Path, default=REGENERATE_DIR)
    r.set_defaults(func=_regenerate)
