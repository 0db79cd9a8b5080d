r"""Starting values of a GLM fit: R's ``mustart`` and one Fisher-scoring (IRLS) step.

From the family's starting mean :math:`\mu^{(0)}` (:attr:`FamilyRecord.start`), the
working response :math:`z = \eta^{(0)} - o + (y-\mu^{(0)})/\mu'(\eta^{(0)})` and
weights :math:`w = n\,\mu'(\eta^{(0)})^2/V(\mu^{(0)})` give :math:`\beta` by weighted
least squares, as R's ``glm.fit`` does before its first iteration.

References:
    R Core Team, ``?glm.fit``, ``?family`` (``mustart``).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from .._errors import InvalidDataError
from .._precision import float64
from ..data import prepare_data
from ._design import host_design
from ._families import FAMILIES
from ._glm import GLM, check_glm
from ._links import LINKS

__all__ = ["glm_start"]


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
        y: observations ``(N,)``.
        x: the covariates as for :func:`glm`.

    Returns:
        ``{"beta": ndarray (p,), <extra>: float}``, the structure ``fit`` expects.

    Raises:
        InvalidDataError: NaN/inf in ``y`` or ``x`` (row named), or a ``y`` for
            which the link's starting value is undefined (e.g. ``y <= 0`` with
            a log link for the gaussian family).

    Example:
        >>> import numpy as np
        >>> from fisherlab.models import glm, glm_start
        >>> X = np.column_stack([np.ones(4), [1.0, 2.0, 3.0, 4.0]])
        >>> start = glm_start(glm("gamma", "log"), np.array([1.0, 2.0, 2.5, 4.0]), X)
        >>> sorted(start), start["beta"].round(3).tolist()
        (['beta', 'shape'], [-0.347, 0.438])
    """
    model = check_glm(model, "glm_start")
    data = prepare_data(y, x)
    yv = np.asarray(data.y, dtype=np.float64).reshape(-1)
    design, trials, offset = host_design(data.x, model.family)
    fns = LINKS[model.link]
    fam = model.family
    record = FAMILIES[fam]
    mu0 = record.start(yv, trials)
    # an extra parameter in V enters when fixed; the negative binomial with alpha free starts
    # from the Poisson weights (variance(mu, None)), as MASS::glm.nb
    extra = record.extra
    in_v = model.fixed.get(extra.name) if extra is not None and extra.in_variance else None
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
            f"{fam.value} family (R's glm would ask for starting values too); give init= yourself"
        )
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
