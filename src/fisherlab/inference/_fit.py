r"""Maximum likelihood and maximum a posteriori fits.

:func:`fit` maximises :math:`\sum_i \log p(y_i\mid x_i,\theta) + \log p(\theta)`
(the prior term only with ``prior=``) over an unconstrained vector :math:`u`,
:math:`\theta = T(u)` (see ``_constraints.py``), with SciPy's optimisers fed by
jit-compiled JAX derivatives:

- ``method="newton"``: SciPy's ``trust-exact`` trust-region method (Moré &
  Sorensen 1983) with the exact Hessian, for models with up to
  ``NEWTON_MAX_PARAMS`` parameters (the ``"auto"`` choice there);
- ``method="lbfgs"``: SciPy's L-BFGS-B with the exact gradient, for larger models.

Convergence is judged by the Newton decrement
:math:`\delta = \sqrt{g^\top H^{-1} g}`, the distance from the optimum in
standard-error units (:math:`H` the Hessian of the negative log-posterior in
:math:`u`): scale-free, and exactly what matters for standard errors to be
right. If the optimiser stops with :math:`\delta` above ``tol``, up to
``POLISH_STEPS`` Newton steps (with step halving) finish the job; failing that,
:class:`~fisherlab.NotConvergedError` reports the gradient, the decrement and
what to try.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import scipy.optimize

from .._errors import NotConvergedError, SingularInformationError
from .._options import OptimMethod, choose
from ..backends._curvature import negative_hessian
from ..backends._evaluate import eager_distribution, row_slice, run
from ..backends._numeric import is_numeric
from ..data._prepare import Data, prepare_data
from ..information._information import loglik
from ..information._matrix import InfoMatrix
from ..model._model import Model
from ..params._constraints import Reparam
from ..params._prior import Prior, as_prior
from ..params._pytree import as_params, param_names, tree_signature
from ._numeric_objective import NUMERIC_NEWTON_MAX_PARAMS, NumericObjective
from ._result import FitResult

__all__ = ["Objective", "OptimMethod", "fit"]

# Above this many parameters "auto" uses L-BFGS: a dense Hessian costs O(P^2) memory and
# P Hessian-vector products per iteration.
NEWTON_MAX_PARAMS = 400
POLISH_STEPS = 20


class Objective:
    r"""Negative log-posterior :math:`f(u) = -[\sum_i \ell_i(T(u)) + \log p(T(u))]` and its derivatives.

    Kernels are compiled once per (model, parameter structure, prior) and cached on
    the model, so profile likelihoods and repeated fits reuse them. Outside the
    support (any row's distribution parameters invalid) ``f = +inf``.
    """

    def __init__(self, model: Model, reparam: Reparam, prior: Prior | None, data: Data, key: Any) -> None:
        self.model, self.reparam, self.prior, self.data = model, reparam, prior, data
        axes = (None, 0, None if data.x is None else 0)

        def neg_log_post(u: jax.Array, y: Any, x: Any) -> tuple[jax.Array, jax.Array]:
            params = reparam.to_params(u)
            ll, flags = jax.vmap(model.row_loglik, in_axes=axes)(params, y, x)
            total = ll.sum()
            if prior is not None:
                total = total + prior.log_density(params)
            valid = jnp.all(jnp.stack([jnp.all(v) for v in flags.values()])) if flags else jnp.asarray(True)
            value = jnp.where(valid & jnp.isfinite(total), -total, jnp.inf)
            return value, valid

        def value_and_grad(u: jax.Array, y: Any, x: Any) -> tuple[jax.Array, jax.Array]:
            (value, valid), grad = jax.value_and_grad(neg_log_post, has_aux=True)(u, y, x)
            return value, jnp.where(valid, grad, 0.0)

        def hessian(u: jax.Array, y: Any, x: Any) -> jax.Array:
            neg, _, _ = negative_hessian(model, reparam.to_params, u, y, x)
            if prior is None:
                return neg
            return neg - jax.hessian(lambda v: prior.log_density(reparam.to_params(v)))(u)

        cache = model._cache
        vg_key, h_key = ("fit_vg", *key), ("fit_hess", *key)
        if vg_key not in cache:
            cache[vg_key] = jax.jit(value_and_grad)
            cache[h_key] = jax.jit(hessian)
        self._vg, self._h = cache[vg_key], cache[h_key]
        self._last: tuple[bytes, float, np.ndarray] | None = None
        self._last_h: tuple[bytes, np.ndarray] | None = None
        self.evaluations = 0

    def tolerance(self, u: np.ndarray, tol: float) -> float:
        """The decrement threshold: ``tol`` (exact derivatives have no error floor)."""
        return tol

    def value_and_grad(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        key = np.asarray(u, dtype=np.float64).tobytes()
        if self._last is None or self._last[0] != key:
            value, grad = run(self._vg, jnp.asarray(u), self.data.y, self.data.x)
            self._last = (key, float(value), np.asarray(grad))
            self.evaluations += 1
        return self._last[1], self._last[2].copy()

    def value(self, u: np.ndarray) -> float:
        return self.value_and_grad(u)[0]

    def grad(self, u: np.ndarray) -> np.ndarray:
        return self.value_and_grad(u)[1]

    def trial_hessian(self, u: np.ndarray) -> np.ndarray:
        """The Hessian for SciPy's trust region, which evaluates it eagerly at trial points.

        At a point outside the support (f = inf) or where the Hessian overflows, the
        trial step is rejected on f alone; a finite stand-in (the identity) keeps SciPy's
        Hessian checks from raising there.
        """
        h = self.hessian(u)
        return h if np.all(np.isfinite(h)) else np.eye(h.shape[0])

    def hessian(self, u: np.ndarray) -> np.ndarray:
        key = np.asarray(u, dtype=np.float64).tobytes()
        if self._last_h is None or self._last_h[0] != key:
            self._last_h = (key, np.asarray(run(self._h, jnp.asarray(u), self.data.y, self.data.x)))
        return self._last_h[1].copy()


def _decrement(grad: np.ndarray, hess: np.ndarray) -> tuple[float, np.ndarray | None]:
    """Newton decrement sqrt(g^T H^-1 g) and the Newton step, or (inf, None) if H is not PD."""
    try:
        factor = np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return float("inf"), None
    w = np.linalg.solve(factor, grad)
    step = np.linalg.solve(factor.T, w)
    return float(np.sqrt(w @ w)), step


AnyObjective = Objective | NumericObjective


def _polish(obj: AnyObjective, u: np.ndarray, tol: float) -> tuple[np.ndarray, float, int]:
    """Newton steps with step halving until the decrement is below ``tol`` (or the derivatives' floor)."""
    steps = 0
    delta, step = _decrement(obj.grad(u), obj.hessian(u))
    while delta > obj.tolerance(u, tol) and step is not None and steps < POLISH_STEPS:
        f0 = obj.value(u)
        # Near the optimum the predicted decrease (delta^2 / 2) is below the rounding of f:
        # accept steps that do not increase f beyond that rounding.
        slack = 8.0 * np.finfo(float).eps * max(1.0, abs(f0))
        t = 1.0
        while t > 1e-8:
            trial = u - t * step
            if obj.value(trial) <= f0 + slack:
                break
            t *= 0.5
        else:
            break
        u = trial
        steps += 1
        delta, step = _decrement(obj.grad(u), obj.hessian(u))
    return u, delta, steps


def _failure(
    obj: AnyObjective, u: np.ndarray, grad: np.ndarray, delta: float, tol: float, iters: str, message: str
) -> Exception:
    """The error for a fit that stopped with a decrement above ``tol``.

    A stationary point (scaled gradient ~ 0) whose Hessian is singular or indefinite is a
    :class:`SingularInformationError` naming the direction; anything else did not converge.
    """
    hess = obj.hessian(u)
    curvature = ""
    if np.all(np.isfinite(hess)):
        try:
            InfoMatrix(hess, obj.reparam.names_u, method="observed").cov()
        except SingularInformationError as exc:
            scale = np.sqrt(np.maximum(np.abs(np.diag(hess)), 1e-300))
            if np.max(np.abs(grad) / scale) < 1e-6:
                return exc
            curvature = f" At that point: {exc}."
    return NotConvergedError(
        f"the fit did not converge: after {iters} the gradient norm is {np.linalg.norm(grad):.3g} "
        f"and the Newton decrement is {delta:.3g} standard errors (tol {tol:g}); optimiser: "
        f"{message}.{curvature} Try better starting values, rescale covariates, add constraints "
        "for bounded parameters, or raise max_iter"
    )


_SEPARABLE = (nd.BernoulliProbs, nd.BernoulliLogits, nd.BinomialProbs, nd.BinomialLogits)


def _separation(model: Model, params: Any, data: Data, obj: AnyObjective, u: np.ndarray) -> str:
    """A message when a Bernoulli/Binomial fit has fitted probabilities numerically 0 or 1."""
    if model.kind != "distribution" or data.x is None:
        return ""
    if isinstance(obj, NumericObjective):
        d = obj.problem.distribution(obj._theta(u)[0])
        if not isinstance(d, _SEPARABLE):
            return ""
        probs = np.asarray(d.probs)
    elif not isinstance(eager_distribution(model, params, row_slice(data.x, 0)), _SEPARABLE):
        return ""
    else:
        probs = np.asarray(jax.vmap(lambda xr: model.distribution(params, xr).probs)(data.x))
    extreme = int(np.sum((probs < 1e-10) | (probs > 1 - 1e-10)))
    if not extreme:
        return ""
    return (
        f"perfect or quasi-complete separation: {extreme} of {data.n} rows are fitted with probability "
        "numerically 0 or 1, so the maximum-likelihood estimate does not exist (coefficients run to "
        "±infinity); drop or merge the separating covariate, or add a prior (e.g. Normal(0, 2.5) on "
        "coefficients) for a finite MAP estimate"
    )


def fit(
    model: Model,
    y: Any,
    x: Any = None,
    *,
    init: Any,
    prior: Any = None,
    method: str = "auto",
    tol: float = 1e-8,
    max_iter: int = 500,
) -> FitResult:
    r"""Maximum-likelihood (or, with ``prior``, maximum a posteriori) fit.

    .. math:: \hat\theta = \arg\max_\theta \sum_i \log p(y_i \mid x_i, \theta) \; [+ \log p(\theta)]

    Args:
        model: a :class:`~fisherlab.Model` (its ``constraints`` are honoured).
        y: observations, leading axis N.
        x: covariates, leading axis N, or ``None``.
        init: starting parameters (pytree); the result has the same structure.
        prior: ``None`` (MLE), a callable ``log_prior(params)``, or a pytree of
            ``fl.dist`` distributions, one per parameter leaf.
        method: ``"auto"``, ``"newton"`` (trust region, exact Hessian) or ``"lbfgs"``.
        tol: convergence threshold on the Newton decrement
            :math:`\sqrt{g^\top H^{-1} g}` (distance to the optimum in standard
            errors).
        max_iter: iteration limit of the optimiser.

    A model with numeric derivatives (``derivatives="numeric"``, or ``"auto"`` falling back)
    is fitted the same way with finite-difference gradients and Hessians
    (:mod:`fisherlab._numeric_objective`; ``"auto"`` uses L-BFGS above
    ``NUMERIC_NEWTON_MAX_PARAMS`` = 10 parameters); its notes give the calls of the model
    function, and convergence is judged against the gradient's own error where that is
    larger than ``tol``.

    Returns:
        :class:`~fisherlab.FitResult`.

    Raises:
        NotConvergedError: the decrement stays above ``tol`` (message gives the
            gradient norm, decrement, iterations and advice); also perfect
            separation in logistic regression.
        SingularInformationError: the Hessian at the optimum is not positive
            definite (the offending direction is named).
        InvalidParameterError: ``init`` outside a constraint, the prior's support,
            or a distribution's support.
        ModelError: a prior that does not cover every parameter.

    Example:
        >>> import fisherlab as fl, numpy as np
        >>> y = np.array([2.0, 4.0, 3.0, 5.0])
        >>> m = fl.Model(lambda th, x: fl.dist.Poisson(th["rate"]), constraints={"rate": "positive"})
        >>> res = fl.fit(m, y, init={"rate": 1.0})
        >>> round(float(res.params["rate"]), 10), round(res.se()["rate"], 6)   # mean, sqrt(mean / N)
        (3.5, 0.935414)
    """
    if not isinstance(model, Model):
        raise TypeError(f"expected a fisherlab Model as first argument, got {type(model).__name__}")
    choice = choose(OptimMethod, method, "method")
    numeric = is_numeric(model, init, y, x)
    params0 = as_params(init)
    data = prepare_data(y, x)
    reparam = Reparam(params0, model.constraints)
    prior_obj = as_prior(prior, params0)
    if prior_obj is not None:
        prior_obj.check(params0)
    loglik(model, params0, data.y, data.x)  # raises, naming the row, if init is impossible
    u0 = np.asarray(reparam.to_unconstrained(params0, check=True))
    obj: AnyObjective
    if numeric:
        obj = NumericObjective(model, reparam, prior_obj, data, params0)
    else:
        obj = Objective(
            model, reparam, prior_obj, data, (tree_signature(params0), None if prior is None else id(prior))
        )
    if not np.isfinite(obj.value(u0)):
        raise SingularInformationError("the log-likelihood is not finite at init; start elsewhere")
    if choice is OptimMethod.AUTO:
        limit = NUMERIC_NEWTON_MAX_PARAMS if numeric else NEWTON_MAX_PARAMS
        choice = OptimMethod.NEWTON if reparam.size <= limit else OptimMethod.LBFGS
    if choice is OptimMethod.NEWTON:
        # Let the first full Newton step through: the trust region only has to shrink when a
        # step fails, as in a line-searched Newton method (IRLS converges in a handful of steps).
        first = _decrement(obj.grad(u0), obj.hessian(u0))[1]
        radius = float(np.linalg.norm(first)) if first is not None else 1.0
        radius = radius if np.isfinite(radius) and radius > 0 else 1.0
        opt = scipy.optimize.minimize(
            obj.value,
            u0,
            jac=obj.grad,
            hess=obj.trial_hessian,
            method="trust-exact",
            options={
                "gtol": 1e-300,
                "maxiter": max_iter,
                "initial_trust_radius": radius,
                "max_trust_radius": max(1e3, 1e3 * radius),
            },
        )
    else:
        opt = scipy.optimize.minimize(
            obj.value_and_grad,
            u0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iter, "gtol": 1e-300, "ftol": 1e-300, "maxcor": 30},
        )
    u, delta, polish = _polish(obj, np.asarray(opt.x), tol)
    params = reparam.to_params(jnp.asarray(u))
    params = jax.tree_util.tree_map(np.asarray, params)
    note = _separation(model, params, data, obj, u)
    grad = obj.grad(u)
    if note:
        raise NotConvergedError(note)
    threshold = obj.tolerance(u, tol)
    if not delta <= threshold:
        raise _failure(
            obj, u, grad, delta, tol, f"{opt.nit} iterations (+{polish} Newton steps)", opt.message
        )
    return FitResult(
        model=model,
        data=data,
        params=params,
        names=param_names(params),
        reparam=reparam,
        prior=prior_obj,
        u=u,
        objective=obj,
        converged=True,
        n_iter=int(opt.nit) + polish,
        decrement=delta,
        method=choice.value,
        notes=_numeric_notes(obj, tol, threshold),
    )


def _numeric_notes(obj: AnyObjective, tol: float, threshold: float) -> list[str]:
    """What a numeric fit should tell: its cost, and a convergence floor above ``tol``."""
    if not isinstance(obj, NumericObjective):
        return []
    notes = [f"numeric derivatives (finite differences): {obj.evaluations} calls of the model function"]
    if threshold > tol:
        notes.append(
            f"the gradient is known only to about {threshold / 2:.2g} standard errors (finite-difference "
            f"error), so convergence was judged at a Newton decrement of {threshold:.2g} instead of {tol:g}"
        )
    return notes
