"""A fit as the command line prints it: the result renamed to design-column names, and what its tables need.

A GLM fitted from a formula has coefficients ``beta[0] .. beta[p-1]``; the command
line shows them under the design-matrix column names (``Intercept``, ``x1``,
``C(g)[T.b]``). :func:`relabel` puts those names into any text that names the
fit's own parameters (the identity check's verdict, error messages).
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["Fitted", "glm_fitted", "relabel"]


@dataclasses.dataclass
class Fitted:
    """A fit ready to print: the (renamed) result and what is needed for its tables.

    Attributes:
        res: the :class:`fisherlab.FitResult`, renamed to the design columns.
        model: the fitted model.
        y: the response.
        x: the covariates as the model takes them.
        family: the GLM family's name, ``None`` for a user model.
        link: the GLM link's name, ``None`` for a user model.
        description: one line naming the model, for titles.
        beta_index: positions of the GLM coefficients among ``res.names``.
        pearson: R's ``summary.glm`` estimates the family's dispersion by Pearson's
            statistic (and reports t tests), from the family's record.
        original_names: the fit's own parameter names (``beta[0]``, ...), empty when not renamed.
        dropped: rows dropped for missing values.
        check: the ``fl.check`` result, once run.
        check_error: why there is no check (skipped, or its error).
        tests: named tests of the fit, e.g. ``{"overdispersion": {...}}`` for a negative
            binomial (:class:`fisherlab.models.BoundaryTest` as a dict).
        boundary: parameters whose estimate is on the boundary of their space and that
            the fitted (boundary) model therefore no longer has, e.g. ``{"alpha": 0.0}``.
        kept: other columns of the table the command uses with the fit (``--cluster``), on
            the fitted rows (after ``--dropna``), by name.
    """

    res: Any
    model: Any
    y: Any
    x: Any
    family: str | None  # GLM family, None for a user model
    link: str | None
    description: str
    beta_index: list[int]  # positions of the coefficients among res.names (GLM)
    pearson: bool = False
    original_names: list[str] = dataclasses.field(default_factory=list)  # the fit's own names (beta[0], ...)
    dropped: int = 0
    check: Any = None
    check_error: str = ""
    tests: dict[str, Any] = dataclasses.field(default_factory=dict)
    boundary: dict[str, float] = dataclasses.field(default_factory=dict)
    kept: dict[str, Any] = dataclasses.field(default_factory=dict)


def relabel(text: str, f: Fitted) -> str:
    """Replace the fit's own parameter names (``beta[3]``) by the design-column names in ``text``."""
    for old, new in zip(f.original_names, f.res.names, strict=True):
        if old != new:
            text = text.replace(old, new)
    return text


def glm_fitted(
    res: Any, columns: list[str], y: Any, x: Any, description: str, dropped: int, **extra: Any
) -> Fitted:
    """The :class:`Fitted` of a formula GLM ``res`` (named ``beta[i]``), renamed to the design
    ``columns``; ``extra``: the other fields (``tests``, ``boundary``, ``kept``)."""
    from fisherlab.formula import design_names

    return Fitted(
        res=res.rename(design_names(res.names, columns)),
        model=res.model,
        y=y,
        x=x,
        family=res.model.family.value,
        link=res.model.link.value,
        description=description,
        beta_index=res.beta_index.tolist(),
        pearson=res.pearson,
        dropped=dropped,
        original_names=list(res.names),
        **extra,
    )
