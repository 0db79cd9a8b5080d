r"""Starting values of a GLM fit: R's ``mustart`` and one Fisher-scoring (IRLS) step.

From the family's starting mean :math:`\mu^{(0)}` (:attr:`FamilyRecord.start`), the
working response :math:`z = \eta^{(0)} - o + (y-\mu^{(0)})/\mu'(\eta^{(0)})` and
weights :math:`w = n\,\mu'(\eta^{(0)})^2/V(\mu^{(0)})` give :math:`\beta` by weighted
least squares, as R's ``glm.fit`` does before its first iteration.

For data given as a source of chunks (:func:`fisherlab.data.chunks`, a design streamed from a
table), every piece of that is a sum over rows, accumulated chunk by chunk (float64,
compensated): the weighted least-squares step solves the normal equations
:math:`(\sum_i w_i x_i x_i^\top)\beta = \sum_i w_i x_i z_i`, the shift into the link's domain
takes the minimum of :math:`\pm\eta_i` over the chunks, and the extra parameter's moment
estimate is a ratio of sums (:data:`MOMENT_SUMS`).

References:
    R Core Team, ``?glm.fit``, ``?family`` (``mustart``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

from .._errors import InvalidDataError
from .._precision import float64
from ..data import Chunks, Data, prepare_data
from ..data._chunks import prepared_chunks
from ._design import host_design
from ._deviance import constant_columns
from ._families import FAMILIES, FamilyRecord
from ._glm import GLM, check_glm
from ._links import LINKS

__all__ = ["MOMENT_SUMS", "glm_start"]

# (y, mu, V(mu) with the variance's extra parameter left out) -> per-row terms summed over rows
_Terms = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, ...]]
# (sums, N, max(N - p, 1)) -> the start
_Finish = Callable[[list[float], int, int], float]

#: The extra parameters' moment estimates (:attr:`ExtraParameter.start` of the family records) as
#: ratios of sums over rows, for data in chunks: sigma
#: :math:`\sqrt{\sum(y-\mu)^2/N}`; shape :math:`(N-p)/\sum (y-\mu)^2/V(\mu)`; alpha
#: :math:`\max(\sum\{(y-\mu)^2-\mu\}/\sum\mu^2, 0.01)`. A test holds them to the records'.
MOMENT_SUMS: dict[str, tuple[_Terms, _Finish]] = {
    "sigma": (lambda y, mu, v: ((y - mu) ** 2,), lambda s, n, df: float(np.sqrt(s[0] / n))),
    "shape": (lambda y, mu, v: ((y - mu) ** 2 / v,), lambda s, n, df: 1.0 / float(s[0] / df)),
    "alpha": (
        lambda y, mu, v: ((y - mu) ** 2 - mu, mu**2),
        lambda s, n, df: max(float(s[0] / s[1]), 0.01) if np.isfinite(s[0] / s[1]) else 1.0,
    ),
}


def _into_domain(
    model: GLM, beta: np.ndarray, design: np.ndarray, offset: np.ndarray, eta0: np.ndarray
) -> np.ndarray:
    """Move the intercept so that every row's eta is inside the link's domain (R would stop here).

    Only for links defined on one side of 0, when the design has a constant column: its
    coefficient is shifted until the most extreme row sits at 5% of the typical |eta| of the
    starting means inside the boundary. Otherwise ``beta`` is returned as it is.
    """
    side = FAMILIES[model.family].eta_side.get(model.link)
    if side is None:
        return beta
    eta = design @ beta + offset
    margin = 0.05 * float(np.mean(np.abs(eta0)))
    sign = side.sign
    worst = float(np.min(sign * eta))
    if worst >= margin or not np.isfinite(worst) or margin <= 0:
        return beta
    constant = np.flatnonzero(np.all(design == design[:1], axis=0) & (design[0] != 0))
    if constant.size == 0:
        return beta
    k = int(constant[0])
    beta = beta.copy()
    beta[k] += sign * (margin - worst) / design[0, k]
    return beta


def _working(model: GLM, record: FamilyRecord, in_v: float | None, data: Data) -> tuple[Any, ...]:
    """One chunk's (or all rows') design, working response z and weights w at R's ``mustart``."""
    yv = np.asarray(data.y, dtype=np.float64).reshape(-1)
    design, trials, offset = host_design(data.x, model.family)
    fns = LINKS[model.link]
    mu0 = record.start(yv, trials)
    with np.errstate(all="ignore"):
        eta0 = np.asarray(fns.fun(jnp.asarray(mu0)))
        deriv = np.asarray(fns.mu_eta(jnp.asarray(eta0)))
        variance = record.variance(mu0, in_v)
        z = eta0 - offset + (yv / trials - mu0) / deriv  # binomial: y on the proportion scale
        w = trials * deriv**2 / variance
    bad = ~(np.isfinite(z) & np.isfinite(w) & (w > 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidDataError(
            f"y at row {row} = {yv[row]} has no starting value on the {model.link.value} link of the "
            f"{model.family.value} family (R's glm would ask for starting values too); give init= yourself"
        )
    return yv, design, offset, eta0, z, w


def _streamed_start(model: GLM, source: Chunks, in_v: float | None) -> dict[str, Any]:
    """:func:`glm_start` over a source of chunks: the same steps, from sums (module docstring)."""
    record = FAMILIES[model.family]

    def normal_equations(data: Data) -> tuple[np.ndarray, ...]:
        _, design, _, eta0, z, w = _working(model, record, in_v, data)
        weighted = design * w[:, None]
        return weighted.T @ design, weighted.T @ z, np.sum(np.abs(eta0))

    (xtwx, xtwz, abs_eta), n = source.reduce(normal_equations)
    beta = np.linalg.lstsq(xtwx, xtwz, rcond=None)[0]
    side = record.eta_side.get(model.link)
    if side is not None:
        sign = side.sign
        worst = np.inf
        for _, data in prepared_chunks(source, transient=True):
            X, _, offset = host_design(data.x, model.family)
            worst = min(worst, float(np.min(sign * (X @ beta + offset))))
        margin = 0.05 * float(abs_eta) / n
        constant, first = constant_columns(source, model.family)
        column = np.flatnonzero(constant)
        if np.isfinite(worst) and worst < margin and margin > 0 and column.size:
            k = int(column[0])
            beta = beta.copy()
            beta[k] += sign * (margin - worst) / first[k]
    start: dict[str, Any] = {"beta": beta}
    name, extra = model.dispersion_name, record.extra
    if name is None or extra is None:
        return start
    terms, finish = MOMENT_SUMS[extra.name]
    link = LINKS[model.link]

    def moments(data: Data) -> tuple[np.ndarray, ...]:
        y = np.asarray(data.y, dtype=np.float64).reshape(-1)
        X, _, offset = host_design(data.x, model.family)
        mu = np.asarray(link.inv(jnp.asarray(X @ beta + offset)))
        with np.errstate(all="ignore"):
            return tuple(np.sum(t) for t in terms(y, mu, record.variance(mu, None)))

    sums, _ = source.reduce(moments)
    value = finish([float(v) for v in sums], n, max(n - beta.size, 1))
    start[name] = value if (np.isfinite(value) and value > 0) else 1.0
    return start


@float64
def glm_start(model: GLM, y: Any, x: Any) -> dict[str, Any]:
    r"""Starting values for :func:`~fisherlab.fit`: R's ``mustart`` and one Fisher-scoring step.

    As R's ``glm.fit``: start from :math:`\mu^{(0)}` (binomial
    :math:`(n y/n + 1/2)/(n+1)` on the proportion scale, Poisson :math:`y + 0.1`,
    negative binomial :math:`y + [y=0]/6`, otherwise :math:`y`), take the working
    response :math:`z = \eta^{(0)} - o + (y-\mu^{(0)})/\mu'(\eta^{(0)})` and weights
    :math:`w = n\,\mu'(\eta^{(0)})^2/V(\mu^{(0)})`, and solve the weighted least
    squares problem for :math:`\beta`. For a link defined on one side of
    :math:`\eta = 0` only (binomial ``log``; ``identity`` for positive means;
    ``inverse``, ``inverse_squared``), a constant design column's coefficient
    is then shifted, if needed, so that every row starts inside the domain
    (where R would stop and ask for starting values). The extra parameter starts at its
    moment estimate from the resulting :math:`\mu` (σ from the mean squared
    residual; shape from the Pearson dispersion; α from the excess variance,
    at least 0.01).

    Args:
        model: a :class:`GLM` from :func:`glm`.
        y: observations ``(N,)``, or a source of ``(y, x)`` chunks (:func:`fisherlab.data.chunks`)
            with ``x`` omitted: the same start from sums over the chunks (module docstring).
        x: the covariates as for :func:`glm`.

    Returns:
        ``{"beta": ndarray (p,), <extra>: float}``, the structure ``fit`` expects.

    Raises:
        InvalidDataError: NaN/inf in ``y`` or ``x`` (row named), or a ``y`` for
            which the link's starting value is undefined (e.g. ``y <= 0`` with
            a log link for the gaussian family).

    Examples:
        >>> import numpy as np
        >>> from fisherlab.models import glm, glm_start
        >>> X = np.column_stack([np.ones(4), [1.0, 2.0, 3.0, 4.0]])
        >>> start = glm_start(glm("gamma", "log"), np.array([1.0, 2.0, 2.5, 4.0]), X)
        >>> sorted(start), start["beta"].round(3).tolist()
        (['beta', 'shape'], [-0.347, 0.438])
    """
    model = check_glm(model, "glm_start")
    record = FAMILIES[model.family]
    # an extra parameter in V enters when fixed; the negative binomial with alpha free starts
    # from the Poisson weights (variance(mu, None)), as MASS::glm.nb
    extra = record.extra
    in_v = model.fixed.get(extra.name) if extra is not None and extra.in_variance else None
    if isinstance(y, Chunks) and x is None:
        return _streamed_start(model, y, in_v)
    data = prepare_data(y, x)
    yv, design, offset, eta0, z, w = _working(model, record, in_v, data)
    fns = LINKS[model.link]
    sw = np.sqrt(w)
    beta = np.linalg.lstsq(design * sw[:, None], z * sw, rcond=None)[0]
    beta = _into_domain(model, beta, design, offset, eta0)
    start: dict[str, Any] = {"beta": beta}
    name = model.dispersion_name
    if name is None or extra is None:
        return start
    mu = np.asarray(fns.inv(jnp.asarray(design @ beta + offset)))
    n, p = design.shape
    value = extra.start(yv, mu, max(n - p, 1))
    start[name] = value if (np.isfinite(value) and value > 0) else 1.0
    return start
