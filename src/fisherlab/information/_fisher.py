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

A model with numeric derivatives (``derivatives="numeric"``, or ``"auto"`` on a function
JAX cannot trace) takes the chain rule with a finite-difference Jacobian of the family's
parameters, or Monte-Carlo (:mod:`fisherlab._numeric_fisher`).

A model without covariates (``x=None``) gives the information of ONE
observation; ``n`` multiplies the result (``n`` iid observations, or ``n``
repetitions of the design ``x``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .._errors import MethodUnavailableError, ModelError, NotConvergedError
from .._options import FisherMethod, choose
from ..backends._evaluate import (
    as_float,
    cached_kernel,
    check_finite,
    eager_distribution,
    raise_invalid,
    row_slice,
    run,
)
from ..backends._numeric import is_numeric
from ..data._blocks import sum_over_blocks
from ..data._prepare import prepare_data
from ..dist._registry import family_fisher, has_closed_form
from ..model._model import Model, validity
from ..params._pytree import as_params, param_names, tree_signature
from ._matrix import InfoMatrix
from ._quadrature import tanh_sinh_nodes

__all__ = ["FisherMethod", "fisher"]

# Relative error (largest entry) above which the quadrature route gives up rather than
# return a matrix whose leading digits may be wrong.
QUADRATURE_RTOL = 1e-8
# Rows x samples x parameters (and samples x P^2) held in memory by one Monte-Carlo block.
_MC_BLOCK_ELEMENTS = 2**23


# --------------------------------------------------------------------------- kernels


def _rows(x: Any) -> Any:
    """vmap over the rows of x, or evaluate once with a batch axis of 1 when x is None."""

    def apply(fn: Any, *args: Any) -> Any:
        if x is None:
            return jax.tree_util.tree_map(lambda a: a[None], fn(*args, None))
        return jax.vmap(fn, in_axes=(*(None for _ in args), 0))(*args, x)

    return apply


def _registry_kernel(model: Model) -> Any:
    def kernel(params: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)

        def eta(f: jax.Array, x_row: Any) -> jax.Array:
            return family_fisher(model.distribution(unravel(f), x_row)).params

        def info(x_row: Any) -> Any:
            d = model.distribution(params, x_row)
            return family_fisher(d).matrix, validity(d)

        p = flat.shape[0]

        def block(xb: Any) -> Any:
            rows = _rows(xb)
            jac = rows(jax.jacrev(eta), flat)
            mat, flags = rows(info)
            k, n = mat.shape[-1], mat.shape[0]
            jac = jac.reshape(n, -1, k, p)
            mat = mat.reshape(n, -1, k, k)
            weighted = jnp.einsum("nckl,nclp->nckp", mat, jac)
            f = jac.reshape(-1, p).T @ weighted.reshape(-1, p)
            return f, (flags, jnp.all(jnp.isfinite(mat.reshape(n, -1)), axis=1))

        if x is None:
            f, (flags, finite) = block(None)
        else:
            f, (flags, finite) = sum_over_blocks(block, x)
        return f, flags, finite

    return kernel


def _point_scores(model: Model, flat: jax.Array, unravel: Any, ys: jax.Array, x_row: Any) -> Any:
    """Scores (M, P) and log-likelihoods (M,) of one row at M values of y (treated as data)."""
    ys = jax.lax.stop_gradient(ys)

    def ll(f: jax.Array, y: jax.Array) -> jax.Array:
        return model.row_loglik(unravel(f), y, x_row)[0]

    vg = jax.vmap(jax.value_and_grad(ll), in_axes=(None, 0))
    return vg(flat, ys)


def _row_values(d: Any, values: jax.Array) -> jax.Array:
    """Candidate y values (M, 1-component batch) -> M rows of y for ``row_loglik``."""
    size = int(np.prod(d.batch_shape)) if d.batch_shape else 1
    if size != 1:
        raise MethodUnavailableError(
            f"summation/quadrature needs one {type(d).__name__} per row, got batch shape "
            f"{d.batch_shape}; use method='mc' or register a closed form"
        )
    return values.reshape((values.shape[0], *d.event_shape))


def _summation_kernel(model: Model) -> Any:
    def kernel(params: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)

        def row(x_row: Any) -> Any:
            d = model.distribution(params, x_row)
            ys = _row_values(d, d.enumerate_support(expand=False))
            logp, g = _point_scores(model, flat, unravel, ys, x_row)
            p = jnp.exp(logp)
            return g.T @ (p[:, None] * g), validity(d), jnp.abs(p.sum() - 1.0) < 1e-8

        mats, flags, complete = _rows(x)(row)
        return mats.sum(0), flags, complete

    return kernel


def _quadrature_kernel(model: Model) -> Any:
    u_np, wf_np, wc_np, tail = tanh_sinh_nodes()

    def kernel(params: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)
        u, wf, wc = jnp.asarray(u_np), jnp.asarray(wf_np), jnp.asarray(wc_np)

        def row(x_row: Any) -> Any:
            d = model.distribution(params, x_row)
            shape = (u.shape[0], *(1 for _ in d.batch_shape))
            ys = _row_values(d, d.icdf(u.reshape(shape)))
            _, g = _point_scores(model, flat, unravel, ys, x_row)
            fine, coarse = g.T @ (wf[:, None] * g), g.T @ (wc[:, None] * g)
            # the dropped upper tail (mass `tail`), bounded by 4x the integrand at the last node
            dropped = 4.0 * tail * jnp.abs(g[-1][:, None] * g[-1][None, :])
            return fine, jnp.abs(fine - coarse) + dropped, validity(d)

        fine, error, flags = _rows(x)(row)
        return fine.sum(0), error.sum(0), flags

    return kernel


def _block_size(num_samples: int, rows: int, p: int) -> int:
    limit = max(1, _MC_BLOCK_ELEMENTS // max(rows * p, p * p, 1))
    return max(b for b in range(1, min(num_samples, limit) + 1) if num_samples % b == 0)


def _mc_kernel(model: Model, num_samples: int) -> Any:
    def kernel(params: Any, x: Any, key: jax.Array) -> Any:
        flat, unravel = ravel_pytree(params)
        p = flat.shape[0]
        rows = 1 if x is None else jax.tree_util.tree_leaves(x)[0].shape[0]
        axes = (None, 0, None if x is None else 0)

        def row_ll(f: jax.Array, y_row: Any, x_row: Any) -> jax.Array:
            return model.row_loglik(unravel(f), y_row, x_row)[0]

        def draw(key: jax.Array) -> Any:
            if model.kind == "loglik":
                assert model.sampler is not None
                return as_float(model.sampler(params, x, key))

            def one(k: jax.Array, x_row: Any) -> jax.Array:
                d = model.distribution(params, x_row)
                y = d.sample(k)
                return y[0] if (x_row is not None and d.batch_shape) else y

            if x is None:
                return as_float(one(key, None))[None]
            return as_float(jax.vmap(one)(jax.random.split(key, rows), x))

        def total(key: jax.Array) -> jax.Array:
            g = jax.vmap(jax.grad(row_ll), in_axes=axes)(flat, draw(key), x)
            return g.T @ g

        block = _block_size(num_samples, rows, p)
        keys = jax.random.split(key, num_samples).reshape(num_samples // block, block, -1)

        def step(carry: Any, block_keys: jax.Array) -> Any:
            count, mean, m2 = carry
            t = jax.vmap(total)(block_keys)
            b_mean = t.mean(0)
            b_m2 = ((t - b_mean) ** 2).sum(0)
            new = count + block
            delta = b_mean - mean
            mean = mean + delta * (block / new)
            m2 = m2 + b_m2 + delta**2 * (count * block / new)
            return (new, mean, m2), None

        zeros = jnp.zeros((p, p))
        (_, mean, m2), _ = jax.lax.scan(step, (jnp.zeros(()), zeros, zeros), keys)
        if model.kind == "distribution":
            flags = _rows(x)(lambda x_row: validity(model.distribution(params, x_row)))
        else:
            flags = {}
        return mean, jnp.sqrt(m2 / (num_samples - 1) / num_samples), flags

    return kernel


# --------------------------------------------------------------------------- routing


def _route(model: Model, params: Any, x: Any, method: FisherMethod) -> str:
    """The route for this model and these shapes, probed once on the first row and cached."""
    key = ("route", method, tree_signature(params), tree_signature(x))
    route = model._cache.get(key)
    if route is None:
        route = _probe_route(model, params, x, method)
        model._cache[key] = route
    return route


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


def _probe_route(model: Model, params: Any, x: Any, method: FisherMethod) -> str:
    if model.kind == "loglik":
        require_sampler(model, exact=method is FisherMethod.EXACT)
        return "mc"
    if method is FisherMethod.MC:
        return "mc"
    try:
        d = eager_distribution(model, params, row_slice(x, 0))
    except (ModelError, MethodUnavailableError):
        raise
    except Exception as exc:
        raise ModelError(f"the model function failed on the first row: {type(exc).__name__}: {exc}") from exc
    if has_closed_form(type(d)):
        return "exact"
    if d.has_enumerate_support:
        return "summation"
    if not d.event_shape:
        try:
            d.icdf(jnp.asarray(0.5))
            return "quadrature"
        except (NotImplementedError, ImportError):
            pass
    if method is FisherMethod.EXACT:
        raise MethodUnavailableError(
            f"no exact Fisher for {type(d).__name__}: no closed form is registered, its support is "
            "not finite and it has no inverse CDF for quadrature; use method='mc' or register a "
            "closed form with fl.dist.register_fisher"
        )
    return "mc"


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
        n: multiplies the result: ``n`` iid observations (or ``n`` repeats of x).
        method: ``"exact"`` (closed form through the chain rule, exact summation
            or quadrature), ``"mc"`` (Monte-Carlo) or ``"auto"`` (exact when it
            exists, else Monte-Carlo).
        num_samples: Monte-Carlo draws of the whole data set (``method="mc"``).
        seed: Monte-Carlo seed.

    Returns:
        :class:`~fisherlab.InfoMatrix` with ``.method`` telling the route taken;
        ``.error`` holds the Monte-Carlo standard error per entry (``"mc"``) or
        the quadrature error estimate (``"quadrature"``).

    Raises:
        MethodUnavailableError: ``method="exact"`` for a model without one.
        InvalidParameterError: parameters outside a distribution's support
            (row and parameter named).
        InvalidDataError: NaN/inf or mismatched rows in ``x``.

    Example:
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
    if not isinstance(model, Model):
        raise TypeError(f"expected a fisherlab Model as first argument, got {type(model).__name__}")
    choice = choose(FisherMethod, method, "method")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer (number of iid observations), got {n!r}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 2:
        raise ValueError(f"num_samples must be an integer >= 2, got {num_samples!r}")
    if is_numeric(model, params, None, x):
        from ._numeric_fisher import numeric_fisher

        return numeric_fisher(
            model, params, x, n=int(n), method=choice.value, num_samples=int(num_samples), seed=seed
        )
    params = as_params(params)
    x = prepare_data(None, x, require_y=False).x
    names = param_names(params)
    route = _route(model, params, x, choice)
    if route == "quadrature":
        f, error, flags = run(cached_kernel(model, "fisher_quadrature", _quadrature_kernel), params, x)
        raise_invalid(model, params, flags, x, has_rows=x is not None)
        f, error = np.asarray(f), np.asarray(error)
        scale = np.max(np.abs(f))
        if np.all(np.isfinite(f)) and np.max(error) <= QUADRATURE_RTOL * scale:
            return InfoMatrix(f * n, names, error=error * n, method=route)
        if choice is FisherMethod.EXACT:
            raise NotConvergedError(
                f"quadrature of E[s s^T] did not converge (error estimate {np.max(error):.2e} vs "
                f"largest entry {scale:.2e}); use method='mc' or register a closed form"
            )
        route = "mc"  # "auto": exact was not reached, so Monte-Carlo (documented)
    error = None
    if route == "exact":
        f, flags, _ = run(cached_kernel(model, "fisher_exact", _registry_kernel), params, x)
    elif route == "summation":
        f, flags, complete = run(cached_kernel(model, "fisher_summation", _summation_kernel), params, x)
        raise_invalid(model, params, flags, x, has_rows=x is not None)
        if not np.all(np.asarray(complete)):
            raise NotConvergedError("the enumerated support does not sum to probability 1; use method='mc'")
    else:
        kernel = cached_kernel(
            model, f"fisher_mc_{int(num_samples)}", lambda m: _mc_kernel(m, int(num_samples))
        )
        f, error, flags = run(kernel, params, x, jax.random.PRNGKey(seed))
        error = np.asarray(error) * n
    if model.kind == "distribution":
        raise_invalid(model, params, flags, x, has_rows=x is not None)
    check_finite("Fisher information", np.asarray(f)[None])
    return InfoMatrix(np.asarray(f) * n, names, error=error, method=route)
