r"""The summary table of a fit: :class:`Summary`, rendered as text, HTML and Rich alike.

The three renderings write numbers at 6 significant digits and p-values at 3 with R's floor
``<2e-16`` (:mod:`fisherlab._format`, the format of every face); Rich stacks the columns
rather than wrap or cut a number.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..._format import cell_text, rich_tables
from ..._precision import float64_methods

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

__all__ = ["Summary"]


def _formatters(table: pd.DataFrame) -> dict[Any, Any]:
    return {col: (lambda v, c=col: cell_text(c, v)) for col in table.columns}


@float64_methods
class Summary:
    """A fit summary: estimate, se, z (or t), p-value and confidence interval per parameter.

    ``str(summary)`` is a plain-text table; Rich renders it as tables that fit the console
    (``rich.print(summary)``), never wrapping or cutting a number; notebooks show HTML;
    ``summary.table`` is the DataFrame (full precision). The three renderings write numbers
    and p-values alike (:func:`format_number`, :func:`format_pvalue`).

    Attributes:
        table: the DataFrame, one row per parameter.
        header: the lines above the table (the fit, its log-likelihood, the covariance).
        notes: the lines below it (the fit's notes).
    """

    def __init__(self, table: pd.DataFrame, header: list[str], notes: list[str]) -> None:
        self.table = table
        self.header = header
        self.notes = notes

    def __str__(self) -> str:
        body = self.table.to_string(formatters=_formatters(self.table))
        return "\n".join([*self.header, "", body, *(["", *self.notes] if self.notes else [])])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        """HTML for notebooks: the header lines, the table, the notes; escaped."""
        head = "".join(f"<div>{html.escape(line)}</div>" for line in self.header)
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        table = self.table.to_html(formatters=_formatters(self.table))
        return f"<div>{head}{table}{f'<ul>{notes}</ul>' if notes else ''}</div>"

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        title = " · ".join(self.header[:1])
        yield from rich_tables(self.table, title, options.max_width)
        for line in [*self.header[1:], *self.notes]:
            yield Text(line)
