r"""Expected Fisher information of a model: chain rule, exact summation, quadrature, Monte-Carlo.

.. math:: F(\theta) = \sum_i \mathbb{E}_{y \sim p(\cdot\mid x_i,\theta)}\big[s_i(y)\, s_i(y)^\top\big],
          \qquad s_i(y) = \nabla_\theta \log p(y \mid x_i, \theta).

It is always computed as the expectation of the outer product of scores, never
only as :math:`-\mathbb{E}[\nabla^2 \ell]`: for a non-smooth density (the Laplace
location) autodiff gives a Hessian that is 0 almost everywhere while the Fisher
is :math:`1/b^2`. Routes, chosen by ``method="auto"`` in this order:

1. ``"exact"`` via the registry: :math:`F = \sum_i J_i^\top I(\eta_i) J_i`, with
   :math:`\eta_i` the family's parameters of row i, :math:`J_i = \partial\eta_i/\partial\theta`
   (reverse mode per row: cost grows with the few family parameters, not with P)
   and :math:`I` the closed form of :mod:`fisherlab.dist`;
2. ``"exact"`` by summation over a finite support (:math:`\sum_y p(y) s s^\top`);
3. ``"exact"`` by tanh-sinh quadrature over :math:`u = F(y)` for 1-D continuous
   families with an inverse CDF (the result carries an error estimate; with
   ``method="auto"``, a quadrature that misses its tolerance falls back to 4.);
4. ``"mc"``: :math:`\frac1S\sum_s \sum_i s_i(y^{(s)}_i) s_i(y^{(s)}_i)^\top` with
   :math:`y^{(s)} \sim p(\cdot\mid x,\theta)`; ``.error`` is the Monte-Carlo
   standard error of every entry.

The route is chosen here, once, for every derivative backend; the backend computes it
(:meth:`~fisherlab.backends.Backend.eta_gram` for the chain rule,
:meth:`~fisherlab.backends.Backend.mc_score_outer` for Monte-Carlo). With numeric derivatives
(``derivatives="numeric"``, or ``"auto"`` on a function JAX cannot trace) the Jacobian
:math:`J_i` is a finite-difference one and ``.error`` bounds its effect; summation and
quadrature need autodiff, so such a model without a closed form takes Monte-Carlo.

A model without covariates (``x=None``) gives the information of ONE
observation; ``n`` multiplies the result (``n`` iid observations, or ``n``
repetitions of the design ``x``).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from .._errors import FisherlabArgumentError, MethodUnavailableError, NotConvergedError
from .._options import FisherMethod, choose, count, seed_value
from .._precision import float64
from ..backends import Backend, Derivative, backend_for
from ..backends._validity import check_finite
from ..data._chunks import Chunks
from ..data._dask import IndexedTerm
from ..data._prepare import Data, prepare_data
from ..dist._registry import family_fisher, has_closed_form
from ..model._model import Model, require_model
from ..params._pytree import as_params, named_values, param_names, tree_signature
from ._matrix import InfoMatrix

__all__ = ["ROUTES", "FisherTerm", "family_parts", "fisher", "require_sampler"]

# Relative error (largest entry) above which the quadrature route gives up rather than
# return a matrix whose leading digits may be wrong.
QUADRATURE_RTOL = 1e-8


def family_parts(d: Any) -> tuple[Any, Any]:
    """A distribution's parameters and its Fisher information per batch element, from the registry."""
    fam = family_fisher(d)
    return fam.params, fam.matrix


def require_sampler(model: Model, exact: bool) -> None:
    """A ``from_loglik`` model has an expected Fisher only by Monte-Carlo with its ``sampler``."""
    if exact:
        raise MethodUnavailableError(
            "a model from Model.from_loglik has no distribution, so no exact Fisher; "
            "give it a sampler= and use method='mc', or write it with Model(fn)"
        )
    if model.sampler is None:
        raise MethodUnavailableError(
            "the expected Fisher of a Model.from_loglik model needs a sampler "
            "(Model.from_loglik(fn, sampler=...)); without one, use empirical_fisher "
            "or observed_information on data"
        )


def _route(backend: Backend, params: Any, x: Any, method: FisherMethod) -> str:
    """The route for this model and these shapes, probed once on the first row and kept on the model."""
    key = (backend.name, method, tree_signature(params), tree_signature(x))
    routes = backend.model.state.routes
    route = routes.get(key)
    if route is None:
        route = routes[key] = _probe_route(backend, params, x, method)
    return route


