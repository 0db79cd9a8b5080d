r"""Profile-likelihood confidence intervals.

For parameter :math:`\psi = \theta_j` the profile log-likelihood
:math:`\ell_p(\psi) = \max_{\theta_{-j}} \ell(\psi, \theta_{-j})` gives the interval

.. math:: \{\psi : 2[\ell(\hat\theta) - \ell_p(\psi)] \le \chi^2_{1}(\text{level})\}

(the likelihood-ratio interval of R's ``confint`` on a ``glm`` and of MINOS in
iminuit). Unlike Wald intervals it follows the shape of the likelihood, so it
is asymmetric where the likelihood is (a Poisson rate with few counts, a
variance). The end points are found by bracketing from the Wald interval and
Brent's method; each evaluation re-optimises the other parameters on the
unconstrained scale, then the end points are mapped back. With a prior, the same
is done with the log-posterior; the two-parameter analogue is
:func:`~fisherlab.inference.profile_grid`.

The inner minimisation :math:`\min_{u_{-j}} f(u)` is the fit's damped Newton routine
(:func:`~fisherlab.inference._newton.newton` over the coordinates :math:`-j`), warm started
from the previous evaluation, run to a Newton decrement of ``1e-8`` standard errors:
:math:`\delta^2/2` is the remaining error of :math:`f`, here about ``1e-16``, below its
rounding. Where Newton stops short of that (a Hessian that is not positive definite on
the way from a far start, or no decrease found), SciPy's ``trust-exact`` trust region,
which handles indefinite Hessians, takes over from the point reached, and Newton polishes
its result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax.numpy as jnp
import numpy as np
import pandas as pd
import scipy.optimize
import scipy.special

from .._errors import FisherlabError, MethodUnavailableError, NotConvergedError
from ._newton import newton

if TYPE_CHECKING:
    from ._objective import Objective
    from ._result import FitResult

__all__ = ["profile_intervals"]

_MAX_EXPANSIONS = 40
_NEWTON_TOL = 1e-8  # decrement of the inner fits, in standard errors: error of f ~ 5e-17
_NEWTON_STEPS = 50  # warm starts need a few; a far start (the first bracket) more
_TRUST_ITER = 200  # the fallback's iteration limit


class _Profile:
    """Minimum of the objective over every coordinate but ``j`` of ``u``, warm started."""

    def __init__(self, obj: Objective, u_hat: np.ndarray, j: int) -> None:
        self.obj, self.j = obj, j
        self.keep = np.array([k for k in range(u_hat.size) if k != j], dtype=int)
        self.start = u_hat[self.keep].copy()

    def full(self, v: float, rest: np.ndarray) -> np.ndarray:
        u = np.empty(self.keep.size + 1)
        u[self.keep] = rest
        u[self.j] = v
        return u

    def _converged(self, u: np.ndarray, delta: float) -> bool:
        return bool(delta <= self.obj.tolerance(u, _NEWTON_TOL))

    def __call__(self, v: float) -> float:
        obj, keep = self.obj, self.keep
        u = self.full(v, self.start)
        if keep.size == 0:
            return obj.value(u)
        u, delta, _ = newton(obj, u, _NEWTON_TOL, keep=keep, max_steps=_NEWTON_STEPS)
        if not self._converged(u, delta):
            u = self._trust_region(v, u[keep] if np.isfinite(obj.value(u)) else self.start)
            u, delta, _ = newton(obj, u, _NEWTON_TOL, keep=keep, max_steps=_NEWTON_STEPS)
        value = obj.value(u)
        if np.isfinite(value):
            self.start = u[keep].copy()
        return float(value)

    def _trust_region(self, v: float, rest: np.ndarray) -> np.ndarray:
        """The fallback: SciPy's trust region from ``rest`` (robust where the Hessian is indefinite)."""
        obj, keep = self.obj, self.keep
        opt = scipy.optimize.minimize(
            lambda r: obj.value(self.full(v, r)),
            rest,
            jac=lambda r: obj.grad(self.full(v, r))[keep],
            hess=lambda r: obj.trial_hessian(self.full(v, r))[np.ix_(keep, keep)],
            method="trust-exact",
            options={"gtol": 1e-10, "maxiter": _TRUST_ITER},
        )
        return self.full(v, np.asarray(opt.x) if np.isfinite(opt.fun) else rest)


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
    aligned = result.elementwise_transforms()
    if not aligned:
        raise MethodUnavailableError(
            "profile intervals need parameters that map one-to-one to the fitting scale; a simplex or "
            "ordered constraint does not: use method='wald'"
        )
    target = float(scipy.special.gammaincinv(0.5, level))  # chi2_1 quantile / 2
    u_hat = np.asarray(result.u)
    f0 = result.objective.value(u_hat)
    se_u = np.sqrt(np.diag(result.cov("observed", scale="unconstrained").matrix))
    z = float(scipy.special.ndtri(0.5 + level / 2))
    rows = []
    for t, j in aligned:
        profile = _Profile(result.objective, u_hat, j)
        ends = []
        for sign in (-1.0, 1.0):
            try:
                ends.append(_end(profile, float(u_hat[j]), f0, sign * z * se_u[j], target))
            except ValueError as exc:  # brentq without a sign change
                if isinstance(exc, FisherlabError):
                    raise
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
