"""Models fitted on real tables (text columns, gaps, a formula) for the batch and Dask tests.

``penguins``: the bundled Palmer penguins table (training/data/bundled/penguins.csv:
three text columns, numbers, gaps) with a formula that has an interaction of a number
with a factor and a logarithm; statsmodels' formula OLS on the same formula is the
reference. ``types``: generated rows with a text, an integer and a boolean factor.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
PENGUINS = ROOT / "training" / "data" / "bundled" / "penguins.csv"
PENGUINS_FORMULA = (
    "body_mass_g ~ bill_length_mm * C(species) + sex + np.log(flipper_length_mm) + island"
)
TYPES_FORMULA = "y ~ x + C(n) + flag + g + np.log(x + 5)"
#: statsmodels' fitted values, relative to the largest (as tests/training/test_design_export.py)
RTOL = {"float32": 1e-6, "float64": 1e-12}


def penguins() -> pd.DataFrame:
    """The table as pandas reads it (text as str, gaps as NaN)."""
    return pd.read_csv(PENGUINS)


def types_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "n": rng.integers(1, 4, n),
            "flag": rng.random(n) < 0.5,
            "g": rng.choice(["a", "b", "c"], n),
        }
    )
    frame["y"] = 2 * frame.x + frame.n + 0.5 * frame.flag + (frame.g == "b") + rng.normal(size=n)
    return frame


def export(frame: pd.DataFrame, formula: str, directory: Path, dtype: str) -> Path:
    """Train ``formula`` on ``frame`` and export it to ``directory`` (torch needed)."""
    from training.export import export_model
    from training.pipeline import train

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train(frame, formula=formula, progress=False)
        return Path(export_model(run, directory, dtype=dtype, plots=False))


def fitted_values(frame: pd.DataFrame, formula: str) -> pd.Series:
    """statsmodels' formula OLS fitted values, indexed by the rows it used."""
    import statsmodels.formula.api as smf

    return smf.ols(formula, frame).fit().fittedvalues
