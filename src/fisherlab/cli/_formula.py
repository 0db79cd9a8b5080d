"""From a data table and a formula to a GLM's design, for the command line: :mod:`fisherlab.formula`'s.

The design and its checks (the formula allow-list, typos in numeric columns, missing
values, the family's support, overflowing columns) are :func:`fisherlab.formula.build_design`'s,
shared with :func:`fisherlab.glm`; here its messages suggest the command's options
(``--dropna``, ``--allow-code``, ``--trials COLUMN``) and its errors become one-line
:class:`CliError`\\ s with the same text. The columns of ``--trials``, ``--weights``,
``--offset`` and ``--exposure`` are :func:`fisherlab.glm`'s ``weights=``, ``offset=`` and
``exposure=`` by column name; :func:`describe` names them in the fit's header line.
"""

from __future__ import annotations

import pandas as pd

from fisherlab import FisherlabError
from fisherlab.formula import (
    MAX_SUM_OF_SQUARES,
    Design,
    Spelling,
    allow_code_hint,
    build_design as _build_design,
    missing_report,
)
from fisherlab.models import Family

from ._errors import CliError

__all__ = [
    "ALLOW_CODE_HINT",
    "CLI_SPELLING",
    "MAX_SUM_OF_SQUARES",
    "Design",
    "build_design",
    "describe",
    "missing_report",
]

CLI_SPELLING = Spelling(
    drop_missing="--dropna",
    allow_code="--allow-code",
    trials="--trials COLUMN",
    help="fisherlab fit --help",
)
"""The command's names for the options the design's messages suggest."""

ALLOW_CODE_HINT = allow_code_hint(CLI_SPELLING)


def build_design(
    df: pd.DataFrame,
    formula: str,
    *,
    family: str | Family,
    trials: str | None = None,
    weights: str | None = None,
    offset: str | None = None,
    exposure: str | None = None,
    dropna: bool = False,
    allow_code: bool = False,
    keep: tuple[str, ...] = (),
) -> Design:
    """:func:`fisherlab.formula.build_design` with the command's option names; errors as :class:`CliError`.

    Args:
        df: the data table.
        formula: a two-sided formula, ``"y ~ x1 + x2"``.
        family: the GLM family, for the response checks of its record.
        trials: the column of binomial trials (``--trials``; ``y`` is then the number of successes).
        weights: the column of R's prior weights (``--weights``; for the binomial the trials,
            with ``y`` the proportion of successes).
        offset: the column of a known term added to the linear predictor (``--offset``).
        exposure: the column of positive exposures, whose log is added to the offset (``--exposure``).
        dropna: drop rows with a missing value in a column the model uses (``--dropna``).
        allow_code: run the formula's terms as arbitrary Python (``--allow-code``).
        keep: other columns the command uses (``--cluster``), checked and dropped with the model's.

    Returns:
        The :class:`~fisherlab.formula.Design`.

    Raises:
        CliError: (exit 2) with the message of the :class:`fisherlab.FisherlabError` that
            :func:`fisherlab.formula.build_design` raised.
    """
    try:
        return _build_design(
            df,
            formula,
            family=family,
            trials=trials,
            weights=weights,
            offset=offset,
            exposure=exposure,
            dropna=dropna,
            allow_code=allow_code,
            keep=keep,
            spelling=CLI_SPELLING,
        )
    except FisherlabError as exc:
        raise CliError(str(exc)) from exc


def describe(formula: str, family: str, link: str, **columns: str | None) -> str:
    """The fit's header line: ``"y ~ x, family poisson, link log, exposure years"``.

    ``columns``: the column options given, by name (``trials``, ``weights``, ``offset``,
    ``exposure``), in the order given; those that are ``None`` are left out.
    """
    named = "".join(f", {option} {column}" for option, column in columns.items() if column)
    return f"{formula}, family {family}, link {link}{named}"
