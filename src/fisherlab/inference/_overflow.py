r"""Derivatives that overflow float64: which row, which parameter, which covariate.

Finite data can still be too large for the arithmetic of a fit: a covariate of
:math:`10^{308}` is a valid float, but the score :math:`x_i (y_i - \mu_i)` and the
curvature :math:`x_i^2 w_i` of its row overflow to ``inf`` and an optimiser then fails
somewhere deep inside (SciPy: "array must not contain infs or NaNs"). :func:`overflow_error`
turns that into an :class:`~fisherlab.InvalidDataError` that names the row, the parameter
whose score overflows and the covariate field with the largest magnitude in that row.
A row counts as overflowing when a score entry is not finite or exceeds :data:`SCORE_LIMIT`
(:math:`10^{154}`: its square, a term of the information matrix, would overflow).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from .._errors import FisherlabError, InvalidDataError
from ..backends import Backend
from ..data._chunks import StreamedData, in_parts
from ..data._prepare import Data
from ..params._pytree import param_names, path_name

__all__ = ["SCORE_LIMIT", "overflow_error"]

#: A score entry above this has a square (an information-matrix term) that overflows float64.
SCORE_LIMIT = 1e154


def _largest_covariate(x: Any, row: int) -> str:
    """``x['dose'] = 1e+308`` for the covariate leaf entry of ``row`` with the largest magnitude."""
    best: tuple[float, str] | None = None
    for path, leaf in jax.tree_util.tree_flatten_with_path(x)[0]:
        values = np.asarray(leaf)[row].reshape(-1)
        if values.size == 0 or not np.issubdtype(values.dtype, np.number):
            continue
        k = int(np.argmax(np.abs(values)))
        name = path_name(path)
        field = "x" + (f"[{name!r}]" if name and not name.startswith("[") else name)
        if np.ndim(np.asarray(leaf)) > 1:
            field += f"[:, {k}]"
        value = float(np.abs(values[k]))
        if best is None or value > best[0]:
            best = (value, f"{field} = {float(values[k]):.3g}")
    return best[1] if best is not None else ""


def overflow_error(
    backend: Backend, params: Any, data: Data | StreamedData, where: str
) -> InvalidDataError | None:
    """The error naming the first row whose score overflows at ``params``, or ``None`` if none does.

    Args:
        backend: the model's backend.
        params: the parameters at which the derivatives were not finite.
        data: the data of the fit (in memory, or a streamed source read chunk by chunk; rows
            are counted from the source's start).
        where: where the fit was, for the message (``"at the starting values"``).
    """
    advice = "rescale the covariates (e.g. to unit standard deviation) or check that row for a typo"
    for start, part in in_parts(data):
        found = _score_overflow(backend, params, part, start, where, advice)
        if found is not None:
            return found
    # Scores in range, curvature not: a covariate whose square overflows (a score of 0 at that row).
    for start, part in in_parts(data):
        huge = _huge_rows(part.x) if part.x is not None else np.zeros(0, dtype=int)
        if huge.size:
            row = int(huge[0])
            return InvalidDataError(
                f"the second derivatives of the log-likelihood overflow float64 {where}: row "
                f"{start + row} has {_largest_covariate(part.x, row)}, whose square exceeds the float64 "
                f"range (covariates beyond ±{SCORE_LIMIT:.0e}); {advice}"
            )
    return None


def _score_overflow(
    backend: Backend, params: Any, data: Data, start: int, where: str, advice: str
) -> InvalidDataError | None:
    """The error for the first row of ``data`` (rows counted from ``start``) whose score overflows."""
    try:
        scores = np.asarray(backend.scores(params, data).value, dtype=np.float64)
    except FisherlabError:  # a backend that refuses non-finite scores: judge the covariates alone
        scores = np.zeros((data.n, len(param_names(params))))
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~np.isfinite(scores) | (np.abs(scores) > SCORE_LIMIT)
    rows = np.flatnonzero(bad.any(axis=1))
    if not rows.size:
        return None
    row = int(rows[0])
    col = int(np.flatnonzero(bad[row])[0])
    name = param_names(params)[col]
    covariate = _largest_covariate(data.x, row) if data.x is not None else ""
    at = f" ({covariate} there)" if covariate else ""
    return InvalidDataError(
        f"the derivatives of the log-likelihood overflow float64 {where}: row {start + row}{at} has a "
        f"score of {scores[row, col]:.3g} in {name} ({rows.size} of {data.n} rows overflow); {advice}"
    )


def _huge_rows(x: Any) -> np.ndarray:
    """Rows with a covariate entry beyond ``±SCORE_LIMIT``, in order."""
    flags = [
        (np.abs(np.asarray(leaf, dtype=np.float64)) > SCORE_LIMIT).reshape(np.shape(leaf)[0], -1).any(axis=1)
        for leaf in jax.tree_util.tree_leaves(x)
        if np.issubdtype(np.asarray(leaf).dtype, np.number)
    ]
    return np.flatnonzero(np.any(flags, axis=0)) if flags else np.zeros(0, dtype=int)
