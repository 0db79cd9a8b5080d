r"""Log-likelihood, score, empirical Fisher and observed information of a model on data.

For rows :math:`(x_i, y_i)`, :math:`i = 1..N`, and :math:`\ell_i(\theta) = \log p(y_i\mid x_i,\theta)`:

- score :math:`s_i(\theta) = \nabla_\theta \ell_i(\theta)`, one vectorised pass
  (``vmap`` of ``grad`` over rows), an ``(N, P)`` array;
- empirical Fisher :math:`\sum_i s_i s_i^\top` (``reduction="mean"``: divided by N);
- observed information :math:`J(\theta) = -\sum_i \nabla^2 \ell_i(\theta)`
  (forward-over-reverse Hessian of the total).

Sums are totals over rows unless ``reduction="mean"`` is asked for. A model with
``derivatives="numeric"`` (or ``"auto"`` whose function cannot be traced) is handled by
finite differences in :mod:`fisherlab._numeric_model`; its matrices carry ``.error`` and
``.evaluations``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..backends import _numeric as _numeric_model
from ..backends._curvature import negative_hessian
from ..backends._evaluate import (
    cached_kernel,
    check_finite,
    raise_invalid,
    reduction_factor,
    run,
)
from ..data._blocks import sum_over_blocks
from ..data._prepare import prepare_data
from ..model._model import Model
from ..params._pytree import as_params, param_names
from ._fisher import fisher as fisher
from ._matrix import InfoMatrix

__all__ = ["empirical_fisher", "fisher", "loglik", "observed_information", "score"]


def _row_axes(x: Any) -> tuple[None, int, int | None]:
    return (None, 0, None if x is None else 0)


def _loglik_kernel(model: Model) -> Any:
    def kernel(params: Any, y: Any, x: Any) -> Any:
        return jax.vmap(model.row_loglik, in_axes=_row_axes(x))(params, y, x)

    return kernel


def _flat_row(model: Model, unravel: Any) -> Any:
    def row(flat: jax.Array, y_row: Any, x_row: Any) -> Any:
        return model.row_loglik(unravel(flat), y_row, x_row)

    return row


def _score_kernel(model: Model) -> Any:
    def kernel(params: Any, y: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)
        row = jax.value_and_grad(_flat_row(model, unravel), has_aux=True)
        (ll, flags), g = jax.vmap(row, in_axes=_row_axes(x))(flat, y, x)
        return ll, g, flags

    return kernel


def _empirical_kernel(model: Model) -> Any:
    def kernel(params: Any, y: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)
        row = jax.value_and_grad(_flat_row(model, unravel), has_aux=True)

        def block(data: Any) -> Any:
            (ll, flags), g = jax.vmap(row, in_axes=_row_axes(x))(flat, *data)
            return g.T @ g, (ll, jnp.all(jnp.isfinite(g), axis=1), flags)

        m, (ll, finite, flags) = sum_over_blocks(block, (y, x))
        return ll, m, finite, flags

    return kernel


def _observed_kernel(model: Model) -> Any:
    def kernel(params: Any, y: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)
        neg, ll, flags = negative_hessian(model, unravel, flat, y, x)
        return ll, neg, flags

    return kernel


def _evaluate(model: Model, name: str, build: Any, params: Any, y: Any, x: Any) -> tuple[Any, Any, Any]:
    if not isinstance(model, Model):
        raise TypeError(f"expected a fisherlab Model as first argument, got {type(model).__name__}")
    params = as_params(params)
    data = prepare_data(y, x)
    out = run(cached_kernel(model, name, build), params, data.y, data.x)
    if model.kind == "distribution":
        raise_invalid(model, params, out[-1], data.x, has_rows=True, y=data.y)
    check_finite("log-likelihood", np.where(np.isneginf(np.asarray(out[0])), 0.0, np.asarray(out[0])))
    return params, data, out


def loglik(model: Model, params: Any, y: Any, x: Any = None) -> np.ndarray:
    r"""Per-row log-likelihood :math:`\ell_i(\theta) = \log p(y_i \mid x_i, \theta)`.

    Args:
        model: a :class:`~fisherlab.Model`.
        params: parameter pytree.
        y: observations, leading axis N (array, pytree or pandas object).
        x: covariates with leading axis N, or ``None``.

    Returns:
        ``numpy`` array ``(N,)``. An observation that is impossible under the
        parameters gives ``-inf`` (a correct value); NaN never comes back.

    Raises:
        InvalidDataError: NaN/inf or mismatched rows in ``y``/``x``, ``y`` outside
            the support (row and field named).
        InvalidParameterError: parameters giving an invalid distribution
            (row and distribution parameter named).

    Example:
        >>> import fisherlab as fl, numpy as np
        >>> m = fl.Model(lambda th, x: fl.dist.Poisson(th["rate"]))
        >>> fl.loglik(m, {"rate": 2.0}, np.array([0, 3])).round(4).tolist()
        [-2.0, -1.7123]
    """
    if _numeric_model.is_numeric(model, params, y, x):
        return _numeric_model.loglik(model, params, y, x)
    _, _, (ll, _) = _evaluate(model, "loglik", _loglik_kernel, params, y, x)
    return np.asarray(ll)


def score(model: Model, params: Any, y: Any, x: Any = None) -> np.ndarray:
    r"""Per-row scores :math:`s_i = \nabla_\theta \log p(y_i \mid x_i, \theta)`.

    Returns:
        ``numpy`` array ``(N, P)``, columns in :func:`~fisherlab.param_names` order.
        Under the model, :math:`\mathbb{E}[s_i] = 0` at the true parameters.

    Raises:
        InvalidDataError, InvalidParameterError: as :func:`loglik`; also a
            non-finite score (row named).

    Example:
        >>> import fisherlab as fl, numpy as np
        >>> m = fl.Model(lambda th, x: fl.dist.Normal(th["mu"], 1.0))
        >>> fl.score(m, {"mu": 0.5}, np.array([0.0, 2.0])).tolist()   # y - mu
        [[-0.5], [1.5]]
    """
    if _numeric_model.is_numeric(model, params, y, x):
        return _numeric_model.score(model, params, y, x)
    _, _, (_, g, _) = _evaluate(model, "score", _score_kernel, params, y, x)
    check_finite("score", g)
    return np.asarray(g)


def empirical_fisher(
    model: Model, params: Any, y: Any, x: Any = None, *, reduction: str = "sum"
) -> InfoMatrix:
    r"""Empirical Fisher :math:`\hat F = \sum_i s_i s_i^\top` (``"mean"``: divided by N).

    The outer-product-of-gradients (OPG) estimate. It equals the Fisher in
    expectation only at the true parameters of a correctly specified model;
    away from that it can differ badly (Kunstner, Balles & Hennig 2019,
    "Limitations of the empirical Fisher approximation", NeurIPS).

    Args:
        reduction: ``"sum"`` (total over rows, the default) or ``"mean"``.

    Example:
        >>> import fisherlab as fl, numpy as np
        >>> m = fl.Model(lambda th, x: fl.dist.Normal(th["mu"], 1.0))
        >>> fl.empirical_fisher(m, {"mu": 0.0}, np.array([1.0, -2.0])).matrix.tolist()
        [[5.0]]
    """
    reduction_factor(reduction, 1)  # reject a bad option before any work
    if _numeric_model.is_numeric(model, params, y, x):
        return _numeric_model.empirical_fisher(model, params, y, x, reduction=reduction)
    _, data, (_, m, finite, _) = _evaluate(model, "empirical", _empirical_kernel, params, y, x)
    check_finite("score", np.where(np.asarray(finite), 0.0, np.nan))
    factor = reduction_factor(reduction, data.n)
    return InfoMatrix(np.asarray(m) * factor, param_names(params), method="empirical")


def observed_information(
    model: Model, params: Any, y: Any, x: Any = None, *, reduction: str = "sum"
) -> InfoMatrix:
    r"""Observed information :math:`J(\theta) = -\sum_i \nabla^2_\theta \log p(y_i\mid x_i,\theta)`.

    Minus the Hessian of the total log-likelihood (``"mean"``: divided by N).
    At the maximum-likelihood estimate :math:`J(\hat\theta)^{-1}` is the usual
    covariance estimate; its expectation under the model is the Fisher.

    Example:
        >>> import fisherlab as fl, numpy as np
        >>> m = fl.Model(lambda th, x: fl.dist.Poisson(th["rate"]))
        >>> fl.observed_information(m, {"rate": 2.0}, np.array([1, 3])).matrix.tolist()  # sum y / rate^2
        [[1.0]]
    """
    reduction_factor(reduction, 1)  # reject a bad option before any work
    if _numeric_model.is_numeric(model, params, y, x):
        return _numeric_model.observed_information(model, params, y, x, reduction=reduction)
    _, data, (_, m, _) = _evaluate(model, "observed", _observed_kernel, params, y, x)
    check_finite("observed information", np.asarray(m)[None])
    factor = reduction_factor(reduction, data.n)
    return InfoMatrix(np.asarray(m) * factor, param_names(params), method="observed")
