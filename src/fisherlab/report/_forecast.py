r"""The report's forecast section: what more data would give, and how good the observed design is.

For a fit with covariates :math:`x_1..x_N`, at the estimate :math:`\hat\theta`:

- the Cramér–Rao forecast: the expected Fisher information of the observed rows,
  :math:`F = \sum_i I(x_i;\hat\theta)` (:func:`fisherlab.fisher`, exact routes only), and the standard
  errors :math:`\sqrt{\operatorname{diag} (kF)^{-1}}` of :math:`kN` rows of the same design,
  :math:`k = 1, 2, 4` (they shrink as :math:`1/\sqrt{k}`);
- the D-efficiency of the observed design, :math:`(\det M_{\text{obs}} / \det M^*)^{1/P}` with
  :math:`M_{\text{obs}} = F/N` the information per row and :math:`M^*` that of the D-optimal
  approximate design on the observed covariate rows as candidates
  (:func:`fisherlab.design.optimal`, :func:`fisherlab.design.efficiency`): the fraction of the runs an
  optimal allocation of the same rows would need; with the optimal design's support;
- a triangle plot (:func:`fisherlab.plot.triangle`) of the 1σ/2σ forecast regions of the first
  (up to) five parameters for :math:`N` and :math:`4N` rows.

The section renders what these public functions return; it computes no statistics itself. It
never fails the report: a part that cannot be computed (no covariates, a fit on a streamed source,
no exact expected Fisher, a design that cannot be found) is replaced by a one-line note.
"""

from __future__ import annotations

import html as _html
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import FisherlabError
from .._format import format_number

if TYPE_CHECKING:
    from ..inference import FitResult

__all__ = ["MAX_CANDIDATES", "forecast_body"]

MAX_CANDIDATES = 5000
"""Most distinct covariate rows the optimal design is computed on (a deterministic subsample above)."""
SCALES = (1, 2, 4)
"""Multiples of the observed number of rows whose standard errors are forecast."""
MAX_TRIANGLE = 5
"""Parameters in the triangle plot (the first ones, in the fit's order)."""
MAX_SUPPORT_SHOWN = 10
"""Support points of the optimal design listed (the heaviest first)."""
_SEED = 0  # of the subsample of candidate rows
_ERRORS = (FisherlabError, ValueError, ArithmeticError, NotImplementedError, np.linalg.LinAlgError)


def _e(text: object) -> str:
    return _html.escape(str(text), quote=True)


def _num(v: float) -> str:
    return "—" if v is None or not math.isfinite(v) else _e(format_number(v))


