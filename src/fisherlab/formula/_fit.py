"""Fitting a GLM to a formula's design, with the design-column names in the result and in errors.

:func:`fisherlab.models.fit_glm` names the coefficients ``beta[0] .. beta[p-1]``; a fit from
a formula names them by the design-matrix columns (``Intercept``, ``x1``, ``C(g)[T.b]``), in
its result and in the messages of the errors the fit raises (an estimate at infinity names
the column whose rows cause it). Both faces fit here.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .._errors import EstimateAtInfinityError, FisherlabError, with_message
from .._precision import float64
from ..models import GLM, GLMFit, fit_glm
from ._design import Design

__all__ = ["coefficient_names", "design_names", "fit_design"]

_BETA = re.compile(r"beta\[(\d+)\]")


def coefficient_names(text: str, columns: list[str]) -> str:
    """``text`` with ``beta[i]`` replaced by the i-th design column's name.

    Args:
        text: e.g. an error message naming ``beta[1]``.
        columns: the design-matrix column names.

    Returns:
        The text with the column names.
    """
    return _BETA.sub(lambda m: columns[int(m.group(1))], text)


def design_names(names: list[str], columns: list[str]) -> list[str]:
    """The fit's parameter names with ``beta[i]`` replaced by the i-th design column's name.

    Args:
        names: the fit's flattened names, e.g. ``["beta[0]", "beta[1]", "sigma"]``.
        columns: the design-matrix column names.

    Returns:
        E.g. ``["Intercept", "x", "sigma"]``.
    """
    out = []
    for name in names:
        m = _BETA.fullmatch(name)
        out.append(columns[int(m.group(1))] if m else name)
    return out


def _rows_of_column(exc: EstimateAtInfinityError, design: Design) -> str:
    """``" — exactly the rows where C(g)[T.b] ≠ 0"`` when the direction is one design column's own rows."""
    keys = [k for k in exc.direction if k.startswith("beta[")]
    if len(keys) != 1 or len(exc.direction) != 1 or not exc.rows:
        return ""
    j = int(keys[0][5:-1])
    rows = np.flatnonzero(design.X[:, j] != 0)
    if rows.size == design.X.shape[0] or rows.tolist() != exc.rows:
        return ""
    return f" — exactly the rows where {design.columns[j]} ≠ 0"


def _renamed(exc: FisherlabError, design: Design) -> FisherlabError:
    """A copy of ``exc`` (same class and attributes) whose message and directions name the columns."""
    where = _rows_of_column(exc, design) if isinstance(exc, EstimateAtInfinityError) else ""
    message = coefficient_names(str(exc), design.columns)
    if where:
        message = message.replace(". A finite estimate", f"{where}. A finite estimate", 1)
    twin = with_message(exc, message)
    direction = getattr(exc, "direction", None)
    if isinstance(direction, dict):
        twin.direction = {coefficient_names(k, design.columns): v for k, v in direction.items()}  # type: ignore[attr-defined]
    return twin


@float64
def fit_design(model: GLM, design: Design, **options: Any) -> GLMFit:
    """:func:`fisherlab.models.fit_glm` of ``model`` on ``design``, errors naming the design columns.

    The result keeps the fit's own names (``beta[i]``; :func:`design_names` maps them), so
    that it can be passed on to functions that read the GLM's parameters.

    Args:
        model: a GLM from :func:`fisherlab.models.glm`.
        design: the design from :func:`~fisherlab.formula.build_design`.
        **options: passed to :func:`fisherlab.models.fit_glm`.

    Returns:
        The :class:`~fisherlab.models.GLMFit` (``dispersion="ml"``).

    Raises:
        FisherlabError: any error of the fit (same class and attributes), with ``beta[i]``
            replaced by the column names in its message and ``direction``; an estimate at
            infinity caused by one column's rows says so.
    """
    try:
        return GLMFit.from_fit(fit_glm(model, design.y, design.x, **options))
    except FisherlabError as exc:
        raise _renamed(exc, design) from exc
