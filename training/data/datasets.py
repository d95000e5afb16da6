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

from training.data.loader import load_table
from training.data.tables import Table
from training.errors import DataError

__all__ = ["DATASETS", "BundledDataset", "load_dataset"]


@dataclass(frozen=True)
class BundledDataset:
    target: str
    features: tuple[str, ...]
    description: str


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
}


def load_dataset(name: str) -> Table:
    """Load a bundled data set by name (see :data:`DATASETS`)."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; the bundled ones are {sorted(DATASETS)}")
    spec = DATASETS[name]
    ref = resources.files("training.data") / "bundled" / f"{name}.tsv"
    with resources.as_file(ref) as path:
        table = load_table(path, features=list(spec.features), target=spec.target)
    return Table(table.X, table.y, table.features, table.target, source=name)
