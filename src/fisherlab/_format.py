r"""How every face writes a fit's numbers: p-values, other numbers, tables that never cut a number.

One format for text, HTML, Rich and the report: numbers at 6 significant digits
(:func:`format_number`), p-values at 3 with R's floor ``<2e-16`` (:func:`format_pvalue`). The
``--json`` document keeps full-precision floats (a machine reads it and rounds as it needs).

In Rich a number is never wrapped over two lines or cut to ``0.03195…``: each numeric column is
as wide as its widest entry and, when the table is wider than the console, its columns are
stacked into several tables that each repeat the parameter names (:func:`rich_tables`).

JAX-free and Rich-lazy on purpose: the command line's help and argument errors import it
without importing JAX.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

__all__ = [
    "NAME_MIN_WIDTH",
    "PVALUE_FLOOR",
    "P_COLUMN",
    "cell_text",
    "format_number",
    "format_pvalue",
    "rich_tables",
]

#: p-values below this print as ``<2e-16`` (R's ``format.pval`` floor, the float64 machine
#: epsilon): a normal or chi-square tail that small is beyond what the approximation behind
#: it can claim.
PVALUE_FLOOR = 2.220446049250313e-16

#: The parameter column is at least this wide (names longer than it fold onto more lines).
NAME_MIN_WIDTH = 16

#: The name of the p-value column of a summary table.
P_COLUMN = "p"


def format_pvalue(p: float) -> str:
    """A p-value at 3 significant digits, ``"<2e-16"`` below :data:`PVALUE_FLOOR`, ``"NA"`` if missing.

    Examples:
        >>> from fisherlab import inference
        >>> [inference.format_pvalue(p) for p in (0.5, 0.012345, 3.2e-7, 1e-300, float("nan"))]
        ['0.5', '0.0123', '3.2e-07', '<2e-16', 'NA']
    """
    p = float(p)
    if math.isnan(p):
        return "NA"
    return "<2e-16" if p < PVALUE_FLOOR else f"{p:.3g}"


def format_number(v: float) -> str:
    """A number at 6 significant digits; ``""`` for NaN (a cell with nothing in it), ``inf`` as is."""
    v = float(v)
    return "" if math.isnan(v) else f"{v:.6g}"


def cell_text(column: Any, v: float) -> str:
    """A cell of a summary table: :func:`format_pvalue` in the ``p`` column, else :func:`format_number`."""
    if str(column) == P_COLUMN and not math.isnan(float(v)):
        return format_pvalue(v)
    return format_number(v)


def _widths(table: pd.DataFrame) -> dict[Any, int]:
    """Characters each numeric column needs: its header or its widest formatted number."""
    return {
        col: max(len(str(col)), *(len(cell_text(col, v)) for v in table[col].to_numpy(dtype=float)))
        for col in table.columns
    }


def _rich_table(table: pd.DataFrame, title: str) -> Table:
    from rich.markup import escape
    from rich.table import Table

    out = Table(title=escape(title), title_justify="left")
    names = max([len("parameter"), *(len(str(n)) for n in table.index)])
    out.add_column("parameter", style="bold", overflow="fold", min_width=min(NAME_MIN_WIDTH, names))
    for col, width in _widths(table).items():
        out.add_column(escape(str(col)), justify="right", no_wrap=True, min_width=width)
    for name, row in table.iterrows():
        values = row.to_numpy(dtype=float)
        out.add_row(escape(str(name)), *(cell_text(c, v) for c, v in zip(table.columns, values, strict=True)))
    return out


def rich_tables(table: pd.DataFrame, title: str, width: int) -> list[Table]:
    """Rich tables of a DataFrame of numbers indexed by parameter name, together at most ``width`` wide.

    Numbers never wrap or shrink: each numeric column is as wide as its widest entry
    (p-values by :func:`format_pvalue`, other numbers by :func:`format_number`, NaN blank);
    parameter names may fold. When the whole table is wider than ``width``, consecutive
    columns go into stacked tables, each repeating the parameter names; the first carries
    the title.
    """
    names = max([len("parameter"), *(len(str(n)) for n in table.index)])
    used = 1 + min(NAME_MIN_WIDTH, names) + 3  # left border, the name column, padding + border
    parts: list[list[Any]] = [[]]
    taken = used
    for col, need in _widths(table).items():
        if parts[-1] and taken + need + 3 > width:
            parts.append([])
            taken = used
        parts[-1].append(col)
        taken += need + 3
    return [_rich_table(table[cols], title if i == 0 else "") for i, cols in enumerate(parts)]
