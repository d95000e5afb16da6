"""The data sets bundled with the package, loaded by name.

The files live in ``training/data/bundled/`` (package data): the two plant-richness
tables of the tutorial the project starts from (McMaster 2005, via bioinfokit),
NIST's linear regression reference data (:mod:`training.data.nist`), and
``penguins.csv``, a real table with text columns and gaps: the Palmer penguins
(Horst, Hill and Gorman 2020, CC0; 344 rows, copied from the palmerpenguins package
0.1.6 with its ``NA`` cells written as empty cells, the CSV convention of the I/O
layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from training.data.loader import load_table
from training.data.tables import Table
from training.errors import DataError

__all__ = ["DATASETS", "BundledDataset", "dataset_path", "load_dataset", "load_dataset_frame"]


@dataclass(frozen=True)
class BundledDataset:
    """A bundled table: its target, its feature columns, and its file in ``bundled/``.
    A table with text columns or gaps (``numeric=False``) loads as a DataFrame
    (:func:`load_dataset_frame`) and is fitted on its design."""

    target: str
    features: tuple[str, ...]
    description: str
    file: str = ""
    numeric: bool = True


DATASETS: dict[str, BundledDataset] = {
    "plant_richness_lr": BundledDataset(
        target="ntv_rich",
        features=("area",),
        description="22 islands: log10 native plant richness against log10 island area "
        "(McMaster 2005, via bioinfokit).",
    ),
    "plant_richness_mlr": BundledDataset(
        target="ntv_rich",
        features=("area", "latitude", "dist_mainland"),
        description="22 islands: log10 native plant richness against log10 area, latitude "
        "and distance to the mainland (McMaster 2005, via bioinfokit).",
    ),
    "penguins": BundledDataset(
        target="body_mass_g",
        features=(
            "species",
            "island",
            "bill_length_mm",
            "bill_depth_mm",
            "flipper_length_mm",
            "sex",
        ),
        description="344 Palmer penguins (Horst, Hill and Gorman 2020, CC0): body mass "
        "against species, island, bill and flipper sizes and sex; text columns and gaps.",
        file="penguins.csv",
        numeric=False,
    ),
}


def dataset_path(name: str) -> Any:
    """A context manager giving the bundled file of data set ``name`` as a path."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; the bundled ones are {sorted(DATASETS)}")
    file = DATASETS[name].file or f"{name}.tsv"
    return resources.as_file(resources.files("training.data") / "bundled" / file)


def load_dataset_frame(name: str) -> Any:
    """A bundled data set as a pandas DataFrame (its file's columns, text and gaps as
    they are): what :func:`training.pipeline.train` fits on its design."""
    from training.data.loader import load_frame

    with dataset_path(name) as path:
        return load_frame(path)


def load_dataset(name: str) -> Table:
    """Load a bundled data set by name (see :data:`DATASETS`)."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; the bundled ones are {sorted(DATASETS)}")
    spec = DATASETS[name]
    if not spec.numeric:
        raise DataError(
            f"data set {name!r} has text columns and gaps: load it with "
            f"training.data.load_dataset_frame({name!r}) and train on a formula or its target"
        )
    with dataset_path(name) as path:
        table = load_table(path, features=list(spec.features), target=spec.target)
    return Table(table.X, table.y, table.features, table.target, source=name)
