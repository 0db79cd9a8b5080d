r"""Maximum likelihood and maximum a posteriori fits.

:func:`fit` maximises :math:`\sum_i \log p(y_i\mid x_i,\theta) + \log p(\theta)`
(the prior term only with ``prior=``) over an unconstrained vector :math:`u`,
:math:`\theta = T(u)` (see ``_constraints.py``), with SciPy's optimisers fed by
jit-compiled JAX derivatives:

- ``method="newton"``: SciPy's ``trust-exact`` trust-region method (Moré &
  Sorensen 1983) with the exact Hessian, for models with up to
  400 parameters (10 with numeric derivatives; the ``"auto"`` choice there);
- ``method="lbfgs"``: SciPy's L-BFGS-B with the exact gradient, for larger models.

Convergence is judged by the Newton decrement
:math:`\delta = \sqrt{g^\top H^{-1} g}`, the distance from the optimum in
standard-error units (:math:`H` the Hessian of the negative log-posterior in
:math:`u`): scale-free, and exactly what matters for standard errors to be
right. If the optimiser stops with :math:`\delta` above ``tol``, up to
``POLISH_STEPS`` damped Newton steps (:func:`~fisherlab.inference._newton.newton`) finish the
job; failing that,
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

from .._errors import (
    EstimateAtInfinityError,
    FisherlabArgumentError,
    NotConvergedError,
    SingularInformationError,
)
from .._options import OptimMethod, choose, count, positive_number
from .._precision import float64
from ..backends import Backend, backend_for
from ..data._chunks import Chunks, StreamedData, in_parts, labelled
from ..data._prepare import Data, prepare_data
from ..information._data_terms import loglik
from ..information._matrix import InfoMatrix
from ..model._model import Model, require_model
from ..params._constraints import Reparam
from ..params._prior import as_prior
from ..params._pytree import as_params, param_names
from ._newton import decrement, newton
from ._objective import Objective
from ._overflow import overflow_error
from ._recession import find_recession, recession_error
from ._result import FitResult

__all__ = ["Objective", "OptimMethod", "fit"]

POLISH_STEPS = 20


def _failure(
    obj: Objective, u: np.ndarray, grad: np.ndarray, delta: float, tol: float, iters: str, message: str
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


def _separation(backend: Backend, params: Any, data: Data | StreamedData) -> str:
    """A message when a Bernoulli/Binomial fit has fitted probabilities numerically 0 or 1."""
    first = data.first if isinstance(data, StreamedData) else data
    if backend.model.kind != "distribution" or first.x is None:
        return ""
    if not isinstance(backend.first_distribution(params, first.x), _SEPARABLE):
        return ""
    count, row = 0, -1
    for start, part in in_parts(data):
        probs = np.asarray(backend.rows_distribution(params, part.x).probs)
        extreme = np.flatnonzero((probs < 1e-10) | (probs > 1 - 1e-10))
        if extreme.size and row < 0:
            row = start + int(extreme[0])
        count += extreme.size
    if not count:
        return ""
    return (
        f"perfect or quasi-complete separation: {count} of {data.n} rows (first: row "
        f"{row}) are fitted with probability numerically 0 or 1, so the maximum-likelihood "
        "estimate does not exist (coefficients run to ±infinity); drop or merge the separating "
        "covariate, or add a prior (e.g. Normal(0, 2.5) on coefficients) for a finite MAP estimate"
    )


def _at_infinity(
    backend: Backend, obj: Objective, params: Any, u: np.ndarray, prior: bool, *, converged: bool
) -> None:
    """Raise :class:`EstimateAtInfinityError` if the MLE does not exist (separation, recession)."""
    if prior:  # a proper prior bounds the log-posterior; an improper one is the user's choice
        return
    note = _separation(backend, params, obj.data)
    found = find_recession(obj, u, every=not converged)
    if found is not None:
        raise recession_error(obj, backend, params, found, lead=note)
    if note:
        raise EstimateAtInfinityError(note)


def _name_invalid_row(backend: Backend, params: Any, data: StreamedData) -> None:
    """Raise the error naming the first row of a streamed source impossible at ``params``, if any
    (chunk and row named), as the in-memory fit does at its starting values."""
    for label, part in data:
        with labelled(label):
            backend.loglik(params, part)


def _finite_start(obj: Objective, backend: Backend, params0: Any, u0: np.ndarray, *, hessian: bool) -> None:
    """Raise :class:`InvalidDataError` naming the row if the derivatives overflow at the start."""
    finite = np.all(np.isfinite(obj.grad(u0))) and (not hessian or np.all(np.isfinite(obj.hessian(u0))))
    if finite:
        return
    exc = overflow_error(backend, params0, obj.data, "at the starting values")
    if exc is not None:
        raise exc


@float64
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
    is fitted the same way with finite-difference gradients and Hessians from its backend
    (:class:`~fisherlab.inference._objective.Objective`; ``"auto"`` uses L-BFGS above
    10 parameters); its notes give the calls of the model
    function, and convergence is judged against the gradient's own error where that is
    larger than ``tol``.

    Returns:
        :class:`~fisherlab.FitResult`.

    Raises:
        NotConvergedError: the decrement stays above ``tol`` (message gives the
            gradient norm, decrement, iterations and advice).
        EstimateAtInfinityError: (a ``NotConvergedError``) the maximum-likelihood estimate
            does not exist: the log-likelihood keeps rising as parameters run to infinity or
            to the boundary of their support (separation in logistic regression, a Poisson
            group whose counts are all zero; see ``inference/_recession.py``). The message
            names the parameters, their limits and the rows responsible.
        SingularInformationError: the Hessian at the optimum is not positive
            definite (the offending direction is named).
        InvalidParameterError: ``init`` outside a constraint, the prior's support,
            or a distribution's support.
        InvalidDataError: NaN/inf or mismatched data (row and field named), or data whose
            derivatives overflow float64 (row and covariate named).
        InvalidOptionError: an unknown ``method``, ``tol`` not a finite number > 0,
            ``max_iter`` not an integer >= 1.
        FisherlabArgumentError: ``model`` is not an ``fl.Model``; an argument of the wrong type.
        ModelError: a prior that does not cover every parameter.

    Examples:
        >>> import fisherlab as fl, numpy as np
        >>> y = np.array([2.0, 4.0, 3.0, 5.0])
        >>> m = fl.Model(lambda th, x: fl.dist.Poisson(th["rate"]), constraints={"rate": "positive"})
        >>> res = fl.fit(m, y, init={"rate": 1.0})
        >>> round(float(res.params["rate"]), 10), round(res.se()["rate"], 6)   # mean, sqrt(mean / N)
        (3.5, 0.935414)
    """
    model = require_model(model, "fit")
    choice = choose(OptimMethod, method, "method")
    tol = positive_number(tol, "tol")
    max_iter = count(max_iter, "max_iter", 1, "optimiser iterations")
    data: Data | StreamedData
    if isinstance(y, Chunks):
        if x is not None:
            raise FisherlabArgumentError("fit: a chunk source holds x too; pass it as y and leave x out")
        y.keep_passes()  # one read of a costly source; later passes read a scratch copy
        data = StreamedData.first_chunk(y)
        first = data.first
    else:
        data = first = prepare_data(y, x)
    backend = backend_for(model, init, first.y, first.x)
    params0 = as_params(init)
    reparam = Reparam(params0, model.constraints)
    prior_obj = as_prior(prior, params0)
    if prior_obj is not None:
        prior_obj.check(params0)
    loglik(model, params0, first.y, first.x)  # raises, naming the row, if init is impossible
    u0 = np.asarray(reparam.to_unconstrained(params0, check=True))
    obj = Objective(model, reparam, prior_obj, data, params0)
    if not np.isfinite(obj.value(u0)):
        if isinstance(data, StreamedData):
            _name_invalid_row(backend, params0, data)
        raise SingularInformationError("the log-likelihood is not finite at init; start elsewhere")
    if choice is OptimMethod.AUTO:
        choice = OptimMethod.NEWTON if reparam.size <= obj.newton_max_params else OptimMethod.LBFGS
    _finite_start(obj, backend, params0, u0, hessian=choice is OptimMethod.NEWTON)
    if choice is OptimMethod.NEWTON:
        # Let the first full Newton step through: the trust region only has to shrink when a
        # step fails, as in a line-searched Newton method (IRLS converges in a handful of steps).
        step = decrement(obj.grad(u0), obj.hessian(u0))[1]
        radius = float(np.linalg.norm(step)) if step is not None else 1.0
        radius = radius if np.isfinite(radius) and radius > 0 else 1.0
        with np.errstate(over="ignore", invalid="ignore"):  # trust-exact's own bounds on big numbers
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
    u, delta, polish = newton(obj, np.asarray(opt.x), tol, max_steps=POLISH_STEPS)
    params = reparam.to_params(jnp.asarray(u))
    params = jax.tree_util.tree_map(np.asarray, params)
    grad = obj.grad(u)
    threshold = obj.tolerance(u, tol)
    if not delta <= threshold:
        overflow = overflow_error(backend, params, data, "at the point the fit reached")
        if overflow is not None and not np.all(np.isfinite(obj.hessian(u))):
            raise overflow
        _at_infinity(backend, obj, params, u, prior_obj is not None, converged=False)
        raise _failure(
            obj, u, grad, delta, tol, f"{opt.nit} iterations (+{polish} Newton steps)", opt.message
        )
    _at_infinity(backend, obj, params, u, prior_obj is not None, converged=True)
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


def _numeric_notes(obj: Objective, tol: float, threshold: float) -> list[str]:
    """What a numeric fit should tell: its cost, and a convergence floor above ``tol``."""
    if obj.evaluations is None:
        return []
    notes = [f"numeric derivatives (finite differences): {obj.evaluations} calls of the model function"]
    if threshold > tol:
        notes.append(
            f"the gradient is known only to about {threshold / 2:.2g} standard errors (finite-difference "
            f"error), so convergence was judged at a Newton decrement of {threshold:.2g} instead of {tol:g}"
        )
    return notes