def _probe_route(backend: Backend, params: Any, x: Any, method: FisherMethod) -> str:
    model = backend.model
    if model.kind == "loglik":
        require_sampler(model, exact=method is FisherMethod.EXACT)
        return "mc"
    if method is FisherMethod.MC:
        return "mc"
    d = backend.first_distribution(params, x)
    if has_closed_form(type(d)):
        return "exact"
    if backend.integrates:
        if d.has_enumerate_support:
            return "summation"
        if not d.event_shape:
            try:
                d.icdf(jnp.asarray(0.5))
                return "quadrature"
            except (NotImplementedError, ImportError):
                pass
    if method is FisherMethod.EXACT:
        if not backend.integrates:
            raise MethodUnavailableError(
                f"no exact Fisher for {type(d).__name__} with {backend.name} derivatives: no closed form is "
                "registered; use method='mc' or register one with fl.dist.register_fisher"
            )
        raise MethodUnavailableError(
            f"no exact Fisher for {type(d).__name__}: no closed form is registered, its support is "
            "not finite and it has no inverse CDF for quadrature; use method='mc' or register a "
            "closed form with fl.dist.register_fisher"
        )
    return "mc"


@float64
def fisher(
    model: Model,
    params: Any,
    x: Any = None,
    *,
    n: int = 1,
    method: str = "auto",
    num_samples: int = 1000,
    seed: int = 0,
) -> InfoMatrix:
    r"""Expected Fisher information :math:`F(\theta) = \sum_i \mathbb{E}[s_i s_i^\top]`, a total over rows.

    Args:
        model: a :class:`~fisherlab.Model` (or one from ``from_loglik`` with a sampler).
        params: parameter pytree :math:`\theta`.
        x: covariates (the design), leading axis N; ``None`` for an iid model,
            which gives the information of ONE observation.
        n: multiplies the result: ``n`` iid observations (or ``n`` repeats of x), an integer >= 1.
        method: ``"exact"`` (closed form through the chain rule, exact summation
            or quadrature), ``"mc"`` (Monte-Carlo) or ``"auto"`` (exact when it
            exists, else Monte-Carlo).
        num_samples: Monte-Carlo draws of the whole data set (``method="mc"``), an integer >= 2.
        seed: Monte-Carlo seed, an integer >= 0.

    Returns:
        :class:`~fisherlab.InfoMatrix` with ``.method`` telling the route taken;
        ``.error`` holds the Monte-Carlo standard error per entry (``"mc"``) or
        the quadrature error estimate (``"quadrature"``).

    Raises:
        FisherlabArgumentError: ``model`` is not an ``fl.Model``; ``n``, ``num_samples`` or
            ``seed`` not an integer (``n=1.5``); a complex, bool or non-numeric parameter.
        InvalidOptionError: ``method`` not one of its values; ``n < 1``, ``num_samples < 2``
            or ``seed < 0``.
        MethodUnavailableError: ``method="exact"`` for a model without one.
        InvalidParameterError: parameters outside a distribution's support
            (row and parameter named), non-finite or empty parameters.
        InvalidDataError: NaN/inf, complex values or mismatched rows in ``x``.

    Examples:
        Logistic regression, :math:`F = X^\top \mathrm{diag}(p(1-p)) X`:

        >>> import fisherlab as fl, numpy as np
        >>> X = np.array([[1.0, -1.0], [1.0, 0.0], [1.0, 2.0]])
        >>> m = fl.Model(lambda th, x: fl.dist.Bernoulli(logits=x @ th["beta"]))
        >>> F = fl.fisher(m, {"beta": np.zeros(2)}, X)
        >>> F.matrix.tolist()
        [[0.75, 0.25], [0.25, 1.25]]
        >>> fl.fisher(fl.Model(lambda th, x: fl.dist.Gamma(th["a"], th["b"])),
        ...           {"a": 2.0, "b": 1.0}, n=10).matrix.round(4).tolist()
        [[6.4493, -10.0], [-10.0, 20.0]]
    """
    require_model(model, "fisher")
    choice = choose(FisherMethod, method, "method")
    n = count(n, "n", 1, "the number of iid observations, or repeats of x")
    num_samples = count(num_samples, "num_samples", 2, "Monte-Carlo draws of the data set")
    seed = seed_value(seed)
    if isinstance(x, Chunks):
        return _streamed_fisher(model, params, x, n, choice.value, num_samples, seed)
    backend = backend_for(model, params, None, x)
    params = as_params(params)
    x = prepare_data(None, x, require_y=False).x
    names = param_names(params)
    route = _route(backend, params, x, choice)
    result: Derivative | None = None
    if route == "quadrature":
        result = backend.quadrature_fisher(params, x)
        assert result.error is not None
        scale = np.max(np.abs(result.value))
        if not (np.all(np.isfinite(result.value)) and np.max(result.error) <= QUADRATURE_RTOL * scale):
            if choice is FisherMethod.EXACT:
                raise NotConvergedError(
                    f"quadrature of E[s s^T] did not converge (error estimate {np.max(result.error):.2e} vs "
                    f"largest entry {scale:.2e}); use method='mc' or register a closed form"
                )
            route, result = "mc", None  # "auto": exact was not reached, so Monte-Carlo (documented)
    if route == "exact":
        result = backend.eta_gram(params, x, family_parts)
    elif route == "summation":
        result = backend.enumerated_fisher(params, x)
    elif route == "mc":
        moments = backend.mc_score_outer(params, x, int(num_samples), seed)
        mean, se = moments.combine()
        result = Derivative(mean, se, moments.evaluations)
    assert result is not None
    check_finite("Fisher information", result.value[None])
    error = None if result.error is None else result.error * n
    return InfoMatrix(
        result.value * n,
        names,
        error=error,
        method=route,
        evaluations=result.evaluations,
        center=named_values(params),
    )


