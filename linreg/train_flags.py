"""``linreg train``'s options: the fit's, the export's and the big-data engines'."""

from __future__ import annotations

import argparse
from pathlib import Path

from linreg.common import add_cluster_flags, count, count0, engine_name, fraction, positive
from training.defaults import FIT_DEFAULTS, PRESETS

__all__ = [
    "ENGINES",
    "EXPORT_OPTIONS",
    "SHOW_ROWS",
    "add_big_data_flags",
    "add_export_flags",
    "add_fit_flags",
    "add_table_flags",
]

#: the ways to fit, one spelling for ``linreg train`` and ``linreg predict``
ENGINES = ("auto", "memory", "chunked", "streaming", "dask")
#: rows an export prints through the Predictor unless --show says otherwise
SHOW_ROWS = 5
#: options that only mean something with --out
EXPORT_OPTIONS = (
    "name",
    "overwrite",
    "allow_unconverged",
    "no_plots",
    "dtype",
    "show",
    "sign_key",
)


def add_big_data_flags(p: argparse.ArgumentParser) -> None:
    """``--streaming``, ``--chunk-rows``, ``--engine`` and the Dask cluster's flags."""
    from training.chunked.sources import DEFAULT_CHUNK_ROWS

    big = p.add_argument_group(
        "big data",
        "files from 64 MiB are fitted in chunks (read once), files from 1 GiB are streamed "
        "(read again on each pass, memory bounded by the chunk size); --engine picks another "
        "way",
    )
    big.add_argument(
        "--streaming",
        action="store_true",
        help="stream the file whatever its size, as --engine streaming (default: by the "
        "file's size, see --engine)",
    )
    big.add_argument(
        "--chunk-rows",
        type=count,
        metavar="N",
        help="rows per chunk of a fit in chunks; with --engine auto, fit in chunks "
        f"whatever the file's size (default: {DEFAULT_CHUNK_ROWS})",
    )
    p.add_argument(
        "--max-line-bytes",
        type=count,
        metavar="N",
        help="longest CSV/TSV line (and field) read, in bytes (default: 16777216, 16 MiB)",
    )
    big.add_argument(
        "--engine",
        type=engine_name,
        choices=ENGINES,
        default="auto",
        help="auto (memory below 64 MiB, chunked below 1 GiB, streaming above), memory "
        "(load, in-memory fit), chunked (read once, held in chunks), streaming (read on "
        "each pass; 'stream' is accepted too) or dask (a cluster: partitions send their "
        "factors and gradient sums, never rows) (default: auto)",
    )
    add_cluster_flags(big)


def add_fit_flags(p: argparse.ArgumentParser) -> None:
    """The fit's options (LinearRegressionSGD's parameters)."""
    d, tutorial = FIT_DEFAULTS, PRESETS["tutorial"]
    p.add_argument(
        "--preset",
        default="default",
        choices=sorted(PRESETS),
        help="named set of fit options: default (learning rate chosen from the data, "
        "preconditioned, exact) or tutorial (the tutorial's recipe: lr 0.002, 6000 "
        "full-batch epochs on raw float32 features) (default: default)",
    )
    p.add_argument("--lr", type=positive, help="learning rate (default: chosen from the data)")
    p.add_argument(
        "--epochs",
        type=count,
        help=f"maximum epochs (default: {d['max_epochs']}; tutorial preset: "
        f"{tutorial['max_epochs']})",
    )
    p.add_argument("--batch-size", type=count, help="mini-batch size (default: full batch)")
    p.add_argument(
        "--momentum",
        type=fraction,
        help=f"SGD momentum, in [0, 1) (default: {d['momentum']:g})",
    )
    p.add_argument(
        "--tol",
        type=positive,
        help="convergence tolerance: the largest gradient component of the "
        f"preconditioned problem (default: {d['tol']:g})",
    )
    p.add_argument(
        "--no-early-stop",
        action="store_true",
        help="run every epoch (default: stop once converged)",
    )
    p.add_argument(
        "--no-standardize",
        action="store_true",
        help="train on raw features, without the preconditioner (default: preconditioned)",
    )
    p.add_argument(
        "--no-intercept",
        action="store_true",
        help="fit y = X w (default: with an intercept)",
    )
    p.add_argument(
        "--seed",
        type=int,
        help="seed of the initial weights, the mini-batch order and the --test-size split "
        f"(default: {d['seed']})",
    )
    p.add_argument(
        "--train-dtype",
        choices=["float64", "float32"],
        help=f"training dtype (default: {d['dtype']}; tutorial preset: {tutorial['dtype']})",
    )


def add_table_flags(p: argparse.ArgumentParser) -> None:
    """``--formula``, ``--missing`` and ``--reference``: tables with text and gaps."""
    p.add_argument(
        "--formula",
        metavar="FORMULA",
        help="a Wilkinson formula, e.g. 'y ~ x1 + C(region) + x1:x2 + np.log(x3)': factors, "
        "interactions, I(), np.log/exp/sqrt, - 1 (default: the target on --features; text "
        "columns are factors)",
    )
    p.add_argument(
        "--missing",
        choices=["drop", "error"],
        default="drop",
        help="rows with a missing value in a used column: drop and count them, or stop at "
        "the first (default: drop)",
    )
    p.add_argument(
        "--reference",
        metavar="COLUMN=LEVEL",
        action="append",
        help="a factor's reference level (repeat for several) (default: the first level "
        "in sorted order)",
    )


def add_export_flags(p: argparse.ArgumentParser) -> None:
    """--out and the options that need it."""
    p.add_argument(
        "--out", type=Path, help="export the model to this directory (default: no export)"
    )
    p.add_argument(
        "--name", help="with --out: model name in the manifest (default: the directory's name)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="with --out: replace an existing model (default: refuse, exit status 2)",
    )
    p.add_argument(
        "--allow-unconverged",
        action="store_true",
        help="with --out: export a fit that did not converge, recorded in the manifest "
        "(default: refuse, exit status 1)",
    )
    p.add_argument(
        "--dtype",
        choices=["auto", "float32", "float64"],
        help="with --out: dtype of the exported model (default: auto, float32 when it "
        "reproduces the fit)",
    )
    p.add_argument(
        "--no-plots",
        action="store_true",
        help="with --out: do not draw regression.png and loss.png (default: drawn)",
    )
    p.add_argument(
        "--show",
        type=count0,
        metavar="N",
        help=f"with --out: rows predicted by the exported model (default: {SHOW_ROWS})",
    )
    p.add_argument(
        "--sign-key",
        type=Path,
        metavar="PEM",
        help="with --out: sign the exported directory with this private key into model.sig "
        "(see linreg sign) (default: not signed)",
    )
