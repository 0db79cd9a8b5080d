"""Numeric columns of a formula's data: the rows and tokens that are not numbers, and typos caught.

A CSV column of numbers with a typo in one row (``abc``, ``1,5``, ``3.2.1``) is read
by pandas as text, and formulaic would silently turn it into a factor with one
level per distinct value: the fit "succeeds" with absurd standard errors. The rule
(:func:`check_numeric_columns`): a text column that the formula uses outside
``C(...)`` and in which at least half of the non-missing values are numbers or
malformed numbers (:data:`TYPO_SHARE`; digits with stray commas or dots such as
``1,5``, ``3.2.1`` or ``1 000`` count as malformed numbers) is a numeric column
with typos, and an error names the column, the rows and tokens, how many rows,
and the fix. A column used only as ``C(col)`` is categorical whatever it holds; a
text column of mostly words used bare (``y ~ g`` with ``g`` in ``a``, ``b``) stays
categorical as formulaic makes it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection, Iterable

import numpy as np
import pandas as pd

from .._errors import InvalidDataError
from ._guard import parse_term

__all__ = [
    "MALFORMED_NUMBER",
    "TYPO_SHARE",
    "check_numeric_columns",
    "formula_name",
    "non_numeric",
    "non_numeric_rows",
]

TYPO_SHARE = 0.5
"""A text column used as a number is taken for a numeric column with typos when at least this
share of its non-missing values are numbers or malformed numbers (:data:`MALFORMED_NUMBER`)."""

MALFORMED_NUMBER = re.compile(r"^\s*[+-]?[\d.,' _]*\d[\d.,' _]*(?:[eE][+-]?\d+)?\s*$")
"""A token made of digits with stray separators (``1,5``, ``3.2.1``, ``1 000``, ``1'000``): a number
mistyped, not a category."""

_SHOWN = 3  # rows named in a message


def formula_name(name: str) -> str:
    """``name`` as a formula writes it: ``x``, or `` `my col` `` when it is not a Python identifier.

    Args:
        name: a column name.

    Returns:
        The name, backtick-quoted if needed.
    """
    return name if name.isidentifier() else f"`{name}`"


def non_numeric_rows(col: pd.Series) -> np.ndarray:
    """The rows of ``col`` that hold a value (not missing) that is not a number.

    Args:
        col: a column; numeric and boolean columns have none.

    Returns:
        A boolean mask, ``True`` where ``pd.to_numeric`` cannot read the value.
    """
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return np.zeros(len(col), dtype=bool)
    parsed = pd.to_numeric(col, errors="coerce")
    return np.asarray(parsed.isna() & col.notna(), dtype=bool)


def non_numeric(df: pd.DataFrame, name: str, mask: np.ndarray) -> str:
    """``"1 of 60 rows: row 5 is 'abc'"``: how many rows of ``df[name]`` are not numbers, the first few.

    Args:
        df: the table; rows are named by its index (the 0-based data row).
        name: the column.
        mask: the rows that are not numbers (:func:`non_numeric_rows`).

    Returns:
        The count and the first rows with their tokens, for an error message.
    """
    rows = np.flatnonzero(mask)
    col = df[name]
    shown = ", ".join(f"row {df.index[i]} is {str(col.iloc[i])!r}" for i in rows[:_SHOWN])
    more = f", and {len(rows) - _SHOWN} more" if len(rows) > _SHOWN else ""
    return f"{len(rows)} of {len(df)} rows: {shown}{more}"


def _numeric_uses(factors: Iterable[tuple[str, str]]) -> set[str]:
    """Names a formula reads outside the first argument of ``C(...)`` (and ``Q('name')`` likewise)."""
    used: set[str] = set()
    for expr, method in factors:
        if method == "literal":
            continue
        if method == "lookup":
            used.add(expr)
            continue
        try:
            tree, aliases = parse_term(expr)
        except SyntaxError:
            continue
        stack: list[ast.AST] = [tree.body]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id == "Q" and node.args and isinstance(node.args[0], ast.Constant):
                    used.add(str(node.args[0].value))
                    continue
                if node.func.id == "C" and node.args and _is_column(node.args[0]):
                    stack.extend(node.args[1:])  # C(g, ...): g is categorical, the rest is not
                    stack.extend(kw.value for kw in node.keywords)
                    continue
            if isinstance(node, ast.Name):
                used.add(aliases.get(node.id, node.id))
            stack.extend(ast.iter_child_nodes(node))
    return used


def _is_column(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) or (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "Q"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
    )


def check_numeric_columns(
    df: pd.DataFrame,
    factors: Iterable[tuple[str, str]],
    columns: Iterable[str],
    responses: Collection[str] = (),
) -> None:
    """Refuse a text column that the formula uses as a number and that is mostly numbers (typos).

    Args:
        df: the data (after dropping missing rows, if asked).
        factors: the formula's ``(expression, eval_method)`` pairs
            (:func:`~fisherlab.formula.formula_factors`).
        columns: the columns the model reads.
        responses: the columns of the response, whose message does not suggest ``C(...)``.

    Raises:
        InvalidDataError: naming the column, how many rows are not numbers, the first rows
            and their tokens, and what to do.
    """
    uses = _numeric_uses(factors)
    for name in columns:
        if name not in uses or name not in df.columns:
            continue
        col = df[name]
        mask = non_numeric_rows(col)
        present = int(col.notna().sum())
        if not mask.any() or present == 0:
            continue
        malformed = int(col[mask].astype(str).str.match(MALFORMED_NUMBER).sum())
        if present - int(mask.sum()) + malformed < TYPO_SHARE * present:
            continue  # mostly words: a categorical column, as formulaic makes it
        hint = (
            "fix those values (numbers use '.' as the decimal point and no thousands separators; a "
            "missing value is empty or NA)"
        )
        if name not in responses:
            hint += f", or if the column is categorical, write C({formula_name(name)}) in the formula"
        raise InvalidDataError(
            f"column {name!r} holds numbers except in {non_numeric(df, name, mask)}; {hint}"
        )
