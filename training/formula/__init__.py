"""Real tables: text columns as factors, gaps, and Wilkinson formulas, turned into a
design matrix and the :class:`~inference.design.Design` the export compiles.

- :func:`design_table` (:mod:`.build`): a DataFrame and a formula, or a target and
  its feature columns, to a :class:`DesignedTable` (rows with gaps dropped and counted);
- :mod:`.parse`: the formula's path through formulaic;
- :mod:`.columns`: factors, levels, gaps and the target, shared by both paths;
- :mod:`.terms`: the supported subset of terms and their expressions.
"""

from __future__ import annotations

from training.formula.build import design_table
from training.formula.columns import DesignedTable, is_factor_column

__all__ = ["DesignedTable", "design_table", "is_factor_column"]
