r"""Profile-likelihood confidence intervals.

For parameter :math:`\psi = \theta_j` the profile log-likelihood
:math:`\ell_p(\psi) = \max_{\theta_{-j}} \ell(\psi, \theta_{-j})` gives the interval

.. math:: \{\psi : 2[\ell(\hat\theta) - \ell_p(\psi)] \le \chi^2_{1}(\text{level})\}

(the likelihood-ratio interval of R's ``confint`` on a ``glm`` and of MINOS in
iminuit). Unlike Wald intervals it follows the shape of the likelihood, so it
is asymmetric where the likelihood is (a Poisson rate with few counts, a
variance). The end points are found by bracketing from the Wald interval and
Brent's method; each evaluation re-optimises the other parameters (warm
started), on the unconstrained scale, then maps the end points back. With a
prior, the same is done with the log-posterior.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax.numpy as jnp
import numpy as np
import pandas as pd
import scipy.optimize
import scipy.stats

from .._errors import MethodUnavailableError, NotConvergedError

if TYPE_CHECKING:
    from ._fit import AnyObjective
    from ._result import FitResult

__all__ = ["profile_intervals"]

_MAX_EXPANSIONS = 40


class _Profile:
    """Minimum of the objective over every coordinate but ``j`` of ``u``, warm started."""

    def __init__(self, obj: AnyObjective, u_hat: np.ndarray, j: int) -> None:
        self.obj, self.j = obj, j
        self.keep = np.array([k for k in range(u_hat.size) if k != j], dtype=int)
        self.start = u_hat[self.keep].copy()

    def full(self, v: float, rest: np.ndarray) -> np.ndarray:
        u = np.empty(self.keep.size + 1)
        u[self.keep] = rest
        u[self.j] = v
        return u

    def __call__(self, v: float) -> float:
        if self.keep.size == 0:
            return self.obj.value(self.full(v, self.start))
        obj, keep = self.obj, self.keep
        opt = scipy.optimize.minimize(
            lambda r: obj.value(self.full(v, r)),
            self.start,
            jac=lambda r: obj.grad(self.full(v, r))[keep],
            hess=lambda r: obj.trial_hessian(self.full(v, r))[np.ix_(keep, keep)],
            method="trust-exact",
            options={"gtol": 1e-10, "maxiter": 200},
        )
        if np.isfinite(opt.fun):
            self.start = np.asarray(opt.x)
        return float(opt.fun)


def _end(profile: _Profile, u0: float, f0: float, step: float, target: float) -> float:
    """The point on one side of ``u0`` (direction = sign of ``step``) where f - f0 = target."""
    inside, dist = u0, step
    for _ in range(_MAX_EXPANSIONS):
        trial = u0 + dist
        value = profile(trial) - f0
        if not np.isfinite(value) or value > target:
            break
        inside, dist = trial, 2.0 * dist
    else:
        return float(np.sign(step) * np.inf)
    lo, hi = sorted((inside, trial))

    def deficit(v: float) -> float:
        val = profile(v) - f0
        return (val if np.isfinite(val) else 1e300) - target

    if not np.isfinite(profile(trial) - f0):
        # outside the support: shrink towards the inside until finite
        outer = trial
        for _ in range(60):
            outer = 0.5 * (outer + inside)
            if np.isfinite(profile(outer) - f0):
                break
        if profile(outer) - f0 <= target:
            return float(np.sign(step) * np.inf)
        lo, hi = sorted((inside, outer))
    return float(scipy.optimize.brentq(deficit, lo, hi, xtol=1e-12, rtol=1e-12, maxiter=200))


def profile_intervals(result: FitResult, level: float) -> pd.DataFrame:
    """Profile-likelihood intervals for every parameter of ``result`` (see module docs)."""
    aligned = result._elementwise_u()
    if not aligned:
        raise MethodUnavailableError(
            "profile intervals need parameters that map one-to-one to the fitting scale; a simplex or "
            "ordered constraint does not: use method='wald'"
        )
    target = 0.5 * float(scipy.stats.chi2.ppf(level, df=1))
    u_hat = np.asarray(result.u)
    f0 = result.objective.value(u_hat)
    se_u = np.sqrt(np.diag(result.cov("observed", scale="unconstrained").matrix))
    z = float(scipy.stats.norm.ppf(0.5 + level / 2))
    rows = []
    for t, j in aligned:
        profile = _Profile(result.objective, u_hat, j)
        ends = []
        for sign in (-1.0, 1.0):
            try:
                ends.append(_end(profile, float(u_hat[j]), f0, sign * z * se_u[j], target))
            except ValueError as exc:  # brentq without a sign change
                raise NotConvergedError(
                    f"profile likelihood of {result.reparam.names_u[j]} could not be bracketed ({exc}); "
                    "use method='wald'"
                ) from exc
            profile.start = u_hat[profile.keep].copy()
        if t is not None:
            ends = sorted(float(t(jnp.asarray(e))) for e in ends)
        rows.append(ends)
    arr = np.array(rows, dtype=float)
    return pd.DataFrame({"lower": arr[:, 0], "upper": arr[:, 1]}, index=result.names)
