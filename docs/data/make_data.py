"""Write the small tables the documentation's examples read (``docs/data/``).

Run from the checkout: ``python docs/data/make_data.py``. The output depends only on
the bundled ``plant_richness_mlr`` table (no randomness), so the committed files can
be checked against a fresh run (``tests/docs/test_docs.py``).

- ``islands.csv``: the 22 islands of the bundled table with an ``island`` id column
  first, then the three features and the target, as comma-separated text.
- ``islands_bad.csv``: the same with three damaged rows, for the examples of bad rows
  (a value that is not a number, an empty field, a missing field).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[1] / "training" / "data" / "bundled" / "plant_richness_mlr.tsv"
COLUMNS = ["island", "area", "latitude", "dist_mainland", "ntv_rich"]
#: data row (1-based) -> how it is damaged in islands_bad.csv
DAMAGE = {3: ("area", "abc"), 6: ("latitude", ""), 9: ("dist_mainland", None)}


def rows() -> list[dict[str, str]]:
    with SOURCE.open(encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle, delimiter="\t"))
    return [{"island": f"I{i:02d}", **row} for i, row in enumerate(table, start=1)]


def write(path: Path, table: list[dict[str, str]], damage: dict) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(COLUMNS) + "\n")
        for number, row in enumerate(table, start=1):
            fields = [row[name] for name in COLUMNS]
            if number in damage:
                column, value = damage[number]
                index = COLUMNS.index(column)
                fields = fields[:index] + fields[index + 1 :] if value is None else fields
                if value is not None:
                    fields[index] = value
            handle.write(",".join(fields) + "\n")


def main(out: Path = HERE) -> None:
    table = rows()
    write(out / "islands.csv", table, {})
    write(out / "islands_bad.csv", table, DAMAGE)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