def _reason(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _table(header: list[str], rows: list[tuple[str, list[str]]]) -> str:
    """A table whose first column is a row label; other cells are escaped HTML."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        f"<tr><th>{_e(label)}</th>" + "".join(f'<td class="num">{c}</td>' for c in cells) + "</tr>"
        for label, cells in rows
    )
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _note(text: str) -> str:
    return f"<p class=meta>{_e(text)}</p>"


def forecast_body(result: FitResult) -> str:
    """The HTML body of the report's forecast section (module docstring); never raises an ``Exception``.

    Args:
        result: the fit (names may come from ``rename``).

    Returns:
        HTML: the tables and the figure, or a one-line note saying why the section is skipped.
    """
    try:
        return _body(result)
    except Exception as exc:  # the report is never lost to its forecast section
        return _note(f"Forecast skipped: {_reason(exc)}")


def _body(result: FitResult) -> str:
    from ..data import StreamedData
    from ..information import InfoMatrix, fisher

    if isinstance(result.data, StreamedData):
        return _note(
            "Forecast skipped: the fit streamed its data from a source, so its covariate rows are not in "
            "memory to take the design's information over."
        )
    x = result.data.x
    if x is None:
        return _note(
            "Forecast skipped: the model has no covariates, so there is no design to compare; for n iid "
            "observations the standard errors scale as 1/√n (fl.fisher(model, params, n=...))."
        )
    names = list(result.names)
    n_rows = int(result.nobs)
    try:
        raw = fisher(result.model, result.params, x, method="exact")
    except _ERRORS as exc:
        return _note(
            f"Forecast skipped: no exact expected Fisher information for this model ({_reason(exc)})."
        )
    center = dict(zip(names, np.asarray(result.flat_params, dtype=float).tolist(), strict=True))
    total = InfoMatrix(raw.matrix, names, center=center)
    parts = [_cramer_rao(total, names, n_rows)]
    parts.append(_design(result, raw, x, names, n_rows))
    parts.append(_triangle(total, center, names, n_rows))
    return "".join(parts)


def _cramer_rao(total: Any, names: list[str], n_rows: int) -> str:
    try:
        ses = [(k, (k * total).se()) for k in SCALES]
    except _ERRORS as exc:
        return _note(f"Cramér–Rao forecast unavailable: {_reason(exc)}")
    header = ["parameter", *(f"se, {'' if k == 1 else k}N = {k * n_rows:,} rows" for k in SCALES)]
    rows = [(name, [_num(se[name]) for _, se in ses]) for name in names]
    return (
        "<h3>Cramér–Rao forecast</h3>"
        + _table(header, rows)
        + "<p class=meta>Standard errors from the expected Fisher information F at the estimates over the "
        f"observed covariate rows (N = {n_rows:,}), √diag (kF)⁻¹ for k·N rows of the same design: they "
        "shrink as 1/√k. They differ from the observed-information standard errors above where J ≠ F.</p>"
    )


def _distinct_rows(x: Any, n_rows: int) -> tuple[Any, int, bool]:
    """The distinct covariate rows (first occurrences, in order), at most :data:`MAX_CANDIDATES` of them
    (a seeded subsample above); their count before subsampling, and whether it was subsampled."""
    import jax

    leaves = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(x)]
    flat = np.hstack([leaf.reshape(n_rows, -1).astype(np.float64) for leaf in leaves])
    _, first = np.unique(flat, axis=0, return_index=True)
    keep = np.sort(first)
    distinct = int(keep.size)
    sampled = distinct > MAX_CANDIDATES
    if sampled:
        keep = np.sort(np.random.default_rng(_SEED).choice(keep, MAX_CANDIDATES, replace=False))
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[keep], x), distinct, sampled


def _coefficient_labels(result: FitResult) -> list[str] | None:
    """The names of the ``beta[i]`` parameters in the fit's names (a GLM's design columns), or ``None``."""
    from ..params import param_names

    raw = param_names(result.params)
    labels = [name for raw_name, name in zip(raw, result.names, strict=True) if raw_name.startswith("beta[")]
    return labels or None


def _support_table(result: FitResult, points: Any, weights: np.ndarray) -> str:
    """The heaviest support points (one column per covariate coordinate) with their weights."""
    import jax

    m = weights.size
    labels = _coefficient_labels(result)
    columns: list[str] = []
    values: list[np.ndarray] = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(points)[0]:
        arr = np.asarray(leaf).reshape(m, -1)
        key = jax.tree_util.keystr(path).strip("[]'\".") or "x"
        if arr.shape[1] == 1:
            columns.append(key)
        elif labels is not None and arr.shape[1] == len(labels) and key in ("x", "X"):
            columns.extend(labels)
        else:
            columns.extend(f"{key}[{j}]" for j in range(arr.shape[1]))
        values.append(arr)
    table = np.hstack(values)
    order = np.argsort(-weights, kind="stable")[:MAX_SUPPORT_SHOWN]
    rows = [
        (f"{rank + 1}", [*(_num(float(v)) for v in table[i]), _num(float(weights[i]))])
        for rank, i in enumerate(order)
    ]
    rest = ""
    if m > len(order):
        left = float(np.sum(weights)) - float(np.sum(weights[order]))
        rest = _note(f"… and {m - len(order)} more support points, with total weight {format_number(left)}.")
    return _table(["point", *columns, "weight"], rows) + rest


def _design(result: FitResult, raw: Any, x: Any, names: list[str], n_rows: int) -> str:
    from ..design import efficiency, optimal

    title = "<h3>Design efficiency (D)</h3>"
    if not result.vectorized:
        return title + _note(
            "Design skipped: the model has numeric derivatives, and the optimal design would evaluate "
            "the information of every candidate row by finite differences."
        )
    try:
        candidates, distinct, sampled = _distinct_rows(x, n_rows)
        d = optimal(result.model, result.params, candidates, "D")
        eff = efficiency(raw / n_rows, d.info, "D")
    except _ERRORS as exc:
        return title + _note(f"Design efficiency unavailable: {_reason(exc)}")
    where = (
        f"a deterministic subsample of {MAX_CANDIDATES:,} of the {distinct:,} distinct observed covariate "
        f"rows (seed {_SEED}; the efficiency is relative to the best design on them)"
        if sampled
        else f"the {distinct:,} distinct observed covariate rows"
    )
    facts = (
        "<dl class=facts>"
        f"<dt>D-efficiency of the observed design</dt><dd>{_num(eff)}: the N = {n_rows:,} observed rows "
        f"determine the parameters as well as {_num(eff * n_rows)} runs of the optimal design would "
        "(det of the information per row, relative, to the power 1/P)</dd>"
        f"<dt>candidates</dt><dd>{_e(where)}</dd>"
        f"<dt>equivalence theorem</dt><dd>max sensitivity {_num(d.max_sensitivity)}, bound {_num(d.bound)} "
        f"(efficiency of the computed optimum ≥ {_num(d.efficiency_bound)})</dd>"
        "</dl>"
    )
    return (
        title
        + facts
        + f"<p class=meta>Support of the D-optimal approximate design on those rows ({d.weights.size} "
        "points, heaviest first; a covariate column is named by the coefficient it multiplies where the "
        "model's x is a design matrix):</p>"
        + _support_table(result, d.points, np.asarray(d.weights, dtype=float))
    )


def _triangle(total: Any, center: dict[str, float], names: list[str], n_rows: int) -> str:
    from ..plot import triangle
    from ._figures import _svg

    shown = names[:MAX_TRIANGLE]
    try:
        fig = triangle(
            [total, 4 * total],
            center,
            names=shown,
            legend=[f"N = {n_rows:,} rows", f"4N = {4 * n_rows:,} rows"],
        )
        svg = _svg(fig, "forecast")
    except _ERRORS as exc:
        return _note(f"Forecast regions unavailable: {_reason(exc)}")
    which = "" if len(shown) == len(names) else f" (the first {len(shown)} of {len(names)} parameters)"
    return (
        f"<figure>{svg}<figcaption>Forecast 1σ and 2σ regions (Gaussian, from the expected Fisher "
        f"information at the estimates) for N and 4N rows of the observed design{_e(which)}; the diagonal "
        "shows the 1-D marginals.</figcaption></figure>"
    )