#: The routes of :func:`fisher`, in the order a chunk marks the one it took (:class:`FisherTerm`).
ROUTES = ("exact", "summation", "quadrature", "mc")


class FisherTerm(IndexedTerm):
    """One chunk's expected Fisher for :meth:`~fisherlab.data.Chunks.reduce`: ``(matrix, error
    term, [evaluations, has error], route marks)``, every output an array that adds over chunks
    (a Monte-Carlo error term is the variance, combined in quadrature).

    The chunk's position seeds its Monte-Carlo draws (``seed`` and the index), so chunks are
    independent and a pass gives the same numbers wherever it runs. Holds only the model, the
    parameters and the options: a source that computes on a cluster's workers ships it there.
    """

    def __init__(self, model: Model, params: Any, method: str, num_samples: int, seed: int) -> None:
        super().__init__()
        self.model, self.params, self.method = model, params, method
        self.num_samples, self.seed = num_samples, seed

    def term(self, index: int, data: Data) -> tuple[np.ndarray, ...]:
        if data.x is None:
            raise FisherlabArgumentError(
                f"fisher: chunk {index} has no x; the expected information of a source needs its covariates"
            )
        chunk_seed = int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0] % 2**31)
        info = fisher(
            self.model, self.params, data.x, method=self.method, num_samples=self.num_samples, seed=chunk_seed
        )
        if info.error is None:
            error = np.zeros_like(info.matrix)
        else:
            error = info.error**2 if info.method == "mc" else info.error
        marks = np.asarray([info.method == route for route in ROUTES], dtype=np.float64)
        counts = np.asarray([info.evaluations or 0, info.error is not None], dtype=np.float64)
        return info.matrix, error, counts, marks


def _streamed_fisher(
    model: Model, params: Any, source: Chunks, n: int, method: str, num_samples: int, seed: int
) -> InfoMatrix:
    """:func:`fisher` over the ``x`` of a chunk source: one :meth:`~fisherlab.data.Chunks.reduce`
    of :class:`FisherTerm` (on a Dask cluster's workers for a :class:`~fisherlab.data.DaskSource`
    with a client), the chunks' informations summed in float64 (compensated); Monte-Carlo chunks
    get independent seeds, their standard errors combine in quadrature, other errors add."""
    (total, errors, counts, marks), _ = source.reduce(FisherTerm(model, params, method, num_samples, seed))
    routes = [route for route, mark in zip(ROUTES, marks, strict=True) if mark > 0]
    mc = "mc" in routes
    error = None if not counts[1] else (np.sqrt(errors) if mc else errors) * n
    host = as_params(params, host=True)
    evaluations = int(counts[0]) or None
    return InfoMatrix(
        total * n,
        param_names(host),
        error=error,
        method="+".join(sorted(routes)),
        evaluations=evaluations,
        center=named_values(host),
    )
